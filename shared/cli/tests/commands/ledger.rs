//! The file ledger: `floe files` says where every file dropped in landing is, whatever happened
//! to it or to the process that was handling it.

use std::path::Path;

use predicates::prelude::*;

use crate::cli::floe;
use crate::drift::{configure, land, land_cmd, project};

const COLUMNS: &str = "      id: {type: bigint}\n      qty: {type: int}\n";

/// `floe files --format json` as (file name, status, why) per file.
fn files(p: &Path) -> Vec<(String, String, String)> {
    let out = floe()
        .args(["files", "--format", "json", "-p"])
        .arg(p)
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    rows.iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            let name = text("file").rsplit('/').next().unwrap().to_owned();
            (name, text("status"), text("why"))
        })
        .collect()
}

fn status_of(p: &Path, name: &str) -> (String, String) {
    let all = files(p);
    let (_, status, why) = all
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is not in the ledger: {all:?}"));
    (status.clone(), why.clone())
}

#[test]
fn every_file_dropped_in_landing_has_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    configure(p, COLUMNS);
    land(p, 1, "id,qty\n1,2\n").success();
    assert_eq!(status_of(p, "orders-1.csv").0, "published");

    // A bad file: quarantined, with the problem.
    land(p, 2, "id,qty\nx,2\n").failure();
    let (status, why) = status_of(p, "orders-2.csv");
    assert_eq!(status, "quarantined");
    assert!(why.contains("orders-2.csv:2"), "{why}");

    // A file copied into landing by hand, never announced: pending until `floe up --once`.
    let copied = p.join("landing/shop/orders/2026-11-03T06:00:00Z");
    std::fs::create_dir_all(&copied).unwrap();
    std::fs::write(copied.join("copied.csv"), "id,qty\n1,3\n").unwrap();
    assert_eq!(status_of(p, "copied.csv").0, "pending");

    // Killed before its ledger row was written, and killed before the publish.
    land_cmd(p, 4, "id,qty\n1,4\n")
        .env("FLOE_CRASH_AT", "commit:floe_audit.files")
        .assert()
        .code(86);
    assert_eq!(status_of(p, "orders-4.csv").0, "pending");
    land_cmd(p, 5, "id,qty\n1,5\n")
        .env("FLOE_CRASH_AT", "before_publish")
        .assert()
        .code(86);
    assert_eq!(status_of(p, "orders-5.csv").0, "landed");

    // A change the lake refuses: the message of every file on its way is dead-lettered (this
    // run's `land --wait` also takes over the two files the killed runs left), with the reason.
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: 'decimal(12,2)'}\n",
    );
    land(p, 6, "id,qty\n1,6\n")
        .failure()
        .stdout(predicate::str::contains("dead-lettered"));
    for name in ["orders-4.csv", "orders-5.csv", "orders-6.csv"] {
        let (status, why) = status_of(p, name);
        assert_eq!(status, "dead_lettered", "{name}");
        assert!(why.contains("floe migrate shop.orders"), "{name}: {why}");
    }

    // The change undone, the dead letters driven back: everything is accounted for.
    configure(p, COLUMNS);
    for queue in ["landing", "standardise"] {
        floe()
            .args(["redrive", "--queue", queue, "-p"])
            .arg(p)
            .assert()
            .success();
    }
    floe()
        .args(["up", "--once", "-p"])
        .arg(p)
        .assert()
        .success();
    let all = files(p);
    let by_status = |s: &str| -> Vec<String> {
        all.iter()
            .filter(|(_, st, _)| st == s)
            .map(|(n, _, _)| n.clone())
            .collect()
    };
    assert_eq!(
        by_status("published"),
        [
            "orders-1.csv",
            "copied.csv",
            "orders-4.csv",
            "orders-5.csv",
            "orders-6.csv"
        ],
        "{all:?}"
    );
    assert_eq!(by_status("quarantined"), ["orders-2.csv"]);
    assert_eq!(all.len(), 6, "{all:?}");
    // Every file in landing/ is in the list.
    let listed: Vec<String> = all.iter().map(|(n, _, _)| n.clone()).collect();
    for entry in walkdir(&p.join("landing")) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            assert!(listed.contains(&name), "{name} is missing from floe files");
        }
    }
    // Filters.
    floe()
        .args(["files", "--status", "quarantined", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("orders-2.csv"))
        .stdout(predicate::str::contains("orders-1.csv").not());
    floe()
        .args(["files", "orders-6", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("published"))
        .stdout(predicate::str::contains("orders-5").not());
    floe()
        .args(["files", "--table", "shop.other", "-p"])
        .arg(p)
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown table 'shop.other'"));
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}
