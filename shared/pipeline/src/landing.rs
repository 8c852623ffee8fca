//! The landing stage: an S3 "Object Created" event in, the file checked against its table config
//! and appended to bronze as one batch, a standardise message out. A bad file is copied to
//! `quarantine/` with a JSON report of every problem, a `floe.quarantined` event is emitted, and
//! nothing else is held up.

use floe_core::event::Quarantined;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, Utc};
use floe_config::{Project, TableConfig};
use floe_core::message::{Envelope, StageMessage};
use floe_core::ports::{
    Clock, EventSink, Input, Lake, ObjectStore, PipelineEvent, RowQuery, Write, WriteOptions,
};
use floe_core::{BatchId, Error, Layer, ObjectRef, Result, RunId};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::bronze;
use crate::events::{self, S3Event};
use crate::extract::{self, Problem};
pub use crate::keys::{
    INSTANT_RANGE, KeyError, LANDING_PREFIX, LandingKey, QUARANTINE_PREFIX, instant_in_range,
    landing_key, parse_extract_ts, parse_key,
};

/// A checked extract as bronze holds it: its columns as delivered, then floe's (batch, extract
/// time, landing time, landing key, file line).
pub fn bronze_batch(
    table: &TableConfig,
    extract: extract::Extract,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
    landed_at: DateTime<Utc>,
    key: &str,
) -> Result<RecordBatch> {
    let n = extract.rows();
    let utc = |v: i64| {
        Arc::new(TimestampMicrosecondArray::from(vec![v; n]).with_timezone("UTC")) as ArrayRef
    };
    let mut columns = extract.columns;
    columns.push(Arc::new(StringArray::from(vec![batch_id; n])));
    columns.push(utc(extract_ts.timestamp_micros()));
    columns.push(utc(landed_at.timestamp_micros()));
    columns.push(Arc::new(StringArray::from(vec![key; n])));
    columns.push(Arc::new(Int64Array::from(
        extract.lines.iter().map(|l| *l as i64).collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(bronze::schema(table), columns)
        .map_err(|e| Error::Internal(format!("building the bronze batch: {e}")))
}

/// What the checks of a landed file found, chunk by chunk.
#[derive(Debug, Default)]
struct Intake {
    /// Every problem found (at most [`extract::MAX_PROBLEMS`]).
    problems: Vec<Problem>,
    /// Every expectation with its failing rows (positions in the file), in config order.
    results: Vec<crate::expectations::Failed>,
    /// The rows dropped by expectations.
    dropped: Vec<(u64, String, String)>,
    /// Rows checked.
    checked: usize,
    /// Rows passed on to bronze.
    landed: usize,
}

impl Intake {
    /// The problems that refuse the file, if any.
    fn refused(&self) -> Option<Vec<Problem>> {
        (!self.problems.is_empty()).then(|| self.problems.clone())
    }

    fn add(&mut self, problems: Vec<Problem>) {
        let room = extract::MAX_PROBLEMS.saturating_sub(self.problems.len());
        self.problems.extend(problems.into_iter().take(room));
    }

    fn full(&self) -> bool {
        self.problems.len() >= extract::MAX_PROBLEMS
    }
}

/// A landed file being checked: the chunks its reader sends, and what became of them.
struct Checking<'s> {
    chunks: tokio::sync::mpsc::Receiver<std::result::Result<extract::Extract, Vec<Problem>>>,
    checker: extract::Checker<'s>,
    table: &'s TableConfig,
    file: &'s str,
    rows: &'s dyn RowQuery,
    intake: Arc<Mutex<Intake>>,
    batch_id: &'s BatchId,
    extract_ts: DateTime<Utc>,
    landed_at: DateTime<Utc>,
    /// Rows of the file before the chunk in hand.
    offset: usize,
    ended: bool,
}

impl Checking<'_> {
    /// The next chunk's bronze batch; an error once the file is refused (the problems are in
    /// the intake) or its expectations cannot run; `None` at the end of a file that passed.
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        if self.ended {
            return None;
        }
        let refused = || {
            Err(Error::InvalidData {
                file: self.file.to_owned(),
                detail: "refused: see its quarantine report".into(),
            })
        };
        loop {
            let Some(chunk) = self.chunks.recv().await else {
                // The end of the file: what only the whole file can tell.
                self.ended = true;
                let mut intake = self.intake.lock().expect("intake");
                if intake.problems.is_empty() {
                    if intake.checked == 0 {
                        intake.problems.push(extract::no_rows());
                    } else if let Some(p) = crate::expectations::all_dropped(
                        &intake.results,
                        intake.dropped.len(),
                        intake.checked,
                    ) {
                        intake.problems.push(p);
                    }
                }
                return if intake.problems.is_empty() {
                    None
                } else {
                    Some(refused())
                };
            };
            let extract = match chunk {
                Ok(x) => x,
                Err(problems) => {
                    let mut intake = self.intake.lock().expect("intake");
                    intake.add(problems);
                    if intake.full() {
                        self.ended = true;
                        return Some(refused());
                    }
                    continue;
                }
            };
            let n = extract.rows();
            let offset = self.offset;
            self.offset += n;
            let checked = self.checker.check(&extract);
            let refusing = {
                let mut intake = self.intake.lock().expect("intake");
                if let Err(problems) = checked {
                    intake.add(problems);
                }
                if intake.full() {
                    self.ended = true;
                    return Some(refused());
                }
                !intake.problems.is_empty()
            };
            if refusing {
                // Refused already: the rest is read for its problems only.
                continue;
            }
            let verdict =
                match crate::expectations::check(self.table, extract, self.file, self.rows).await {
                    Ok(v) => v,
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                };
            let mut intake = self.intake.lock().expect("intake");
            let (extract, results, dropped, checked) = match verdict {
                crate::expectations::Verdict::Land {
                    extract,
                    results,
                    dropped,
                    checked,
                } => (extract, results, dropped, checked),
                crate::expectations::Verdict::Refuse(problems) => {
                    intake.add(problems);
                    if intake.full() {
                        self.ended = true;
                        return Some(refused());
                    }
                    continue;
                }
            };
            if intake.results.is_empty() {
                intake.results = results
                    .iter()
                    .map(|f| crate::expectations::Failed {
                        expectation: f.expectation.clone(),
                        rows: Vec::new(),
                    })
                    .collect();
            }
            for (all, chunk) in intake.results.iter_mut().zip(results) {
                all.rows.extend(chunk.rows.into_iter().map(|r| r + offset));
            }
            intake.dropped.extend(dropped);
            intake.checked += checked;
            intake.landed += extract.rows();
            return Some(bronze_batch(
                self.table,
                extract,
                self.batch_id.as_str(),
                self.extract_ts,
                self.landed_at,
                self.file,
            ));
        }
    }
}

/// What the landing stage needs.
pub struct Landing<'a> {
    /// The project (table configs).
    pub project: &'a Project,
    /// The lake holding bronze.
    pub lake: &'a dyn Lake,
    /// Where landed files are read.
    pub landing: &'a dyn ObjectStore,
    /// Where bad files and their reports go.
    pub quarantine: &'a dyn ObjectStore,
    /// Where `floe.quarantined` events go.
    pub events: &'a dyn EventSink,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Where expectations run over a file's rows.
    pub rows: &'a dyn RowQuery,
    /// Rows a file is read and checked in ([`extract::CHUNK_ROWS`]; tests make it small).
    pub chunk_rows: usize,
}

/// What became of one landed object.
#[derive(Debug, Clone, PartialEq)]
pub enum Landed {
    /// Appended to bronze (or found there already): standardise it next.
    Bronze {
        /// The standardise message.
        message: Envelope,
        /// Rows in the file.
        rows: u64,
        /// The file's size in bytes.
        bytes: u64,
    },
    /// Refused: copied to quarantine with a report.
    Quarantined {
        /// The landed key.
        key: String,
        /// The report's key.
        report: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// At most this many files are landed by one reconcile message.
pub const RECONCILE_BATCH: usize = 200;

impl Landing<'_> {
    /// Handles one queue message (an S3 event): every object it names is landed or quarantined.
    /// Errors are for the message as a whole (unreadable event, storage or lake failures).
    pub async fn handle(&self, body: &str, run_id: &RunId) -> Result<Vec<Landed>> {
        let objects = match events::parse(body)? {
            S3Event::Created(objects) => objects,
            S3Event::Ignored(what) => {
                tracing::debug!(%what, "event ignored");
                return Ok(Vec::new());
            }
            S3Event::Reconcile => self.unrecorded().await?,
        };
        let mut out = Vec::new();
        for object in objects {
            out.push(self.land(object, run_id).await?);
        }
        Ok(out)
    }

    /// The files of the landing zone that the file ledger has no row for (their event never
    /// came, or was lost), at most [`RECONCILE_BATCH`] of them: the next reconcile takes the rest.
    /// A file whose event is on its way meanwhile is landed twice, which changes nothing.
    async fn unrecorded(&self) -> Result<Vec<ObjectRef>> {
        let listed = self.landing.list(LANDING_PREFIX).await?;
        let rows = crate::ledger::status_of(self.lake, &listed).await?;
        let pending: std::collections::BTreeSet<String> = rows
            .into_iter()
            .filter(|r| r.status == crate::ledger::FileStatus::Pending)
            .map(|r| r.key)
            .collect();
        let out: Vec<ObjectRef> = listed
            .into_iter()
            .filter(|o| pending.contains(&o.key))
            .take(RECONCILE_BATCH)
            .collect();
        tracing::info!(
            files = out.len(),
            "reconcile: files the ledger does not know"
        );
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(key = %object.key))]
    async fn land(&self, object: ObjectRef, run_id: &RunId) -> Result<Landed> {
        if object.bucket != self.landing.bucket() {
            // A misrouted event (a rule or notification pointing at the wrong queue): reading
            // the key from this bucket would land someone else's file, or nothing.
            return Err(Error::Config(format!(
                "an event for s3://{}/{} reached the landing service of bucket {}: check the \
                 bucket's EventBridge rule (or notification) targets",
                object.bucket,
                object.key,
                self.landing.bucket()
            )));
        }
        let batch_id = BatchId::for_object(&object);
        let key = match parse_key(&object.key) {
            Ok(k) => k,
            Err(e) => {
                return self
                    .quarantine(&object, &batch_id, None, vec![Problem::file(e.to_string())])
                    .await;
            }
        };
        let table = match self.project.table(&format!("{}.{}", key.source, key.table)) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!(
                    "{e}: declare the table under tables/ or land the file under its table's folder"
                );
                return self
                    .quarantine(&object, &batch_id, None, vec![Problem::file(msg)])
                    .await;
            }
        };
        let limit = table.max_file_mb * 1024 * 1024;
        if object.size > limit {
            let msg = format!(
                "the file is {} MiB, over max_file_mb ({}) for {}: split the extract or raise max_file_mb",
                object.size / (1024 * 1024),
                table.max_file_mb,
                table.qualified_name()
            );
            return self
                .quarantine(&object, &batch_id, Some(table), vec![Problem::file(msg)])
                .await;
        }
        // The config against the lake first: the columns the lake keeps and the config no
        // longer declares are left out of the file, and a change the lake cannot follow is
        // refused before anything is read or written.
        let drift = crate::drift::inspect(self.lake, table).await?;
        drift.check(table)?;
        // The file is read, checked and written chunk by chunk (bounded memory whatever its
        // size) and committed once its last chunk passed; a problem anywhere refuses it whole.
        // The tables are prepared once its first chunk passed, so a file refused at its start
        // changes nothing.
        tracing::info!(bytes = object.size, "reading");
        let landed_at = self.clock.now();
        // The file's checked rows, what the checks found going to `intake`.
        let read = |intake: Arc<Mutex<Intake>>| {
            self.checked_rows(
                table,
                &object,
                &drift.undeclared,
                &batch_id,
                key.extract_ts,
                landed_at,
                intake,
            )
        };
        let intake = Arc::new(Mutex::new(Intake::default()));
        let mut rows = read(intake.clone()).await?;
        let first = rows.next().await;
        let refused = intake.lock().expect("intake").refused();
        if let Some(problems) = refused {
            return self
                .quarantine(&object, &batch_id, Some(table), problems)
                .await;
        }
        let bronze_ref = table.table_ref(Layer::Bronze);
        if !drift.bronze.is_empty() {
            self.lake.evolve_schema(&bronze_ref, &drift.bronze).await?;
        }
        if !self.lake.table_exists(&bronze_ref).await? {
            match self
                .lake
                .create_partitioned_table(
                    &bronze_ref,
                    bronze::schema(table),
                    &bronze::partitioning(),
                )
                .await
            {
                Ok(()) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut options = WriteOptions::batch(batch_id.clone(), run_id.clone());
        options
            .properties
            .insert("floe.source-file".into(), object.key.clone());
        options
            .properties
            .insert("floe.extract-ts".into(), key.extract_ts.to_rfc3339());
        crate::progress::phase("checking and writing bronze");
        let rows = futures::stream::iter(first).chain(rows).boxed();
        let written = self
            .lake
            .write(&bronze_ref, Write::Append(Input::Stream(rows)), &options)
            .await;
        let refused = intake.lock().expect("intake").refused();
        if let Some(problems) = refused {
            // Refused by a later chunk: the write stopped and removed what it wrote.
            return self
                .quarantine(&object, &batch_id, Some(table), problems)
                .await;
        }
        let outcome = written?;
        let intake = if outcome.already_committed && !table.expectations.is_empty() {
            // Landed before (a redelivered event): the expectations' counts are recorded
            // again from the file, so a landing that stopped before recording them completes.
            let again = Arc::new(Mutex::new(Intake::default()));
            let mut rows = read(again.clone()).await?;
            while let Some(row) = rows.next().await {
                row?;
            }
            std::mem::take(&mut *again.lock().expect("intake"))
        } else {
            std::mem::take(&mut *intake.lock().expect("intake"))
        };
        let Intake {
            results,
            dropped,
            checked,
            landed: mut n,
            ..
        } = intake;
        if outcome.already_committed && table.expectations.is_empty() {
            // Only the first chunk was read: the rows are the landed snapshot's.
            let snapshots = self.lake.snapshots(&bronze_ref).await?;
            if let Some(added) = snapshots
                .iter()
                .find(|s| s.snapshot_id == outcome.snapshot_id)
                .and_then(|s| s.added_rows)
            {
                n = added as usize;
            }
        }
        let expected = crate::expectations::summary(&results, dropped.len());
        if let Some(line) = &expected {
            tracing::warn!(file = %object.key, "{line}");
        }
        tracing::info!(table = %bronze_ref, rows = n, snapshot_id = outcome.snapshot_id, replay = outcome.already_committed, "landed");
        crate::expectations::record(
            self.lake,
            table,
            &batch_id,
            &object.key,
            &results,
            &dropped,
            checked,
            self.clock.now(),
            run_id,
        )
        .await?;
        crate::ledger::record(
            self.lake,
            &crate::ledger::FileEvent {
                object: object.clone(),
                table: Some(table.qualified_name()),
                extract_ts: Some(key.extract_ts),
                status: crate::ledger::FileStatus::Landed,
                reason: expected,
                batch_id: Some(batch_id.to_string()),
                report: None,
            },
            self.clock.now(),
            run_id,
        )
        .await?;
        let bytes = object.size;
        Ok(Landed::Bronze {
            message: Envelope::new(
                batch_id,
                run_id.clone(),
                StageMessage::Standardise {
                    object,
                    bronze: bronze_ref,
                    bronze_snapshot_id: outcome.snapshot_id,
                    extract_ts: key.extract_ts,
                },
            ),
            rows: n as u64,
            bytes,
        })
    }

    /// The rows of a landed file as bronze batches, read on a blocking thread and checked chunk
    /// by chunk as the stream is polled ([`extract::CHUNK_ROWS`] rows to a chunk). What the
    /// checks found goes to `intake`; a refused file ends the stream with an error once every
    /// problem to report (at most [`extract::MAX_PROBLEMS`]) is known.
    #[allow(clippy::too_many_arguments)]
    async fn checked_rows<'s>(
        &'s self,
        table: &'s TableConfig,
        object: &'s ObjectRef,
        retired: &BTreeSet<String>,
        batch_id: &'s BatchId,
        extract_ts: DateTime<Utc>,
        landed_at: DateTime<Utc>,
        intake: Arc<Mutex<Intake>>,
    ) -> Result<BoxStream<'s, Result<RecordBatch>>> {
        crate::progress::measure(crate::progress::Unit::Bytes, Some(object.size));
        let input = self.landing.open(&object.key).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (config, retired) = (table.clone(), retired.clone());
        let chunk_rows = self.chunk_rows;
        tokio::task::spawn_blocking(move || {
            let chunks = match extract::open(&config, &retired, input, chunk_rows) {
                Ok(c) => c,
                Err(problems) => {
                    let _ = tx.blocking_send(Err(problems));
                    return;
                }
            };
            for chunk in chunks {
                if tx.blocking_send(chunk).is_err() {
                    // The reader went away (a replayed write that needs no rows).
                    return;
                }
            }
        });
        let state = Checking {
            chunks: rx,
            checker: extract::Checker::new(table),
            table,
            file: &object.key,
            rows: self.rows,
            intake,
            batch_id,
            extract_ts,
            landed_at,
            offset: 0,
            ended: false,
        };
        Ok(futures::stream::unfold(state, |mut st| async move {
            let next = st.next().await?;
            Some((next, st))
        })
        .boxed())
    }

    async fn quarantine(
        &self,
        object: &ObjectRef,
        batch_id: &BatchId,
        table: Option<&TableConfig>,
        problems: Vec<Problem>,
    ) -> Result<Landed> {
        let rest = object
            .key
            .strip_prefix(LANDING_PREFIX)
            .unwrap_or(&object.key);
        let target = format!("{QUARANTINE_PREFIX}{rest}");
        let report_key = format!("{target}.report.json");
        match self
            .quarantine
            .copy_from(self.landing, &object.key, &target)
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let rendered: Vec<String> = problems.iter().map(|p| p.render(&object.key)).collect();
        let report = json!({
            "file": object.key,
            "bucket": object.bucket,
            "batch_id": batch_id,
            "table": table.map(|t| t.qualified_name()),
            "quarantined_at": self.clock.now(),
            "problems": problems,
            "messages": rendered,
            "what_to_do": "fix the file and land it again (same key, or a new extract time); nothing from this file reached bronze",
        });
        self.quarantine
            .put(
                &report_key,
                serde_json::to_vec_pretty(&report).expect("reports serialise"),
            )
            .await?;
        for line in &rendered {
            tracing::warn!(problem = %line, "file quarantined");
        }
        crate::ledger::record(
            self.lake,
            &crate::ledger::FileEvent {
                object: object.clone(),
                table: table.map(|t| t.qualified_name()),
                extract_ts: parse_key(&object.key).ok().map(|k| k.extract_ts),
                status: crate::ledger::FileStatus::Quarantined,
                reason: Some(match rendered.len() {
                    0 => "quarantined".to_owned(),
                    1 => rendered[0].clone(),
                    n => format!("{} (and {} more problems)", rendered[0], n - 1),
                }),
                batch_id: Some(batch_id.to_string()),
                report: Some(report_key.clone()),
            },
            self.clock.now(),
            &RunId::new(),
        )
        .await?;
        self.events
            .emit(PipelineEvent::quarantined(
                self.clock.now(),
                Quarantined {
                    file: object.key.clone(),
                    batch_id: batch_id.clone(),
                    table: table.map(|t| t.qualified_name()),
                    report: report_key.clone(),
                    problems: rendered.iter().take(5).cloned().collect(),
                    problem_count: problems.len(),
                },
            ))
            .await?;
        Ok(Landed::Quarantined {
            key: object.key.clone(),
            report: report_key,
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_landing_layout() {
        let k = parse_key("landing/nomis/people/2026-11-01T06:00:00Z/people.csv").unwrap();
        assert_eq!(
            (k.source.as_str(), k.table.as_str(), k.file.as_str()),
            ("nomis", "people", "people.csv")
        );
        assert_eq!(
            k.extract_ts,
            "2026-11-01T06:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_key("landing/nomis/people/20261101T060000Z/p.csv")
                .unwrap()
                .extract_ts,
            k.extract_ts
        );
        assert!(
            parse_key("landing/nomis/people/p.csv")
                .unwrap_err()
                .to_string()
                .contains("not a landing key")
        );
        assert!(parse_key("other/nomis/people/2026-11-01/p.csv").is_err());
        assert!(
            parse_key("landing/nomis/people/yesterday/p.csv")
                .unwrap_err()
                .to_string()
                .contains("not an extract time")
        );
        // Beyond what the engines store (nanosecond timestamps): refused before bronze, not
        // left for the audit to fail on.
        for ts in ["9999-12-31T23:59:59Z", "1600-01-01", "2262-04-12T00:00:00Z"] {
            let err = parse_key(&format!("landing/nomis/people/{ts}/p.csv"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("outside the instants floe stores"), "{err}");
        }
        assert!(parse_key("landing/nomis/people/2262-04-10T23:00:00Z/p.csv").is_ok());
        assert!(parse_key("landing/nomis/people/1677-09-22/p.csv").is_ok());
        let ts = "2026-11-01T06:00:00Z".parse().unwrap();
        assert_eq!(
            landing_key("nomis", "people", ts, "p.csv"),
            "landing/nomis/people/2026-11-01T06:00:00Z/p.csv"
        );
    }
}
