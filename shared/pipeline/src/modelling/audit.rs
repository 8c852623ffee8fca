//! The gold audit: each staged model's data tests run against its staged version, the passing
//! ones published parents first; a failure keeps the published version, records the failing rows,
//! emits `floe.failed` and calls the webhook.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use floe_config::Project;
use floe_core::message::{Staged, StagedModel};
use floe_core::ports::{Clock, EventSink, Lake, PipelineEvent, ReadAt, WriteOptions};
use floe_core::{BatchId, Error, Result, RunId, TableRef};
use floe_models::materialize::{self};
use floe_models::project::TestKind;
use floe_models::{Model, Models, RenderCtx};
use serde::Serialize;
use serde_json::json;

use floe_core::event::{Failed, Published};
use floe_core::ports::Notifier;

use super::resolve::*;
use super::runs::*;
use super::values::*;

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
                let event = PipelineEvent::failed(
                    self.clock.now(),
                    Failed {
                        reason: "data tests failed; the published version is unchanged".into(),
                        what_to_do: Some("the failing rows are in floe_audit.test_failures; fix the data or the model, then `floe retry`".into()),
                        table: Some(s.table.to_string()),
                        model: Some(s.model.clone()),
                        batch_id: Some(batch.clone()),
                        run_id: Some(run.clone()),
                        trigger: Some(trigger.to_owned()),
                        failures: Some(json!(failing)),
                        ..Default::default()
                    },
                );
                let detail = event.detail.clone();
                self.events.emit(event).await?;
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
                .emit(PipelineEvent::published(
                    self.clock.now(),
                    Published {
                        table: s.table.to_string(),
                        model: Some(s.model.clone()),
                        snapshot_id,
                        batch_id: batch.clone(),
                        run_id: run.clone(),
                        trigger: Some(trigger.to_owned()),
                    },
                ))
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
            extra: Default::default(),
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
            let count_sql = floe_sql::reads::count_rows(&sql);
            let n = to_u64(&scalar(&self.lake.query(&count_sql, at).await?, 0));
            let examples = if n > 0 {
                let rows = self
                    .lake
                    .query(&floe_sql::reads::first_rows(&sql, 10), at)
                    .await?;
                arrow_cast::pretty::pretty_format_batches(&rows)
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
