//! The standardise stage: recompute a table's silver history from bronze (standardised names,
//! types, trims, empty strings as NULL, dedupe) and stage it as a snapshot of
//! `silver_<source>.<table>` that readers do not see until the audit publishes it.

use chrono::{DateTime, Utc};
use floe_config::{LoadKind, Project, TableConfig};
use floe_core::message::{Envelope, StageMessage, Staged};
use floe_core::ports::{Lake, ReadAt, SnapshotInfo, WriteOptions};
use floe_core::{Error, Layer, Result, TableRef};

use crate::scd2;

/// The table config behind a bronze or silver table name.
pub fn table_config<'p>(project: &'p Project, table: &TableRef) -> Result<&'p TableConfig> {
    let source = table
        .namespace
        .strip_prefix("bronze_")
        .or_else(|| table.namespace.strip_prefix("silver_"))
        .ok_or_else(|| {
            Error::MalformedMessage(format!("{table} is not a bronze or silver table"))
        })?;
    project.table(&format!("{source}.{}", table.name))
}

/// Silver snapshot summary key: the bronze snapshot the silver version was computed from.
pub const BRONZE_SNAPSHOT: &str = "floe.bronze-snapshot-id";
/// Silver snapshot summary key: the latest extract time of the bronze it was computed from.
pub const LATEST_EXTRACT: &str = "floe.latest-extract-ts";
/// Silver snapshot summary key: how the version was computed (`apply` or `rebuild`).
pub const SCD2_STEP: &str = "floe.scd2-step";
/// Bronze snapshot summary key (written by landing): the batch's extract time.
const EXTRACT_TS: &str = "floe.extract-ts";

/// How a silver version is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Merge the one new extract into silver's current versions ([`scd2::apply_extract_sql`]).
    Apply,
    /// Recompute the whole history from every accepted batch of bronze ([`scd2::history_sql`]).
    Rebuild,
}

impl Step {
    /// The name recorded in the snapshot summary and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Apply => "apply",
            Step::Rebuild => "rebuild",
        }
    }
}

struct Plan {
    step: Step,
    /// The latest extract time in bronze at the snapshot read, when every batch records it.
    latest_extract: Option<DateTime<Utc>>,
}

/// What the standardise stage needs.
pub struct Standardise<'a> {
    /// The project.
    pub project: &'a Project,
    /// The lake.
    pub lake: &'a dyn Lake,
}

impl Standardise<'_> {
    /// Stages the silver history including the message's batch; returns the audit message and
    /// the rows of the staged version.
    #[tracing::instrument(skip_all, fields(batch_id = %message.batch_id))]
    pub async fn handle(&self, message: &Envelope) -> Result<(Envelope, u64)> {
        let StageMessage::Standardise {
            bronze, extract_ts, ..
        } = &message.body
        else {
            return Err(Error::MalformedMessage(format!(
                "the standardise queue got a {} message",
                stage_name(&message.body)
            )));
        };
        let table = table_config(self.project, bronze)?;
        let silver = table.table_ref(Layer::Silver);
        if !self.lake.table_exists(&silver).await? {
            match self
                .lake
                .create_table(&silver, scd2::silver_schema(table))
                .await
            {
                Ok(()) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let silver_snapshots = self.lake.snapshots(&silver).await?;
        let base = silver_snapshots.iter().find(|s| s.is_current);
        let mut options = WriteOptions::batch(message.batch_id.clone(), message.run_id.clone());
        options.stage_only = true;
        options.expected_snapshot_id = base.map(|s| s.snapshot_id);
        // On the embedded engine, bronze is read at the snapshot the plan looked at and silver at
        // its base, and the silver version records where it came from (the next extract's plan
        // reads it). On Athena, silver is rebuilt from the published tables.
        let (plan, at) = if self.lake.dialect() == crate::sql::Dialect::DataFusion {
            let bronze_snapshots = self.lake.snapshots(bronze).await?;
            let bronze_current = bronze_snapshots
                .iter()
                .find(|s| s.is_current)
                .map(|s| s.snapshot_id)
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "{bronze} has no snapshot, yet a batch landed in it"
                    ))
                })?;
            let plan = self
                .plan(
                    table,
                    &silver,
                    base,
                    &bronze_snapshots,
                    bronze_current,
                    message,
                )
                .await?;
            options
                .properties
                .insert(BRONZE_SNAPSHOT.into(), bronze_current.to_string());
            if let Some(latest) = plan.latest_extract {
                options
                    .properties
                    .insert(LATEST_EXTRACT.into(), latest.to_rfc3339());
            }
            let mut pins = std::collections::BTreeMap::from([(bronze.clone(), bronze_current)]);
            if let Some(b) = base {
                pins.insert(silver.clone(), b.snapshot_id);
            }
            (plan, ReadAt::Pinned(pins))
        } else {
            let plan = Plan {
                step: Step::Rebuild,
                latest_extract: None,
            };
            (plan, ReadAt::Current)
        };
        options
            .properties
            .insert(SCD2_STEP.into(), plan.step.as_str().into());
        let sql = match plan.step {
            Step::Apply => scd2::apply_extract_sql(
                self.lake.dialect(),
                table,
                &bronze.to_string(),
                &silver.to_string(),
                message.batch_id.as_str(),
                *extract_ts,
            ),
            Step::Rebuild => scd2::history_sql(
                self.lake.dialect(),
                table,
                &crate::rejections::bronze_source(self.lake, bronze, &silver).await?,
            ),
        };
        let outcome = self.lake.write_query(&silver, &sql, &at, &options).await?;
        tracing::info!(table = %silver, snapshot_id = outcome.snapshot_id, rows = outcome.rows_added, step = plan.step.as_str(), replay = outcome.already_committed, "silver staged");
        // The attempt count carries over, so a batch restaged again and again gives up.
        let rows = outcome.rows_added;
        Ok((
            Envelope {
                body: StageMessage::Audit {
                    table: silver,
                    staged: Staged::Snapshot {
                        snapshot_id: outcome.snapshot_id,
                    },
                    redo: Box::new(message.body.clone()),
                },
                ..message.clone()
            },
            rows,
        ))
    }
}

impl Standardise<'_> {
    /// Chooses between applying the message's extract to silver and rebuilding silver.
    ///
    /// Applying is exact when silver's base version was computed from bronze snapshot X, the
    /// only batch bronze gained after X (apart from batches rejected for this table) is the
    /// message's, its extract time is later than every extract before it, and no batch was
    /// rejected after the base was written. Anything else (a
    /// late or repeated extract, two extracts landing together, a cdc table, an engine that keeps
    /// no snapshot summary) rebuilds, which is always right. Embedded engine only.
    async fn plan(
        &self,
        table: &TableConfig,
        silver: &TableRef,
        base: Option<&SnapshotInfo>,
        bronze_snapshots: &[SnapshotInfo],
        bronze_current: i64,
        message: &Envelope,
    ) -> Result<Plan> {
        let by_id: std::collections::HashMap<i64, &SnapshotInfo> = bronze_snapshots
            .iter()
            .map(|s| (s.snapshot_id, s))
            .collect();
        // Bronze's lineage, newest first.
        let mut lineage = Vec::new();
        let mut next = Some(bronze_current);
        while let Some(id) = next {
            let Some(s) = by_id.get(&id) else { break };
            if lineage.len() > bronze_snapshots.len() {
                break;
            }
            lineage.push(*s);
            next = s.parent_id;
        }
        let extract_of = |s: &SnapshotInfo| {
            s.summary
                .get(EXTRACT_TS)
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let times: Option<Vec<DateTime<Utc>>> = lineage.iter().map(|s| extract_of(s)).collect();
        let latest_extract = times.and_then(|t| t.into_iter().max());
        let rebuild = Plan {
            step: Step::Rebuild,
            latest_extract,
        };
        if table.load != LoadKind::Full {
            return Ok(rebuild);
        }
        // Where silver's base was computed from: nothing yet, or a recorded bronze snapshot.
        let (from, before) = match base {
            None => (None, None),
            Some(b) => {
                let Some(from) = b
                    .summary
                    .get(BRONZE_SNAPSHOT)
                    .and_then(|v| v.parse::<i64>().ok())
                else {
                    return Ok(rebuild);
                };
                let Some(before) = b
                    .summary
                    .get(LATEST_EXTRACT)
                    .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                else {
                    return Ok(rebuild);
                };
                (Some(from), Some(before.with_timezone(&Utc)))
            }
        };
        let mut gained = Vec::new();
        let mut reached = from.is_none();
        for s in &lineage {
            if Some(s.snapshot_id) == from {
                reached = true;
                break;
            }
            gained.push(*s);
        }
        if !reached {
            return Ok(rebuild);
        }
        let ours = message.batch_id.as_str();
        let Some(this) = gained.iter().find(|s| s.batch_id.as_deref() == Some(ours)) else {
            return Ok(rebuild);
        };
        let Some(this_extract) = extract_of(this) else {
            return Ok(rebuild);
        };
        if before.is_some_and(|b| this_extract <= b) {
            return Ok(rebuild);
        }
        let others: Vec<&str> = gained
            .iter()
            .filter_map(|s| s.batch_id.as_deref())
            .filter(|b| *b != ours)
            .collect();
        if gained.iter().any(|s| s.batch_id.is_none()) {
            return Ok(rebuild);
        }
        // A batch rejected after silver's base was written may be in that base (a rejection
        // is meant to take it out of every later build): rebuild once without it.
        let rejected = crate::rejections::rejected(self.lake, silver).await?;
        if let Some(b) = base
            && rejected.iter().any(|(_, at)| *at >= b.committed_at)
        {
            return Ok(rebuild);
        }
        if others.iter().any(|o| !rejected.iter().any(|(r, _)| r == o)) {
            return Ok(rebuild);
        }
        Ok(Plan {
            step: Step::Apply,
            latest_extract,
        })
    }
}

/// The `stage` tag of a message, for errors.
pub fn stage_name(m: &StageMessage) -> &'static str {
    match m {
        StageMessage::Standardise { .. } => "standardise",
        StageMessage::Audit { .. } => "audit",
        StageMessage::Model { .. } => "model",
        StageMessage::AuditModels { .. } => "audit_models",
    }
}
