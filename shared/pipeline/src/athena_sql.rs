//! The statements the Athena engine runs, in Athena's SQL (engine version 3: Trino for queries
//! and DML, Hive-style DDL for `CREATE TABLE`).
//!
//! The plan is the embedded engine's, statement for statement where Athena allows it:
//! - tables are Iceberg tables in the Glue catalog, created with [`create_table`] from the same
//!   Arrow schemas the local lake uses;
//! - a landed file is read through a temporary external table (made with the Glue API, one per
//!   batch, dropped after) and appended to bronze with [`bronze_append`], which is a no-op when
//!   the batch is there already (at-least-once delivery);
//! - silver history is either rebuilt from all of bronze into a staging table
//!   ([`scd2_rebuild`], the same query as the embedded engine's) or, when the extract is newer
//!   than everything silver holds, merged in ([`scd2_merge`]);
//! - write-audit-publish: readers query a view. A rebuild is published by pointing the view at
//!   the audited staging table; a merge is published by pinning the view to the audited
//!   snapshot ([`publish_view`]), so readers never see an unaudited write.

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Schema};
use floe_config::{DeletesPolicy, LoadKind, TableConfig};
use floe_core::TableRef;

use crate::bronze::{BATCH_ID, EXTRACT_TS, LANDED_AT, ROW_NUMBER, SOURCE_FILE};
use crate::scd2::{IS_CURRENT, IS_DELETED, ROW_HASH, VALID_FROM, VALID_TO, history_sql, typed};
use crate::sql::{Dialect, quote, row_fingerprint};

/// A table name as Athena reads it (`db.table`; floe's names need no quoting).
fn name(t: &TableRef) -> String {
    format!("{}.{}", t.namespace, t.name)
}

/// A string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A timestamp literal (microseconds, UTC).
pub fn timestamp(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// The Athena DDL type of an Arrow type.
pub fn ddl_type(t: &DataType) -> Result<String, String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        // Athena's Iceberg tables store neither (Trino would widen them silently).
        DataType::Int8 | DataType::Int16 => {
            return Err(format!(
                "Athena's Iceberg tables cannot store {t} (tinyint/smallint): use int or bigint"
            ));
        }
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        other => return Err(format!("no Athena type for {other}")),
    })
}

/// The Athena DDL statements of schema edits on an Iceberg table, in order: `ADD COLUMNS`, `CHANGE
/// COLUMN` (a widening), `DROP COLUMN`, and a replacement as a drop then an add. Every column of
/// an Iceberg table Athena creates may hold NULL, so `MakeOptional` needs no statement.
pub fn alter_columns(
    table: &TableRef,
    edits: &[floe_core::ports::SchemaEdit],
) -> Result<Vec<String>, String> {
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
pub fn create_table(table: &TableRef, schema: &Schema, location: &str) -> Result<String, String> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| Ok(format!("`{}` {}", f.name(), ddl_type(f.data_type())?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) LOCATION {} TBLPROPERTIES ('table_type' = 'ICEBERG', 'format' = 'parquet')",
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

/// Rebuilds a table's whole silver history from `bronze_source` (bronze, or bronze without
/// rejected batches) into a new staging Iceberg table at `location`.
pub fn scd2_rebuild(
    table: &TableConfig,
    bronze_source: &str,
    staging: &TableRef,
    location: &str,
) -> String {
    format!(
        "CREATE TABLE {} WITH (table_type = 'ICEBERG', location = {}, is_external = false, format = 'PARQUET') AS\n{}",
        name(staging),
        literal(location),
        history_sql(Dialect::Trino, table, bronze_source)
    )
}

/// Merges one full extract (batch `batch_id` of `bronze`, extract time `extract_ts`) into the
/// silver table `silver`: the incremental SCD2 step. Valid only when the extract is newer than
/// every version in silver (the in-order case); a late extract is handled by a rebuild.
///
/// Each key of the extract is compared with its current version: new keys open a version,
/// changed keys close theirs at the extract time and open one, keys missing from the extract
/// follow `deletes`, a deleted key that reappears opens a new version.
pub fn scd2_merge(
    table: &TableConfig,
    bronze: &str,
    silver: &TableRef,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> Result<String, String> {
    if table.load != LoadKind::Full {
        return Err(format!(
            "{}: cdc tables are rebuilt, not merged",
            table.qualified_name()
        ));
    }
    let keys: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
    let all: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let values: Vec<&str> = all.iter().copied().filter(|c| !keys.contains(c)).collect();
    let new_record = table.deletes == DeletesPolicy::NewRecord;
    let tracks_deletes = table.deletes != DeletesPolicy::Ignore;
    let pk = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let t = timestamp(extract_ts);
    let mk: Vec<String> = (0..keys.len()).map(|i| format!("_mk{i}")).collect();
    let on_key = |a: &str, b: &str| {
        keys.iter()
            .map(|k| format!("{a}.{q} = {b}.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_as_mk = |src: &str| {
        keys.iter()
            .zip(&mk)
            .map(|(k, m)| format!("{src}.{} AS {m}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let null_mk = mk
        .iter()
        .map(|m| format!("NULL AS {m}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cols_of = |src: &str| {
        all.iter()
            .map(|c| format!("{src}.{}", quote(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let deleted_now = if new_record {
        format!("c.{IS_DELETED}")
    } else {
        "FALSE".into()
    };
    let dedupe = table
        .dedupe_by
        .as_ref()
        .map(|d| format!("{} DESC NULLS LAST, ", quote(d)))
        .unwrap_or_default();
    let mut sql = format!(
        "MERGE INTO {silver} AS t
USING (
  WITH typed AS ({typed}),
  src AS (
    SELECT * FROM (
      SELECT x.*, {fingerprint} AS {ROW_HASH},
        ROW_NUMBER() OVER (PARTITION BY {pk} ORDER BY {dedupe}{ROW_NUMBER} DESC) AS _dup
      FROM typed x WHERE {BATCH_ID} = {batch}
    ) d WHERE _dup = 1
  ),
  cur AS (SELECT * FROM {silver} WHERE {IS_CURRENT}),
  changes AS (
    SELECT {src_mk}, {src_cols}, s.{ROW_HASH}, 'upsert' AS _action FROM src s
    UNION ALL
    SELECT {null_mk}, {src_cols}, s.{ROW_HASH}, 'insert' AS _action
    FROM src s JOIN cur c ON {on_sc} WHERE c.{ROW_HASH} <> s.{ROW_HASH} OR {deleted_now}",
        silver = name(silver),
        typed = typed(Dialect::Trino, table, bronze),
        fingerprint = row_fingerprint(Dialect::Trino, &values),
        batch = literal(batch_id),
        src_mk = key_as_mk("s"),
        src_cols = cols_of("s"),
        on_sc = on_key("s", "c"),
    );
    if tracks_deletes {
        // Keys gone from the extract: close their live version (and record the deletion).
        let live = if new_record {
            format!(" AND NOT c.{IS_DELETED}")
        } else {
            String::new()
        };
        let first_key = quote(keys[0]);
        let gone_cols = all
            .iter()
            .map(|c| {
                if keys.contains(c) {
                    format!("c.{}", quote(c))
                } else {
                    format!("NULL AS {}", quote(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!(
            "
    UNION ALL
    SELECT {c_mk}, {gone_cols}, c.{ROW_HASH}, 'close' AS _action
    FROM cur c LEFT JOIN src s ON {on_sc} WHERE s.{first_key} IS NULL{live}",
            c_mk = key_as_mk("c"),
            on_sc = on_key("s", "c"),
        ));
        if new_record {
            // The deleted version carries the last values.
            sql.push_str(&format!(
                "
    UNION ALL
    SELECT {null_mk}, {last_cols}, c.{ROW_HASH}, 'insert_deleted' AS _action
    FROM cur c LEFT JOIN src s ON {on_sc} WHERE s.{first_key} IS NULL{live}",
                last_cols = cols_of("c"),
                on_sc = on_key("s", "c"),
            ));
        }
    }
    let on_t = keys
        .iter()
        .zip(&mk)
        .map(|(k, m)| format!("t.{} = u.{m}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let changed = if new_record {
        format!("(t.{ROW_HASH} <> u.{ROW_HASH} OR t.{IS_DELETED})")
    } else {
        format!("t.{ROW_HASH} <> u.{ROW_HASH}")
    };
    let mut insert_cols: Vec<String> = all.iter().map(|c| quote(c)).collect();
    insert_cols.extend([VALID_FROM, VALID_TO, IS_CURRENT].map(String::from));
    let mut insert_vals: Vec<String> = all.iter().map(|c| format!("u.{}", quote(c))).collect();
    insert_vals.extend([t.clone(), "NULL".into(), "TRUE".into()]);
    if new_record {
        insert_cols.push(IS_DELETED.into());
        insert_vals.push("(u._action = 'insert_deleted')".into());
    }
    insert_cols.extend([ROW_HASH, BATCH_ID].map(String::from));
    insert_vals.extend([format!("u.{ROW_HASH}"), literal(batch_id)]);
    sql.push_str(&format!(
        "
  )
  SELECT * FROM changes
) AS u
ON t.{IS_CURRENT} AND {on_t}
WHEN MATCHED AND ((u._action = 'upsert' AND {changed}) OR u._action = 'close') THEN
  UPDATE SET {VALID_TO} = {t}, {IS_CURRENT} = FALSE
WHEN NOT MATCHED AND u._action <> 'close' THEN
  INSERT ({}) VALUES ({})",
        insert_cols.join(", "),
        insert_vals.join(", "),
    ));
    Ok(sql)
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
