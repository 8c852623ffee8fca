//! A floe project's configuration: `floe.yaml` and `tables/*.yaml`.
//!
//! One file (over 700 lines) because the validated model and the checks between its parts
//! (tables against floe.yaml, keys against columns, expectations against types) are one
//! loader; the raw format, the types and the errors are modules of their own.
//!
//! Loading checks everything it can before any data moves and reports every problem at once,
//! each naming the file, line, column and field, with a suggestion for likely typos.
//!
//! # Layout
//! - `raw`: the files as written (serde structs, unknown keys rejected, positions kept).
//! - [`types`]: column types.
//! - [`error`]: located errors.
//! - this module: the validated model ([`Project`], [`TableConfig`]) and the loader.

mod error;
pub mod expect;
mod raw;
pub mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{Field, Schema, SchemaRef};
use floe_core::id::check_identifier;
use floe_core::{Layer, TableRef};
use serde_saphyr::{Location, Spanned};

pub use error::{ConfigError, ConfigErrors, did_you_mean, suggest};
pub use expect::{Check, Expectation, OnFail};
pub use types::{ColumnType, TypeError};

/// Columns floe adds to bronze and silver tables; a source column may not use these names.
pub const RESERVED_COLUMNS: &[&str] = &[
    "valid_from",
    "valid_to",
    "is_current",
    "is_deleted",
    "_row_hash",
    "_batch_id",
    "_extract_ts",
    "_landed_at",
    "_source_file",
    "_row_number",
    RESCUED_COLUMN,
];

/// The project file's name.
pub const PROJECT_FILE: &str = "floe.yaml";
/// The folder of table configs.
pub const TABLES_DIR: &str = "tables";

/// Which engine runs the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion over Iceberg tables on local disk (the default).
    Local,
    /// Amazon Athena over Iceberg tables in the Glue catalog.
    Athena,
}

/// `floe.yaml`, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project's name.
    pub name: String,
    /// The engine.
    pub engine: Engine,
    /// The embedded lake's folder (absolute).
    pub lake_dir: PathBuf,
    /// How many SQL statements may run at once.
    pub concurrency: u32,
    /// `floe maintain` keeps every snapshot time travel can reach this many days back
    /// (`maintenance.keep_snapshots_days`, default 7).
    pub keep_snapshots_days: u32,
    /// AWS settings, required when `engine: athena`.
    pub athena: Option<AthenaSettings>,
    /// Where failure notifications go.
    pub webhook: Option<String>,
    /// Project variables, read in models with `var('name')`.
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// The `athena:` section of `floe.yaml`.
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    /// AWS region.
    pub region: String,
    /// Athena workgroup.
    pub workgroup: String,
    /// s3:// location for query results.
    pub output_location: String,
    /// The landing bucket.
    pub landing_bucket: String,
    /// s3:// location of the Iceberg warehouse.
    pub lake_location: String,
    /// An endpoint override (a local AWS stand-in).
    pub endpoint_url: Option<String>,
    /// Price per TB scanned, for cost estimates (default 5.0).
    pub price_per_tb_usd: f64,
    /// The deployed stack's name prefix (`floe-<stage>`, default `floe-dev`): `floe up` runs
    /// the stage services against its queues `<stack>-<stage>` and their `-dlq`.
    pub stack: String,
    /// Where the landing service puts refused files (default `<stack>-quarantine`).
    pub quarantine_bucket: String,
    /// Before every namespace in a Glue database's name (the stack's `glueDatabasePrefix`:
    /// `floe_dev_` for a dev stack, empty for prod; default empty).
    pub database_prefix: String,
}

/// How a table's extracts are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// Each extract is a full snapshot of the table.
    Full,
    /// Each extract holds change rows (insert, update, delete) with a change timestamp.
    Cdc,
}

/// File formats the landing service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Jsonl,
}

/// What a full load does with a key missing from an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletesPolicy {
    /// Nothing: the key's current version stays current.
    Ignore,
    /// Close the current version at the extract time.
    Invalidate,
    /// Close it and add a version flagged `is_deleted` from the extract time.
    NewRecord,
}

/// What floe does when a table's shape changes: its config against the lake, or a file against
/// its config. Whatever the policy, a change that would lose or reinterpret stored values
/// (narrowing a type, string to number) is refused before anything is written, and `floe
/// migrate` rewrites the history under the new config on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaChangePolicy {
    /// The default. The lake follows the config: a column added to the config is added to bronze
    /// and silver (older versions NULL), a type widened as Iceberg allows (int to bigint, float to
    /// double, a larger decimal precision) is widened in place, and a column removed from the
    /// config is kept with its history and NULL from the next extract. A file may lack a nullable
    /// column (NULL); a column the file has and the config does not declare refuses the file.
    #[default]
    Evolve,
    /// Nothing changes shape implicitly: a config that differs from the lake is refused until
    /// `floe migrate` applies it, and a file must have exactly the declared columns.
    Fail,
    /// As `evolve`, and the columns a file has beyond the config are kept, as one JSON object a
    /// row, in the `_rescued` column of bronze and silver.
    Rescue,
}

impl SchemaChangePolicy {
    /// The name in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaChangePolicy::Evolve => "evolve",
            SchemaChangePolicy::Fail => "fail",
            SchemaChangePolicy::Rescue => "rescue",
        }
    }
}

/// Which value columns open a new version of a key when they change (`track_history:` or
/// `ignore_changes:`). A change confined to the other columns updates the key's current version
/// in place (SCD1 on those columns): a version then holds the values of the last extract (or
/// change) it was current for, and a closed version is never changed again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HistoryColumns {
    /// Every value column (the default): any change opens a version.
    #[default]
    All,
    /// `track_history: [..]`: only these columns; a column added later is not tracked.
    Only(Vec<String>),
    /// `ignore_changes: [..]`: every value column but these; a column added later is tracked.
    Except(Vec<String>),
}

/// The column that keeps a file's undeclared columns under `schema_change: rescue`.
pub const RESCUED_COLUMN: &str = "_rescued";

/// The change columns of a cdc table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcColumns {
    /// Column holding I, U or D.
    pub operation_column: String,
    /// Column holding the change time.
    pub timestamp_column: String,
    /// The operation value that marks a truncate of the whole table at its change time (every
    /// key's current version closes then), as some change-capture tools send; the marker's key
    /// columns may be empty.
    pub truncate: Option<String>,
}

/// One column of a source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnConfig {
    /// The standardised (snake_case) name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Whether NULL is allowed (default true; false for key columns).
    pub nullable: bool,
    /// Free text for docs.
    pub description: Option<String>,
}

/// One source table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// The source system.
    pub source: String,
    /// The table name.
    pub name: String,
    /// Free text for docs.
    pub description: Option<String>,
    /// Key columns, in order.
    pub primary_key: Vec<String>,
    /// Full or cdc.
    pub load: LoadKind,
    /// File format.
    pub format: FileFormat,
    /// What a missing key means (full loads).
    pub deletes: DeletesPolicy,
    /// Keep the latest row per key by this column instead of failing on a duplicate key.
    pub dedupe_by: Option<String>,
    /// Change columns (cdc loads).
    pub cdc: Option<CdcColumns>,
    /// Largest accepted file, in MiB.
    pub max_file_mb: u64,
    /// What a change of shape does (see [`SchemaChangePolicy`]).
    pub schema_change: SchemaChangePolicy,
    /// Row-level expectations, checked when a file lands.
    pub expectations: Vec<Expectation>,
    /// Cdc loads: a NULL in a change row keeps the key's previous value (a source that sends
    /// only the changed columns), until the key is deleted.
    pub ignore_null_updates: bool,
    /// Which value columns open a version when they change (see [`HistoryColumns`]).
    pub history: HistoryColumns,
    /// Columns in declared order.
    pub columns: Vec<ColumnConfig>,
    /// Model templates applied to this table (`templates/<name>.sql`), each with its parameters
    /// (a YAML mapping, empty when none are given).
    pub generate: BTreeMap<String, serde_json::Value>,
    /// The file that declared it.
    pub file: PathBuf,
}

impl TableConfig {
    /// Whether a change of `column` (a value column) opens a new version, or updates the
    /// current one in place (see [`HistoryColumns`]).
    pub fn tracks(&self, column: &str) -> bool {
        match &self.history {
            HistoryColumns::All => true,
            HistoryColumns::Only(cols) => cols.iter().any(|c| c == column),
            HistoryColumns::Except(cols) => !cols.iter().any(|c| c == column),
        }
    }

    /// `source.table`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.source, self.name)
    }

    /// The table in a layer, for example `bronze_nomis.people`.
    pub fn table_ref(&self, layer: Layer) -> TableRef {
        TableRef::in_layer(layer, &self.source, &self.name)
            .expect("source and table names are checked when the config loads")
    }

    /// The declared columns as an Arrow schema.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnConfig> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub root: PathBuf,
    /// `floe.yaml`.
    pub settings: Settings,
    /// Tables by `source.table`, in name order.
    pub tables: BTreeMap<String, TableConfig>,
}

impl Project {
    /// Loads and checks the project in `root`, reporting every problem found.
    pub fn load(root: &Path) -> Result<Project, ConfigErrors> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        let mut errors = Vec::new();
        let settings = load_settings(&root, &mut errors);
        let athena = settings
            .as_ref()
            .is_some_and(|s| s.engine == Engine::Athena);
        let tables = load_tables(&root, &mut errors, athena);
        match settings {
            Some(settings) if errors.is_empty() => Ok(Project {
                root,
                settings,
                tables,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// A table by `source.table`, with a suggestion when it is unknown.
    pub fn table(&self, qualified: &str) -> Result<&TableConfig, floe_core::Error> {
        self.tables.get(qualified).ok_or_else(|| {
            let hint = did_you_mean(qualified, self.tables.keys().map(String::as_str));
            floe_core::Error::Config(format!(
                "unknown table '{qualified}'{hint}; declared tables: {}",
                if self.tables.is_empty() {
                    "none (add one under tables/)".to_owned()
                } else {
                    self.tables.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ))
        })
    }
}

fn loc<T>(s: &Spanned<T>) -> Option<(u64, u64)> {
    location(&s.referenced)
}

fn location(l: &Location) -> Option<(u64, u64)> {
    (l.line() > 0).then(|| (l.line(), l.column()))
}

/// Parses one YAML file into `T`, turning parser and serde errors into errors located at the
/// file (`shown`, as the user knows it), line, column and field.
pub fn parse_file<T: serde::de::DeserializeOwned>(
    file: &Path,
    shown: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<(T, String)> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            errors.push(ConfigError::at(
                shown,
                None,
                None,
                format!("cannot read: {e}"),
            ));
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() as u64;
            errors.push(ConfigError::at(
                shown,
                Some((line, 1)),
                None,
                "not UTF-8 text: save the file as UTF-8".into(),
            ));
            return None;
        }
    };
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str(&text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    match result {
        Ok(v) => Some((v, text)),
        Err(e) => {
            errors.push(yaml_error(shown, &path, &e));
            None
        }
    }
}

fn yaml_error(shown: &Path, path: &str, e: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::Error as E;
    let inner = e.without_snippet();
    let position = inner.location().as_ref().and_then(location);
    // `Spanned<T>` shows up in serde paths as a `value` segment the user never wrote.
    let path = path.replace(".value.", ".");
    let path = path.strip_suffix(".value").unwrap_or(&path);
    let field = (!path.is_empty() && path != ".").then(|| path.to_owned());
    let message = match inner {
        E::SerdeUnknownField {
            field: name,
            expected,
            ..
        } => {
            let hint = did_you_mean(name, expected.iter().copied());
            format!(
                "unknown key '{name}'{hint}; allowed keys here: {}",
                expected.join(", ")
            )
        }
        E::SerdeMissingField { field: name, .. } => {
            format!("required key '{name}' is missing")
        }
        E::DuplicateMappingKey { key, .. } => match key {
            Some(k) => {
                format!("'{k}' is given twice here: keep one (YAML would keep only the last)")
            }
            None => "a key is given twice here: keep one (YAML would keep only the last)".into(),
        },
        other => strip_location(&other.to_string()),
    };
    // The duplicate's path ends in an unnamed segment (`?`): name the key instead.
    let field = match (inner, field) {
        (E::DuplicateMappingKey { key: Some(k), .. }, Some(p)) if p.ends_with(".?") => {
            Some(format!("{}.{k}", &p[..p.len() - 2]))
        }
        (_, field) => field,
    };
    // serde_path_to_error names the parent for an unknown key: point at the key itself.
    let field = match inner {
        E::SerdeUnknownField { field: name, .. } => Some(match field {
            Some(p) if p.ends_with(&format!(".{name}")) => p,
            Some(p) => format!("{p}.{name}"),
            None => name.clone(),
        }),
        _ => field,
    };
    ConfigError::at(shown, position, field, message)
}

/// Drops serde-saphyr's trailing " at line X, column Y": the error prints its own position.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn relative(root: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(root).unwrap_or(file).to_owned()
}

fn load_settings(root: &Path, errors: &mut Vec<ConfigError>) -> Option<Settings> {
    let file = root.join(PROJECT_FILE);
    let shown = PathBuf::from(PROJECT_FILE);
    if !file.exists() {
        errors.push(ConfigError::at(
            &shown,
            None,
            None,
            format!(
                "not found in {}: run `floe init {}` to create a project, or pass --project DIR",
                root.display(),
                root.display()
            ),
        ));
        return None;
    }
    let (raw, _): (raw::RawProject, _) = parse_file(&file, &shown, errors)?;
    let before = errors.len();
    let mut err = |at: Option<(u64, u64)>, field: &str, msg: String| {
        errors.push(ConfigError::at(&shown, at, Some(field.into()), msg));
    };
    if let Err(e) = check_identifier("project", &raw.name.value) {
        err(loc(&raw.name), "name", e.to_string());
    }
    let engine = match raw.engine.as_ref().map(|e| e.value.as_str()) {
        None | Some("local") => Engine::Local,
        Some("athena") => Engine::Athena,
        Some(other) => {
            let hint = did_you_mean(other, ["local", "athena"]);
            err(
                raw.engine.as_ref().and_then(loc),
                "engine",
                format!("unknown engine '{other}'{hint}; use local or athena"),
            );
            Engine::Local
        }
    };
    let concurrency = raw.concurrency.as_ref().map(|c| c.value).unwrap_or(4);
    if concurrency == 0 {
        err(
            raw.concurrency.as_ref().and_then(loc),
            "concurrency",
            "must be at least 1".into(),
        );
    }
    let keep_snapshots_days = raw
        .maintenance
        .as_ref()
        .and_then(|m| m.keep_snapshots_days.as_ref())
        .map_or(7, |d| d.value);
    if keep_snapshots_days == 0 {
        err(
            raw.maintenance
                .as_ref()
                .and_then(|m| m.keep_snapshots_days.as_ref())
                .and_then(loc),
            "maintenance.keep_snapshots_days",
            "must be at least 1 (a day of time travel; `floe maintain --keep-for` takes less for one run)"
                .into(),
        );
    }
    let athena = raw.athena.map(|a| AthenaSettings {
        region: a.region.value,
        workgroup: a.workgroup.value,
        output_location: a.output_location.value,
        landing_bucket: a.landing_bucket.value,
        lake_location: a.lake_location.value,
        endpoint_url: a.endpoint_url.map(|e| e.value),
        price_per_tb_usd: a.price_per_tb_usd.unwrap_or(5.0),
        quarantine_bucket: a.quarantine_bucket.map(|v| v.value).unwrap_or_else(|| {
            format!(
                "{}-quarantine",
                a.stack.as_ref().map_or("floe-dev", |s| s.value.as_str())
            )
        }),
        stack: a
            .stack
            .map(|v| v.value)
            .unwrap_or_else(|| "floe-dev".into()),
        database_prefix: a.database_prefix.map(|v| v.value).unwrap_or_default(),
    });
    if engine == Engine::Athena && athena.is_none() {
        err(
            raw.engine.as_ref().and_then(loc),
            "engine",
            "engine is athena but there is no `athena:` section (region, workgroup, \
             output_location, landing_bucket, lake_location)"
                .into(),
        );
    }
    let dir = |v: Option<Spanned<String>>, default: &str| {
        root.join(v.map(|s| s.value).unwrap_or_else(|| default.into()))
    };
    let settings = Settings {
        name: raw.name.value,
        engine,
        lake_dir: dir(raw.lake, "lake"),
        concurrency,
        keep_snapshots_days,
        athena,
        webhook: raw.notify.and_then(|n| n.webhook).map(|w| w.value),
        vars: raw.vars.unwrap_or_default().into_iter().collect(),
    };
    (errors.len() == before).then_some(settings)
}

fn load_tables(
    root: &Path,
    errors: &mut Vec<ConfigError>,
    athena: bool,
) -> BTreeMap<String, TableConfig> {
    let dir = root.join(TABLES_DIR);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let mut tables: BTreeMap<String, TableConfig> = BTreeMap::new();
    // Where each table was first declared, to report duplicates with both places.
    let mut declared: BTreeMap<String, (PathBuf, Option<(u64, u64)>)> = BTreeMap::new();
    for file in files {
        let shown = relative(root, &file);
        let Some((raw, text)) = parse_file::<raw::RawSource>(&file, &shown, errors) else {
            continue;
        };
        for table in validate_source(raw, &text, &shown, errors) {
            let (t, at) = table;
            let key = t.qualified_name();
            if athena {
                for c in &t.columns {
                    if matches!(c.ty, ColumnType::Tinyint | ColumnType::Smallint) {
                        errors.push(ConfigError::at(
                            &shown,
                            key_position(&text, &c.name, at.map(|p| p.0).unwrap_or(0)),
                            Some(format!("tables.{}.columns.{}.type", t.name, c.name)),
                            format!(
                                "{} columns cannot be stored by Athena's Iceberg tables \
                                 (engine: athena); declare it int",
                                c.ty
                            ),
                        ));
                    }
                }
            }
            if let Some((first_file, first_at)) = declared.get(&key) {
                let first = match first_at {
                    Some((l, _)) => format!("{}:{l}", first_file.display()),
                    None => first_file.display().to_string(),
                };
                errors.push(ConfigError::at(
                    &shown,
                    at,
                    Some(format!("tables.{}", t.name)),
                    format!("table '{key}' is declared twice (first at {first}); keep one"),
                ));
                continue;
            }
            declared.insert(key.clone(), (shown.clone(), at));
            tables.insert(key, t);
        }
    }
    tables
}

/// The position of the first `key:` after line `after` (1-based): map keys are plain strings in
/// the raw structs, so their lines come from the text.
fn key_position(text: &str, key: &str, after: u64) -> Option<(u64, u64)> {
    text.lines()
        .enumerate()
        .skip(after as usize)
        .find_map(|(i, line)| {
            let body = line.trim_start();
            let indent = (line.len() - body.len()) as u64;
            let unquoted = body.strip_prefix(key);
            let quoted = body
                .strip_prefix('"')
                .and_then(|b| b.strip_prefix(key))
                .and_then(|b| b.strip_prefix('"'))
                .or_else(|| {
                    body.strip_prefix('\'')
                        .and_then(|b| b.strip_prefix(key))
                        .and_then(|b| b.strip_prefix('\''))
                });
            let rest = unquoted.or(quoted)?;
            rest.trim_start()
                .starts_with(':')
                .then_some((i as u64 + 1, indent + 1))
        })
}

type ErrFn<'a> = dyn FnMut(Option<(u64, u64)>, String, String) + 'a;

fn on_fail(raw: Option<&Spanned<String>>, at: &str, err: &mut ErrFn) -> Option<OnFail> {
    match raw {
        None => Some(OnFail::default()),
        Some(v) => OnFail::parse(&v.value).or_else(|| {
            let hint = did_you_mean(&v.value, ["quarantine_file", "drop", "warn"]);
            err(
                loc(v),
                format!("{at}.on_fail"),
                format!(
                    "unknown on_fail '{}'{hint}; use quarantine_file (the default), drop or warn",
                    v.value
                ),
            );
            None
        }),
    }
}

/// A column's `expect:` as expectations; false (after reporting) when it is not valid.
fn column_expectations(
    column: &ColumnConfig,
    raw: &raw::RawExpect,
    at: &str,
    out: &mut Vec<Expectation>,
    err: &mut ErrFn,
) -> bool {
    let Some(on_fail) = on_fail(raw.on_fail.as_ref(), at, err) else {
        return false;
    };
    let mut ok = true;
    let before = out.len();
    let mut push = |kind: &str, check: Check| {
        out.push(Expectation {
            name: format!("{}_{kind}", column.name),
            column: Some(column.name.clone()),
            check,
            on_fail,
        })
    };
    if raw.not_null.as_ref().is_some_and(|v| v.value) {
        push("not_null", Check::NotNull);
    }
    if let Some(r) = &raw.range {
        let bad: Vec<String> = [&r.value.min, &r.value.max]
            .into_iter()
            .flatten()
            .filter_map(|v| expect::literal_problem(column.ty, v))
            .collect();
        if r.value.min.is_none() && r.value.max.is_none() {
            err(
                loc(r),
                format!("{at}.range"),
                "give min, max or both".into(),
            );
            ok = false;
        } else if !bad.is_empty() {
            err(
                loc(r),
                format!("{at}.range"),
                format!(
                    "{}: a range of a {} column takes {} bounds",
                    bad.join("; "),
                    column.ty,
                    if matches!(column.ty, ColumnType::Date | ColumnType::Timestamp) {
                        "quoted date or timestamp"
                    } else {
                        "numeric"
                    }
                ),
            );
            ok = false;
        } else {
            push(
                "range",
                Check::Range {
                    min: r.value.min.clone(),
                    max: r.value.max.clone(),
                },
            );
        }
    }
    if let Some(r) = &raw.regex {
        if column.ty != ColumnType::String {
            err(
                loc(r),
                format!("{at}.regex"),
                format!(
                    "regex checks text: '{}' is a {} column",
                    column.name, column.ty
                ),
            );
            ok = false;
        } else if let Err(e) = regex::Regex::new(&r.value) {
            err(
                loc(r),
                format!("{at}.regex"),
                format!("not a valid regular expression: {e}"),
            );
            ok = false;
        } else {
            push("regex", Check::Regex(r.value.clone()));
        }
    }
    if let Some(v) = &raw.accepted_values {
        let bad: Vec<String> = v
            .value
            .iter()
            .filter_map(|x| expect::literal_problem(column.ty, x))
            .collect();
        if v.value.is_empty() {
            err(
                loc(v),
                format!("{at}.accepted_values"),
                "list at least one value".into(),
            );
            ok = false;
        } else if !bad.is_empty() {
            err(loc(v), format!("{at}.accepted_values"), bad.join("; "));
            ok = false;
        } else {
            push("accepted_values", Check::AcceptedValues(v.value.clone()));
        }
    }
    if ok && out.len() == before {
        err(
            None,
            at.to_owned(),
            "an expect: needs a check: not_null, range, regex or accepted_values".into(),
        );
        ok = false;
    }
    ok
}

/// One entry of a table's `expect:` list; false (after reporting) when it is not valid.
fn table_expectation(
    i: usize,
    raw: &raw::RawTableExpect,
    at: &str,
    out: &mut Vec<Expectation>,
    err: &mut ErrFn,
) -> bool {
    let at = format!("{at}[{i}]");
    let Some(on_fail) = on_fail(raw.on_fail.as_ref(), &at, err) else {
        return false;
    };
    let name = raw
        .name
        .as_ref()
        .map_or_else(|| format!("expect_{}", i + 1), |n| n.value.clone());
    if let Some(n) = &raw.name
        && let Err(e) = check_identifier("expectation", &n.value)
    {
        err(loc(n), format!("{at}.name"), e.to_string());
        return false;
    }
    if out.iter().any(|e| e.name == name) {
        err(
            raw.name.as_ref().and_then(loc),
            format!("{at}.name"),
            format!("two expectations are called '{name}': give each its own name"),
        );
        return false;
    }
    if raw.sql.value.trim().is_empty() {
        err(
            loc(&raw.sql),
            format!("{at}.sql"),
            "write a condition that is true for a good row".into(),
        );
        return false;
    }
    out.push(Expectation {
        name,
        column: None,
        check: Check::Sql(raw.sql.value.clone()),
        on_fail,
    });
    true
}

fn validate_source(
    raw: raw::RawSource,
    text: &str,
    shown: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<(TableConfig, Option<(u64, u64)>)> {
    let mut out = Vec::new();
    let mut err = |at: Option<(u64, u64)>, field: String, msg: String| {
        errors.push(ConfigError::at(shown, at, Some(field), msg));
    };
    let source = raw.source.value.clone();
    if let Err(e) = check_identifier("source", &source) {
        err(loc(&raw.source), "source".into(), e.to_string());
        return out;
    }
    let tables_line = key_position(text, "tables", 0).map(|p| p.0).unwrap_or(0);
    for (name, t) in raw.tables {
        let name_at = key_position(text, &name, tables_line);
        let field = |f: &str| format!("tables.{name}.{f}");
        if let Err(e) = check_identifier("table", &name) {
            err(name_at, format!("tables.{name}"), e.to_string());
            continue;
        }
        let mut ok = true;
        let mut columns = Vec::new();
        for (col, c) in &t.columns.value {
            if let Err(e) = check_identifier("column", col) {
                let at = key_position(text, col, name_at.map(|p| p.0).unwrap_or(tables_line));
                err(at, field(&format!("columns.{col}")), e.to_string());
                ok = false;
                continue;
            }
            match ColumnType::parse(&c.ty.value) {
                Ok(ty) => columns.push(ColumnConfig {
                    name: col.clone(),
                    ty,
                    nullable: c.nullable.unwrap_or(true),
                    description: c.description.clone(),
                }),
                Err(e) => {
                    err(
                        loc(&c.ty),
                        field(&format!("columns.{col}.type")),
                        e.to_string(),
                    );
                    ok = false;
                }
            }
        }
        if t.columns.value.is_empty() {
            err(
                loc(&t.columns),
                field("columns"),
                "a table needs at least one column".into(),
            );
            ok = false;
        }
        let mut expectations = Vec::new();
        for (col, c) in &t.columns.value {
            let (Some(raw), Some(declared)) = (&c.expect, columns.iter().find(|d| &d.name == col))
            else {
                continue;
            };
            ok &= column_expectations(
                declared,
                raw,
                &field(&format!("columns.{col}.expect")),
                &mut expectations,
                &mut err,
            );
        }
        for (i, raw) in t.expect.iter().flatten().enumerate() {
            ok &= table_expectation(i, raw, &field("expect"), &mut expectations, &mut err);
        }
        let names: Vec<&str> = t.columns.value.keys().map(String::as_str).collect();
        let column_ref = |what: &str,
                          v: &Spanned<String>,
                          err: &mut dyn FnMut(Option<(u64, u64)>, String, String)|
         -> bool {
            if names.contains(&v.value.as_str()) {
                true
            } else {
                let hint = did_you_mean(&v.value, names.iter().copied());
                err(
                    loc(v),
                    field(what),
                    format!(
                        "'{}' is not a column of {source}.{name}{hint}; its columns are: {}",
                        v.value,
                        names.join(", ")
                    ),
                );
                false
            }
        };
        if t.primary_key.value.is_empty() {
            err(
                loc(&t.primary_key),
                field("primary_key"),
                "list at least one key column".into(),
            );
            ok = false;
        }
        for (i, k) in t.primary_key.value.iter().enumerate() {
            ok &= column_ref(&format!("primary_key[{i}]"), k, &mut err);
        }
        if let Some(d) = &t.dedupe_by {
            ok &= column_ref("dedupe_by", d, &mut err);
        }
        if let Some(c) = &t.cdc {
            ok &= column_ref("cdc.operation_column", &c.operation_column, &mut err);
            ok &= column_ref("cdc.timestamp_column", &c.timestamp_column, &mut err);
        }
        let load = match t.load.as_ref().map(|l| l.value.as_str()) {
            None | Some("full") => LoadKind::Full,
            Some("cdc") => LoadKind::Cdc,
            Some(other) => {
                let hint = did_you_mean(other, ["full", "cdc"]);
                err(
                    t.load.as_ref().and_then(loc),
                    field("load"),
                    format!("unknown load '{other}'{hint}; use full or cdc"),
                );
                ok = false;
                LoadKind::Full
            }
        };
        if load == LoadKind::Cdc && t.cdc.is_none() {
            err(
                t.load.as_ref().and_then(loc),
                field("load"),
                "a cdc table needs `cdc: {operation_column: ..., timestamp_column: ...}`".into(),
            );
            ok = false;
        }
        if let (LoadKind::Full, Some(c)) = (load, &t.cdc) {
            err(
                loc(&c.operation_column),
                field("cdc"),
                "`cdc:` only applies to `load: cdc` tables: set `load: cdc` or remove it".into(),
            );
            ok = false;
        }
        let ignore_null_updates = match (&t.ignore_null_updates, load) {
            (Some(v), LoadKind::Full) if v.value => {
                err(
                    loc(v),
                    field("ignore_null_updates"),
                    "ignore_null_updates applies to `load: cdc` tables (a full extract's NULL is \
                     the value): remove it or set `load: cdc`"
                        .into(),
                );
                ok = false;
                false
            }
            (v, _) => v.as_ref().is_some_and(|v| v.value),
        };
        if let (LoadKind::Cdc, Some(d)) = (load, &t.dedupe_by) {
            err(
                loc(d),
                field("dedupe_by"),
                "a cdc table keeps every change: remove dedupe_by (it applies to full loads)"
                    .into(),
            );
            ok = false;
        }
        if let Some(v) = t.cdc.as_ref().and_then(|c| c.truncate_value.as_ref())
            && matches!(
                v.value.trim().to_ascii_uppercase().as_str(),
                "" | "I" | "U" | "D"
            )
        {
            err(
                loc(v),
                field("cdc.truncate_value"),
                format!(
                    "'{}' cannot mark a truncate: I, U and D are the change operations; use the \
                     value your source writes for a truncate (for example T)",
                    v.value
                ),
            );
            ok = false;
        }
        if let (LoadKind::Cdc, Some(c)) = (load, &t.cdc) {
            for (what, v) in [
                ("operation_column", &c.operation_column),
                ("timestamp_column", &c.timestamp_column),
            ] {
                if t.primary_key.value.iter().any(|k| k.value == v.value) {
                    err(
                        loc(v),
                        field(&format!("cdc.{what}")),
                        format!(
                            "'{}' is in the primary key; the change columns must not be",
                            v.value
                        ),
                    );
                    ok = false;
                }
            }
            if let Some(ts) = columns
                .iter()
                .find(|col| col.name == c.timestamp_column.value)
                && !matches!(ts.ty, ColumnType::Timestamp | ColumnType::Date)
            {
                err(
                    loc(&c.timestamp_column),
                    field("cdc.timestamp_column"),
                    format!(
                        "'{}' is a {}; the change time must be a timestamp or a date",
                        ts.name, ts.ty
                    ),
                );
                ok = false;
            }
        }
        for c in &columns {
            if RESERVED_COLUMNS.contains(&c.name.as_str()) {
                let at = key_position(text, &c.name, name_at.map(|p| p.0).unwrap_or(tables_line));
                err(
                    at,
                    field(&format!("columns.{}", c.name)),
                    format!(
                        "'{}' is a column floe adds to bronze or silver ({}); rename the source column",
                        c.name,
                        RESERVED_COLUMNS.join(", ")
                    ),
                );
                ok = false;
            }
        }
        let format = match t.format.as_ref().map(|l| l.value.as_str()) {
            None | Some("csv") => FileFormat::Csv,
            Some("parquet") => FileFormat::Parquet,
            Some("jsonl") | Some("json") => FileFormat::Jsonl,
            Some(other) => {
                let hint = did_you_mean(other, ["csv", "parquet", "jsonl"]);
                err(
                    t.format.as_ref().and_then(loc),
                    field("format"),
                    format!("unknown format '{other}'{hint}; use csv, parquet or jsonl"),
                );
                ok = false;
                FileFormat::Csv
            }
        };
        let deletes = match t.deletes.as_ref().map(|l| l.value.as_str()) {
            None | Some("ignore") => DeletesPolicy::Ignore,
            Some("invalidate") => DeletesPolicy::Invalidate,
            Some("new_record") => DeletesPolicy::NewRecord,
            Some(other) => {
                let hint = did_you_mean(other, ["ignore", "invalidate", "new_record"]);
                err(
                    t.deletes.as_ref().and_then(loc),
                    field("deletes"),
                    format!(
                        "unknown deletes policy '{other}'{hint}; use ignore, invalidate or new_record"
                    ),
                );
                ok = false;
                DeletesPolicy::Ignore
            }
        };
        let schema_change = match t.schema_change.as_ref().map(|l| l.value.as_str()) {
            None | Some("evolve") => SchemaChangePolicy::Evolve,
            Some("fail") => SchemaChangePolicy::Fail,
            Some("rescue") => SchemaChangePolicy::Rescue,
            Some(other) => {
                let hint = did_you_mean(other, ["evolve", "fail", "rescue"]);
                err(
                    t.schema_change.as_ref().and_then(loc),
                    field("schema_change"),
                    format!(
                        "unknown schema_change policy '{other}'{hint}; use evolve, fail or rescue"
                    ),
                );
                ok = false;
                SchemaChangePolicy::Evolve
            }
        };
        let history = match (&t.track_history, &t.ignore_changes) {
            (Some(_), Some(ignored)) => {
                err(
                    loc(ignored),
                    field("ignore_changes"),
                    "set track_history (the columns that open a version) or ignore_changes (the \
                     columns that do not), not both"
                        .into(),
                );
                ok = false;
                HistoryColumns::All
            }
            (None, None) => HistoryColumns::All,
            (tracked, ignored) => {
                let (what, list) = match (tracked, ignored) {
                    (Some(l), _) => ("track_history", l),
                    (_, Some(l)) => ("ignore_changes", l),
                    _ => unreachable!("one of the two is set"),
                };
                let change_cols: Vec<&str> = t
                    .cdc
                    .iter()
                    .flat_map(|c| {
                        [
                            c.operation_column.value.as_str(),
                            c.timestamp_column.value.as_str(),
                        ]
                    })
                    .collect();
                for (i, c) in list.value.iter().enumerate() {
                    let at = format!("{what}[{i}]");
                    if !column_ref(&at, c, &mut err) {
                        ok = false;
                    } else if t.primary_key.value.iter().any(|k| k.value == c.value) {
                        err(
                            loc(c),
                            field(&at),
                            format!(
                                "'{}' is in the primary key: a key identifies the row, it is not \
                                 a value whose changes are tracked; remove it from {what}",
                                c.value
                            ),
                        );
                        ok = false;
                    } else if change_cols.contains(&c.value.as_str()) {
                        err(
                            loc(c),
                            field(&at),
                            format!(
                                "'{}' is a change column of the cdc table (the operation or its \
                                 time), not a value; remove it from {what}",
                                c.value
                            ),
                        );
                        ok = false;
                    }
                }
                let listed: Vec<String> = list.value.iter().map(|c| c.value.clone()).collect();
                let values = names.iter().filter(|n| {
                    !t.primary_key.value.iter().any(|k| k.value == **n) && !change_cols.contains(n)
                });
                let tracked = values
                    .filter(|n| listed.iter().any(|l| l == *n) == (what == "track_history"))
                    .count();
                if tracked == 0 && ok {
                    err(
                        loc(list),
                        field(what),
                        format!(
                            "{what} leaves no column whose change opens a version; track at least \
                             one value column (a table without history is a gold model, not silver)"
                        ),
                    );
                    ok = false;
                }
                if what == "track_history" {
                    HistoryColumns::Only(listed)
                } else {
                    HistoryColumns::Except(listed)
                }
            }
        };
        let mut generate = BTreeMap::new();
        for (template, params) in t.generate.unwrap_or_default() {
            let params = params.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
            if !params.is_object() {
                err(
                    name_at,
                    field(&format!("generate.{template}")),
                    "the parameters of a template are a mapping (`name: value` lines), or nothing"
                        .into(),
                );
                ok = false;
                continue;
            }
            generate.insert(template, params);
        }
        if !ok {
            continue;
        }
        // Key and change columns can never be NULL, whatever the config says.
        for c in &mut columns {
            let is_change_column = t.cdc.as_ref().is_some_and(|cdc| {
                cdc.operation_column.value == c.name || cdc.timestamp_column.value == c.name
            });
            if is_change_column || t.primary_key.value.iter().any(|k| k.value == c.name) {
                c.nullable = false;
            }
        }
        out.push((
            TableConfig {
                source: source.clone(),
                name: name.clone(),
                description: t.description,
                primary_key: t
                    .primary_key
                    .value
                    .iter()
                    .map(|k| k.value.clone())
                    .collect(),
                load,
                format,
                deletes,
                dedupe_by: t.dedupe_by.map(|d| d.value),
                cdc: t.cdc.map(|c| CdcColumns {
                    operation_column: c.operation_column.value,
                    timestamp_column: c.timestamp_column.value,
                    truncate: c
                        .truncate_value
                        .map(|v| v.value.trim().to_ascii_uppercase()),
                }),
                max_file_mb: t.max_file_mb.map(|m| m.value).unwrap_or(1024),
                schema_change,
                expectations,
                ignore_null_updates,
                history,
                columns,
                generate,
                file: shown.to_owned(),
            },
            name_at,
        ));
    }
    out
}
