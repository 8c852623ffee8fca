//! Rejected batches: a batch whose silver history failed its audit is recorded in
//! `floe_audit.rejected_batches` and left out of every later silver build of its table, so the
//! next batch does not publish the rows that were refused. To bring the data in, land a corrected
//! extract (a new batch).

use std::sync::Arc;

use arrow_array::{StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use floe_core::ports::Lake;
use floe_core::{BatchId, Error, Result, RunId, TableRef};

/// The table of rejected batches.
pub fn table() -> TableRef {
    TableRef::new("floe_audit", "rejected_batches").expect("a valid name")
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("batch_id", DataType::Utf8, false),
        Field::new(
            "rejected_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// Records that `batch` was rejected for `silver` (a replay records nothing new).
pub async fn record(
    lake: &dyn Lake,
    silver: &TableRef,
    batch: &BatchId,
    run: &RunId,
    at: chrono::DateTime<chrono::Utc>,
    reason: &str,
) -> Result<()> {
    crate::floe_audit::append(
        lake,
        &table(),
        schema(),
        vec![
            Arc::new(StringArray::from(vec![silver.to_string()])),
            Arc::new(StringArray::from(vec![batch.to_string()])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![at.timestamp_micros()]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![reason.to_owned()])),
        ],
        batch.clone(),
        run,
    )
    .await
}

/// `bronze` without the given (rejected) batches, as a table expression.
pub fn without(bronze: &TableRef, rejected: &[String]) -> String {
    floe_sql::reads::without_batches(bronze, rejected)
}

/// The batches rejected for `silver`, with when each was rejected.
pub async fn rejected(
    lake: &dyn Lake,
    silver: &TableRef,
) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
    if !lake.table_exists(&table()).await? {
        return Ok(Vec::new());
    }
    let rows = lake
        .query(
            &floe_sql::reads::rejected_batches(&table(), silver),
            &floe_core::ports::ReadAt::Current,
        )
        .await?;
    let bad = |e: &dyn std::fmt::Display| Error::Internal(format!("reading rejected batches: {e}"));
    let mut out = Vec::new();
    for rb in rows {
        let ids = arrow_cast::cast(rb.column(0), &DataType::Utf8).map_err(|e| bad(&e))?;
        let ids = ids
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| bad(&"batch ids are not text"))?;
        let at = arrow_cast::cast(
            rb.column(1),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .map_err(|e| bad(&e))?;
        let at = at
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| bad(&"rejected_at is not a timestamp"))?;
        for i in 0..rb.num_rows() {
            let when = chrono::DateTime::from_timestamp_micros(at.value(i))
                .ok_or_else(|| bad(&"rejected_at out of range"))?;
            out.push((ids.value(i).to_owned(), when));
        }
    }
    Ok(out)
}
