//! Loading the project's models at run time, with template parameters from the catalog.

use std::collections::BTreeMap;

use floe_config::Project;
use floe_core::ports::Lake;
use floe_core::{Error, Result};
use floe_models::Models;
use serde_json::json;

/// The prefix of the catalog properties that add template parameters to a table:
/// `floe.generate.<template>` = `true` applies the template; `floe.generate.<template>.<param>`
/// = value sets a parameter (read as JSON when it parses, as text otherwise).
pub const GENERATE_PROPERTY: &str = "floe.generate.";

/// Template parameters from catalog properties (see [`GENERATE_PROPERTY`]), per template.
pub fn template_params(
    properties: &BTreeMap<String, String>,
) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (k, v) in properties {
        let Some(rest) = k.strip_prefix(GENERATE_PROPERTY) else {
            continue;
        };
        let (template, param) = match rest.split_once('.') {
            Some((t, p)) => (t, Some(p)),
            None => (rest, None),
        };
        if template.is_empty() {
            continue;
        }
        let entry = out.entry(template.to_owned()).or_insert_with(|| json!({}));
        if let (Some(p), Some(map)) = (param, entry.as_object_mut()) {
            let value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
            map.insert(p.to_owned(), value);
        }
    }
    out
}

/// The project's models, with template parameters from the silver tables' catalog properties
/// merged over the YAML's when the lake keeps any (Glue on Athena).
pub async fn load_models(project: &Project, lake: &dyn Lake) -> Result<Models> {
    let mut extra = BTreeMap::new();
    if lake.capabilities().table_properties {
        for t in project.tables.values() {
            let silver = t.table_ref(floe_core::Layer::Silver);
            if !lake.table_exists(&silver).await? {
                continue;
            }
            let params = template_params(&lake.table_properties(&silver).await?);
            if !params.is_empty() {
                extra.insert(t.qualified_name(), params);
            }
        }
    }
    Models::load_with(project, &extra).map_err(Error::from)
}

/// Whether a project folder has any models or templates (a cheap check before loading them).
pub fn project_has_models(root: &std::path::Path) -> bool {
    [
        floe_models::project::MODELS_DIR,
        floe_models::project::TEMPLATES_DIR,
    ]
    .iter()
    .any(|d| std::fs::read_dir(root.join(d)).is_ok_and(|mut e| e.next().is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_properties_become_template_parameters() {
        let props = BTreeMap::from([
            ("floe.generate.current".to_owned(), "true".to_owned()),
            (
                "floe.generate.current.exclude_deleted".to_owned(),
                "true".to_owned(),
            ),
            (
                "floe.generate.snapshot.materialized".to_owned(),
                "view".to_owned(),
            ),
            (
                "floe.generate.snapshot.days".to_owned(),
                "[1, 7]".to_owned(),
            ),
            ("owner".to_owned(), "data-team".to_owned()),
        ]);
        let p = template_params(&props);
        assert_eq!(p["current"], json!({"exclude_deleted": true}));
        assert_eq!(
            p["snapshot"],
            json!({"materialized": "view", "days": [1, 7]})
        );
        assert_eq!(p.len(), 2, "other properties are not parameters");
    }
}
