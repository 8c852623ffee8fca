//! The SQL floe writes, as pure functions of the table configs: nothing here runs a statement.
//!
//! Everything floe generates quotes identifiers with double quotes, which both DataFusion and
//! Athena (Trino) accept; the dialects differ in a few functions (string length, MD5, timestamp
//! parsing), rendered here.
//!
//! # Layout
//! - this module: quoting, SQL types, the declarative standardisation of one column, row
//!   fingerprints, timestamp literals, and the columns a table declares.
//! - [`bronze`]: bronze's layout (the source columns as text, then floe's batch columns).
//! - [`scd2`]: silver history (SCD2) as one query over bronze, for full and cdc loads, and the
//!   incremental statements (an extract applied, a late extract spliced in).
//! - [`reads`]: floe's reads of its own tables (the file ledger, rejected batches, bronze
//!   without rejected batches or with late-declared columns, unconvertible values, test counts).
//! - [`relation`]: the tables a piece of SQL names (a lexer that knows literals, quoted names
//!   and comments), and the same SQL with them prefixed or read at a snapshot.
//! - [`silver_tests`]: the tests a staged silver snapshot passes before it is published.
//! - [`athena`]: Athena's DDL and the statements only Athena runs (bronze append, publish views).

use chrono::{DateTime, Utc};
use floe_config::{ColumnConfig, ColumnType, RESCUED_COLUMN, SchemaChangePolicy, TableConfig};

pub mod athena;
pub mod bronze;
pub mod reads;
pub mod relation;
pub mod scd2;
pub mod silver_tests;

pub use floe_core::ports::Dialect;

/// A string literal: the one place floe escapes text for SQL (both dialects double a quote).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted identifier.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The SQL type of a column type.
pub fn sql_type(t: ColumnType) -> String {
    match t {
        ColumnType::String => "VARCHAR".into(),
        ColumnType::Tinyint => "TINYINT".into(),
        ColumnType::Smallint => "SMALLINT".into(),
        ColumnType::Int => "INT".into(),
        ColumnType::Bigint => "BIGINT".into(),
        ColumnType::Float => "REAL".into(),
        ColumnType::Double => "DOUBLE".into(),
        ColumnType::Decimal(p, s) => format!("DECIMAL({p},{s})"),
        ColumnType::Boolean => "BOOLEAN".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Timestamp => "TIMESTAMP".into(),
    }
}

/// The standardised value of a bronze text column: trimmed, empty as NULL, cast to its type.
pub fn standardised(dialect: Dialect, c: &ColumnConfig) -> String {
    format!(
        "{} AS {}",
        standardised_expr(dialect, c, false),
        quote(&c.name)
    )
}

/// [`standardised`] without its name; with `try_cast`, a value that does not convert is NULL
/// instead of an error (how `floe migrate` finds the values a new type cannot hold).
pub fn standardised_expr(dialect: Dialect, c: &ColumnConfig, try_cast: bool) -> String {
    let q = quote(&c.name);
    let cleaned = format!("NULLIF(TRIM({q}), '')");
    let cast = if try_cast { "TRY_CAST" } else { "CAST" };
    match c.ty {
        // Trino casts 'YYYY-MM-DD HH:MM:SS[.f]' only; landed files may use the ISO 'T' and a
        // trailing 'Z' (UTC), which the embedded engine reads as they are.
        ColumnType::Timestamp if dialect == Dialect::Trino => format!(
            "{cast}(REPLACE(REPLACE({cleaned}, 'T', ' '), 'Z', '') AS {})",
            sql_type(c.ty)
        ),
        ColumnType::String => cleaned,
        // Booleans arrive as true/false, t/f, yes/no, y/n or 1/0 in the wild.
        ColumnType::Boolean => format!(
            "CASE WHEN LOWER({cleaned}) IN ('true','t','yes','y','1') THEN TRUE \
             WHEN LOWER({cleaned}) IN ('false','f','no','n','0') THEN FALSE END"
        ),
        ty => format!("{cast}({cleaned} AS {})", sql_type(ty)),
    }
}

/// A NULL-safe, unambiguous text form of a row's values, for change detection: each value is
/// length-prefixed so that ('a|b','c') and ('a','b|c') differ, and NULL differs from ''.
///
/// The fingerprint is only ever compared with others of the same engine (a table is built by
/// one engine): engines render some values differently as text (Trino writes a DOUBLE 1.5 as
/// `1.5E0`), so the same row may hash differently on DataFusion and on Athena.
pub fn row_fingerprint(dialect: Dialect, columns: &[&str]) -> String {
    if columns.is_empty() {
        return "''".into();
    }
    match dialect {
        // The embedded engine's `floe_row_hash` computes exactly the expression below, natively
        // (floe-lake's engine module; a test there checks they agree).
        Dialect::DataFusion => format!(
            "floe_row_hash({})",
            columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Dialect::Trino => {
            let text = columns
                .iter()
                .map(|c| {
                    let v = format!("CAST({} AS VARCHAR)", quote(c));
                    format!("COALESCE(CAST(LENGTH({v}) AS VARCHAR) || ':' || {v}, '~')")
                })
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            // Trino's md5 takes and returns varbinary.
            format!("LOWER(TO_HEX(MD5(TO_UTF8({text}))))")
        }
    }
}

/// A timestamp literal of silver's `valid_from` / `valid_to` type (UTC, microseconds).
pub fn timestamp_literal(dialect: Dialect, at: Option<DateTime<Utc>>) -> String {
    let text = at.map(|t| format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ")));
    match dialect {
        Dialect::DataFusion => format!(
            "arrow_cast({}, 'Timestamp(Microsecond, Some(\"UTC\"))')",
            text.as_deref().unwrap_or("NULL")
        ),
        Dialect::Trino => match at {
            Some(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
            None => "CAST(NULL AS TIMESTAMP(6))".into(),
        },
    }
}

/// The source columns a table declares: its configured columns, then `_rescued` under
/// `schema_change: rescue` (the file's undeclared columns as one JSON object).
pub fn declared(table: &TableConfig) -> Vec<ColumnConfig> {
    let mut columns = table.columns.clone();
    if table.schema_change == SchemaChangePolicy::Rescue {
        columns.push(ColumnConfig {
            name: RESCUED_COLUMN.into(),
            ty: ColumnType::String,
            nullable: true,
            description: Some(
                "the file's columns the config does not declare, as one JSON object".into(),
            ),
        });
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_standardising() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        let c = ColumnConfig {
            name: "score".into(),
            ty: ColumnType::Decimal(5, 2),
            nullable: true,
            description: None,
        };
        assert_eq!(
            standardised(Dialect::DataFusion, &c),
            "CAST(NULLIF(TRIM(\"score\"), '') AS DECIMAL(5,2)) AS \"score\""
        );
    }
}
