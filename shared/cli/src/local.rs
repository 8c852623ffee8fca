//! The verbs of the local world: the runtime over the project's queues, `floe up`, the demo,
//! `floe init`, and injecting an event by hand.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use floe_core::ports::{Lake, ReadAt};
use floe_lake::LocalLake;
use floe_local::runtime::{Report, Runtime};

use crate::*;

pub(crate) async fn runtime(dir: &Path) -> Result<Runtime> {
    let project = load_project(dir)?;
    let lake = Arc::new(connect::local_lake(&project).await?);
    Ok(Runtime::open(project, lake).await?)
}

/// Prints a drain's outcome; an error if anything was quarantined, rejected or dead-lettered.
pub(crate) fn outcome(report: &Report) -> Result<()> {
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

pub(crate) async fn up(dir: &Path, once: bool, interval: f64) -> Result<()> {
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

pub(crate) async fn count(lake: &LocalLake, sql: &str) -> Result<i64> {
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

pub(crate) async fn run_demo(dir: &Path, people: u64, days: i64) -> Result<()> {
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
    let lake = connect::local_lake(rt.project()).await?;
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

/// Puts events on a local stage queue, each checked first so a typo is refused, not dead-lettered.
pub(crate) async fn inject_local(dir: &Path, file: &Path, to: &str) -> Result<()> {
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

pub(crate) async fn init(dir: &Path, no_sample: bool) -> Result<()> {
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
