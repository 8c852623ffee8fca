//! The run-log tables: `floe_audit.model_runs` (every model's outcome) and
//! `floe_audit.test_failures` (the failing rows of a data test).

use floe_core::ports::LakeWrites;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use floe_core::ports::{Lake, WriteOptions};
use floe_core::{BatchId, Error, Result, RunId, TableRef};
use serde::Serialize;

/// The table of run records.
pub fn model_runs_table() -> TableRef {
    TableRef::new("floe_audit", "model_runs").expect("a valid name")
}

/// The table of failing test rows.
pub fn test_failures_table() -> TableRef {
    TableRef::new("floe_audit", "test_failures").expect("a valid name")
}

/// One row of `floe_audit.model_runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run.
    pub run_id: String,
    /// What started it.
    pub trigger: String,
    /// The model.
    pub model: String,
    /// success, error, failed (tests), skipped.
    pub status: String,
    /// When its build started.
    pub started_at: DateTime<Utc>,
    /// When its audit ended.
    pub finished_at: DateTime<Utc>,
    /// Rows written.
    pub rows: u64,
    /// Bytes the engine scanned, when it reports them (Athena).
    pub bytes_scanned: Option<u64>,
    /// Why it failed, or which tests failed.
    pub message: Option<String>,
}

/// Creates `t` (and its namespace) unless it exists; another writer creating it first is fine.
pub(super) async fn ensure_table(lake: &dyn Lake, t: &TableRef, schema: Arc<Schema>) -> Result<()> {
    lake.ensure_namespace(&t.namespace).await?;
    if lake.table_exists(t).await? {
        return Ok(());
    }
    match lake.create_table(t, schema).await {
        Ok(()) | Err(Error::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Appends run records to `floe_audit.model_runs` (created on first use).
pub async fn record_runs(
    lake: &dyn Lake,
    run: &RunId,
    records: &[RunRecord],
    part: &str,
) -> Result<()> {
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    if records.is_empty() {
        return Ok(());
    }
    let t = model_runs_table();
    let tz: Arc<str> = Arc::from("UTC");
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("trigger", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new(
            "started_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
            true,
        ),
        Field::new(
            "finished_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
            true,
        ),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes_scanned", DataType::Int64, true),
        Field::new("message", DataType::Utf8, true),
    ]));
    ensure_table(lake, &t, schema.clone()).await?;
    let s = |f: fn(&RunRecord) -> Option<String>| -> Arc<dyn Array> {
        Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
    };
    let ts = |f: fn(&RunRecord) -> DateTime<Utc>| -> Arc<dyn Array> {
        Arc::new(
            TimestampMicrosecondArray::from(
                records
                    .iter()
                    .map(|r| f(r).timestamp_micros())
                    .collect::<Vec<_>>(),
            )
            .with_timezone(tz.clone()),
        )
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            s(|r| Some(r.run_id.clone())),
            s(|r| Some(r.trigger.clone())),
            s(|r| Some(r.model.clone())),
            s(|r| Some(r.status.clone())),
            ts(|r| r.started_at),
            ts(|r| r.finished_at),
            Arc::new(Int64Array::from(
                records
                    .iter()
                    .map(|r| Some(r.rows as i64))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                records
                    .iter()
                    .map(|r| r.bytes_scanned.map(|b| b as i64))
                    .collect::<Vec<_>>(),
            )),
            s(|r| r.message.clone()),
        ],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let options = WriteOptions {
        batch_id: Some(BatchId::derive(&[run.as_str(), "model_runs", part])),
        run_id: Some(run.clone()),
        ..Default::default()
    };
    lake.append(&t, vec![batch], &options).await.map(|_| ())
}

pub(super) async fn record_failures(
    lake: &dyn Lake,
    run: &RunId,
    at: DateTime<Utc>,
    failures: &[TestResult],
) -> Result<()> {
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    let t = test_failures_table();
    let tz: Arc<str> = Arc::from("UTC");
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("test", DataType::Utf8, false),
        Field::new("failing_rows", DataType::Int64, false),
        Field::new("examples", DataType::Utf8, true),
        Field::new(
            "failed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
            true,
        ),
    ]));
    ensure_table(lake, &t, schema.clone()).await?;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![run.as_str(); failures.len()])),
            Arc::new(StringArray::from(
                failures
                    .iter()
                    .map(|f| f.model.as_str())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                failures.iter().map(|f| f.test.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                failures
                    .iter()
                    .map(|f| f.failing_rows as i64)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                failures
                    .iter()
                    .map(|f| f.examples.join("\n"))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(vec![at.timestamp_micros(); failures.len()])
                    .with_timezone(tz),
            ),
        ],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let models: Vec<&str> = failures.iter().map(|f| f.model.as_str()).collect();
    let options = WriteOptions {
        batch_id: Some(BatchId::derive(
            &[run.as_str(), "test_failures"]
                .into_iter()
                .chain(models)
                .collect::<Vec<_>>(),
        )),
        run_id: Some(run.clone()),
        ..Default::default()
    };
    lake.append(&t, vec![batch], &options).await.map(|_| ())
}

/// One model's data test result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// The model.
    pub model: String,
    /// The test.
    pub test: String,
    /// Failing rows (0 = pass).
    pub failing_rows: u64,
    /// A few failing rows, as a table.
    pub examples: Vec<String>,
}
