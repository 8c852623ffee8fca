//! `floe`: the command line for floe projects.
//!
//! # Layout
//! - `main.rs`: arguments, logging, dispatch, one function per verb.
//! - `aws`: the verbs against a deployed pipeline (`engine: athena`): land, inject, redrive.
//! - `output`: tables, CSV and JSON for query results and history.
//! - `sample`: the project `floe init` writes.
//! - `demo`: the generated project `floe demo` runs.
//! - `models`: the gold verbs (run, test, plan, retry); `unit`: unit tests of models.

mod aws;
mod demo;
mod doctor;
mod models;
mod output;
mod progress;
mod sample;
mod unit;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::{Lake, Queue, ReadAt};
use floe_lake::LocalLake;
use floe_pipeline::runtime::{Report, Runtime};

use output::Format;

/// floe runs ELT pipelines for an Iceberg data lake: bronze keeps every extract, silver the
/// standardised change history (SCD2), gold the tested models.
///
/// Start with `floe demo` (a generated project run end to end), or `floe init my-project` and
/// `floe land FILE --table SOURCE.TABLE --wait -p my-project`, then
/// `floe query -p my-project "select * from silver_<source>.<table>"`.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, long_about)]
struct Cli {
    /// The project folder (holding floe.yaml).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "FLOE_PROJECT",
        default_value = "."
    )]
    project: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only for a person at a terminal: a log piped to a file or another tool stays plain.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // The verbs that do long work show how far it has got (see `progress`).
    let _progress = matches!(
        cli.command,
        Command::Land { .. }
            | Command::Up { .. }
            | Command::Run { .. }
            | Command::Retry
            | Command::Migrate { .. }
            | Command::Demo { .. }
    )
    .then(progress::watch);
    match cli.command {
        Command::Init { dir, no_sample } => init(&dir, no_sample).await,
        Command::Validate => validate(&cli.project).await,
        Command::Migrate { table, dry_run } => migrate(&cli.project, &table, dry_run).await,
        Command::Files {
            key,
            status,
            table,
            format,
        } => files(&cli.project, key, status, table, format).await,
        Command::Cost { since, by, format } => cost(&cli.project, since, &by, format).await,
        Command::Maintain {
            table,
            all: _,
            dry_run,
            keep_for,
        } => maintain(&cli.project, table.as_deref(), dry_run, keep_for).await,
        Command::Demo { dir, people, days } => run_demo(&dir, people, days).await,
        Command::Land {
            file,
            table,
            extract_ts,
            wait,
            dry_run,
            format,
        } => {
            let ts = extract_ts.unwrap_or_else(|| {
                let now = Utc::now();
                now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()))
            });
            if dry_run {
                return land_estimate(&cli.project, &file, &table, ts, format).await;
            }
            if let Some(project) = aws_project(&cli.project)? {
                if wait {
                    aws::check_stack(&project).await?;
                }
                aws::land(&project, &file, &table, ts).await?;
                if wait {
                    // The stage services in this process, on the stack's queues, until done.
                    return aws::up(&project, true, 0.5).await;
                }
                return Ok(());
            }
            let rt = runtime(&cli.project).await?;
            rt.project().table(&table)?;
            let object = rt.land_file(&file, &table, ts).await?;
            println!("landed {} as {}", file.display(), object.key);
            if wait {
                let report = rt
                    .drain(false, |m| progress::say(&format!("  {m}")))
                    .await?;
                return outcome(&report);
            }
            println!(
                "queued: run `floe up --project {}` to process it (or land with --wait)",
                cli.project.display()
            );
            Ok(())
        }
        Command::Up { once, interval } => match aws_project(&cli.project)? {
            Some(project) => aws::up(&project, once, interval).await,
            None => up(&cli.project, once, interval).await,
        },
        Command::Run {
            select,
            target,
            defer,
            state,
        } => {
            let project = Project::load(&cli.project)?;
            let opts = models::RunOptions {
                select,
                target,
                defer,
                state,
            };
            logged(&project, "run", models::run(&project, &opts, "floe run")).await
        }
        Command::Test { select } => {
            let project = Project::load(&cli.project)?;
            logged(&project, "test", models::test(&project, select.as_deref())).await
        }
        Command::Retry => {
            let project = Project::load(&cli.project)?;
            logged(&project, "retry", models::retry(&project)).await
        }
        Command::Plan {
            select,
            state,
            json,
        } => {
            let project = Project::load(&cli.project)?;
            // The plan reads the lake (which models exist, their sizes) only where it is at
            // hand, the embedded lake's folder; on Athena it renders without calling AWS.
            let lake = if project.settings.engine == floe_config::Engine::Local
                && project.settings.lake_dir.exists()
            {
                Some(LocalLake::open(&project.settings.lake_dir).await?)
            } else {
                None
            };
            models::plan(
                &project,
                lake.as_ref().map(|l| l as &dyn Lake),
                select.as_deref(),
                state.as_deref(),
                json,
            )
            .await
        }
        Command::Inject { event, to } => {
            if let Some(project) = aws_project(&cli.project)? {
                return aws::inject(&project, &event, &to).await;
            }
            inject_local(&cli.project, &event, &to).await
        }
        Command::Redrive { queue } => {
            if let Some(project) = aws_project(&cli.project)? {
                return aws::redrive(&project, &queue).await;
            }
            let rt = runtime(&cli.project).await?;
            let stage = queue.trim_end_matches("-dlq");
            if !floe_pipeline::runtime::STAGES.contains(&stage) {
                bail!(
                    "unknown queue '{queue}': use one of {}",
                    floe_pipeline::runtime::STAGES.join(", ")
                );
            }
            let moved = rt.queues().redrive(&format!("{stage}-dlq"), stage).await?;
            println!(
                "moved {moved} message(s) from {stage}-dlq back to {stage}; run `floe up --once` to process them"
            );
            Ok(())
        }
        Command::Query {
            sql,
            as_of,
            snapshot,
            format,
        } => {
            let at = match (as_of, snapshot) {
                (Some(t), _) => ReadAt::Timestamp(t),
                (None, Some(id)) => ReadAt::Snapshot(id),
                (None, None) => ReadAt::Current,
            };
            let (lake, _) = models::open(&Project::load(&cli.project)?).await?;
            output::print_stream(lake.query_stream(&sql, &at).await?, format).await
        }
        Command::Doctor => {
            let project = Project::load(&cli.project)?;
            if project.settings.engine != floe_config::Engine::Athena {
                bail!(
                    "floe doctor checks Athena: this project's engine is local (set engine: athena \
                     and the athena: section, or run scripts/aws-local.sh up {} for the stand-in)",
                    cli.project.display()
                );
            }
            let (lake, _) = models::open(&project).await?;
            doctor::run(&project, lake).await
        }
        Command::History { table, format } => {
            let table: TableRef = table.parse()?;
            let (lake, _) = models::open(&Project::load(&cli.project)?).await?;
            if !lake.table_exists(&table).await? {
                let known: Vec<String> = lake
                    .list_tables(None)
                    .await?
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                let hint =
                    floe_config::did_you_mean(&table.to_string(), known.iter().map(String::as_str));
                bail!(
                    "table {table} does not exist{hint}; tables in the lake: {}",
                    if known.is_empty() {
                        "none yet".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            output::print_history(&lake.snapshots(&table).await?, format)
        }
    }
}

async fn runtime(dir: &Path) -> Result<Runtime> {
    let project = load_project(dir)?;
    let lake = Arc::new(LocalLake::open(&project.settings.lake_dir).await?);
    Ok(Runtime::open(project, lake).await?)
}

/// Prints a drain's outcome; an error if anything was quarantined, rejected or dead-lettered.
fn outcome(report: &Report) -> Result<()> {
    let bad = report.quarantined.len() + report.rejected.len() + report.dead_lettered.len();
    println!(
        "{} file(s) landed, {} table version(s) published, {} quarantined, {} rejected, {} dead-lettered",
        report.landed.len(),
        report.published.len(),
        report.quarantined.len(),
        report.rejected.len(),
        report.dead_lettered.len()
    );
    for (file, r) in &report.quarantined {
        println!("  quarantined {file}: see {r}");
    }
    for (t, why) in &report.rejected {
        println!("  rejected {t}: {why}");
    }
    for (m, why) in &report.model_failures {
        println!("  model {m} was not built: {why} (fix it, then `floe retry`)");
    }
    for (q, why) in &report.dead_lettered {
        println!("  dead-lettered on {q}: {why} (fix it, then `floe redrive --queue {q}`)");
    }
    if bad > 0 {
        bail!("{bad} item(s) need attention (see above)");
    }
    Ok(())
}

async fn up(dir: &Path, once: bool, interval: f64) -> Result<()> {
    let rt = runtime(dir).await?;
    let mut first = true;
    println!(
        "floe up: watching {}",
        rt.project().root.join("landing").display()
    );
    loop {
        if first {
            let removed = rt.remove_stale_temp_files()?;
            if removed > 0 {
                println!(
                    "  removed {removed} stale temporary file(s) of copies that never finished"
                );
            }
        }
        // Every file in landing that nobody announced (copied in by hand, or a `floe land`
        // killed after its copy) is landed; with --once, files still being written are waited
        // for (a minute at most) so that none is left behind.
        let settle_until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            for object in rt.unannounced().await? {
                println!("  new file {}", object.key);
                rt.announce(&object).await?;
                rt.mark_announced(&object).await?;
            }
            if !once || rt.settling().await == 0 || std::time::Instant::now() > settle_until {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        // After a crash, work left in flight is picked up at once on the first pass.
        let report = rt
            .drain(first, |m| progress::say(&format!("  {m}")))
            .await?;
        first = false;
        if once {
            return outcome(&report);
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                return Ok(());
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs_f64(interval.max(0.1))) => {}
        }
    }
}

async fn count(lake: &LocalLake, sql: &str) -> Result<i64> {
    let batches = lake.query(sql, &ReadAt::Current).await?;
    Ok(batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0))
}

async fn run_demo(dir: &Path, people: u64, days: i64) -> Result<()> {
    if dir.join(floe_config::PROJECT_FILE).exists() {
        bail!(
            "{} already holds a project: remove it or pick another --dir",
            dir.display()
        );
    }
    let started = Instant::now();
    demo::write_project(dir, "floe_demo")?;
    let rt = runtime(dir).await?;
    let files = demo::generate(people, days);
    println!(
        "floe demo: {} extracts of 3 tables over {days} days, into {}",
        files.len(),
        dir.display()
    );
    let mut report = Report::default();
    for f in &files {
        let path = dir
            .join("samples")
            .join(f.table)
            .join(f.extract_ts.format("%Y-%m-%d").to_string())
            .join(&f.name);
        std::fs::create_dir_all(path.parent().expect("a folder"))?;
        std::fs::write(&path, &f.body)?;
        rt.land_file(&path, f.table, f.extract_ts).await?;
        let r = rt
            .drain(false, |m| progress::say(&format!("  {m}")))
            .await?;
        report.landed.extend(r.landed);
        report.published.extend(r.published);
        report.quarantined.extend(r.quarantined);
        report.rejected.extend(r.rejected);
        report.dead_lettered.extend(r.dead_lettered);
        report.model_failures.extend(r.model_failures);
    }
    let lake = LocalLake::open(&rt.project().settings.lake_dir).await?;
    println!("\nsummary: {:.1}s", started.elapsed().as_secs_f64());
    println!(
        "  {:<22} {:>12} {:>16} {:>10} {:>18}",
        "table", "bronze rows", "silver versions", "current", "silver snapshots"
    );
    for t in rt.project().tables.values() {
        let bronze = t.table_ref(floe_core::Layer::Bronze);
        let silver = t.table_ref(floe_core::Layer::Silver);
        let rows = count(&lake, &format!("select count(*) from {bronze}")).await?;
        let versions = count(&lake, &format!("select count(*) from {silver}")).await?;
        let current = count(
            &lake,
            &format!("select count(*) from {silver} where is_current"),
        )
        .await?;
        let snapshots = lake
            .snapshots(&silver)
            .await?
            .iter()
            .filter(|s| s.published)
            .count();
        println!(
            "  {:<22} {:>12} {:>16} {:>10} {:>18}",
            t.qualified_name(),
            rows,
            versions,
            current,
            snapshots
        );
    }
    let models = floe_models::Models::load(rt.project())?;
    println!(
        "\n  {:<26} {:>15} {:>10} {:>18}",
        "gold model", "materialized", "rows", "published versions"
    );
    for name in &models.dag.order {
        let m = &models.models[name];
        let t = m.relation(floe_models::GOLD);
        let rows = count(&lake, &format!("select count(*) from {t}")).await?;
        let versions = if lake.table_exists(&t).await? {
            lake.snapshots(&t)
                .await?
                .iter()
                .filter(|s| s.published)
                .count()
                .to_string()
        } else {
            "(view)".to_owned()
        };
        println!(
            "  {:<26} {:>15} {:>10} {:>18}",
            t.to_string(),
            m.materialized.name(),
            rows,
            versions
        );
    }
    println!(
        "\n  files: {} landed, {} quarantined, {} rejected, {} dead-lettered",
        report.landed.len(),
        report.quarantined.len(),
        report.rejected.len(),
        report.dead_lettered.len()
    );
    for (m, why) in &report.model_failures {
        println!("  model {m}: {why}");
    }
    for (file, r) in &report.quarantined {
        let text = std::fs::read_to_string(dir.join(r)).unwrap_or_default();
        let first = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["messages"][0].as_str().map(str::to_owned))
            .unwrap_or_default();
        println!("  quarantined {file}\n    {first}\n    report: {r}");
    }
    println!(
        "\nnext:\n  floe query -p {0} \"select person_id, last_name, risk_score, valid_from, valid_to, is_current from silver_nomis.people where person_id = 7 order by valid_from\"\n  floe history -p {0} silver_nomis.people\n  floe query -p {0} \"select * from gold.risk_summary\"\n  floe plan -p {0} -s dim_person+",
        dir.display()
    );
    Ok(())
}

fn load_project(dir: &Path) -> Result<Project> {
    let project = Project::load(dir)?;
    if project.settings.engine == floe_config::Engine::Athena {
        bail!(
            "{}: engine athena: this verb runs on the embedded engine only for now (land, \
             inject and redrive work against AWS); set `engine: local` to run on this machine",
            project.root.join(floe_config::PROJECT_FILE).display()
        );
    }
    Ok(project)
}

/// The project when it runs on AWS (`engine: athena`), for the verbs that talk to AWS.
fn aws_project(dir: &Path) -> Result<Option<Project>> {
    let project = Project::load(dir)?;
    Ok((project.settings.engine == floe_config::Engine::Athena).then_some(project))
}

/// Puts events on a local stage queue, each checked first so a typo is refused, not dead-lettered.
async fn inject_local(dir: &Path, file: &Path, to: &str) -> Result<()> {
    let stage: floe_pipeline::stages::Stage = to.parse()?;
    let events = aws::read_events(file)?;
    for (i, e) in events.iter().enumerate() {
        let body = e.to_string();
        let check = match stage {
            floe_pipeline::stages::Stage::Landing => {
                floe_pipeline::events::parse(&body).map(|_| ())
            }
            floe_pipeline::stages::Stage::Modelling
                if floe_pipeline::maintenance::request(&body).is_some() =>
            {
                Ok(())
            }
            _ => floe_core::message::Envelope::from_json(&body).map(|_| ()),
        };
        check.with_context(|| {
            format!(
                "{} event {}: not a message the {stage} stage takes; nothing was sent",
                file.display(),
                i + 1
            )
        })?;
    }
    let rt = runtime(dir).await?;
    let queue = rt.queue(stage.as_str());
    for e in &events {
        let id = floe_core::ports::Queue::send(&queue, &e.to_string()).await?;
        println!("sent message {id} to the {stage} queue");
    }
    println!("run `floe up --once` to process them");
    Ok(())
}

async fn validate(dir: &Path) -> Result<()> {
    let project = Project::load(dir)?;
    let sources = project
        .tables
        .values()
        .map(|t| &t.source)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    println!(
        "{}: {} table{} in {sources} source{}, engine {}",
        project.root.display(),
        project.tables.len(),
        plural(project.tables.len()),
        plural(sources),
        match project.settings.engine {
            floe_config::Engine::Local => "local",
            floe_config::Engine::Athena => "athena",
        },
    );
    for t in project.tables.values() {
        println!(
            "  {:<28} {} load, key ({}), {} columns  [{}]",
            t.qualified_name(),
            format!("{:?}", t.load).to_lowercase(),
            t.primary_key.join(", "),
            t.columns.len(),
            t.file.display()
        );
    }
    let models = floe_models::Models::load(&project)?;
    if !models.models.is_empty() {
        let generated = models
            .models
            .values()
            .filter(|m| matches!(m.origin, floe_models::project::Origin::Generated { .. }))
            .count();
        let tests: usize = models.models.values().map(|m| m.tests.len()).sum();
        println!(
            "  {} model{} ({generated} generated), {tests} data test{}, {} unit test{}",
            models.models.len(),
            plural(models.models.len()),
            plural(tests),
            models.unit_tests.len(),
            plural(models.unit_tests.len())
        );
    }
    // The config against the lake: what each change will do at the next extract. On Athena the
    // tables' schemas come from Glue; a lake out of reach (no credentials, no network) is said,
    // not an error: the config itself is valid.
    let drifts = match project.settings.engine {
        floe_config::Engine::Local if project.settings.lake_dir.exists() => {
            let lake = LocalLake::open(&project.settings.lake_dir).await?;
            floe_pipeline::drift::project_drift(&lake, &project).await?
        }
        floe_config::Engine::Local => Vec::new(),
        floe_config::Engine::Athena => {
            let compared = match models::open(&project).await {
                Ok((lake, _)) => floe_pipeline::drift::project_drift(lake.as_ref(), &project)
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match compared {
                Ok(d) => d,
                Err(e) => {
                    println!("  the lake was not compared with the config: {e:#}");
                    Vec::new()
                }
            }
        }
    };
    let mut refused = 0;
    for (t, drift) in drifts {
        println!("  {} differs from the lake:", t.qualified_name());
        for line in drift.describe(t) {
            println!("    - {line}");
        }
        if let Err(e) = drift.check(t) {
            refused += 1;
            println!("    refused at the next extract: {e}");
        }
    }
    if refused > 0 {
        bail!(
            "{refused} table(s) have config changes the lake will refuse (see above): run \
             `floe migrate SOURCE.TABLE` for each, or undo the change"
        );
    }
    println!("ok");
    Ok(())
}

/// `floe files`: see the command's help.
async fn files(
    dir: &Path,
    key: Option<String>,
    status: Option<String>,
    table: Option<String>,
    format: Format,
) -> Result<()> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    let project = Project::load(dir)?;
    if let Some(t) = &table {
        project.table(t)?;
    }
    let (lake, _) = models::open(&project).await?;
    let landing: Vec<floe_core::ObjectRef> = match project.settings.engine {
        floe_config::Engine::Local => {
            let store = floe_pipeline::local::store::LocalStore::new("landing", &project.root);
            store
                .files(floe_pipeline::landing::LANDING_PREFIX)?
                .into_iter()
                .map(|(key, meta)| floe_core::ObjectRef {
                    bucket: "landing".into(),
                    key,
                    version_id: None,
                    etag: None,
                    size: meta.len(),
                })
                .collect()
        }
        floe_config::Engine::Athena => aws::landing_objects(&project).await?,
    };
    let rows: Vec<_> = floe_pipeline::ledger::status_of(lake.as_ref(), &landing)
        .await?
        .into_iter()
        .filter(|r| key.as_ref().is_none_or(|k| r.key.contains(k.as_str())))
        .filter(|r| status.as_ref().is_none_or(|s| r.status.as_str() == s))
        .filter(|r| table.as_ref().is_none_or(|t| r.table.as_ref() == Some(t)))
        .collect();
    let column = |f: &dyn Fn(&floe_pipeline::ledger::FileRow) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let batch = datafusion::arrow::array::RecordBatch::try_from_iter([
        ("file", column(&|r| Some(r.key.clone()))),
        ("table", column(&|r| r.table.clone())),
        (
            "extract_ts",
            column(&|r| {
                r.extract_ts
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }),
        ),
        ("bytes", column(&|r| Some(r.size.to_string()))),
        ("status", column(&|r| Some(r.status.as_str().to_owned()))),
        (
            "at",
            column(&|r| {
                r.at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }),
        ),
        ("batch_id", column(&|r| r.batch_id.clone())),
        (
            "why",
            column(&|r| r.reason.clone().or_else(|| r.report.clone())),
        ),
    ])?;
    output::print_batches(&[batch], format)
}

/// A duration as `--keep-for` takes it: a number and s, m, h or d.
fn parse_age(s: &str) -> Result<chrono::Duration, String> {
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

/// `floe maintain`: see the command's help.
async fn maintain(
    dir: &Path,
    table: Option<&str>,
    dry_run: bool,
    keep_for: Option<chrono::Duration>,
) -> Result<()> {
    let project = Project::load(dir)?;
    let (lake, _) = models::open(&project).await?;
    use floe_pipeline::maintenance::{AllTables, Scope};
    let scope = match table {
        Some(t) => Scope::Tables(vec![t.to_owned()]),
        None => Scope::All(AllTables::All),
    };
    let tables = floe_pipeline::maintenance::tables(lake.as_ref(), &scope).await?;
    let m = floe_core::ports::Maintenance {
        keep_for: keep_for.unwrap_or_else(|| floe_pipeline::maintenance::keep_for(&project)),
        dry_run,
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for t in &tables {
        match lake.maintain(t, &m).await {
            Ok(r) => writeln!(
                out,
                "{}",
                floe_pipeline::maintenance::describe(t, &r, dry_run)
            )?,
            Err(e) => {
                failed += 1;
                eprintln!("{t}: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(anyhow::anyhow!(
            "maintenance failed on {failed} of {} tables",
            tables.len()
        ));
    }
    Ok(())
}

/// `floe cost`: see the command's help.
/// Runs a command's work with its statements logged to `floe_audit.query_log` under `stage`
/// (`floe cost` shows them), as the stage services log theirs; a log that cannot be written is
/// a warning.
async fn logged(
    project: &Project,
    stage: &str,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let (out, statements) = floe_core::cost::collect(work).await;
    if !statements.is_empty() {
        let logged = async {
            let (lake, _) = models::open(project).await?;
            floe_pipeline::query_log::append(
                lake.as_ref(),
                stage,
                &floe_pipeline::query_log::Work::default(),
                &statements,
            )
            .await?;
            anyhow::Ok(())
        };
        if let Err(e) = logged.await {
            tracing::warn!(error = %e, "the statements of `floe {stage}` were not logged to floe_audit.query_log");
        }
    }
    out
}

/// `floe land --dry-run`: what landing `file` would scan and cost. The file is read and checked
/// as landing does (a file landing would quarantine is refused here, with its problems), and
/// written as landing's Parquet in memory to know what the insert will read.
async fn land_estimate(
    dir: &Path,
    file: &Path,
    table: &str,
    ts: DateTime<Utc>,
    format: Format,
) -> Result<()> {
    let project = Project::load(dir)?;
    let config = project.table(table)?;
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let extract = floe_pipeline::extract::read(config, &bytes).map_err(|problems| {
        anyhow::anyhow!(
            "{}: landing would quarantine this file:\n{}",
            file.display(),
            problems
                .iter()
                .map(|p| {
                    let at = [
                        p.line.map(|l| format!("line {l}")),
                        p.column.as_ref().map(|c| format!("column {c}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                    if at.is_empty() {
                        format!("  {}", p.message)
                    } else {
                        format!("  {at}: {}", p.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let rows = extract.rows() as u64;
    let batch = floe_pipeline::landing::bronze_batch(
        config,
        extract,
        "dry-run",
        ts,
        Utc::now(),
        "dry-run",
    )?;
    let landed_bytes = floe_aws::lake::parquet_bytes(&batch.schema(), &[batch])?.len() as u64;
    let (lake, _) = models::open(&project).await?;
    let e = floe_pipeline::estimate::land(
        lake.as_ref(),
        config,
        ts,
        floe_pipeline::estimate::Batch { rows, landed_bytes },
    )
    .await?;
    let price = project
        .settings
        .athena
        .as_ref()
        .map_or(5.0, |a| a.price_per_tb_usd);
    let dollars = e.billed_bytes as f64 / 1e12 * price;
    if format == Format::Json {
        let mut v = serde_json::to_value(&e)?;
        v["usd"] = serde_json::json!(dollars);
        v["rows"] = serde_json::json!(rows);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} ({rows} rows, {} bytes) into {table} at {}: nothing is landed; silver would be computed by `{}`",
        file.display(),
        bytes.len(),
        ts.to_rfc3339(),
        e.step
    );
    for s in &e.statements {
        println!("  {:<12} {:>14} bytes  {}", s.stage, s.bytes, s.what);
    }
    println!(
        "  and {} small statements (metadata, the file ledger, the query log)",
        e.small_statements
    );
    println!(
        "total: {} bytes scanned; Athena bills {} bytes (10 MB minimum per statement): ${dollars:.6} at ${price}/TB",
        e.bytes, e.billed_bytes
    );
    Ok(())
}

async fn cost(dir: &Path, since: Option<DateTime<Utc>>, by: &str, format: Format) -> Result<()> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::util::display::array_value_to_string;
    let project = Project::load(dir)?;
    let (lake, _) = models::open(&project).await?;
    let log = floe_pipeline::query_log::table();
    if !lake.table_exists(&log).await? {
        println!("no statement logged yet: {log} is made by the first stage that runs");
        return Ok(());
    }
    let price = project
        .settings
        .athena
        .as_ref()
        .map_or(5.0, |a| a.price_per_tb_usd);
    let since = since.map(|t| {
        format!(
            " WHERE started_at >= {}",
            floe_pipeline::sql::timestamp_literal(lake.dialect(), Some(t))
        )
    });
    let rows = lake
        .query(
            &format!(
                "SELECT stage, table_name, statement_kind, bytes_scanned, engine_ms, engine FROM {log}{}",
                since.unwrap_or_default()
            ),
            &ReadAt::Current,
        )
        .await?;
    #[derive(Default)]
    struct Sum {
        statements: u64,
        bytes: u64,
        billed: u64,
        engine_ms: u64,
        athena: bool,
    }
    let mut sums: std::collections::BTreeMap<String, Sum> = std::collections::BTreeMap::new();
    let gold = floe_models::GOLD;
    for b in &rows {
        let text = |c: usize, i: usize| -> Result<String> {
            Ok(if b.column(c).is_null(i) {
                String::new()
            } else {
                array_value_to_string(b.column(c), i)?
            })
        };
        for i in 0..b.num_rows() {
            let (stage, table, kind) = (text(0, i)?, text(1, i)?, text(2, i)?);
            let key = match by {
                "table" => table,
                "model"
                    if table.starts_with(&format!("{gold}."))
                        || table.starts_with(&format!("{gold}_")) =>
                {
                    table
                }
                "model" => continue,
                _ => stage,
            };
            let bytes: u64 = text(3, i)?.parse().unwrap_or(0);
            let athena = text(5, i)? == "athena";
            let s = sums.entry(key).or_default();
            s.statements += 1;
            s.bytes += bytes;
            s.engine_ms += text(4, i)?.parse::<u64>().unwrap_or(0);
            if athena {
                s.athena = true;
                s.billed += floe_core::cost::athena_billed_bytes(&kind, bytes);
            }
        }
    }
    let tb = 1024f64.powi(4);
    let column = |f: &dyn Fn(&(&String, &Sum)) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            sums.iter().map(|e| f(&e)).collect::<Vec<_>>(),
        ))
    };
    let batch = datafusion::arrow::array::RecordBatch::try_from_iter([
        (by, column(&|(k, _)| (*k).clone())),
        ("statements", column(&|(_, s)| s.statements.to_string())),
        ("bytes_scanned", column(&|(_, s)| s.bytes.to_string())),
        (
            "billed_bytes",
            column(&|(_, s)| {
                if s.athena {
                    s.billed.to_string()
                } else {
                    "-".into()
                }
            }),
        ),
        (
            "usd",
            column(&|(_, s)| {
                if s.athena {
                    format!("{:.4}", s.billed as f64 / tb * price)
                } else {
                    "-".into()
                }
            }),
        ),
        ("engine_ms", column(&|(_, s)| s.engine_ms.to_string())),
    ])?;
    output::print_batches(&[batch], format)
}

/// `floe migrate`: see the command's help.
async fn migrate(dir: &Path, table: &str, dry_run: bool) -> Result<()> {
    use floe_core::ports::SchemaEdit;
    use floe_pipeline::drift;
    // On the embedded engine the rebuild runs through the local queues; on Athena through the
    // stack's queues, with the stage services in this process (as `floe land --wait`).
    let (rt, project, lake) = match aws_project(dir)? {
        Some(project) => {
            let (lake, _) = models::open(&project).await?;
            (None, project, lake)
        }
        None => {
            let rt = runtime(dir).await?;
            let project = rt.project().clone();
            let lake = rt.lake().clone();
            (Some(rt), project, lake)
        }
    };
    let config = project.table(table)?.clone();
    let bronze = config.table_ref(floe_core::Layer::Bronze);
    let silver = config.table_ref(floe_core::Layer::Silver);
    if !lake.table_exists(&bronze).await? || !lake.table_exists(&silver).await? {
        println!(
            "{table}: nothing landed yet, so nothing to migrate: the next file builds the tables \
             under the config"
        );
        return Ok(());
    }
    let found = drift::inspect(lake.as_ref(), &config).await?;
    let (bronze_edits, silver_edits) = drift::migration(&found);
    if bronze_edits.is_empty() && silver_edits.is_empty() {
        println!("{table}: the lake already follows the config; nothing to migrate");
        return Ok(());
    }
    // What the migration does (a refused change becomes a replaced column), not the refusal.
    let plan = drift::Drift {
        bronze: bronze_edits.clone(),
        silver: silver_edits.clone(),
        refused: Vec::new(),
        ..found.clone()
    };
    println!("{table}:");
    for line in plan.describe(&config) {
        println!("  - {line}");
    }
    // Every accepted bronze value must convert under the new types before anything changes.
    let mut rejected: Vec<String> = floe_pipeline::rejections::rejected(lake.as_ref(), &silver)
        .await?
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    rejected.sort();
    rejected.dedup();
    let effective = drift::effective(&config, &found);
    let source = drift::bronze_with_columns(
        lake.as_ref(),
        &effective,
        &bronze,
        &floe_pipeline::rejections::without(&bronze, &rejected),
        &ReadAt::Current,
    )
    .await?;
    let mut problems = Vec::new();
    for edit in &silver_edits {
        let SchemaEdit::ReplaceColumn { name, .. } = edit else {
            continue;
        };
        let column = config.column(name).expect("a replaced column is declared");
        let rows = lake
            .query(
                &drift::unconvertible_sql(lake.dialect(), column, &source),
                &ReadAt::Current,
            )
            .await?;
        for b in &rows {
            let text = |i: usize, r: usize| -> String {
                datafusion::arrow::util::display::array_value_to_string(b.column(i), r)
                    .unwrap_or_default()
            };
            for r in 0..b.num_rows() {
                problems.push(format!(
                    "{}:{}: column {name}: '{}' is not a {}",
                    text(0, r),
                    text(1, r),
                    text(2, r),
                    column.ty
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "bronze holds values the new types cannot hold, so nothing was changed:\n  {}\n\
             declare a type that holds them, or land corrected extracts and then migrate",
            problems.join("\n  ")
        );
    }
    if dry_run {
        println!("every bronze value converts; run again without --dry-run to migrate");
        return Ok(());
    }
    // On Athena the rebuild runs on the stack's queues: they must be there before the lake
    // changes.
    if rt.is_none() {
        aws::check_stack(&project).await?;
    }
    if !bronze_edits.is_empty() {
        lake.evolve_schema(&bronze, &bronze_edits).await?;
    }
    lake.evolve_schema(&silver, &silver_edits).await?;
    // The history is recomputed as for an extract whose config changed: from every accepted
    // batch of bronze, staged, audited and published, then the models downstream.
    let snapshots = lake.snapshots(&bronze).await?;
    let latest = snapshots
        .iter()
        .rev()
        .find(|s| s.is_current)
        .ok_or_else(|| anyhow::anyhow!("{bronze} has no snapshot"))?;
    let extract_ts = match latest
        .summary
        .get("floe.extract-ts")
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
    {
        Some(t) => t.with_timezone(&Utc),
        // Athena's commits carry no summary of floe's: the latest extract time bronze holds.
        None => latest_extract(lake.as_ref(), &bronze).await?,
    };
    let rules = floe_pipeline::standardise::history_rules(&effective);
    let batch = floe_core::BatchId::derive(&[
        "migrate",
        &silver.to_string(),
        &rules,
        &latest.snapshot_id.to_string(),
    ]);
    let message = floe_core::message::Envelope::new(
        batch,
        floe_core::RunId::new(),
        floe_core::message::StageMessage::Standardise {
            // No landed file: the ledger has nothing to record for a migration.
            object: floe_core::ObjectRef {
                bucket: "migrate".into(),
                key: String::new(),
                version_id: None,
                etag: None,
                size: 0,
            },
            bronze: bronze.clone(),
            bronze_snapshot_id: latest.snapshot_id,
            extract_ts,
        },
    );
    println!("  rebuilding the history of {silver} from bronze under the new config");
    match rt {
        Some(rt) => {
            rt.queue("standardise").send(&message.to_json()).await?;
            let report = rt
                .drain(false, |m| progress::say(&format!("  {m}")))
                .await?;
            outcome(&report)
        }
        None => {
            aws::send_to_stage(&project, "standardise", &message.to_json()).await?;
            aws::up(&project, true, 0.5).await
        }
    }
}

/// The latest extract time in `bronze`.
async fn latest_extract(lake: &dyn Lake, bronze: &TableRef) -> Result<DateTime<Utc>> {
    use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let rows = lake
        .query(
            &format!(
                "SELECT MAX({}) AS latest FROM {bronze}",
                floe_pipeline::bronze::EXTRACT_TS
            ),
            &ReadAt::Current,
        )
        .await?;
    let latest = rows
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| {
            datafusion::arrow::compute::cast(
                b.column(0),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
        })
        .transpose()?;
    latest
        .as_ref()
        .and_then(|a| a.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .filter(|a| !a.is_null(0))
        .and_then(|a| DateTime::from_timestamp_micros(a.value(0)))
        .ok_or_else(|| anyhow::anyhow!("{bronze} holds no extract"))
}

async fn init(dir: &Path, no_sample: bool) -> Result<()> {
    if dir.join(floe_config::PROJECT_FILE).exists() {
        bail!(
            "{} already holds a floe project (floe.yaml); pick another folder or remove it first",
            dir.display()
        );
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.to_ascii_lowercase().replace(['-', ' ', '.'], "_"))
        .filter(|n| floe_core::id::check_identifier("project", n).is_ok())
        .unwrap_or_else(|| "my_project".to_owned());
    for f in sample::FILES {
        let path = dir.join(f.path);
        std::fs::create_dir_all(path.parent().expect("files live in folders"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, f.body.replace("{{name}}", &name))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::create_dir_all(dir.join("landing"))?;
    println!("created project '{name}' in {}", dir.display());
    let project =
        load_project(dir).context("the new project does not validate (a bug in floe init)")?;
    if !no_sample {
        let rt = runtime(dir).await?;
        for (table, ts, file) in sample::sample_extracts(&project.root)? {
            rt.land_file(&file, &table, ts).await?;
        }
        let report = rt
            .drain(false, |m| progress::say(&format!("  {m}")))
            .await?;
        outcome(&report)?;
    }
    println!(
        "\nnext:\n  floe validate --project {0}\n  floe query --project {0} \"select * from silver_nomis.people order by person_id, valid_from\"\n  floe history --project {0} silver_nomis.people",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_in_every_documented_form() {
        let want: DateTime<Utc> = "2026-11-02T06:00:00Z".parse().unwrap();
        assert_eq!(parse_instant("2026-11-02T06:00:00Z").unwrap(), want);
        assert_eq!(parse_instant("2026-11-02T07:00:00+01:00").unwrap(), want);
        assert_eq!(parse_instant("2026-11-02 06:00:00").unwrap(), want);
        assert_eq!(
            parse_instant("2026-11-02").unwrap(),
            want - chrono::Duration::hours(6)
        );
        assert!(parse_instant("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(
            parse_instant("9999-12-31T23:59:59Z")
                .unwrap_err()
                .contains("outside the instants floe stores (1677-09-22 to 2262-04-10)")
        );
        assert_eq!(parse_instant("20261102T060000Z").unwrap(), want);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
