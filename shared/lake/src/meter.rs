//! A physical-plan node that passes a table scan's batches through and counts their bytes: the
//! embedded engine's measure of what a statement read (Iceberg's DataFusion scan keeps no
//! metrics of its own).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// Counts the bytes of the batches its one child (a scan) produces.
#[derive(Debug)]
pub(crate) struct ScanMeter {
    scan: Arc<dyn ExecutionPlan>,
    bytes: Arc<AtomicU64>,
}

impl ScanMeter {
    pub(crate) fn new(scan: Arc<dyn ExecutionPlan>, bytes: Arc<AtomicU64>) -> Self {
        ScanMeter { scan, bytes }
    }
}

impl DisplayAs for ScanMeter {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ScanMeter")
    }
}

impl ExecutionPlan for ScanMeter {
    fn name(&self) -> &str {
        "ScanMeter"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.scan]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(scan) if children.is_empty() => {
                Ok(Arc::new(ScanMeter::new(scan, self.bytes.clone())))
            }
            _ => Err(datafusion::error::DataFusionError::Internal(
                "a scan meter has exactly one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let rows = self.scan.execute(partition, context)?;
        let schema = rows.schema();
        let bytes = self.bytes.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            rows.inspect(move |b| {
                if let Ok(b) = b {
                    bytes.fetch_add(b.get_array_memory_size() as u64, Ordering::Relaxed);
                }
            }),
        )))
    }
}
