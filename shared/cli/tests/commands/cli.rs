//! The `floe` binary as a user runs it: init, validate, query (with time travel and formats),
//! history, and the errors a user meets.

use assert_cmd::Command;
use predicates::prelude::*;

pub(crate) fn floe() -> Command {
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
        .stdout(predicate::str::contains("-> bronze_nomis.people"))
        .stdout(predicate::str::contains("3 file(s) landed, "))
        .stdout(predicate::str::contains("published silver_nomis.addresses"))
        .stdout(predicate::str::contains("published gold.dim_person"));
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
    // An extract time the engines cannot store is refused before anything is copied.
    let file = project.join("late.csv");
    std::fs::write(&file, "person_id,first_name\n1,Ada\n").unwrap();
    land_at(&project, &file, "9999-12-31T23:59:59Z")
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains(
            "outside the instants floe stores (1677-09-22 to 2262-04-10)",
        ));
    assert!(
        !project
            .join("landing/nomis/people/9999-12-31T23:59:59Z")
            .exists(),
        "nothing landed"
    );
    // A file over the table's max_file_mb is refused before it is copied.
    let tables = project.join("tables/nomis.yaml");
    let yaml = std::fs::read_to_string(&tables).unwrap();
    std::fs::write(
        &tables,
        yaml.replacen(
            "primary_key: [person_id]",
            "primary_key: [person_id]\n    max_file_mb: 1",
            1,
        ),
    )
    .unwrap();
    let big = project.join("big.csv");
    std::fs::write(
        &big,
        format!("person_id,first_name\n{}", "1,Ada\n".repeat(300_000)),
    )
    .unwrap();
    land_at(&project, &big, "2026-11-09T06:00:00Z")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "is 2 MiB, over max_file_mb (1) for nomis.people",
        ))
        .stderr(predicate::str::contains("nothing was copied"));
    assert!(
        !project
            .join("landing/nomis/people/2026-11-09T06:00:00Z")
            .exists()
    );
    std::fs::write(&tables, yaml).unwrap();
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

pub(crate) fn query_csv(project: &std::path::Path, sql: &str) -> String {
    let out = floe()
        .args(["query", "--format", "csv", "-p"])
        .arg(project)
        .arg(sql)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

const HISTORY: &str = "select person_id, first_name, risk_score, valid_from, valid_to, is_current from silver_nomis.people order by person_id, valid_from";

fn empty_project() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    floe()
        .arg("init")
        .arg(&project)
        .arg("--no-sample")
        .assert()
        .success();
    (dir, project)
}

/// `floe land FILE --table nomis.people --extract-ts TS -p PROJECT` (add `--wait` to wait).
fn land_at(project: &std::path::Path, file: &std::path::Path, ts: &str) -> Command {
    let mut c = floe();
    c.args(["land", "--table", "nomis.people", "--extract-ts", ts, "-p"])
        .arg(project)
        .arg(file);
    c
}

/// `floe land --wait` of the sample extract of day `day`.
fn land_cmd(project: &std::path::Path, day: u32) -> Command {
    let file = project.join(format!(
        "samples/nomis/people/2026-11-{day:02}T06:00:00Z/people.csv"
    ));
    let mut c = land_at(project, &file, &format!("2026-11-{day:02}T06:00:00Z"));
    c.arg("--wait");
    c
}

fn land(project: &std::path::Path, day: u32) -> assert_cmd::assert::Assert {
    land_cmd(project, day).assert()
}

#[test]
fn land_and_wait_publishes_silver() {
    let (_dir, project) = empty_project();
    land(&project, 1)
        .success()
        .stdout(predicate::str::contains("published silver_nomis.people"));
    land(&project, 2)
        .success()
        .stdout(predicate::str::contains("1 file(s) landed, "))
        .stdout(predicate::str::contains("published silver_nomis.people"));
    let history = query_csv(&project, HISTORY);
    assert!(
        history.contains("1,Ada,12.50,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false"),
        "{history}"
    );
    assert!(
        history.contains("4,Edsger,7.25,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false"),
        "{history}"
    );
    assert!(
        history.contains("5,Barbara,5.00,2026-11-02T06:00:00Z,,true"),
        "{history}"
    );
    // A bad file: quarantined, reported, and the command fails.
    let bad = project.join("bad.csv");
    std::fs::write(
        &bad,
        "person_id,first_name,last_name,date_of_birth,risk_score,updated_at\nx,A,B,,,\n",
    )
    .unwrap();
    floe()
        .args(["land", "--table", "nomis.people", "--wait", "-p"])
        .arg(&project)
        .arg(&bad)
        .assert()
        .failure()
        .stdout(predicate::str::contains("1 quarantined"))
        .stderr(predicate::str::contains("need attention"));
}

#[test]
fn a_killed_runner_resumes_to_the_same_tables_and_readers_never_see_a_partial_write() {
    // The reference: an uninterrupted run, with the published history after each extract.
    let (_a, reference) = empty_project();
    land(&reference, 1).success();
    let after_first = query_csv(&reference, HISTORY);
    land(&reference, 2).success();
    let expected = query_csv(&reference, HISTORY);
    assert_ne!(after_first, expected);

    for point in [
        "after_bronze_commit",
        "commit:silver_nomis.people",
        "before_publish",
    ] {
        let (_b, project) = empty_project();
        land(&project, 1).success();
        land_cmd(&project, 2)
            .env("FLOE_CRASH_AT", point)
            .assert()
            .code(86);
        // Killed mid-way: readers see the last published history, whole.
        assert_eq!(
            query_csv(&project, HISTORY),
            after_first,
            "after a crash at {point}"
        );
        floe()
            .args(["up", "--once", "-p"])
            .arg(&project)
            .assert()
            .success();
        assert_eq!(
            query_csv(&project, HISTORY),
            expected,
            "after resuming from a crash at {point}"
        );
    }
}

#[test]
fn the_next_land_wait_takes_over_what_a_killed_one_held() {
    // Day 3's extract is day 2's file delivered again the next day.
    let day3 = |project: &std::path::Path| {
        let file = project.join("samples/nomis/people/2026-11-02T06:00:00Z/people.csv");
        let mut c = land_at(project, &file, "2026-11-03T06:00:00Z");
        c.arg("--wait");
        c
    };
    let (_a, reference) = empty_project();
    land(&reference, 1).success();
    land(&reference, 2).success();
    day3(&reference).assert().success();
    let expected = query_csv(&reference, HISTORY);

    let (_b, project) = empty_project();
    land(&project, 1).success();
    // Killed while it held the standardise message of day 2.
    land_cmd(&project, 2)
        .env("FLOE_CRASH_AT", "commit:silver_nomis.people")
        .assert()
        .code(86);
    // The next `land --wait` finds the dead process's message and processes it with its own,
    // instead of waiting out its five-minute visibility timeout.
    day3(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("waiting for").not());
    assert_eq!(query_csv(&project, HISTORY), expected);
}

#[test]
fn demo_runs_the_whole_chain_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    floe()
        .args(["demo", "--people", "40", "--days", "3", "--dir"])
        .arg(&demo)
        .assert()
        .success()
        .stdout(predicate::str::contains("summary:"))
        .stdout(predicate::str::contains("nomis.people"))
        .stdout(predicate::str::contains("delius.case_events"))
        .stdout(predicate::str::contains("1 quarantined"))
        .stdout(predicate::str::contains("'2O' is not a valid bigint"));
    let current = query_csv(
        &demo,
        "select count(*) as n from silver_nomis.people where is_current",
    );
    assert!(current.starts_with("n\n"), "{current}");
    assert_ne!(current, "n\n0\n");
}

#[test]
fn up_watches_the_landing_folder_until_stopped() {
    let (_dir, project) = empty_project();
    let mut up = std::process::Command::new(assert_cmd::cargo::cargo_bin("floe"))
        .args(["up", "--interval", "0.2", "-p"])
        .arg(&project)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A source system drops a file into the landing folder.
    let key = project.join("landing/nomis/people/2026-11-01T06:00:00Z/people.csv");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::copy(
        project.join("samples/nomis/people/2026-11-01T06:00:00Z/people.csv"),
        &key,
    )
    .unwrap();
    let mut published = false;
    for _ in 0..150 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = floe()
            .args(["query", "--format", "csv", "-p"])
            .arg(&project)
            .arg("select count(*) as n from silver_nomis.people")
            .output()
            .unwrap();
        if out.status.success() && String::from_utf8_lossy(&out.stdout) == "n\n4\n" {
            published = true;
            break;
        }
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(
        published,
        "floe up did not publish the dropped file within 30 s"
    );
}

#[test]
fn up_once_processes_files_nobody_announced_and_clears_stale_copies() {
    let (_dir, project) = empty_project();
    // A file copied into landing by hand (or by a `floe land` killed after its copy): nobody
    // announced it, and it was written a moment ago.
    let key = project.join("landing/nomis/people/2026-11-01T06:00:00Z/people.csv");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::copy(
        project.join("samples/nomis/people/2026-11-01T06:00:00Z/people.csv"),
        &key,
    )
    .unwrap();
    // A half-written copy a killed `floe land` left behind an hour ago, and one being written now.
    let stale = key.parent().unwrap().join(".0123456789abcdef.tmp");
    let fresh = key.parent().unwrap().join(".fedcba9876543210.tmp");
    std::fs::write(&stale, "person_id\n").unwrap();
    std::fs::write(&fresh, "person_id\n").unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(touched.success());
    floe()
        .args(["up", "--once", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "new file landing/nomis/people/2026-11-01T06:00:00Z/people.csv",
        ))
        .stdout(predicate::str::contains("removed 1 stale temporary file"));
    assert_eq!(
        query_csv(&project, "select count(*) as n from silver_nomis.people"),
        "n\n4\n"
    );
    assert!(!stale.exists(), "the stale copy is gone");
    assert!(fresh.exists(), "a copy still being written is left alone");
}

#[test]
fn redrive_moves_dead_letters_back_and_names_bad_queues() {
    let (_dir, project) = empty_project();
    floe()
        .args(["redrive", "--queue", "standardise", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "moved 0 message(s) from standardise-dlq back to standardise",
        ));
    floe()
        .args(["redrive", "--queue", "modeling", "-p"])
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "unknown queue 'modeling': use one of landing, standardise, audit, modelling",
        ));
}

#[test]
fn inject_checks_every_event_before_sending_and_up_processes_them() {
    let (_dir, project) = empty_project();
    // A landed file announced by hand: the replay of a lost S3 event.
    let key = "landing/nomis/people/2026-11-01T06:00:00Z/people.csv";
    let landed = project.join(key);
    std::fs::create_dir_all(landed.parent().unwrap()).unwrap();
    std::fs::copy(
        project.join("samples/nomis/people/2026-11-01T06:00:00Z/people.csv"),
        &landed,
    )
    .unwrap();
    let event = serde_json::json!({
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "landing"}, "object": {"key": key, "etag": "by-hand"}}
    });
    let file = project.join("replay.jsonl");
    std::fs::write(&file, format!("{event}\n{{\"stage\": \"audit\"}}\n")).unwrap();
    floe()
        .args(["inject", "--to", "landing", "--event"])
        .arg(&file)
        .arg("-p")
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "replay.jsonl event 2: not a message the landing stage takes; nothing was sent",
        ));
    std::fs::write(&file, format!("{event}\n")).unwrap();
    floe()
        .args(["inject", "--to", "landing", "--event"])
        .arg(&file)
        .arg("-p")
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("to the landing queue"));
    floe()
        .args(["up", "--once", "-p"])
        .arg(&project)
        .assert()
        .success()
        .stdout(predicate::str::contains("published silver_nomis.people"));
    floe()
        .args(["inject", "--to", "modeling", "--event"])
        .arg(&file)
        .arg("-p")
        .arg(&project)
        .assert()
        .failure()
        .stderr(predicate::str::contains("'modeling' is not a stage"));
}

#[test]
fn a_closed_pipe_ends_quietly_and_piped_logs_are_plain() {
    use std::io::Read;
    let (_dir, project) = init();
    // `floe query ... | head -c 100`: the reader goes away after a few bytes of a large result.
    for format in ["csv", "table", "json"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("floe"))
            .args(["query", "--format", format, "-p"])
            .arg(&project)
            .arg(
                "select p.*, q.first_name as q from silver_nomis.people p, silver_nomis.people q, \
                 silver_nomis.people r, silver_nomis.people s, silver_nomis.people t",
            )
            .env_remove("FLOE_PROJECT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        // stdout is dropped here: the pipe is closed.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
    }
    // Results are streamed: the first rows of 10^10 arrive at once, and the reader closing the
    // pipe ends the query (the whole result would never fit in memory, or finish).
    let values = (0..100)
        .map(|i| format!("({i})"))
        .collect::<Vec<_>>()
        .join(",");
    let huge = format!(
        "select a.x, b.x, c.x, d.x, e.x from (values {values}) a(x), (values {values}) b(x), \
         (values {values}) c(x), (values {values}) d(x), (values {values}) e(x)"
    );
    for format in ["csv", "table", "json"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("floe"))
            .args(["query", "--format", format, "-p"])
            .arg(&project)
            .arg(&huge)
            .env_remove("FLOE_PROJECT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut head = [0u8; 100];
            let _ = tx.send(stdout.read_exact(&mut head).map(|()| head));
        });
        // A liveness bound, not a speed one: a result held whole would never come.
        let head = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("{format}: no rows after 120 s: the result is not streamed")
            })
            .unwrap();
        assert!(String::from_utf8_lossy(&head).contains('0'), "{format}");
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{format}: {:?}", out.status);
    }
    // Logs to a pipe carry no colour codes.
    let run = floe()
        .env("FLOE_LOG", "debug")
        .args(["query", "-p"])
        .arg(&project)
        .arg("select count(*) from silver_nomis.people")
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(!stderr.is_empty(), "debug logs were written");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes in piped logs: {stderr:.300}"
    );
}
