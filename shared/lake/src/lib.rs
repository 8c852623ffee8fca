//! The embedded lake: Apache Iceberg tables on local disk, a SQL catalog on SQLite, and
//! DataFusion for SQL.
//!
//! One file (over 700 lines) because [`LocalLake`]'s methods share the catalog connection, the
//! commit loop and the snapshot bookkeeping; what stands alone (commits, the engine, queries,
//! schemas, orphans, in-memory SQL) is a module of its own.
//!
//! The catalog uses the layout of Iceberg's JDBC/SQL catalog (`iceberg_tables`,
//! `iceberg_namespace_properties`), so other Iceberg clients (pyiceberg, Spark, DuckDB) read the
//! same tables. Commits go through floe's own snapshot producer ([`commit`]) so that the lake can
//! append, overwrite, stage and publish atomically, which iceberg-rust 0.10 does not offer.
//!
//! # Layout
//! - `lib.rs`: [`LocalLake`], the [`Lake`] port over the catalog.
//! - [`commit`]: manifests, snapshots, metadata files and the pointer swap.
//! - `engine`: the DataFusion session every query runs in (with `floe_row_hash`).
//! - `query`: DataFusion sessions with every table pinned to one snapshot.
//! - `meter`: counts the bytes each statement's table scans read (the query log's measure).
//! - `schema`: Arrow <-> Iceberg schemas.
//! - `orphans`: files under a table that no snapshot references.
//! - [`memory`]: [`MemoryEngine`], SQL over rows held in memory (the `RowQuery` port).

pub mod commit;
mod delta;
mod engine;
pub mod memory;
mod meter;
mod orphans;
mod query;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use floe_core::ports::{
    Capabilities, CommitOutcome, Input, Lake, Maintenance, MaintenanceReport, ReadAt, SchemaEdit,
    SnapshotInfo, Write, WriteOptions,
};
use floe_core::{Error, Result, TableRef};
use futures::StreamExt;
use iceberg::arrow::{FieldMatchMode, schema_to_arrow_schema};
use iceberg::io::{FileIO, LocalFsStorageFactory};
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle,
    SqlCatalog, SqlCatalogBuilder,
};
use parquet::file::properties::WriterProperties;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use commit::{AttemptFiles, CommitKind};
pub use memory::MemoryEngine;
pub use orphans::OrphanReport;

/// A write past this many rows is shared out to one Parquet writer per core.
const PARALLEL_WRITE_ROWS: usize = 256 * 1024;
/// Rows handed to a writer at a time (slices of a larger batch share its buffers).
const SLICE_ROWS: usize = 64 * 1024;
/// The most writers one write runs at once.
const MAX_WRITERS: usize = 4;

/// One Parquet writer running on a task of its own, fed through a channel: what
/// `write_data_stream` shares a large write out to.
struct FileWriter {
    rows: tokio::sync::mpsc::Sender<RecordBatch>,
    done: tokio::task::JoinHandle<Result<Vec<DataFile>>>,
}

impl FileWriter {
    /// Starts a writer of `table`'s data files, their names starting with `name_prefix`.
    fn spawn(table: &Table, name_prefix: String) -> Self {
        let (rows, mut incoming) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let table = table.clone();
        let done = tokio::spawn(async move {
            let md = table.metadata();
            let props = WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let parquet = ParquetWriterBuilder::new(props, md.current_schema().clone())
                .with_match_mode(FieldMatchMode::Name);
            let rolling = RollingFileWriterBuilder::new_with_default_file_size(
                parquet,
                table.file_io().clone(),
                DefaultLocationGenerator::new(md).map_err(ice("locating data files"))?,
                DefaultFileNameGenerator::new(name_prefix, None, DataFileFormat::Parquet),
            );
            let mut writer = DataFileWriterBuilder::new(rolling)
                .build(None)
                .await
                .map_err(ice("opening a data file"))?;
            let mut result = Ok(());
            while let Some(b) = incoming.recv().await {
                result = writer.write(b).await.map_err(ice("writing a data file"));
                if result.is_err() {
                    break;
                }
            }
            // Closing the channel tells the sender this writer stopped.
            drop(incoming);
            let closed = writer.close().await.map_err(ice("closing a data file"));
            match (result, closed) {
                (Ok(()), Ok(files)) => Ok(files),
                (Err(e), Ok(files)) => {
                    AttemptFiles(files.iter().map(|f| f.file_path().to_owned()).collect())
                        .remove(table.file_io())
                        .await;
                    Err(e)
                }
                (_, Err(e)) => Err(e),
            }
        });
        Self { rows, done }
    }

    /// Hands the writer rows; an error means it stopped (its `finish` says why).
    async fn send(&self, rows: RecordBatch) -> std::result::Result<(), ()> {
        self.rows.send(rows).await.map_err(|_| ())
    }

    /// Closes the writer's files and returns them.
    async fn finish(self) -> Result<Vec<DataFile>> {
        drop(self.rows);
        self.done
            .await
            .map_err(|e| Error::Internal(format!("a Parquet writer task failed: {e}")))?
    }
}

/// The outcome of a write whose batch `table` has committed already: nothing to do (a
/// redelivered message), answered before its rows are asked for.
fn replayed(table: &Table, options: &WriteOptions) -> Option<CommitOutcome> {
    let batch = options.batch_id.as_ref()?;
    commit::snapshot_of_batch(table.metadata(), batch.as_str()).map(|existing| CommitOutcome {
        snapshot_id: existing,
        already_committed: true,
        rows_added: 0,
        files_added: 0,
    })
}

/// Compaction rewrites a table whose files average at most this size.
const COMPACT_BELOW_BYTES: u64 = 64 * 1024 * 1024;
/// Orphan files younger than this may belong to a commit still running: left alone.
const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);

/// The catalog name recorded in every catalog row (pyiceberg: `SqlCatalog("floe", ...)`).
pub const CATALOG_NAME: &str = "floe";
/// The catalog database inside the lake folder.
pub const CATALOG_FILE: &str = "catalog.db";
/// How many times a commit that lost a race is rebuilt on the new table version.
const COMMIT_ATTEMPTS: u32 = 10;
/// The wait before a commit that lost a race is tried again on the new metadata.
const COMMIT_BACKOFF: floe_core::backoff::Backoff =
    floe_core::backoff::Backoff::new(Duration::from_millis(5), Duration::from_millis(500));

/// A failure to simulate inside a commit, after every file is written and before the pointer
/// swap: how the contract tests prove that a failed write leaves no trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The commit fails and cleans up after itself, as on an I/O error.
    FailBeforeSwap,
    /// The process "dies": nothing is cleaned up, files stay behind as orphans.
    CrashBeforeSwap,
}

/// The embedded lake in one folder: `catalog.db` plus one folder per namespace and table.
pub struct LocalLake {
    root: PathBuf,
    catalog: Arc<SqlCatalog>,
    pool: SqlitePool,
    io: FileIO,
    fault: Mutex<Option<Fault>>,
}

impl std::fmt::Debug for LocalLake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLake")
            .field("root", &self.root)
            .finish()
    }
}

/// Maps an iceberg error to floe's, saying what floe was doing.
pub(crate) fn ice(doing: &'static str) -> impl Fn(iceberg::Error) -> Error {
    move |e| {
        use iceberg::ErrorKind as K;
        let msg = format!("{doing}: {e}");
        match e.kind() {
            K::TableNotFound | K::NamespaceNotFound => Error::NotFound(msg),
            K::TableAlreadyExists | K::NamespaceAlreadyExists => Error::AlreadyExists(msg),
            // Another process created the same row between the catalog's check and its insert
            // (two runners on a new project): the thing exists, which is what was asked.
            _ if msg.contains("UNIQUE constraint failed") => Error::AlreadyExists(msg),
            K::CatalogCommitConflicts => Error::CommitConflict {
                table: "the catalog".into(),
                detail: msg,
            },
            _ if e.retryable() => Error::Transient(msg),
            // I/O hiccups and a busy catalog database pass; iceberg does not mark them retryable.
            _ if is_io(&e) || msg.contains("database is locked") || msg.contains("busy") => {
                Error::Transient(msg)
            }
            _ => Error::Internal(msg),
        }
    }
}

/// Runs a catalog call again while SQLite reports the catalog busy: the iceberg SQL catalog's
/// own connections have no busy timeout, so a second process opening or changing a new lake at
/// the same moment fails at once with "database is locked" otherwise. Gives up after ~30 s
/// (then the error stays transient, and a queue message is retried later).
async fn while_busy<T, F, Fut>(mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut delay = Duration::from_millis(10);
    loop {
        match call().await {
            Err(Error::Transient(m))
                if (m.contains("locked") || m.contains("busy"))
                    && std::time::Instant::now() < deadline =>
            {
                let jitter =
                    Duration::from_micros(u64::from(uuid::Uuid::new_v4().as_u128() as u16));
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// Whether an iceberg error was caused by an I/O error somewhere in its source chain.
fn is_io(e: &iceberg::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn sqlx_err(doing: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match &e {
        sqlx::Error::Database(d)
            if d.message().contains("locked") || d.message().contains("busy") =>
        {
            Error::Transient(format!("{doing}: {e}"))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => Error::Transient(format!("{doing}: {e}")),
        _ => Error::Internal(format!("{doing}: {e}")),
    }
}

fn ident(t: &TableRef) -> TableIdent {
    TableIdent::new(NamespaceIdent::new(t.namespace.clone()), t.name.clone())
}

impl LocalLake {
    /// Opens the lake in `dir`, creating the folder and the catalog if needed.
    pub async fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Config(format!(
                "cannot create the lake folder {}: {e}",
                dir.display()
            ))
        })?;
        let root = dir.canonicalize().map_err(|e| {
            Error::Config(format!(
                "cannot open the lake folder {}: {e}",
                dir.display()
            ))
        })?;
        let db = root.join(CATALOG_FILE);
        let uri = format!("sqlite://{}?mode=rwc", db.display());
        // WAL lets readers (floe query, pyiceberg) read while a commit writes.
        let options = SqliteConnectOptions::from_str(&uri)
            .map_err(sqlx_err("reading the catalog address"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        // Switching a new catalog to WAL takes the database for a moment: a second process
        // opening it then is told "locked" whatever the busy timeout.
        let pool = while_busy(|| async {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .map_err(sqlx_err("opening the catalog"))
        })
        .await?;
        let catalog = while_busy(|| async {
            SqlCatalogBuilder::default()
                .with_storage_factory(Arc::new(LocalFsStorageFactory))
                .load(
                    CATALOG_NAME,
                    HashMap::from([
                        (SQL_CATALOG_PROP_URI.to_string(), uri.clone()),
                        (
                            SQL_CATALOG_PROP_WAREHOUSE.to_string(),
                            format!("file://{}", root.display()),
                        ),
                        (
                            SQL_CATALOG_PROP_BIND_STYLE.to_string(),
                            SqlBindStyle::QMark.to_string(),
                        ),
                    ]),
                )
                .await
                .map_err(ice("opening the catalog"))
        })
        .await?;
        Ok(LocalLake {
            root,
            catalog: Arc::new(catalog),
            pool,
            io: FileIO::new_with_fs(),
            fault: Mutex::new(None),
        })
    }

    /// The lake folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the next commit fail at its last step (see [`Fault`]). For tests and drills.
    pub fn inject_fault(&self, fault: Fault) {
        *self.fault.lock().expect("fault lock") = Some(fault);
    }

    fn take_fault(&self) -> Option<Fault> {
        self.fault.lock().expect("fault lock").take()
    }

    pub(crate) async fn load(&self, t: &TableRef) -> Result<Table> {
        while_busy(|| async {
            self.catalog
                .load_table(&ident(t))
                .await
                .map_err(|e| match e.kind() {
                    iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound => {
                        Error::NotFound(format!("table {t} does not exist (`floe history` lists nothing for it; check the name)"))
                    }
                    _ => ice("loading a table")(e),
                })
        })
        .await
    }

    /// The folder a new table gets: `<lake>/<namespace>/<table>`, or a unique sibling if that
    /// folder is still in use (a renamed or staged table keeps its folder).
    fn new_location(&self, t: &TableRef) -> String {
        let base = self.root.join(&t.namespace).join(&t.name);
        let dir = if base.exists() {
            self.root.join(&t.namespace).join(format!(
                "{}-{}",
                t.name,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ))
        } else {
            base
        };
        format!("file://{}", dir.display())
    }

    async fn create_at(&self, t: &TableRef, schema: &SchemaRef, location: String) -> Result<()> {
        self.ensure_namespace(&t.namespace).await?;
        let iceberg_schema = schema::iceberg_schema(schema)?;
        while_busy(|| async {
            let creation = TableCreation::builder()
                .name(t.name.clone())
                .location(location.clone())
                .schema(iceberg_schema.clone())
                .properties(HashMap::from([(
                    "write.parquet.compression-codec".to_string(),
                    "zstd".to_string(),
                )]))
                .build();
            self.catalog
                .create_table(&NamespaceIdent::new(t.namespace.clone()), creation)
                .await
                .map_err(|e| match ice("creating a table")(e) {
                    Error::AlreadyExists(_) => Error::AlreadyExists(format!("table {t}")),
                    e => e,
                })
        })
        .await?;
        Ok(())
    }

    /// Creates a staging table for `live`: `<live>__staging_<id>`, with its files inside the live
    /// table's folder, ready for [`Lake::publish_table`].
    pub async fn create_staging_table(
        &self,
        live: &TableRef,
        schema: SchemaRef,
    ) -> Result<TableRef> {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let staged = TableRef::new(
            live.namespace.clone(),
            format!("{}__staging_{id}", live.name),
        )?;
        let location = match self.load(live).await {
            Ok(t) => format!("{}/staging/{id}", t.metadata().location()),
            // No live table yet: the staging table takes the folder the live one would get, and
            // publishing it is a rename.
            Err(Error::NotFound(_)) => self.new_location(live),
            Err(e) => return Err(e),
        };
        self.create_at(&staged, &schema, location).await?;
        Ok(staged)
    }

    /// Writes a stream of batches as Parquet data files of `table` as they come, so a query's
    /// rows never need to be in memory all at once. Nothing is committed; on an error the files
    /// written so far are removed.
    ///
    /// Encoding Parquet (compression, dictionaries, statistics) is most of a write's CPU: past
    /// [`PARALLEL_WRITE_ROWS`] rows the batches are cut into slices and shared out to one
    /// writer per core, each on a task of its own writing its own files, so a large write uses
    /// every core while the producer (a query, a file's parser) goes on. A small write stays one
    /// file.
    async fn write_data_stream(
        &self,
        table: &Table,
        batches: impl futures::Stream<Item = Result<RecordBatch>>,
    ) -> Result<Vec<DataFile>> {
        let md = table.metadata();
        let target: SchemaRef = Arc::new(
            schema_to_arrow_schema(md.current_schema())
                .map_err(ice("converting the table schema"))?,
        );
        let name = table.identifier().to_string();
        let mut batches = std::pin::pin!(batches);
        let lanes = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, MAX_WRITERS);
        let prefix = uuid::Uuid::now_v7().simple().to_string();
        let mut writers: Vec<FileWriter> = Vec::new();
        let mut rows_sent = 0usize;
        let mut next_lane = 0usize;
        let mut failed: Option<Error> = None;
        'read: while let Some(b) = batches.next().await {
            let b = match b.and_then(|b| schema::fit_batch(&name, &b, &target)) {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let mut offset = 0;
            while offset < b.num_rows() {
                let len = (b.num_rows() - offset).min(SLICE_ROWS);
                let slice = b.slice(offset, len);
                offset += len;
                // One writer until the write is large enough to be worth several files.
                let lane = if rows_sent < PARALLEL_WRITE_ROWS {
                    0
                } else {
                    next_lane = (next_lane + 1) % lanes;
                    next_lane
                };
                rows_sent += len;
                while writers.len() <= lane {
                    let name_prefix = format!("{prefix}-{}", writers.len());
                    writers.push(FileWriter::spawn(table, name_prefix));
                }
                if writers[lane].send(slice).await.is_err() {
                    // The writer stopped on an error: its result says which.
                    break 'read;
                }
            }
        }
        let mut files = Vec::new();
        for writer in writers {
            match writer.finish().await {
                Ok(written) => files.extend(written),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            None => Ok(files),
            Some(e) => {
                AttemptFiles(files.iter().map(|f| f.file_path().to_owned()).collect())
                    .remove(table.file_io())
                    .await;
                Err(e)
            }
        }
    }

    /// Swaps the catalog pointer from `expected` to `new`; false if another commit moved it.
    async fn swap_pointer(&self, t: &TableRef, expected: &str, new: &str) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
             AND metadata_location = ?",
        )
        .bind(new)
        .bind(expected)
        .bind(CATALOG_NAME)
        .bind(&t.namespace)
        .bind(&t.name)
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(sqlx_err("swapping the table pointer"))?;
        Ok(res.rows_affected() == 1)
    }

    /// The commit loop: prepare on the latest metadata, swap, and on a lost race rebuild.
    async fn commit(
        &self,
        t: &TableRef,
        kind: CommitKind,
        files: Vec<DataFile>,
        written: AttemptFiles,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        for attempt in 1..=COMMIT_ATTEMPTS {
            let table = match self.load(t).await {
                Ok(table) => table,
                Err(e) => {
                    written.remove(&self.io).await;
                    return Err(e);
                }
            };
            let md = table.metadata();
            if let Some(batch) = &options.batch_id
                && let Some(existing) = commit::snapshot_of_batch(md, batch.as_str())
            {
                written.remove(&self.io).await;
                tracing::info!(table = %t, batch_id = %batch, snapshot_id = existing, "batch already committed: nothing to do");
                return Ok(CommitOutcome {
                    snapshot_id: existing,
                    already_committed: true,
                    rows_added: 0,
                    files_added: 0,
                });
            }
            if let Some(expected) = options.expected_snapshot_id
                && md.current_snapshot_id() != Some(expected)
            {
                written.remove(&self.io).await;
                return Err(commit::conflict(
                    &t.to_string(),
                    format!(
                        "the write was computed from snapshot {expected} but the table is now at {}; \
                         read it again and recompute",
                        md.current_snapshot_id()
                            .map_or("no snapshot".into(), |s| s.to_string())
                    ),
                ));
            }
            let prepared = match commit::prepare(&table, kind, &files, options).await {
                Ok(p) => p,
                Err(e) => {
                    written.remove(&self.io).await;
                    return Err(e);
                }
            };
            let current = table
                .metadata_location_result()
                .map_err(ice("reading the metadata location"))?;
            // A process-level crash drill: `FLOE_CRASH_AT=commit:<namespace.table>` stops the
            // process with every file of this commit written and the pointer not swapped.
            floe_core::drill::crash_point(&format!("commit:{t}"));
            match self.take_fault() {
                Some(Fault::FailBeforeSwap) => {
                    prepared.attempt_files.remove(&self.io).await;
                    written.remove(&self.io).await;
                    return Err(Error::Transient(format!(
                        "injected failure before committing to {t}"
                    )));
                }
                Some(Fault::CrashBeforeSwap) => {
                    return Err(Error::Transient(format!(
                        "injected crash before committing to {t}"
                    )));
                }
                None => {}
            }
            match self.swap_pointer(t, current, &prepared.new_location).await {
                Ok(true) => {
                    tracing::debug!(table = %t, snapshot_id = prepared.snapshot_id, attempt, "committed");
                    return Ok(CommitOutcome {
                        snapshot_id: prepared.snapshot_id,
                        already_committed: false,
                        rows_added: prepared.rows_added,
                        files_added: prepared.files_added,
                    });
                }
                Ok(false) => {
                    // Another writer committed first: drop this attempt's metadata, keep the data
                    // files, and rebuild on the new version.
                    prepared.attempt_files.remove(&self.io).await;
                    tracing::debug!(table = %t, attempt, "commit lost a race; retrying");
                    let jitter =
                        Duration::from_micros(u64::from(uuid::Uuid::new_v4().as_u128() as u16));
                    tokio::time::sleep(COMMIT_BACKOFF.delay(attempt) + jitter).await;
                }
                Err(e) => {
                    prepared.attempt_files.remove(&self.io).await;
                    written.remove(&self.io).await;
                    return Err(e);
                }
            }
        }
        written.remove(&self.io).await;
        Err(commit::conflict(
            &t.to_string(),
            format!(
                "gave up after {COMMIT_ATTEMPTS} attempts: other writers keep committing; retry later"
            ),
        ))
    }

    async fn commit_rows(
        &self,
        t: &TableRef,
        kind: CommitKind,
        batches: Vec<RecordBatch>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write_rows(t, kind, options, async move {
            Ok(futures::stream::iter(batches.into_iter().map(Ok)))
        })
        .await
    }

    /// [`Self::write`] of a query's rows (reading `relations` as in-memory tables), streamed
    /// from the engine into the data files.
    async fn write_query_rows(
        &self,
        t: &TableRef,
        kind: CommitKind,
        sql: &str,
        at: &ReadAt,
        relations: Vec<(String, Vec<RecordBatch>)>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write_rows(
            t,
            kind,
            options,
            query::stream_over(self, sql, at, relations),
        )
        .await
    }

    /// Writes the rows `rows` yields and commits them. A replay is recognised before the rows
    /// are asked for, so a replayed batch neither runs its query nor writes a file.
    async fn write_rows<S>(
        &self,
        t: &TableRef,
        kind: CommitKind,
        options: &WriteOptions,
        rows: impl std::future::Future<Output = Result<S>>,
    ) -> Result<CommitOutcome>
    where
        S: futures::Stream<Item = Result<RecordBatch>>,
    {
        let table = self.load(t).await?;
        if let Some(replayed) = replayed(&table, options) {
            return Ok(replayed);
        }
        let files = self.write_data_stream(&table, rows.await?).await?;
        let written = AttemptFiles(files.iter().map(|f| f.file_path().to_owned()).collect());
        self.commit(t, kind, files, written, options).await
    }

    /// A row delta ([`Write::Delta`]): the rows are written as new data files while the `on`
    /// values of those that replace a live row are noted; the replaced rows are then found in
    /// the current snapshot's data files (their `on` columns only) and marked in one position
    /// delete file, committed with the new files on top of that snapshot and no other.
    async fn write_delta(
        &self,
        t: &TableRef,
        rows: Input<'_>,
        on: &[String],
        replaces: &str,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let started_at = chrono::Utc::now();
        let clock = std::time::Instant::now();
        let table = self.load(t).await?;
        if let Some(replayed) = replayed(&table, options) {
            return Ok(replayed);
        }
        // The replaced rows are found in this snapshot, so the commit must land on it.
        let base = table.metadata().current_snapshot_id();
        let mut options = options.clone();
        if options.expected_snapshot_id.is_none() {
            options.expected_snapshot_id = base;
        }
        // Rows from this process are logged as one statement; a query logs itself.
        let held = matches!(rows, Input::Rows(_) | Input::Stream(_));
        let rows: futures::stream::BoxStream<'_, Result<RecordBatch>> = match rows {
            Input::Rows(batches) => futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
            Input::Stream(rows) => rows,
            Input::Query { sql, at } => query::stream(self, sql, at).await?.boxed(),
            Input::QueryOver { sql, at, relations } => {
                query::stream_over(self, sql, at, relations).await?.boxed()
            }
        };
        let name = t.to_string();
        let replaced = Arc::new(Mutex::new(delta::Replaced::new(&table, on)?));
        let noted = replaced.clone();
        let rows = rows.map(move |b| {
            b.and_then(|b| {
                noted
                    .lock()
                    .expect("the replaced rows' lock")
                    .take(&name, b, replaces)
            })
        });
        let mut files = self.write_data_stream(&table, rows).await?;
        let written = AttemptFiles(files.iter().map(|f| f.file_path().to_owned()).collect());
        let mut replaced = Arc::try_unwrap(replaced)
            .map_err(|_| Error::Internal("the row delta's stream is still held".into()))?
            .into_inner()
            .expect("the replaced rows' lock");
        if !replaced.is_empty() {
            let found = async {
                let (live, deleted) = delta::live_files(&table).await?;
                let schema = table.metadata().current_schema().clone();
                let ids = on
                    .iter()
                    .map(|c| {
                        schema.field_by_name(c).map(|f| f.id).ok_or_else(|| {
                            Error::Internal(format!("{t} has no column '{c}' to match on"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let name = t.to_string();
                let positions = tokio::task::spawn_blocking(move || {
                    replaced.positions(&name, &live, &deleted, &ids)
                })
                .await
                .map_err(|e| Error::Internal(format!("finding replaced rows: {e}")))??;
                let prefix = uuid::Uuid::now_v7().simple().to_string();
                delta::write_deletes(&table, &positions, &prefix).await
            }
            .await;
            match found {
                Ok(Some(deletes)) => files.push(deletes),
                Ok(None) => {}
                Err(e) => {
                    written.remove(&self.io).await;
                    return Err(e);
                }
            }
        }
        let written = AttemptFiles(files.iter().map(|f| f.file_path().to_owned()).collect());
        let out = self
            .commit(t, CommitKind::Delta, files, written, &options)
            .await;
        if held {
            floe_core::cost::record("insert", 0, clock.elapsed().as_millis() as u64, started_at);
        }
        out
    }

    /// Files under the table's folder that no snapshot or metadata file references: left by a
    /// process that died between writing and committing.
    pub async fn orphan_files(&self, t: &TableRef) -> Result<OrphanReport> {
        // Staging tables of this table keep their files inside its folder until published.
        let prefix = format!("{}__staging_", t.name);
        let active: Vec<String> = self
            .list_tables(Some(&t.namespace))
            .await?
            .into_iter()
            .filter_map(|s| s.name.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        orphans::find(&self.load(t).await?, &active).await
    }

    /// The current version's data files: how many, and their bytes.
    async fn current_files(&self, table: &Table) -> Result<(usize, u64)> {
        let files = self.live_files(table).await?;
        Ok((files.len(), files.iter().map(|f| f.bytes).sum()))
    }

    /// The current version's live files, from its manifests. The embedded lake's tables are
    /// unpartitioned, so no partition values.
    async fn live_files(&self, table: &Table) -> Result<Vec<floe_core::ports::FileStat>> {
        let md = table.metadata();
        let mut out = Vec::new();
        if let Some(snapshot) = md.current_snapshot() {
            for mf in commit::manifests_of(&self.io, md, snapshot).await? {
                let manifest = mf
                    .load_manifest(&self.io)
                    .await
                    .map_err(ice("reading a manifest"))?;
                for e in manifest.entries().iter().filter(|e| e.is_alive()) {
                    out.push(floe_core::ports::FileStat {
                        partition: Default::default(),
                        deletes: e.content_type() != iceberg::spec::DataContentType::Data,
                        bytes: e.file_size_in_bytes(),
                        rows: e.record_count(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Removes these snapshots from the table's metadata (their files become orphans).
    async fn expire_snapshots(&self, t: &TableRef, ids: &[i64]) -> Result<()> {
        let expired = self
            .update_metadata(t, "expiring snapshots", |md, current| {
                let present: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|id| {
                        md.snapshot_by_id(*id).is_some() && md.current_snapshot_id() != Some(*id)
                    })
                    .collect();
                if present.is_empty() {
                    return Ok(None);
                }
                Ok(Some(
                    md.clone()
                        .into_builder(Some(current.to_owned()))
                        .remove_snapshots(&present)
                        .build()
                        .map_err(ice("building table metadata"))?
                        .metadata,
                ))
            })
            .await?;
        if expired {
            tracing::info!(table = %t, ids = ids.len(), "snapshots expired");
        }
        Ok(())
    }

    /// Commits metadata that `change` makes from the table's latest metadata (and its
    /// location), without a snapshot; `None` from `change` means nothing to do. A lost race
    /// is retried on the new metadata. True when something was committed.
    async fn update_metadata<F>(&self, t: &TableRef, doing: &str, change: F) -> Result<bool>
    where
        F: Fn(&iceberg::spec::TableMetadata, &str) -> Result<Option<iceberg::spec::TableMetadata>>,
    {
        for attempt in 1..=COMMIT_ATTEMPTS {
            let table = self.load(t).await?;
            let current = table
                .metadata_location_result()
                .map_err(ice("reading the metadata location"))?;
            let Some(new_md) = change(table.metadata(), current)? else {
                return Ok(false);
            };
            let location = commit::write_metadata(&self.io, current, &new_md).await?;
            if self.swap_pointer(t, current, &location).await? {
                return Ok(true);
            }
            AttemptFiles(vec![location]).remove(&self.io).await;
            tokio::time::sleep(COMMIT_BACKOFF.delay(attempt)).await;
        }
        Err(commit::conflict(
            &t.to_string(),
            format!(
                "gave up {doing} after {COMMIT_ATTEMPTS} attempts: other writers keep committing; retry later"
            ),
        ))
    }

    /// Deletes orphan files older than `min_age` (younger ones may belong to a running commit).
    pub async fn remove_orphan_files(
        &self,
        t: &TableRef,
        min_age: Duration,
    ) -> Result<OrphanReport> {
        let report = self.orphan_files(t).await?;
        orphans::remove(&report, min_age)
    }
}

#[async_trait]
impl Lake for LocalLake {
    async fn ensure_namespace(&self, namespace: &str) -> Result<()> {
        floe_core::id::check_identifier("namespace", namespace)?;
        let ns = NamespaceIdent::new(namespace.to_owned());
        if while_busy(|| async {
            self.catalog
                .namespace_exists(&ns)
                .await
                .map_err(ice("checking a namespace"))
        })
        .await?
        {
            return Ok(());
        }
        let created = while_busy(|| async {
            self.catalog
                .create_namespace(&ns, HashMap::new())
                .await
                .map_err(ice("creating a namespace"))
        })
        .await;
        match created {
            // Made by another process meanwhile.
            Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_table(&self, t: &TableRef, schema: SchemaRef) -> Result<()> {
        let location = self.new_location(t);
        self.create_at(t, &schema, location).await
    }

    async fn evolve_schema(&self, t: &TableRef, edits: &[SchemaEdit]) -> Result<()> {
        let changed = self
            .update_metadata(t, "changing its schema", |md, current| {
                let Some(schema) = schema::evolved(md, edits).map_err(|e| match e {
                    Error::Sql(m) => Error::Config(format!("changing the schema of {t}: {m}")),
                    e => e,
                })?
                else {
                    return Ok(None);
                };
                Ok(Some(
                    md.clone()
                        .into_builder(Some(current.to_owned()))
                        .add_current_schema(schema)
                        .map_err(ice("adding a schema"))?
                        .build()
                        .map_err(ice("building table metadata"))?
                        .metadata,
                ))
            })
            .await?;
        if changed {
            tracing::info!(table = %t, ?edits, "schema changed");
        }
        Ok(())
    }

    async fn table_exists(&self, t: &TableRef) -> Result<bool> {
        self.catalog
            .table_exists(&ident(t))
            .await
            .map_err(ice("checking a table"))
    }

    async fn table_schema(&self, t: &TableRef) -> Result<SchemaRef> {
        let table = self.load(t).await?;
        Ok(Arc::new(
            schema_to_arrow_schema(table.metadata().current_schema())
                .map_err(ice("converting a schema"))?,
        ))
    }

    async fn list_tables(&self, namespace: Option<&str>) -> Result<Vec<TableRef>> {
        let namespaces = match namespace {
            Some(ns) => vec![NamespaceIdent::new(ns.to_owned())],
            None => self
                .catalog
                .list_namespaces(None)
                .await
                .map_err(ice("listing namespaces"))?,
        };
        let mut out = Vec::new();
        for ns in namespaces {
            let tables = match self.catalog.list_tables(&ns).await {
                Ok(t) => t,
                Err(e) if e.kind() == iceberg::ErrorKind::NamespaceNotFound => continue,
                Err(e) => return Err(ice("listing tables")(e)),
            };
            for t in tables {
                out.push(TableRef::new(t.namespace.to_url_string(), t.name)?);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn drop_table(&self, t: &TableRef) -> Result<()> {
        let table = self.load(t).await?;
        self.catalog
            .drop_table(&ident(t))
            .await
            .map_err(ice("dropping a table"))?;
        let dir = table
            .metadata()
            .location()
            .trim_start_matches("file://")
            .to_owned();
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(%dir, error = %e, "dropped table's folder could not be removed");
        }
        Ok(())
    }

    async fn write(
        &self,
        t: &TableRef,
        write: Write<'_>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let (kind, input) = match write {
            Write::Append(input) => (CommitKind::Append, input),
            Write::Overwrite(input) => (CommitKind::Overwrite, input),
            Write::Statement { .. } => {
                return Err(Error::Config(format!(
                    "the embedded engine runs no DML statements (writing {t}); use a query write \
                     instead (see Lake::capabilities)"
                )));
            }
            Write::Delta { rows, on, replaces } => {
                return self.write_delta(t, rows, on, replaces, options).await;
            }
        };
        match input {
            Input::Rows(batches) => {
                // Rows from this process: a write that scans nothing, logged as one statement.
                let started_at = chrono::Utc::now();
                let clock = std::time::Instant::now();
                let out = self.commit_rows(t, kind, batches, options).await;
                floe_core::cost::record(
                    "insert",
                    0,
                    clock.elapsed().as_millis() as u64,
                    started_at,
                );
                out
            }
            Input::Stream(rows) => {
                // Rows from this process as they are computed: written as they come.
                let started_at = chrono::Utc::now();
                let clock = std::time::Instant::now();
                let out = self
                    .write_rows(t, kind, options, async move { Ok(rows) })
                    .await;
                floe_core::cost::record(
                    "insert",
                    0,
                    clock.elapsed().as_millis() as u64,
                    started_at,
                );
                out
            }
            Input::Query { sql, at } => {
                self.write_query_rows(t, kind, sql, at, Vec::new(), options)
                    .await
            }
            Input::QueryOver { sql, at, relations } => {
                self.write_query_rows(t, kind, sql, at, relations, options)
                    .await
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dml: false,
            table_properties: false,
            partitioning: false,
            billed_by_scan: false,
            memory_relations: true,
            row_deltas: true,
        }
    }

    async fn file_stats(&self, t: &TableRef) -> Result<Vec<floe_core::ports::FileStat>> {
        self.live_files(&self.load(t).await?).await
    }

    async fn maintain(&self, t: &TableRef, m: &Maintenance) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let table = self.load(t).await?;
        let md = table.metadata();
        let current = md.current_snapshot_id();
        if md
            .snapshots()
            .any(|s| s.parent_snapshot_id() == current && Some(s.snapshot_id()) != current)
        {
            report.skipped = Some(
                "a staged version is not published (awaiting its audit, or rejected): the next \
                 write settles it, then maintenance can run"
                    .into(),
            );
            return Ok(report);
        }
        let (files, bytes) = self.current_files(&table).await?;
        report.files_before = files;
        report.files_after = files;
        // Small files only: a table of large files is left as it is.
        // Small files, or rows replaced through delete files (folded in by the rewrite).
        report.compacted = (files > 1 && bytes / files as u64 <= COMPACT_BELOW_BYTES)
            || self.live_files(&table).await?.iter().any(|f| f.deletes);
        let infos = query::snapshot_infos(md);
        let shown: Vec<(i64, chrono::DateTime<chrono::Utc>)> = md
            .history()
            .iter()
            .filter_map(|h| {
                chrono::DateTime::from_timestamp_millis(h.timestamp_ms)
                    .map(|at| (h.snapshot_id, at))
            })
            .collect();
        let keep =
            floe_core::ports::snapshots_to_keep(&infos, &shown, chrono::Utc::now(), m.keep_for);
        let expire: Vec<i64> = infos
            .iter()
            .map(|s| s.snapshot_id)
            .filter(|id| !keep.contains(id) && Some(*id) != current)
            .collect();
        report.snapshots_expired = expire.len();
        report.snapshots_kept = infos.len() - expire.len();
        let orphans_before = self.orphan_files(t).await?;
        report.orphan_files = orphans_before.orphans.len();
        if m.dry_run {
            return Ok(report);
        }
        if report.compacted
            && let Some(snapshot) = md.current_snapshot()
        {
            // The same rows in fewer files, committed on top of the published version with
            // its floe records (the next extract's plan reads them), marked as maintenance.
            let properties: BTreeMap<String, String> = snapshot
                .summary()
                .additional_properties
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("floe.")
                        && ![commit::BATCH_ID, commit::RUN_ID].contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([(
                    floe_core::ports::MAINTENANCE.to_owned(),
                    "compaction".to_owned(),
                )])
                .collect();
            let options = WriteOptions {
                expected_snapshot_id: current,
                properties,
                ..Default::default()
            };
            let at = ReadAt::Snapshot(snapshot.snapshot_id());
            self.write_rows(
                t,
                CommitKind::Overwrite,
                &options,
                query::stream(self, &format!("SELECT * FROM {t}"), &at),
            )
            .await?;
            report.files_after = self.current_files(&self.load(t).await?).await?.0;
        }
        if !expire.is_empty() {
            self.expire_snapshots(t, &expire).await?;
        }
        // Files only the expired snapshots referenced go now; files no snapshot referenced
        // before (a crashed writer's, or a commit still running) once they are an hour old.
        let after = self.orphan_files(t).await?;
        let (freed, stray): (Vec<PathBuf>, Vec<PathBuf>) = after
            .orphans
            .iter()
            .cloned()
            .partition(|f| !orphans_before.orphans.contains(f));
        let removed = |orphans: Vec<PathBuf>, min_age: Duration| {
            orphans::remove(
                &OrphanReport {
                    orphans,
                    ..after.clone()
                },
                min_age,
            )
            .map(|r| r.removed.len())
        };
        report.orphan_files = removed(freed, Duration::ZERO)? + removed(stray, ORPHAN_MIN_AGE)?;
        Ok(report)
    }

    async fn publish_snapshot(&self, t: &TableRef, snapshot_id: i64) -> Result<()> {
        let table = self.load(t).await?;
        let md = table.metadata();
        let snap = md
            .snapshot_by_id(snapshot_id)
            .ok_or_else(|| Error::NotFound(format!("table {t} has no snapshot {snapshot_id}")))?;
        if md.current_snapshot_id() == Some(snapshot_id) {
            return Ok(()); // published already: a replay changes nothing
        }
        if snap.parent_snapshot_id() != md.current_snapshot_id() {
            return Err(commit::conflict(
                &t.to_string(),
                format!(
                    "snapshot {snapshot_id} was staged on {} but the table has moved to {}; stage it again",
                    snap.parent_snapshot_id()
                        .map_or("an empty table".into(), |p| p.to_string()),
                    md.current_snapshot_id()
                        .map_or("nothing".into(), |p| p.to_string()),
                ),
            ));
        }
        let (new_location, files) = commit::prepare_set_main(&table, snapshot_id).await?;
        let current = table
            .metadata_location_result()
            .map_err(ice("reading the metadata location"))?;
        if self.swap_pointer(t, current, &new_location).await? {
            Ok(())
        } else {
            files.remove(&self.io).await;
            Err(commit::conflict(
                &t.to_string(),
                "the table moved while publishing; try again",
            ))
        }
    }

    async fn publish_table(
        &self,
        staged: &TableRef,
        live: &TableRef,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let staging = self.load(staged).await?;
        let staged_snapshot = staging.metadata().current_snapshot_id();
        if !self.table_exists(live).await? {
            // One catalog row changes name: readers see no table, then the whole new one.
            self.rename_table(staged, live).await?;
            return Ok(CommitOutcome {
                snapshot_id: staged_snapshot.unwrap_or_default(),
                already_committed: false,
                rows_added: staging.metadata().current_snapshot().map_or(0, |s| {
                    s.summary()
                        .additional_properties
                        .get("total-records")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                }),
                files_added: 0,
            });
        }
        // The live table keeps its history: its next snapshot replaces every row with the
        // staging table's files. The staging entry is then dropped (its data files now belong to
        // the live table; its own metadata files are removed).
        let files = commit::live_data_files(&staging).await?;
        let outcome = self
            .commit(
                live,
                CommitKind::Overwrite,
                files,
                AttemptFiles::default(),
                options,
            )
            .await?;
        self.catalog
            .drop_table(&ident(staged))
            .await
            .map_err(ice("dropping the staging table"))?;
        let meta_dir = format!(
            "{}/metadata",
            staging.metadata().location().trim_start_matches("file://")
        );
        if let Err(e) = std::fs::remove_dir_all(&meta_dir) {
            tracing::warn!(dir = %meta_dir, error = %e, "staging metadata could not be removed");
        }
        Ok(outcome)
    }

    async fn rename_table(&self, from: &TableRef, to: &TableRef) -> Result<()> {
        self.ensure_namespace(&to.namespace).await?;
        if self.table_exists(to).await? {
            return Err(Error::AlreadyExists(format!("table {to}")));
        }
        self.catalog
            .rename_table(&ident(from), &ident(to))
            .await
            .map_err(|e| match e.kind() {
                iceberg::ErrorKind::TableNotFound => Error::NotFound(format!("table {from}")),
                iceberg::ErrorKind::TableAlreadyExists => {
                    Error::AlreadyExists(format!("table {to}"))
                }
                _ => ice("renaming a table")(e),
            })
    }

    async fn snapshots(&self, t: &TableRef) -> Result<Vec<SnapshotInfo>> {
        let table = self.load(t).await?;
        Ok(query::snapshot_infos(table.metadata()))
    }

    async fn query(&self, sql: &str, at: &ReadAt) -> Result<Vec<RecordBatch>> {
        query::run(self, sql, at).await
    }

    async fn query_schema(&self, sql: &str, at: &ReadAt) -> Result<SchemaRef> {
        query::schema(self, sql, at).await
    }

    async fn query_stream(
        &self,
        sql: &str,
        at: &ReadAt,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        Ok(Box::pin(query::stream(self, sql, at).await?))
    }

    async fn create_view(&self, view: &TableRef, sql: &str) -> Result<()> {
        if self.table_exists(view).await? {
            return Err(Error::AlreadyExists(format!(
                "{view} is a table; drop it before making it a view"
            )));
        }
        // Check the SQL now (every table it names exists, it plans), not at the first read.
        query::run(
            self,
            &format!("SELECT * FROM ({sql}) _floe_view LIMIT 0"),
            &ReadAt::Current,
        )
        .await
        .map_err(|e| Error::Sql(format!("view {view} does not plan: {e}")))?;
        let file = self.view_file(view);
        let dir = file.parent().expect("a view file has a folder");
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Transient(format!("creating {}: {e}", dir.display())))?;
        let tmp = file.with_extension(format!("sql.{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, sql)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| Error::Transient(format!("writing {}: {e}", file.display())))
    }

    async fn view_sql(&self, view: &TableRef) -> Result<Option<String>> {
        self.view_sql_local(view)
    }

    async fn drop_view(&self, view: &TableRef) -> Result<()> {
        match std::fs::remove_file(self.view_file(view)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Transient(format!("dropping view {view}: {e}"))),
        }
    }
}

impl LocalLake {
    /// Where a view's SQL is kept: views are floe's, not the Iceberg catalog's (iceberg-rust's
    /// SQL catalog keeps no views), so other Iceberg clients do not see them.
    fn view_file(&self, view: &TableRef) -> PathBuf {
        self.root
            .join("_floe")
            .join("views")
            .join(&view.namespace)
            .join(format!("{}.sql", view.name))
    }

    pub(crate) fn view_sql_local(&self, view: &TableRef) -> Result<Option<String>> {
        match std::fs::read_to_string(self.view_file(view)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Transient(format!("reading view {view}: {e}"))),
        }
    }

    pub(crate) async fn table_exists_local(&self, t: &TableRef) -> Result<bool> {
        self.table_exists(t).await
    }
}
