//! The standardise stage: compute a table's new silver history (standardised names, types,
//! trims, empty strings as NULL, dedupe, SCD2) and stage it as a snapshot of
//! `silver_<source>.<table>` that readers do not see until the audit publishes it. An in-order
//! extract is applied to the current versions; a late one is spliced into the versions of the
//! keys it changes; anything else recomputes the history from bronze (see `Standardise::plan`).

use chrono::{DateTime, Utc};
use floe_config::{LoadKind, Project, TableConfig};
use floe_core::message::{Envelope, StageMessage, Staged};
use floe_core::ports::LakeWrites;
use floe_core::ports::{Lake, ReadAt, SnapshotInfo, WriteOptions};
use floe_core::{Error, Layer, Result, TableRef};

use crate::scd2;

/// The table config behind a bronze or silver table name.
pub fn table_config<'p>(project: &'p Project, table: &TableRef) -> Result<&'p TableConfig> {
    let source_table = table.source_table().ok_or_else(|| {
        Error::MalformedMessage(format!("{table} is not a bronze or silver table"))
    })?;
    project.table(&source_table)
}

/// Silver snapshot summary key: the bronze snapshot the silver version was computed from.
pub const BRONZE_SNAPSHOT: &str = "floe.bronze-snapshot-id";
/// Silver snapshot summary key: the latest extract time of the bronze it was computed from.
pub const LATEST_EXTRACT: &str = "floe.latest-extract-ts";
/// Silver snapshot summary key: how the version was computed (`apply`, `late` or `rebuild`).
pub const SCD2_STEP: &str = "floe.scd2-step";
/// Silver snapshot summary key: a fingerprint of the table config the history follows.
pub const HISTORY_RULES: &str = "floe.history-rules";
/// Silver snapshot summary key: how many batches were rejected for the table when it was built.
pub const REJECTED_BATCHES: &str = "floe.rejected-batches";
/// Snapshot summary key of an applied extract's tally: `<rows>:<sum>`, the number of versions the
/// extract defines and the sum of their key-and-fingerprint tallies (see [`tally`]). The audit
/// reconciles the history with the extract by summing the same over the versions valid at the
/// extract time, instead of reading and typing the extract again.
pub const EXTRACT_TALLY: &str = "floe.extract-tally";

/// The tally of rows holding a `column` of hex fingerprints ([`scd2::TALLY`]): how many, and the
/// wrapping sum of each one's first 64 bits. Order does not matter, so the audit sums the same
/// over the history however its rows are stored; a missing, extra or changed version changes it.
pub fn tally(batches: &[arrow_array::RecordBatch], column: &str) -> Result<(u64, u64)> {
    let mut rows = 0u64;
    let mut sum = 0u64;
    for b in batches {
        let Some(values) = b.column_by_name(column) else {
            return Err(Error::Internal(format!(
                "the tally's rows have no column {column}"
            )));
        };
        let values = arrow_cast::cast(values, &arrow_schema::DataType::Utf8)
            .map_err(|e| Error::Internal(format!("the tally column as text: {e}")))?;
        let values = values
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("cast to Utf8");
        for v in values.iter() {
            let v = v.unwrap_or_default();
            let part = u64::from_str_radix(v.get(..16).unwrap_or(v), 16).map_err(|e| {
                Error::Internal(format!(
                    "the tally value '{v}' is not a hex fingerprint: {e}"
                ))
            })?;
            rows += 1;
            sum = sum.wrapping_add(part);
        }
    }
    Ok((rows, sum))
}

/// [`tally`] as the snapshot summary records it.
pub fn tally_text((rows, sum): (u64, u64)) -> String {
    format!("{rows}:{sum:016x}")
}
/// Bumped when floe changes how silver is computed from the same config (typing, hashing, SCD2
/// rules), so that every table rebuilds once.
const HISTORY_RULES_VERSION: u32 = 1;
/// Bronze snapshot summary key (written by landing): the batch's extract time.
pub(crate) const EXTRACT_TS: &str = "floe.extract-ts";

/// How a silver version is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Merge the one new extract into silver's current versions ([`scd2::apply_extract_sql`]).
    Apply,
    /// Splice one late extract into the versions of the keys it changes
    /// ([`scd2::late_extract_sql`]).
    Late,
    /// Recompute the whole history from every accepted batch of bronze ([`scd2::history_sql`]).
    Rebuild,
}

impl Step {
    /// The name recorded in the snapshot summary and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Apply => "apply",
            Step::Late => "late",
            Step::Rebuild => "rebuild",
        }
    }
}

struct Plan {
    step: Step,
    /// The latest extract time in bronze at the snapshot read, when every batch records it.
    latest_extract: Option<DateTime<Utc>>,
    /// For a late extract: the extract after it (time and batch).
    next: Option<(DateTime<Utc>, String)>,
}

/// A fingerprint of everything in a table's config that the history depends on: a change to any
/// of it (say `deletes: ignore` to `invalidate`, or a column's type) makes the next build a
/// rebuild, so the whole history follows the new rules, not just the extracts after the change.
/// The engine's row fingerprint is part of it: the embedded engine's changed from MD5 over text
/// to XXH3 over values (`floe_lake`'s engine module), so a local table built before rebuilds once,
/// while Athena's, unchanged, keeps its rules.
pub fn history_rules(table: &TableConfig, dialect: crate::sql::Dialect) -> String {
    use sha2::{Digest, Sha256};
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{}:{:?}:{}", c.name, c.ty, c.nullable))
        .collect();
    let text = format!(
        "v{HISTORY_RULES_VERSION}|load={:?}|deletes={:?}|dedupe_by={:?}|primary_key={:?}|cdc={:?}|columns={:?}{}{}{}",
        table.load,
        table.deletes,
        table.dedupe_by,
        table.primary_key,
        table
            .cdc
            .as_ref()
            .map(|c| (&c.operation_column, &c.timestamp_column)),
        columns,
        // Only named when set, so the tables that do not use them keep their fingerprint.
        if table.ignore_null_updates {
            "|ignore_null_updates"
        } else {
            ""
        },
        table
            .cdc
            .as_ref()
            .and_then(|c| c.truncate.as_ref())
            .map(|t| format!("|truncate={t}"))
            .unwrap_or_default(),
        match &table.history {
            floe_config::HistoryColumns::All => String::new(),
            floe_config::HistoryColumns::Only(c) => format!("|track_history={c:?}"),
            floe_config::HistoryColumns::Except(c) => format!("|ignore_changes={c:?}"),
        },
    ) + match dialect {
        crate::sql::Dialect::DataFusion => "|fingerprint=xxh3-128",
        crate::sql::Dialect::Trino => "",
    };
    format!("{:x}", Sha256::digest(text.as_bytes()))[..16].to_owned()
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
        let config = table_config(self.project, bronze)?;
        let silver = config.table_ref(Layer::Silver);
        if !self.lake.table_exists(&silver).await? {
            match self
                .lake
                .create_partitioned_table(
                    &silver,
                    scd2::silver_schema(config),
                    &scd2::partitioning(),
                )
                .await
            {
                Ok(()) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Silver follows the config (or the change is refused before anything is written); the
        // history is built over the declared columns and the retired ones.
        let effective = crate::drift::prepare_silver(self.lake, config).await?;
        let table = &effective;
        let silver_snapshots = self.lake.snapshots(&silver).await?;
        let base = silver_snapshots.iter().find(|s| s.is_current);
        let mut options = WriteOptions::batch(message.batch_id.clone(), message.run_id.clone());
        options.stage_only = true;
        options.expected_snapshot_id = base.map(|s| s.snapshot_id);
        // Bronze is read at the snapshot the plan looked at and silver at its base, and the
        // silver version records where it came from (the next extract's plan reads it). On both
        // engines: on Athena the records live beside the snapshots (see floe_aws::lake), and an
        // applied extract reads silver's published version and the one batch (its files, by
        // their `_batch_id` statistics) instead of all of bronze.
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
        // Read once: the plan decides with it and a rebuild leaves out exactly these.
        let mut rejected: Vec<String> = crate::rejections::rejected(self.lake, &silver)
            .await?
            .into_iter()
            .map(|(batch, _)| batch)
            .collect();
        rejected.sort();
        rejected.dedup();
        let rules = history_rules(table, self.lake.dialect());
        let plan = self.plan(
            table,
            base,
            &bronze_snapshots,
            bronze_current,
            &rejected,
            &rules,
            message,
        );
        for (key, value) in [
            (BRONZE_SNAPSHOT, Some(bronze_current.to_string())),
            (LATEST_EXTRACT, plan.latest_extract.map(|t| t.to_rfc3339())),
            (REJECTED_BATCHES, Some(rejected.len().to_string())),
        ] {
            if let Some(value) = value {
                options.properties.insert(key.into(), value);
            }
        }
        let mut pins = std::collections::BTreeMap::from([(bronze.clone(), bronze_current)]);
        if let Some(b) = base {
            pins.insert(silver.clone(), b.snapshot_id);
        }
        let at = ReadAt::Pinned(pins);
        // Athena applies an extract as one MERGE of the versions that change (reading the
        // current versions and the extract's partition); the embedded engine, which has no
        // DML, computes silver's new contents and replaces it.
        let merge = matches!(plan.step, Step::Apply | Step::Late) && self.lake.capabilities().dml;
        // An engine that holds rows in memory computes the extract's versions once (typing and
        // fingerprinting the extract is most of the step) and applies them from there; their
        // tally goes with the snapshot for the audit.
        // A redelivered message whose version is staged already is answered by the write
        // without running anything: its extract is not typed again for nothing.
        let replay = silver_snapshots
            .iter()
            .any(|s| s.batch_id.as_deref() == Some(message.batch_id.as_str()));
        let held = plan.step == Step::Apply
            && !merge
            && !replay
            && self.lake.capabilities().memory_relations;
        let mut relations = Vec::new();
        let target = format!(
            "{}.{}{}",
            silver.namespace,
            silver.name,
            floe_models::materialize::ATHENA_DATA_SUFFIX
        );
        // Bronze with the columns the history reads (a retired one as NULL); an applied extract
        // filters it to its batch.
        let bronze_name = bronze.to_string();
        let whole_bronze =
            || crate::drift::bronze_with_columns(self.lake, table, bronze, &bronze_name, &at);
        let sql = match plan.step {
            Step::Apply if merge => scd2::apply_extract_merge(
                table,
                &whole_bronze().await?,
                &silver.to_string(),
                &target,
                message.batch_id.as_str(),
                *extract_ts,
            ),
            Step::Late => {
                let (next_ts, next_batch) = plan
                    .next
                    .as_ref()
                    .expect("a late step names the extract after it");
                let bronze = whole_bronze().await?;
                let silver = silver.to_string();
                let late = scd2::LateExtract {
                    table,
                    bronze: &bronze,
                    silver: &silver,
                    batch_id: message.batch_id.as_str(),
                    extract_ts: *extract_ts,
                    next: scd2::NextExtract {
                        extract_ts: *next_ts,
                        batch_id: next_batch,
                    },
                    rejected: &rejected,
                };
                if merge {
                    scd2::late_extract_merge(&late, &target)
                } else {
                    scd2::late_extract_sql(self.lake.dialect(), &late)
                }
            }
            Step::Apply if held => {
                let versions = scd2::extract_versions_sql(
                    self.lake.dialect(),
                    table,
                    &whole_bronze().await?,
                    message.batch_id.as_str(),
                    *extract_ts,
                );
                let mut rows = self.lake.query(&versions, &at).await?;
                if rows.is_empty() {
                    // No versions (every row dropped by an expectation): the relation still
                    // needs its columns.
                    let schema = self.lake.query_schema(&versions, &at).await?;
                    rows.push(arrow_array::RecordBatch::new_empty(schema));
                }
                options
                    .properties
                    .insert(EXTRACT_TALLY.into(), tally_text(tally(&rows, scd2::TALLY)?));
                relations.push((scd2::EXTRACT_VERSIONS.to_owned(), rows));
                // An engine with row deltas writes the versions that change only (the stored
                // ones they replace are marked in a delete file); the others rewrite silver.
                if self.lake.capabilities().row_deltas {
                    scd2::apply_extract_delta(
                        self.lake.dialect(),
                        table,
                        &silver.to_string(),
                        message.batch_id.as_str(),
                        *extract_ts,
                    )
                } else {
                    scd2::apply_extract_over(
                        self.lake.dialect(),
                        table,
                        &silver.to_string(),
                        message.batch_id.as_str(),
                        *extract_ts,
                    )
                }
            }
            Step::Apply => scd2::apply_extract_sql(
                self.lake.dialect(),
                table,
                &whole_bronze().await?,
                &silver.to_string(),
                message.batch_id.as_str(),
                *extract_ts,
            ),
            Step::Rebuild => scd2::history_sql(
                self.lake.dialect(),
                table,
                &crate::drift::bronze_with_columns(
                    self.lake,
                    table,
                    bronze,
                    &crate::rejections::without(bronze, &rejected),
                    &at,
                )
                .await?,
            ),
        };
        options
            .properties
            .insert(SCD2_STEP.into(), plan.step.as_str().into());
        // The rules it was built under: the audit restages a version built under other rules
        // (the config changed in between), so it never judges one by the other.
        options.properties.insert(
            HISTORY_RULES.into(),
            history_rules(table, self.lake.dialect()),
        );
        let outcome = if merge {
            self.lake.execute(&silver, &sql, &at, &options).await?
        } else if held {
            let input = floe_core::ports::Input::QueryOver {
                sql: &sql,
                at: &at,
                relations,
            };
            let on = scd2::delta_match_columns(table);
            let write = if self.lake.capabilities().row_deltas {
                floe_core::ports::Write::Delta {
                    rows: input,
                    on: &on,
                    replaces: scd2::REPLACES,
                }
            } else {
                floe_core::ports::Write::Overwrite(input)
            };
            self.lake.write(&silver, write, &options).await?
        } else {
            self.lake.write_query(&silver, &sql, &at, &options).await?
        };
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
    /// Chooses between applying the message's extract to silver, splicing it in as a late
    /// extract, and rebuilding silver.
    ///
    /// Applying is exact when silver's base version was computed under the same config rules
    /// and the same set of rejected batches from bronze snapshot X, the only batch bronze gained
    /// after X (apart from rejected batches) is the message's, and its extract time is later
    /// than every extract before it. Splicing is exact under the same conditions when the
    /// extract time falls between two extracts (not on one: that is a replacement), the one
    /// after it is a single batch (under `deletes: ignore`, every one after it), and every
    /// column is tracked ([`scd2::splices_late_extracts`]). Anything else (a repeated or
    /// replacing extract, two extracts landing together, a new rejection, a config change, a
    /// cdc table, untracked columns with a late extract, a base that records no origin)
    /// rebuilds, which is always right.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        table: &TableConfig,
        base: Option<&SnapshotInfo>,
        bronze_snapshots: &[SnapshotInfo],
        bronze_current: i64,
        rejected: &[String],
        rules: &str,
        message: &Envelope,
    ) -> Plan {
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
            // Maintenance rewrote files and changed no row: not an extract.
            if !empty_creation(s) && !s.summary.contains_key(floe_core::ports::MAINTENANCE) {
                lineage.push(*s);
            }
            next = s.parent_id;
        }
        // Extract times as silver stores them: microseconds.
        let micros = |v: &str| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .and_then(|t| DateTime::from_timestamp_micros(t.timestamp_micros()))
        };
        let extract_of = |s: &SnapshotInfo| s.summary.get(EXTRACT_TS).and_then(|v| micros(v));
        let times: Option<Vec<DateTime<Utc>>> = lineage.iter().map(|s| extract_of(s)).collect();
        let latest_extract = times.and_then(|t| t.into_iter().max());
        let rebuild = Plan {
            step: Step::Rebuild,
            latest_extract,
            next: None,
        };
        if table.load != LoadKind::Full {
            return rebuild;
        }
        // Where silver's base was computed from: nothing yet, or what its summary records.
        let (from, before) = match base {
            None => (None, None),
            Some(b) if empty_creation(b) => (None, None),
            Some(b) => {
                let recorded = |key: &str| b.summary.get(key).map(String::as_str);
                let from = recorded(BRONZE_SNAPSHOT).and_then(|v| v.parse::<i64>().ok());
                let before = recorded(LATEST_EXTRACT).and_then(micros);
                let same_rules = recorded(HISTORY_RULES) == Some(rules);
                let same_rejections =
                    recorded(REJECTED_BATCHES) == Some(rejected.len().to_string().as_str());
                match (from, before) {
                    (Some(from), Some(before)) if same_rules && same_rejections => {
                        (Some(from), Some(before))
                    }
                    _ => return rebuild,
                }
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
            return rebuild;
        }
        let ours = message.batch_id.as_str();
        let Some(this) = gained.iter().find(|s| s.batch_id.as_deref() == Some(ours)) else {
            return rebuild;
        };
        let Some(this_extract) = extract_of(this) else {
            return rebuild;
        };
        let only_ours = gained.iter().all(|s| match s.batch_id.as_deref() {
            Some(b) => b == ours || rejected.iter().any(|r| r == b),
            None => false,
        });
        if !only_ours {
            return rebuild;
        }
        if before.is_none_or(|b| this_extract > b) {
            return Plan {
                step: Step::Apply,
                latest_extract,
                next: None,
            };
        }
        // Late: the other accepted extracts, as bronze holds them.
        if !scd2::splices_late_extracts(table) {
            return rebuild;
        }
        let others: Option<Vec<(DateTime<Utc>, &str)>> = lineage
            .iter()
            .filter_map(|s| match s.batch_id.as_deref() {
                Some(b) if b == ours || rejected.iter().any(|r| r == b) => None,
                Some(b) => Some(extract_of(s).map(|t| (t, b))),
                None => Some(None),
            })
            .collect();
        let Some(others) = others else {
            return rebuild;
        };
        // On an existing extract time it replaces that extract: rebuilt.
        if others.iter().any(|(t, _)| *t == this_extract) {
            return rebuild;
        }
        let Some(next) = others
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t > this_extract)
            .min()
        else {
            return rebuild;
        };
        // Under `deletes: ignore` the splice reads each key's next observation from bronze: every
        // extract time after it must be one batch.
        if table.deletes == floe_config::DeletesPolicy::Ignore {
            let mut after: Vec<DateTime<Utc>> = others
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| *t > this_extract)
                .collect();
            let n = after.len();
            after.sort();
            after.dedup();
            if after.len() != n {
                return rebuild;
            }
        }
        let mut at_next = others.iter().filter(|(t, _)| *t == next);
        match (at_next.next(), at_next.next()) {
            (Some((_, batch)), None) => Plan {
                step: Step::Late,
                latest_extract,
                next: Some((next, (*batch).to_owned())),
            },
            // Several files of that extract time: which one is the extract is the rebuild's call.
            _ => rebuild,
        }
    }
}

/// The empty first snapshot some engines commit when a table is created (Trino's Iceberg
/// `CREATE TABLE`, so Athena's): no batch, no rows, no parent. It holds no extract and is no
/// base silver was computed from.
fn empty_creation(s: &SnapshotInfo) -> bool {
    s.parent_id.is_none()
        && s.batch_id.is_none()
        && s.added_rows.unwrap_or(0) == 0
        && s.total_rows.unwrap_or(0) == 0
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
