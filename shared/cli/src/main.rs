//! `floe`: the command line for floe projects.
//!
//! # Layout
//! - `main.rs`: arguments, logging, dispatch, one function per verb.
//! - `output`: tables, CSV and JSON for query results and history.
//! - `sample`: the project `floe init` writes, and loading its sample extracts.

mod output;
mod sample;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Parser, Subcommand};
use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::{Lake, ReadAt};
use floe_lake::LocalLake;

use output::Format;

/// floe runs ELT pipelines for an Iceberg data lake: bronze keeps every extract, silver the
/// standardised change history (SCD2), gold the tested models.
///
/// Start with `floe init my-project`, then `floe query --project my-project "select ..."`.
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
    /// Create a new project with sample tables and data, and load the samples into bronze.
    ///
    /// Writes floe.yaml, tables/nomis.yaml and samples/, then appends each sample extract to
    /// bronze_nomis.<table> so the project can be queried at once.
    Init {
        /// The folder to create (must not hold a floe.yaml already).
        dir: PathBuf,
        /// Only write the files; load nothing into the lake.
        #[arg(long)]
        no_sample: bool,
    },
    /// Check floe.yaml and tables/*.yaml; every problem is reported with file, line and field.
    Validate,
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
    /// Show a table's snapshots: when, what operation, which batch and run, rows added and total.
    History {
        /// The table, as namespace.table (e.g. bronze_nomis.people).
        table: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "'{s}' is not an instant: use RFC 3339 (2026-11-02T06:00:00Z), 'YYYY-MM-DD HH:MM:SS' (UTC) or YYYY-MM-DD"
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
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
    match cli.command {
        Command::Init { dir, no_sample } => init(&dir, no_sample).await,
        Command::Validate => validate(&cli.project),
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
            let lake = open_lake(&cli.project).await?;
            let batches = lake.query(&sql, &at).await?;
            output::print_batches(&batches, format)
        }
        Command::History { table, format } => {
            let table: TableRef = table.parse()?;
            let lake = open_lake(&cli.project).await?;
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

fn load_project(dir: &Path) -> Result<Project> {
    Ok(Project::load(dir)?)
}

async fn open_lake(dir: &Path) -> Result<LocalLake> {
    let project = load_project(dir)?;
    Ok(LocalLake::open(&project.settings.lake_dir).await?)
}

fn validate(dir: &Path) -> Result<()> {
    let project = load_project(dir)?;
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
    println!("ok");
    Ok(())
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
        let lake = LocalLake::open(&project.settings.lake_dir).await?;
        for (table, ts, file) in sample::sample_extracts(&project.root)? {
            let config = project.table(&table)?;
            let shown = file
                .strip_prefix(&project.root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let out = sample::load_extract(&lake, config, &file, ts, &shown).await?;
            println!(
                "  loaded {shown}: {} rows into {} (snapshot {})",
                out.rows_added,
                config.table_ref(floe_core::Layer::Bronze),
                out.snapshot_id
            );
        }
    }
    println!(
        "\nnext:\n  floe validate --project {0}\n  floe query --project {0} \"select * from bronze_nomis.people\"\n  floe history --project {0} bronze_nomis.people",
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
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
