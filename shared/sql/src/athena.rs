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

/// `"a", "b", ...`: a schema's columns, for an INSERT's column list and its SELECT (by name:
/// an evolved table has its columns in another order than a query).
pub fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| quote(f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every row of `table` deleted (a new snapshot with none).
pub fn delete_all(table: &TableRef) -> String {
    format!("DELETE FROM {}", name(table))
}

/// `from`'s rows (a relation or a parenthesised query) appended to `table`, column by name.
pub fn insert_select(table: &TableRef, columns: &str, from: &str) -> String {
    format!(
        "INSERT INTO {} ({columns}) SELECT {columns} FROM {from}",
        name(table)
    )
}

/// `query`'s rows appended to `table`, column by name.
pub fn insert_query(table: &TableRef, columns: &str, query: &str) -> String {
    insert_select(table, columns, &format!("(\n{query}\n) q"))
}

/// `table` at snapshot `id`, as a relation.
pub fn at_version(table: &TableRef, id: i64) -> String {
    format!("{} FOR VERSION AS OF {id}", name(table))
}

/// Every row of `relation` (a schema probe or a copy's source).
pub fn select_all(relation: &str) -> String {
    format!("SELECT * FROM {relation}")
}

/// `query`'s columns and types without reading a row.
pub fn schema_probe(query: &str) -> String {
    format!("SELECT * FROM (\n{query}\n) _floe_schema LIMIT 0")
}

/// How many rows of `table` came with `batch` (floe's `_batch_id` column).
pub fn batch_rows(table: &TableRef, batch: &str) -> String {
    format!(
        "SELECT count(*) FROM {} WHERE \"_batch_id\" = {}",
        name(table),
        literal(batch)
    )
}

/// An Iceberg metadata table of `table` (`"ns"."t$snapshots"`, `$files`).
fn metadata(table: &TableRef, which: &str) -> String {
    format!(
        "{}.{}",
        quote(&table.namespace),
        quote(&format!("{}${which}", table.name))
    )
}

/// `table`'s snapshots, oldest first: id, parent, commit time as text, operation, summary as
/// JSON.
pub fn snapshots(table: &TableRef) -> String {
    format!(
        "SELECT snapshot_id, parent_id, CAST(committed_at AS varchar), operation, \
         CAST(summary AS JSON) FROM {} ORDER BY committed_at",
        metadata(table, "snapshots")
    )
}

/// `table`'s current files: content (0 data, 1 and 2 deletes), bytes, rows, and the partition
/// as JSON (NULL when the table is not partitioned: its `$files` has no `partition` column).
pub fn files(table: &TableRef, partitioned: bool) -> String {
    format!(
        "SELECT content, file_size_in_bytes, record_count, {} FROM {}",
        if partitioned {
            "json_format(CAST(partition AS JSON))"
        } else {
            "NULL"
        },
        metadata(table, "files")
    )
}

/// How many files `table`'s current snapshot holds.
pub fn file_count(table: &TableRef) -> String {
    format!("SELECT count(*) FROM {}", metadata(table, "files"))
}

/// Compaction: small files rewritten into fewer (a new snapshot with the same rows).
pub fn optimize(table: &TableRef) -> String {
    format!("OPTIMIZE {} REWRITE DATA USING BIN_PACK", name(table))
}

/// The retention `VACUUM` applies: snapshots older than `max_age_seconds` expire, one is kept.
pub fn vacuum_retention(table: &TableRef, max_age_seconds: i64) -> String {
    format!(
        "ALTER TABLE {} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='{max_age_seconds}', \
         'vacuum_min_snapshots_to_keep'='1')",
        name(table)
    )
}

/// Expires snapshots past the retention and removes the files only they held.
pub fn vacuum(table: &TableRef) -> String {
    format!("VACUUM {}", name(table))
}

/// Renames a table (its files stay where they are).
pub fn rename_table(from: &TableRef, to: &TableRef) -> String {
    format!("ALTER TABLE {} RENAME TO {}", name(from), name(to))
}

/// A view over `query` (replacing one of the same name).
pub fn create_view(view: &TableRef, query: &str) -> String {
    format!("CREATE OR REPLACE VIEW {} AS\n{query}", name(view))
}

/// The statement that made a view.
pub fn show_create_view(view: &TableRef) -> String {
    format!("SHOW CREATE VIEW {}", name(view))
}

/// Drops a view.
pub fn drop_view(view: &TableRef) -> String {
    format!("DROP VIEW IF EXISTS {}", name(view))
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
