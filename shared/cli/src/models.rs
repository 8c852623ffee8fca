//! The gold verbs: `floe run`, `floe test`, `floe plan`, `floe retry`.
//!
//! `run` builds the selected models staged (the modelling stage's code), runs their data tests
//! and publishes those that pass (the audit stage's code), exactly as the event chain does after
//! a silver publish. `retry` runs again the models of the last run that did not publish, with
//! everything downstream of them. `plan` renders and prints, and runs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::Array;
use floe_config::Project;
use floe_core::ports::Notifier;
use floe_core::ports::{Dialect, Lake, ReadAt};
use floe_core::{BatchId, RunId};
use floe_models::materialize;
use floe_models::project::Origin;
use floe_models::render::ResolveError;
use floe_models::{Manifest, Models, RenderCtx, Resolve};
use floe_pipeline::modelling::{
    AuditModels, BuildStatus, ModelVerdict, Modelling, RunRecord, Target, model_runs_table,
    record_runs,
};
use floe_webhook::Webhook;

use crate::connect::open;
use floe_local::runtime::state_dir;

/// Options shared by run and retry.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A selector (default: every model).
    pub select: Option<String>,
    /// The target (`prod` = gold; anything else writes to gold_<target>).
    pub target: Option<String>,
    /// Read unselected models from production (gold).
    pub defer: bool,
    /// A folder holding a production manifest.json, for state:modified.
    pub state: Option<PathBuf>,
}

fn load_models(project: &Project) -> Result<Models> {
    Ok(Models::load(project)?)
}

fn read_manifest(state: Option<&Path>) -> Result<Option<Manifest>> {
    let Some(dir) = state else { return Ok(None) };
    let file = if dir.is_dir() {
        dir.join("manifest.json")
    } else {
        dir.to_owned()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the saved manifest {}", file.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{} is not a floe manifest", file.display())
    })?))
}

fn write_manifest(project: &Project, models: &Models, namespace: &str) -> Result<PathBuf> {
    let dir = state_dir(&project.root);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("manifest.json");
    let manifest = Manifest::of(&models.models, &models.dag, namespace);
    std::fs::write(&file, serde_json::to_string_pretty(&manifest)?)?;
    Ok(file)
}

fn selection(
    models: &Models,
    select: Option<&str>,
    state: Option<&Manifest>,
) -> Result<BTreeSet<String>> {
    match select {
        None => Ok(models.models.keys().cloned().collect()),
        Some(expr) => floe_models::select(expr, &models.models, &models.dag, state)
            .map_err(anyhow::Error::msg),
    }
}

/// `floe run`: build, test and publish the selected models.
pub async fn run(project: &Project, opts: &RunOptions, trigger: &str) -> Result<()> {
    let (lake, events) = open(project).await?;
    let models = floe_pipeline::modelling::load_models(project, lake.as_ref()).await?;
    let state = read_manifest(opts.state.as_deref())?;
    let selected = selection(&models, opts.select.as_deref(), state.as_ref())?;
    if selected.is_empty() {
        println!("nothing selected: no model matches");
        return Ok(());
    }
    let target = Target::named(opts.target.as_deref(), opts.defer)?;
    let run = RunId::new();
    let batch = BatchId::derive(&["floe run", run.as_str()]);
    let order = models.dag.ordered(&selected);
    println!(
        "run {run}: {} model(s) into {} ({})",
        order.len(),
        target.namespace,
        order.join(", ")
    );
    // A record per model now, so a run that dies half way is still known to `floe retry`.
    let now = chrono::Utc::now();
    let started: Vec<RunRecord> = order
        .iter()
        .map(|m| RunRecord {
            run_id: run.as_str().to_owned(),
            trigger: trigger.to_owned(),
            model: m.clone(),
            status: "started".into(),
            started_at: now,
            finished_at: now,
            rows: 0,
            bytes_scanned: None,
            message: None,
        })
        .collect();
    record_runs(lake.as_ref(), &run, &started, "start").await?;
    floe_pipeline::progress::step(format!("{trigger}: building"));
    let progress = |line: &str| crate::progress::say(&format!("  {line}"));
    let clock = floe_core::ports::SystemClock;
    let build = Modelling {
        project,
        models: &models,
        lake: lake.as_ref(),
        clock: &clock,
        target: target.clone(),
        progress: &progress,
    }
    .build(
        &selected,
        &batch,
        &run,
        project.settings.concurrency as usize,
    )
    .await?;
    floe_pipeline::stages::record_build_failures(lake.as_ref(), &run, trigger, 1, &build).await?;
    let webhook = project.settings.webhook.as_ref().map(Webhook::new);
    floe_pipeline::modelling::announce_build_failures(
        events.as_ref(),
        webhook.as_ref().map(|w| w as &dyn Notifier),
        &clock,
        &batch,
        &run,
        trigger,
        &build,
    )
    .await?;
    floe_pipeline::progress::step(format!("{trigger}: testing and publishing"));
    let verdicts = AuditModels {
        project,
        models: &models,
        lake: lake.as_ref(),
        events: events.as_ref(),
        notifier: webhook.as_ref().map(|w| w as &dyn Notifier),
        clock: &clock,
        progress: &progress,
    }
    .handle(trigger, &build.staged, &batch, &run)
    .await?;
    floe_pipeline::progress::idle();
    if target.namespace == floe_models::GOLD {
        write_manifest(project, &models, &target.namespace)?;
    }
    let published = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, ModelVerdict::Published { .. }))
        .count();
    let failed_tests = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, ModelVerdict::Failed { .. }))
        .count();
    let errors = build
        .built
        .iter()
        .filter(|b| matches!(b.status, BuildStatus::Error { .. }))
        .count();
    let skipped = order.len() - published - failed_tests - errors;
    println!(
        "{published} published, {failed_tests} failed their tests, {errors} failed to build, {skipped} skipped"
    );
    if failed_tests + errors + skipped > 0 {
        bail!(
            "{} model(s) were not published (the published versions are unchanged); failing rows are in floe_audit.test_failures, every outcome in floe_audit.model_runs; fix, then `floe retry`",
            failed_tests + errors + skipped
        );
    }
    Ok(())
}

/// The models of the last run that did not publish, or None when there was no run.
pub async fn unfinished(lake: &dyn Lake) -> Result<Option<(String, BTreeSet<String>)>> {
    let t = model_runs_table();
    if !lake.table_exists(&t).await? {
        return Ok(None);
    }
    let rows = lake
        .query(
            &format!(
                "SELECT run_id, model, status FROM {t} WHERE run_id = (SELECT run_id FROM {t} ORDER BY started_at DESC, finished_at DESC LIMIT 1)"
            ),
            &ReadAt::Current,
        )
        .await?;
    let mut run = None;
    let mut status: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in &rows {
        let col = |i: usize| {
            datafusion::arrow::compute::cast(
                b.column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .expect("text")
        };
        let (r, m, s) = (col(0), col(1), col(2));
        let text = |a: &Arc<dyn Array>, i: usize| {
            a.as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("utf8")
                .value(i)
                .to_owned()
        };
        for i in 0..b.num_rows() {
            run = Some(text(&r, i));
            status.entry(text(&m, i)).or_default().insert(text(&s, i));
        }
    }
    let Some(run) = run else { return Ok(None) };
    let left: BTreeSet<String> = status
        .into_iter()
        .filter(|(_, s)| !s.contains("success"))
        .map(|(m, _)| m)
        .collect();
    Ok(Some((run, left)))
}

/// `floe retry`: the last run's models that did not publish, and their descendants.
pub async fn retry(project: &Project) -> Result<()> {
    let (lake, _) = open(project).await?;
    let models = floe_pipeline::modelling::load_models(project, lake.as_ref()).await?;
    let Some((run, left)) = unfinished(lake.as_ref()).await? else {
        bail!("there is no model run to retry yet: `floe run` first");
    };
    let left: Vec<String> = left
        .into_iter()
        .filter(|m| models.models.contains_key(m))
        .collect();
    if left.is_empty() {
        println!("every model of the last run ({run}) was published: nothing to retry");
        return Ok(());
    }
    println!(
        "retrying {} from run {run}, and what depends on them",
        left.join(", ")
    );
    let select: Vec<String> = left.iter().map(|m| format!("{m}+")).collect();
    let opts = RunOptions {
        select: Some(select.join(" ")),
        ..Default::default()
    };
    Box::pin(self::run(project, &opts, &format!("floe retry of {run}"))).await
}

/// `floe test`: the data tests of the selected models against their published versions, and
/// the unit tests.
pub async fn test(project: &Project, select: Option<&str>) -> Result<()> {
    let (lake, events) = open(project).await?;
    let models = floe_pipeline::modelling::load_models(project, lake.as_ref()).await?;
    let selected = selection(&models, select, None)?;
    let clock = floe_core::ports::SystemClock;
    let progress = |line: &str| crate::progress::say(&format!("  {line}"));
    let audit = AuditModels {
        project,
        models: &models,
        lake: lake.as_ref(),
        events: events.as_ref(),
        notifier: None,
        clock: &clock,
        progress: &progress,
    };
    let mut failed = 0;
    let mut ran = 0;
    for name in models.dag.ordered(&selected) {
        let m = &models.models[&name];
        if m.tests.is_empty() {
            continue;
        }
        let relation = format!("{}.{name}", floe_models::GOLD);
        let results = audit
            .run_tests(
                m,
                &relation,
                &BTreeMap::new(),
                floe_models::GOLD,
                &ReadAt::Current,
            )
            .await
            .with_context(|| {
                format!("testing {relation} (is it published? `floe run --select {name}`)")
            })?;
        for r in results {
            ran += 1;
            if r.failing_rows == 0 {
                println!("PASS {relation} {}", r.test);
            } else {
                failed += 1;
                println!(
                    "FAIL {relation} {}: {} failing row(s)",
                    r.test, r.failing_rows
                );
                for l in &r.examples {
                    println!("       {l}");
                }
            }
        }
    }
    let (unit_ran, unit_failed) = crate::unit::run_all(project, &models, &selected).await?;
    println!(
        "{} data test(s): {} passed, {failed} failed; {unit_ran} unit test(s): {} passed, {unit_failed} failed",
        ran,
        ran - failed,
        unit_ran - unit_failed
    );
    if failed + unit_failed > 0 {
        bail!("{} test(s) failed", failed + unit_failed);
    }
    Ok(())
}

/// Resolves names as a plain run would (for `floe plan`).
struct PlanNames {
    namespace: String,
}

impl Resolve for PlanNames {
    fn model(&self, name: &str) -> std::result::Result<String, ResolveError> {
        Ok(format!("{}.{name}", self.namespace))
    }
    fn source(&self, source: &str, table: &str) -> std::result::Result<String, ResolveError> {
        Ok(format!(
            "{}.{table}",
            floe_core::Layer::Silver.namespace(source)
        ))
    }
}

/// `floe plan`: the DAG, each model's materialization, the SQL it would run, and what it reads.
pub async fn plan(
    project: &Project,
    lake: Option<&dyn Lake>,
    select: Option<&str>,
    state: Option<&Path>,
    json: bool,
) -> Result<()> {
    let models = load_models(project)?;
    let manifest = read_manifest(state)?;
    let selected = selection(&models, select, manifest.as_ref())?;
    let dialect = match project.settings.engine {
        floe_config::Engine::Local => Dialect::DataFusion,
        floe_config::Engine::Athena => Dialect::Trino,
    };
    let resolver = Arc::new(PlanNames {
        namespace: floe_models::GOLD.to_owned(),
    });
    let price = project
        .settings
        .athena
        .as_ref()
        .map_or(5.0, |a| a.price_per_tb_usd);
    let mut out = Vec::new();
    for name in models.dag.ordered(&selected) {
        let m = &models.models[&name];
        let table = m.relation(floe_models::GOLD);
        let (exists, columns) = match lake {
            Some(l) if l.table_exists(&table).await? => (
                true,
                Some(
                    l.table_schema(&table)
                        .await?
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>(),
                ),
            ),
            _ => (false, None),
        };
        let incremental = exists
            && matches!(
                m.materialized,
                floe_models::Materialized::Incremental { .. }
            );
        let ctx = RenderCtx {
            resolver: resolver.clone(),
            dialect,
            is_incremental: incremental,
            this: Some(table.to_string()),
            vars: models.vars.clone(),
            extra: m.extra.clone(),
        };
        let sql = models.renderer.render(&m.template, &ctx)?.sql;
        let steps = materialize::plan(dialect, &m.materialized, &sql, &table, columns.as_deref());
        let reads = estimated_bytes(lake, m).await?;
        // What Athena bills for the model's statement (a view reads nothing when it is made).
        let billed = match (&m.materialized, reads) {
            (floe_models::Materialized::View, _) => Some(0),
            (_, Some(b)) => Some(floe_core::cost::athena_billed_bytes("select", b)),
            (_, None) => None,
        };
        out.push(serde_json::json!({
            "model": name,
            "relation": table.to_string(),
            "file": m.file,
            "origin": m.origin,
            "materialized": m.materialized,
            "parents": models.dag.parents[&name],
            "sources": models.dag.sources[&name],
            "tags": m.tags,
            "tests": m.tests.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "estimated_bytes_read": reads,
            "estimated_billed_bytes": billed,
            "estimated_usd": billed.map(|b| b as f64 / 1e12 * price),
            "steps": steps,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{} model(s), in build order (nothing is run):", out.len());
    for v in &out {
        let m = &models.models[v["model"].as_str().unwrap_or_default()];
        let origin = match &m.origin {
            Origin::Written => m.file.display().to_string(),
            Origin::Generated { template, table } => {
                format!("templates/{template}.sql for {table}")
            }
        };
        let parents: Vec<String> = models.dag.parents[&m.name].iter().cloned().collect();
        let sources: Vec<String> = models.dag.sources[&m.name]
            .iter()
            .map(|s| format!("source:{s}"))
            .collect();
        println!(
            "\n== {} [{}] from {origin}\n   reads: {}\n   tests: {}\n   estimated bytes read: {}{}",
            v["relation"].as_str().unwrap_or_default(),
            m.materialized.name(),
            if parents.is_empty() && sources.is_empty() {
                "nothing".to_owned()
            } else {
                parents
                    .into_iter()
                    .chain(sources)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            if m.tests.is_empty() {
                "none".to_owned()
            } else {
                m.tests
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            v["estimated_bytes_read"]
                .as_u64()
                .map_or("unknown (inputs not built yet)".to_owned(), |b| b
                    .to_string()),
            match (
                v["estimated_billed_bytes"].as_u64(),
                v["estimated_usd"].as_f64()
            ) {
                (Some(b), Some(usd)) => format!(" (Athena bills {b} bytes: ${usd:.6})"),
                _ => String::new(),
            },
        );
        for step in v["steps"].as_array().into_iter().flatten() {
            println!(
                "   -- {}\n{}",
                step["step"].as_str().unwrap_or_default(),
                step["sql"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .map(|l| format!("   {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    let known: Vec<(u64, u64)> = out
        .iter()
        .filter_map(|v| {
            Some((
                v["estimated_bytes_read"].as_u64()?,
                v["estimated_billed_bytes"].as_u64()?,
            ))
        })
        .collect();
    let (bytes, billed) = known.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    println!(
        "\ntotal ({} of {} models with built inputs): {bytes} bytes read; Athena bills {billed} bytes (10 MB minimum per statement, views free): ${:.6} at ${price}/TB",
        known.len(),
        out.len(),
        billed as f64 / 1e12 * price
    );
    Ok(())
}

/// The data files' size of the tables a model reads, from their snapshot summaries.
async fn estimated_bytes(lake: Option<&dyn Lake>, m: &floe_models::Model) -> Result<Option<u64>> {
    let Some(lake) = lake else { return Ok(None) };
    let mut total = 0u64;
    for d in &m.deps {
        let t = match d {
            floe_models::Dep::Source { source, table } => {
                floe_core::TableRef::in_layer(floe_core::Layer::Silver, source, table)?
            }
            floe_models::Dep::Ref { name } => floe_core::TableRef::new(floe_models::GOLD, name)?,
        };
        if !lake.table_exists(&t).await? {
            if lake.view_sql(&t).await?.is_some() {
                continue;
            }
            return Ok(None);
        }
        let size = lake
            .snapshots(&t)
            .await?
            .into_iter()
            .find(|s| s.is_current)
            .and_then(|s| {
                s.summary
                    .get("total-files-size")
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        total += size;
    }
    Ok(Some(total))
}
