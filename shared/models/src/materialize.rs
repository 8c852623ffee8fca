//! Materializations as SQL: what each kind of model runs, per dialect.
//!
//! A model's rendered SELECT is wrapped into the statements its materialization needs. Every
//! write is staged by the lake (write-audit-publish); these are the statements, not the
//! staging. On Athena, a floe table `ns.t` is an Iceberg table `ns.t__data` behind a view `ns.t`
//! pinned at the published snapshot (see floe-aws), so DML names `__data` directly.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime};
use floe_core::TableRef;
use floe_core::ports::Dialect;
use serde::Serialize;

use crate::project::{ChunkSize, ChunkSpec, DataTest, Materialized, Period, Strategy, TestKind};

/// The suffix of the Iceberg table behind a floe table's view on Athena.
pub const ATHENA_DATA_SUFFIX: &str = "__data";

/// One statement of a model's build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Create (or replace) the model's view with this SELECT.
    View {
        /// The view's SELECT.
        sql: String,
    },
    /// Replace the table's rows with this SELECT's, as one staged snapshot.
    Replace {
        /// The SELECT.
        sql: String,
    },
    /// Append this SELECT's rows, as one staged snapshot.
    Append {
        /// The SELECT.
        sql: String,
    },
    /// Run this statement against the table's data (Athena: MERGE), as one staged snapshot.
    Statement {
        /// The statement.
        sql: String,
    },
}

impl Step {
    /// The SQL of the step.
    pub fn sql(&self) -> &str {
        match self {
            Step::View { sql }
            | Step::Replace { sql }
            | Step::Append { sql }
            | Step::Statement { sql } => sql,
        }
    }
}

/// Quotes an identifier for both dialects.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statements that build a model whose SELECT is `sql` into `this`. `existing` holds the
/// table's columns when it exists already (incremental runs need them), else None.
pub fn plan(
    dialect: Dialect,
    materialized: &Materialized,
    sql: &str,
    this: &TableRef,
    existing: Option<&[String]>,
) -> Vec<Step> {
    match (materialized, existing) {
        (Materialized::View, _) => vec![Step::View {
            sql: sql.to_owned(),
        }],
        (Materialized::Table, _)
        | (Materialized::Incremental { .. }, None)
        | (Materialized::InsertByChunk(_), _) => vec![Step::Replace {
            sql: sql.to_owned(),
        }],
        (
            Materialized::Incremental {
                strategy: Strategy::Append,
                ..
            },
            Some(_),
        ) => vec![Step::Append {
            sql: sql.to_owned(),
        }],
        (
            Materialized::Incremental {
                strategy: Strategy::Merge,
                unique_key,
            },
            Some(columns),
        ) => vec![merge(dialect, sql, this, unique_key, columns)],
    }
}

fn merge(dialect: Dialect, sql: &str, this: &TableRef, key: &[String], columns: &[String]) -> Step {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    match dialect {
        // No MERGE in DataFusion: the new contents are the run's rows plus the old rows whose key
        // the run did not bring, written as one replacing snapshot.
        Dialect::DataFusion => {
            let on: Vec<String> = key
                .iter()
                .map(|k| format!("_floe_new.{q} = _floe_old.{q}", q = ident(k)))
                .collect();
            let list = cols.join(", ");
            let old_list: Vec<String> = cols.iter().map(|c| format!("_floe_old.{c}")).collect();
            Step::Replace {
                sql: format!(
                    "WITH _floe_new AS (\n{sql}\n)\nSELECT {list} FROM _floe_new\nUNION ALL\nSELECT {} FROM {this} _floe_old\nWHERE NOT EXISTS (SELECT 1 FROM _floe_new WHERE {})",
                    old_list.join(", "),
                    on.join(" AND ")
                ),
            }
        }
        Dialect::Trino => {
            let on: Vec<String> = key
                .iter()
                .map(|k| format!("t.{q} = s.{q}", q = ident(k)))
                .collect();
            let set: Vec<String> = columns
                .iter()
                .filter(|c| !key.contains(c))
                .map(|c| format!("{q} = s.{q}", q = ident(c)))
                .collect();
            let values: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
            let matched = if set.is_empty() {
                String::new()
            } else {
                format!("\nWHEN MATCHED THEN UPDATE SET {}", set.join(", "))
            };
            Step::Statement {
                sql: format!(
                    "MERGE INTO {}.{}{ATHENA_DATA_SUFFIX} t\nUSING (\n{sql}\n) s\nON {}{matched}\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
                    this.namespace,
                    this.name,
                    on.join(" AND "),
                    cols.join(", "),
                    values.join(", ")
                ),
            }
        }
    }
}

/// A bound of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Bound {
    /// An integer.
    Int(i64),
    /// A date.
    Date(NaiveDate),
    /// A timestamp (UTC).
    Timestamp(NaiveDateTime),
}

impl Bound {
    /// The bound as a SQL literal (both dialects).
    pub fn sql(&self) -> String {
        match self {
            Bound::Int(n) => n.to_string(),
            Bound::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Bound::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Int(n) => write!(f, "{n}"),
            Bound::Date(d) => write!(f, "{d}"),
            Bound::Timestamp(t) => write!(f, "{t}"),
        }
    }
}

/// One chunk of an insert_by_chunk build: `lower <= column < upper`, or the NULLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// 0-based position.
    pub index: usize,
    /// Inclusive lower bound; None for the chunk of NULLs.
    pub lower: Option<Bound>,
    /// Exclusive upper bound; None for the chunk of NULLs.
    pub upper: Option<Bound>,
}

impl Chunk {
    /// `[lower, upper)` or `NULL`, for progress lines.
    pub fn label(&self) -> String {
        match (&self.lower, &self.upper) {
            (Some(l), Some(u)) => format!("[{l}, {u})"),
            _ => "NULL".to_owned(),
        }
    }
}

/// The most chunks one build may have: more means the chunk size is too small.
pub const MAX_CHUNKS: usize = 10_000;

fn period_start(p: Period, d: NaiveDate) -> NaiveDate {
    match p {
        Period::Day => d,
        Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Period::Month => d.with_day(1).expect("day 1 exists"),
        Period::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("Jan 1 exists"),
    }
}

fn period_next(p: Period, d: NaiveDate) -> NaiveDate {
    match p {
        Period::Day => d + Duration::days(1),
        Period::Week => d + Duration::days(7),
        Period::Month => d + Months::new(1),
        Period::Year => d + Months::new(12),
    }
}

/// The chunks covering `[min, max]` of the chunk column (plus one for NULLs when there are).
pub fn chunks(
    spec: &ChunkSpec,
    min: Option<Bound>,
    max: Option<Bound>,
    has_nulls: bool,
) -> Result<Vec<Chunk>, String> {
    let mut out = Vec::new();
    if let (Some(min), Some(max)) = (min, max) {
        let mut push = |lower: Bound, upper: Bound| -> Result<(), String> {
            if out.len() >= MAX_CHUNKS {
                return Err(format!(
                    "more than {MAX_CHUNKS} chunks of {} between {min} and {max}: use a larger chunk_size",
                    spec.column
                ));
            }
            out.push(Chunk {
                index: out.len(),
                lower: Some(lower),
                upper: Some(upper),
            });
            Ok(())
        };
        match (spec.size, min, max) {
            (ChunkSize::Range(w), Bound::Int(lo), Bound::Int(hi)) => {
                let mut at = lo.div_euclid(w) * w;
                while at <= hi {
                    push(Bound::Int(at), Bound::Int(at + w))?;
                    at += w;
                }
            }
            (ChunkSize::Period(p), Bound::Date(lo), Bound::Date(hi)) => {
                let mut at = period_start(p, lo);
                while at <= hi {
                    let next = period_next(p, at);
                    push(Bound::Date(at), Bound::Date(next))?;
                    at = next;
                }
            }
            (ChunkSize::Period(p), Bound::Timestamp(lo), Bound::Timestamp(hi)) => {
                let mut at = period_start(p, lo.date());
                while at.and_hms_opt(0, 0, 0).expect("midnight") <= hi {
                    let next = period_next(p, at);
                    push(
                        Bound::Timestamp(at.and_hms_opt(0, 0, 0).expect("midnight")),
                        Bound::Timestamp(next.and_hms_opt(0, 0, 0).expect("midnight")),
                    )?;
                    at = next;
                }
            }
            (size, lo, _) => {
                return Err(format!(
                    "chunk_size {} does not fit the values of {} (first value {lo}): periods (day, week, month, year) split dates and timestamps, numbers split integers",
                    match size {
                        ChunkSize::Range(w) => w.to_string(),
                        ChunkSize::Period(p) => format!("{p:?}").to_lowercase(),
                    },
                    spec.column
                ));
            }
        }
    }
    if has_nulls {
        out.push(Chunk {
            index: out.len(),
            lower: None,
            upper: None,
        });
    }
    Ok(out)
}

/// The query that sizes an insert_by_chunk build: smallest and largest chunk value, all rows,
/// and rows whose chunk value is NULL.
pub fn chunk_bounds_sql(sql: &str, column: &str) -> String {
    let c = ident(column);
    format!(
        "SELECT MIN({c}) AS lo, MAX({c}) AS hi, COUNT(*) AS n, COUNT(*) - COUNT({c}) AS nulls FROM (\n{sql}\n) _floe_all"
    )
}

/// The rows of one chunk.
pub fn chunk_sql(sql: &str, column: &str, chunk: &Chunk) -> String {
    let c = ident(column);
    let filter = match (&chunk.lower, &chunk.upper) {
        (Some(l), Some(u)) => format!("{c} >= {} AND {c} < {}", l.sql(), u.sql()),
        _ => format!("{c} IS NULL"),
    };
    format!("SELECT * FROM (\n{sql}\n) _floe_chunk WHERE {filter}")
}

/// The completeness checks of an insert_by_chunk build written to `built`: (name, query
/// returning failing rows). `rows_in` is the row count of the model's whole SELECT.
pub fn chunk_checks(built: &TableRef, spec: &ChunkSpec, rows_in: u64) -> Vec<(String, String)> {
    let mut checks = vec![(
        format!("rows in equal rows out ({rows_in})"),
        format!(
            "SELECT n AS rows_out, {rows_in} AS rows_in FROM (SELECT COUNT(*) AS n FROM {built}) _floe_out WHERE n <> {rows_in}"
        ),
    )];
    if !spec.unique_key.is_empty() {
        let key: Vec<String> = spec.unique_key.iter().map(|k| ident(k)).collect();
        let key = key.join(", ");
        checks.push((
            format!("no duplicate keys ({})", spec.unique_key.join(", ")),
            format!(
                "SELECT {key}, COUNT(*) AS copies FROM {built} GROUP BY {key} HAVING COUNT(*) > 1"
            ),
        ));
    }
    checks
}

/// A JSON value from YAML as a SQL literal.
pub fn literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => floe_sql::literal(s),
        serde_json::Value::Bool(b) => b.to_string().to_uppercase(),
        serde_json::Value::Null => "NULL".to_owned(),
        other => other.to_string(),
    }
}

/// A data test as a query returning the failing rows. `relation` is the model's relation as the
/// test reads it; `other` is the rendered `to` / `compare_to` relation, when the test has one;
/// `custom` is the rendered SQL of a custom test.
pub fn test_sql(
    test: &DataTest,
    relation: &str,
    other: Option<&str>,
    custom: Option<&str>,
) -> String {
    match &test.kind {
        TestKind::NotNull { column } => {
            format!("SELECT * FROM {relation} WHERE {} IS NULL", ident(column))
        }
        TestKind::Unique { column } => {
            let c = ident(column);
            format!(
                "SELECT {c}, COUNT(*) AS copies FROM {relation} WHERE {c} IS NOT NULL GROUP BY {c} HAVING COUNT(*) > 1"
            )
        }
        TestKind::AcceptedValues { column, values } => {
            let c = ident(column);
            let list: Vec<String> = values.iter().map(literal).collect();
            format!(
                "SELECT {c}, COUNT(*) AS rows_with_value FROM {relation} WHERE {c} IS NOT NULL AND {c} NOT IN ({}) GROUP BY {c}",
                list.join(", ")
            )
        }
        TestKind::Relationships { column, field, .. } => {
            let (c, f) = (ident(column), ident(field));
            format!(
                "SELECT _floe_child.{c} FROM {relation} _floe_child LEFT JOIN {} _floe_parent ON _floe_child.{c} = _floe_parent.{f} WHERE _floe_child.{c} IS NOT NULL AND _floe_parent.{f} IS NULL",
                other.unwrap_or("<missing relation>")
            )
        }
        TestKind::RowCount { filter, .. } => {
            let filter = filter
                .as_ref()
                .map(|f| format!(" WHERE {f}"))
                .unwrap_or_default();
            format!(
                "SELECT _floe_m.n AS model_rows, _floe_c.n AS compared_rows FROM (SELECT COUNT(*) AS n FROM {relation}) _floe_m CROSS JOIN (SELECT COUNT(*) AS n FROM {}{filter}) _floe_c WHERE _floe_m.n <> _floe_c.n",
                other.unwrap_or("<missing relation>")
            )
        }
        TestKind::Custom { .. } => custom.unwrap_or("SELECT 1 WHERE FALSE").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: ChunkSize) -> ChunkSpec {
        ChunkSpec {
            column: "d".into(),
            size,
            unique_key: vec!["id".into()],
        }
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_cover_the_range_from_their_start() {
        let c = chunks(
            &spec(ChunkSize::Period(Period::Month)),
            Some(Bound::Date(date("2026-01-15"))),
            Some(Bound::Date(date("2026-03-01"))),
            true,
        )
        .unwrap();
        let labels: Vec<String> = c.iter().map(Chunk::label).collect();
        assert_eq!(
            labels,
            vec![
                "[2026-01-01, 2026-02-01)",
                "[2026-02-01, 2026-03-01)",
                "[2026-03-01, 2026-04-01)",
                "NULL"
            ]
        );
        let w = chunks(
            &spec(ChunkSize::Period(Period::Week)),
            Some(Bound::Date(date("2026-11-25"))),
            Some(Bound::Date(date("2026-11-25"))),
            false,
        )
        .unwrap();
        assert_eq!(
            w[0].lower,
            Some(Bound::Date(date("2026-11-23"))),
            "a Monday"
        );
    }

    #[test]
    fn ranges_split_integers_and_refuse_mismatched_types() {
        let c = chunks(
            &spec(ChunkSize::Range(10)),
            Some(Bound::Int(-3)),
            Some(Bound::Int(15)),
            false,
        )
        .unwrap();
        let labels: Vec<String> = c.iter().map(Chunk::label).collect();
        assert_eq!(labels, vec!["[-10, 0)", "[0, 10)", "[10, 20)"]);
        let e = chunks(
            &spec(ChunkSize::Range(10)),
            Some(Bound::Date(date("2026-01-01"))),
            Some(Bound::Date(date("2026-01-02"))),
            false,
        )
        .unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        let e = chunks(
            &spec(ChunkSize::Range(1)),
            Some(Bound::Int(0)),
            Some(Bound::Int(1_000_000)),
            false,
        )
        .unwrap_err();
        assert!(e.contains("larger chunk_size"), "{e}");
        assert!(
            chunks(&spec(ChunkSize::Range(5)), None, None, false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn literals_quote_strings() {
        assert_eq!(literal(&serde_json::json!("it's")), "'it''s'");
        assert_eq!(literal(&serde_json::json!(3)), "3");
        assert_eq!(literal(&serde_json::json!(true)), "TRUE");
    }
}
