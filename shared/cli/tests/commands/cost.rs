//! `floe cost` and `floe_audit.query_log`: every stage logs the statements it ran, and the
//! command sums them.

use std::path::Path;

use crate::cli::floe;
use crate::drift::{configure, land, project};

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
}
