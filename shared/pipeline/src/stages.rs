//! The stage handlers behind one entry point: a queue message in, the messages for the next
//! stages out. The local runtime and the Lambda services both call [`Stages::handle`]; only what
//! they do with the result (which queue, how a failure is retried or dead-lettered) differs, and
//! that too follows one rule ([`floe_core::flow::Disposition`]).
//!
//! Reading order for one file from S3 event to published gold: [`Stages::handle`] picks the
//! handler by the message, each handler ([`crate::landing`], [`crate::standardise`],
//! [`crate::audit`], [`crate::modelling`]) does the work and returns a [`Decision`], and
//! [`crate::flow::route`] says which messages follow.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;

use floe_config::Project;
use floe_core::TableRef;
use floe_core::drill::crash_point;
use floe_core::message::{Envelope, StageMessage};
use floe_core::ports::{Clock, EventSink, Lake, ObjectStore};
use floe_core::{Error, Result, RunId};
use floe_models::Models;

pub use floe_core::Stage;

use crate::audit::{Audit, Verdict};
use crate::extract::Problem;
use crate::flow::{Decision, route};
use crate::landing::{Landed, Landing};
use crate::modelling::{
    AuditModels, Build, BuildStatus, ModelVerdict, Modelling, RunRecord, Target, record_runs,
};
use crate::standardise::Standardise;

/// Something a stage did that the caller reports (progress lines, summaries, metrics).
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A landed file was appended to bronze (or found there already).
    Landed {
        /// The landed key.
        key: String,
        /// The bronze table.
        bronze: String,
        /// Rows in the file.
        rows: u64,
        /// The file's size in bytes.
        bytes: u64,
    },
    /// A table's new version was written and waits for its audit.
    Staged {
        /// The table.
        table: String,
        /// Rows in the staged version.
        rows: u64,
    },
    /// A landed file was quarantined.
    Quarantined {
        /// The landed key.
        key: String,
        /// The report's key.
        report: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A staged write passed its tests and was published.
    Published {
        /// The table.
        table: String,
        /// The snapshot readers now see.
        snapshot_id: i64,
    },
    /// A model was built and staged.
    Built {
        /// The model's table.
        table: String,
        /// Rows written.
        rows: u64,
    },
    /// A model failed to build, or was skipped because a parent failed.
    ModelFailed {
        /// The model.
        model: String,
        /// Why.
        why: String,
    },
    /// A progress line (chunks, skipped models, publishing).
    Progress(String),
    /// A staged write failed its tests and was rejected.
    Rejected {
        /// The table.
        table: String,
        /// The failing tests, with their failing row counts.
        why: String,
    },
}

/// What handling one message produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages for the next stages (each names its queue: [`StageMessage::stage`]).
    pub next: Vec<Envelope>,
    /// What happened, for the caller to report.
    pub notes: Vec<Note>,
}

/// The source table a message is about (`source.table`), when it can be told without doing the
/// work: messages of one table are handled one after another (they write the same tables, and
/// concurrent writes would only conflict), messages of different tables side by side.
pub fn lane(stage: Stage, body: &str) -> Option<String> {
    // bronze_<source>.<table> and silver_<source>.<table> are one lane.
    let of_layer = |t: &TableRef| t.source_table().or_else(|| Some(t.to_string()));
    match stage {
        Stage::Landing => match crate::events::parse(body).ok()? {
            crate::events::S3Event::Created(objects) => {
                let k = crate::landing::parse_key(&objects.first()?.key).ok()?;
                Some(format!("{}.{}", k.source, k.table))
            }
            crate::events::S3Event::Ignored(_) | crate::events::S3Event::Reconcile => None,
        },
        Stage::Standardise | Stage::Audit | Stage::Modelling => {
            match Envelope::from_json(body).ok()?.body {
                StageMessage::Standardise { bronze, .. } => of_layer(&bronze),
                StageMessage::Audit { table, .. } | StageMessage::Model { table, .. } => {
                    of_layer(&table)
                }
                // One gold run at a time: its models may share tables with another's.
                StageMessage::AuditModels { .. } => Some("gold".to_owned()),
            }
        }
    }
}

/// Who a message's statements are run for, for the query log.
fn work_of(m: &Envelope) -> crate::query_log::Work {
    let table = match &m.body {
        StageMessage::Standardise { bronze, .. } => Some(bronze.to_string()),
        StageMessage::Audit { table, .. } | StageMessage::Model { table, .. } => {
            Some(table.to_string())
        }
        StageMessage::AuditModels { .. } => None,
    };
    crate::query_log::Work {
        run_id: Some(m.run_id.clone()),
        batch_id: Some(m.batch_id.clone()),
        table,
    }
}

/// The stage handlers over their ports.
pub struct Stages {
    /// The project (table configs).
    pub project: Project,
    /// The lake.
    pub lake: Arc<dyn Lake>,
    /// Where landed files are read.
    pub landing: Arc<dyn ObjectStore>,
    /// Where bad files and their reports go.
    pub quarantine: Arc<dyn ObjectStore>,
    /// Where `floe.*` events go.
    pub events: Arc<dyn EventSink>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Where landing's expectations run (SQL over a file's rows in memory).
    pub rows: Arc<dyn floe_core::ports::RowQuery>,
    /// Where gold test failures are announced (the project's webhook), if anywhere.
    pub notifier: Option<Arc<dyn floe_core::ports::Notifier>>,
    /// How many models (or chunks) are built at once.
    pub concurrency: usize,
    /// Rows a landed file is read and checked in ([`crate::extract::CHUNK_ROWS`] unless set:
    /// fewer hold less memory and write more, smaller files).
    pub chunk_rows: usize,
}

impl Stages {
    /// Handles one message of `stage`'s queue. An error is for the message as a whole; its
    /// [`Error::is_retryable`] says whether a redelivery can succeed.
    ///
    /// Every statement the work runs is logged to `floe_audit.query_log` afterwards (see
    /// [`crate::query_log`]); a failure to log is a warning, never the message's failure.
    pub async fn handle(&self, stage: Stage, body: &str) -> Result<Outcome> {
        let (out, statements) = floe_core::cost::collect(self.run_stage(stage, body)).await;
        if !statements.is_empty() {
            let work = match &out {
                // Landing's message is an S3 event: the batch is the one it landed.
                Ok(o) if stage == Stage::Landing => o.next.first().map(work_of).unwrap_or_default(),
                _ => Envelope::from_json(body)
                    .map(|m| work_of(&m))
                    .unwrap_or_default(),
            };
            if let Err(e) =
                crate::query_log::append(self.lake.as_ref(), stage.as_str(), &work, &statements)
                    .await
            {
                tracing::warn!(error = %e, stage = stage.as_str(), "the statements this message ran were not logged to floe_audit.query_log");
            }
        }
        out
    }

    async fn run_stage(&self, stage: Stage, body: &str) -> Result<Outcome> {
        let mut notes = Vec::new();
        let decision = match stage {
            Stage::Landing => self.land(body, &mut notes).await?,
            // The stack's maintenance schedule sends its requests to the modelling queue.
            Stage::Modelling if let Some(request) = crate::maintenance::request(body) => {
                let lines =
                    crate::maintenance::run(self.lake.as_ref(), &self.project, &request).await?;
                notes.extend(lines.into_iter().map(Note::Progress));
                Decision::Done
            }
            _ => {
                let m = Envelope::from_json(body)?;
                if m.body.stage() != stage {
                    return Err(Error::MalformedMessage(format!(
                        "the {stage} queue does not take this message (it is for the {} \
                         queue): {}",
                        m.body.stage(),
                        m.to_json()
                    )));
                }
                match &m.body {
                    StageMessage::Standardise { .. } => self.standardise(&m, &mut notes).await?,
                    StageMessage::Audit { .. } => self.audit(&m, &mut notes).await?,
                    StageMessage::AuditModels { .. } => self.audit_models(&m, &mut notes).await?,
                    StageMessage::Model { .. } => self.build_models(&m, &mut notes).await?,
                }
            }
        };
        Ok(Outcome {
            next: route(decision)?,
            notes,
        })
    }

    /// Landing: an S3 event's files into bronze, or quarantine.
    async fn land(&self, body: &str, notes: &mut Vec<Note>) -> Result<Decision> {
        let landing = Landing {
            project: &self.project,
            lake: self.lake.as_ref(),
            landing: self.landing.as_ref(),
            quarantine: self.quarantine.as_ref(),
            events: self.events.as_ref(),
            clock: self.clock.as_ref(),
            rows: self.rows.as_ref(),
            chunk_rows: self.chunk_rows,
        };
        let mut standardise = Vec::new();
        for landed in landing.handle(body, &RunId::new()).await? {
            match landed {
                Landed::Bronze {
                    message,
                    rows,
                    bytes,
                } => {
                    if let StageMessage::Standardise { object, bronze, .. } = &message.body {
                        notes.push(Note::Landed {
                            key: object.key.clone(),
                            bronze: bronze.to_string(),
                            rows,
                            bytes,
                        });
                    }
                    crash_point("after_bronze_commit");
                    standardise.push(message);
                }
                Landed::Quarantined {
                    key,
                    report,
                    problems,
                } => notes.push(Note::Quarantined {
                    key,
                    report,
                    problems,
                }),
            }
        }
        Ok(Decision::Landed(standardise))
    }

    /// Standardise: a bronze batch into a staged silver history.
    async fn standardise(&self, m: &Envelope, notes: &mut Vec<Note>) -> Result<Decision> {
        let (audit, rows) = Standardise {
            project: &self.project,
            lake: self.lake.as_ref(),
        }
        .handle(m)
        .await?;
        if let StageMessage::Audit { table, .. } = &audit.body {
            notes.push(Note::Staged {
                table: table.to_string(),
                rows,
            });
        }
        Ok(Decision::Staged(audit))
    }

    /// The silver audit: a staged history tested, then published or rejected.
    async fn audit(&self, m: &Envelope, notes: &mut Vec<Note>) -> Result<Decision> {
        crash_point("before_publish");
        let verdict = Audit {
            project: &self.project,
            lake: self.lake.as_ref(),
            events: self.events.as_ref(),
            clock: self.clock.as_ref(),
        }
        .handle(m)
        .await?;
        Ok(match verdict {
            Verdict::Published { table, snapshot_id } => {
                notes.push(Note::Published {
                    table: table.to_string(),
                    snapshot_id,
                });
                Decision::Published {
                    message: m.clone(),
                    has_models: self.has_models_of(&table).await?,
                    table,
                    snapshot_id,
                }
            }
            Verdict::Rejected { table, failures } => {
                notes.push(Note::Rejected {
                    table: table.to_string(),
                    why: failures
                        .iter()
                        .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
                Decision::Done
            }
            Verdict::Stale(redo) => Decision::Stale(redo),
        })
    }

    /// The gold audit: a run's staged models tested, those that pass published.
    async fn audit_models(&self, m: &Envelope, notes: &mut Vec<Note>) -> Result<Decision> {
        let StageMessage::AuditModels {
            trigger,
            models,
            redo,
        } = &m.body
        else {
            return Err(Error::Internal("audit_models takes AuditModels".into()));
        };
        let project_models = self.models().await?;
        let lines = Mutex::new(Vec::new());
        let progress = |l: &str| lines.lock().expect("not poisoned").push(l.to_owned());
        crash_point("before_publish");
        let verdicts = AuditModels {
            project: &self.project,
            models: &project_models,
            lake: self.lake.as_ref(),
            events: self.events.as_ref(),
            notifier: self.notifier.as_deref(),
            clock: self.clock.as_ref(),
            progress: &progress,
        }
        .handle(trigger, models, &m.batch_id, &m.run_id)
        .await?;
        // Only the lines the notes below do not repeat.
        notes.extend(
            lines
                .into_inner()
                .expect("not poisoned")
                .into_iter()
                .filter(|l| !l.starts_with("published "))
                .map(Note::Progress),
        );
        let stale = verdicts
            .iter()
            .any(|(_, v)| matches!(v, ModelVerdict::Stale));
        for (model, v) in verdicts {
            let table = models
                .iter()
                .find(|s| s.model == model)
                .map(|s| s.table.to_string())
                .unwrap_or(model);
            notes.push(match v {
                ModelVerdict::Published { snapshot_id } => Note::Published {
                    table,
                    snapshot_id: snapshot_id.unwrap_or_default(),
                },
                ModelVerdict::Failed { failures } => Note::Rejected {
                    table,
                    why: failures
                        .iter()
                        .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                        .collect::<Vec<_>>()
                        .join("; "),
                },
                ModelVerdict::Stale => {
                    Note::Progress(format!("{table} went stale and is built again"))
                }
                ModelVerdict::Skipped { because } => Note::ModelFailed {
                    model: table,
                    why: format!("not published: its parent {because} was not"),
                },
            });
        }
        Ok(Decision::ModelsAudited {
            message: m.clone(),
            stale,
            redo: redo.clone(),
        })
    }

    /// Modelling: the models downstream of a published silver table built and staged.
    async fn build_models(&self, m: &Envelope, notes: &mut Vec<Note>) -> Result<Decision> {
        let StageMessage::Model { table, snapshot_id } = &m.body else {
            return Err(Error::Internal("build_models takes Model".into()));
        };
        let lake = self.lake.as_ref();
        let models = self.models().await?;
        let mut selected = table
            .source_table()
            .as_deref()
            .map(|s| models.dag.downstream_of_source(s))
            .unwrap_or_default();
        if selected.is_empty() {
            return Ok(Decision::Done);
        }
        // Ancestors never built yet (a first load) are built with them.
        let ancestors: BTreeSet<String> = selected
            .iter()
            .flat_map(|m| models.dag.ancestors(m))
            .filter(|a| !selected.contains(a))
            .collect();
        for a in ancestors {
            let t = TableRef::new(floe_models::GOLD, &a)?;
            if !lake.table_exists(&t).await? && lake.view_sql(&t).await?.is_none() {
                selected.insert(a);
            }
        }
        let lines = Mutex::new(Vec::new());
        let progress = |l: &str| lines.lock().expect("not poisoned").push(l.to_owned());
        let build = Modelling {
            project: &self.project,
            models: &models,
            lake,
            clock: self.clock.as_ref(),
            target: Target::default(),
            progress: &progress,
        }
        .build(&selected, &m.batch_id, &m.run_id, self.concurrency)
        .await?;
        notes.extend(
            lines
                .into_inner()
                .expect("not poisoned")
                .into_iter()
                .map(Note::Progress),
        );
        let trigger = format!("{table}@{snapshot_id}");
        record_build_failures(lake, &m.run_id, &trigger, m.attempt, &build).await?;
        crate::modelling::announce_build_failures(
            self.events.as_ref(),
            self.notifier.as_deref(),
            self.clock.as_ref(),
            &m.batch_id,
            &m.run_id,
            &trigger,
            &build,
        )
        .await?;
        for b in &build.built {
            notes.push(match &b.status {
                BuildStatus::Staged => Note::Built {
                    table: format!("{}.{}", floe_models::GOLD, b.model),
                    rows: b.rows,
                },
                BuildStatus::Error { message } => Note::ModelFailed {
                    model: b.model.clone(),
                    why: message.clone(),
                },
                BuildStatus::Skipped { because } => Note::ModelFailed {
                    model: b.model.clone(),
                    why: format!("skipped: its parent {because} failed"),
                },
            });
        }
        Ok(Decision::Built {
            message: m.clone(),
            trigger,
            staged: build.staged,
        })
    }

    /// The project's models, loaded now (models and templates may change between messages),
    /// with template parameters from the catalog where the lake keeps them.
    pub async fn models(&self) -> Result<Models> {
        crate::modelling::load_models(&self.project, self.lake.as_ref()).await
    }

    /// Whether any model reads the silver table `table`.
    async fn has_models_of(&self, table: &TableRef) -> Result<bool> {
        let Some(qualified) = table.source_table() else {
            return Ok(false);
        };
        if !crate::modelling::project_has_models(&self.project.root) {
            return Ok(false);
        }
        // Models that do not load are the modelling stage's failure to report (it dead-letters
        // the message with the problems); the silver publish stands.
        Ok(self
            .models()
            .await
            .map(|m| !m.dag.downstream_of_source(&qualified).is_empty())
            .unwrap_or(true))
    }
}

/// Records the models a build could not stage in `floe_audit.model_runs`.
pub async fn record_build_failures(
    lake: &dyn Lake,
    run: &RunId,
    trigger: &str,
    attempt: u32,
    build: &Build,
) -> Result<()> {
    let records: Vec<RunRecord> = build
        .built
        .iter()
        .filter_map(|b| {
            let (status, message) = match &b.status {
                BuildStatus::Staged => return None,
                BuildStatus::Error { message } => ("error", message.clone()),
                BuildStatus::Skipped { because } => ("skipped", format!("parent {because} failed")),
            };
            Some(RunRecord {
                run_id: run.as_str().to_owned(),
                trigger: trigger.to_owned(),
                model: b.model.clone(),
                status: status.to_owned(),
                started_at: b.started_at,
                finished_at: b.finished_at,
                rows: 0,
                bytes_scanned: None,
                message: Some(message),
            })
        })
        .collect();
    record_runs(lake, run, &records, &format!("build:{trigger}:{attempt}")).await
}
