//! What a model is once loaded: its materialization (and chunking), where it came from, its data
//! and unit tests. [`crate::project`] makes these from the files; [`crate::dag`] orders them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use floe_core::TableRef;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value as Json;

use crate::render::Dep;

/// How a model is written to the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Materialized {
    /// A view: no data, its SQL runs when read.
    View,
    /// A table rebuilt by every run, staged and published atomically.
    Table,
    /// A table that each run adds to (append) or merges into on a unique key.
    Incremental {
        /// append or merge.
        strategy: Strategy,
        /// The key a merge matches on.
        unique_key: Vec<String>,
    },
    /// A table built in chunks of one column's ranges or periods, each checkpointed.
    InsertByChunk(ChunkSpec),
}

impl Materialized {
    /// The name used in `config(materialized=...)`.
    pub fn name(&self) -> &'static str {
        match self {
            Materialized::View => "view",
            Materialized::Table => "table",
            Materialized::Incremental { .. } => "incremental",
            Materialized::InsertByChunk(_) => "insert_by_chunk",
        }
    }
}

/// How an incremental model adds a run's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Appends the run's rows.
    Append,
    /// Replaces rows whose unique key matches, adds the others.
    Merge,
}

/// How an insert_by_chunk model splits its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkSpec {
    /// The column the chunks are ranges of.
    pub column: String,
    /// The width of a chunk.
    pub size: ChunkSize,
    /// Columns that must be unique in the result (checked at the end).
    pub unique_key: Vec<String>,
}

/// The width of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkSize {
    /// A calendar period of a date or timestamp column.
    Period(Period),
    /// A range of this many values of an integer column.
    Range(i64),
}

/// A calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One day.
    Day,
    /// Seven days, from a Monday.
    Week,
    /// One calendar month.
    Month,
    /// One calendar year.
    Year,
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A file under models/.
    Written,
    /// A template applied to a table.
    Generated {
        /// The template (file stem under templates/).
        template: String,
        /// The table, as source.table.
        table: String,
    },
}

/// A data test of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataTest {
    /// How the test is named in reports: `unique(person_id)`.
    pub name: String,
    /// What it checks.
    pub kind: TestKind,
    /// Where it was declared.
    pub file: PathBuf,
}

/// What a data test checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum TestKind {
    /// The column has no NULL.
    NotNull {
        /// The column.
        column: String,
    },
    /// No two rows share the column's value (NULLs aside).
    Unique {
        /// The column.
        column: String,
    },
    /// Every non-NULL value is one of these.
    AcceptedValues {
        /// The column.
        column: String,
        /// The accepted values.
        values: Vec<Json>,
    },
    /// Every non-NULL value is found in another relation's field.
    Relationships {
        /// The column.
        column: String,
        /// The other relation, as Jinja: `ref('x')` or `source('s', 't')`.
        to: String,
        /// Its field.
        field: String,
    },
    /// The model has as many rows as another relation (optionally filtered).
    RowCount {
        /// The other relation, as Jinja.
        compare_to: String,
        /// A filter on the other relation.
        filter: Option<String>,
    },
    /// A SQL query (tests/*.sql) returning the failing rows.
    Custom {
        /// Its template name.
        template: String,
    },
}

/// One model of the project.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Its name: the table is `gold.<name>`.
    pub name: String,
    /// The file it comes from (relative to the project).
    pub file: PathBuf,
    /// The renderer's name of its template.
    #[serde(skip)]
    pub template: String,
    /// Hand-written or generated.
    pub origin: Origin,
    /// How it is written.
    pub materialized: Materialized,
    /// Tags, for `tag:` selectors.
    pub tags: Vec<String>,
    /// What it reads, in first-use order.
    pub deps: Vec<Dep>,
    /// Docs.
    pub description: Option<String>,
    /// Its data tests.
    pub tests: Vec<DataTest>,
    /// A digest of everything that defines it (SQL, parameters, config, tests), for
    /// `state:modified`.
    pub checksum: String,
    /// Template context (`table`, `params`) of a generated model (shared: every render of the
    /// model reads it, none changes it).
    #[serde(skip)]
    pub extra: std::sync::Arc<BTreeMap<String, Json>>,
}

impl Model {
    /// The published table (or view) of the model in `namespace` (`gold` unless a target says).
    pub fn relation(&self, namespace: &str) -> TableRef {
        TableRef::new(namespace, &self.name).expect("model names are checked when loading")
    }

    /// The models it refs.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.deps.iter().filter_map(|d| match d {
            Dep::Ref { name } => Some(name.as_str()),
            Dep::Source { .. } => None,
        })
    }
}

/// A unit test of a model: given rows for its inputs, the rows it must return.
#[derive(Debug, Clone, Serialize)]
pub struct UnitTest {
    /// Its name.
    pub name: String,
    /// The model under test.
    pub model: String,
    /// Inputs: the Jinja relation (`ref('x')`, `source('s', 't')`) and its rows.
    pub given: Vec<(Dep, Vec<IndexMap<String, Json>>)>,
    /// Expected rows (compared as sets, on the columns they name).
    pub expect: Vec<IndexMap<String, Json>>,
    /// Where it was declared.
    pub file: PathBuf,
}
