//! `floe`: the command line for floe projects.
//!
//! # Layout
//! - `main.rs`: logging, and `run`: each verb dispatched to the function that does it.
//! - `args`: the verbs and their arguments (clap), and the instant and age parsers.
//! - `local`: the verbs of the local world: the runtime, `floe up`, the demo, `floe init`.
//! - `inspect`: the verbs that read or keep the lake: validate, files, maintain, cost, migrate,
//!   the dry-run estimate, and the query log of a verb.
//! - `connect`: opening a project's lake, event sink and AWS clients.
//! - `aws`: the verbs against a deployed pipeline (`engine: athena`): land, inject, redrive.
//! - `output`: tables, CSV and JSON for query results and history.
//! - `sample`: the project `floe init` writes.
//! - `demo`: the generated project `floe demo` runs.
//! - `models`: the gold verbs (run, test, plan, retry); `unit`: unit tests of models.

mod args;
mod aws;
mod connect;
mod demo;
mod doctor;
mod inspect;
mod local;
mod models;
mod output;
mod progress;
mod sample;
mod unit;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;
use clap::Parser;
use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::{Lake, ReadAt};

use args::{Cli, Command};
use inspect::*;
use local::*;

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
                Some(connect::local_lake(&project).await?)
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
            let Ok(stage) = queue.trim_end_matches("-dlq").parse::<floe_core::Stage>() else {
                bail!(
                    "unknown queue '{queue}': use one of {}",
                    floe_core::Stage::ALL.map(|s| s.as_str()).join(", ")
                );
            };
            let moved = rt
                .queues()
                .redrive(&stage.dead_letter_queue(), stage.as_str())
                .await?;
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
            let (lake, _) = connect::open(&Project::load(&cli.project)?).await?;
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
            let (lake, _) = connect::open(&project).await?;
            doctor::run(&project, lake).await
        }
        Command::History { table, format } => {
            let table: TableRef = table.parse()?;
            let (lake, _) = connect::open(&Project::load(&cli.project)?).await?;
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

pub(crate) fn load_project(dir: &Path) -> Result<Project> {
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
pub(crate) fn aws_project(dir: &Path) -> Result<Option<Project>> {
    let project = Project::load(dir)?;
    Ok((project.settings.engine == floe_config::Engine::Athena).then_some(project))
}

#[cfg(test)]
mod tests {
    use super::*;
    use args::parse_instant;
    use chrono::{DateTime, Utc};

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
