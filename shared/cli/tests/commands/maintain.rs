//! `floe maintain`: compaction, snapshot expiry and unreferenced files, with every answer kept
//! and the pipeline going on as before.

use std::path::Path;

use predicates::prelude::*;

use crate::cli::floe;
use crate::drift::{configure, land, project};

const COLUMNS: &str = "      id: {type: bigint}\n      qty: {type: int}\n";

fn silver(p: &Path) -> String {
    let out = floe()
        .args([
            "query",
            "--format",
            "csv",
            "select id, qty, valid_from, valid_to, is_current from silver_shop.orders order by id, valid_from",
            "-p",
        ])
        .arg(p)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn history(p: &Path) -> Vec<serde_json::Value> {
    let out = floe()
        .args(["history", "silver_shop.orders", "--format", "json", "-p"])
        .arg(p)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn maintenance_keeps_the_answers_and_the_next_extract_is_still_applied() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    configure(p, COLUMNS);
    land(p, 1, "id,qty\n1,2\n2,3\n").success();
    land(p, 2, "id,qty\n1,2\n2,4\n3,1\n").success();
    let before = silver(p);
    let snapshots = history(p).len();
    assert!(snapshots >= 2, "{snapshots}");

    floe()
        .args(["maintain", "--all", "--dry-run", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "bronze_shop.orders: 2 files, would be compacted",
        ))
        // Silver's second extract was applied as a row delta: its data files and the delete
        // file marking the versions it replaced are folded into one.
        .stdout(predicate::str::contains(
            "silver_shop.orders: 3 files, would be compacted",
        ));
    assert_eq!(history(p).len(), snapshots, "a dry run changes nothing");

    std::thread::sleep(std::time::Duration::from_secs(2));
    floe()
        .args(["maintain", "--all", "--keep-for", "1s", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "bronze_shop.orders: 2 files compacted into 1",
        ))
        .stdout(
            predicate::str::is_match(
                r"silver_shop\.orders: 3 files compacted into 1; [1-9]\d* snapshots expired, 1 kept",
            )
            .unwrap(),
        );
    assert_eq!(silver(p), before);
    // What is left: the version published until the compaction (published within the
    // retention, so kept) and the compaction, a snapshot of its own with the same rows.
    let left = history(p);
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        left[1]["summary"]["floe.maintenance"], "compaction",
        "{left:?}"
    );

    // The next extract is applied to the maintained history, as it would have been.
    land(p, 3, "id,qty\n1,5\n2,4\n3,1\n").success();
    let latest = history(p).into_iter().last().unwrap();
    assert_eq!(latest["summary"]["floe.scd2-step"], "apply", "{latest}");
    let after = silver(p);
    assert!(after.contains("1,5,2026-11-03"), "{after}");

    // The deployed stack's schedule: {"maintain": "all"} on the modelling queue.
    let request = p.join("maintain.json");
    std::fs::write(&request, r#"{"maintain": "all"}"#).unwrap();
    floe()
        .args(["inject", "--to", "modelling", "--event"])
        .arg(&request)
        .arg("-p")
        .arg(p)
        .assert()
        .success();
    floe()
        .args(["up", "--once", "-p"])
        .arg(p)
        .assert()
        .success();
    floe()
        .args(["maintain", "bronze_shop.orders", "--dry-run", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("bronze_shop.orders: 1 files;"));
    assert_eq!(silver(p), after);

    floe()
        .args(["maintain", "silver_shop.nope", "-p"])
        .arg(p)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no table silver_shop.nope"));
    floe()
        .args(["maintain", "--keep-for", "soon", "--all", "-p"])
        .arg(p)
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a duration"));
}
