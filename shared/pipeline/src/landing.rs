//! The landing stage: an S3 "Object Created" event in, the file checked against its table config
//! and appended to bronze as one batch, a standardise message out. A bad file is copied to
//! `quarantine/` with a JSON report of every problem, a `floe.quarantined` event is emitted, and
//! nothing else is held up.

use floe_core::event::Quarantined;
use floe_core::ports::LakeWrites;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, Utc};
use floe_config::{Project, TableConfig};
use floe_core::message::{Envelope, StageMessage};
use floe_core::ports::{
    Clock, EventSink, Lake, ObjectStore, PipelineEvent, RowQuery, WriteOptions,
};
use floe_core::{BatchId, Error, Layer, ObjectRef, Result, RunId};
use serde_json::json;

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
        let bytes = self.landing.get(&object.key).await?;
        let extract = match extract::read_with(table, &bytes, &drift.undeclared) {
            Ok(x) => x,
            Err(problems) => {
                return self
                    .quarantine(&object, &batch_id, Some(table), problems)
                    .await;
            }
        };
        let (extract, results, dropped, checked) =
            match crate::expectations::check(table, extract, &object.key, self.rows).await? {
                crate::expectations::Verdict::Land {
                    extract,
                    results,
                    dropped,
                    checked,
                } => (extract, results, dropped, checked),
                crate::expectations::Verdict::Refuse(problems) => {
                    return self
                        .quarantine(&object, &batch_id, Some(table), problems)
                        .await;
                }
            };
        let expected = crate::expectations::summary(&results, dropped.len());
        if let Some(line) = &expected {
            tracing::warn!(file = %object.key, "{line}");
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
        let n = extract.rows();
        let batch = bronze_batch(
            table,
            extract,
            batch_id.as_str(),
            key.extract_ts,
            self.clock.now(),
            &object.key,
        )?;
        let mut options = WriteOptions::batch(batch_id.clone(), run_id.clone());
        options
            .properties
            .insert("floe.source-file".into(), object.key.clone());
        options
            .properties
            .insert("floe.extract-ts".into(), key.extract_ts.to_rfc3339());
        crate::progress::phase("writing bronze");
        let outcome = self.lake.append(&bronze_ref, vec![batch], &options).await?;
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
        match self.landing.get(&object.key).await {
            Ok(bytes) => {
                self.quarantine.put(&target, bytes).await?;
            }
            Err(Error::NotFound(_)) => {}
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
