//! The statements the Athena engine runs, in Athena's SQL (engine version 3: Trino for queries
//! and DML, Hive-style DDL for `CREATE TABLE`).
//!
//! The plan is the embedded engine's, statement for statement where Athena allows it:
//! - tables are Iceberg tables in the Glue catalog, created with [`create_table`] from the same
//!   Arrow schemas the local lake uses;
//! - a landed file is read through a temporary external table (made with the Glue API, one per
//!   batch, dropped after) and appended to bronze with [`bronze_append`], which is a no-op when
//!   the batch is there already (at-least-once delivery);
//! - silver history is computed by `crate::scd2`: rebuilt from bronze (the same query as the
//!   embedded engine's) or, for an extract newer than everything silver holds, merged in as
//!   one `MERGE` of the versions that change (`scd2::apply_extract_merge`);
//! - write-audit-publish: readers query a view. A rebuild is published by pointing the view at
//!   the audited staging table; a merge is published by pinning the view to the audited
//!   snapshot ([`publish_view`]), so readers never see an unaudited write.

use arrow_schema::{DataType, Schema};
use chrono::{DateTime, Utc};
use floe_config::TableConfig;
use floe_core::{Error, PartitionField, PartitionTransform, Result, TableRef};

use crate::bronze::{BATCH_ID, EXTRACT_TS, LANDED_AT, ROW_NUMBER, SOURCE_FILE};
use crate::quote;

/// A table name as Athena reads it (`db.table`; floe's names need no quoting).
fn name(t: &TableRef) -> String {
    format!("{}.{}", t.namespace, t.name)
}

pub use crate::literal;

/// A timestamp literal (microseconds, UTC).
pub fn timestamp(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// The Athena DDL type of an Arrow type.
pub fn ddl_type(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        // Athena's Iceberg tables store neither (Trino would widen them silently).
        DataType::Int8 | DataType::Int16 => {
            return Err(Error::Config(format!(
                "Athena's Iceberg tables cannot store {t} (tinyint/smallint): use int or bigint"
            )));
        }
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        other => return Err(Error::Config(format!("no Athena type for {other}"))),
    })
}

/// The Athena DDL statements of schema edits on an Iceberg table, in order: `ADD COLUMNS`, `CHANGE
/// COLUMN` (a widening), `DROP COLUMN`, and a replacement as a drop then an add. Every column of
/// an Iceberg table Athena creates may hold NULL, so `MakeOptional` needs no statement.
pub fn alter_columns(
    table: &TableRef,
    edits: &[floe_core::ports::SchemaEdit],
) -> Result<Vec<String>> {
    use floe_core::ports::SchemaEdit;
    let t = name(table);
    let col = |c: &str| format!("`{}`", c.replace('`', "``"));
    let ty = |d: &DataType| match d {
        DataType::Int8 | DataType::Int16 => ddl_type(&DataType::Int32),
        d => ddl_type(d),
    };
    let mut out = Vec::new();
    for e in edits {
        match e {
            SchemaEdit::AddColumn { name, ty: d } => out.push(format!(
                "ALTER TABLE {t} ADD COLUMNS ({} {})",
                col(name),
                ty(d)?
            )),
            SchemaEdit::WidenColumn { name, ty: d } => out.push(format!(
                "ALTER TABLE {t} CHANGE COLUMN {} {} {}",
                col(name),
                col(name),
                ty(d)?
            )),
            SchemaEdit::DropColumn { name } => {
                out.push(format!("ALTER TABLE {t} DROP COLUMN {}", col(name)))
            }
            SchemaEdit::ReplaceColumn { name, ty: d } => {
                out.push(format!("ALTER TABLE {t} DROP COLUMN {}", col(name)));
                out.push(format!(
                    "ALTER TABLE {t} ADD COLUMNS ({} {})",
                    col(name),
                    ty(d)?
                ));
            }
            SchemaEdit::MakeOptional { .. } => {}
        }
    }
    Ok(out)
}

/// `CREATE TABLE` of an Iceberg table at `location` (Athena DDL quotes names with backticks).
/// Partitioned as `partition_by` says (Athena's hidden partitioning: `PARTITIONED BY
/// (col, day(ts))`); a partition column must be one of the table's.
pub fn create_table(
    table: &TableRef,
    schema: &Schema,
    location: &str,
    partition_by: &[PartitionField],
) -> Result<String> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| Ok(format!("`{}` {}", f.name(), ddl_type(f.data_type())?)))
        .collect::<Result<Vec<_>>>()?;
    let mut parts = Vec::new();
    for p in partition_by {
        if schema.field_with_name(&p.column).is_err() {
            return Err(Error::Config(format!(
                "{}: no column {} to partition by",
                name(table),
                p.column
            )));
        }
        parts.push(match p.transform {
            PartitionTransform::Identity => format!("`{}`", p.column),
            PartitionTransform::Day => format!("day(`{}`)", p.column),
        });
    }
    let partitioned = if parts.is_empty() {
        String::new()
    } else {
        format!(" PARTITIONED BY ({})", parts.join(", "))
    };
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({}){partitioned} LOCATION {} TBLPROPERTIES ('table_type' = 'ICEBERG', 'format' = 'parquet')",
        name(table),
        cols.join(", "),
        literal(location)
    ))
}

/// Where one landed batch is appended to bronze from.
#[derive(Debug, Clone)]
pub struct LandedBatch<'a> {
    /// The temporary external table over the landed file's folder.
    pub external: &'a TableRef,
    /// The file's S3 URI (the external table may see its neighbours; `"$path"` picks it).
    pub uri: &'a str,
    /// The batch id.
    pub batch_id: &'a str,
    /// The extract time from the landing key.
    pub extract_ts: DateTime<Utc>,
    /// The landing key.
    pub key: &'a str,
}

/// Appends a landed batch to bronze, unless bronze has it already.
pub fn bronze_append(table: &TableConfig, bronze: &TableRef, batch: &LandedBatch) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    format!(
        "INSERT INTO {bronze} ({cols}, {BATCH_ID}, {EXTRACT_TS}, {LANDED_AT}, {SOURCE_FILE}, {ROW_NUMBER}) \
         SELECT {cols}, {batch_id}, {extract_ts}, CAST(current_timestamp AS timestamp(6)), {key}, \
         ROW_NUMBER() OVER () \
         FROM {external} WHERE \"$path\" = {uri} \
         AND NOT EXISTS (SELECT 1 FROM {bronze} WHERE {BATCH_ID} = {batch_id})",
        bronze = name(bronze),
        cols = cols.join(", "),
        batch_id = literal(batch.batch_id),
        extract_ts = timestamp(batch.extract_ts),
        key = literal(batch.key),
        external = name(batch.external),
        uri = literal(batch.uri),
    )
}

/// Publishes a view readers query: over a staging table (a rebuild), or over a table pinned at
/// an audited snapshot (a merge).
pub fn publish_view(view: &TableRef, data: &TableRef, snapshot_id: Option<i64>) -> String {
    match snapshot_id {
        Some(id) => format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM {} FOR VERSION AS OF {id}",
            name(view),
            name(data)
        ),
        None => format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM {}",
            name(view),
            name(data)
        ),
    }
}

/// A view over `data` that shows no rows: a table whose first write waits for its audit.
pub fn hidden_view(view: &TableRef, data: &TableRef) -> String {
    format!(
        "CREATE OR REPLACE VIEW {} AS SELECT * FROM {} WHERE FALSE",
        name(view),
        name(data)
    )
}

/// Drops a table (a staging table after its publish, or a temporary external table).
pub fn drop_table(table: &TableRef) -> String {
    format!("DROP TABLE IF EXISTS {}", name(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes() {
        assert_eq!(literal("o'neil"), "'o''neil'");
        let t: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
        assert_eq!(timestamp(t), "TIMESTAMP '2026-11-01 06:00:00.000000'");
    }
}
