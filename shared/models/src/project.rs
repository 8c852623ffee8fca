//! The gold half of a project on disk: `models/**/*.sql` (hand-written models),
//! `templates/*.sql` applied to the tables that opt in (generated models), `macros/*.sql`,
//! `models/**/*.yaml` (docs, data tests, unit tests) and `tests/*.sql` (custom SQL tests).
//!
//! One file (over 700 lines) because loading is one pass: each model is rendered once, and the
//! names, configs and tests that yields are checked against each other before every problem is
//! reported together; what a model is lives in `model`, its graph in `dag`.
//!
//! Loading renders every model once (with `ref`/`source` resolved to the published relations)
//! to learn its dependencies and `config(...)`, checks every name, and reports every problem at
//! once with its file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use floe_config::{ConfigError, ConfigErrors, Project, TableConfig, did_you_mean};
use floe_core::ports::Dialect;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::dag::Dag;
pub use crate::model::{
    ChunkSize, ChunkSpec, DataTest, Materialized, Model, Origin, Period, Strategy, TestKind,
    UnitTest,
};
use crate::render::{Dep, RenderCtx, RenderError, Renderer, Resolve, ResolveError};

/// The namespace of the published gold models.
pub const GOLD: &str = "gold";
/// Folders of the gold half of a project.
pub const MODELS_DIR: &str = "models";
/// Model templates.
pub const TEMPLATES_DIR: &str = "templates";
/// User macros.
pub const MACROS_DIR: &str = "macros";
/// Custom SQL tests.
pub const TESTS_DIR: &str = "tests";

/// The gold half of a loaded project.
#[derive(Debug)]
pub struct Models {
    /// Models by name.
    pub models: BTreeMap<String, Model>,
    /// Their graph.
    pub dag: Dag,
    /// Unit tests.
    pub unit_tests: Vec<UnitTest>,
    /// The environment every model renders in.
    pub renderer: Renderer,
    /// The project's `vars:`.
    pub vars: Arc<BTreeMap<String, Json>>,
    /// Silver tables the project declares (`source.table`).
    pub sources: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    models: Vec<RawModel>,
    #[serde(default)]
    unit_tests: Vec<RawUnitTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    config: Option<IndexMap<String, Json>>,
    #[serde(default)]
    columns: Vec<RawColumn>,
    #[serde(default, alias = "data_tests")]
    tests: Vec<Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // documentation, shown by `floe plan`'s JSON
    description: Option<String>,
    #[serde(default, alias = "data_tests")]
    tests: Vec<Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnitTest {
    name: String,
    model: String,
    given: Vec<RawGiven>,
    expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGiven {
    input: String,
    rows: Vec<IndexMap<String, Json>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    rows: Vec<IndexMap<String, Json>>,
}

/// Files under `dir` (recursively) ending in one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap_or(p).to_owned()
}

fn name_of(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned()
}

fn render_error(e: RenderError) -> ConfigError {
    ConfigError::at(
        Path::new(&e.template),
        e.line.map(|l| (l as u64, 1)),
        None,
        e.message,
    )
}

/// Resolves names to the published relations, refusing unknown ones.
struct Published {
    models: BTreeSet<String>,
    sources: BTreeSet<String>,
}

impl Resolve for Published {
    fn model(&self, name: &str) -> Result<String, ResolveError> {
        if self.models.contains(name) {
            Ok(format!("{GOLD}.{name}"))
        } else {
            Err(ResolveError::UnknownModel {
                name: name.to_owned(),
                hint: did_you_mean(name, self.models.iter().map(String::as_str)),
            })
        }
    }
    fn source(&self, source: &str, table: &str) -> Result<String, ResolveError> {
        let q = format!("{source}.{table}");
        if self.sources.contains(&q) {
            Ok(format!(
                "{}.{table}",
                floe_core::Layer::Silver.namespace(source)
            ))
        } else {
            Err(ResolveError::UnknownSource {
                hint: did_you_mean(&q, self.sources.iter().map(String::as_str)),
                table: q,
            })
        }
    }
}

/// A model found on disk: name, file, origin, template text, template context.
type Found = (String, PathBuf, Origin, String, Arc<BTreeMap<String, Json>>);

fn template_context(t: &TableConfig, params: &Json) -> BTreeMap<String, Json> {
    let columns: Vec<Json> = t
        .columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "type": c.ty.to_string(),
                "nullable": c.nullable,
                "description": c.description,
                "is_key": t.primary_key.contains(&c.name),
            })
        })
        .collect();
    BTreeMap::from([
        (
            "table".to_owned(),
            serde_json::json!({
                "source": t.source,
                "name": t.name,
                "qualified": t.qualified_name(),
                "primary_key": t.primary_key,
                "columns": columns,
                "load": match t.load { floe_config::LoadKind::Full => "full", floe_config::LoadKind::Cdc => "cdc" },
                "description": t.description,
            }),
        ),
        ("params".to_owned(), params.clone()),
    ])
}

impl Models {
    /// Loads the models of `project`, checking everything and reporting every problem at once.
    pub fn load(project: &Project) -> Result<Models, ConfigErrors> {
        Self::load_with(project, &BTreeMap::new())
    }

    /// As [`Models::load`], with extra template parameters per table (`source.table` -> template
    /// -> params) merged over the YAML ones: the Athena engine reads them from Glue table
    /// properties.
    pub fn load_with(
        project: &Project,
        extra_params: &BTreeMap<String, BTreeMap<String, Json>>,
    ) -> Result<Models, ConfigErrors> {
        let root = &project.root;
        let mut errors = Vec::new();
        let macros: Vec<(String, String)> = files(&root.join(MACROS_DIR), &["sql"])
            .into_iter()
            .filter_map(|p| {
                let shown = rel(root, &p).to_string_lossy().into_owned();
                match std::fs::read_to_string(&p) {
                    Ok(s) => Some((shown, s)),
                    Err(e) => {
                        errors.push(ConfigError::at(
                            Path::new(&shown),
                            None,
                            None,
                            format!("cannot read: {e}"),
                        ));
                        None
                    }
                }
            })
            .collect();
        let mut renderer = match Renderer::new(&macros) {
            Ok(r) => r,
            Err(e) => return Err(ConfigErrors(vec![render_error(e)])),
        };

        let mut found: Vec<Found> = Vec::new();
        let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut claim = |name: &str, file: &Path, errors: &mut Vec<ConfigError>| -> bool {
            if let Err(e) = floe_core::id::check_identifier("model", name) {
                errors.push(ConfigError::at(file, None, None, e.to_string()));
                return false;
            }
            if let Some(first) = by_name.get(name) {
                errors.push(ConfigError::at(
                    file,
                    None,
                    None,
                    format!(
                        "model '{name}' is defined twice (also by {}); rename one",
                        first.display()
                    ),
                ));
                return false;
            }
            by_name.insert(name.to_owned(), file.to_owned());
            true
        };
        for p in files(&root.join(MODELS_DIR), &["sql"]) {
            let shown = rel(root, &p);
            match std::fs::read_to_string(&p) {
                Ok(text) => {
                    let name = name_of(&p);
                    if claim(&name, &shown, &mut errors) {
                        found.push((name, shown, Origin::Written, text, Default::default()));
                    }
                }
                Err(e) => errors.push(ConfigError::at(
                    &shown,
                    None,
                    None,
                    format!("cannot read: {e}"),
                )),
            }
        }
        let templates: BTreeMap<String, (PathBuf, String)> =
            files(&root.join(TEMPLATES_DIR), &["sql"])
                .into_iter()
                .filter_map(|p| {
                    let text = std::fs::read_to_string(&p).ok()?;
                    Some((name_of(&p), (rel(root, &p), text)))
                })
                .collect();
        let mut used_templates = BTreeSet::new();
        for t in project.tables.values() {
            let mut generate = t.generate.clone();
            if let Some(extra) = extra_params.get(&t.qualified_name()) {
                for (template, params) in extra {
                    let entry = generate
                        .entry(template.clone())
                        .or_insert_with(|| Json::Object(Default::default()));
                    if let (Some(into), Some(from)) = (entry.as_object_mut(), params.as_object()) {
                        for (k, v) in from {
                            into.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            for (template, params) in &generate {
                let Some((file, text)) = templates.get(template) else {
                    errors.push(ConfigError::at(
                        &t.file,
                        None,
                        Some(format!("tables.{}.generate.{template}", t.name)),
                        format!(
                            "there is no templates/{template}.sql{}",
                            did_you_mean(template, templates.keys().map(String::as_str))
                        ),
                    ));
                    continue;
                };
                used_templates.insert(template.clone());
                let name = format!("{template}_{}_{}", t.source, t.name);
                if claim(&name, file, &mut errors) {
                    found.push((
                        name,
                        file.clone(),
                        Origin::Generated {
                            template: template.clone(),
                            table: t.qualified_name(),
                        },
                        text.clone(),
                        Arc::new(template_context(t, params)),
                    ));
                }
            }
        }
        for (template, (file, text)) in &templates {
            if used_templates.contains(template)
                && let Err(e) = renderer.add(&file.to_string_lossy(), text)
            {
                errors.push(render_error(e));
            }
        }

        let sources: BTreeSet<String> = project.tables.keys().cloned().collect();
        let resolver = Arc::new(Published {
            models: by_name.keys().cloned().collect(),
            sources: sources.clone(),
        });
        let vars = Arc::new(project.settings.vars.clone());
        let mut models = BTreeMap::new();
        for (name, file, origin, text, extra) in found {
            let template = file.to_string_lossy().into_owned();
            if matches!(origin, Origin::Written)
                && let Err(e) = renderer.add(&template, &text)
            {
                errors.push(render_error(e));
                continue;
            }
            let ctx = RenderCtx {
                resolver: resolver.clone(),
                dialect: Dialect::DataFusion,
                is_incremental: false,
                this: Some(format!("{GOLD}.{name}")),
                vars: vars.clone(),
                extra: extra.clone(),
            };
            let rendered = match renderer.render(&template, &ctx) {
                Ok(r) => r,
                Err(mut e) => {
                    if let Origin::Generated { table, .. } = &origin {
                        e.message = format!("{} (generating {name} for {table})", e.message);
                    }
                    errors.push(render_error(e));
                    continue;
                }
            };
            let mut hasher = Sha256::new();
            hasher.update(text.as_bytes());
            hasher.update(serde_json::to_vec(&*extra).unwrap_or_default());
            models.insert(
                name.clone(),
                (
                    Model {
                        name: name.clone(),
                        file: file.clone(),
                        template,
                        origin,
                        materialized: Materialized::View,
                        tags: Vec::new(),
                        deps: rendered.deps,
                        description: None,
                        tests: Vec::new(),
                        checksum: String::new(),
                        extra,
                    },
                    rendered.config,
                    hasher,
                ),
            );
        }

        // Docs, tests and unit tests from models/**/*.yaml.
        let mut unit_tests = Vec::new();
        let mut yaml_config: BTreeMap<String, IndexMap<String, Json>> = BTreeMap::new();
        for p in files(&root.join(MODELS_DIR), &["yaml", "yml"]) {
            let shown = rel(root, &p);
            let Some((raw, _)) = floe_config::parse_file::<RawFile>(&p, &shown, &mut errors) else {
                continue;
            };
            for m in raw.models {
                let Some((model, _, hasher)) = models.get_mut(&m.name) else {
                    if !by_name.contains_key(&m.name) {
                        errors.push(ConfigError::at(
                            &shown,
                            None,
                            Some(format!("models.{}", m.name)),
                            no_model(&m.name, by_name.keys()),
                        ));
                    }
                    continue;
                };
                hasher.update(serde_json::to_vec(&m.tests).unwrap_or_default());
                model.description = m.description;
                if let Some(c) = m.config {
                    hasher.update(serde_json::to_vec(&c).unwrap_or_default());
                    yaml_config.insert(m.name.clone(), c);
                }
                for t in &m.tests {
                    match model_test(t, &shown) {
                        Ok(test) => model.tests.push(test),
                        Err(msg) => errors.push(ConfigError::at(
                            &shown,
                            None,
                            Some(format!("models.{}.tests", m.name)),
                            msg,
                        )),
                    }
                }
                for c in m.columns {
                    hasher.update(serde_json::to_vec(&c.tests).unwrap_or_default());
                    for t in &c.tests {
                        match column_test(&c.name, t, &shown) {
                            Ok(test) => model.tests.push(test),
                            Err(msg) => errors.push(ConfigError::at(
                                &shown,
                                None,
                                Some(format!("models.{}.columns.{}.tests", m.name, c.name)),
                                msg,
                            )),
                        }
                    }
                }
            }
            for u in raw.unit_tests {
                if !by_name.contains_key(&u.model) {
                    errors.push(ConfigError::at(
                        &shown,
                        None,
                        Some(format!("unit_tests.{}.model", u.name)),
                        no_model(&u.model, by_name.keys()),
                    ));
                    continue;
                }
                let mut given = Vec::new();
                for g in u.given {
                    match parse_relation(&g.input) {
                        Some(dep) => given.push((dep, g.rows)),
                        None => errors.push(ConfigError::at(
                            &shown,
                            None,
                            Some(format!("unit_tests.{}.given", u.name)),
                            format!(
                                "input '{}' is not ref('model') or source('source', 'table')",
                                g.input
                            ),
                        )),
                    }
                }
                unit_tests.push(UnitTest {
                    name: u.name,
                    model: u.model,
                    given,
                    expect: u.expect.rows,
                    file: shown.clone(),
                });
            }
        }

        // Custom SQL tests: attached to every model they ref.
        let mut custom: Vec<(String, PathBuf, Vec<String>)> = Vec::new();
        for p in files(&root.join(TESTS_DIR), &["sql"]) {
            let shown = rel(root, &p);
            let template = shown.to_string_lossy().into_owned();
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            if let Err(e) = renderer.add(&template, &text) {
                errors.push(render_error(e));
                continue;
            }
            let ctx = RenderCtx {
                resolver: resolver.clone(),
                dialect: Dialect::DataFusion,
                is_incremental: false,
                this: None,
                vars: vars.clone(),
                extra: Default::default(),
            };
            match renderer.render(&template, &ctx) {
                Ok(r) => {
                    let refs: Vec<String> = r
                        .deps
                        .iter()
                        .filter_map(|d| match d {
                            Dep::Ref { name } => Some(name.clone()),
                            Dep::Source { .. } => None,
                        })
                        .collect();
                    if refs.is_empty() {
                        errors.push(ConfigError::at(
                            &shown,
                            None,
                            None,
                            "a custom test must ref('...') the model it tests".into(),
                        ));
                    }
                    custom.push((template, shown, refs));
                }
                Err(e) => errors.push(render_error(e)),
            }
        }
        for (template, shown, refs) in custom {
            for r in refs {
                if let Some((m, _, hasher)) = models.get_mut(&r) {
                    hasher.update(template.as_bytes());
                    m.tests.push(DataTest {
                        name: name_of(&shown),
                        kind: TestKind::Custom {
                            template: template.clone(),
                        },
                        file: shown.clone(),
                    });
                }
            }
        }

        // Config: SQL's config(...) over the YAML's.
        let mut out = BTreeMap::new();
        for (name, (mut model, sql_config, hasher)) in models {
            let mut config: BTreeMap<String, Json> = yaml_config
                .remove(&name)
                .map(|c| c.into_iter().collect())
                .unwrap_or_default();
            config.extend(sql_config);
            match materialization(&config) {
                Ok(m) => model.materialized = m,
                Err(msg) => {
                    errors.push(ConfigError::at(
                        &model.file,
                        None,
                        Some("config".into()),
                        format!("model {name}: {msg}"),
                    ));
                    continue;
                }
            }
            model.tags = match config.get("tags") {
                None => Vec::new(),
                Some(Json::String(s)) => vec![s.clone()],
                Some(Json::Array(a)) => a
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
                Some(other) => {
                    errors.push(ConfigError::at(
                        &model.file,
                        None,
                        Some("config.tags".into()),
                        format!(
                            "model {name}: tags are a string or a list of strings, not {other}"
                        ),
                    ));
                    Vec::new()
                }
            };
            let mut hasher = hasher;
            hasher.update(serde_json::to_vec(&config).unwrap_or_default());
            model.checksum = hex::encode(hasher.finalize());
            out.insert(name, model);
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let dag = match Dag::new(&out) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(ConfigError::at(
                    Path::new(MODELS_DIR),
                    None,
                    None,
                    e.to_string(),
                ));
                None
            }
        };
        match dag {
            Some(dag) if errors.is_empty() => Ok(Models {
                models: out,
                dag,
                unit_tests,
                renderer,
                vars,
                sources,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// A model by name; unknown, it is [`floe_core::Error::NotFound`] with a suggestion.
    pub fn get(&self, name: &str) -> floe_core::Result<&Model> {
        self.models
            .get(name)
            .ok_or_else(|| floe_core::Error::NotFound(no_model(name, self.models.keys())))
    }
}

/// "there is no model 'x' (did you mean 'y'?)".
fn no_model<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> String {
    format!(
        "there is no model '{name}'{}",
        did_you_mean(name, known.map(String::as_str))
    )
}

/// `ref('x')` or `source('s', 't')` written as text.
pub fn parse_relation(text: &str) -> Option<Dep> {
    let t = text.trim();
    let t = t.strip_prefix("{{").map_or(t, |s| s.trim());
    let t = t.strip_suffix("}}").map_or(t, |s| s.trim());
    let args = |inner: &str| -> Vec<String> {
        inner
            .split(',')
            .map(|a| a.trim().trim_matches(['\'', '"']).to_owned())
            .collect()
    };
    if let Some(inner) = t.strip_prefix("ref(").and_then(|s| s.strip_suffix(')')) {
        let a = args(inner);
        return (a.len() == 1 && !a[0].is_empty()).then(|| Dep::Ref { name: a[0].clone() });
    }
    if let Some(inner) = t.strip_prefix("source(").and_then(|s| s.strip_suffix(')')) {
        let a = args(inner);
        return (a.len() == 2).then(|| Dep::Source {
            source: a[0].clone(),
            table: a[1].clone(),
        });
    }
    None
}

fn strings(v: &Json) -> Option<Vec<String>> {
    match v {
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn materialization(config: &BTreeMap<String, Json>) -> Result<Materialized, String> {
    let known = [
        "materialized",
        "unique_key",
        "incremental_strategy",
        "chunk_by",
        "chunk_size",
        "tags",
        "description",
    ];
    for k in config.keys() {
        if !known.contains(&k.as_str()) {
            return Err(format!(
                "unknown config '{k}'{}; known: {}",
                did_you_mean(k, known),
                known.join(", ")
            ));
        }
    }
    let unique_key = match config.get("unique_key") {
        None => Vec::new(),
        Some(v) => strings(v).ok_or("unique_key is a column name or a list of them")?,
    };
    let kind = config
        .get("materialized")
        .map(|v| v.as_str().ok_or("materialized is a string"))
        .transpose()?
        .unwrap_or("view");
    Ok(match kind {
        "view" => Materialized::View,
        "table" => Materialized::Table,
        "incremental" => {
            let strategy = match config.get("incremental_strategy").and_then(Json::as_str) {
                None if unique_key.is_empty() => Strategy::Append,
                None | Some("merge") => Strategy::Merge,
                Some("append") => Strategy::Append,
                Some(other) => {
                    return Err(format!(
                        "incremental_strategy '{other}' is not one of append, merge"
                    ));
                }
            };
            if strategy == Strategy::Merge && unique_key.is_empty() {
                return Err("incremental_strategy merge needs a unique_key".into());
            }
            Materialized::Incremental {
                strategy,
                unique_key,
            }
        }
        "insert_by_chunk" => {
            let column = config
                .get("chunk_by")
                .and_then(Json::as_str)
                .ok_or("insert_by_chunk needs chunk_by='<column>' (a date, timestamp or integer column)")?
                .to_owned();
            let size = match config.get("chunk_size") {
                Some(Json::Number(n)) => match n.as_i64() {
                    Some(n) if n > 0 => ChunkSize::Range(n),
                    _ => return Err("chunk_size is a positive integer or a period".into()),
                },
                Some(Json::String(s)) => ChunkSize::Period(match s.as_str() {
                    "day" => Period::Day,
                    "week" => Period::Week,
                    "month" => Period::Month,
                    "year" => Period::Year,
                    other => {
                        return Err(format!(
                            "chunk_size '{other}' is not day, week, month, year or a positive integer"
                        ));
                    }
                }),
                None => {
                    return Err(
                        "insert_by_chunk needs chunk_size: day, week, month, year, or a positive integer range width".into(),
                    );
                }
                Some(other) => {
                    return Err(format!("chunk_size {other} is not a period or a number"));
                }
            };
            Materialized::InsertByChunk(ChunkSpec {
                column,
                size,
                unique_key,
            })
        }
        other => {
            return Err(format!(
                "materialized '{other}' is not one of view, table, incremental, insert_by_chunk{}",
                did_you_mean(other, ["view", "table", "incremental", "insert_by_chunk"])
            ));
        }
    })
}

/// A test entry: `name` or `{name: {args}}`.
fn test_entry(v: &Json) -> Result<(String, serde_json::Map<String, Json>), String> {
    match v {
        Json::String(s) => Ok((s.clone(), Default::default())),
        Json::Object(m) if m.len() == 1 => {
            let (k, args) = m.iter().next().expect("one entry");
            match args {
                Json::Object(a) => Ok((k.clone(), a.clone())),
                Json::Null => Ok((k.clone(), Default::default())),
                other => Err(format!(
                    "the arguments of test '{k}' are a mapping, not {other}"
                )),
            }
        }
        other => Err(format!(
            "a test is a name (not_null) or a one-key mapping (accepted_values: {{values: [...]}}), not {other}"
        )),
    }
}

fn column_test(column: &str, v: &Json, file: &Path) -> Result<DataTest, String> {
    let (name, args) = test_entry(v)?;
    let arg = |k: &str| -> Result<String, String> {
        args.get(k)
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("test '{name}' on {column} needs `{k}:`"))
    };
    let kind = match name.as_str() {
        "not_null" => TestKind::NotNull {
            column: column.into(),
        },
        "unique" => TestKind::Unique {
            column: column.into(),
        },
        "accepted_values" => TestKind::AcceptedValues {
            column: column.into(),
            values: args
                .get("values")
                .and_then(Json::as_array)
                .cloned()
                .ok_or_else(|| format!("accepted_values on {column} needs `values: [...]`"))?,
        },
        "relationships" => {
            let to = arg("to")?;
            if parse_relation(&to).is_none() {
                return Err(format!(
                    "relationships on {column}: `to: {to}` is not ref('model') or source('source', 'table')"
                ));
            }
            TestKind::Relationships {
                column: column.into(),
                to,
                field: arg("field")?,
            }
        }
        other => {
            return Err(format!(
                "unknown column test '{other}'{}; column tests: not_null, unique, accepted_values, relationships",
                did_you_mean(
                    other,
                    ["not_null", "unique", "accepted_values", "relationships"]
                )
            ));
        }
    };
    Ok(DataTest {
        name: format!("{name}({column})"),
        kind,
        file: file.to_owned(),
    })
}

fn model_test(v: &Json, file: &Path) -> Result<DataTest, String> {
    let (name, args) = test_entry(v)?;
    match name.as_str() {
        "row_count" => {
            let compare_to = args
                .get("compare_to")
                .and_then(Json::as_str)
                .ok_or("row_count needs `compare_to: ref('x')` or source('s', 't')")?
                .to_owned();
            if parse_relation(&compare_to).is_none() {
                return Err(format!(
                    "row_count: `compare_to: {compare_to}` is not ref('model') or source('source', 'table')"
                ));
            }
            Ok(DataTest {
                name: format!("row_count({compare_to})"),
                kind: TestKind::RowCount {
                    compare_to,
                    filter: args.get("where").and_then(Json::as_str).map(str::to_owned),
                },
                file: file.to_owned(),
            })
        }
        other => Err(format!(
            "unknown model test '{other}'{}; model tests: row_count (column tests go under columns:, custom SQL tests under tests/)",
            did_you_mean(other, ["row_count"])
        )),
    }
}
