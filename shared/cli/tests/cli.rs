//! The `floe` binary as a user runs it: init, validate, query (with time travel and formats),
//! history, and the errors a user meets.

use assert_cmd::Command;
use predicates::prelude::*;

fn floe() -> Command {
    let mut c = Command::cargo_bin("floe").unwrap();
    c.env_remove("FLOE_PROJECT");
    c
}

fn init() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo-project");
    floe()
        .arg("init")
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("created project 'demo_project'"))
        .stdout(predicate::str::contains("4 rows into bronze_nomis.people"));
    (dir, project)
}

#[test]
fn init_validate_and_query_work_as_documented() {
    let (_dir, project) = init();
    floe()
        .args(["validate", "--project"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 tables in 1 source, engine local",
        ))
        .stdout(predicate::str::contains("nomis.people"));
    floe()
        .args(["query", "--project"])
        .arg(&project)
        .arg("select first_name, risk_score from bronze_nomis.people where _extract_ts = timestamp '2026-11-02T06:00:00Z' order by person_id")
        .assert()
        .success()
        .stdout(predicate::str::contains("| Ada        | 15.00      |"))
        .stdout(predicate::str::contains("| Barbara    | 5.00       |"))
        .stdout(predicate::str::contains("(4 rows)"));
}

#[test]
fn query_formats_and_time_travel() {
    let (_dir, project) = init();
    let history = floe()
        .args(["history", "bronze_nomis.people", "--format", "json", "-p"])
        .arg(&project)
        .assert()
        .success();
    let snapshots: serde_json::Value =
        serde_json::from_slice(&history.get_output().stdout).unwrap();
    let snapshots = snapshots.as_array().unwrap();
    assert_eq!(snapshots.len(), 2);
    let first = snapshots[0]["snapshot_id"].as_i64().unwrap();
    let first_at = snapshots[0]["committed_at"].as_str().unwrap().to_owned();

    // The first snapshot holds the first extract only.
    floe()
        .args([
            "query",
            "--format",
            "csv",
            "--snapshot",
            &first.to_string(),
            "-p",
        ])
        .arg(&project)
        .arg("select count(*) as n from bronze_nomis.people")
        .assert()
        .success()
        .stdout("n\n4\n");
    floe()
        .args(["query", "--format", "json", "--as-of", &first_at, "-p"])
        .arg(&project)
        .arg("select count(*) as n from bronze_nomis.people")
        .assert()
        .success()
        .stdout("[{\"n\":4}]\n");
    floe()
        .args(["query", "--as-of", "2020-01-01", "-p"])
        .arg(&project)
        .arg("select * from bronze_nomis.people")
        .assert()
        .failure()
        .stderr(predicate::str::contains("has no version as of 2020-01-01"));
    floe()
        .args(["history", "bronze_nomis.people", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("append"))
        .stdout(predicate::str::contains("current"))
        .stdout(predicate::str::contains("(2 snapshots)"));
}

#[test]
fn user_errors_are_clear() {
    let (_dir, project) = init();
    floe()
        .args(["init"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains("already holds a floe project"));
    floe()
        .args(["history", "bronze_nomis.peple", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "did you mean 'bronze_nomis.people'",
        ));
    floe()
        .args(["query", "-p"])
        .arg(&project)
        .arg("select nope from bronze_nomis.people")
        .assert()
        .failure()
        .stderr(predicate::str::contains("SQL error").and(predicate::str::contains("nope")));
    floe()
        .args(["query", "-p"])
        .arg(&project)
        .arg("drop table bronze_nomis.people")
        .assert()
        .failure();
    // The table is still there.
    floe()
        .args(["query", "-p"])
        .arg(&project)
        .arg("select count(*) from bronze_nomis.people")
        .assert()
        .success();

    let tables = project.join("tables/nomis.yaml");
    let text = std::fs::read_to_string(&tables).unwrap();
    std::fs::write(
        &tables,
        text.replace("primary_key: [person_id]", "primary_key: [persn_id]"),
    )
    .unwrap();
    floe()
        .args(["validate", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains("tables/nomis.yaml:8:"))
        .stderr(predicate::str::contains(
            "field `tables.people.primary_key[0]`",
        ))
        .stderr(predicate::str::contains("did you mean 'person_id'"));
    floe()
        .args(["validate", "-p", "/nonexistent/floe-project"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("floe init"));
}
