//! Gold models as a user runs them: `floe init`'s sample project builds its generated and
//! hand-written models through the event chain (silver publish -> modelling -> audit -> gold
//! publish); a failing data test keeps the published version and calls the webhook; `floe
//! retry` publishes after the fix; an insert_by_chunk build killed half way resumes; `floe plan`
//! runs nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn floe() -> Command {
    let mut c = Command::cargo_bin("floe").unwrap();
    c.env_remove("FLOE_PROJECT")
        .env_remove("FLOE_CRASH_AT")
        .env_remove("FLOE_SKIP_CHUNK");
    c
}

fn init() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("gold-project");
    floe()
        .arg("init")
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("0 dead-lettered"));
    (dir, project)
}

fn query(project: &Path, sql: &str) -> serde_json::Value {
    let out = floe()
        .args(["query", "--format", "json", "-p"])
        .arg(project)
        .arg(sql)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn current_snapshot(project: &Path, table: &str) -> i64 {
    let out = floe()
        .args(["history", table, "--format", "json", "-p"])
        .arg(project)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|s| s["is_current"] == true)
        .and_then(|s| s["snapshot_id"].as_i64())
        .expect("a published snapshot")
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} holds no '{from}'", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

#[test]
fn sample_models_publish_through_the_event_chain_and_plan_runs_nothing() {
    let (_dir, project) = init();
    let plan = floe()
        .args(["plan", "--json", "-p"])
        .arg(&project)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    let models = plan.as_array().unwrap();
    let generated = models
        .iter()
        .filter(|m| m["origin"]["kind"] == "generated")
        .count();
    let written = models
        .iter()
        .filter(|m| m["origin"]["kind"] == "written")
        .count();
    assert!(
        generated >= 3 && written >= 3,
        "{generated} generated, {written} written"
    );
    // Every model was published by the chain `floe init` ran, and reads back.
    for m in models {
        let relation = m["relation"].as_str().unwrap();
        let rows = query(&project, &format!("select count(*) as n from {relation}"));
        assert!(rows[0]["n"].as_i64().unwrap() > 0, "{relation} is empty");
    }
    let bands = query(
        &project,
        "select risk_band, people from gold.risk_summary order by risk_band",
    );
    assert_eq!(
        bands,
        serde_json::json!([{"risk_band": "high", "people": 1}, {"risk_band": "low", "people": 1}, {"risk_band": "medium", "people": 2}])
    );
    let runs = query(
        &project,
        "select count(distinct model) as n from floe_audit.model_runs where status = 'success'",
    );
    assert_eq!(runs[0]["n"].as_u64().unwrap() as usize, models.len());
    // Each run record has what its build scanned (the chain's stages count it).
    let scanned = query(
        &project,
        "select count(*) as missing, sum(bytes_scanned) as total from floe_audit.model_runs where status = 'success' and bytes_scanned is null \
         union all select 0, sum(bytes_scanned) from floe_audit.model_runs where status = 'success'",
    );
    assert_eq!(scanned[0]["missing"], 0, "{scanned}");
    assert!(scanned[1]["total"].as_i64().unwrap() > 0, "{scanned}");
    // Its estimate: every input is built, so each model has bytes and (views apart) a bill of
    // 10 MB at least.
    for m in models {
        assert!(m["estimated_bytes_read"].as_u64().is_some(), "{m}");
        let billed = m["estimated_billed_bytes"].as_u64().unwrap();
        if m["materialized"]["kind"] == "view" || m["materialized"] == "view" {
            assert_eq!(billed, 0, "{m}");
        } else {
            assert!(billed >= 10 << 20, "{m}");
            assert!(m["estimated_usd"].as_f64().unwrap() > 0.0, "{m}");
        }
    }

    // plan shows the DAG and the SQL, and changes nothing.
    let before = current_snapshot(&project, "gold.dim_person");
    floe()
        .args(["plan", "-s", "+latest_risk", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing is run"))
        .stdout(predicate::str::contains(
            "== gold.latest_risk [incremental]",
        ))
        .stdout(predicate::str::contains("reads: dim_person"))
        .stdout(predicate::str::contains("WHERE NOT EXISTS"))
        .stdout(predicate::str::contains("Athena bills"))
        .stdout(predicate::str::contains(
            "total (3 of 3 models with built inputs)",
        ))
        .stdout(predicate::str::contains("== gold.risk_summary").not());
    assert_eq!(current_snapshot(&project, "gold.dim_person"), before);
    // A unit test whose expectation the model does not meet fails, naming the rows.
    edit(
        &project.join("models/schema.yaml"),
        "{person_id: 2, risk_band: medium}",
        "{person_id: 2, risk_band: high}",
    );
    floe()
        .args(["test", "-s", "dim_person", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stdout(predicate::str::contains("FAIL unit risk_bands_cover_every_score (dim_person, models/schema.yaml): expected rows not returned: [{\"person_id\":2,\"risk_band\":\"high\"}]"))
        .stdout(predicate::str::contains("PASS gold.dim_person unique(person_id)"));
    floe()
        .args(["plan", "-s", "dim_persn", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains("did you mean 'dim_person'"));
}

/// A one-shot HTTP server on loopback: returns its URL and the body of the request it gets.
fn webhook_server() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .unwrap();
                    tx.send(text).unwrap();
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn a_failing_test_keeps_the_published_gold_notifies_and_retry_publishes_after_the_fix() {
    let (_dir, project) = init();
    let (url, received) = webhook_server();
    std::fs::write(
        project.join("floe.yaml"),
        std::fs::read_to_string(project.join("floe.yaml")).unwrap()
            + &format!("notify:\n  webhook: {url}\n"),
    )
    .unwrap();
    let published = current_snapshot(&project, "gold.dim_person");
    // 'high' is no longer accepted: one person has a high risk score.
    let schema = project.join("models/schema.yaml");
    edit(
        &schema,
        "values: [low, medium, high, unknown]",
        "values: [low, medium, unknown]",
    );
    floe()
        .args(["run", "-s", "dim_person+", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stdout(predicate::str::contains(
            "tests failed for gold.dim_person: accepted_values(risk_band) (1 rows)",
        ))
        .stdout(predicate::str::contains(
            "not publishing gold.person_addresses",
        ))
        .stderr(predicate::str::contains("floe retry"));
    assert_eq!(
        current_snapshot(&project, "gold.dim_person"),
        published,
        "readers still see the version published before"
    );
    let failures = query(
        &project,
        "select model, test, failing_rows from floe_audit.test_failures",
    );
    assert_eq!(
        failures,
        serde_json::json!([{"model": "dim_person", "test": "accepted_values(risk_band)", "failing_rows": 1}])
    );
    let request = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the webhook was called");
    assert!(request.starts_with("POST /hook"), "{request}");
    assert!(
        request.contains("\"text\":\":x: floe: gold.dim_person was not published"),
        "{request}"
    );
    assert!(request.contains("accepted_values(risk_band)"), "{request}");

    // The fix, then retry: the failed model and its descendants are built and published.
    edit(
        &schema,
        "values: [low, medium, unknown]",
        "values: [low, medium, high, unknown]",
    );
    floe()
        .args(["retry", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("retrying dim_person"))
        .stdout(predicate::str::contains("published gold.dim_person"))
        .stdout(predicate::str::contains("published gold.person_addresses"));
    assert_ne!(current_snapshot(&project, "gold.dim_person"), published);
    floe()
        .args(["retry", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to retry"));
    floe()
        .args(["test", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "PASS gold.dim_person accepted_values(risk_band)",
        ))
        .stdout(predicate::str::contains(
            "PASS unit risk_bands_cover_every_score",
        ));
}

#[test]
fn insert_by_chunk_resumes_after_a_kill_and_catches_a_lost_chunk() {
    let (_dir, project) = init();
    // One chunk at a time, so "killed after chunk 1" is exact.
    edit(
        &project.join("floe.yaml"),
        "concurrency: 4",
        "concurrency: 1",
    );
    floe()
        .args(["run", "-s", "risk_history", "-p"])
        .arg(&project)
        .env("FLOE_CRASH_AT", "chunk:risk_history:1")
        .assert()
        .code(86)
        .stdout(predicate::str::contains("risk_history: chunk 1/2"));
    floe()
        .args(["retry", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "risk_history: chunk 1/2 [2026-11-01 00:00:00, 2026-11-02 00:00:00) written by an earlier attempt",
        ))
        .stdout(predicate::str::contains(
            "risk_history: chunk 2/2 [2026-11-02 00:00:00, 2026-11-03 00:00:00) (3 rows)",
        ))
        .stdout(predicate::str::contains("published gold.risk_history"));
    let rows = query(&project, "select count(*) as n from gold.risk_history");
    assert_eq!(rows[0]["n"], 7);

    let published = current_snapshot(&project, "gold.risk_history");
    floe()
        .args(["run", "-s", "risk_history", "-p"])
        .arg(&project)
        .env("FLOE_SKIP_CHUNK", "risk_history:2")
        .assert()
        .failure()
        .stdout(predicate::str::contains(
            "the completeness check 'rows in equal rows out (7)' failed",
        ));
    assert_eq!(current_snapshot(&project, "gold.risk_history"), published);
    let events = std::fs::read_to_string(project.join(".floe/events.jsonl")).unwrap();
    let failed = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["detail_type"] == "floe.failed" && e["detail"]["model"] == "risk_history")
        .expect("floe.failed for the model that did not build");
    assert!(
        failed["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("completeness check"),
        "{failed}"
    );
}

#[test]
fn a_pull_request_builds_only_what_changed_into_dev_deferring_to_production() {
    let (_dir, project) = init();
    let workflow = std::fs::read_to_string(project.join(".github/workflows/floe.yml")).unwrap();
    assert!(
        workflow.contains(
            "floe run --select 'state:modified+' --state prod-state --target dev --defer"
        ),
        "{workflow}"
    );
    assert!(workflow.contains("if: failure()"), "{workflow}");
    // A production run leaves its manifest; the "pull request" changes one model.
    floe().args(["run", "-p"]).arg(&project).assert().success();
    let state = project.join("prod-state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        project.join(".floe/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    edit(
        &project.join("models/dim_person.sql"),
        "  current_since\n",
        "  current_since,\n  first_name || ' ' || last_name AS full_name\n",
    );
    let plan = floe()
        .args(["plan", "--json", "-s", "state:modified+", "--state"])
        .arg(&state)
        .arg("-p")
        .arg(&project)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    let names: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "dim_person",
            "latest_risk",
            "person_addresses",
            "risk_summary"
        ]
    );
    let prod = current_snapshot(&project, "gold.dim_person");
    floe()
        .args([
            "run",
            "-s",
            "state:modified+",
            "--target",
            "dev",
            "--defer",
            "--state",
        ])
        .arg(&state)
        .arg("-p")
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("4 model(s) into gold_dev"))
        .stdout(predicate::str::contains("published gold_dev.dim_person"));
    let dev = query(
        &project,
        "select full_name from gold_dev.dim_person where person_id = 1",
    );
    assert_eq!(dev, serde_json::json!([{"full_name": "Ada Lovelace"}]));
    assert_eq!(
        current_snapshot(&project, "gold.dim_person"),
        prod,
        "production is untouched"
    );
}

#[test]
fn a_broken_model_never_blocks_silver_and_names_its_file_and_line() {
    let (_dir, project) = init();
    std::fs::write(
        project.join("models/broken.sql"),
        "SELECT *\nFROM {{ ref('dim_persn') }}\n",
    )
    .unwrap();
    floe()
        .args(["validate", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains("models/broken.sql:2:1"));
    floe()
        .args(["plan", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "models/broken.sql:2:1: there is no model 'dim_persn' (did you mean 'dim_person'?)",
        ));
    let file = project.join("samples/nomis/people/2026-11-02T06:00:00Z/people.csv");
    floe()
        .args([
            "land",
            "--table",
            "nomis.people",
            "--extract-ts",
            "2026-11-03T06:00:00Z",
            "--wait",
            "-p",
        ])
        .arg(&project)
        .arg(&file)
        .assert()
        .failure()
        .stdout(predicate::str::contains("published silver_nomis.people"))
        .stdout(predicate::str::contains(
            "dead-lettered on modelling: 1 configuration error:",
        ))
        .stdout(predicate::str::contains("models/broken.sql:2:1"));
}
