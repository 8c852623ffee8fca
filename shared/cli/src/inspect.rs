//! The verbs that read or keep the lake: validate, files, maintain, cost, migrate, the dry-run
//! estimate of `floe land`, and the query log of a verb.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::{Lake, Queue, ReadAt};

use crate::output::Format;

use crate::*;

pub(crate) async fn validate(dir: &Path) -> Result<()> {
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
            let lake = connect::local_lake(&project).await?;
            floe_pipeline::drift::project_drift(&lake, &project).await?
        }
        floe_config::Engine::Local => Vec::new(),
        floe_config::Engine::Athena => {
            let compared = match connect::open(&project).await {
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
pub(crate) async fn files(
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
    let (lake, _) = connect::open(&project).await?;
    let landing: Vec<floe_core::ObjectRef> = match project.settings.engine {
        floe_config::Engine::Local => {
            let store = floe_local::store::LocalStore::new("landing", &project.root);
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

/// `floe maintain`: see the command's help.
pub(crate) async fn maintain(
    dir: &Path,
    table: Option<&str>,
    dry_run: bool,
    keep_for: Option<chrono::Duration>,
) -> Result<()> {
    let project = Project::load(dir)?;
    let (lake, _) = connect::open(&project).await?;
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
pub(crate) async fn logged(
    project: &Project,
    stage: &str,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let (out, statements) = floe_core::cost::collect(work).await;
    if !statements.is_empty() {
        let logged = async {
            let (lake, _) = connect::open(project).await?;
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
pub(crate) async fn land_estimate(
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
    let (lake, _) = connect::open(&project).await?;
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

pub(crate) async fn cost(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    by: &str,
    format: Format,
) -> Result<()> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::util::display::array_value_to_string;
    let project = Project::load(dir)?;
    let (lake, _) = connect::open(&project).await?;
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
pub(crate) async fn migrate(dir: &Path, table: &str, dry_run: bool) -> Result<()> {
    use floe_core::ports::SchemaEdit;
    use floe_pipeline::drift;
    // On the embedded engine the rebuild runs through the local queues; on Athena through the
    // stack's queues, with the stage services in this process (as `floe land --wait`).
    let (rt, project, lake) = match aws_project(dir)? {
        Some(project) => {
            let (lake, _) = connect::open(&project).await?;
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
    let rules = floe_pipeline::standardise::history_rules(&effective, lake.dialect());
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
pub(crate) async fn latest_extract(lake: &dyn Lake, bronze: &TableRef) -> Result<DateTime<Utc>> {
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
