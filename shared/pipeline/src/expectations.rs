//! Row-level expectations, checked when a file lands: each table's `expect:` entries run as SQL
//! over the file's rows typed as standardise types them (the embedded engine, in the landing
//! process, whatever the lake's engine), and each failing row is refused with the file
//! (`quarantine_file`, the default), left out of bronze and kept in `floe_audit.dropped_rows`
//! (`drop`), or kept and counted (`warn`). Every check's counts go to
//! `floe_audit.expectation_results`.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use floe_config::{Check, ColumnType, Expectation, OnFail, TableConfig};
use floe_core::ports::{Lake, RowQuery};
use floe_core::{BatchId, Error, Result, RunId, TableRef};
use serde_json::Value;

use crate::extract::{Extract, Problem};
use crate::sql::{Dialect, quote, sql_type, standardised};

/// Rows that fail one expectation.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The expectation.
    pub expectation: Expectation,
    /// The failing rows, as positions in the extract.
    pub rows: Vec<usize>,
}

/// What the expectations decided about a file.
#[derive(Debug)]
pub enum Verdict {
    /// The file lands: these rows (all, or all but the dropped ones).
    Land {
        /// The extract, without the dropped rows.
        extract: Extract,
        /// Every expectation with its failing rows (empty when it passed), in config order.
        results: Vec<Failed>,
        /// The dropped rows: (file line, expectation, the row's values as JSON).
        dropped: Vec<(u64, String, String)>,
        /// Rows checked.
        checked: usize,
    },
    /// The file is refused, with a problem per failing row.
    Refuse(Vec<Problem>),
}

fn literal(ty: ColumnType, v: &Value) -> String {
    match v {
        Value::String(s) => {
            let quoted = floe_sql::literal(s);
            if ty == ColumnType::String {
                quoted
            } else {
                format!("CAST({quoted} AS {})", sql_type(ty))
            }
        }
        Value::Bool(b) => b.to_string().to_uppercase(),
        v => v.to_string(),
    }
}

/// The condition a good row meets.
fn condition(table: &TableConfig, e: &Expectation) -> String {
    let ty = |c: &str| table.column(c).map_or(ColumnType::String, |c| c.ty);
    let col = e.column.as_deref().unwrap_or_default();
    let q = quote(col);
    match &e.check {
        Check::NotNull => format!("{q} IS NOT NULL"),
        Check::Range { min, max } => {
            let mut parts = Vec::new();
            if let Some(m) = min {
                parts.push(format!("{q} >= {}", literal(ty(col), m)));
            }
            if let Some(m) = max {
                parts.push(format!("{q} <= {}", literal(ty(col), m)));
            }
            format!("{q} IS NULL OR ({})", parts.join(" AND "))
        }
        Check::Regex(r) => format!("{q} IS NULL OR regexp_like({q}, {})", floe_sql::literal(r)),
        Check::AcceptedValues(values) => format!(
            "{q} IS NULL OR {q} IN ({})",
            values
                .iter()
                .map(|v| literal(ty(col), v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Check::Sql(s) => s.clone(),
    }
}

/// Runs `table`'s expectations over `extract` (read from `file`, or a chunk of it) on `engine`
/// and decides. Whether the whole file dropped every row is the caller's to ask
/// ([`all_dropped`]).
pub async fn check(
    table: &TableConfig,
    extract: Extract,
    file: &str,
    engine: &dyn RowQuery,
) -> Result<Verdict> {
    let checked = extract.rows();
    if table.expectations.is_empty() {
        return Ok(Verdict::Land {
            extract,
            results: Vec::new(),
            dropped: Vec::new(),
            checked,
        });
    }
    let mut fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| Field::new(&c.name, DataType::Utf8, true))
        .collect();
    fields.push(Field::new("_floe_row", DataType::UInt64, false));
    let schema = Arc::new(Schema::new(fields));
    let mut columns: Vec<ArrayRef> = extract.columns[..table.columns.len()].to_vec();
    columns.push(Arc::new(UInt64Array::from_iter_values(0..checked as u64)));
    let raw = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(format!("the rows of {file}: {e}")))?;
    let typed: Vec<String> = table
        .columns
        .iter()
        .map(|c| standardised(Dialect::DataFusion, c))
        .collect();
    let mut results = Vec::new();
    for e in &table.expectations {
        let sql = format!(
            "SELECT _floe_row FROM (SELECT {}, _floe_row FROM raw) t WHERE NOT COALESCE(({}), FALSE)",
            typed.join(", "),
            condition(table, e)
        );
        let batches = engine
            .query_rows("raw", raw.clone(), &sql)
            .await
            .map_err(|err| {
                let err = match err {
                    Error::Sql(words) => words,
                    other => other.to_string(),
                };
                Error::Config(format!(
                    "the expectation '{}' of {} ({}) does not run: {err}; fix it in {}",
                    e.name,
                    table.qualified_name(),
                    e.describe(),
                    table.file.display()
                ))
            })?;
        let mut rows = Vec::new();
        for b in &batches {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .expect("row positions");
            rows.extend(ids.values().iter().map(|v| *v as usize));
        }
        rows.sort_unstable();
        results.push(Failed {
            expectation: e.clone(),
            rows,
        });
    }
    let text = |c: usize, r: usize| -> Option<String> {
        let a = extract.columns[c]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text columns");
        (!a.is_null(r)).then(|| a.value(r).to_owned())
    };
    // Refused: every row of every quarantine_file expectation that failed, named.
    let mut problems = Vec::new();
    for f in results
        .iter()
        .filter(|f| f.expectation.on_fail == OnFail::QuarantineFile)
    {
        for &r in &f.rows {
            if problems.len() >= crate::extract::MAX_PROBLEMS {
                break;
            }
            let e = &f.expectation;
            let value = e
                .column
                .as_ref()
                .and_then(|c| table.columns.iter().position(|d| &d.name == c))
                .map(|c| match text(c, r) {
                    Some(v) => format!(" (value '{v}')"),
                    None => " (no value)".into(),
                })
                .unwrap_or_default();
            problems.push(Problem {
                line: Some(extract.lines[r]),
                column: e.column.clone(),
                message: format!(
                    "fails the expectation '{}': {}{value}; fix the row, or set on_fail: drop or warn for it in {}",
                    e.name,
                    e.describe(),
                    table.file.display()
                ),
            });
        }
    }
    if !problems.is_empty() {
        return Ok(Verdict::Refuse(problems));
    }
    // Dropped: the rows of every drop expectation that failed (a row is dropped once, for the
    // first expectation it failed).
    let mut drop_for: Vec<Option<&str>> = vec![None; checked];
    for f in results
        .iter()
        .filter(|f| f.expectation.on_fail == OnFail::Drop)
    {
        for &r in &f.rows {
            drop_for[r].get_or_insert(&f.expectation.name);
        }
    }
    let dropped: Vec<(u64, String, String)> = drop_for
        .iter()
        .enumerate()
        .filter_map(|(r, e)| e.map(|e| (r, e)))
        .map(|(r, e)| {
            let row: serde_json::Map<String, Value> = table
                .columns
                .iter()
                .enumerate()
                .map(|(c, d)| {
                    (
                        d.name.clone(),
                        text(c, r).map_or(Value::Null, Value::String),
                    )
                })
                .collect();
            (
                extract.lines[r],
                e.to_owned(),
                Value::Object(row).to_string(),
            )
        })
        .collect();
    let extract = if dropped.is_empty() {
        extract
    } else {
        let keep = BooleanArray::from(drop_for.iter().map(|d| d.is_none()).collect::<Vec<_>>());
        let columns = extract
            .columns
            .iter()
            .map(|c| arrow_select::filter::filter(c, &keep))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("dropping rows of {file}: {e}")))?;
        let lines = extract
            .lines
            .iter()
            .zip(&drop_for)
            .filter(|(_, d)| d.is_none())
            .map(|(l, _)| *l)
            .collect();
        Extract { columns, lines }
    };
    Ok(Verdict::Land {
        extract,
        results,
        dropped,
        checked,
    })
}

/// The problem of a file whose every row an expectation with `on_fail: drop` dropped (nothing
/// would land), if that is what happened to it.
pub fn all_dropped(results: &[Failed], dropped: usize, checked: usize) -> Option<Problem> {
    (dropped > 0 && dropped == checked).then(|| {
        Problem::file(format!(
            "every row fails an expectation with on_fail: drop ({}), so nothing would land: fix the extract",
            results
                .iter()
                .filter(|f| f.expectation.on_fail == OnFail::Drop && !f.rows.is_empty())
                .map(|f| f.expectation.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The table of dropped rows.
pub fn dropped_table() -> TableRef {
    TableRef::new("floe_audit", "dropped_rows").expect("a valid name")
}

/// The table of expectation counts, one row per expectation per landed file.
pub fn results_table() -> TableRef {
    TableRef::new("floe_audit", "expectation_results").expect("a valid name")
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Records the counts of a landed file's expectations and its dropped rows (once per batch).
#[allow(clippy::too_many_arguments)]
pub async fn record(
    lake: &dyn Lake,
    table: &TableConfig,
    batch: &BatchId,
    file: &str,
    results: &[Failed],
    dropped: &[(u64, String, String)],
    checked: usize,
    at: DateTime<Utc>,
    run: &RunId,
) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let n = results.len();
    let same = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
    let when = |n: usize| {
        Arc::new(
            TimestampMicrosecondArray::from(vec![at.timestamp_micros(); n]).with_timezone("UTC"),
        ) as ArrayRef
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("batch_id", DataType::Utf8, false),
        Field::new("file_key", DataType::Utf8, false),
        Field::new("expectation", DataType::Utf8, false),
        Field::new("on_fail", DataType::Utf8, false),
        Field::new("failing_rows", DataType::Int64, false),
        Field::new("checked_rows", DataType::Int64, false),
        Field::new("checked_at", utc(), false),
    ]));
    crate::floe_audit::append(
        lake,
        &results_table(),
        schema,
        vec![
            same(&table.qualified_name()),
            same(batch.as_str()),
            same(file),
            Arc::new(StringArray::from_iter_values(
                results.iter().map(|f| f.expectation.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                results.iter().map(|f| f.expectation.on_fail.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                results.iter().map(|f| f.rows.len() as i64),
            )),
            Arc::new(Int64Array::from(vec![checked as i64; n])),
            when(n),
        ],
        BatchId::derive(&["expectations", batch.as_str()]),
        run,
    )
    .await?;
    if dropped.is_empty() {
        return Ok(());
    }
    let n = dropped.len();
    let same = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
    let schema = Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("batch_id", DataType::Utf8, false),
        Field::new("file_key", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("expectation", DataType::Utf8, false),
        Field::new("row_json", DataType::Utf8, false),
        Field::new("dropped_at", utc(), false),
    ]));
    crate::floe_audit::append(
        lake,
        &dropped_table(),
        schema,
        vec![
            same(&table.qualified_name()),
            same(batch.as_str()),
            same(file),
            Arc::new(Int64Array::from_iter_values(
                dropped.iter().map(|d| d.0 as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                dropped.iter().map(|d| d.1.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                dropped.iter().map(|d| d.2.as_str()),
            )),
            when(n),
        ],
        BatchId::derive(&["dropped", batch.as_str()]),
        run,
    )
    .await
}

/// A line for the logs and the ledger: what the expectations did to a landed file, if anything.
pub fn summary(results: &[Failed], dropped: usize) -> Option<String> {
    let warned: Vec<String> = results
        .iter()
        .filter(|f| f.expectation.on_fail == OnFail::Warn && !f.rows.is_empty())
        .map(|f| format!("{} ({} rows)", f.expectation.name, f.rows.len()))
        .collect();
    let mut parts = Vec::new();
    if dropped > 0 {
        parts.push(format!(
            "{dropped} row(s) dropped by expectations (floe_audit.dropped_rows)"
        ));
    }
    if !warned.is_empty() {
        parts.push(format!("expectations warned: {}", warned.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
