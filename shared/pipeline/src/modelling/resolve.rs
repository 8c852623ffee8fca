//! Name resolution for one model of a run: `ref` to the staged, published or deferred relation,
//! `source` to the silver table.

use std::collections::{BTreeMap, BTreeSet};

use floe_core::Result;
use floe_models::Resolve;
use floe_models::render::ResolveError;

/// Resolves names for one model of a run.
pub(super) struct RunResolver {
    pub(super) models: BTreeSet<String>,
    /// Relations of the models staged so far in this run.
    pub(super) staged: BTreeMap<String, String>,
    /// The run's selection.
    pub(super) selected: BTreeSet<String>,
    pub(super) target: Target,
    /// Resolve staged models to their published names (a view's published SQL).
    pub(super) published_names: bool,
}

impl Resolve for RunResolver {
    fn model(&self, name: &str) -> std::result::Result<String, ResolveError> {
        if !self.models.contains(name) {
            return Err(ResolveError::UnknownModel {
                name: name.to_owned(),
                hint: floe_config::did_you_mean(name, self.models.iter().map(String::as_str)),
            });
        }
        if !self.published_names
            && let Some(r) = self.staged.get(name)
        {
            return Ok(r.clone());
        }
        match &self.target.defer_to {
            Some(prod) if !self.selected.contains(name) => Ok(format!("{prod}.{name}")),
            _ => Ok(format!("{}.{name}", self.target.namespace)),
        }
    }
    fn source(&self, source: &str, table: &str) -> std::result::Result<String, ResolveError> {
        Ok(format!(
            "{}.{table}",
            floe_core::Layer::Silver.namespace(source)
        ))
    }
}

/// Where a run writes its models, and where unselected parents are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The namespace models are written to: `gold`, or `gold_<target>` for a dev target.
    pub namespace: String,
    /// Read models outside the selection from this namespace (production) instead.
    pub defer_to: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            namespace: floe_models::GOLD.to_owned(),
            defer_to: None,
        }
    }
}

impl Target {
    /// The target called `name`: `prod` (or none) is `gold`, anything else `gold_<name>`.
    pub fn named(name: Option<&str>, defer: bool) -> Result<Self> {
        match name {
            None | Some("prod") => Ok(Target::default()),
            Some(n) => {
                floe_core::id::check_identifier("target", n)?;
                Ok(Target {
                    namespace: format!("{}_{n}", floe_models::GOLD),
                    defer_to: defer.then(|| floe_models::GOLD.to_owned()),
                })
            }
        }
    }
}
