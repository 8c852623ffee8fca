//! Schema drift: what a table's config asks of its bronze and silver tables, and what floe does
//! about it under the table's `schema_change` policy.
//!
//! The config is the contract; the lake follows it. [`inspect`] compares the two and sorts every
//! difference into one of four kinds:
//! - **add**: a column the config declares and a table lacks is added (bronze: as text; silver:
//!   with its type). Versions written before read it as NULL; nothing is rewritten.
//! - **widen**: a type Iceberg promotes in place (int to bigint, float to double, a decimal's
//!   precision up with the same scale) is promoted; every stored value reads the same.
//! - **retire**: a silver column the config no longer declares is kept with its history and
//!   carried by every later build, NULL from the next extract on (bronze keeps it too).
//! - **refuse**: anything that would lose or reinterpret a stored value (narrowing, a scale
//!   change, string to number, number to date, ...) is refused before anything is written; `floe
//!   migrate` rewrites the history under the new type on request ([`migration`]).
//!
//! Under `schema_change: fail` adds and widenings are refused too, until `floe migrate`.
//! Landing applies the bronze edits (and refuses a file whose table the config cannot reach);
//! standardise applies the silver edits before it writes. Schema changes are commits of their
//! own without a snapshot, so readers keep the published snapshot's schema until a version built
//! under the new one is published.

use std::collections::BTreeSet;

use arrow_schema::{DataType, Schema};
use floe_config::{
    ColumnConfig, ColumnType, Project, RESCUED_COLUMN, SchemaChangePolicy, TableConfig,
};
use floe_core::ports::{Lake, ReadAt, SchemaEdit};
use floe_core::{Error, Layer, Result};

use crate::sql::Dialect;

/// A type change the lake cannot follow without rewriting stored values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The column.
    pub column: String,
    /// Its type in silver.
    pub stored: ColumnType,
    /// Its type in the config.
    pub declared: ColumnType,
}

/// How a table's config differs from its tables in the lake.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    /// Edits that bring bronze to the config.
    pub bronze: Vec<SchemaEdit>,
    /// Edits that bring silver to the config.
    pub silver: Vec<SchemaEdit>,
    /// Silver columns the config no longer declares: kept, NULL from the next extract.
    pub retired: Vec<ColumnConfig>,
    /// Type changes refused.
    pub refused: Vec<Refusal>,
    /// Columns the lake keeps that the config does not declare (bronze or silver): a file may
    /// still carry them, and landing leaves them out instead of refusing the file.
    pub undeclared: BTreeSet<String>,
}

impl Drift {
    /// Whether the lake already follows the config.
    pub fn is_empty(&self) -> bool {
        self.bronze.is_empty() && self.silver.is_empty() && self.refused.is_empty()
    }

    /// One line per difference, in words, for `floe validate` and the logs.
    pub fn describe(&self, table: &TableConfig) -> Vec<String> {
        let silver = table.table_ref(Layer::Silver);
        let bronze = table.table_ref(Layer::Bronze);
        let mut out = Vec::new();
        for e in &self.silver {
            out.push(match e {
                SchemaEdit::AddColumn { name, ty } => format!(
                    "add column '{name}' ({}) to {silver}: earlier versions read NULL",
                    type_name(ty)
                ),
                SchemaEdit::WidenColumn { name, ty } => format!(
                    "widen column '{name}' of {silver} to {} in place",
                    type_name(ty)
                ),
                SchemaEdit::ReplaceColumn { name, ty } => format!(
                    "replace column '{name}' of {silver} by a {} column",
                    type_name(ty)
                ),
                SchemaEdit::MakeOptional { name } => {
                    format!("let column '{name}' of {silver} hold NULL")
                }
                SchemaEdit::DropColumn { name } => format!("drop column '{name}' of {silver}"),
            });
        }
        for e in &self.bronze {
            if let SchemaEdit::AddColumn { name, .. } = e {
                out.push(format!("add column '{name}' (text) to {bronze}"));
            }
        }
        for c in &self.retired {
            out.push(format!(
                "column '{}' of {silver} is no longer declared: kept with its history, NULL from the next extract (each key whose value was not NULL gets a new version then)",
                c.name
            ));
        }
        for r in &self.refused {
            out.push(refusal_text(table, r));
        }
        out
    }

    /// Whether floe may go ahead under the table's policy: a refusal, or any edit under `fail`,
    /// is a config error that names the way out.
    pub fn check(&self, table: &TableConfig) -> Result<()> {
        if !self.refused.is_empty() {
            let reasons: Vec<String> = self
                .refused
                .iter()
                .map(|r| refusal_text(table, r))
                .collect();
            return Err(Error::Config(format!(
                "{}; nothing was written",
                reasons.join("; ")
            )));
        }
        if table.schema_change == SchemaChangePolicy::Fail
            && !(self.bronze.is_empty() && self.silver.is_empty())
        {
            let changes = self.describe(table);
            return Err(Error::Config(format!(
                "{} has schema_change: fail and its config ({}) differs from the lake: {}; run \
                 `floe migrate {}` to apply the change, or set schema_change: evolve; nothing \
                 was written",
                table.qualified_name(),
                table.file.display(),
                changes.join("; "),
                table.qualified_name()
            )));
        }
        Ok(())
    }
}

fn refusal_text(table: &TableConfig, r: &Refusal) -> String {
    format!(
        "column '{}' of {} is {} in the lake and {} in {}: the stored values cannot be changed \
         to {} in place without losing or reinterpreting them; run `floe migrate {}` to rewrite \
         the history under the new type (every version, from bronze), or declare {} again",
        r.column,
        table.table_ref(Layer::Silver),
        r.stored,
        r.declared,
        table.file.display(),
        r.declared,
        table.qualified_name(),
        r.stored
    )
}

fn type_name(ty: &DataType) -> String {
    ColumnType::from_arrow(ty).map_or_else(|| ty.to_string(), |t| t.to_string())
}

/// Whether a stored `from` becomes `to` in place, every value unchanged.
fn widens(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType as T;
    match (from.stored(), to.stored()) {
        (T::Int, T::Bigint) | (T::Float, T::Double) => true,
        (T::Decimal(p1, s1), T::Decimal(p2, s2)) => s1 == s2 && p2 >= p1,
        _ => false,
    }
}

/// floe's own columns in bronze and silver (never retired, never compared with the config).
fn is_floe_column(name: &str) -> bool {
    name != RESCUED_COLUMN && floe_config::RESERVED_COLUMNS.contains(&name)
}

pub use floe_sql::declared;

/// How the config differs from bronze and silver (either may not exist yet).
pub async fn inspect(lake: &dyn Lake, table: &TableConfig) -> Result<Drift> {
    let bronze = table.table_ref(Layer::Bronze);
    let silver = table.table_ref(Layer::Silver);
    let bronze_schema = match lake.table_exists(&bronze).await? {
        true => Some(lake.table_schema(&bronze).await?),
        false => None,
    };
    let silver_schema = match lake.table_exists(&silver).await? {
        true => Some(lake.table_schema(&silver).await?),
        false => None,
    };
    Ok(compare(
        table,
        bronze_schema.as_deref(),
        silver_schema.as_deref(),
    ))
}

/// [`inspect`] on schemas already read.
pub fn compare(table: &TableConfig, bronze: Option<&Schema>, silver: Option<&Schema>) -> Drift {
    let mut drift = Drift::default();
    let columns = declared(table);
    let declared_names: BTreeSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    if let Some(b) = bronze {
        for c in &columns {
            if b.field_with_name(&c.name).is_err() {
                drift.bronze.push(SchemaEdit::AddColumn {
                    name: c.name.clone(),
                    ty: DataType::Utf8,
                });
            }
        }
        for f in b.fields() {
            if !is_floe_column(f.name()) && !declared_names.contains(f.name().as_str()) {
                drift.undeclared.insert(f.name().clone());
            }
        }
    }
    if let Some(s) = silver {
        let expected = crate::scd2::silver_schema_of(table, &columns);
        for want in expected.fields() {
            let Ok(have) = s.field_with_name(want.name()) else {
                drift.silver.push(SchemaEdit::AddColumn {
                    name: want.name().clone(),
                    ty: want.data_type().clone(),
                });
                continue;
            };
            if let (Some(stored), Some(declared)) = (
                ColumnType::from_arrow(have.data_type()),
                ColumnType::from_arrow(want.data_type()),
            ) && stored.stored() != declared.stored()
            {
                if widens(stored, declared) {
                    drift.silver.push(SchemaEdit::WidenColumn {
                        name: want.name().clone(),
                        ty: declared.stored().arrow(),
                    });
                } else {
                    drift.refused.push(Refusal {
                        column: want.name().clone(),
                        stored,
                        declared,
                    });
                }
            }
            if !have.is_nullable() && want.is_nullable() {
                drift.silver.push(SchemaEdit::MakeOptional {
                    name: want.name().clone(),
                });
            }
        }
        for f in s.fields() {
            // A history column the rules no longer write (`is_deleted` after `deletes:
            // new_record` is changed) stays, NULL in the rebuilt history: it must allow it.
            if is_floe_column(f.name())
                && !f.is_nullable()
                && expected.field_with_name(f.name()).is_err()
            {
                drift.silver.push(SchemaEdit::MakeOptional {
                    name: f.name().clone(),
                });
            }
            if is_floe_column(f.name()) || declared_names.contains(f.name().as_str()) {
                continue;
            }
            drift.undeclared.insert(f.name().clone());
            if let Some(ty) = ColumnType::from_arrow(f.data_type()) {
                drift.retired.push(ColumnConfig {
                    name: f.name().clone(),
                    ty,
                    nullable: true,
                    description: Some("no longer declared: NULL from its removal on".into()),
                });
            }
        }
    }
    drift
}

/// Brings silver to the config (standardise, before it writes) and returns the table as the
/// history is built: the config's columns, then the retired ones.
pub async fn prepare_silver(lake: &dyn Lake, table: &TableConfig) -> Result<TableConfig> {
    let drift = inspect(lake, table).await?;
    drift.check(table)?;
    if !drift.silver.is_empty() {
        for line in drift.describe(table) {
            tracing::info!(table = %table.qualified_name(), change = %line, "schema change");
        }
        lake.evolve_schema(&table.table_ref(Layer::Silver), &drift.silver)
            .await?;
    }
    Ok(effective(table, &drift))
}

/// The table as its history is built: the declared columns (and `_rescued`), then the retired
/// columns, which keep their stored type and values.
pub fn effective(table: &TableConfig, drift: &Drift) -> TableConfig {
    let mut t = table.clone();
    t.columns = declared(table);
    t.columns.extend(drift.retired.iter().cloned());
    t
}

/// The table as its history is built, from the lake as it is (the audit's view).
pub async fn effective_now(lake: &dyn Lake, table: &TableConfig) -> Result<TableConfig> {
    Ok(effective(table, &inspect(lake, table).await?))
}

/// `source` (`bronze`, or a table expression over it) with every column of `table` that
/// bronze's read does not have added as NULL text: a bronze version written before a column was
/// declared reads as if the files had sent no value. The columns come from the snapshot `at`
/// reads on the embedded engine (a pinned snapshot keeps its own schema), and from the catalog
/// on Athena (which reads the current schema; no query is run for it).
pub async fn bronze_with_columns(
    lake: &dyn Lake,
    table: &TableConfig,
    bronze: &floe_core::TableRef,
    source: &str,
    at: &ReadAt,
) -> Result<String> {
    let have = match lake.dialect() {
        Dialect::Trino => lake.table_schema(bronze).await?,
        Dialect::DataFusion => {
            lake.query_schema(&format!("SELECT * FROM {bronze}"), at)
                .await?
        }
    };
    let missing: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| have.field_with_name(&c.name).is_err())
        .map(|c| c.name.as_str())
        .collect();
    Ok(floe_sql::reads::with_null_columns(source, &missing))
}

/// What `floe migrate` does to a table: every edit of [`inspect`], with each refused type change
/// made a column replacement (a new column of the new type; the history is then rebuilt from
/// bronze, so every version gets its value under the new type).
pub fn migration(drift: &Drift) -> (Vec<SchemaEdit>, Vec<SchemaEdit>) {
    let mut silver = drift.silver.clone();
    for r in &drift.refused {
        silver.push(SchemaEdit::ReplaceColumn {
            name: r.column.clone(),
            ty: r.declared.stored().arrow(),
        });
    }
    (drift.bronze.clone(), silver)
}

/// The edits that give a model's table the columns of its query: for a write of every row
/// (`full`), the query's columns exactly (a column whose type changed is replaced, a column gone
/// is dropped); for an incremental write, the new columns only (dbt's `append_new_columns`:
/// columns the query no longer has stay, NULL in new rows).
pub fn model_edits(table: &Schema, query: &Schema, full: bool) -> Vec<SchemaEdit> {
    let same_type =
        |a: &DataType, b: &DataType| match (ColumnType::from_arrow(a), ColumnType::from_arrow(b)) {
            (Some(x), Some(y)) => x.stored() == y.stored(),
            _ => a == b,
        };
    let mut edits = Vec::new();
    for f in query.fields() {
        match table.field_with_name(f.name()) {
            Err(_) => edits.push(SchemaEdit::AddColumn {
                name: f.name().clone(),
                ty: f.data_type().clone(),
            }),
            Ok(have) if full && !same_type(have.data_type(), f.data_type()) => {
                edits.push(SchemaEdit::ReplaceColumn {
                    name: f.name().clone(),
                    ty: f.data_type().clone(),
                })
            }
            Ok(_) => {}
        }
    }
    if full {
        for f in table.fields() {
            if query.field_with_name(f.name()).is_err() {
                edits.push(SchemaEdit::DropColumn {
                    name: f.name().clone(),
                });
            }
        }
    }
    edits
}

/// A query returning up to 10 bronze values of `column` that do not convert to its declared
/// type (with their file and row), from the accepted batches in `source`.
pub fn unconvertible_sql(dialect: Dialect, column: &ColumnConfig, source: &str) -> String {
    floe_sql::reads::unconvertible(dialect, column, source)
}

/// The tables of a project whose config differs from the lake, with how.
pub async fn project_drift<'p>(
    lake: &dyn Lake,
    project: &'p Project,
) -> Result<Vec<(&'p TableConfig, Drift)>> {
    let mut out = Vec::new();
    for t in project.tables.values() {
        let d = inspect(lake, t).await?;
        if !d.is_empty() || !d.retired.is_empty() {
            out.push((t, d));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use arrow_schema::{Field, TimeUnit};

    use super::*;

    fn table(columns: &[(&str, ColumnType)]) -> TableConfig {
        let yaml = format!(
            "source: s\ntables:\n  t:\n    primary_key: [id]\n    columns:\n{}",
            columns
                .iter()
                .map(|(n, t)| format!("      {n}: {{type: \"{t}\"}}\n"))
                .collect::<String>()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("floe.yaml"), "name: p\n").unwrap();
        std::fs::create_dir(dir.path().join("tables")).unwrap();
        std::fs::write(dir.path().join("tables/s.yaml"), yaml).unwrap();
        let p = Project::load(dir.path()).unwrap();
        p.table("s.t").unwrap().clone()
    }

    fn silver(columns: &[(&str, DataType)]) -> Schema {
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        fields.extend([
            Field::new(crate::scd2::VALID_FROM, ts.clone(), false),
            Field::new(crate::scd2::VALID_TO, ts, true),
            Field::new(crate::scd2::IS_CURRENT, DataType::Boolean, false),
            Field::new(crate::scd2::ROW_HASH, DataType::Utf8, false),
            Field::new(crate::bronze::BATCH_ID, DataType::Utf8, false),
        ]);
        Schema::new(fields)
    }

    #[test]
    fn the_lake_follows_adds_and_widenings_and_refuses_the_rest() {
        let t = table(&[
            ("id", ColumnType::Bigint),
            ("n", ColumnType::Bigint),
            ("amount", ColumnType::Decimal(10, 2)),
            ("city", ColumnType::String),
        ]);
        let s = silver(&[
            ("id", DataType::Int64),
            ("n", DataType::Int32),
            ("amount", DataType::Int32),
            ("fax", DataType::Utf8),
        ]);
        let d = compare(&t, None, Some(&s));
        assert!(d.silver.contains(&SchemaEdit::WidenColumn {
            name: "n".into(),
            ty: DataType::Int64
        }));
        assert!(d.silver.contains(&SchemaEdit::AddColumn {
            name: "city".into(),
            ty: DataType::Utf8
        }));
        assert_eq!(d.refused.len(), 1, "{d:?}");
        assert_eq!(d.refused[0].column, "amount");
        assert_eq!(d.retired.len(), 1);
        assert_eq!(d.retired[0].name, "fax");
        let err = d.check(&t).unwrap_err().to_string();
        assert!(err.contains("floe migrate s.t"), "{err}");
        assert!(err.contains("'amount'"), "{err}");
        let (_, edits) = migration(&d);
        assert!(edits.contains(&SchemaEdit::ReplaceColumn {
            name: "amount".into(),
            ty: DataType::Decimal128(10, 2)
        }));
    }

    #[test]
    fn narrowing_and_reinterpreting_are_refused_and_equal_storage_is_no_change() {
        for (stored, declared, refused) in [
            (DataType::Int64, ColumnType::Int, true),
            (DataType::Utf8, ColumnType::Bigint, true),
            (DataType::Int32, ColumnType::String, true),
            (
                DataType::Decimal128(10, 2),
                ColumnType::Decimal(12, 3),
                true,
            ),
            (
                DataType::Decimal128(10, 2),
                ColumnType::Decimal(12, 2),
                false,
            ),
            (DataType::Float32, ColumnType::Double, false),
            (DataType::Int32, ColumnType::Smallint, false),
        ] {
            let t = table(&[("id", ColumnType::Bigint), ("v", declared)]);
            let s = silver(&[("id", DataType::Int64), ("v", stored.clone())]);
            let d = compare(&t, None, Some(&s));
            assert_eq!(
                !d.refused.is_empty(),
                refused,
                "{stored} -> {declared}: {d:?}"
            );
        }
        let t = table(&[("id", ColumnType::Bigint), ("v", ColumnType::Smallint)]);
        let s = silver(&[("id", DataType::Int64), ("v", DataType::Int32)]);
        let d = compare(&t, None, Some(&s));
        assert!(d.is_empty() && d.retired.is_empty(), "{d:?}");
    }
}
