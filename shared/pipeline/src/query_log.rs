//! `floe_audit.query_log`: every statement a stage ran for a message, with what it scanned and
//! the engine time it took, so that cost is a figure anyone can query (and `floe cost` sums).
//!
//! A stage's work runs inside `floe_core::cost::collect`; what the engine recorded is appended
//! here once per message, after the work, whether it succeeded or not (a failed attempt's
//! statements were run and billed too). A replayed message is logged again for the same reason.
//! Athena: bytes are `DataScannedInBytes` (the billed figure before its 10 MB minimum, which
//! `floe cost` adds); the embedded engine: the decoded bytes its table scans produced.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use floe_core::cost::Statement;
use floe_core::ports::Lake;
use floe_core::{BatchId, Error, Result, RunId, TableRef};

use crate::sql::Dialect;

/// The table's name.
pub fn table() -> TableRef {
    TableRef::new("floe_audit", "query_log").expect("a valid name")
}

fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("batch_id", DataType::Utf8, true),
        Field::new("stage", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("statement_kind", DataType::Utf8, false),
        Field::new("bytes_scanned", DataType::Int64, false),
        Field::new("engine_ms", DataType::Int64, false),
        Field::new("started_at", ts, false),
        Field::new("engine", DataType::Utf8, false),
    ]))
}

/// Who the statements were run for.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// The run.
    pub run_id: Option<RunId>,
    /// The batch (the landed file's).
    pub batch_id: Option<BatchId>,
    /// The table, unless a statement names its own (`floe_core::cost::on_table`).
    pub table: Option<String>,
}

/// Appends the statements one stage ran for one message.
pub async fn append(
    lake: &dyn Lake,
    stage: &str,
    work: &Work,
    statements: &[Statement],
) -> Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    let t = table();
    let schema = schema();
    let n = statements.len();
    let run = work.run_id.clone().unwrap_or_default();
    let engine = match lake.dialect() {
        Dialect::Trino => "athena",
        Dialect::DataFusion => "embedded",
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run.as_str(); n])),
        Arc::new(StringArray::from(vec![
            work.batch_id
                .as_ref()
                .map(BatchId::as_str);
            n
        ])),
        Arc::new(StringArray::from(vec![stage; n])),
        Arc::new(StringArray::from(
            statements
                .iter()
                .map(|s| s.table.as_deref().or(work.table.as_deref()))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            statements.iter().map(|s| s.kind).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            statements
                .iter()
                .map(|s| i64::try_from(s.bytes_scanned).unwrap_or(i64::MAX))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            statements
                .iter()
                .map(|s| i64::try_from(s.engine_ms).unwrap_or(i64::MAX))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(
                statements
                    .iter()
                    .map(|s| s.started_at.timestamp_micros())
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![engine; n])),
    ];
    let rows = RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal(format!("building rows of {t}: {e}")))?;
    // A log entry, not a batch: every attempt's statements were run, so each is logged.
    lake.append_log(&t, vec![rows]).await
}
