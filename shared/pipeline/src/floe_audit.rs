//! Writing floe's own tables in `floe_audit` (rejected batches, the file ledger, expectation
//! results, dropped rows): each is created on its first write, and written by appends keyed by a
//! batch id, so a replayed message records nothing twice.

use floe_core::ports::LakeWrites;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;
use floe_core::ports::{Lake, WriteOptions};
use floe_core::{BatchId, Error, Result, RunId, TableRef};

/// Appends one batch of rows (`columns` of `schema`) to `table` as the write of `batch`.
pub(crate) async fn append(
    lake: &dyn Lake,
    table: &TableRef,
    schema: Arc<Schema>,
    columns: Vec<ArrayRef>,
    batch: BatchId,
    run: &RunId,
) -> Result<()> {
    if !lake.table_exists(table).await? {
        match lake.create_table(table, schema.clone()).await {
            Ok(()) | Err(Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let rows = RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal(format!("building rows of {table}: {e}")))?;
    lake.append(table, vec![rows], &WriteOptions::batch(batch, run.clone()))
        .await?;
    Ok(())
}
