//! The local runtime: the stage handlers chained through durable local queues, in one process.
//!
//! `landing` receives S3-shaped "Object Created" events; `standardise` and `audit` receive floe's
//! stage messages. A handler's success deletes its message and sends the next ones; a retryable
//! failure makes the message visible again after a backoff (and after `MAX_RECEIVES` receives the
//! queue dead-letters it); a permanent failure dead-letters it at once and emits `floe.failed`.
//! Every stage is idempotent per batch, so a message handled twice (a crash between the work and
//! the delete) changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::flow::{Disposition, failed_event};
use floe_core::ports::{Clock, Delivery, EventSink, Lake, Queue, SystemClock};
use floe_core::{Error, ObjectRef, Result};

use floe_core::Stage;
use floe_pipeline::landing::landing_key;
use floe_pipeline::progress;
use floe_pipeline::stages::{Note, Stages};

use crate::events::EventLog;
use crate::queue::{LocalQueue, QueueStore};
use crate::store::LocalStore;

/// Receives before a message is dead-lettered.
pub const MAX_RECEIVES: u32 = 5;
/// How long a received message stays hidden while its handler runs.
pub const VISIBILITY: Duration = Duration::from_secs(300);
/// floe's working folder inside a project (queues, event log).
pub const STATE_DIR: &str = ".floe";
/// A landing file last written this long ago is taken as complete on first sight.
pub const SETTLED: Duration = Duration::from_secs(2);
/// A temporary copy into landing this old was abandoned (a `floe land` killed mid-copy).
pub const STALE_TEMP: Duration = Duration::from_secs(600);

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Files appended to bronze (replays included).
    pub landed: Vec<String>,
    /// Files quarantined, with their report keys.
    pub quarantined: Vec<(String, String)>,
    /// Tables published, with snapshot ids.
    pub published: Vec<(String, i64)>,
    /// Tables whose tests failed.
    pub rejected: Vec<(String, String)>,
    /// Models built and staged, with rows written.
    pub built: Vec<(String, u64)>,
    /// Models that failed to build or were skipped, with why.
    pub model_failures: Vec<(String, String)>,
    /// Messages sent to a dead-letter queue, with the reason.
    pub dead_lettered: Vec<(String, String)>,
    /// Messages put back for a retry.
    pub retried: usize,
}

impl Report {
    /// Records what a stage did and says it on `progress`.
    fn note(&mut self, note: Note, progress: &mut impl FnMut(&str)) {
        match note {
            Note::Staged { .. } => {}
            Note::Progress(line) => progress(&line),
            // The modelling stage's progress lines said these already.
            Note::Built { table, rows } => self.built.push((table, rows)),
            Note::ModelFailed { model, why } => self.model_failures.push((model, why)),
            Note::Landed { key, bronze, .. } => {
                progress(&format!("landed {key} -> {bronze}"));
                self.landed.push(key);
            }
            Note::Quarantined {
                key,
                report,
                problems,
            } => {
                progress(&format!(
                    "quarantined {key}: {} problem(s), see {report}",
                    problems.len()
                ));
                self.quarantined.push((key, report));
            }
            Note::Published { table, snapshot_id } => {
                if snapshot_id == 0 {
                    progress(&format!("published {table} (a view)"));
                } else {
                    progress(&format!("published {table} (snapshot {snapshot_id})"));
                }
                self.published.push((table, snapshot_id));
            }
            Note::Rejected { table, why } => {
                progress(&format!("rejected {table}: {why}"));
                self.rejected.push((table, why));
            }
        }
    }
}

/// One project's local pipeline.
pub struct Runtime {
    stages: Stages,
    store: Arc<LocalStore>,
    queues: QueueStore,
    events: Arc<EventLog>,
    clock: Arc<dyn Clock>,
    /// What the last landing-folder scan saw: key -> ((size, mtime), the object once hashed).
    scanned: tokio::sync::Mutex<Scanned>,
}

type Scanned =
    std::collections::HashMap<String, ((u64, Option<std::time::SystemTime>), Option<ObjectRef>)>;

impl Runtime {
    /// The runtime of `project` over `lake`, with its state under `<project>/.floe`.
    pub async fn open(project: Project, lake: Arc<dyn Lake>) -> Result<Self> {
        let state = project.root.join(STATE_DIR);
        let queues = QueueStore::open(&state.join("queues.db")).await?;
        let store = Arc::new(LocalStore::new("landing", &project.root));
        let events = Arc::new(EventLog::new(&state.join("events.jsonl")));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let notifier = project.settings.webhook.as_ref().map(|u| {
            Arc::new(floe_webhook::Webhook::new(u)) as Arc<dyn floe_core::ports::Notifier>
        });
        let concurrency = project.settings.concurrency as usize;
        Ok(Runtime {
            stages: Stages {
                project,
                lake,
                landing: store.clone(),
                quarantine: store.clone(),
                events: events.clone(),
                clock: clock.clone(),
                rows: Arc::new(floe_lake::MemoryEngine),
                notifier,
                concurrency,
                chunk_rows: floe_pipeline::extract::CHUNK_ROWS,
            },
            store,
            events,
            queues,
            clock,
            scanned: Default::default(),
        })
    }

    /// Lands files `rows` rows at a time (at least one) instead of
    /// [`floe_pipeline::extract::CHUNK_ROWS`]: a test of a file of many chunks without a
    /// large file.
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.stages.chunk_rows = rows.max(1);
        self
    }

    /// The project.
    pub fn project(&self) -> &Project {
        &self.stages.project
    }

    /// The lake.
    pub fn lake(&self) -> &Arc<dyn Lake> {
        &self.stages.lake
    }

    /// The queue database.
    pub fn queues(&self) -> &QueueStore {
        &self.queues
    }

    /// The event log.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// A stage's queue (with its dead-letter queue).
    pub fn queue(&self, stage: &str) -> LocalQueue {
        self.queues
            .queue(stage, Some((&format!("{stage}-dlq"), MAX_RECEIVES)))
    }

    /// Copies a file into the landing zone and announces it, as S3 + EventBridge would.
    pub async fn land_file(
        &self,
        file: &Path,
        table: &str,
        extract_ts: DateTime<Utc>,
    ) -> Result<ObjectRef> {
        let (source, name) = table.split_once('.').ok_or_else(|| {
            Error::Config(format!(
                "'{table}' is not SOURCE.TABLE (for example nomis.people)"
            ))
        })?;
        // Over the table's size limit: refused here, before a byte is copied (landing would
        // quarantine it after the copy). An unknown table is landing's to report.
        let size = std::fs::metadata(file)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", file.display())))?
            .len();
        if let Ok(declared) = self.project().table(table)
            && size > declared.max_file_mb * 1024 * 1024
        {
            return Err(Error::Config(format!(
                "{} is {} MiB, over max_file_mb ({}) for {table}: split the extract, or raise \
                 max_file_mb in tables/{source}.yaml; nothing was copied",
                file.display(),
                size.div_ceil(1024 * 1024),
                declared.max_file_mb
            )));
        }
        progress::step(format!("copying {}", file.display()));
        progress::measure(progress::Unit::Bytes, Some(size));
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Config(format!("{} has no file name", file.display())))?;
        let key = landing_key(source, name, extract_ts, file_name);
        let object = self.store.put_file(&key, file, progress::add)?;
        self.announce(&object).await?;
        self.mark_announced(&object).await?;
        Ok(object)
    }

    /// Puts an "Object Created" event for an object on the landing queue.
    pub async fn announce(&self, object: &ObjectRef) -> Result<()> {
        self.queue("landing")
            .send(&floe_pipeline::events::object_created(
                object,
                self.clock.now(),
            ))
            .await
            .map(|_| ())
    }

    /// Files under `landing/` that were never announced (for `floe up`, which watches the folder).
    /// A file counts once its size and modification time are the same on two scans in a row, or
    /// it was last written [`SETTLED`] ago or more, so a file still being copied in is not taken
    /// half-written; it is read (to hash it) only then. [`Runtime::settling`] says how many were
    /// left for the next scan.
    pub async fn unannounced(&self) -> Result<Vec<ObjectRef>> {
        let seen = self.queues.seen_keys().await?;
        let mut scanned = self.scanned.lock().await;
        let mut out = Vec::new();
        let files = self.store.files(floe_pipeline::landing::LANDING_PREFIX)?;
        // Forget files that are gone (a copy renamed into place, a file removed by hand).
        let listed: std::collections::HashSet<&str> =
            files.iter().map(|(k, _)| k.as_str()).collect();
        scanned.retain(|k, _| listed.contains(k.as_str()));
        for (key, meta) in &files {
            let key = key.clone();
            let stamp = (meta.len(), meta.modified().ok());
            let settled = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= SETTLED);
            let unchanged = scanned.get(&key).is_some_and(|(s, _)| *s == stamp);
            let object = match scanned.get(&key) {
                Some((_, Some(o))) if unchanged => o.clone(),
                _ if unchanged || settled => {
                    let o = self.store.identify(&key)?;
                    scanned.insert(key.clone(), (stamp, Some(o.clone())));
                    o
                }
                _ => {
                    // New or still changing: look again on the next scan.
                    scanned.insert(key.clone(), (stamp, None));
                    continue;
                }
            };
            if !seen.contains(&(object.key.clone(), object.etag.clone().unwrap_or_default())) {
                out.push(object);
            }
        }
        Ok(out)
    }

    /// How many files the last [`Runtime::unannounced`] scan saw still changing (or seen for the
    /// first time while fresh): the next scan takes them once they settle.
    pub async fn settling(&self) -> usize {
        self.scanned
            .lock()
            .await
            .values()
            .filter(|(_, o)| o.is_none())
            .count()
    }

    /// Removes the temporary files of copies into landing that never finished and are older
    /// than [`STALE_TEMP`] (see [`LocalStore::remove_stale_temp_files`]).
    pub fn remove_stale_temp_files(&self) -> Result<usize> {
        self.store
            .remove_stale_temp_files(floe_pipeline::landing::LANDING_PREFIX, STALE_TEMP)
    }

    /// Records that an object was announced.
    pub async fn mark_announced(&self, object: &ObjectRef) -> Result<()> {
        self.queues
            .mark_seen(&object.key, object.etag.as_deref().unwrap_or_default())
            .await
    }

    /// Processes messages until every queue is empty (messages hidden by a crashed run become
    /// visible after their visibility timeout, or at once with `reclaim`).
    pub async fn drain(&self, reclaim: bool, mut progress: impl FnMut(&str)) -> Result<Report> {
        if reclaim {
            self.queues.reclaim_in_flight().await?;
        } else {
            // Messages a killed floe process held come back now, not after their timeout.
            self.queues.reclaim_orphaned().await?;
        }
        let mut report = Report::default();
        let mut waiting_said = false;
        loop {
            let mut handled = 0;
            for stage in Stage::ALL {
                let queue = self.queue(stage.as_str());
                for delivery in queue.receive(10, VISIBILITY).await? {
                    handled += 1;
                    self.process(stage, &queue, delivery, &mut report, &mut progress)
                        .await?;
                }
            }
            if handled == 0 {
                let pending: u64 = {
                    let mut n = 0;
                    for stage in Stage::ALL {
                        n += self.queues.depth(stage.as_str()).await?;
                    }
                    n
                };
                if pending == 0 {
                    progress::idle();
                    return Ok(report);
                }
                // Only hidden messages are left: a retry's backoff, or work another (or a
                // crashed) process holds. Say so once, then wait for them to come back.
                if !waiting_said {
                    progress(&format!(
                        "waiting for {pending} message(s) in flight (held by another floe process, \
                         or left by a crashed one: `floe up --once` reclaims those)"
                    ));
                    waiting_said = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn process(
        &self,
        stage: Stage,
        queue: &LocalQueue,
        d: Delivery,
        report: &mut Report,
        progress: &mut impl FnMut(&str),
    ) -> Result<()> {
        progress::step(progress::describe(stage.as_str(), &d.body));
        let result = self.stages.handle(stage, &d.body).await;
        let sent = match result {
            Ok(outcome) => {
                for note in outcome.notes {
                    report.note(note, progress);
                }
                for m in outcome.next {
                    self.queue(m.body.stage().as_str())
                        .send(&m.to_json())
                        .await?;
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        match Disposition::of(&sent, d.receive_count, Some(MAX_RECEIVES)) {
            Disposition::Done => queue.delete(&d.receipt).await,
            Disposition::RetryAfter(wait) => {
                let e = sent.expect_err("only a failure is retried");
                tracing::warn!(%stage, error = %e, attempt = d.receive_count, "retrying later");
                progress(&format!("{stage}: retrying after {wait:?}: {e}"));
                report.retried += 1;
                queue.retry_later(&d.receipt, wait).await
            }
            Disposition::DeadLetter => {
                let e = sent.expect_err("only a failure is dead-lettered");
                tracing::error!(%stage, error = %e, "dead-lettering the message");
                progress(&format!("{stage}: dead-lettered: {e}"));
                self.queues
                    .queue(&stage.dead_letter_queue(), None)
                    .send(&d.body)
                    .await?;
                queue.delete(&d.receipt).await?;
                floe_pipeline::ledger::record_dead_letter(
                    self.stages.lake.as_ref(),
                    &self.stages.project,
                    stage.as_str(),
                    &d.body,
                    &e.to_string(),
                    self.clock.now(),
                )
                .await;
                report
                    .dead_lettered
                    .push((stage.to_string(), e.to_string()));
                self.events
                    .emit(failed_event(
                        stage,
                        &e,
                        &stage.dead_letter_queue(),
                        None,
                        self.clock.now(),
                    ))
                    .await
            }
        }
    }
}

/// The folder of a project's local state.
pub fn state_dir(project_root: &Path) -> PathBuf {
    project_root.join(STATE_DIR)
}
