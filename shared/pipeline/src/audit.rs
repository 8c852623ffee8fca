//! The audit stage for silver: test a staged history, then publish it atomically, or reject it
//! (the published version stays), emitting `floe.published` or `floe.failed`.
//!
//! Tests: one current row per key; no inverted or overlapping validity intervals; and the batch
//! reconciles: every key of the landed extract has exactly the standardised values in the version
//! valid at the extract time (full loads), or appears in the history (cdc loads).

use std::collections::BTreeMap;

use floe_config::{Project, TableConfig};
use floe_core::event::{Failed, Published};
use floe_core::message::{Envelope, StageMessage, Staged};
use floe_core::ports::{EventSink, Lake, PipelineEvent, ReadAt};
use floe_core::{Error, Result, TableRef};
use serde::Serialize;
use serde_json::json;

use crate::sql::silver_tests::{self, Extract};
use crate::standardise::{stage_name, table_config};

pub use crate::flow::MAX_RESTAGES;

/// One failed test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The test's name.
    pub test: String,
    /// How many rows fail it.
    pub failing_rows: u64,
    /// A few failing rows, as text.
    pub examples: Vec<String>,
}

/// What the audit decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The staged snapshot is now what readers see.
    Published {
        /// The table.
        table: TableRef,
        /// Its new current snapshot.
        snapshot_id: i64,
    },
    /// Tests failed: nothing was published.
    Rejected {
        /// The table.
        table: TableRef,
        /// The failed tests.
        failures: Vec<Failure>,
    },
    /// Another write was published first: the stage must run again on the new version.
    Stale(Envelope),
}

/// What the audit stage needs.
pub struct Audit<'a> {
    /// The project.
    pub project: &'a Project,
    /// The lake.
    pub lake: &'a dyn Lake,
    /// Where `floe.published` / `floe.failed` go.
    pub events: &'a dyn EventSink,
    /// Now.
    pub clock: &'a dyn floe_core::ports::Clock,
}

impl Audit<'_> {
    /// Tests the staged write named by the message, then publishes or rejects it.
    #[tracing::instrument(skip_all, fields(batch_id = %message.batch_id))]
    pub async fn handle(&self, message: &Envelope) -> Result<Verdict> {
        let StageMessage::Audit {
            table: silver,
            staged,
            redo,
        } = &message.body
        else {
            return Err(Error::MalformedMessage(format!(
                "the audit queue got a {} message",
                stage_name(&message.body)
            )));
        };
        let Staged::Snapshot { snapshot_id } = staged else {
            return Err(Error::MalformedMessage(
                "silver audits take staged snapshots".into(),
            ));
        };
        let declared = table_config(self.project, silver)?;
        // The history as standardise built it: declared columns, then retired ones.
        let effective = crate::drift::effective_now(self.lake, declared).await?;
        let config = &effective;
        let history = self.lake.snapshots(silver).await?;
        let Some(snap) = history.iter().find(|s| s.snapshot_id == *snapshot_id) else {
            return Err(Error::NotFound(format!(
                "table {silver} has no snapshot {snapshot_id}"
            )));
        };
        if snap.published {
            // Published before: a replay, or (Athena) an extract that changed nothing, whose
            // MERGE committed no snapshot, so its version is the published one. The event is
            // emitted again (consumers dedupe by batch id), in case the first run stopped
            // between publishing and emitting, and the file is recorded as published (the
            // ledger keeps a file's latest status, so a second record changes nothing).
            self.emit_published(silver, *snapshot_id, message).await?;
            self.record_file(message, crate::ledger::FileStatus::Published, None)
                .await?;
            return Ok(Verdict::Published {
                table: silver.clone(),
                snapshot_id: *snapshot_id,
            });
        }
        let current = history.iter().find(|s| s.is_current).map(|s| s.snapshot_id);
        // Stale if another writer published since this version was computed (an engine whose
        // write is several commits records where the first one started), or if the table's
        // config changed since (its tests would judge it by other rules; standardise builds it
        // again under the new ones, or refuses a change the lake cannot follow).
        let rules = crate::standardise::history_rules(config, self.lake.dialect());
        let other_rules = snap
            .summary
            .get(crate::standardise::HISTORY_RULES)
            .is_some_and(|built| built != &rules);
        if snap.based_on != current || other_rules {
            if message.attempt >= MAX_RESTAGES {
                return Err(Error::CommitConflict {
                    table: silver.to_string(),
                    detail: format!(
                        "restaged {MAX_RESTAGES} times and other writes kept winning; redrive later"
                    ),
                });
            }
            tracing::info!(table = %silver, other_rules, "staged history went stale: standardising again");
            return Ok(Verdict::Stale(message.again((**redo).clone())));
        }
        let at = ReadAt::Pinned(BTreeMap::from([(silver.clone(), *snapshot_id)]));
        let mut failures = Vec::new();
        let bronze = match &**redo {
            StageMessage::Standardise { bronze, .. } => Some(
                crate::drift::bronze_with_columns(
                    self.lake,
                    config,
                    bronze,
                    &bronze.to_string(),
                    &ReadAt::Current,
                )
                .await?,
            ),
            _ => None,
        };
        // An applied or late extract changed only versions valid at or after its extract time:
        // the tests read those (current now, or closed at or after it), not the older history,
        // which passed its audits before. A rebuilt history is tested whole.
        let source = match (&**redo, snap.summary.get(crate::standardise::SCD2_STEP)) {
            (StageMessage::Standardise { extract_ts, .. }, Some(step))
                if step == crate::standardise::Step::Apply.as_str()
                    || step == crate::standardise::Step::Late.as_str() =>
            {
                silver_tests::valid_since(self.lake.dialect(), &silver.to_string(), *extract_ts)
            }
            _ => silver.to_string(),
        };
        // An applied full extract whose versions standardise tallied: the history's versions
        // valid at the extract time must tally the same (same keys, same fingerprints, no more,
        // no fewer), which needs no second read of the extract. Only where the tallies differ
        // does the reconciling query run, to name the rows.
        let mut tally_differs = None;
        let mut reconciled = false;
        if let (StageMessage::Standardise { extract_ts, .. }, Some(recorded), Some(step)) = (
            &**redo,
            snap.summary.get(crate::standardise::EXTRACT_TALLY),
            snap.summary.get(crate::standardise::SCD2_STEP),
        ) && step == crate::standardise::Step::Apply.as_str()
            && config.load == floe_config::LoadKind::Full
            && config.deletes != floe_config::DeletesPolicy::Ignore
        {
            let sql = silver_tests::tally_at(self.lake.dialect(), config, &source, *extract_ts);
            let rows = self.lake.query(&sql, &at).await?;
            let found = crate::standardise::tally_text(crate::standardise::tally(
                &rows,
                crate::sql::scd2::TALLY,
            )?);
            if &found == recorded {
                reconciled = true;
            } else {
                tally_differs = Some(format!(
                    "the versions valid at {} tally {found} (versions:sum), the extract's {recorded}",
                    extract_ts.to_rfc3339()
                ));
            }
        }
        for (test, sql) in self.tests(
            config,
            &source,
            redo,
            bronze.as_deref(),
            message.batch_id.as_str(),
        ) {
            let reconciling = test == silver_tests::RECONCILES;
            if reconciling && reconciled {
                continue;
            }
            let rows = self.lake.query(&sql, &at).await?;
            let n: usize = rows.iter().map(|b| b.num_rows()).sum();
            if n == 0
                && reconciling
                && let Some(differs) = tally_differs.take()
            {
                // Every key of the extract has its version, yet the totals differ: the history
                // holds versions valid at that time that the extract does not.
                failures.push(Failure {
                    test,
                    failing_rows: 1,
                    examples: vec![differs],
                });
                continue;
            }
            if n > 0 {
                let examples = arrow_cast::pretty::pretty_format_batches(&rows)
                    .map(|t| t.to_string().lines().take(12).map(str::to_owned).collect())
                    .unwrap_or_default();
                failures.push(Failure {
                    test,
                    failing_rows: n as u64,
                    examples,
                });
            }
        }
        if failures.is_empty() {
            match self.lake.publish_snapshot(silver, *snapshot_id).await {
                Ok(()) => {}
                Err(Error::CommitConflict { .. }) => {
                    return Ok(Verdict::Stale(message.again((**redo).clone())));
                }
                Err(e) => return Err(e),
            }
            self.emit_published(silver, *snapshot_id, message).await?;
            self.record_file(message, crate::ledger::FileStatus::Published, None)
                .await?;
            tracing::info!(table = %silver, snapshot_id, "published");
            Ok(Verdict::Published {
                table: silver.clone(),
                snapshot_id: *snapshot_id,
            })
        } else {
            let reason = failures
                .iter()
                .map(|f| format!("{} ({} rows)", f.test, f.failing_rows))
                .collect::<Vec<_>>()
                .join("; ");
            crate::rejections::record(
                self.lake,
                silver,
                &message.batch_id,
                &message.run_id,
                self.clock.now(),
                &reason,
            )
            .await?;
            self.events
                .emit(PipelineEvent::failed(
                    self.clock.now(),
                    Failed {
                        reason: "silver tests failed; the published version is unchanged".into(),
                        what_to_do: Some("the batch is recorded in floe_audit.rejected_batches and left out of later builds; fix the source data and land a corrected extract".into()),
                        table: Some(silver.to_string()),
                        staged_snapshot_id: Some(*snapshot_id),
                        batch_id: Some(message.batch_id.clone()),
                        run_id: Some(message.run_id.clone()),
                        failures: Some(json!(failures)),
                        ..Default::default()
                    },
                ))
                .await?;
            self.record_file(message, crate::ledger::FileStatus::Rejected, Some(reason))
                .await?;
            for f in &failures {
                tracing::error!(table = %silver, test = %f.test, failing_rows = f.failing_rows, "audit failed");
            }
            Ok(Verdict::Rejected {
                table: silver.clone(),
                failures,
            })
        }
    }

    /// The file ledger's row for the landed file behind `message`, if it names one.
    async fn record_file(
        &self,
        message: &Envelope,
        status: crate::ledger::FileStatus,
        reason: Option<String>,
    ) -> Result<()> {
        let StageMessage::Audit { redo, .. } = &message.body else {
            return Ok(());
        };
        let Some(object) = crate::ledger::object_of(redo) else {
            return Ok(());
        };
        let (table, extract_ts) = match &**redo {
            StageMessage::Standardise {
                bronze, extract_ts, ..
            } => (
                table_config(self.project, bronze)
                    .ok()
                    .map(|t| t.qualified_name()),
                Some(*extract_ts),
            ),
            _ => (None, None),
        };
        crate::ledger::record(
            self.lake,
            &crate::ledger::FileEvent {
                object: object.clone(),
                table,
                extract_ts,
                status,
                reason,
                batch_id: Some(message.batch_id.to_string()),
                report: None,
            },
            self.clock.now(),
            &message.run_id,
        )
        .await
    }

    async fn emit_published(
        &self,
        table: &TableRef,
        snapshot_id: i64,
        message: &Envelope,
    ) -> Result<()> {
        self.events
            .emit(PipelineEvent::published(
                self.clock.now(),
                Published {
                    table: table.to_string(),
                    model: None,
                    snapshot_id: Some(snapshot_id),
                    batch_id: message.batch_id.clone(),
                    run_id: message.run_id.clone(),
                    trigger: None,
                },
            ))
            .await
    }

    /// (name, query returning the failing rows): floe-sql's silver tests, and the drill's
    /// injected rejection.
    fn tests(
        &self,
        t: &TableConfig,
        silver: &str,
        redo: &StageMessage,
        bronze: Option<&str>,
        batch: &str,
    ) -> Vec<(String, String)> {
        let extract = match (redo, bronze) {
            (StageMessage::Standardise { extract_ts, .. }, Some(bronze)) => Some(Extract {
                bronze,
                batch,
                extract_ts: *extract_ts,
            }),
            _ => None,
        };
        let mut tests: Vec<(String, String)> =
            silver_tests::tests(self.lake.dialect(), t, silver, extract.as_ref())
                .into_iter()
                .map(|test| (test.name.to_owned(), test.sql))
                .collect();
        if let StageMessage::Standardise { object, .. } = redo
            && floe_core::drill::reject_file(&object.key)
        {
            tests.push((
                "injected rejection (FLOE_REJECT_FILES)".to_owned(),
                "SELECT 1 AS injected".to_owned(),
            ));
        }
        tests
    }
}
