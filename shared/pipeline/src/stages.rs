//! The stage handlers behind one entry point: a queue message in, the messages for the next
//! stages out. The local runtime and the Lambda services both call [`Stages::handle`]; only what
//! they do with the result (which queue, how a failure is retried or dead-lettered) differs.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use floe_config::Project;
use floe_core::message::{Envelope, StageMessage};
use floe_core::ports::{Clock, EventSink, Lake, ObjectStore};
use floe_core::{Error, Result, RunId};

use std::collections::BTreeSet;
use std::sync::Mutex;

use floe_core::TableRef;
use floe_models::Models;

use crate::audit::{Audit, Verdict};
use crate::extract::Problem;
use crate::landing::{Landed, Landing};
use crate::modelling::{
    AuditModels, Build, BuildStatus, ModelVerdict, Modelling, RunRecord, Target, record_runs,
};
use crate::runtime::crash_point;
use crate::standardise::Standardise;

/// A stage of the pipeline, named as its queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// S3 events in; landed files to bronze (or quarantine).
    Landing,
    /// Bronze batches in; silver history staged.
    Standardise,
    /// Staged writes in; tests, then publish or reject.
    Audit,
    /// Published tables in; the models downstream of them built and staged.
    Modelling,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [
        Stage::Landing,
        Stage::Standardise,
        Stage::Audit,
        Stage::Modelling,
    ];

    /// The stage's (and its queue's) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Landing => "landing",
            Stage::Standardise => "standardise",
            Stage::Audit => "audit",
            Stage::Modelling => "modelling",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "'{s}' is not a stage: use one of landing, standardise, audit, modelling"
                ))
            })
    }
}

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
    /// Messages for the next stages.
    pub next: Vec<(Stage, Envelope)>,
    /// What happened, for the caller to report.
    pub notes: Vec<Note>,
}

/// The source table a message is about (`source.table`), when it can be told without doing the
/// work: messages of one table are handled one after another (they write the same tables, and
/// concurrent writes would only conflict), messages of different tables side by side.
pub fn lane(stage: Stage, body: &str) -> Option<String> {
    // bronze_<source>.<table> and silver_<source>.<table> are one lane.
    let of_layer = |t: &floe_core::TableRef| {
        let source = t
            .namespace
            .split_once('_')
            .map_or(t.namespace.as_str(), |(_, s)| s);
        Some(format!("{source}.{}", t.name))
    };
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
    /// Where gold test failures are announced (the project's webhook), if anywhere.
    pub notifier: Option<Arc<dyn crate::notify::Notifier>>,
    /// How many models (or chunks) are built at once.
    pub concurrency: usize,
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
                Ok(o) if stage == Stage::Landing => {
                    o.next.first().map(|(_, m)| work_of(m)).unwrap_or_default()
                }
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
        let mut out = Outcome::default();
        let lake = self.lake.as_ref();
        match stage {
            Stage::Landing => {
                let landing = Landing {
                    project: &self.project,
                    lake,
                    landing: self.landing.as_ref(),
                    quarantine: self.quarantine.as_ref(),
                    events: self.events.as_ref(),
                    clock: self.clock.as_ref(),
                };
                for landed in landing.handle(body, &RunId::new()).await? {
                    match landed {
                        Landed::Bronze {
                            message: m,
                            rows,
                            bytes,
                        } => {
                            if let StageMessage::Standardise { object, bronze, .. } = &m.body {
                                out.notes.push(Note::Landed {
                                    key: object.key.clone(),
                                    bronze: bronze.to_string(),
                                    rows,
                                    bytes,
                                });
                            }
                            crash_point("after_bronze_commit");
                            out.next.push((Stage::Standardise, m));
                        }
                        Landed::Quarantined {
                            key,
                            report,
                            problems,
                        } => out.notes.push(Note::Quarantined {
                            key,
                            report,
                            problems,
                        }),
                    }
                }
            }
            Stage::Standardise => {
                let m = Envelope::from_json(body)?;
                let (audit, rows) = Standardise {
                    project: &self.project,
                    lake,
                }
                .handle(&m)
                .await?;
                if let StageMessage::Audit { table, .. } = &audit.body {
                    out.notes.push(Note::Staged {
                        table: table.to_string(),
                        rows,
                    });
                }
                out.next.push((Stage::Audit, audit));
            }
            Stage::Audit => {
                let m = Envelope::from_json(body)?;
                if let StageMessage::AuditModels {
                    trigger,
                    models,
                    redo,
                } = &m.body
                {
                    let project_models = self.models().await?;
                    let lines = Mutex::new(Vec::new());
                    let progress = |l: &str| lines.lock().expect("not poisoned").push(l.to_owned());
                    crash_point("before_publish");
                    let verdicts = AuditModels {
                        project: &self.project,
                        models: &project_models,
                        lake,
                        events: self.events.as_ref(),
                        notifier: self.notifier.as_deref(),
                        clock: self.clock.as_ref(),
                        progress: &progress,
                    }
                    .handle(trigger, models, &m.batch_id, &m.run_id)
                    .await?;
                    // Only the lines the notes below do not repeat.
                    out.notes.extend(
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
                    if stale && let Some(redo) = redo {
                        if m.attempt >= crate::audit::MAX_RESTAGES {
                            return Err(Error::CommitConflict {
                                table: trigger.clone(),
                                detail: "models restaged too many times while other runs kept publishing first; redrive later".into(),
                            });
                        }
                        out.next.push((
                            Stage::Modelling,
                            Envelope {
                                attempt: m.attempt + 1,
                                body: (**redo).clone(),
                                ..m.clone()
                            },
                        ));
                    }
                    for (model, v) in verdicts {
                        let table = models
                            .iter()
                            .find(|s| s.model == model)
                            .map(|s| s.table.to_string())
                            .unwrap_or(model);
                        match v {
                            ModelVerdict::Published { snapshot_id } => {
                                out.notes.push(Note::Published {
                                    table,
                                    snapshot_id: snapshot_id.unwrap_or_default(),
                                })
                            }
                            ModelVerdict::Failed { failures } => out.notes.push(Note::Rejected {
                                table,
                                why: failures
                                    .iter()
                                    .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            }),
                            ModelVerdict::Stale => out.notes.push(Note::Progress(format!(
                                "{table} went stale and is built again"
                            ))),
                            ModelVerdict::Skipped { because } => {
                                out.notes.push(Note::ModelFailed {
                                    model: table,
                                    why: format!("not published: its parent {because} was not"),
                                })
                            }
                        }
                    }
                    return Ok(out);
                }
                crash_point("before_publish");
                let verdict = Audit {
                    project: &self.project,
                    lake,
                    events: self.events.as_ref(),
                    clock: self.clock.as_ref(),
                }
                .handle(&m)
                .await?;
                match verdict {
                    Verdict::Published { table, snapshot_id } => {
                        out.notes.push(Note::Published {
                            table: table.to_string(),
                            snapshot_id,
                        });
                        if self.has_models_of(&table).await? {
                            out.next.push((
                                Stage::Modelling,
                                Envelope {
                                    attempt: 1,
                                    body: StageMessage::Model { table, snapshot_id },
                                    ..m.clone()
                                },
                            ));
                        }
                    }
                    Verdict::Rejected { table, failures } => out.notes.push(Note::Rejected {
                        table: table.to_string(),
                        why: failures
                            .iter()
                            .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                            .collect::<Vec<_>>()
                            .join("; "),
                    }),
                    Verdict::Stale(redo) => out.next.push((Stage::Standardise, redo)),
                }
            }
            Stage::Modelling => {
                // The stack's maintenance schedule sends its requests here.
                if let Some(request) = crate::maintenance::request(body) {
                    let lines = crate::maintenance::run(lake, &self.project, &request).await?;
                    out.notes.extend(lines.into_iter().map(Note::Progress));
                    return Ok(out);
                }
                let m = Envelope::from_json(body)?;
                let StageMessage::Model { table, snapshot_id } = &m.body else {
                    return Err(Error::MalformedMessage(format!(
                        "the modelling queue takes `model` messages, not this: {}",
                        m.to_json()
                    )));
                };
                let models = self.models().await?;
                let source = table
                    .namespace
                    .strip_prefix("silver_")
                    .map(|s| format!("{s}.{}", table.name));
                let mut selected = source
                    .map(|s| models.dag.downstream_of_source(&s))
                    .unwrap_or_default();
                if selected.is_empty() {
                    return Ok(out);
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
                out.notes.extend(
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
                    match &b.status {
                        BuildStatus::Staged => out.notes.push(Note::Built {
                            table: format!("{}.{}", floe_models::GOLD, b.model),
                            rows: b.rows,
                        }),
                        BuildStatus::Error { message } => out.notes.push(Note::ModelFailed {
                            model: b.model.clone(),
                            why: message.clone(),
                        }),
                        BuildStatus::Skipped { because } => out.notes.push(Note::ModelFailed {
                            model: b.model.clone(),
                            why: format!("skipped: its parent {because} failed"),
                        }),
                    }
                }
                if !build.staged.is_empty() {
                    out.next.push((
                        Stage::Audit,
                        Envelope {
                            attempt: 1,
                            body: StageMessage::AuditModels {
                                trigger,
                                models: build.staged,
                                redo: Some(Box::new(m.body.clone())),
                            },
                            ..m.clone()
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The project's models, loaded now (models and templates may change between messages),
    /// with template parameters from the catalog where the lake keeps them.
    pub async fn models(&self) -> Result<Models> {
        crate::modelling::load_models(&self.project, self.lake.as_ref()).await
    }

    /// Whether any model reads the silver table `table`.
    async fn has_models_of(&self, table: &TableRef) -> Result<bool> {
        let Some(source) = table.namespace.strip_prefix("silver_") else {
            return Ok(false);
        };
        let qualified = format!("{source}.{}", table.name);
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
