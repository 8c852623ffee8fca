//! The ports: what a handler needs from the outside world, as traits.
//!
//! Handlers take these, never a concrete SDK client or local type, so the embedded runtime, the
//! Lambda services and the tests all call the very same handler code. Each trait documents the
//! invariants every implementation must keep; the contract suites in the adapters' crates check
//! them.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{BatchId, ObjectRef, Result, RunId, TableRef};

/// The SQL dialect a lake's engine speaks; handlers render their SQL in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The embedded engine (DataFusion).
    #[default]
    DataFusion,
    /// Amazon Athena (engine version 3, Trino).
    Trino,
}

/// One field of a table's partitioning (Iceberg hidden partitioning: rows are placed by a
/// transform of a column, and a query filtering on the column reads the matching partitions
/// only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    /// The source column.
    pub column: String,
    /// What of its value places a row.
    pub transform: PartitionTransform,
}

/// An Iceberg partition transform floe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTransform {
    /// The value itself.
    Identity,
    /// The day of a timestamp (UTC).
    Day,
}

impl PartitionField {
    /// Partitions by the column's value.
    pub fn identity(column: &str) -> Self {
        PartitionField {
            column: column.to_owned(),
            transform: PartitionTransform::Identity,
        }
    }

    /// Partitions by the day of a timestamp column.
    pub fn day(column: &str) -> Self {
        PartitionField {
            column: column.to_owned(),
            transform: PartitionTransform::Day,
        }
    }
}

pub use crate::maintenance::{FileStat, MAINTENANCE, Maintenance, MaintenanceReport};

/// The snapshots time travel may still read after maintenance keeping `keep_for`: each
/// committed at or after `now - keep_for`, the published one now, and each that was the
/// published one at some instant since (`published`: (snapshot, when it became the published
/// one), oldest first).
pub fn snapshots_to_keep(
    snapshots: &[SnapshotInfo],
    published: &[(i64, DateTime<Utc>)],
    now: DateTime<Utc>,
    keep_for: chrono::Duration,
) -> std::collections::BTreeSet<i64> {
    let horizon = now - keep_for;
    let mut keep: std::collections::BTreeSet<i64> = snapshots
        .iter()
        .filter(|s| s.committed_at >= horizon || s.is_current)
        .map(|s| s.snapshot_id)
        .collect();
    for (i, (id, since)) in published.iter().enumerate() {
        let until = published.get(i + 1).map(|(_, t)| *t);
        if *since >= horizon || until.is_none_or(|u| u > horizon) {
            keep.insert(*id);
        }
    }
    keep
}

/// One change to a table's schema (see [`Lake::evolve_schema`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaEdit {
    /// Adds a nullable column after the others; rows written before read it as NULL.
    AddColumn {
        /// The column.
        name: String,
        /// Its type.
        ty: arrow_schema::DataType,
    },
    /// Changes a column to a wider type that Iceberg promotes in place (int to bigint, float to
    /// double, a decimal's precision up with the same scale): every stored value reads the same.
    WidenColumn {
        /// The column.
        name: String,
        /// Its new type.
        ty: arrow_schema::DataType,
    },
    /// Replaces a column by a new one of the same name and another type (a new Iceberg field):
    /// data files written before no longer supply it. Only a rewrite of every row follows this
    /// (`floe migrate`); readers of earlier snapshots keep those snapshots' schema.
    ReplaceColumn {
        /// The column.
        name: String,
        /// Its new type.
        ty: arrow_schema::DataType,
    },
    /// Removes a column from the current schema (a model whose query no longer has it, before a
    /// write of every row); snapshots written before keep it in their own schema.
    DropColumn {
        /// The column.
        name: String,
    },
    /// Lets a required column hold NULL.
    MakeOptional {
        /// The column.
        name: String,
    },
}

/// Which version of a table a read sees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReadAt {
    /// What the table's main branch points to now (the published version).
    #[default]
    Current,
    /// One snapshot by id; it must belong to the (single) table the read names.
    Snapshot(i64),
    /// The snapshot that was current at this instant (the newest one committed at or before it).
    Timestamp(DateTime<Utc>),
    /// These tables at these snapshots (staged ones included), every other table as published:
    /// how an audit reads a staged write next to its inputs.
    Pinned(BTreeMap<TableRef, i64>),
}

/// What a write records and how it commits.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The batch this write belongs to. A table never commits the same batch id twice: a write
    /// whose batch id is in a snapshot of the main branch's lineage, or in a staged snapshot that
    /// can still be published, is a no-op that returns that snapshot.
    pub batch_id: Option<BatchId>,
    /// The run that made the write, recorded in the snapshot summary.
    pub run_id: Option<RunId>,
    /// Stage the snapshot without publishing it: readers keep seeing the previous version until
    /// [`Lake::publish_snapshot`] (write-audit-publish on one table).
    pub stage_only: bool,
    /// For an overwrite computed from a read: the snapshot that read saw. If the table moved
    /// since, the overwrite fails with a conflict instead of dropping the other writer's rows.
    pub expected_snapshot_id: Option<i64>,
    /// Extra `floe.*`-style properties recorded in the snapshot summary.
    pub properties: BTreeMap<String, String>,
}

impl WriteOptions {
    /// Options for a batch of a run.
    pub fn batch(batch_id: BatchId, run_id: RunId) -> Self {
        WriteOptions {
            batch_id: Some(batch_id),
            run_id: Some(run_id),
            ..Default::default()
        }
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitOutcome {
    /// The snapshot holding the write (the earlier one when it was already committed).
    pub snapshot_id: i64,
    /// True when the batch had been committed before and nothing was written now.
    pub already_committed: bool,
    /// Rows added by the write.
    pub rows_added: u64,
    /// Data files added by the write.
    pub files_added: usize,
}

/// One snapshot of a table, as `floe history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    /// The snapshot id.
    pub snapshot_id: i64,
    /// The snapshot it was built on.
    pub parent_id: Option<i64>,
    /// The published snapshot the write was computed from: its parent when the write is one
    /// commit; the parent of its first commit when an engine needs several (Athena replaces a
    /// table's rows with DELETE, then INSERT). A staged write is stale when this is no longer
    /// the published snapshot.
    pub based_on: Option<i64>,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
    /// `append`, `overwrite`, ...
    pub operation: String,
    /// The batch recorded in the summary, if any.
    pub batch_id: Option<String>,
    /// The run recorded in the summary, if any.
    pub run_id: Option<String>,
    /// Rows added by this snapshot.
    pub added_rows: Option<u64>,
    /// Rows in the table as of this snapshot.
    pub total_rows: Option<u64>,
    /// Whether the main branch points to it now.
    pub is_current: bool,
    /// Whether it was ever published on the main branch (false for a staged snapshot).
    pub published: bool,
    /// The whole snapshot summary.
    pub summary: BTreeMap<String, String>,
}

/// Where the rows of a write come from.
pub enum Input<'a> {
    /// Rows held here.
    Rows(Vec<RecordBatch>),
    /// Rows that arrive as they are computed (a large file checked chunk by chunk): written as
    /// they come, committed once the stream ends. An `Err` from the stream stops the write and
    /// removes what it wrote; the table stays as it was.
    Stream(futures::stream::BoxStream<'a, Result<RecordBatch>>),
    /// The rows of a query over the lake, in its dialect, reading the tables as `at` says. An
    /// engine that runs SQL elsewhere (Athena) runs it there.
    Query {
        /// The query.
        sql: &'a str,
        /// The versions it reads.
        at: &'a ReadAt,
    },
    /// The rows of a query that also reads rows computed beforehand and held in memory, each
    /// under its own name (an intermediate result the query reads twice, computed once). Only
    /// on engines with [`Capabilities::memory_relations`].
    QueryOver {
        /// The query.
        sql: &'a str,
        /// The versions of the lake's tables it reads.
        at: &'a ReadAt,
        /// The rows it reads by name (a bare name, no namespace).
        relations: Vec<(String, Vec<RecordBatch>)>,
    },
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Rows(b) => write!(f, "Rows({} batches)", b.len()),
            Input::Stream(_) => f.write_str("Stream(..)"),
            Input::Query { sql, at } => write!(f, "Query({sql:?} at {at:?})"),
            Input::QueryOver { sql, at, relations } => {
                let names: Vec<&str> = relations.iter().map(|(n, _)| n.as_str()).collect();
                write!(f, "QueryOver({sql:?} at {at:?} over {names:?})")
            }
        }
    }
}

/// What a write does to its table (staged or published as its [`WriteOptions`] say).
#[derive(Debug)]
pub enum Write<'a> {
    /// Adds the rows.
    Append(Input<'a>),
    /// Replaces the table's contents with the rows.
    Overwrite(Input<'a>),
    /// Runs a DML statement (MERGE) that changes the table, reading its inputs as `at` says; only
    /// on engines with [`Capabilities::dml`] (floe renders a replacing query for the others).
    Statement {
        /// The statement.
        sql: &'a str,
        /// The versions it reads.
        at: &'a ReadAt,
    },
    /// Adds rows of which some replace live rows, without rewriting the data files those live
    /// in (merge-on-read: the replaced rows are marked in delete files, which maintenance
    /// folds in). A row whose `replaces` column is true replaces the one live row with the
    /// same values in the `on` columns; exactly one must exist, or nothing is written. The
    /// `replaces` column is not stored. Only on engines with [`Capabilities::row_deltas`].
    Delta {
        /// The rows to add, with the `replaces` column.
        rows: Input<'a>,
        /// The columns that name the live row a row replaces.
        on: &'a [String],
        /// The boolean column that says a row replaces a live one.
        replaces: &'a str,
    },
}

/// What an engine can do beyond the port's guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Runs DML statements as writes ([`Write::Statement`]).
    pub dml: bool,
    /// Keeps catalog properties per table ([`Lake::table_properties`]), where template
    /// parameters can be set.
    pub table_properties: bool,
    /// Lays tables out in partitions ([`Lake::create_partitioned_table`]).
    pub partitioning: bool,
    /// Bills each statement by the bytes it scans (what `floe cost` and the dry-run price).
    pub billed_by_scan: bool,
    /// Writes the rows of a query over rows held in memory ([`Input::QueryOver`]).
    pub memory_relations: bool,
    /// Replaces rows without rewriting their data files ([`Write::Delta`]).
    pub row_deltas: bool,
}

/// The lake: tables with snapshots, SQL reads and atomic commits.
///
/// Invariants every implementation keeps:
/// - A commit is atomic: a reader sees a table as of one snapshot, never a partial write.
/// - A write whose `batch_id` is already committed (see [`WriteOptions::batch_id`]) changes
///   nothing and reports `already_committed` (SQS and S3 deliver at least once).
/// - Two concurrent committers never lose an update: an append rebases on the other's snapshot
///   and retries; a conflict that cannot be resolved is [`crate::Error::CommitConflict`].
/// - A write that fails before its commit leaves the table exactly as it was; files written for
///   it are removed, or reported by `orphan_files` when the process died first.
/// - `publish_*` switch what readers see in one atomic step: the old version or the new one,
///   never neither and never a mix.
#[async_trait]
pub trait Lake: Send + Sync {
    /// Creates the namespace if it does not exist.
    async fn ensure_namespace(&self, namespace: &str) -> Result<()>;
    /// Creates an empty table; [`crate::Error::AlreadyExists`] if it exists.
    async fn create_table(&self, table: &TableRef, schema: SchemaRef) -> Result<()>;
    /// Creates an empty table laid out in partitions, on engines whose scans are billed by the
    /// bytes they read (Athena); the default makes it unpartitioned (the embedded lake reads
    /// local files, where a partition would only add small files).
    async fn create_partitioned_table(
        &self,
        table: &TableRef,
        schema: SchemaRef,
        partition_by: &[PartitionField],
    ) -> Result<()> {
        let _ = partition_by;
        self.create_table(table, schema).await
    }
    /// Whether the table exists.
    async fn table_exists(&self, table: &TableRef) -> Result<bool>;
    /// The table's current Arrow schema.
    async fn table_schema(&self, table: &TableRef) -> Result<SchemaRef>;
    /// The tables of one namespace, or of all namespaces.
    async fn list_tables(&self, namespace: Option<&str>) -> Result<Vec<TableRef>>;
    /// Drops the table from the catalog and deletes its files.
    async fn drop_table(&self, table: &TableRef) -> Result<()>;
    /// Writes `table` as one commit with `options`' guarantees (batch idempotency, staging):
    /// appends or replaces rows (in memory or a query's), or runs a DML statement over it.
    async fn write(
        &self,
        table: &TableRef,
        write: Write<'_>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome>;
    /// What this engine can do, so that callers choose their plan rather than meet a refusal.
    fn capabilities(&self) -> Capabilities;
    /// Appends rows to a log table: append-only, read as written (no staging, no batch
    /// idempotency: each call is a new entry), made on its first append with these rows'
    /// schema. Engines that bill per statement write it without one (Athena: a Parquet object
    /// under a Glue table's folder); the default is an ordinary [`Lake::append`].
    async fn append_log(&self, table: &TableRef, batches: Vec<RecordBatch>) -> Result<()> {
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Ok(());
        };
        if !self.table_exists(table).await? {
            match self.create_table(table, schema).await {
                Ok(()) | Err(crate::Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.write(
            table,
            Write::Append(Input::Rows(batches)),
            &WriteOptions::default(),
        )
        .await
        .map(|_| ())
    }
    /// Points the main branch at a staged snapshot. Fails with a conflict if main moved since the
    /// snapshot was staged.
    async fn publish_snapshot(&self, table: &TableRef, snapshot_id: i64) -> Result<()>;
    /// Publishes a staging table's contents over `live` (created if absent) and drops the
    /// staging table. `live` keeps its history: the publish is one more snapshot of it.
    async fn publish_table(
        &self,
        staged: &TableRef,
        live: &TableRef,
        options: &WriteOptions,
    ) -> Result<CommitOutcome>;
    /// Renames a table; fails if `to` exists.
    async fn rename_table(&self, from: &TableRef, to: &TableRef) -> Result<()>;
    /// The table's snapshots, oldest first.
    async fn snapshots(&self, table: &TableRef) -> Result<Vec<SnapshotInfo>>;
    /// Runs a read-only SQL query; tables are named `namespace.table`.
    async fn query(&self, sql: &str, at: &ReadAt) -> Result<Vec<RecordBatch>>;

    /// Changes the table's current schema, as one atomic step, without writing a snapshot: the
    /// new schema applies to the next write, and readers of the published version keep seeing
    /// that snapshot's schema until a write under the new one is published. Edits already in
    /// effect are skipped, so a repeated call is a no-op.
    async fn evolve_schema(&self, table: &TableRef, edits: &[SchemaEdit]) -> Result<()> {
        let _ = edits;
        Err(crate::Error::Config(format!(
            "this engine cannot change the schema of {table}"
        )))
    }

    /// [`Lake::query`]'s rows as a stream, so that a large result is never held whole (what
    /// `floe query` prints). The default runs the query to the end first.
    async fn query_stream(
        &self,
        sql: &str,
        at: &ReadAt,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        let rows = self.query(sql, at).await?;
        Ok(Box::pin(futures::stream::iter(rows.into_iter().map(Ok))))
    }

    /// The SQL dialect [`Lake::query`] and the queries of [`Lake::write`] take.
    fn dialect(&self) -> Dialect {
        Dialect::DataFusion
    }

    /// The schema of a query's rows, without running it to the end.
    async fn query_schema(&self, sql: &str, at: &ReadAt) -> Result<SchemaRef> {
        let rows = self
            .query(
                &format!("SELECT * FROM (\n{sql}\n) _floe_schema LIMIT 0"),
                at,
            )
            .await?;
        rows.first().map(|b| b.schema()).ok_or_else(|| {
            crate::Error::Internal("the engine returned no schema for a query".into())
        })
    }

    /// Compacts the table's files, expires snapshots time travel no longer needs (see
    /// [`Maintenance::keep_for`]) and removes files nothing references, without changing what
    /// any reader sees: the published version, and every version time travel can reach within
    /// the retention, answer as before. A table with a staged version awaiting its audit is left
    /// alone (reported as skipped).
    async fn maintain(
        &self,
        table: &TableRef,
        maintenance: &Maintenance,
    ) -> Result<MaintenanceReport> {
        let _ = maintenance;
        Err(crate::Error::Config(format!(
            "this engine does no table maintenance ({table})"
        )))
    }

    /// The live data and delete files of the table's current snapshot (staged or published),
    /// with their partitions, sizes and rows: read from its metadata, scanning no data.
    async fn file_stats(&self, table: &TableRef) -> Result<Vec<FileStat>>;

    /// The table's catalog properties (Glue table parameters on Athena; none on the embedded
    /// lake), where the table config can be extended: see floe-pipeline's template parameters.
    async fn table_properties(&self, table: &TableRef) -> Result<BTreeMap<String, String>> {
        let _ = table;
        Ok(BTreeMap::new())
    }

    /// Creates or replaces a view (SQL in this lake's dialect, tables named `namespace.table`).
    async fn create_view(&self, view: &TableRef, sql: &str) -> Result<()> {
        let _ = sql;
        Err(crate::Error::Config(format!(
            "this engine keeps no views (creating {view})"
        )))
    }

    /// The SQL of a view, or None when there is no such view.
    async fn view_sql(&self, view: &TableRef) -> Result<Option<String>> {
        let _ = view;
        Ok(None)
    }

    /// Drops a view; dropping an absent view is not an error.
    async fn drop_view(&self, view: &TableRef) -> Result<()> {
        let _ = view;
        Ok(())
    }
}

/// Shorthands for [`Lake::write`], for every lake.
#[async_trait]
pub trait LakeWrites: Lake {
    /// Appends rows as one new snapshot.
    async fn append(
        &self,
        table: &TableRef,
        batches: Vec<RecordBatch>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write(table, Write::Append(Input::Rows(batches)), options)
            .await
    }
    /// Replaces the table's contents with these rows as one new snapshot.
    async fn overwrite(
        &self,
        table: &TableRef,
        batches: Vec<RecordBatch>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write(table, Write::Overwrite(Input::Rows(batches)), options)
            .await
    }
    /// Replaces the table's contents with the rows of a query over the lake.
    async fn write_query(
        &self,
        table: &TableRef,
        sql: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write(table, Write::Overwrite(Input::Query { sql, at }), options)
            .await
    }
    /// Appends the rows of a query over the lake.
    async fn append_query(
        &self,
        table: &TableRef,
        sql: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write(table, Write::Append(Input::Query { sql, at }), options)
            .await
    }
    /// Runs a DML statement that changes `table`.
    async fn execute(
        &self,
        table: &TableRef,
        statement: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        self.write(table, Write::Statement { sql: statement, at }, options)
            .await
    }
}

impl<T: Lake + ?Sized> LakeWrites for T {}

/// A file store: the landing zone and the quarantine (S3 in AWS, a folder locally).
///
/// Invariants: a `put` is atomic (a reader never sees half an object) and returns the object's
/// identity (version or etag) from which [`BatchId::for_object`] is derived.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The bucket this store reads and writes (the name events carry).
    fn bucket(&self) -> &str;
    /// Writes an object and returns its identity.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<ObjectRef>;
    /// Reads a whole object; [`crate::Error::NotFound`] if absent.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// Opens an object to read as it arrives, for objects too large to hold in memory. The
    /// reader blocks: read it on a blocking thread. The default reads the whole object first.
    async fn open(&self, key: &str) -> Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(self.get(key).await?)))
    }
    /// Copies the object `from_key` of `from` here as `key`, without holding it whole where
    /// the stores allow (a file copied on one disk, a server-side copy between buckets); the
    /// default reads it and writes it. [`crate::Error::NotFound`] if it is absent.
    async fn copy_from(&self, from: &dyn ObjectStore, from_key: &str, key: &str) -> Result<()> {
        let bytes = from.get(from_key).await?;
        self.put(key, bytes).await.map(|_| ())
    }
    /// The file holding an object, for a store on this machine's disk.
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// The objects under a prefix, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectRef>>;
    /// Deletes an object; deleting an absent object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// A message received from a [`Queue`].
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The queue's id of the message.
    pub message_id: String,
    /// The handle that acknowledges this delivery.
    pub receipt: String,
    /// The message body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// A work queue between two stages (SQS in AWS, a durable local queue on one machine).
///
/// Invariants: at-least-once delivery; a received message is invisible to other receivers for
/// the visibility timeout and comes back if not deleted; after the queue's maximum receive count
/// it moves to the dead-letter queue instead of being delivered again.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message and returns its id.
    async fn send(&self, body: &str) -> Result<String>;
    /// Receives up to `max` messages, hiding them for `visibility`.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>>;
    /// Acknowledges (deletes) a delivery.
    async fn delete(&self, receipt: &str) -> Result<()>;
    /// Makes a received message visible again after `delay` (a retry with backoff).
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<()>;
}

/// Something that happened in the pipeline that people or systems downstream want to hear about:
/// a table published, a batch failed or a file quarantined (EventBridge `floe.*` events in AWS).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PipelineEvent {
    /// `floe.published`, `floe.failed` or `floe.quarantined`.
    pub detail_type: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// What happened, for machines and people.
    pub detail: serde_json::Value,
}

/// Where pipeline events go (EventBridge in AWS, a JSON-lines file locally).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Emits one event.
    async fn emit(&self, event: PipelineEvent) -> Result<()>;
}

/// SQL over rows held in memory: landing checks a file's expectations with it before anything is
/// written (the embedded engine answers, whatever engine the lake runs on).
#[async_trait]
pub trait RowQuery: Send + Sync {
    /// Runs `sql` reading `rows` as the table `name`. A statement the engine refuses is
    /// [`Error::Sql`] with the engine's words.
    async fn query_rows(
        &self,
        name: &str,
        rows: RecordBatch,
        sql: &str,
    ) -> Result<Vec<RecordBatch>>;
}

/// Where failure notifications go (the project's `notify: webhook:`).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification: a line for people, the details for machines.
    async fn notify(&self, text: &str, detail: &serde_json::Value) -> Result<()>;
}

/// The time source, so tests can pin "now".
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
