//! The embedded engine over rows held in memory (the `RowQuery` port): landing's expectations
//! run here as SQL over a file's rows before anything is written.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use floe_core::ports::RowQuery;
use floe_core::{Error, Result};

/// DataFusion over in-memory rows; one session per statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryEngine;

#[async_trait]
impl RowQuery for MemoryEngine {
    async fn query_rows(
        &self,
        name: &str,
        rows: RecordBatch,
        sql: &str,
    ) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let table = MemTable::try_new(rows.schema(), vec![vec![rows]])
            .map_err(|e| Error::Internal(format!("rows as a table: {e}")))?;
        ctx.register_table(name, Arc::new(table))
            .map_err(|e| Error::Internal(e.to_string()))?;
        async { ctx.sql(sql).await?.collect().await }
            .await
            .map_err(|e| Error::Sql(e.to_string()))
    }
}
