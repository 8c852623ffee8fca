//! SQL reads: a fresh DataFusion session per query, with every table it names pinned to one
//! snapshot (the published one, or the one a time-travel read asks for).
//!
//! Pinning per query means a query never sees a table half-way through a commit, and reads made
//! while other processes commit always see a consistent version of each table.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::config::Dialect;
use datafusion::execution::context::SQLOptions;
use datafusion::sql::TableReference;
use floe_core::ports::{ReadAt, SnapshotInfo};
use floe_core::{Error, Result, TableRef};
use iceberg::spec::TableMetadata;
use iceberg_datafusion::IcebergStaticTableProvider;

use crate::commit::{BATCH_ID, RUN_ID};
use crate::{LocalLake, ice};

/// A DataFusion error as floe's: I/O and exhausted resources may pass (transient), everything
/// else is the query's fault (permanent).
fn sql_err(e: datafusion::error::DataFusionError) -> Error {
    use datafusion::error::DataFusionError as D;
    match e.find_root() {
        D::IoError(_) | D::ObjectStore(_) | D::ResourcesExhausted(_) => {
            Error::Transient(e.to_string())
        }
        _ => Error::Sql(e.to_string()),
    }
}

/// The snapshot of `md`'s main branch that was current at `at`.
pub(crate) fn snapshot_at(table: &TableRef, md: &TableMetadata, at: DateTime<Utc>) -> Result<i64> {
    let ms = at.timestamp_millis();
    let history = md.history();
    history
        .iter()
        .rev()
        .find(|h| h.timestamp_ms <= ms)
        .map(|h| h.snapshot_id)
        .ok_or_else(|| {
            let first = history
                .first()
                .and_then(|h| Utc.timestamp_millis_opt(h.timestamp_ms).single())
                .map_or("it has no published snapshot".to_owned(), |t| {
                    format!("its first snapshot was published at {}", t.to_rfc3339())
                });
            Error::NotFound(format!(
                "{table} has no version as of {}: {first}",
                at.to_rfc3339()
            ))
        })
}

/// The most views one query may go through (a view of a view of ...): more is a loop.
const MAX_VIEW_DEPTH: usize = 32;

/// The tables a statement reads, and the views it goes through (each after the views it reads).
#[derive(Default)]
struct Reads {
    tables: Vec<TableRef>,
    views: Vec<(TableRef, String)>,
}

async fn references(lake: &LocalLake, sql: &str, held: &[String]) -> Result<Vec<TableRef>> {
    let ctx = crate::engine::session();
    let state = ctx.state();
    let statement = state
        .sql_to_statement(sql, &Dialect::Generic)
        .map_err(sql_err)?;
    let references = state
        .resolve_table_references(&statement)
        .map_err(sql_err)?;
    let mut tables: Vec<TableRef> = Vec::new();
    for r in &references {
        let t = match r {
            TableReference::Partial { schema, table } => {
                TableRef::new(schema.as_ref(), table.as_ref())?
            }
            TableReference::Bare { table } if held.iter().any(|h| h == table.as_ref()) => continue,
            TableReference::Bare { table } => {
                let candidates: Vec<String> = lake
                    .list_tables_named(table)
                    .await?
                    .into_iter()
                    .map(|t| t.to_string())
                    .collect();
                return Err(Error::Sql(format!(
                    "table '{table}' needs its namespace, for example silver_<source>.{table}{}",
                    if candidates.is_empty() {
                        String::new()
                    } else {
                        format!(" (found: {})", candidates.join(", "))
                    }
                )));
            }
            TableReference::Full { .. } => {
                return Err(Error::Sql(format!(
                    "'{r}': name tables as namespace.table (no catalog prefix)"
                )));
            }
        };
        if !tables.contains(&t) {
            tables.push(t);
        }
    }
    Ok(tables)
}

impl Reads {
    async fn collect(
        &mut self,
        lake: &LocalLake,
        sql: &str,
        held: &[String],
        depth: usize,
    ) -> Result<()> {
        for t in references(lake, sql, held).await? {
            if self.tables.contains(&t) || self.views.iter().any(|(v, _)| *v == t) {
                continue;
            }
            if !lake.table_exists_local(&t).await?
                && let Some(view_sql) = lake.view_sql_local(&t)?
            {
                if depth >= MAX_VIEW_DEPTH {
                    return Err(Error::Sql(format!(
                        "view {t} reads views more than {MAX_VIEW_DEPTH} deep: do its views read each other in a loop?"
                    )));
                }
                Box::pin(self.collect(lake, &view_sql, &[], depth + 1)).await?;
                self.views.push((t, view_sql));
            } else {
                self.tables.push(t);
            }
        }
        Ok(())
    }
}

pub(crate) async fn run(lake: &LocalLake, sql: &str, at: &ReadAt) -> Result<Vec<RecordBatch>> {
    use futures::TryStreamExt;
    stream(lake, sql, at).await?.try_collect().await
}

/// A query's rows as a stream, for writes that should not hold them all. What its table scans
/// read is recorded (`floe_core::cost`) when the stream ends.
pub(crate) async fn stream(
    lake: &LocalLake,
    sql: &str,
    at: &ReadAt,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + use<>> {
    stream_over(lake, sql, at, Vec::new()).await
}

/// [`stream`] of a query that also reads `relations`, rows held in memory, by their names.
pub(crate) async fn stream_over(
    lake: &LocalLake,
    sql: &str,
    at: &ReadAt,
    relations: Vec<(String, Vec<RecordBatch>)>,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + use<>> {
    use futures::StreamExt;
    let started_at = Utc::now();
    let clock = std::time::Instant::now();
    let df = plan(lake, sql, at, relations).await?;
    let task = df.task_ctx();
    let physical = df.create_physical_plan().await.map_err(sql_err)?;
    let (physical, scanned) = metered(physical)?;
    let rows =
        datafusion::physical_plan::execute_stream(physical, Arc::new(task)).map_err(sql_err)?;
    let sql = sql.to_owned();
    let mut recorded = false;
    Ok(rows
        .map(|b| b.map_err(sql_err))
        .chain(futures::stream::poll_fn(move |_| {
            if !recorded {
                recorded = true;
                floe_core::cost::record(
                    &sql,
                    scanned.load(std::sync::atomic::Ordering::Relaxed),
                    clock.elapsed().as_millis() as u64,
                    started_at,
                );
            }
            std::task::Poll::Ready(None)
        })))
}

/// `plan` with every Iceberg table scan counting the bytes it produces (decoded Arrow bytes,
/// after the scan's file and row-group pruning): the embedded engine's "bytes scanned".
fn metered(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
) -> Result<(
    Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    Arc<std::sync::atomic::AtomicU64>,
)> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let scanned = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = scanned.clone();
    let plan = plan
        .transform_up(|node| {
            Ok(
                if node.children().is_empty() && node.name() == "IcebergTableScan" {
                    Transformed::yes(
                        Arc::new(crate::meter::ScanMeter::new(node, counter.clone()))
                            as Arc<dyn datafusion::physical_plan::ExecutionPlan>,
                    )
                } else {
                    Transformed::no(node)
                },
            )
        })
        .map_err(sql_err)?
        .data;
    Ok((plan, scanned))
}

/// The schema of a query's rows, from its plan.
pub(crate) async fn schema(lake: &LocalLake, sql: &str, at: &ReadAt) -> Result<SchemaRef> {
    let df = plan(lake, sql, at, Vec::new()).await?;
    Ok(Arc::new(df.schema().as_arrow().clone()))
}

async fn plan(
    lake: &LocalLake,
    sql: &str,
    at: &ReadAt,
    relations: Vec<(String, Vec<RecordBatch>)>,
) -> Result<datafusion::dataframe::DataFrame> {
    tracing::debug!(%sql, "planning");
    let ctx = crate::engine::session();
    let held: Vec<String> = relations.iter().map(|(name, _)| name.clone()).collect();
    for (name, batches) in relations {
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Err(Error::Internal(format!(
                "the in-memory relation {name} has no batches (not even an empty one with its schema)"
            )));
        };
        // One partition per batch, so the query reads them on every core.
        let parts: Vec<Vec<RecordBatch>> = batches.into_iter().map(|b| vec![b]).collect();
        let table = datafusion::datasource::MemTable::try_new(schema, parts).map_err(sql_err)?;
        ctx.register_table(TableReference::bare(name.as_str()), Arc::new(table))
            .map_err(sql_err)?;
    }
    let mut reads = Reads::default();
    reads.collect(lake, sql, &held, 0).await?;
    let Reads { tables, views } = reads;
    if let ReadAt::Snapshot(id) = at
        && tables.len() != 1
    {
        return Err(Error::Sql(format!(
            "--snapshot {id} pins one table, but the query reads {}; use --as-of TIMESTAMP to read \
             several tables as they were at one instant",
            if tables.is_empty() {
                "none".to_owned()
            } else {
                tables
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Internal("DataFusion has no default catalog".into()))?;
    for t in &tables {
        let table = lake.load(t).await?;
        let md = table.metadata();
        let snapshot = match at {
            ReadAt::Current => md.current_snapshot_id(),
            ReadAt::Snapshot(id) => {
                if md.snapshot_by_id(*id).is_none() {
                    return Err(Error::NotFound(format!(
                        "table {t} has no snapshot {id} (`floe history {t}` lists its snapshots)"
                    )));
                }
                Some(*id)
            }
            ReadAt::Timestamp(ts) => Some(snapshot_at(t, md, *ts)?),
            ReadAt::Pinned(pins) => match pins.get(t) {
                Some(id) if md.snapshot_by_id(*id).is_none() => {
                    return Err(Error::NotFound(format!("table {t} has no snapshot {id}")));
                }
                Some(id) => Some(*id),
                None => md.current_snapshot_id(),
            },
        };
        let provider = match snapshot {
            Some(id) => IcebergStaticTableProvider::try_new_from_table_snapshot(table, id).await,
            None => IcebergStaticTableProvider::try_new_from_table(table).await,
        }
        .map_err(ice("opening a table for reading"))?;
        if catalog.schema(&t.namespace).is_none() {
            catalog
                .register_schema(&t.namespace, Arc::new(MemorySchemaProvider::new()))
                .map_err(sql_err)?;
        }
        ctx.register_table(
            TableReference::partial(t.namespace.as_str(), t.name.as_str()),
            Arc::new(provider),
        )
        .map_err(sql_err)?;
    }
    for (v, view_sql) in &views {
        if catalog.schema(&v.namespace).is_none() {
            catalog
                .register_schema(&v.namespace, Arc::new(MemorySchemaProvider::new()))
                .map_err(sql_err)?;
        }
        let plan = ctx
            .state()
            .create_logical_plan(view_sql)
            .await
            .map_err(|e| Error::Sql(format!("view {v}: {e}")))?;
        let view = datafusion::catalog::view::ViewTable::new(plan, Some(view_sql.clone()));
        ctx.register_table(
            TableReference::partial(v.namespace.as_str(), v.name.as_str()),
            Arc::new(view),
        )
        .map_err(sql_err)?;
    }
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, read_only).await.map_err(sql_err)
}

impl LocalLake {
    async fn list_tables_named(&self, name: &str) -> Result<Vec<TableRef>> {
        use floe_core::ports::Lake;
        Ok(self
            .list_tables(None)
            .await?
            .into_iter()
            .filter(|t| t.name == name)
            .collect())
    }
}

/// The table's snapshots, oldest first, as `floe history` shows them.
pub(crate) fn snapshot_infos(md: &TableMetadata) -> Vec<SnapshotInfo> {
    let current = md.current_snapshot_id();
    let published: std::collections::HashSet<i64> =
        md.history().iter().map(|h| h.snapshot_id).collect();
    let mut out: Vec<SnapshotInfo> = md
        .snapshots()
        .map(|s| {
            let props = &s.summary().additional_properties;
            let num = |k: &str| props.get(k).and_then(|v| v.parse().ok());
            SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                // Every write here is one commit.
                based_on: s.parent_snapshot_id(),
                committed_at: Utc
                    .timestamp_millis_opt(s.timestamp_ms())
                    .single()
                    .unwrap_or_default(),
                operation: s.summary().operation.as_str().to_owned(),
                batch_id: props.get(BATCH_ID).cloned(),
                run_id: props.get(RUN_ID).cloned(),
                added_rows: num("added-records").or(Some(0)),
                // Rows replaced through a position delete file are still in their data file.
                total_rows: num("total-records")
                    .map(|n| n.saturating_sub(num("total-position-deletes").unwrap_or(0))),
                is_current: current == Some(s.snapshot_id()),
                published: published.contains(&s.snapshot_id()),
                summary: props
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>(),
            }
        })
        .collect();
    out.sort_by_key(|s| (s.committed_at, s.snapshot_id));
    out
}
