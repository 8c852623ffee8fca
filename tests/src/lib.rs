//! Helpers shared by the workspace-level tests.
//!
//! # Layout
//! - [`pyiceberg`]: runs `tests/python/read_lake.py` with the test venv's Python, or says why it
//!   cannot (and fails instead of skipping when `FLOE_REQUIRE_PYICEBERG=1`, as in CI).
//! - [`rows_as_strings`]: query results in the same shape the Python reader prints.
//! - [`athena_sql_check`]: the sqlglot/DuckDB checker of the Athena SQL floe renders.
//! - [`aws`]: a moto server and a freshly named set of buckets, queues and rules on it.
//! - [`athena_local`]: the Athena stand-in (moto + Trino) and fresh lakes on it.
//! - [`chain`]: the four stage services over a world's queues, as Lambda would run them.
//! - [`scripted`]: a scripted AWS JSON endpoint (paging, throttling, queries that never end).

pub mod athena_local;
pub mod aws;
pub mod chain;
pub mod scripted;

use std::path::{Path, PathBuf};
use std::process::Command;

use datafusion::arrow::array::RecordBatch;

/// The Python with pyiceberg, or the reason there is none.
pub fn python() -> Result<PathBuf, String> {
    let candidate = std::env::var_os("FLOE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import pyiceberg, pyarrow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Ok(candidate)
    } else {
        Err(format!(
            "no Python with pyiceberg at {} (run scripts/setup.sh, or set FLOE_PYTHON)",
            candidate.display()
        ))
    }
}

/// The Python to use, or `None` after saying that the test is skipped. Panics instead when
/// `FLOE_REQUIRE_PYICEBERG=1`: in CI an absent reader is a failure, not a pass.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    match python() {
        Ok(p) => Some(p),
        Err(why) if std::env::var("FLOE_REQUIRE_PYICEBERG").as_deref() == Ok("1") => {
            panic!("{test}: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Reads tables with pyiceberg; returns the script's JSON.
pub fn pyiceberg_read(python: &Path, lake: &Path, tables: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/read_lake.py");
    let out = Command::new(python)
        .arg(script)
        .arg(lake)
        .args(tables)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pyiceberg failed to read the lake:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reader prints JSON")
}

/// Runs `tests/python/athena_sql.py` (sqlglot + DuckDB) on a job and returns its JSON; fails
/// the test with the checker's message when a statement does not parse or run.
pub fn athena_sql_check(python: &Path, job: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/athena_sql.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("a stdin")
        .write_all(job.to_string().as_bytes())
        .expect("the job is written");
    let out = child.wait_with_output().expect("the checker ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// The rows the Python reader printed for one table (`rows` or `rows_at.<id>`).
pub fn json_rows(v: &serde_json::Value) -> Vec<Vec<Option<String>>> {
    v.as_array()
        .expect("rows are a list")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("a row is a list")
                .iter()
                .map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Each row as one string, its values joined by `sep` (NULL as `null`): a compact way to
/// compare a query's rows.
pub fn rows_joined(batches: &[RecordBatch], sep: &str, null: &str) -> Vec<String> {
    rows_as_strings(batches)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| null.to_owned()))
                .collect::<Vec<_>>()
                .join(sep)
        })
        .collect()
}

/// Rows as sorted lists of display strings (NULL as `None`), comparable with the Python reader.
pub fn rows_as_strings(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = floe_testkit::rows_as_values(batches);
    out.sort_by(|a, b| {
        let key = |r: &Vec<Option<String>>| {
            r.iter()
                .map(|x| x.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        key(a).cmp(&key(b))
    });
    out
}
