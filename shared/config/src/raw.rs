//! The YAML files as written, with the position of every value that a check may point at.
//!
//! Kept apart from the validated model in `lib.rs`: these structs mirror the files (and reject
//! unknown keys); the model is what the rest of floe uses. Map keys are plain strings so that
//! error paths can name them; their lines are found with `key_position`.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProject {
    pub name: Spanned<String>,
    #[serde(default)]
    pub engine: Option<Spanned<String>>,
    #[serde(default)]
    pub lake: Option<Spanned<String>>,
    #[serde(default)]
    pub concurrency: Option<Spanned<u32>>,
    #[serde(default)]
    pub athena: Option<RawAthena>,
    #[serde(default)]
    pub notify: Option<RawNotify>,
    #[serde(default)]
    pub vars: Option<IndexMap<String, serde_json::Value>>,
    #[serde(default)]
    pub maintenance: Option<RawMaintenance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaintenance {
    #[serde(default)]
    pub keep_snapshots_days: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAthena {
    pub region: Spanned<String>,
    pub workgroup: Spanned<String>,
    pub output_location: Spanned<String>,
    pub landing_bucket: Spanned<String>,
    pub lake_location: Spanned<String>,
    #[serde(default)]
    pub endpoint_url: Option<Spanned<String>>,
    #[serde(default)]
    pub price_per_tb_usd: Option<f64>,
    #[serde(default)]
    pub stack: Option<Spanned<String>>,
    #[serde(default)]
    pub quarantine_bucket: Option<Spanned<String>>,
    #[serde(default)]
    pub database_prefix: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    #[serde(default)]
    pub webhook: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub source: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)] // documentation only, read by `floe docs`
    pub description: Option<String>,
    pub tables: IndexMap<String, RawTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    #[serde(default)]
    pub description: Option<String>,
    pub primary_key: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub load: Option<Spanned<String>>,
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    #[serde(default)]
    pub deletes: Option<Spanned<String>>,
    #[serde(default)]
    pub dedupe_by: Option<Spanned<String>>,
    #[serde(default)]
    pub cdc: Option<RawCdc>,
    #[serde(default)]
    pub max_file_mb: Option<Spanned<u64>>,
    #[serde(default)]
    pub schema_change: Option<Spanned<String>>,
    #[serde(default)]
    pub ignore_null_updates: Option<Spanned<bool>>,
    #[serde(default)]
    pub track_history: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub ignore_changes: Option<Spanned<Vec<Spanned<String>>>>,
    pub columns: Spanned<IndexMap<String, RawColumn>>,
    /// Model templates to apply to this table, each with its parameters.
    #[serde(default)]
    pub generate: Option<IndexMap<String, Option<serde_json::Value>>>,
    /// Row-level expectations over several columns.
    #[serde(default)]
    pub expect: Option<Vec<RawTableExpect>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTableExpect {
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    pub sql: Spanned<String>,
    #[serde(default)]
    pub on_fail: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    #[serde(default)]
    pub not_null: Option<Spanned<bool>>,
    #[serde(default)]
    pub range: Option<Spanned<RawRange>>,
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub accepted_values: Option<Spanned<Vec<serde_json::Value>>>,
    #[serde(default)]
    pub on_fail: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRange {
    #[serde(default)]
    pub min: Option<serde_json::Value>,
    #[serde(default)]
    pub max: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCdc {
    #[serde(default)]
    pub truncate_value: Option<Spanned<String>>,
    pub operation_column: Spanned<String>,
    pub timestamp_column: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumn {
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    #[serde(default)]
    pub nullable: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub expect: Option<RawExpect>,
}
