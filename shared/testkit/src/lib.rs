//! floe's shared test kit, for the suites of every crate (a dev-dependency only): a project
//! written to a temporary folder, the local pipeline over it with `land` / `drain` / `query`,
//! and query results as text. A suite states only what it is about (its tables and files); how
//! a project is laid out and opened is written once, here.
//!
//! ```ignore
//! let p = floe_testkit::spawn_project(&[("nomis", TABLES)]).await;
//! p.land("nomis.people", 1, "people.csv", b"person_id,name\n1,Ada\n").await;
//! let report = p.drain().await;
//! assert_eq!(p.query("select name from silver_nomis.people").await, ["Ada"]);
//! ```

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::ObjectRef;
use floe_core::ports::{Lake, ReadAt};
use floe_lake::LocalLake;
use floe_local::runtime::{Report, Runtime};

/// Writes a project's files (paths relative to its root) into a new temporary folder, with its
/// `tables/` folder; a `floe.yaml` naming the project `test` is added unless one is given.
pub fn write_project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("tables")).expect("the tables folder");
    if !files.iter().any(|(p, _)| *p == "floe.yaml") {
        std::fs::write(dir.path().join("floe.yaml"), "name: test\n").expect("floe.yaml");
    }
    for (path, text) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("the folder");
        std::fs::write(file, text).expect("the file");
    }
    dir
}

/// A project on disk with its local pipeline: the embedded lake and the durable queues.
pub struct LocalProject {
    /// The project's folder (removed when dropped).
    pub dir: tempfile::TempDir,
    /// Its lake.
    pub lake: Arc<LocalLake>,
    /// Its runtime.
    pub runtime: Runtime,
}

/// A project whose `tables/<source>.yaml` hold these sources' tables, and its local pipeline.
pub async fn spawn_project(sources: &[(&str, &str)]) -> LocalProject {
    let files: Vec<(String, &str)> = sources
        .iter()
        .map(|(source, yaml)| (format!("tables/{source}.yaml"), *yaml))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, y)| (p.as_str(), *y)).collect();
    open(write_project(&files)).await
}

/// The local pipeline of a project written with [`write_project`].
pub async fn open(dir: tempfile::TempDir) -> LocalProject {
    let project = Project::load(dir.path()).expect("the project loads");
    let lake = Arc::new(
        LocalLake::open(&project.settings.lake_dir)
            .await
            .expect("the lake opens"),
    );
    let runtime = Runtime::open(project, lake.clone())
        .await
        .expect("the runtime opens");
    LocalProject { dir, lake, runtime }
}

/// 06:00 UTC on day `day` of November 2026: the extract times the suites use.
pub fn november(day: u32) -> DateTime<Utc> {
    format!("2026-11-{day:02}T06:00:00Z")
        .parse()
        .expect("a valid day of November")
}

impl LocalProject {
    /// The project's folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Lands a file named `name` with `body` for `table` (`source.table`), extracted on day
    /// `day` of November 2026 (see [`november`]), as `floe land` does.
    pub async fn land(&self, table: &str, day: u32, name: &str, body: &[u8]) -> ObjectRef {
        self.land_at(table, november(day), name, body).await
    }

    /// Lands a file for `table` extracted at `extract_ts`.
    pub async fn land_at(
        &self,
        table: &str,
        extract_ts: DateTime<Utc>,
        name: &str,
        body: &[u8],
    ) -> ObjectRef {
        let file = self.root().join(name);
        std::fs::write(&file, body).expect("the file to land");
        self.runtime
            .land_file(&file, table, extract_ts)
            .await
            .expect("the file lands")
    }

    /// Processes every queued message, printing progress lines to stderr.
    pub async fn drain(&self) -> Report {
        self.runtime
            .drain(false, |m| eprintln!("{m}"))
            .await
            .expect("the queues drain")
    }

    /// A query's rows as text, columns joined by ` | `, NULL as `NULL`.
    pub async fn query(&self, sql: &str) -> Vec<String> {
        let batches = self
            .lake
            .query(sql, &ReadAt::Current)
            .await
            .expect("the query runs");
        rows_as_text(&batches)
    }

    /// The snapshot readers of `table` (`namespace.table`) see now.
    pub async fn current_snapshot(&self, table: &str) -> floe_core::ports::SnapshotInfo {
        self.lake
            .snapshots(&table.parse().expect("namespace.table"))
            .await
            .expect("the table's snapshots")
            .into_iter()
            .find(|s| s.is_current)
            .unwrap_or_else(|| panic!("{table} has no current snapshot"))
    }

    /// How each published version of `table` was computed (`floe.scd2-step`), oldest first.
    pub async fn published_steps(&self, table: &str) -> Vec<String> {
        self.lake
            .snapshots(&table.parse().expect("namespace.table"))
            .await
            .expect("the table's snapshots")
            .into_iter()
            .filter(|s| s.published)
            .map(|s| s.summary.get("floe.scd2-step").cloned().unwrap_or_default())
            .collect()
    }
}

/// Rows in order, each value as the engine displays it (NULL as `None`).
pub fn rows_as_values(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(r)).then(|| f.value(r).to_string()))
                    .collect(),
            );
        }
    }
    out
}

/// Rows as text, in order: columns joined by ` | `, NULL as `NULL`.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    rows_as_values(batches)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}
