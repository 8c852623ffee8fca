//! `floe cost` and `floe_audit.query_log`: every stage logs the statements it ran, and the
//! command sums them.

use std::path::Path;

use crate::cli::floe;
use crate::drift::{configure, land, project};
use predicates::prelude::PredicateBooleanExt;

const COLUMNS: &str = "      id: {type: bigint}\n      qty: {type: int}\n";

/// `floe cost` with these arguments, as (key, statements, bytes scanned, billed) rows.
fn cost(p: &Path, args: &[&str]) -> Vec<(String, u64, u64, String)> {
    let out = floe()
        .arg("cost")
        .args(args)
        .args(["--format", "json", "-p"])
        .arg(p)
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let by = args
        .windows(2)
        .find(|w| w[0] == "--by")
        .map_or("stage", |w| w[1]);
    rows.iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            let n = |k: &str| text(k).parse::<u64>().unwrap();
            (
                text(by),
                n("statements"),
                n("bytes_scanned"),
                text("billed_bytes"),
            )
        })
        .collect()
}

#[test]
fn every_stage_logs_its_statements_and_floe_cost_sums_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    configure(p, COLUMNS);
    floe()
        .args(["cost", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicates::str::contains("no statement logged yet"));
    land(p, 1, "id,qty\n1,2\n2,3\n").success();
    let first = cost(p, &[]);
    let stages: Vec<&str> = first.iter().map(|r| r.0.as_str()).collect();
    for stage in ["landing", "standardise", "audit"] {
        assert!(stages.contains(&stage), "{stage} logged nothing: {first:?}");
    }
    for (stage, statements, bytes, billed) in &first {
        assert!(*statements > 0, "{stage}");
        // The embedded engine bills nothing.
        assert_eq!(billed, "-", "{stage}");
        if stage == "standardise" || stage == "audit" {
            assert!(*bytes > 0, "{stage} read bronze and silver: {first:?}");
        }
    }

    // A second extract adds to every stage; --since leaves the first out.
    let between = chrono::Utc::now().to_rfc3339();
    land(p, 2, "id,qty\n1,2\n2,4\n3,1\n").success();
    let both = cost(p, &[]);
    let second = cost(p, &["--since", &between]);
    for (stage, statements, _, _) in &second {
        let before = first.iter().find(|r| &r.0 == stage).map_or(0, |r| r.1);
        let total = both.iter().find(|r| &r.0 == stage).unwrap().1;
        assert_eq!(
            before + statements,
            total,
            "{stage}: {first:?} + {second:?} = {both:?}"
        );
    }

    // By table: silver's history is among the tables read.
    let tables = cost(p, &["--by", "table"]);
    assert!(
        tables
            .iter()
            .any(|(t, _, bytes, _)| t == "silver_shop.orders" && *bytes > 0),
        "{tables:?}"
    );
    // The log is a lake table like any other.
    floe()
        .args([
            "query",
            "select count(*) as n from floe_audit.query_log where stage = 'standardise' and batch_id is not null",
            "-p",
        ])
        .arg(p)
        .assert()
        .success()
        .stdout(predicates::str::is_match(r"\b[1-9][0-9]*\b").unwrap());

    // `floe run` outside the stage services logs its statements too, as stage `run`, and its
    // run records have what each build scanned.
    floe().args(["run", "-p"]).arg(p).assert().success();
    let runs = cost(p, &[]);
    assert!(
        runs.iter()
            .any(|(stage, n, bytes, _)| stage == "run" && *n > 0 && *bytes > 0),
        "{runs:?}"
    );
    floe()
        .args([
            "query",
            "--format",
            "csv",
            "select count(*) as n from floe_audit.model_runs where trigger = 'floe run' and bytes_scanned > 0",
            "-p",
        ])
        .arg(p)
        .assert()
        .success()
        .stdout(predicates::str::is_match(r"n\n[1-9]").unwrap());
}

/// `floe land --dry-run --format json` of `csv` as the extract of that day.
fn estimate(p: &Path, day: u32, csv: &str) -> serde_json::Value {
    let file = p.join(format!("estimate-{day}.csv"));
    std::fs::write(&file, csv).unwrap();
    let out = floe()
        .args([
            "land",
            "--table",
            "shop.orders",
            "--dry-run",
            "--format",
            "json",
        ])
        .arg("--extract-ts")
        .arg(format!("2026-11-{day:02}T06:00:00Z"))
        .arg("-p")
        .arg(p)
        .arg(&file)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn land_dry_run_says_how_silver_would_be_computed_and_lands_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    configure(p, COLUMNS);
    // Before anything landed (the batch's bytes are landing's Parquet of it), nothing is
    // written.
    let csv = "id,qty\n1,2\n2,3\n";
    let first = estimate(p, 2, csv);
    assert_eq!(first["step"], "apply", "{first}");
    assert_eq!(first["rows"], 2, "{first}");
    let stages: Vec<&str> = first["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["landing", "standardise", "audit"], "{first}");
    assert!(
        first["statements"][0]["bytes"].as_u64().unwrap() > 0,
        "{first}"
    );
    // Every statement bills 10 MB at least: the data ones and the small ones.
    let statements = 3 + first["small_statements"].as_u64().unwrap();
    assert!(
        first["billed_bytes"].as_u64().unwrap() >= statements * (10 << 20),
        "{first}"
    );
    assert!(first["usd"].as_f64().unwrap() > 0.0, "{first}");
    floe()
        .args(["files", "--format", "json", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicates::str::contains("estimate-").not());

    land(p, 1, "id,qty\n1,2\n2,3\n").success();
    land(p, 3, "id,qty\n1,2\n2,4\n").success();
    // Between two landed extracts: spliced in (`deletes: invalidate`); on one: a replacement.
    assert_eq!(estimate(p, 2, csv)["step"], "late");
    assert_eq!(estimate(p, 3, csv)["step"], "rebuild");
    let next = estimate(p, 4, csv);
    assert_eq!(next["step"], "apply", "{next}");
    // Now from bronze's bytes per row, and silver's files are read.
    assert!(
        next["statements"][1]["bytes"].as_u64().unwrap() > 0,
        "{next}"
    );
    // A file landing would quarantine is refused with its problems, and nothing lands.
    let file = p.join("bad.csv");
    std::fs::write(&file, "id,qty\n1,x\n").unwrap();
    floe()
        .args(["land", "--table", "shop.orders", "--dry-run", "-p"])
        .arg(p)
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "landing would quarantine this file",
        ))
        .stderr(predicates::str::contains("line 2"));
}
