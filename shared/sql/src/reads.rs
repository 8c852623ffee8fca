//! The reads floe makes of its own tables: the file ledger and rejected batches in
//! `floe_audit`, bronze without rejected batches or with columns declared after it was written,
//! and the values a type change cannot convert.

use floe_config::ColumnConfig;
use floe_core::TableRef;

use crate::{Dialect, literal, quote, standardised_expr};

/// Each file's latest record in the ledger `files` (a file is recorded once per outcome; the
/// newest wins, and of two at the same instant the later status name), ordered by key.
pub fn latest_file_records(files: &TableRef) -> String {
    format!(
        "SELECT file_key, table_name, extract_ts, size_bytes, status, reason, batch_id, report, recorded_at \
         FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY file_key ORDER BY recorded_at DESC, status DESC) AS _n FROM {files} f) x \
         WHERE _n = 1 ORDER BY file_key"
    )
}

/// The batches `rejections` records as rejected for `silver`, with when.
pub fn rejected_batches(rejections: &TableRef, silver: &TableRef) -> String {
    format!(
        "SELECT batch_id, rejected_at FROM {rejections} WHERE table_name = {}",
        literal(&silver.to_string())
    )
}

/// `bronze` without the given (rejected) batches, as a table expression.
pub fn without_batches(bronze: &TableRef, rejected: &[String]) -> String {
    if rejected.is_empty() {
        return bronze.to_string();
    }
    let list = rejected
        .iter()
        .map(|b| literal(b))
        .collect::<Vec<_>>()
        .join(", ");
    format!("(SELECT * FROM {bronze} WHERE _batch_id NOT IN ({list})) AS accepted")
}

/// `source` (a bronze table expression) with each of `missing` added as NULL text.
pub fn with_null_columns(source: &str, missing: &[&str]) -> String {
    if missing.is_empty() {
        return source.to_owned();
    }
    let added: String = missing
        .iter()
        .map(|c| format!(", CAST(NULL AS VARCHAR) AS {}", quote(c)))
        .collect();
    format!("(SELECT _floe_b.*{added} FROM {source} _floe_b) AS _floe_filled")
}

/// Up to 10 bronze values of `column` that do not convert to its declared type, with their
/// file and row, from `source`.
pub fn unconvertible(dialect: Dialect, column: &ColumnConfig, source: &str) -> String {
    let q = quote(&column.name);
    format!(
        "SELECT _source_file, _row_number, {q} FROM {source} WHERE NULLIF(TRIM({q}), '') IS NOT NULL AND ({}) IS NULL LIMIT 10",
        standardised_expr(dialect, column, true)
    )
}

/// How many rows a test query returns.
pub fn count_rows(query: &str) -> String {
    format!("SELECT COUNT(*) AS n FROM (\n{query}\n) _floe_test")
}

/// The first `limit` rows a test query returns, as examples.
pub fn first_rows(query: &str, limit: usize) -> String {
    format!("SELECT * FROM (\n{query}\n) _floe_test LIMIT {limit}")
}
