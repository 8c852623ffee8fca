//! The verbs and their arguments, as clap reads them; `floe --help` is generated from here.

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::output::Format;

/// floe runs ELT pipelines for an Iceberg data lake: bronze keeps every extract, silver the
/// standardised change history (SCD2), gold the tested models.
///
/// Start with `floe demo` (a generated project run end to end), or `floe init my-project` and
/// `floe land FILE --table SOURCE.TABLE --wait -p my-project`, then
/// `floe query -p my-project "select * from silver_<source>.<table>"`.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, long_about)]
pub(crate) struct Cli {
    /// The project folder (holding floe.yaml).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "FLOE_PROJECT",
        default_value = "."
    )]
    pub(crate) project: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new project with sample tables and data, and run the samples through the pipeline.
    ///
    /// Writes floe.yaml, tables/nomis.yaml and samples/, then lands each sample extract, so
    /// bronze_nomis.<table> and silver_nomis.<table> can be queried at once.
    Init {
        /// The folder to create (must not hold a floe.yaml already).
        dir: PathBuf,
        /// Only write the files; load nothing into the lake.
        #[arg(long)]
        no_sample: bool,
    },
    /// Generate a demo project (two sources, six daily extracts, one bad file) and run the whole
    /// local pipeline on it: landing -> bronze -> SCD2 silver -> audit -> publish.
    Demo {
        /// Where to create the demo project.
        #[arg(long, default_value = "floe-demo")]
        dir: PathBuf,
        /// People in the generated source (other tables scale with it).
        #[arg(long, default_value_t = 500)]
        people: u64,
        /// Daily extracts to generate.
        #[arg(long, default_value_t = 6)]
        days: i64,
    },
    /// Check floe.yaml, tables/*.yaml and the models (templates, macros, tests); every problem is
    /// reported with file, line and field.
    Validate,
    /// Land a file for a table: copy it into the landing zone and announce it to the pipeline.
    ///
    /// The file goes to landing/<source>/<table>/<extract_ts>/<file>. With --wait the pipeline
    /// runs until the file is published (or quarantined) and the outcome is printed; without it the
    /// file waits for `floe up`. With `engine: athena` the file is uploaded to the landing bucket,
    /// whose event starts the deployed services; --wait then runs the stage services in this
    /// process on the stack's queues (as `floe up --once` does) until it is through.
    Land {
        /// The data file (CSV, Parquet or JSON lines, as the table's `format` says).
        file: PathBuf,
        /// The table, as SOURCE.TABLE (e.g. nomis.people).
        #[arg(long)]
        table: String,
        /// The instant the extract describes (default: now).
        #[arg(long, value_parser = parse_instant)]
        extract_ts: Option<DateTime<Utc>>,
        /// Run the pipeline until this file (and anything before it) is through.
        #[arg(long, conflicts_with = "dry_run")]
        wait: bool,
        /// Land nothing: print, per statement, the bytes the stages will scan for this file
        /// (after partition pruning, from the tables' Iceberg metadata and the file's rows),
        /// how standardise will compute silver (apply, late or rebuild), and what Athena will
        /// bill for it at `athena.price_per_tb_usd` (10 MB minimum per statement).
        #[arg(long)]
        dry_run: bool,
        /// Output format of --dry-run.
        #[arg(long, value_enum, default_value_t = Format::Table, requires = "dry_run")]
        format: Format,
    },
    /// Run the pipeline: watch landing/ for new files and process every queue until stopped.
    ///
    /// With `engine: athena` the four stage services run in this process against the stack's SQS
    /// queues (athena.stack in floe.yaml: <stack>-landing, -standardise, -audit, -modelling), as
    /// Lambda's event source mappings drive the deployed functions: for the local Athena stand-in
    /// (scripts/aws-local.sh up DIR). --once returns when every queue is empty and fails if
    /// anything was dead-lettered.
    Up {
        /// Process what is there (including work a crashed run left in flight) and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between scans of the landing folder (or polls of the queues, on Athena).
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Move dead-lettered messages back to their stage queue.
    ///
    /// Locally QUEUE is a stage (landing, standardise, audit, modelling) or its -dlq. With `engine: athena`
    /// it is an SQS queue name or URL: the queue whose RedrivePolicy names the DLQ, or the DLQ
    /// itself when it is called <queue>-dlq.
    Redrive {
        /// The queue to redrive.
        #[arg(long)]
        queue: String,
    },
    /// Put events from a file on a stage's queue (or an event bus) for a manual replay.
    ///
    /// FILE holds one JSON value, a JSON array, or one JSON value per line; each is one message.
    /// Locally --to is a stage (landing takes S3 "Object Created" events, standardise and audit
    /// take floe's stage messages; each is checked before anything is sent). With
    /// `engine: athena` --to is an SQS queue name or URL, or bus:NAME for an EventBridge bus
    /// (events need source, detail-type and detail; EventBridge refuses sources starting `aws.`,
    /// so replay S3 events onto the landing queue instead).
    Inject {
        /// The file of events.
        #[arg(long)]
        event: PathBuf,
        /// Where to put them.
        #[arg(long)]
        to: String,
    },
    /// Run a read-only SQL query over the lake (tables are namespace.table, e.g. silver_nomis.people).
    ///
    /// Time travel: --as-of reads every table as it was published at that instant;
    /// --snapshot reads one table at one snapshot (ids from `floe history`).
    Query {
        /// The SQL (a SELECT, WITH or VALUES query).
        sql: String,
        /// Read the tables as they were at this instant (RFC 3339, "YYYY-MM-DD HH:MM:SS" UTC, or a date).
        #[arg(long, conflicts_with = "snapshot", value_parser = parse_instant)]
        as_of: Option<DateTime<Utc>>,
        /// Read the (single) table at this snapshot id.
        #[arg(long)]
        snapshot: Option<i64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Build the selected gold models, test them, and publish those that pass.
    ///
    /// Each model is written staged (readers keep the published version), in DAG order with up
    /// to `concurrency` models at once; then its data tests run on the staged version and it is
    /// published only if they pass. A failure keeps the published version, records the failing
    /// rows in floe_audit.test_failures, emits floe.failed and calls the webhook.
    /// Selectors as dbt: `model`, `+model` (and its ancestors), `model+` (and its descendants),
    /// `tag:x`, `source:s.t`, `state:modified` (with --state); space-separated terms are a union.
    Run {
        /// Which models (default: all).
        #[arg(long, short = 's')]
        select: Option<String>,
        /// Write to gold_<TARGET> instead of gold (a dev target); `prod` is gold.
        #[arg(long)]
        target: Option<String>,
        /// With --target: read models outside the selection from production (gold).
        #[arg(long, requires = "target")]
        defer: bool,
        /// A folder holding a production manifest.json (from .floe/ of a prod run), for state:modified.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Run the data tests of the published models, and the unit tests of models.
    Test {
        /// Which models (default: all).
        #[arg(long, short = 's')]
        select: Option<String>,
    },
    /// Run again the models of the last run that were not published, and what depends on them.
    Retry,
    /// Show the models in build order: what each reads, its materialization, tests, estimated
    /// bytes read and the SQL it would run. Runs nothing.
    Plan {
        /// Which models (default: all).
        #[arg(long, short = 's')]
        select: Option<String>,
        /// A folder holding a production manifest.json, for state:modified.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply a change of a table's config that the lake does not follow by itself, and rewrite
    /// the table's history under it.
    ///
    /// A change that would lose or reinterpret stored values (int to decimal, a narrower type,
    /// string to number) is refused when files land; migrate applies it. Every bronze value is
    /// checked under the new types first (a value that does not convert is named with its file
    /// and row, and nothing changes); then the silver column is replaced, the whole history is
    /// recomputed from bronze as one staged version, tested, and published, and the gold models
    /// downstream are rebuilt. Readers see the old history until the new one passes its tests.
    /// Also applies pending additions and widenings (and everything under schema_change: fail).
    Migrate {
        /// The table, as SOURCE.TABLE (e.g. nomis.people).
        table: String,
        /// Print what would change and check bronze, without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Where every landed file is: the file ledger (floe_audit.files) with the landing zone.
    ///
    /// One line per file: its table, extract time, size, status and why. Statuses: pending (in
    /// the landing zone, not processed yet: `floe up --once` takes it), landed (in bronze, its
    /// silver history on the way), published, quarantined (with its report), rejected (its
    /// history failed the audit) and dead_lettered (a stage failed on it for good: fix the cause
    /// and `floe redrive`).
    Files {
        /// Only files whose landing key contains this text (a file name, a table's folder...).
        key: Option<String>,
        /// Only files with this status.
        #[arg(long, value_parser = ["pending", "landed", "quarantined", "published", "rejected", "dead_lettered"])]
        status: Option<String>,
        /// Only files of this table (SOURCE.TABLE).
        #[arg(long)]
        table: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compact small files, expire old snapshots and remove orphan files, keeping every answer.
    ///
    /// For each table: its files are rewritten into fewer, larger ones when they are small
    /// (Athena: OPTIMIZE ... REWRITE DATA USING BIN_PACK, which also applies delete files left by
    /// MERGE and DELETE), snapshots time travel no longer needs are expired (every snapshot
    /// committed within the retention, and every one that was the published version at some
    /// instant within it, is kept; Athena: VACUUM), and files nothing references are removed.
    /// Readers see the same rows before, during and after. A table with a staged version not
    /// yet published is skipped. The retention is `maintenance.keep_snapshots_days` in
    /// floe.yaml (7), or --keep-for for one run.
    Maintain {
        /// The table, as namespace.table (e.g. silver_nomis.people).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        table: Option<String>,
        /// Every table of the lake.
        #[arg(long)]
        all: bool,
        /// Say what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep time travel this far back instead of the configured days: 90s, 30m, 12h, 7d.
        #[arg(long, value_parser = parse_age)]
        keep_for: Option<chrono::Duration>,
    },
    /// Show what the pipeline's statements scanned, and what that costs on Athena.
    ///
    /// Every statement a stage runs is logged to floe_audit.query_log (run, batch, stage, table,
    /// statement kind, bytes scanned, engine time). This sums it by stage, table or gold model:
    /// bytes scanned, the bytes Athena bills (at least 10 MB per statement, rounded up to the
    /// megabyte; DDL is free) and dollars at the `athena.price_per_tb_usd` of floe.yaml (5.0 by
    /// default). On the embedded engine the bytes are what its table scans decoded (no bill).
    Cost {
        /// Only statements started at or after this instant (RFC 3339, or a date).
        #[arg(long, value_parser = parse_instant)]
        since: Option<DateTime<Utc>>,
        /// What to sum by.
        #[arg(long, value_parser = ["stage", "table", "model"], default_value = "stage")]
        by: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show a table's snapshots: when, what operation, which batch and run, rows added and total.
    History {
        /// The table, as namespace.table (e.g. bronze_nomis.people).
        table: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Try every Athena statement shape floe uses, once, on the project's account (engine: athena).
    ///
    /// Runs in a scratch namespace (silver_floe_doctor_<id>) with the same code the services use:
    /// Iceberg DDL, an insert through a Glue external table, $snapshots, a staged DELETE + INSERT
    /// behind a view pinned FOR VERSION AS OF, time travel, MERGE. Prints pass/fail per shape and
    /// drops what it made. Run it after the first deploy: it is what the local stand-in cannot
    /// prove (Athena's own front end, IAM, KMS).
    Doctor,
}

/// An instant as the CLI takes it: the same forms a landing key's extract time may have.
pub(crate) fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    use floe_pipeline::landing::{INSTANT_RANGE, instant_in_range, parse_extract_ts};
    let t = parse_extract_ts(s).ok_or_else(|| {
        format!(
            "'{s}' is not an instant: use RFC 3339 (2026-11-02T06:00:00Z), 'YYYY-MM-DD HH:MM:SS' (UTC), \
             20261102T060000Z or YYYY-MM-DD"
        )
    })?;
    if !instant_in_range(t) {
        return Err(format!(
            "'{s}' is outside the instants floe stores ({INSTANT_RANGE})"
        ));
    }
    Ok(t)
}

/// A duration as `--keep-for` takes it: a number and s, m, h or d.
pub(crate) fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    let (n, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| {
        format!("'{s}' is not a duration: write a number and s, m, h or d (90s, 12h, 7d)")
    })?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(format!(
            "'{s}' is not a duration: write a number and s, m, h or d (90s, 12h, 7d)"
        )),
    }
}
