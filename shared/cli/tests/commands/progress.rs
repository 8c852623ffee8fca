//! Progress of long work: plain lines on a piped stderr every `FLOE_PROGRESS_SECS`, a redrawn
//! line on a terminal (a pseudo-terminal from util-linux's `script`), and in both cases the
//! command's own lines on stdout unchanged.

use std::path::Path;

use crate::cli::floe;

fn sample_project(dir: &Path) -> std::path::PathBuf {
    let project = dir.join("p");
    floe().arg("init").arg(&project).assert().success();
    project
}

fn sample(project: &Path) -> std::path::PathBuf {
    project.join("samples/nomis/people/2026-11-01T06:00:00Z/people.csv")
}

#[test]
fn a_piped_stderr_gets_plain_progress_lines_for_long_steps() {
    let dir = tempfile::tempdir().unwrap();
    let project = sample_project(dir.path());
    let out = floe()
        .env("FLOE_PROGRESS_SECS", "0.05")
        .args(["land", "--table", "nomis.people", "--wait", "-p"])
        .arg(&project)
        .arg(sample(&project))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    // Every stage takes longer than 50 ms here; each says what it handles.
    assert!(
        stderr.contains("  ... standardise landing/nomis/people/"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape codes on a pipe: {stderr:?}"
    );
    assert!(
        !stdout.contains("  ... "),
        "progress stays off stdout: {stdout}"
    );
    assert!(stdout.contains("1 file(s) landed"), "{stdout}");

    // Off with 0.
    let out = floe()
        .env("FLOE_PROGRESS_SECS", "0")
        .args([
            "land",
            "--table",
            "nomis.people",
            "--wait",
            "--extract-ts",
            "2026-11-02T06:00:00Z",
            "-p",
        ])
        .arg(&project)
        .arg(sample(&project))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!stderr.contains("  ... "), "{stderr}");
}

#[test]
fn a_terminal_gets_a_redrawn_progress_line() {
    let dir = tempfile::tempdir().unwrap();
    let project = sample_project(dir.path());
    // An extract big enough that reading it takes a while.
    let big = dir.path().join("people.csv");
    let mut csv =
        String::from("person_id,first_name,last_name,date_of_birth,risk_score,updated_at\n");
    for i in 1..=200_000 {
        csv.push_str(&format!(
            "{i},Ann{},Smith{},1980-01-{:02},{}.25,2026-11-01 06:00:00\n",
            i % 97,
            i % 89,
            1 + i % 28,
            i % 99
        ));
    }
    std::fs::write(&big, csv).unwrap();
    let floe_bin = assert_cmd::cargo::cargo_bin("floe");
    let command = format!(
        "{} land --table nomis.people --wait -p {} {}",
        floe_bin.display(),
        project.display(),
        big.display()
    );
    // `script` runs the command on a pseudo-terminal and copies what it shows to stdout.
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_remove("FLOE_PROJECT")
        .env("COLUMNS", "160")
        .output()
        .expect("util-linux's script runs (Debian: bsdutils)");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    // The progress line names the stage and what it handles, drawn with cursor moves, and the
    // command's own lines are all there.
    assert!(shown.contains("landing landing/nomis/people/"), "{shown}");
    assert!(
        shown.contains(" of "),
        "bytes done of the file's size: {shown}"
    );
    assert!(shown.contains(" rows, "), "rows read: {shown}");
    assert!(
        shown.contains("\u{1b}["),
        "drawn with escape codes: {shown:?}"
    );
    assert!(shown.contains("1 file(s) landed"), "{shown}");
    assert!(shown.contains("published silver_nomis.people"), "{shown}");
}
