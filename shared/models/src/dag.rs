//! The model graph: edges from `ref`, a topological order, cycle detection, and dbt's selectors
//! (`model`, `+model`, `model+`, `tag:x`, `source:s.t`, `state:modified`, unions by space).

use std::collections::{BTreeMap, BTreeSet};

use floe_config::did_you_mean;
use serde::{Deserialize, Serialize};

use crate::model::{Materialized, Model};
use crate::render::Dep;

/// The graph of models.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Parents (models it refs) of each model.
    pub parents: BTreeMap<String, BTreeSet<String>>,
    /// Children of each model.
    pub children: BTreeMap<String, BTreeSet<String>>,
    /// Silver tables (`source.table`) each model reads directly.
    pub sources: BTreeMap<String, BTreeSet<String>>,
    /// Every model, parents before children (ties by name).
    pub order: Vec<String>,
}

/// Why models do not form a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    /// A model refs a name that is no model.
    #[error("{model} refs '{missing}', which is not a model")]
    UnknownRef {
        /// The model.
        model: String,
        /// The name it refs.
        missing: String,
    },
    /// Models depend on each other in a circle.
    #[error(
        "the models form a cycle: {}; a model cannot depend on itself, break the cycle",
        .0.join(" -> ")
    )]
    Cycle(Vec<String>),
}

impl Dag {
    /// The graph of `models`; a cycle is an error naming it.
    pub fn new(models: &BTreeMap<String, Model>) -> Result<Dag, DagError> {
        let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, m) in models {
            parents.entry(name.clone()).or_default();
            children.entry(name.clone()).or_default();
            sources.entry(name.clone()).or_default();
            for d in &m.deps {
                match d {
                    Dep::Ref { name: p } => {
                        if !models.contains_key(p) {
                            return Err(DagError::UnknownRef {
                                model: name.clone(),
                                missing: p.clone(),
                            });
                        }
                        parents.entry(name.clone()).or_default().insert(p.clone());
                        children.entry(p.clone()).or_default().insert(name.clone());
                    }
                    Dep::Source { source, table } => {
                        sources
                            .entry(name.clone())
                            .or_default()
                            .insert(format!("{source}.{table}"));
                    }
                }
            }
        }
        // Kahn's algorithm; what is left over sits on a cycle (or behind one).
        let mut waiting: BTreeMap<&str, usize> = parents
            .iter()
            .map(|(n, ps)| (n.as_str(), ps.len()))
            .collect();
        let mut ready: BTreeSet<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(m, _)| *m)
            .collect();
        let mut order = Vec::new();
        while let Some(m) = ready.pop_first() {
            waiting.remove(m);
            order.push(m.to_owned());
            for c in &children[m] {
                let n = waiting.get_mut(c.as_str()).expect("every child is a model");
                *n -= 1;
                if *n == 0 {
                    ready.insert(c);
                }
            }
        }
        if !waiting.is_empty() {
            let start = *waiting.keys().next().expect("not empty");
            return Err(DagError::Cycle(cycle_from(start, &parents, &waiting)));
        }
        Ok(Dag {
            parents,
            children,
            sources,
            order,
        })
    }

    /// Every ancestor of `model`.
    pub fn ancestors(&self, model: &str) -> BTreeSet<String> {
        walk(model, &self.parents)
    }

    /// Every descendant of `model`.
    pub fn descendants(&self, model: &str) -> BTreeSet<String> {
        walk(model, &self.children)
    }

    /// Models reading the silver table `source.table` directly, and everything downstream.
    pub fn downstream_of_source(&self, qualified: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (m, srcs) in &self.sources {
            if srcs.contains(qualified) {
                out.insert(m.clone());
                out.extend(self.descendants(m));
            }
        }
        out
    }

    /// `set` in DAG order.
    pub fn ordered(&self, set: &BTreeSet<String>) -> Vec<String> {
        self.order
            .iter()
            .filter(|m| set.contains(*m))
            .cloned()
            .collect()
    }
}

fn walk(from: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = vec![from];
    while let Some(n) = stack.pop() {
        for next in edges.get(n).into_iter().flatten() {
            if seen.insert(next.clone()) {
                stack.push(next);
            }
        }
    }
    seen
}

/// A cycle among `left` (models Kahn's algorithm could not order), starting near `start`.
fn cycle_from(
    start: &str,
    parents: &BTreeMap<String, BTreeSet<String>>,
    left: &BTreeMap<&str, usize>,
) -> Vec<String> {
    let mut path: Vec<String> = vec![start.to_owned()];
    let mut at = start.to_owned();
    loop {
        let next = parents[&at]
            .iter()
            .find(|p| left.contains_key(p.as_str()))
            .expect("a model left over has a parent left over")
            .clone();
        if let Some(i) = path.iter().position(|p| *p == next) {
            // `path` follows parents; a cycle reads best in dependency order.
            let mut cycle: Vec<String> = path[i..].to_vec();
            cycle.reverse();
            // Start at the first name, so the same cycle always reads the same.
            let first = (0..cycle.len())
                .min_by_key(|k| &cycle[*k])
                .expect("a cycle has members");
            cycle.rotate_left(first);
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next.clone());
        at = next;
    }
}

/// What a run saved about each model, for `state:modified` and deferral.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The floe version that wrote it.
    pub floe_version: String,
    /// When.
    pub generated_at: String,
    /// Models by name.
    pub models: BTreeMap<String, ManifestModel>,
}

/// One model in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestModel {
    /// Its checksum (SQL, parameters, config, tests).
    pub checksum: String,
    /// Its materialization.
    pub materialized: String,
    /// The models it refs.
    pub parents: Vec<String>,
    /// The relation it was published as.
    pub relation: String,
}

impl Manifest {
    /// The manifest of `models`, published in `namespace`.
    pub fn of(models: &BTreeMap<String, Model>, dag: &Dag, namespace: &str) -> Manifest {
        Manifest {
            floe_version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_at: chrono::Utc::now().to_rfc3339(),
            models: models
                .iter()
                .map(|(n, m)| {
                    (
                        n.clone(),
                        ManifestModel {
                            checksum: m.checksum.clone(),
                            materialized: m.materialized.name().to_owned(),
                            parents: dag.parents[n].iter().cloned().collect(),
                            relation: format!("{namespace}.{n}"),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Picks models with dbt's selector syntax.
///
/// `expr` is a space-separated union of terms; a term is a model name, `tag:x`, `source:s.t`
/// (models reading that silver table) or `state:modified` (new or changed against `state`),
/// with an optional `+` before (and its ancestors) and after (and its descendants).
pub fn select(
    expr: &str,
    models: &BTreeMap<String, Model>,
    dag: &Dag,
    state: Option<&Manifest>,
) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let terms: Vec<&str> = expr.split_whitespace().collect();
    if terms.is_empty() {
        return Err("an empty selector: name a model, tag:x, source:s.t or state:modified".into());
    }
    for term in terms {
        let (up, rest) = match term.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, term),
        };
        let (down, body) = match rest.strip_suffix('+') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let base: BTreeSet<String> = if let Some(tag) = body.strip_prefix("tag:") {
            let hit: BTreeSet<String> = models
                .values()
                .filter(|m| m.tags.iter().any(|t| t == tag))
                .map(|m| m.name.clone())
                .collect();
            if hit.is_empty() {
                let tags: BTreeSet<&str> = models
                    .values()
                    .flat_map(|m| m.tags.iter().map(String::as_str))
                    .collect();
                return Err(format!(
                    "no model has the tag '{tag}'{}",
                    did_you_mean(tag, tags.iter().copied())
                ));
            }
            hit
        } else if let Some(table) = body.strip_prefix("source:") {
            dag.sources
                .iter()
                .filter(|(_, s)| s.contains(table))
                .map(|(m, _)| m.clone())
                .collect()
        } else if let Some(what) = body.strip_prefix("state:") {
            if what != "modified" && what != "new" {
                return Err(format!(
                    "state:{what} is not a selector: use state:modified or state:new"
                ));
            }
            let Some(state) = state else {
                return Err(format!(
                    "state:{what} compares against a saved manifest: pass --state DIR (a folder holding manifest.json from a production run)"
                ));
            };
            models
                .values()
                .filter(|m| match state.models.get(&m.name) {
                    None => true,
                    Some(old) => what == "modified" && old.checksum != m.checksum,
                })
                .map(|m| m.name.clone())
                .collect()
        } else if models.contains_key(body) {
            BTreeSet::from([body.to_owned()])
        } else {
            return Err(format!(
                "there is no model '{body}'{}; selectors: model, +model, model+, tag:x, source:s.t, state:modified",
                did_you_mean(body, models.keys().map(String::as_str))
            ));
        };
        for m in &base {
            if up {
                out.extend(dag.ancestors(m));
            }
            if down {
                out.extend(dag.descendants(m));
            }
        }
        out.extend(base);
    }
    Ok(out)
}

/// Whether a model writes a table (as opposed to a view).
pub fn has_table(m: &Model) -> bool {
    !matches!(m.materialized, Materialized::View)
}
