//! What the statements floe runs cost: bytes scanned and engine time per statement, attributed
//! to the work that ran them.
//!
//! Engines report each statement they run with [`record`] (Athena: `DataScannedInBytes` and
//! engine time from GetQueryExecution; the embedded engine: the bytes its table scans
//! produced). A stage runs one message's work inside [`collect`], which gathers what was
//! recorded in that task, and writes it to `floe_audit.query_log` once, at the end; a stage
//! that works on several tables at once labels each table's part with [`on_table`]. Outside
//! [`collect`] nothing is kept.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// One statement an engine ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// What it was: `select`, `insert`, `merge`, `delete`, `ddl` or `other`.
    pub kind: &'static str,
    /// The table the work was for (set by [`on_table`]), if any.
    pub table: Option<String>,
    /// Bytes the engine read for it (what Athena bills).
    pub bytes_scanned: u64,
    /// Time the engine spent on it.
    pub engine_ms: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

#[derive(Clone)]
struct Sink {
    rows: Arc<Mutex<Vec<Statement>>>,
    table: Option<String>,
    /// Bytes scanned within the innermost [`on_table_measured`].
    tally: Option<Arc<AtomicU64>>,
}

tokio::task_local! {
    static SINK: Sink;
}

/// Runs `work`, returning its output and the statements it ran (in this task).
pub async fn collect<F: Future>(work: F) -> (F::Output, Vec<Statement>) {
    let rows = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink {
        rows: rows.clone(),
        table: None,
        tally: None,
    };
    let out = SINK.scope(sink, work).await;
    let rows = std::mem::take(&mut *rows.lock().unwrap_or_else(|e| e.into_inner()));
    (out, rows)
}

/// Runs `work` with the statements it runs attributed to `table` (inside [`collect`]; a no-op
/// outside it).
pub async fn on_table<F: Future>(table: &str, work: F) -> F::Output {
    match SINK.try_with(Clone::clone) {
        Ok(sink) => {
            let sink = Sink {
                table: Some(table.to_owned()),
                ..sink
            };
            SINK.scope(sink, work).await
        }
        Err(_) => work.await,
    }
}

/// [`on_table`], also returning the bytes its statements scanned: `None` outside [`collect`],
/// where nothing is recorded.
pub async fn on_table_measured<F: Future>(table: &str, work: F) -> (F::Output, Option<u64>) {
    match SINK.try_with(Clone::clone) {
        Ok(sink) => {
            let tally = Arc::new(AtomicU64::new(0));
            let sink = Sink {
                table: Some(table.to_owned()),
                tally: Some(tally.clone()),
                ..sink
            };
            let out = SINK.scope(sink, work).await;
            (out, Some(tally.load(Ordering::Relaxed)))
        }
        Err(_) => (work.await, None),
    }
}

/// Records a statement that ran (kept only inside [`collect`]).
pub fn record(sql: &str, bytes_scanned: u64, engine_ms: u64, started_at: DateTime<Utc>) {
    let _ = SINK.try_with(|sink| {
        if let Some(t) = &sink.tally {
            t.fetch_add(bytes_scanned, Ordering::Relaxed);
        }
        sink.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Statement {
                kind: kind_of(sql),
                table: sink.table.clone(),
                bytes_scanned,
                engine_ms,
                started_at,
            });
    });
}

/// A statement's kind, from its first word (comments and parentheses skipped).
pub fn kind_of(sql: &str) -> &'static str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest.trim_start();
        } else {
            break;
        }
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "select" | "with" | "values" | "show" | "describe" | "explain" => "select",
        "insert" => "insert",
        "merge" => "merge",
        "delete" => "delete",
        "update" => "update",
        "create" | "drop" | "alter" | "msck" => "ddl",
        "optimize" | "vacuum" => "maintenance",
        _ => "other",
    }
}

/// What Athena bills for a statement: DDL is free; anything else at least 10 MB, rounded up
/// to the megabyte.
pub fn athena_billed_bytes(kind: &str, bytes_scanned: u64) -> u64 {
    const MB: u64 = 1024 * 1024;
    if kind == "ddl" {
        return 0;
    }
    bytes_scanned.div_ceil(MB).max(10) * MB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_first_word() {
        assert_eq!(kind_of("-- dbt\n/* x */ (SELECT 1)"), "select");
        assert_eq!(kind_of("WITH a AS (SELECT 1) SELECT * FROM a"), "select");
        assert_eq!(kind_of("merge into t using s on true"), "merge");
        assert_eq!(kind_of("CREATE TABLE t (a int)"), "ddl");
        assert_eq!(
            kind_of("OPTIMIZE t REWRITE DATA USING BIN_PACK"),
            "maintenance"
        );
        assert_eq!(kind_of(""), "other");
    }

    #[test]
    fn athena_bills_ten_megabytes_at_least_and_no_ddl() {
        let mb = 1024 * 1024;
        assert_eq!(athena_billed_bytes("select", 0), 10 * mb);
        assert_eq!(athena_billed_bytes("select", 10 * mb + 1), 11 * mb);
        assert_eq!(athena_billed_bytes("ddl", 5 * mb), 0);
    }

    #[tokio::test]
    async fn statements_are_kept_inside_collect_and_labelled_by_table() {
        record("select 1", 5, 1, Utc::now());
        let ((), rows) = collect(async {
            record("select 1", 10, 2, Utc::now());
            on_table("silver.t", async {
                record("merge into x", 20, 3, Utc::now())
            })
            .await;
        })
        .await;
        let got: Vec<_> = rows
            .iter()
            .map(|s| (s.kind, s.table.as_deref(), s.bytes_scanned))
            .collect();
        assert_eq!(
            got,
            vec![("select", None, 10), ("merge", Some("silver.t"), 20)]
        );
    }
}
