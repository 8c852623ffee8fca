//! The gold layer at run time: build models (staged), then test and publish them.
//!
//! [`Modelling::build`] renders each selected model against the relations it reads (a parent
//! staged earlier in the same run is read at its staged version; an unselected one at its
//! published version, or production's when deferring), writes it staged as its materialization
//! says, and runs independent models side by side within the engine's concurrency. A model that
//! fails to build fails alone: its descendants are skipped, the others go on.
//!
//! [`AuditModels::handle`] runs each staged model's data tests against the staged version and
//! publishes the ones that pass, parents first. A failure leaves the published version as it
//! was, records the failing rows in `floe_audit.test_failures`, emits `floe.failed` and calls
//! the project's webhook. Every model's outcome is appended to `floe_audit.model_runs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use floe_config::Project;
use floe_core::message::{Staged, StagedModel};
use floe_core::ports::{Clock, EventSink, Lake, PipelineEvent, ReadAt, WriteOptions};
use floe_core::{BatchId, Error, Result, RunId, TableRef};
use floe_models::materialize::{self, Bound, Chunk, Step};
use floe_models::project::{Materialized, TestKind};
use floe_models::{Dep, Model, Models, RenderCtx, Resolve};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::notify::Notifier;
use crate::runtime::crash_point;

/// Where a run writes its models, and where unselected parents are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The namespace models are written to: `gold`, or `gold_<target>` for a dev target.
    pub namespace: String,
    /// Read models outside the selection from this namespace (production) instead.
    pub defer_to: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            namespace: floe_models::GOLD.to_owned(),
            defer_to: None,
        }
    }
}

impl Target {
    /// The target called `name`: `prod` (or none) is `gold`, anything else `gold_<name>`.
    pub fn named(name: Option<&str>, defer: bool) -> Result<Self> {
        match name {
            None | Some("prod") => Ok(Target::default()),
            Some(n) => {
                floe_core::id::check_identifier("target", n)?;
                Ok(Target {
                    namespace: format!("{}_{n}", floe_models::GOLD),
                    defer_to: defer.then(|| floe_models::GOLD.to_owned()),
                })
            }
        }
    }
}

/// How one model's build ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BuildStatus {
    /// Written and staged.
    Staged,
    /// The build failed.
    Error {
        /// Why.
        message: String,
    },
    /// Not built: a parent failed.
    Skipped {
        /// The parent.
        because: String,
    },
}

/// One model's build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Built {
    /// The model.
    pub model: String,
    /// How it ended.
    pub status: BuildStatus,
    /// Rows written.
    pub rows: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// What a build did.
#[derive(Debug, Default)]
pub struct Build {
    /// The staged models, parents first.
    pub staged: Vec<StagedModel>,
    /// Every selected model's outcome, in DAG order.
    pub built: Vec<Built>,
}

/// Drill hook, like `FLOE_CRASH_AT`: `FLOE_SKIP_CHUNK=<model>:<n>` leaves the n-th chunk (1-based)
/// of an insert_by_chunk build unwritten while reporting it done, so the completeness check can
/// be seen catching a lost chunk.
fn skip_chunk(model: &str, n: usize) -> bool {
    std::env::var("FLOE_SKIP_CHUNK").is_ok_and(|v| v == format!("{model}:{n}"))
}

/// How often a transient failure of one statement is retried, with backoff and jitter.
pub const STATEMENT_RETRIES: u32 = 3;

async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_retryable() && attempt < STATEMENT_RETRIES => {
                attempt += 1;
                let base = 200u64 * 2u64.pow(attempt);
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
                tracing::warn!(what, attempt, error = %e, "retrying after a transient failure");
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter / 2)).await;
            }
            other => return other,
        }
    }
}

async fn permit(s: &tokio::sync::Semaphore) -> Result<tokio::sync::SemaphorePermit<'_>> {
    s.acquire()
        .await
        .map_err(|e| Error::Internal(format!("the statement budget closed: {e}")))
}

/// What the modelling stage needs.
pub struct Modelling<'a> {
    /// The project.
    pub project: &'a Project,
    /// Its models.
    pub models: &'a Models,
    /// The lake.
    pub lake: &'a dyn Lake,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Where models go.
    pub target: Target,
    /// Progress lines.
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

/// Resolves names for one model of a run.
struct RunResolver {
    models: BTreeSet<String>,
    /// Relations of the models staged so far in this run.
    staged: BTreeMap<String, String>,
    /// The run's selection.
    selected: BTreeSet<String>,
    target: Target,
    /// Resolve staged models to their published names (a view's published SQL).
    published_names: bool,
}

impl Resolve for RunResolver {
    fn model(&self, name: &str) -> std::result::Result<String, String> {
        if !self.models.contains(name) {
            return Err(format!(
                "there is no model '{name}'{}",
                floe_config::did_you_mean(name, self.models.iter().map(String::as_str))
            ));
        }
        if !self.published_names
            && let Some(r) = self.staged.get(name)
        {
            return Ok(r.clone());
        }
        match &self.target.defer_to {
            Some(prod) if !self.selected.contains(name) => Ok(format!("{prod}.{name}")),
            _ => Ok(format!("{}.{name}", self.target.namespace)),
        }
    }
    fn source(&self, source: &str, table: &str) -> std::result::Result<String, String> {
        Ok(format!("silver_{source}.{table}"))
    }
}

/// The first value of the first column of a query's rows, as text.
fn scalar(rows: &[RecordBatch], col: usize) -> Option<Arc<dyn Array>> {
    let b = rows.iter().find(|b| b.num_rows() > 0)?;
    Some(b.column(col).slice(0, 1))
}

fn to_u64(a: &Option<Arc<dyn Array>>) -> u64 {
    let Some(a) = a else { return 0 };
    let Ok(c) = datafusion::arrow::compute::cast(a, &DataType::Int64) else {
        return 0;
    };
    let c = c
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("cast to Int64");
    if c.is_null(0) {
        0
    } else {
        c.value(0).max(0) as u64
    }
}

fn to_bound(a: &Option<Arc<dyn Array>>, column: &str) -> Result<Option<Bound>> {
    let Some(a) = a else { return Ok(None) };
    if a.is_null(0) {
        return Ok(None);
    }
    let cast = |to: &DataType| {
        datafusion::arrow::compute::cast(a, to).map_err(|e| Error::Internal(e.to_string()))
    };
    Ok(Some(match a.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let c = cast(&DataType::Int64)?;
            Bound::Int(
                c.as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .expect("Int64")
                    .value(0),
            )
        }
        DataType::Date32 | DataType::Date64 => {
            let c = cast(&DataType::Date32)?;
            let days = c
                .as_any()
                .downcast_ref::<arrow_array::Date32Array>()
                .expect("Date32")
                .value(0);
            Bound::Date(
                chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                    .ok_or_else(|| Error::Internal(format!("date {days} out of range")))?,
            )
        }
        DataType::Timestamp(_, _) => {
            let c = cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let us = c
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .expect("timestamp")
                .value(0);
            Bound::Timestamp(
                DateTime::from_timestamp_micros(us)
                    .ok_or_else(|| Error::Internal(format!("timestamp {us} out of range")))?
                    .naive_utc(),
            )
        }
        other => {
            return Err(Error::Config(format!(
                "insert_by_chunk: chunk_by column {column} is {other}; chunks split integer, date or timestamp columns"
            )));
        }
    }))
}

/// The schema a model table is created with: every column nullable (a model's NULLs are its
/// tests' business, not the writer's).
fn nullable(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

impl Modelling<'_> {
    fn ctx(&self, model: &Model, resolver: RunResolver, is_incremental: bool) -> RenderCtx {
        RenderCtx {
            resolver: Arc::new(resolver),
            dialect: self.lake.dialect(),
            is_incremental,
            this: Some(format!("{}.{}", self.target.namespace, model.name)),
            vars: self.models.vars.clone(),
            extra: model.extra.clone(),
        }
    }

    /// Builds `selected` (and nothing else), staged, in DAG order with up to `concurrency`
    /// models at once. `batch` makes the writes idempotent: the same batch builds nothing twice.
    pub async fn build(
        &self,
        selected: &BTreeSet<String>,
        batch: &BatchId,
        run: &RunId,
        concurrency: usize,
    ) -> Result<Build> {
        self.lake.ensure_namespace(&self.target.namespace).await?;
        let order = self.models.dag.ordered(selected);
        crate::progress::measure(crate::progress::Unit::Models, Some(order.len() as u64));
        let staged: Mutex<BTreeMap<String, StagedModel>> = Mutex::new(BTreeMap::new());
        let failed: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
        let outcomes: Mutex<BTreeMap<String, Built>> = Mutex::new(BTreeMap::new());
        let mut done: BTreeSet<String> = BTreeSet::new();
        // One budget of statements for the whole build: models side by side and the chunks of
        // an insert_by_chunk model share it, so the engine never runs more than `concurrency`
        // writes of this build at once.
        let statements = tokio::sync::Semaphore::new(concurrency.max(1));
        let statements = &statements;
        let mut running = futures::stream::FuturesUnordered::new();
        let mut queue: Vec<String> = order.clone();
        loop {
            // Start every model whose parents in the run are done, within the limit.
            let mut i = 0;
            while i < queue.len() && running.len() < concurrency.max(1) {
                let name = &queue[i];
                let parents = &self.models.dag.parents[name];
                let pending = parents
                    .iter()
                    .any(|p| selected.contains(p) && !done.contains(p));
                if pending {
                    i += 1;
                    continue;
                }
                let name = queue.remove(i);
                let bad_parent = parents
                    .iter()
                    .find(|p| failed.lock().expect("not poisoned").contains_key(*p))
                    .cloned();
                if let Some(p) = bad_parent {
                    let now = self.clock.now();
                    (self.progress)(&format!("skipped {name}: its parent {p} failed"));
                    failed
                        .lock()
                        .expect("not poisoned")
                        .insert(name.clone(), format!("parent {p} failed"));
                    outcomes.lock().expect("not poisoned").insert(
                        name.clone(),
                        Built {
                            model: name.clone(),
                            status: BuildStatus::Skipped { because: p },
                            rows: 0,
                            started_at: now,
                            finished_at: now,
                        },
                    );
                    done.insert(name);
                    crate::progress::add(1);
                    i = 0;
                    continue;
                }
                let snapshot: BTreeMap<String, StagedModel> =
                    staged.lock().expect("not poisoned").clone();
                let selected = selected.clone();
                running.push(async move {
                    let started = self.clock.now();
                    // Its statements are logged under its table (floe_audit.query_log), and
                    // their bytes go to its run record.
                    let (result, bytes) = floe_core::cost::on_table_measured(
                        &format!("{}.{name}", self.target.namespace),
                        self.build_one(&name, &snapshot, &selected, batch, run, statements),
                    )
                    .await;
                    (
                        name,
                        started,
                        result.map(|s| StagedModel {
                            bytes_scanned: bytes,
                            ..s
                        }),
                    )
                });
            }
            let Some((name, started_at, result)) = running.next().await else {
                break;
            };
            let finished_at = self.clock.now();
            crate::progress::add(1);
            let built = match result {
                Ok(s) => {
                    let rows = s.rows;
                    (self.progress)(&format!(
                        "built {} ({}, {} rows, staged)",
                        s.table,
                        self.models.models[&name].materialized.name(),
                        rows
                    ));
                    staged.lock().expect("not poisoned").insert(
                        name.clone(),
                        StagedModel {
                            started_at,
                            finished_at,
                            ..s
                        },
                    );
                    Built {
                        model: name.clone(),
                        status: BuildStatus::Staged,
                        rows,
                        started_at,
                        finished_at,
                    }
                }
                Err(e) => {
                    (self.progress)(&format!("failed to build {name}: {e}"));
                    failed
                        .lock()
                        .expect("not poisoned")
                        .insert(name.clone(), e.to_string());
                    Built {
                        model: name.clone(),
                        status: BuildStatus::Error {
                            message: e.to_string(),
                        },
                        rows: 0,
                        started_at,
                        finished_at,
                    }
                }
            };
            outcomes
                .lock()
                .expect("not poisoned")
                .insert(name.clone(), built);
            done.insert(name);
        }
        let staged = staged.into_inner().expect("not poisoned");
        let mut outcomes = outcomes.into_inner().expect("not poisoned");
        Ok(Build {
            staged: order
                .iter()
                .filter_map(|m| staged.get(m).cloned())
                .collect(),
            built: order.iter().filter_map(|m| outcomes.remove(m)).collect(),
        })
    }

    async fn build_one(
        &self,
        name: &str,
        staged: &BTreeMap<String, StagedModel>,
        selected: &BTreeSet<String>,
        batch: &BatchId,
        run: &RunId,
        statements: &tokio::sync::Semaphore,
    ) -> Result<StagedModel> {
        let model = &self.models.models[name];
        let table = model.relation(&self.target.namespace);
        let resolver = |published_names| RunResolver {
            models: self.models.models.keys().cloned().collect(),
            staged: staged
                .iter()
                .map(|(m, s)| {
                    let r = match &s.staged {
                        Staged::View { staging, .. } => staging.to_string(),
                        Staged::Table { table } => table.to_string(),
                        Staged::Snapshot { .. } => s.table.to_string(),
                    };
                    (m.clone(), r)
                })
                .collect(),
            selected: selected.clone(),
            target: self.target.clone(),
            published_names,
        };
        let pins: BTreeMap<TableRef, i64> = staged
            .values()
            .filter_map(|s| match s.staged {
                Staged::Snapshot { snapshot_id } => Some((s.table.clone(), snapshot_id)),
                _ => None,
            })
            .collect();
        let at = ReadAt::Pinned(pins);
        let exists = self.lake.table_exists(&table).await?;
        let is_incremental =
            exists && matches!(model.materialized, Materialized::Incremental { .. });
        let rendered = self
            .models
            .renderer
            .render(
                &model.template,
                &self.ctx(model, resolver(false), is_incremental),
            )
            .map_err(|e| Error::Config(e.to_string()))?;
        let parents: Vec<String> = model
            .parents()
            .filter(|p| staged.contains_key(*p))
            .map(str::to_owned)
            .collect();
        let now = self.clock.now();
        let done = |staged: Staged, rows: u64| StagedModel {
            model: name.to_owned(),
            table: table.clone(),
            staged,
            parents: parents.clone(),
            rows,
            started_at: now,
            finished_at: now,
            bytes_scanned: None,
        };
        let options = WriteOptions {
            batch_id: Some(BatchId::derive(&[batch.as_str(), name, &model.checksum])),
            run_id: Some(run.clone()),
            stage_only: true,
            properties: BTreeMap::from([("floe.model".to_owned(), name.to_owned())]),
            ..Default::default()
        };
        match &model.materialized {
            Materialized::View => {
                let staging = TableRef::new(&table.namespace, format!("{}__staged", model.name))?;
                let published = self
                    .models
                    .renderer
                    .render(&model.template, &self.ctx(model, resolver(true), false))
                    .map_err(|e| Error::Config(e.to_string()))?;
                let _permit = permit(statements).await?;
                with_retries(name, || self.lake.create_view(&staging, &rendered.sql)).await?;
                Ok(done(
                    Staged::View {
                        staging,
                        sql: published.sql,
                    },
                    0,
                ))
            }
            Materialized::InsertByChunk(spec) => {
                let (staging, rows) = self
                    .build_chunks(model, &rendered.sql, spec, &at, run, statements)
                    .await?;
                Ok(done(Staged::Table { table: staging }, rows))
            }
            m => {
                if !exists {
                    let schema = self.lake.query_schema(&rendered.sql, &at).await?;
                    match self.lake.create_table(&table, nullable(&schema)).await {
                        Ok(()) | Err(Error::AlreadyExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                if exists {
                    // The table takes the shape of the model's query (an upstream column added,
                    // removed or retyped): exactly for a rebuild, new columns for an increment.
                    let query = self.lake.query_schema(&rendered.sql, &at).await?;
                    let current = self.lake.table_schema(&table).await?;
                    let edits = crate::drift::model_edits(
                        &current,
                        &query,
                        matches!(m, Materialized::Table),
                    );
                    if !edits.is_empty() {
                        tracing::info!(model = %name, ?edits, "the model's columns changed");
                        self.lake.evolve_schema(&table, &edits).await?;
                    }
                }
                let columns: Option<Vec<String>> = if exists {
                    Some(
                        self.lake
                            .table_schema(&table)
                            .await?
                            .fields()
                            .iter()
                            .map(|f| f.name().clone())
                            .collect(),
                    )
                } else {
                    None
                };
                let history = self.lake.snapshots(&table).await?;
                let mut options = options;
                options.expected_snapshot_id =
                    history.iter().find(|s| s.is_current).map(|s| s.snapshot_id);
                let steps = materialize::plan(
                    self.lake.dialect(),
                    m,
                    &rendered.sql,
                    &table,
                    columns.as_deref(),
                );
                let mut last = None;
                for step in &steps {
                    let _permit = permit(statements).await?;
                    let outcome = with_retries(name, || async {
                        match step {
                            Step::Replace { sql } => {
                                self.lake.write_query(&table, sql, &at, &options).await
                            }
                            Step::Append { sql } => {
                                self.lake.append_query(&table, sql, &at, &options).await
                            }
                            Step::Statement { sql } => {
                                self.lake.execute(&table, sql, &at, &options).await
                            }
                            Step::View { .. } => Err(Error::Internal(
                                "a table materialization planned a view".into(),
                            )),
                        }
                    })
                    .await?;
                    last = Some(outcome);
                }
                let outcome = last.ok_or_else(|| Error::Internal("an empty plan".into()))?;
                Ok(done(
                    Staged::Snapshot {
                        snapshot_id: outcome.snapshot_id,
                    },
                    outcome.rows_added,
                ))
            }
        }
    }

    /// Builds an insert_by_chunk model into its staging table `<ns>.<model>__chunks`, one
    /// checkpointed append per chunk, then checks the result is complete.
    async fn build_chunks(
        &self,
        model: &Model,
        sql: &str,
        spec: &floe_models::project::ChunkSpec,
        at: &ReadAt,
        run: &RunId,
        statements: &tokio::sync::Semaphore,
    ) -> Result<(TableRef, u64)> {
        let name = &model.name;
        let staging = TableRef::new(&self.target.namespace, format!("{name}__chunks"))?;
        let bounds = self
            .lake
            .query(&materialize::chunk_bounds_sql(sql, &spec.column), at)
            .await?;
        let lo = to_bound(&scalar(&bounds, 0), &spec.column)?;
        let hi = to_bound(&scalar(&bounds, 1), &spec.column)?;
        let rows_in = to_u64(&scalar(&bounds, 2));
        let nulls = to_u64(&scalar(&bounds, 3));
        let chunks: Vec<Chunk> =
            materialize::chunks(spec, lo, hi, nulls > 0).map_err(Error::Config)?;
        // A chunk's batch id is its build's: the model's definition, the inputs' versions and the
        // chunk. A retry of the same build finds the chunks written before and skips them.
        let inputs = self.input_versions(model, at).await?;
        let build_key = BatchId::derive(
            &[model.checksum.as_str(), sql]
                .into_iter()
                .chain(inputs.iter().map(String::as_str))
                .collect::<Vec<_>>(),
        );
        let chunk_batch = |c: &Chunk| BatchId::derive(&[build_key.as_str(), &c.index.to_string()]);
        let expected: BTreeSet<String> = chunks
            .iter()
            .map(|c| chunk_batch(c).as_str().to_owned())
            .collect();
        if self.lake.table_exists(&staging).await? {
            let old = self.lake.snapshots(&staging).await?;
            let foreign = old
                .iter()
                .filter_map(|s| s.batch_id.as_ref())
                .any(|b| !expected.contains(b));
            if foreign {
                (self.progress)(&format!(
                    "{name}: the chunks in {staging} are from another build (the model or its inputs changed): starting over"
                ));
                self.lake.drop_table(&staging).await?;
            }
        }
        if !self.lake.table_exists(&staging).await? {
            let schema = self.lake.query_schema(sql, at).await?;
            self.lake.create_table(&staging, nullable(&schema)).await?;
        }
        let total = chunks.len();
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let results: Vec<Result<u64>> = futures::stream::iter(chunks.iter())
            .map(|c| {
                let staging = &staging;
                let written = written.clone();
                async move {
                    let options = WriteOptions {
                        batch_id: Some(chunk_batch(c)),
                        run_id: Some(run.clone()),
                        properties: BTreeMap::from([
                            ("floe.model".to_owned(), name.clone()),
                            ("floe.chunk".to_owned(), format!("{}/{total}", c.index + 1)),
                        ]),
                        ..Default::default()
                    };
                    let rows = if skip_chunk(name, c.index + 1) {
                        tracing::warn!(model = %name, chunk = c.index + 1, "FLOE_SKIP_CHUNK: leaving the chunk unwritten");
                        0
                    } else {
                        let chunk_sql = materialize::chunk_sql(sql, &spec.column, c);
                        let _permit = permit(statements).await?;
                        let outcome = with_retries(name, || {
                            self.lake.append_query(staging, &chunk_sql, at, &options)
                        })
                        .await?;
                        if outcome.already_committed {
                            (self.progress)(&format!(
                                "{name}: chunk {}/{total} {} written by an earlier attempt",
                                c.index + 1,
                                c.label()
                            ));
                        } else {
                            (self.progress)(&format!(
                                "{name}: chunk {}/{total} {} ({} rows)",
                                c.index + 1,
                                c.label(),
                                outcome.rows_added
                            ));
                        }
                        outcome.rows_added
                    };
                    let n = written.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    crash_point(&format!("chunk:{name}:{n}"));
                    Ok(rows)
                }
            })
            .buffer_unordered(statements.available_permits().max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        for (check, query) in materialize::chunk_checks(&staging, spec, rows_in) {
            let failing = self.lake.query(&query, &ReadAt::Current).await?;
            if failing.iter().any(|b| b.num_rows() > 0) {
                let shown = datafusion::arrow::util::pretty::pretty_format_batches(&failing)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                return Err(Error::InvalidData {
                    file: staging.to_string(),
                    detail: format!(
                        "{name}: the completeness check '{check}' failed; the chunks stay in {staging} for a look, and the next run of the model starts over:\n{shown}"
                    ),
                });
            }
        }
        Ok((staging, rows_in))
    }

    /// The versions of everything `model` reads, for its build key.
    async fn input_versions(&self, model: &Model, at: &ReadAt) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for d in &model.deps {
            let t = match d {
                Dep::Source { source, table } => TableRef::new(format!("silver_{source}"), table)?,
                Dep::Ref { name } => TableRef::new(&self.target.namespace, name)?,
            };
            if let ReadAt::Pinned(p) = at
                && let Some(id) = p.get(&t)
            {
                out.push(format!("{t}@{id}"));
                continue;
            }
            if self.lake.table_exists(&t).await? {
                let current = self
                    .lake
                    .snapshots(&t)
                    .await?
                    .into_iter()
                    .find(|s| s.is_current)
                    .map(|s| s.snapshot_id);
                out.push(format!("{t}@{current:?}"));
            } else {
                out.push(format!("{t}@view"));
            }
        }
        Ok(out)
    }
}

/// Emits `floe.failed` (and calls the webhook) for every model a build could not stage; its
/// published version is unchanged and its descendants were skipped.
pub async fn announce_build_failures(
    events: &dyn EventSink,
    notifier: Option<&dyn Notifier>,
    clock: &dyn Clock,
    batch: &BatchId,
    run: &RunId,
    trigger: &str,
    build: &Build,
) -> Result<()> {
    for b in &build.built {
        let BuildStatus::Error { message } = &b.status else {
            continue;
        };
        let detail = json!({
            "table": format!("{}.{}", floe_models::GOLD, b.model),
            "model": b.model,
            "batch_id": batch,
            "run_id": run,
            "trigger": trigger,
            "reason": format!("the model did not build: {message}"),
            "what_to_do": "fix the model (or its inputs), then `floe retry`; its published version is unchanged and its descendants were skipped",
        });
        events
            .emit(PipelineEvent {
                detail_type: "floe.failed".into(),
                time: clock.now(),
                detail: detail.clone(),
            })
            .await?;
        if let Some(n) = notifier {
            let text = format!(
                ":x: floe: gold.{} did not build ({message}). Fix it, then `floe retry`.",
                b.model
            );
            if let Err(e) = n.notify(&text, &detail).await {
                tracing::error!(error = %e, "the webhook failed; the failure is in floe_audit and the event log");
            }
        }
    }
    Ok(())
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

/// What the gold audit decided for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ModelVerdict {
    /// Tests passed; readers now see the new version.
    Published {
        /// The snapshot readers see (None for views).
        snapshot_id: Option<i64>,
    },
    /// Tests failed; the published version is unchanged.
    Failed {
        /// The failing tests.
        failures: Vec<TestResult>,
    },
    /// Not published: another run published the model since this one was staged; build again.
    Stale,
    /// Not published: a parent in the run was not.
    Skipped {
        /// The parent.
        because: String,
    },
}

/// The audit of staged models.
pub struct AuditModels<'a> {
    /// The project.
    pub project: &'a Project,
    /// Its models.
    pub models: &'a Models,
    /// The lake.
    pub lake: &'a dyn Lake,
    /// Where `floe.published` / `floe.failed` go.
    pub events: &'a dyn EventSink,
    /// The webhook, when the project has one.
    pub notifier: Option<&'a dyn Notifier>,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Progress lines.
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

/// The prefix of the catalog properties that add template parameters to a table:
/// `floe.generate.<template>` = `true` applies the template; `floe.generate.<template>.<param>`
/// = value sets a parameter (read as JSON when it parses, as text otherwise).
pub const GENERATE_PROPERTY: &str = "floe.generate.";

/// Template parameters from catalog properties (see [`GENERATE_PROPERTY`]), per template.
pub fn template_params(
    properties: &BTreeMap<String, String>,
) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (k, v) in properties {
        let Some(rest) = k.strip_prefix(GENERATE_PROPERTY) else {
            continue;
        };
        let (template, param) = match rest.split_once('.') {
            Some((t, p)) => (t, Some(p)),
            None => (rest, None),
        };
        if template.is_empty() {
            continue;
        }
        let entry = out.entry(template.to_owned()).or_insert_with(|| json!({}));
        if let (Some(p), Some(map)) = (param, entry.as_object_mut()) {
            let value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
            map.insert(p.to_owned(), value);
        }
    }
    out
}

/// The project's models, with template parameters from the silver tables' catalog properties
/// merged over the YAML's when the lake keeps any (Glue on Athena).
pub async fn load_models(project: &Project, lake: &dyn Lake) -> Result<Models> {
    let mut extra = BTreeMap::new();
    if lake.dialect() == floe_core::ports::Dialect::Trino {
        for t in project.tables.values() {
            let silver = t.table_ref(floe_core::Layer::Silver);
            if !lake.table_exists(&silver).await? {
                continue;
            }
            let params = template_params(&lake.table_properties(&silver).await?);
            if !params.is_empty() {
                extra.insert(t.qualified_name(), params);
            }
        }
    }
    Models::load_with(project, &extra).map_err(Error::from)
}

/// Whether a project folder has any models or templates (a cheap check before loading them).
pub fn project_has_models(root: &std::path::Path) -> bool {
    [
        floe_models::project::MODELS_DIR,
        floe_models::project::TEMPLATES_DIR,
    ]
    .iter()
    .any(|d| std::fs::read_dir(root.join(d)).is_ok_and(|mut e| e.next().is_some()))
}

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
async fn ensure_table(lake: &dyn Lake, t: &TableRef, schema: Arc<Schema>) -> Result<()> {
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

async fn record_failures(
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

impl AuditModels<'_> {
    /// Tests every staged model and publishes those that pass, parents first.
    pub async fn handle(
        &self,
        trigger: &str,
        staged: &[StagedModel],
        batch: &BatchId,
        run: &RunId,
    ) -> Result<Vec<(String, ModelVerdict)>> {
        let pins: BTreeMap<TableRef, i64> = staged
            .iter()
            .filter_map(|s| match s.staged {
                Staged::Snapshot { snapshot_id } => Some((s.table.clone(), snapshot_id)),
                _ => None,
            })
            .collect();
        let at = ReadAt::Pinned(pins);
        let staged_relation: BTreeMap<String, String> = staged
            .iter()
            .map(|s| {
                (
                    s.model.clone(),
                    match &s.staged {
                        Staged::View { staging, .. } => staging.to_string(),
                        Staged::Table { table } => table.to_string(),
                        Staged::Snapshot { .. } => s.table.to_string(),
                    },
                )
            })
            .collect();
        let namespace = staged
            .first()
            .map(|s| s.table.namespace.clone())
            .unwrap_or_else(|| floe_models::GOLD.to_owned());
        // In a dev target, a model the run did not build and the target does not have is read
        // from production (deferral), as the build read it.
        let mut staged_relation = staged_relation;
        if namespace != floe_models::GOLD {
            for name in self.models.models.keys() {
                if staged_relation.contains_key(name) {
                    continue;
                }
                let t = TableRef::new(&namespace, name)?;
                if !self.lake.table_exists(&t).await? && self.lake.view_sql(&t).await?.is_none() {
                    staged_relation.insert(name.clone(), format!("{}.{name}", floe_models::GOLD));
                }
            }
        }
        let mut verdicts: Vec<(String, ModelVerdict)> = Vec::new();
        let mut not_published: BTreeSet<String> = BTreeSet::new();
        let mut records = Vec::new();
        for s in staged {
            let record = |status: &str, message: Option<String>| RunRecord {
                run_id: run.as_str().to_owned(),
                trigger: trigger.to_owned(),
                model: s.model.clone(),
                status: status.to_owned(),
                started_at: s.started_at,
                finished_at: self.clock.now(),
                rows: s.rows,
                bytes_scanned: s.bytes_scanned,
                message,
            };
            if let Some(p) = s.parents.iter().find(|p| not_published.contains(*p)) {
                (self.progress)(&format!(
                    "not publishing {}: its parent {p} was not published",
                    s.table
                ));
                not_published.insert(s.model.clone());
                records.push(record(
                    "skipped",
                    Some(format!("parent {p} was not published")),
                ));
                verdicts.push((
                    s.model.clone(),
                    ModelVerdict::Skipped { because: p.clone() },
                ));
                continue;
            }
            let Some(model) = self.models.models.get(&s.model) else {
                return Err(Error::Config(format!(
                    "the staged model {} is not in the project any more; run the models again",
                    s.model
                )));
            };
            let failures = self
                .run_tests(
                    model,
                    &staged_relation[&s.model],
                    &staged_relation,
                    &namespace,
                    &at,
                )
                .await?;
            let failing: Vec<TestResult> = failures
                .into_iter()
                .filter(|t| t.failing_rows > 0)
                .collect();
            if !failing.is_empty() {
                let why = failing
                    .iter()
                    .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                    .collect::<Vec<_>>()
                    .join("; ");
                (self.progress)(&format!(
                    "tests failed for {}: {why}; the published version is unchanged",
                    s.table
                ));
                record_failures(self.lake, run, self.clock.now(), &failing).await?;
                let detail = json!({
                    "table": s.table.to_string(),
                    "model": s.model,
                    "batch_id": batch,
                    "run_id": run,
                    "trigger": trigger,
                    "reason": "data tests failed; the published version is unchanged",
                    "what_to_do": "the failing rows are in floe_audit.test_failures; fix the data or the model, then `floe retry`",
                    "failures": failing,
                });
                self.events
                    .emit(PipelineEvent {
                        detail_type: "floe.failed".into(),
                        time: self.clock.now(),
                        detail: detail.clone(),
                    })
                    .await?;
                if let Some(n) = self.notifier {
                    let text = format!(
                        ":x: floe: {} was not published, its tests failed: {why}. Failing rows: floe_audit.test_failures (run {}). Fix, then `floe retry`.",
                        s.table, run
                    );
                    if let Err(e) = n.notify(&text, &detail).await {
                        tracing::error!(error = %e, "the webhook failed; the failure is in floe_audit and the event log");
                        (self.progress)(&format!("warning: the webhook failed: {e}"));
                    }
                }
                not_published.insert(s.model.clone());
                records.push(record("failed", Some(why)));
                verdicts.push((s.model.clone(), ModelVerdict::Failed { failures: failing }));
                continue;
            }
            let snapshot_id = match self.publish(s).await {
                Ok(id) => id,
                Err(Error::CommitConflict { detail, .. }) => {
                    (self.progress)(&format!(
                        "{} went stale ({detail}): it will be built again",
                        s.table
                    ));
                    not_published.insert(s.model.clone());
                    records.push(record("stale", Some(detail)));
                    verdicts.push((s.model.clone(), ModelVerdict::Stale));
                    continue;
                }
                Err(e) => return Err(e),
            };
            (self.progress)(&format!(
                "published {}{}",
                s.table,
                snapshot_id
                    .map(|id| format!(" (snapshot {id})"))
                    .unwrap_or_default()
            ));
            self.events
                .emit(PipelineEvent {
                    detail_type: "floe.published".into(),
                    time: self.clock.now(),
                    detail: json!({"table": s.table.to_string(), "model": s.model, "snapshot_id": snapshot_id, "batch_id": batch, "run_id": run, "trigger": trigger}),
                })
                .await?;
            records.push(record("success", None));
            verdicts.push((s.model.clone(), ModelVerdict::Published { snapshot_id }));
        }
        // One set of records per staged set: a replay of the same audit records nothing twice, a
        // restaged run (other snapshots) records its own outcome.
        let staged_ids: Vec<String> = staged
            .iter()
            .map(|s| format!("{}:{:?}", s.model, s.staged))
            .collect();
        let part = BatchId::derive(&staged_ids.iter().map(String::as_str).collect::<Vec<_>>());
        record_runs(self.lake, run, &records, &format!("audit:{part}")).await?;
        Ok(verdicts)
    }

    async fn publish(&self, s: &StagedModel) -> Result<Option<i64>> {
        match &s.staged {
            Staged::Snapshot { snapshot_id } => {
                let history = self.lake.snapshots(&s.table).await?;
                let published = history
                    .iter()
                    .any(|h| h.snapshot_id == *snapshot_id && h.published);
                if !published {
                    self.lake.publish_snapshot(&s.table, *snapshot_id).await?;
                }
                Ok(Some(*snapshot_id))
            }
            Staged::View { staging, sql } => {
                self.lake.create_view(&s.table, sql).await?;
                self.lake.drop_view(staging).await?;
                Ok(None)
            }
            Staged::Table { table } => {
                if !self.lake.table_exists(table).await? {
                    // Published before (a replay): the staging table is gone.
                    return Ok(None);
                }
                let outcome = self
                    .lake
                    .publish_table(table, &s.table, &WriteOptions::default())
                    .await?;
                Ok(Some(outcome.snapshot_id))
            }
        }
    }

    /// Runs a model's data tests against `relation` (its staged version).
    pub async fn run_tests(
        &self,
        model: &Model,
        relation: &str,
        staged_relations: &BTreeMap<String, String>,
        namespace: &str,
        at: &ReadAt,
    ) -> Result<Vec<TestResult>> {
        let resolver = RunResolver {
            models: self.models.models.keys().cloned().collect(),
            staged: staged_relations.clone(),
            selected: BTreeSet::new(),
            target: Target {
                namespace: namespace.to_owned(),
                defer_to: None,
            },
            published_names: false,
        };
        let resolver = Arc::new(resolver);
        let ctx = RenderCtx {
            resolver: resolver.clone(),
            dialect: self.lake.dialect(),
            is_incremental: false,
            this: Some(relation.to_owned()),
            vars: self.models.vars.clone(),
            extra: BTreeMap::new(),
        };
        let mut out = Vec::new();
        for test in &model.tests {
            let render = |what: &str, text: &str| {
                self.models
                    .renderer
                    .render_str(what, &format!("{{{{ {text} }}}}"), &ctx)
                    .map(|r| r.sql)
                    .map_err(|e| Error::Config(e.to_string()))
            };
            let (other, custom) = match &test.kind {
                TestKind::Relationships { to, .. } => (Some(render("test", to)?), None),
                TestKind::RowCount { compare_to, .. } => (Some(render("test", compare_to)?), None),
                TestKind::Custom { template } => (
                    None,
                    Some(
                        self.models
                            .renderer
                            .render(template, &ctx)
                            .map_err(|e| Error::Config(e.to_string()))?
                            .sql,
                    ),
                ),
                _ => (None, None),
            };
            let sql = materialize::test_sql(test, relation, other.as_deref(), custom.as_deref());
            let count_sql = format!("SELECT COUNT(*) AS n FROM (\n{sql}\n) _floe_test");
            let n = to_u64(&scalar(&self.lake.query(&count_sql, at).await?, 0));
            let examples = if n > 0 {
                let rows = self
                    .lake
                    .query(
                        &format!("SELECT * FROM (\n{sql}\n) _floe_test LIMIT 10"),
                        at,
                    )
                    .await?;
                datafusion::arrow::util::pretty::pretty_format_batches(&rows)
                    .map(|t| t.to_string().lines().map(str::to_owned).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push(TestResult {
                model: model.name.clone(),
                test: test.name.clone(),
                failing_rows: n,
                examples,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_properties_become_template_parameters() {
        let props = BTreeMap::from([
            ("floe.generate.current".to_owned(), "true".to_owned()),
            (
                "floe.generate.current.exclude_deleted".to_owned(),
                "true".to_owned(),
            ),
            (
                "floe.generate.snapshot.materialized".to_owned(),
                "view".to_owned(),
            ),
            (
                "floe.generate.snapshot.days".to_owned(),
                "[1, 7]".to_owned(),
            ),
            ("owner".to_owned(), "data-team".to_owned()),
        ]);
        let p = template_params(&props);
        assert_eq!(p["current"], json!({"exclude_deleted": true}));
        assert_eq!(
            p["snapshot"],
            json!({"materialized": "view", "days": [1, 7]})
        );
        assert_eq!(p.len(), 2, "other properties are not parameters");
    }
}
