//! What landing one file will scan, before it lands (`floe land --dry-run`): per statement that
//! reads table data, the bytes its scan reads after partition pruning, from the tables' Iceberg
//! metadata ([`Lake::file_stats`]: file sizes by partition) and the file itself; and how many
//! other statements the stages run (metadata reads, the file ledger, the query log), which
//! Athena bills at its 10 MB minimum each.
//!
//! The model follows what the stages run on Athena (see the README's "Cost"): landing inserts
//! the batch into bronze, reading it once as Parquet; standardise plans as
//! [`crate::standardise`] does (apply, late or rebuild) and runs that statement; the audit runs
//! its tests on what the step could have changed. Sizes are whole files of the partitions read
//! (Athena reads only the columns a statement needs, so the estimate is on the high side).

use chrono::{DateTime, NaiveDate, Utc};
use floe_config::{LoadKind, TableConfig};
use floe_core::ports::{FileStat, Lake};
use floe_core::{Layer, Result};
use serde::Serialize;

use crate::standardise::{LATEST_EXTRACT, Step};

/// One statement the pipeline will run for the file, and what its scan reads.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// The stage that runs it.
    pub stage: &'static str,
    /// What it does and reads.
    pub what: String,
    /// Bytes its scans read (estimated).
    pub bytes: u64,
}

/// What landing a file will scan.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// How standardise will compute silver (`apply`, `late` or `rebuild`).
    pub step: &'static str,
    /// The statements that read table data.
    pub statements: Vec<Statement>,
    /// The other statements (metadata reads and small writes): a few kilobytes each, billed by
    /// Athena at 10 MB each.
    pub small_statements: usize,
    /// Bytes all of them read.
    pub bytes: u64,
    /// Bytes Athena bills for all of them (10 MB minimum per statement, rounded up to the MB).
    pub billed_bytes: u64,
}

/// Statements per extract that read only metadata or write a few rows (snapshots, the ledger,
/// the query log's record, publishing): landing 6, standardise 4, audit 6, as the stages run
/// them on Athena today (the stand-in test compares the estimate with the query log).
const SMALL_STATEMENTS: usize = 16;

/// The file's partition day, when the table is partitioned by a day (`<column>_day`); `None`
/// for the NULL partition; `Some(None)` for no partition at all.
fn day_of(f: &FileStat) -> Option<Option<NaiveDate>> {
    let (_, v) = f.partition.iter().find(|(k, _)| k.ends_with("_day"))?;
    Some(v.as_deref().and_then(|d| d.parse().ok()))
}

fn sum<'a>(files: impl Iterator<Item = &'a FileStat>) -> u64 {
    files.map(|f| f.bytes).sum()
}

/// The file to land, as landing will write it.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Its rows.
    pub rows: u64,
    /// Its bytes as the Parquet landing hands to Athena's insert (the insert reads them all).
    pub landed_bytes: u64,
}

/// The estimate for landing `batch` into `table` with extract time `extract_ts`.
pub async fn land(
    lake: &dyn Lake,
    table: &TableConfig,
    extract_ts: DateTime<Utc>,
    batch: Batch,
) -> Result<Estimate> {
    let bronze = table.table_ref(Layer::Bronze);
    let silver = table.table_ref(Layer::Silver);
    let bronze_exists = lake.table_exists(&bronze).await?;
    let silver_exists = lake.table_exists(&silver).await?;
    let files = |t, exists: bool| async move {
        Ok::<_, floe_core::Error>(if exists {
            lake.file_stats(t).await?
        } else {
            Vec::new()
        })
    };
    let bronze_files = files(&bronze, bronze_exists).await?;
    let silver_files = files(&silver, silver_exists).await?;
    // The batch as bronze will hold it (Athena rewrites it): bronze's bytes per row so far, or
    // landing's own Parquet for a first batch.
    let data = || bronze_files.iter().filter(|f| !f.deletes);
    let (b_bytes, b_rows) = (sum(data()), data().map(|f| f.rows).sum::<u64>());
    let extract = if b_rows > 0 {
        (b_bytes as f64 / b_rows as f64 * batch.rows as f64) as u64
    } else {
        batch.landed_bytes
    };
    let day = extract_ts.date_naive();
    // Silver's current versions (the NULL partition) and those closed on or after the extract's
    // day; unpartitioned: everything.
    let current = sum(silver_files
        .iter()
        .filter(|f| matches!(day_of(f), None | Some(None))));
    let since = sum(silver_files.iter().filter(|f| match day_of(f) {
        None | Some(None) => true,
        Some(Some(d)) => d >= day,
    }));
    let all_silver = sum(silver_files.iter());
    let step = plan(lake, table, extract_ts, bronze_exists, silver_exists).await?;
    let mut statements = vec![Statement {
        stage: "landing",
        what: format!("insert the batch into {bronze} (reads landing's Parquet of it once)"),
        bytes: batch.landed_bytes,
    }];
    match step {
        Step::Apply => statements.push(Statement {
            stage: "standardise",
            what: format!(
                "merge the extract into {silver}: its current versions (read twice) and the batch"
            ),
            bytes: 2 * current + extract,
        }),
        Step::Late => {
            // The versions valid at T, at N, the merge's target (and, under `new_record`, those
            // starting after N): each a scan of the partitions from T's day on; under `ignore`,
            // bronze's days after T too (its key columns: counted whole, so on the high side).
            let reads = if table.deletes == floe_config::DeletesPolicy::NewRecord {
                4
            } else {
                3
            };
            let bronze_after = if table.deletes == floe_config::DeletesPolicy::Ignore {
                sum(bronze_files.iter().filter(|f| match day_of(f) {
                    None | Some(None) => true,
                    Some(Some(d)) => d >= day,
                }))
            } else {
                0
            };
            statements.push(Statement {
                stage: "standardise",
                what: format!(
                    "splice the late extract into {silver}: the versions current or closed since its day (read {reads} times){} and the batch",
                    if bronze_after > 0 {
                        format!(", {bronze}'s extracts since its day (the keys)")
                    } else {
                        String::new()
                    }
                ),
                bytes: reads * since + extract + bronze_after,
            })
        }
        Step::Rebuild => statements.push(Statement {
            stage: "standardise",
            what: format!("recompute {silver} from all of {bronze} and replace it"),
            bytes: b_bytes + extract + all_silver,
        }),
    }
    let tested = if step == Step::Rebuild {
        all_silver
    } else {
        since
    };
    statements.push(Statement {
        stage: "audit",
        what: format!(
            "test {silver}'s {} (three scans) and reconcile the batch",
            if step == Step::Rebuild {
                "whole history"
            } else {
                "versions current or closed since the extract"
            }
        ),
        bytes: 3 * tested + extract,
    });
    let bytes = statements.iter().map(|s| s.bytes).sum();
    let billed_bytes = statements
        .iter()
        .map(|s| floe_core::cost::athena_billed_bytes("select", s.bytes))
        .sum::<u64>()
        + SMALL_STATEMENTS as u64 * floe_core::cost::athena_billed_bytes("select", 0);
    Ok(Estimate {
        step: step.as_str(),
        statements,
        small_statements: SMALL_STATEMENTS,
        bytes,
        billed_bytes,
    })
}

/// How standardise would compute silver for an extract at `extract_ts` landed now: the plan of
/// [`crate::standardise`] seen from silver's published version (the batch is not in bronze).
async fn plan(
    lake: &dyn Lake,
    table: &TableConfig,
    extract_ts: DateTime<Utc>,
    bronze_exists: bool,
    silver_exists: bool,
) -> Result<Step> {
    if table.load != LoadKind::Full {
        return Ok(Step::Rebuild);
    }
    if !silver_exists {
        return Ok(Step::Apply);
    }
    let silver = &table.table_ref(Layer::Silver);
    // On an extract time bronze already holds: a replacement, which rebuilds.
    let bronze = table.table_ref(Layer::Bronze);
    if bronze_exists {
        let landed = lake.snapshots(&bronze).await?;
        let same = landed.iter().any(|s| {
            s.summary
                .get(crate::standardise::EXTRACT_TS)
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .is_some_and(|t| t == extract_ts)
        });
        if same {
            return Ok(Step::Rebuild);
        }
    }
    let snapshots = lake.snapshots(silver).await?;
    let latest = snapshots
        .iter()
        .find(|s| s.is_current)
        .and_then(|s| s.summary.get(LATEST_EXTRACT))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok());
    Ok(match latest {
        None => Step::Apply,
        Some(l) if extract_ts > l => Step::Apply,
        Some(l) if extract_ts < l && crate::scd2::splices_late_extracts(table) => Step::Late,
        Some(_) => Step::Rebuild,
    })
}
