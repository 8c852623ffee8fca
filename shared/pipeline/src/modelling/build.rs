//! Building models: each selected model rendered against the relations it reads and written
//! staged as its materialization says, independent models side by side, `insert_by_chunk` models
//! chunk by chunk (with the completeness check); a model that fails fails alone.

use floe_core::event::Failed;
use floe_core::ports::LakeWrites;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::message::{Staged, StagedModel};
use floe_core::ports::{Clock, EventSink, Lake, PipelineEvent, ReadAt, WriteOptions};
use floe_core::{BatchId, Error, Result, RunId, TableRef};
use floe_models::materialize::{self, Chunk, Step};
use floe_models::project::Materialized;
use floe_models::{Dep, Model, Models, RenderCtx};
use futures::StreamExt;
use serde::Serialize;

use floe_core::drill::{crash_point, skip_chunk};
use floe_core::ports::Notifier;

use super::resolve::*;
use super::retry::*;
use super::values::*;

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
                let shown = arrow_cast::pretty::pretty_format_batches(&failing)
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
                Dep::Source { source, table } => {
                    TableRef::in_layer(floe_core::Layer::Silver, source, table)?
                }
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
        let event = PipelineEvent::failed(
            clock.now(),
            Failed {
                reason: format!("the model did not build: {message}"),
                what_to_do: Some("fix the model (or its inputs), then `floe retry`; its published version is unchanged and its descendants were skipped".into()),
                table: Some(format!("{}.{}", floe_models::GOLD, b.model)),
                model: Some(b.model.clone()),
                batch_id: Some(batch.clone()),
                run_id: Some(run.clone()),
                trigger: Some(trigger.to_owned()),
                ..Default::default()
            },
        );
        let detail = event.detail.clone();
        events.emit(event).await?;
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
