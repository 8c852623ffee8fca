//! The lake on AWS: Iceberg tables in the Glue catalog, written and read through Athena.
//!
//! One file (over 700 lines) because every Lake method on Athena keeps the same layout (data
//! table, pinned view, published record) consistent the same way; running a query is in
//! `athena`, the DDL text in `floe_sql::athena`.
//!
//! Layout of a table `ns.t` (what [`floe_core::ports::Lake`] calls one table):
//! - `ns.t__data`: the Iceberg table holding the rows, at `<lake>/ns/t/`;
//! - `ns.t`: a view readers query, pinned to the published snapshot
//!   (`SELECT * FROM ns.t__data FOR VERSION AS OF <id>`) once anything was published, so a staged
//!   write (one more snapshot of `t__data`) stays invisible until its audit publishes it;
//! - `<lake>/_floe/published/ns/t.json`: the published snapshot, as floe records it (the view is
//!   replaced first, then this record), with every earlier publish and its time (what
//!   `ReadAt::Timestamp` reads). A table without a record was never staged nor replaced
//!   (bronze, `floe_audit`): its view shows every commit. A table's first staged write hides
//!   the view (`WHERE FALSE`, recorded with no snapshot) until its audit publishes it, unless
//!   the table already has a snapshot, which the view is then pinned to.
//! - `<lake>/_floe/snapshots/ns/t/<id>.json`: what an Iceberg snapshot summary holds on the
//!   embedded engine and Athena cannot write: the batch and run ids, floe's `floe.*`
//!   properties, and the published snapshot the write was computed from (`based_on`: a
//!   replace is two commits on Athena, `DELETE` then `INSERT`, so the parent of the staged
//!   snapshot is the DELETE's).
//!
//! A replace (overwrite, write_query) is two commits, so it always happens behind a pinned
//! view: readers see the published version until the view moves to the new one.
//!
//! Rows from this process (a landed batch) go to Parquet under `<lake>/_floe/incoming/<id>/`,
//! are read through a temporary Glue external table and inserted with Athena, and the temporary
//! table and files are removed after. A query's rows ([`Lake::write_query`]) never leave Athena.
//! Athena cannot record floe's batch id in a snapshot summary, so a write is known to be
//! committed by its rows' `_batch_id` column; tables without one are appended to as asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use floe_core::ports::{
    Capabilities, CommitOutcome, Dialect, Input, Lake, ObjectStore, ReadAt, SnapshotInfo, Write,
    WriteOptions,
};
use floe_core::{Error, Result, TableRef};
use floe_sql::athena as athena_sql;
use floe_sql::relation::{self, At, Read};
use futures::StreamExt;

use crate::athena::Athena;
use crate::s3::S3Store;
use crate::sdk_error;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The Glue database of the temporary external tables over incoming rows.
pub const INCOMING_DATABASE: &str = "floe_incoming";
/// What a table's view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pin {
    /// Every commit (a table never staged: bronze, floe_audit).
    Unmanaged,
    /// Nothing (a first write is staged and not yet published).
    Hidden,
    /// This snapshot (the published one).
    At(i64),
}

impl Pin {
    /// The snapshot readers see now, given the newest snapshot of the table's data.
    fn published(self, latest: Option<i64>) -> Option<i64> {
        match self {
            Pin::Unmanaged => latest,
            Pin::Hidden => None,
            Pin::At(id) => Some(id),
        }
    }
}

/// What floe records beside an Iceberg snapshot of a table on Athena.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct SnapshotRecord {
    snapshot_id: i64,
    batch_id: Option<String>,
    run_id: Option<String>,
    based_on: Option<i64>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// A table's publish record: what its view shows, and every publish before.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct PublishRecord {
    snapshot_id: Option<i64>,
    published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    history: Vec<(i64, DateTime<Utc>)>,
    /// Since when floe manages the view; every commit before was visible as it landed.
    managed_since: Option<DateTime<Utc>>,
}

/// How much older than the oldest snapshot maintenance keeps a snapshot must be to expire: the
/// engine's clock and this process's may differ a little.
const VACUUM_MARGIN: chrono::Duration = chrono::Duration::seconds(5);

/// The suffix of the Iceberg table behind a table's view.
pub const DATA_SUFFIX: &str = "__data";

/// The lake on Athena + Glue + S3.
#[derive(Debug, Clone)]
pub struct AthenaLake {
    athena: Athena,
    glue: aws_sdk_glue::Client,
    store: Arc<S3Store>,
    /// `s3://bucket/prefix` without a trailing slash.
    location: String,
    /// The prefix inside the bucket (may be empty), with a trailing slash when not empty.
    prefix: String,
    /// Put before every namespace to make its Glue database name (`floe_dev_` in a dev stack,
    /// empty in prod: infra/README.md "Names").
    database_prefix: String,
}

impl AthenaLake {
    /// The lake at `location` (`s3://bucket[/prefix]`).
    pub fn new(
        athena: Athena,
        glue: aws_sdk_glue::Client,
        s3: aws_sdk_s3::Client,
        location: &str,
    ) -> Result<Self> {
        let rest = location.strip_prefix("s3://").ok_or_else(|| {
            Error::Config(format!(
                "the lake location '{location}' is not an s3:// URI (s3://bucket/prefix)"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        Ok(AthenaLake {
            athena,
            glue,
            store: Arc::new(S3Store::new(s3, bucket)),
            location: format!(
                "s3://{bucket}{}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{prefix}")
                }
            ),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            database_prefix: String::new(),
        })
    }

    /// Glue databases are named `<prefix><namespace>` (FLOE_GLUE_DATABASE_PREFIX): floe's
    /// SQL keeps naming `silver_s.t`, and the lake turns it into the database's name.
    pub fn with_database_prefix(mut self, prefix: &str) -> Self {
        self.database_prefix = prefix.to_owned();
        self
    }

    /// The Glue database of a namespace.
    fn db(&self, namespace: &str) -> String {
        format!("{}{namespace}", self.database_prefix)
    }

    fn data(t: &TableRef) -> TableRef {
        TableRef {
            namespace: t.namespace.clone(),
            name: format!("{}{DATA_SUFFIX}", t.name),
        }
    }

    /// A new table's folder: unique, because a renamed or dropped table may leave its files
    /// where a new table of the same name would go (Iceberg refuses a non-empty location).
    fn table_location(&self, t: &TableRef) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!(
            "{}/{}/{}-{}/",
            self.location,
            self.db(&t.namespace),
            t.name,
            &id[..8]
        )
    }

    fn pin_key(&self, t: &TableRef) -> String {
        format!(
            "{}_floe/published/{}/{}.json",
            self.prefix,
            self.db(&t.namespace),
            t.name
        )
    }

    async fn run(&self, sql: &str) -> Result<crate::athena::QueryResult> {
        if self.database_prefix.is_empty() {
            self.athena.execute(sql, None).await
        } else {
            self.athena
                .execute(
                    &relation::prefix_namespaces(sql, &self.database_prefix, &is_namespace),
                    None,
                )
                .await
        }
    }

    fn records_prefix(&self, t: &TableRef) -> String {
        format!(
            "{}_floe/snapshots/{}/{}/",
            self.prefix,
            self.db(&t.namespace),
            t.name
        )
    }

    /// The same records by batch: a write's replay check is one GET, not a read of the
    /// table's whole history.
    fn batches_prefix(&self, t: &TableRef) -> String {
        format!(
            "{}_floe/batches/{}/{}/",
            self.prefix,
            self.db(&t.namespace),
            t.name
        )
    }

    /// Removes every record floe keeps of `t`'s snapshots.
    async fn forget_records(&self, t: &TableRef) -> Result<()> {
        for prefix in [self.records_prefix(t), self.batches_prefix(t)] {
            for o in self.store.list(&prefix).await? {
                self.store.delete(&o.key).await?;
            }
        }
        Ok(())
    }

    /// `t`'s publish record, if floe manages its view.
    async fn publish_record(&self, t: &TableRef) -> Result<Option<PublishRecord>> {
        match self.store.get(&self.pin_key(t)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Internal(format!(
                    "{}: unreadable publish record ({e})",
                    self.pin_key(t)
                ))
            }),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What `t`'s view shows, as floe recorded it.
    async fn pin_state(&self, t: &TableRef) -> Result<Pin> {
        Ok(match self.publish_record(t).await? {
            None => Pin::Unmanaged,
            Some(r) => r.snapshot_id.map_or(Pin::Hidden, Pin::At),
        })
    }

    /// Points `t`'s view at snapshot `id` of its data, then records it.
    async fn pin(&self, t: &TableRef, id: i64) -> Result<()> {
        self.run(&athena_sql::publish_view(t, &Self::data(t), Some(id)))
            .await?;
        self.record_pin(t, Some(id)).await
    }

    /// Makes `t`'s view show nothing, before a table's first write is staged: until its audit
    /// publishes, readers must not see it.
    async fn hide(&self, t: &TableRef) -> Result<()> {
        self.run(&athena_sql::hidden_view(t, &Self::data(t)))
            .await?;
        self.record_pin(t, None).await
    }

    async fn record_pin(&self, t: &TableRef, id: Option<i64>) -> Result<()> {
        let now = Utc::now();
        let mut record = self
            .publish_record(t)
            .await?
            .unwrap_or_else(|| PublishRecord {
                managed_since: Some(now),
                ..Default::default()
            });
        if let Some(id) = id
            && record.snapshot_id != Some(id)
        {
            record.history.push((id, now));
        }
        record.snapshot_id = id;
        record.published_at = Some(now);
        self.store
            .put(
                &self.pin_key(t),
                serde_json::to_vec(&record)
                    .map_err(|e| Error::Internal(format!("a publish record: {e}")))?,
            )
            .await?;
        Ok(())
    }

    /// Before a write: a conflict if the published version moved since the write's read; the
    /// view pinned (or hidden, for a table with no snapshot yet) when the write is staged or is
    /// several commits, so readers never see it half-way. Returns the published snapshot the
    /// write starts from.
    async fn prepare(
        &self,
        t: &TableRef,
        options: &WriteOptions,
        several_commits: bool,
    ) -> Result<Option<i64>> {
        let state = self.pin_state(t).await?;
        let latest = self.latest(t).await?;
        let published = state.published(latest);
        if let Some(expected) = options.expected_snapshot_id
            && published != Some(expected)
        {
            return Err(Error::CommitConflict {
                table: t.to_string(),
                detail: format!(
                    "published snapshot is {published:?}, the write was computed from {expected}; \
                     it is computed again"
                ),
            });
        }
        if (options.stage_only || several_commits) && state == Pin::Unmanaged {
            match latest {
                Some(id) => self.pin(t, id).await?,
                None => self.hide(t).await?,
            }
        }
        // A write that builds on the table's rows (an insert, a MERGE) starts from the published
        // version: a staged version its audit rejected (or that was never published) is dropped
        // first. A replace (`several_commits`) deletes every row anyway.
        if !several_commits && state != Pin::Unmanaged && latest != published {
            self.reset(t, published).await?;
        }
        Ok(published)
    }

    /// Puts `t`'s data back to its published version (empty when nothing was published), as
    /// new commits behind the pinned view: Athena has no rollback. Only after a staged write
    /// that was never published, so rare; it reads the published version whole.
    async fn reset(&self, t: &TableRef, published: Option<i64>) -> Result<()> {
        let d = Self::data(t);
        tracing::info!(table = %t, ?published, "dropping an unpublished staged version before the next write");
        self.run(&athena_sql::delete_all(&d)).await?;
        if let Some(id) = published {
            let at = athena_sql::at_version(&d, id);
            let then = self
                .query_schema(&athena_sql::select_all(&at), &ReadAt::Current)
                .await?;
            let now = self.table_schema(t).await?;
            let kept: Vec<Field> = then
                .fields()
                .iter()
                .filter(|f| now.field_with_name(f.name()).is_ok())
                .map(|f| f.as_ref().clone())
                .collect();
            let cols = athena_sql::column_list(&Schema::new(kept));
            self.run(&athena_sql::insert_select(&d, &cols, &at)).await?;
        }
        Ok(())
    }

    /// The records floe keeps beside `t`'s snapshots, by snapshot id.
    async fn snapshot_records(&self, t: &TableRef) -> Result<BTreeMap<i64, SnapshotRecord>> {
        let keys = self.store.list(&self.records_prefix(t)).await?;
        let records: Vec<Result<Option<SnapshotRecord>>> =
            futures::stream::iter(keys.into_iter().map(|o| async move {
                match self.store.get(&o.key).await {
                    Ok(bytes) => Ok(serde_json::from_slice::<SnapshotRecord>(&bytes).ok()),
                    Err(Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        let mut out = BTreeMap::new();
        for r in records {
            if let Some(r) = r? {
                out.insert(r.snapshot_id, r);
            }
        }
        Ok(out)
    }

    fn lock_key(&self, t: &TableRef) -> String {
        format!(
            "{}_floe/locks/{}/{}.json",
            self.prefix,
            self.db(&t.namespace),
            t.name
        )
    }

    /// Takes `t`'s write lock: a replace is several commits on Athena, and two replaces of
    /// one table must not interleave (DELETE, DELETE, INSERT, INSERT keeps both inserts). An
    /// S3 object written only if absent; a lock older than its lease (a writer that died) is
    /// taken over. Waits up to `LOCK_WAIT`, then reports a retryable conflict.
    async fn lock(&self, t: &TableRef) -> Result<String> {
        const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(20);
        const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
        let key = self.lock_key(t);
        let owner = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            let body = serde_json::json!({"owner": owner, "expires_at": Utc::now() + LEASE});
            if self
                .store
                .put_if_absent(&key, body.to_string().into_bytes())
                .await?
            {
                return Ok(owner);
            }
            let held = self.store.get(&key).await.ok().and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| {
                        v["expires_at"]
                            .as_str()
                            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    })
            });
            if held.is_some_and(|expires| expires < Utc::now()) {
                tracing::warn!(table = %t, "taking over a write lock whose lease ran out");
                self.store.delete(&key).await?;
                continue;
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(Error::CommitConflict {
                    table: t.to_string(),
                    detail: format!(
                        "another writer held the table's write lock ({key}) for over {LOCK_WAIT:?}"
                    ),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(2));
        }
    }

    /// Releases the lock if it is still `owner`'s.
    async fn unlock(&self, t: &TableRef, owner: &str) {
        let key = self.lock_key(t);
        let ours = self.store.get(&key).await.ok().is_some_and(|b| {
            serde_json::from_slice::<serde_json::Value>(&b)
                .is_ok_and(|v| v["owner"].as_str() == Some(owner))
        });
        if ours && let Err(e) = self.store.delete(&key).await {
            tracing::warn!(table = %t, error = %e, "could not release the write lock (its lease will run out)");
        }
    }

    async fn record_snapshot(&self, t: &TableRef, record: &SnapshotRecord) -> Result<()> {
        let key = format!("{}{}.json", self.records_prefix(t), record.snapshot_id);
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::Internal(format!("a snapshot record: {e}")))?;
        self.store.put(&key, bytes.clone()).await?;
        if let Some(batch) = &record.batch_id {
            // The newest write of a batch is the one that can count (an older one was stale).
            let key = format!("{}{batch}.json", self.batches_prefix(t));
            self.store.put(&key, bytes).await?;
        }
        Ok(())
    }

    /// The newest snapshot of `t`'s data.
    async fn latest(&self, t: &TableRef) -> Result<Option<i64>> {
        Ok(self.data_snapshots(t).await?.last().map(|s| s.0))
    }

    /// (id, parent, committed_at, operation, summary) of `t`'s data, oldest first.
    async fn data_snapshots(
        &self,
        t: &TableRef,
    ) -> Result<
        Vec<(
            i64,
            Option<i64>,
            DateTime<Utc>,
            String,
            BTreeMap<String, String>,
        )>,
    > {
        let d = Self::data(t);
        let r = self.run(&athena_sql::snapshots(&d)).await?;
        r.rows
            .iter()
            .map(|row| {
                let get = |i: usize| row.get(i).cloned().flatten();
                let id = get(0)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error::Internal(format!("{t}: a snapshot without an id")))?;
                let at = get(2)
                    .and_then(|v| {
                        chrono::NaiveDateTime::parse_from_str(
                            v.trim_end_matches(" UTC"),
                            "%Y-%m-%d %H:%M:%S%.f",
                        )
                        .ok()
                    })
                    .map(|n| n.and_utc())
                    .unwrap_or_default();
                let summary: BTreeMap<String, String> = get(4)
                    .and_then(|v| serde_json::from_str(&v).ok())
                    .unwrap_or_default();
                Ok((
                    id,
                    get(1).and_then(|v| v.parse().ok()),
                    at,
                    get(3).unwrap_or_default(),
                    summary,
                ))
            })
            .collect()
    }

    /// The Glue table behind `t` (its Iceberg `__data` table).
    async fn data_table(&self, t: &TableRef) -> Result<Option<aws_sdk_glue::types::Table>> {
        let d = Self::data(t);
        let out = self
            .glue
            .get_table()
            .database_name(self.db(&d.namespace))
            .name(&d.name)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("Glue GetTable {d}"), e))?;
        Ok(out.table)
    }

    /// Runs DML statements against `t`'s data as one write with these options; the rows are
    /// the last statement's update count.
    async fn dml(
        &self,
        t: &TableRef,
        options: &WriteOptions,
        statements: &[String],
    ) -> Result<CommitOutcome> {
        // Locked even for one statement: a write on a managed table may first drop an
        // unpublished version (two more commits, see `prepare`).
        let owner = self.lock(t).await?;
        let result = async {
            if let Some(id) = self.committed_snapshot(t, options).await? {
                return self.already_committed(t, options, id).await;
            }
            let based_on = self.prepare(t, options, statements.len() > 1).await?;
            let mut rows = 0;
            for statement in statements {
                rows = self.run(statement).await?.update_count.unwrap_or(0).max(0) as u64;
            }
            self.finish(t, options, rows, 0, based_on).await
        }
        .await;
        self.unlock(t, &owner).await;
        result
    }

    /// The snapshot that committed the write's batch, if it still counts: published, or
    /// staged on the version published now (so it can still be published). A batch staged on
    /// a version since replaced is written again (its audit found it stale).
    async fn committed_snapshot(
        &self,
        t: &TableRef,
        options: &WriteOptions,
    ) -> Result<Option<i64>> {
        let Some(batch) = &options.batch_id else {
            return Ok(None);
        };
        let key = format!("{}{}.json", self.batches_prefix(t), batch.as_str());
        let mine: SnapshotRecord = match self.store.get(&key).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("{key}: unreadable snapshot record ({e})")))?,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let record = self.publish_record(t).await?;
        let now = match &record {
            None => self.latest(t).await?,
            Some(r) => r.snapshot_id,
        };
        let published = record.as_ref().is_none_or(|p| {
            p.snapshot_id == Some(mine.snapshot_id)
                || p.history.iter().any(|(id, _)| *id == mine.snapshot_id)
        });
        Ok((published || mine.based_on == now).then_some(mine.snapshot_id))
    }

    /// For an append: whether its batch is committed already, by the records or (a writer that
    /// died before recording it) among the rows of a table with a `_batch_id` column.
    async fn appended_before(
        &self,
        t: &TableRef,
        options: &WriteOptions,
    ) -> Result<Option<CommitOutcome>> {
        if let Some(id) = self.committed_snapshot(t, options).await? {
            return self.already_committed(t, options, id).await.map(Some);
        }
        let Some(batch) = &options.batch_id else {
            return Ok(None);
        };
        let schema = self.table_schema(t).await?;
        if schema.field_with_name("_batch_id").is_err() {
            return Ok(None);
        }
        let r = self
            .run(&athena_sql::batch_rows(&Self::data(t), batch.as_str()))
            .await?;
        let found = r
            .rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0;
        Ok(if found {
            Some(Self::already(self.latest(t).await?.unwrap_or_default()))
        } else {
            None
        })
    }

    /// A write found committed before: if it was a direct write that died between its commit
    /// and moving the view, the view is moved now, so the replay finishes what the first try
    /// began.
    async fn already_committed(
        &self,
        t: &TableRef,
        options: &WriteOptions,
        id: i64,
    ) -> Result<CommitOutcome> {
        // Only a version never published: one published before and replaced since stays
        // replaced (the view never moves back).
        if !options.stage_only
            && let Some(record) = self.publish_record(t).await?
            && record.snapshot_id != Some(id)
            && !record.history.iter().any(|(p, _)| *p == id)
        {
            self.pin(t, id).await?;
        }
        Ok(Self::already(id))
    }

    fn already(snapshot_id: i64) -> CommitOutcome {
        CommitOutcome {
            snapshot_id,
            already_committed: true,
            rows_added: 0,
            files_added: 0,
        }
    }

    /// After a write: publish it unless it is staged, and report it.
    async fn finish(
        &self,
        t: &TableRef,
        options: &WriteOptions,
        rows: u64,
        files: usize,
        based_on: Option<i64>,
    ) -> Result<CommitOutcome> {
        // Athena does not say which snapshot a statement committed: the newest one is this
        // write's as long as one writer at a time writes a table (the pipeline runs each
        // table's messages in order).
        let id = self
            .latest(t)
            .await?
            .ok_or_else(|| Error::Internal(format!("{t}: a write left no snapshot")))?;
        self.record_snapshot(
            t,
            &SnapshotRecord {
                snapshot_id: id,
                batch_id: options.batch_id.as_ref().map(|b| b.as_str().to_owned()),
                run_id: options.run_id.as_ref().map(|r| r.as_str().to_owned()),
                based_on,
                properties: options.properties.clone(),
            },
        )
        .await?;
        // A table whose view floe manages (it was staged once) is re-pinned by a direct write;
        // only never-staged tables (bronze, floe_audit) are written directly in the pipeline.
        if !options.stage_only && self.pin_state(t).await? != Pin::Unmanaged {
            self.pin(t, id).await?;
        }
        Ok(CommitOutcome {
            snapshot_id: id,
            already_committed: false,
            rows_added: rows,
            files_added: files,
        })
    }

    /// Uploads rows from this process as Parquet parts, which [`Self::insert_uploaded`] inserts
    /// through a temporary external table. Parts are uploaded as the rows come, [`PART_ROWS`]
    /// to a part, so a large file is never held whole. A stream that fails removes the parts
    /// it uploaded; no rows at all is `None`.
    async fn upload_rows(&self, mut rows: Rows<'_>) -> Result<Option<Uploaded>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut parts = Uploaded {
            folder: format!("{}_floe/incoming/{id}/", self.prefix),
            id,
            keys: Vec::new(),
            schema: None,
            rows: 0,
        };
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0usize;
        let uploaded = async {
            loop {
                let next = rows.next().await.transpose()?;
                let end = next.is_none();
                if let Some(b) = next {
                    parts.schema.get_or_insert_with(|| b.schema());
                    pending_rows += b.num_rows();
                    parts.rows += b.num_rows() as u64;
                    pending.push(b);
                }
                if let Some(schema) = &parts.schema
                    && pending_rows > 0
                    && (end || pending_rows >= PART_ROWS)
                {
                    let key = format!("{}part-{}.parquet", parts.folder, parts.keys.len());
                    let bytes = parquet_bytes(schema, &pending)?;
                    pending.clear();
                    pending_rows = 0;
                    self.store.put(&key, bytes).await?;
                    parts.keys.push(key);
                }
                if end {
                    return Ok::<_, Error>(());
                }
            }
        }
        .await;
        if let Err(e) = uploaded {
            self.remove_parts(&parts).await;
            return Err(e);
        }
        Ok((parts.rows > 0).then_some(parts))
    }

    /// `step`'s result; when it fails, the uploaded parts are removed first.
    async fn or_remove<T>(
        &self,
        parts: &Option<Uploaded>,
        step: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let out = step.await;
        if out.is_err()
            && let Some(p) = parts
        {
            self.remove_parts(p).await;
        }
        out
    }

    async fn remove_parts(&self, parts: &Uploaded) {
        for key in &parts.keys {
            if let Err(e) = self.store.delete(key).await {
                tracing::warn!(%key, error = %e, "temporary upload left behind");
            }
        }
    }

    /// Inserts uploaded parts into `t` with one statement; the parts and their temporary table
    /// go whatever happens.
    async fn insert_uploaded(&self, t: &TableRef, parts: Uploaded) -> Result<(u64, usize)> {
        let schema = parts.schema.clone().expect("uploaded parts have rows");
        let temp = TableRef {
            namespace: INCOMING_DATABASE.into(),
            name: format!("t_{}", parts.id),
        };
        let cols = schema
            .fields()
            .iter()
            .map(|f| format!("\"{}\"", f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let result = async {
            self.create_external(
                &temp,
                &schema,
                &format!("s3://{}/{}", self.store.bucket(), parts.folder),
                true,
            )
            .await?;
            self.run(&athena_sql::insert_select(
                &Self::data(t),
                &cols,
                &temp.to_string(),
            ))
            .await
        }
        .await;
        let dropped = self
            .glue
            .delete_table()
            .database_name(self.db(INCOMING_DATABASE))
            .name(&temp.name)
            .send()
            .await;
        if let Err(e) = dropped {
            let e = sdk_error::map("Glue DeleteTable", e);
            if !matches!(e, Error::NotFound(_)) {
                tracing::warn!(table = %temp, error = %e, "temporary table left behind");
            }
        }
        self.remove_parts(&parts).await;
        result?;
        Ok((parts.rows, parts.keys.len()))
    }

    /// A Glue external table over Parquet files under `location`.
    async fn create_external(
        &self,
        t: &TableRef,
        schema: &Schema,
        location: &str,
        temporary: bool,
    ) -> Result<()> {
        use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, TableInput};
        self.ensure_namespace(&t.namespace).await?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let ty = athena_sql::ddl_type(f.data_type())?;
                Column::builder()
                    .name(f.name())
                    .r#type(ty)
                    .build()
                    .map_err(|e| Error::Internal(format!("a Glue column: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let input = TableInput::builder()
            .name(&t.name)
            .table_type("EXTERNAL_TABLE")
            .parameters("classification", "parquet")
            .parameters("floe.temporary", temporary.to_string())
            .storage_descriptor(
                StorageDescriptor::builder()
                    .set_columns(Some(columns))
                    .location(location)
                    .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                    .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                    .serde_info(
                        SerDeInfo::builder()
                            .serialization_library(
                                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(|e| Error::Internal(format!("a Glue table input: {e}")))?;
        self.glue
            .create_table()
            .database_name(self.db(&t.namespace))
            .table_input(input)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("Glue CreateTable {t}"), e))?;
        Ok(())
    }

    /// The live files of the table's current snapshot, from `$files` (Iceberg metadata only:
    /// no data is scanned). An unpartitioned table's `$files` has no `partition` column.
    async fn files_of(&self, t: &TableRef) -> Result<Vec<floe_core::ports::FileStat>> {
        let d = Self::data(t);
        let r = match self.run(&athena_sql::files(&d, true)).await {
            Ok(r) => r,
            Err(e) if e.to_string().contains("'partition' cannot be resolved") => {
                self.run(&athena_sql::files(&d, false)).await?
            }
            Err(e) => return Err(e),
        };
        let number = |v: &Option<String>| v.as_deref().and_then(|n| n.parse::<u64>().ok());
        Ok(r.rows
            .iter()
            .map(|row| {
                let cell = |i: usize| row.get(i).cloned().flatten();
                let partition = cell(3)
                    .and_then(|j| {
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&j).ok()
                    })
                    .map(|m| {
                        m.into_iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    serde_json::Value::Null => None,
                                    serde_json::Value::String(s) => Some(s),
                                    other => Some(other.to_string()),
                                };
                                (k, v)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                floe_core::ports::FileStat {
                    partition,
                    deletes: number(&cell(0)).unwrap_or(0) != 0,
                    bytes: number(&cell(1)).unwrap_or(0),
                    rows: number(&cell(2)).unwrap_or(0),
                }
            })
            .collect())
    }

    /// The table's data and delete files.
    async fn file_count(&self, t: &TableRef) -> Result<usize> {
        let d = Self::data(t);
        let r = self.run(&athena_sql::file_count(&d)).await?;
        Ok(r.rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// [`Lake::maintain`] with the table's lock held. Athena's own statements do the work:
    /// `OPTIMIZE ... REWRITE DATA USING BIN_PACK` (which also applies delete files), then
    /// `VACUUM` with `vacuum_max_snapshot_age_seconds` set so that every snapshot time travel
    /// still needs is younger than it (Athena expires by age only).
    async fn maintain_locked(
        &self,
        t: &TableRef,
        m: &floe_core::ports::Maintenance,
    ) -> Result<floe_core::ports::MaintenanceReport> {
        let mut report = floe_core::ports::MaintenanceReport::default();
        let iceberg = match self.data_table(t).await {
            Ok(found) => found.is_some(),
            Err(Error::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if !iceberg {
            report.skipped = Some(
                "not an Iceberg table (a log of Parquet objects, such as floe_audit.query_log): \
                 nothing to compact or expire"
                    .into(),
            );
            return Ok(report);
        }
        let state = self.pin_state(t).await?;
        let latest = self.latest(t).await?;
        let published = state.published(latest);
        if state != Pin::Unmanaged && latest != published {
            report.skipped = Some(
                "a staged version is not published (awaiting its audit, or rejected): the next \
                 write settles it, then maintenance can run"
                    .into(),
            );
            return Ok(report);
        }
        let d = Self::data(t);
        let files = self.file_count(t).await?;
        report.files_before = files;
        report.files_after = files;
        let snapshots = self.snapshots(t).await?;
        // When each snapshot became what readers see.
        let shown: Vec<(i64, DateTime<Utc>)> = match self.publish_record(t).await? {
            None => snapshots
                .iter()
                .map(|s| (s.snapshot_id, s.committed_at))
                .collect(),
            Some(r) => snapshots
                .iter()
                .filter(|s| r.managed_since.is_some_and(|since| s.committed_at < since))
                .map(|s| (s.snapshot_id, s.committed_at))
                .chain(r.history.iter().copied())
                .collect(),
        };
        let now = Utc::now();
        let keep = floe_core::ports::snapshots_to_keep(&snapshots, &shown, now, m.keep_for);
        let oldest_kept = snapshots
            .iter()
            .filter(|s| keep.contains(&s.snapshot_id))
            .map(|s| s.committed_at)
            .min();
        report.snapshots_expired = snapshots
            .iter()
            .filter(|s| oldest_kept.is_some_and(|o| s.committed_at < o - VACUUM_MARGIN))
            .count();
        report.snapshots_kept = snapshots.len() - report.snapshots_expired;
        report.compacted = files > 1;
        if m.dry_run {
            return Ok(report);
        }
        if report.compacted {
            self.run(&athena_sql::optimize(&d)).await?;
            let compacted = self.latest(t).await?;
            if compacted != latest
                && let Some(id) = compacted
            {
                // The same rows as the published version: its records carry over (the next
                // extract's plan reads them), marked as maintenance, and readers move to it.
                let records = self.snapshot_records(t).await?;
                let mut properties = published
                    .filter(|_| state != Pin::Unmanaged)
                    .and_then(|p| records.get(&p))
                    .map(|r| r.properties.clone())
                    .unwrap_or_default();
                properties.insert(floe_core::ports::MAINTENANCE.into(), "compaction".into());
                self.record_snapshot(
                    t,
                    &SnapshotRecord {
                        snapshot_id: id,
                        batch_id: None,
                        run_id: None,
                        based_on: published,
                        properties,
                    },
                )
                .await?;
                if state != Pin::Unmanaged {
                    self.pin(t, id).await?;
                }
            }
            report.files_after = self.file_count(t).await?;
        }
        if let Some(oldest) = oldest_kept {
            let age = ((now - oldest) + VACUUM_MARGIN).num_seconds().max(1);
            self.run(&athena_sql::vacuum_retention(&d, age)).await?;
            self.run(&athena_sql::vacuum(&d)).await?;
            let after = self.snapshots(t).await?;
            report.snapshots_expired = snapshots
                .iter()
                .filter(|s| !after.iter().any(|a| a.snapshot_id == s.snapshot_id))
                .count();
            report.snapshots_kept = after.len();
        }
        Ok(report)
    }

    /// `sql` with the tables `at` names read at their snapshot or instant: each relation found
    /// by [`relation::relations`] and rendered as a typed [`Read`] of its data table.
    async fn rewrite(&self, sql: &str, at: &ReadAt) -> Result<String> {
        let read = |t: &TableRef, at: At| Read {
            table: Self::data(t),
            at,
        };
        let reads: BTreeMap<TableRef, Read> = match at {
            ReadAt::Current => return Ok(sql.to_owned()),
            ReadAt::Pinned(pins) => pins
                .iter()
                .map(|(t, id)| (t.clone(), read(t, At::Version(*id))))
                .collect(),
            ReadAt::Snapshot(id) => {
                let tables = relation::tables(sql, &is_namespace);
                let [t] = tables.as_slice() else {
                    return Err(Error::Config(format!(
                        "a read at snapshot {id} must name exactly one table; this one names {}",
                        if tables.is_empty() {
                            "none".to_owned()
                        } else {
                            tables
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )));
                };
                BTreeMap::from([(t.clone(), read(t, At::Version(*id)))])
            }
            ReadAt::Timestamp(ts) => {
                let mut reads = BTreeMap::new();
                for t in relation::tables(sql, &is_namespace) {
                    let at = match self.publish_record(&t).await? {
                        // What the view showed then: the last publish at or before `ts`, or
                        // every commit if floe took the view over later.
                        Some(r) if r.managed_since.is_none_or(|since| *ts >= since) => {
                            match r.history.iter().rev().find(|(_, at)| at <= ts) {
                                Some((id, _)) => At::Version(*id),
                                None => At::Nothing,
                            }
                        }
                        _ => At::Timestamp(*ts),
                    };
                    reads.insert(t.clone(), read(&t, at));
                }
                reads
            }
        };
        Ok(relation::substitute(sql, &is_namespace, |t| {
            reads.get(t).cloned()
        }))
    }
}

/// Whether a name is one of floe's namespaces (the layers, gold targets, floe's own).
fn is_namespace(name: &str) -> bool {
    name.starts_with("bronze_")
        || name.starts_with("silver_")
        || name == "gold"
        || name.starts_with("gold_")
        || name == "floe_audit"
        || name == INCOMING_DATABASE
}

/// Rows uploaded for an insert: Parquet parts under one folder.
struct Uploaded {
    id: String,
    folder: String,
    keys: Vec<String>,
    schema: Option<SchemaRef>,
    rows: u64,
}

/// Rows to insert, as they come.
type Rows<'a> = futures::stream::BoxStream<'a, Result<RecordBatch>>;

/// Rows held in memory, as a stream.
fn held(batches: Vec<RecordBatch>) -> Rows<'static> {
    futures::stream::iter(batches.into_iter().map(Ok)).boxed()
}

/// Rows per Parquet part of an insert (a part is encoded in memory before it is uploaded).
const PART_ROWS: usize = 1 << 20;

/// A landed batch as Parquet for Athena to read once. Compressed (zstd, as Trino writes
/// Iceberg files), since the INSERT that reads it is billed by these bytes: uncompressed, a
/// batch of text columns costs about four times the bronze it becomes.
pub fn parquet_bytes(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    use parquet::basic::{Compression, ZstdLevel};
    let mut buf = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
        .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
    for b in batches {
        w.write(b)
            .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
    }
    w.close()
        .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
    Ok(buf)
}

/// The Arrow type of a Glue (Hive) column type.
fn arrow_type(hive: &str) -> DataType {
    let h = hive.to_ascii_lowercase();
    match h.as_str() {
        "string" | "varchar" | "char" => DataType::Utf8,
        "tinyint" => DataType::Int8,
        "smallint" => DataType::Int16,
        "int" | "integer" => DataType::Int32,
        "bigint" => DataType::Int64,
        "float" | "real" => DataType::Float32,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        t if t.starts_with("timestamp") => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        t if t.starts_with("decimal(") => {
            let inner = t.trim_start_matches("decimal(").trim_end_matches(')');
            let (p, s) = inner.split_once(',').unwrap_or((inner, "0"));
            DataType::Decimal128(
                p.trim().parse().unwrap_or(38),
                s.trim().parse().unwrap_or(0),
            )
        }
        _ => DataType::Utf8,
    }
}

/// The Arrow type of a result column, as exact as Athena's metadata says (a `decimal` carries
/// its precision and scale beside the name).
fn column_type(c: &crate::athena::Column) -> DataType {
    match c.data_type.to_ascii_lowercase().as_str() {
        "decimal" if c.precision > 0 => {
            DataType::Decimal128(c.precision.clamp(1, 38) as u8, c.scale.clamp(0, 38) as i8)
        }
        _ => arrow_type(&c.data_type),
    }
}

/// Athena's rows as one record batch: numbers, booleans, dates and timestamps typed, the rest
/// as text.
fn to_batch(r: &crate::athena::QueryResult) -> Result<RecordBatch> {
    let fields: Vec<Field> = r
        .columns
        .iter()
        .map(|c| {
            let ty = match arrow_type(&c.data_type) {
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    DataType::Int64
                }
                DataType::Float32 | DataType::Float64 => DataType::Float64,
                t @ (DataType::Boolean | DataType::Date32 | DataType::Timestamp(_, _)) => t,
                _ => DataType::Utf8,
            };
            Field::new(&c.name, ty, true)
        })
        .collect();
    let col = |i: usize| r.rows.iter().map(move |row| row.get(i).cloned().flatten());
    let arrays: Vec<ArrayRef> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| -> ArrayRef {
            match f.data_type() {
                DataType::Int64 => Arc::new(
                    col(i)
                        .map(|v| v.and_then(|v| v.parse::<i64>().ok()))
                        .collect::<Int64Array>(),
                ),
                DataType::Float64 => Arc::new(
                    col(i)
                        .map(|v| v.and_then(|v| v.parse::<f64>().ok()))
                        .collect::<Float64Array>(),
                ),
                DataType::Boolean => Arc::new(
                    col(i)
                        .map(|v| v.map(|v| v == "true"))
                        .collect::<BooleanArray>(),
                ),
                DataType::Date32 => Arc::new(
                    col(i)
                        .map(|v| {
                            v.and_then(|v| chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok())
                                .map(|d| (d - chrono::NaiveDate::default()).num_days() as i32)
                        })
                        .collect::<Date32Array>(),
                ),
                DataType::Timestamp(_, _) => Arc::new(
                    col(i)
                        .map(|v| {
                            v.and_then(|v| {
                                chrono::NaiveDateTime::parse_from_str(
                                    v.trim_end_matches(" UTC"),
                                    "%Y-%m-%d %H:%M:%S%.f",
                                )
                                .ok()
                            })
                            .map(|t| t.and_utc().timestamp_micros())
                        })
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC"),
                ),
                _ => Arc::new(col(i).collect::<StringArray>()),
            }
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::Internal(format!("Athena results as Arrow: {e}")))
}

/// The writes [`Lake::write`] dispatches to.
impl AthenaLake {
    async fn append_rows(
        &self,
        table: &TableRef,
        batches: Rows<'_>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        if let Some(done) = self.appended_before(table, options).await? {
            return Ok(done);
        }
        // Every row uploaded before the table is touched: a stream that fails (a file refused
        // half way through its chunks) leaves it as it was.
        let parts = self.upload_rows(batches).await?;
        let based_on = self
            .or_remove(&parts, self.prepare(table, options, false))
            .await?;
        let (rows, files) = match parts {
            Some(p) => self.insert_uploaded(table, p).await?,
            None => (0, 0),
        };
        self.finish(table, options, rows, files, based_on).await
    }

    async fn overwrite_rows(
        &self,
        table: &TableRef,
        batches: Rows<'_>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let owner = self.lock(table).await?;
        let result = async {
            if let Some(id) = self.committed_snapshot(table, options).await? {
                return self.already_committed(table, options, id).await;
            }
            // Every row uploaded before the table is emptied: a stream that fails leaves it
            // as it was.
            let parts = self.upload_rows(batches).await?;
            let based_on = self
                .or_remove(&parts, self.prepare(table, options, true))
                .await?;
            self.or_remove(
                &parts,
                self.run(&athena_sql::delete_all(&Self::data(table))),
            )
            .await?;
            let (rows, files) = match parts {
                Some(p) => self.insert_uploaded(table, p).await?,
                None => (0, 0),
            };
            self.finish(table, options, rows, files, based_on).await
        }
        .await;
        self.unlock(table, &owner).await;
        result
    }

    async fn overwrite_query_rows(
        &self,
        table: &TableRef,
        sql: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let sql = self.rewrite(sql, at).await?;
        let d = Self::data(table);
        // By name, not position: a table whose schema evolved has its columns in another order
        // than the query (added columns come last, retired ones stay where they were).
        let cols = athena_sql::column_list(&*self.table_schema(table).await?);
        self.dml(
            table,
            options,
            &[
                athena_sql::delete_all(&d),
                athena_sql::insert_query(&d, &cols, &sql),
            ],
        )
        .await
    }

    async fn append_query_rows(
        &self,
        table: &TableRef,
        sql: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        let sql = self.rewrite(sql, at).await?;
        if let Some(done) = self.appended_before(table, options).await? {
            return Ok(done);
        }
        // By name: the query may have fewer columns than the table (an incremental model's
        // table keeps a column its query dropped) or another order.
        let cols = athena_sql::column_list(&*self.query_schema(&sql, &ReadAt::Current).await?);
        let insert = athena_sql::insert_query(&Self::data(table), &cols, &sql);
        self.dml(table, options, &[insert]).await
    }

    async fn execute_statement(
        &self,
        table: &TableRef,
        statement: &str,
        at: &ReadAt,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        // The statement reads its inputs as `at` says: a model's staged parents, not the
        // versions published before this build.
        let statement = self.rewrite(statement, at).await?;
        self.dml(table, options, &[statement]).await
    }
}

#[async_trait]
impl Lake for AthenaLake {
    async fn ensure_namespace(&self, namespace: &str) -> Result<()> {
        let input = aws_sdk_glue::types::DatabaseInput::builder()
            .name(self.db(namespace))
            .build()
            .map_err(|e| Error::Internal(format!("a Glue database input: {e}")))?;
        match self
            .glue
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error::map(&format!("Glue CreateDatabase {namespace}"), e) {
                Error::Internal(m) if m.contains("AlreadyExists") => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn create_table(&self, table: &TableRef, schema: SchemaRef) -> Result<()> {
        self.create_partitioned_table(table, schema, &[]).await
    }

    async fn create_partitioned_table(
        &self,
        table: &TableRef,
        schema: SchemaRef,
        partition_by: &[floe_core::PartitionField],
    ) -> Result<()> {
        if self.table_exists(table).await? {
            return Err(Error::AlreadyExists(table.to_string()));
        }
        self.ensure_namespace(&table.namespace).await?;
        let ddl = athena_sql::create_table(
            &Self::data(table),
            &schema,
            &self.table_location(table),
            partition_by,
        )?;
        self.run(&ddl).await?;
        self.run(&athena_sql::publish_view(table, &Self::data(table), None))
            .await?;
        Ok(())
    }

    async fn evolve_schema(
        &self,
        table: &TableRef,
        edits: &[floe_core::ports::SchemaEdit],
    ) -> Result<()> {
        use floe_core::ports::SchemaEdit;
        // Edits already in effect are skipped (Glue keeps the columns of the current schema).
        let current = self.table_schema(table).await?;
        let stored = |d: &DataType| match d {
            DataType::Int8 | DataType::Int16 => DataType::Int32,
            d => d.clone(),
        };
        let pending: Vec<SchemaEdit> = edits
            .iter()
            .filter(|e| match e {
                SchemaEdit::AddColumn { name, .. } => current.field_with_name(name).is_err(),
                SchemaEdit::WidenColumn { name, ty } | SchemaEdit::ReplaceColumn { name, ty } => {
                    current
                        .field_with_name(name)
                        .is_ok_and(|f| stored(f.data_type()) != stored(ty))
                }
                SchemaEdit::DropColumn { name } => current.field_with_name(name).is_ok(),
                SchemaEdit::MakeOptional { .. } => false,
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        for sql in athena_sql::alter_columns(&Self::data(table), &pending)? {
            self.run(&sql).await?;
        }
        // A view keeps the columns it was created with: the readers' view of a table that is
        // not pinned (`SELECT *` of the data table, or the hidden one) is stale now and is made again. A pinned
        // view reads its snapshot with that snapshot's schema and stays as it is.
        match self.publish_record(table).await?.map(|r| r.snapshot_id) {
            None => {
                self.run(&athena_sql::publish_view(table, &Self::data(table), None))
                    .await?;
            }
            Some(None) => {
                self.run(&athena_sql::hidden_view(table, &Self::data(table)))
                    .await?;
            }
            Some(Some(_)) => {}
        }
        Ok(())
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool> {
        match self
            .glue
            .get_table()
            .database_name(self.db(&table.namespace))
            .name(&table.name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match sdk_error::map(&format!("Glue GetTable {table}"), e) {
                Error::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn table_properties(
        &self,
        table: &TableRef,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(self
            .data_table(table)
            .await?
            .and_then(|t| t.parameters)
            .map(|p| p.into_iter().collect())
            .unwrap_or_default())
    }

    async fn table_schema(&self, table: &TableRef) -> Result<SchemaRef> {
        let found = self.data_table(table).await?;
        let columns = found
            .as_ref()
            .and_then(|t| t.storage_descriptor())
            .map(|s| s.columns().to_vec())
            .unwrap_or_default();
        if columns.is_empty() && found.is_some() {
            // An engine that keeps the columns only in the Iceberg metadata: ask Athena.
            return self
                .query_schema(
                    &athena_sql::select_all(&Self::data(table).to_string()),
                    &ReadAt::Current,
                )
                .await;
        }
        Ok(Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(c.name(), arrow_type(c.r#type().unwrap_or("string")), true))
                .collect::<Vec<_>>(),
        )))
    }

    async fn list_tables(&self, namespace: Option<&str>) -> Result<Vec<TableRef>> {
        // Namespaces (the names floe uses), from this lake's databases only.
        let namespaces: Vec<String> = match namespace {
            Some(n) => vec![n.to_owned()],
            None => {
                let out = self
                    .glue
                    .get_databases()
                    .send()
                    .await
                    .map_err(|e| sdk_error::map("Glue GetDatabases", e))?;
                out.database_list()
                    .iter()
                    .filter_map(|d| d.name().strip_prefix(self.database_prefix.as_str()))
                    .map(str::to_owned)
                    .collect()
            }
        };
        let mut out = Vec::new();
        for db in namespaces
            .iter()
            .filter(|d| d.as_str() != INCOMING_DATABASE)
        {
            let tables = self
                .glue
                .get_tables()
                .database_name(self.db(db))
                .send()
                .await
                .map_err(|e| sdk_error::map(&format!("Glue GetTables {db}"), e))?;
            for t in tables.table_list() {
                if !t.name().ends_with(DATA_SUFFIX) {
                    out.push(TableRef {
                        namespace: db.clone(),
                        name: t.name().to_owned(),
                    });
                }
            }
        }
        out.sort_by_key(|t| t.to_string());
        Ok(out)
    }

    async fn drop_table(&self, table: &TableRef) -> Result<()> {
        self.run(&athena_sql::drop_view(table)).await?;
        self.run(&athena_sql::drop_table(&Self::data(table)))
            .await?;
        self.forget_records(table).await?;
        self.store.delete(&self.pin_key(table)).await
    }

    async fn write(
        &self,
        table: &TableRef,
        write: Write<'_>,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        match write {
            Write::Append(Input::Rows(batches)) => {
                self.append_rows(table, held(batches), options).await
            }
            Write::Overwrite(Input::Rows(batches)) => {
                self.overwrite_rows(table, held(batches), options).await
            }
            Write::Append(Input::Stream(rows)) => self.append_rows(table, rows, options).await,
            Write::Overwrite(Input::Stream(rows)) => {
                self.overwrite_rows(table, rows, options).await
            }
            Write::Append(Input::Query { sql, at }) => {
                self.append_query_rows(table, sql, at, options).await
            }
            Write::Overwrite(Input::Query { sql, at }) => {
                self.overwrite_query_rows(table, sql, at, options).await
            }
            Write::Statement { sql, at } => self.execute_statement(table, sql, at, options).await,
            Write::Append(Input::QueryOver { .. }) | Write::Overwrite(Input::QueryOver { .. }) => {
                Err(Error::Config(format!(
                    "Athena reads no rows held in memory (writing {table}); use a query over the \
                     lake's tables instead (see Lake::capabilities)"
                )))
            }
            Write::Delta { .. } => Err(Error::Config(format!(
                "Athena replaces rows with a MERGE statement, not a row delta (writing {table}); \
                 see Lake::capabilities"
            ))),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dml: true,
            table_properties: true,
            partitioning: true,
            billed_by_scan: true,
            memory_relations: false,
            row_deltas: false,
        }
    }

    async fn append_log(&self, table: &TableRef, batches: Vec<RecordBatch>) -> Result<()> {
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Ok(());
        };
        // A Hive table over Parquet objects: an entry is one PutObject, no Athena statement
        // (each would bill 10 MB), and readers see it at once.
        let folder = format!(
            "{}_floe/logs/{}/{}/",
            self.prefix,
            self.db(&table.namespace),
            table.name
        );
        if !self.table_exists(table).await? {
            match self
                .create_external(
                    table,
                    &schema,
                    &format!("s3://{}/{folder}", self.store.bucket()),
                    false,
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.to_string().contains("AlreadyExists") => {}
                Err(e) => return Err(e),
            }
        }
        let key = format!("{folder}{}.parquet", uuid::Uuid::new_v4().simple());
        self.store
            .put(&key, parquet_bytes(&schema, &batches)?)
            .await
            .map(|_| ())
    }

    async fn file_stats(&self, table: &TableRef) -> Result<Vec<floe_core::ports::FileStat>> {
        self.files_of(table).await
    }

    async fn maintain(
        &self,
        table: &TableRef,
        maintenance: &floe_core::ports::Maintenance,
    ) -> Result<floe_core::ports::MaintenanceReport> {
        // Under the table's lock: no write may land between the check and the re-pin.
        let owner = self.lock(table).await?;
        let report = self.maintain_locked(table, maintenance).await;
        self.unlock(table, &owner).await;
        report
    }

    async fn create_view(&self, view: &TableRef, sql: &str) -> Result<()> {
        self.ensure_namespace(&view.namespace).await?;
        self.run(&athena_sql::create_view(view, sql))
            .await
            .map(|_| ())
    }

    async fn view_sql(&self, view: &TableRef) -> Result<Option<String>> {
        let tables = self.list_tables(Some(&view.namespace)).await?;
        if !tables.contains(view) {
            return Ok(None);
        }
        let r = self.run(&athena_sql::show_create_view(view)).await?;
        Ok(Some(
            r.rows
                .iter()
                .filter_map(|row| row.first().cloned().flatten())
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }

    async fn drop_view(&self, view: &TableRef) -> Result<()> {
        self.run(&athena_sql::drop_view(view)).await.map(|_| ())
    }

    async fn publish_snapshot(&self, table: &TableRef, snapshot_id: i64) -> Result<()> {
        let state = self.pin_state(table).await?;
        if state == Pin::At(snapshot_id) {
            return Ok(());
        }
        let history = self.snapshots(table).await?;
        let Some(staged) = history.iter().find(|s| s.snapshot_id == snapshot_id) else {
            return Err(Error::NotFound(format!(
                "table {table} has no snapshot {snapshot_id}"
            )));
        };
        let now = history.iter().find(|s| s.is_current).map(|s| s.snapshot_id);
        if staged.based_on != now {
            return Err(Error::CommitConflict {
                table: table.to_string(),
                detail: format!(
                    "snapshot {snapshot_id} was computed from {:?} but {now:?} is published now: \
                     stage it again",
                    staged.based_on
                ),
            });
        }
        self.pin(table, snapshot_id).await
    }

    async fn publish_table(
        &self,
        staged: &TableRef,
        live: &TableRef,
        options: &WriteOptions,
    ) -> Result<CommitOutcome> {
        if !self.table_exists(live).await? {
            let schema = self.table_schema(staged).await?;
            self.create_table(live, schema).await?;
        }
        let outcome = self
            .overwrite_query_rows(
                live,
                &athena_sql::select_all(&Self::data(staged).to_string()),
                &ReadAt::Current,
                options,
            )
            .await?;
        self.pin(live, outcome.snapshot_id).await?;
        self.drop_table(staged).await?;
        Ok(outcome)
    }

    async fn rename_table(&self, from: &TableRef, to: &TableRef) -> Result<()> {
        if self.table_exists(to).await? {
            return Err(Error::AlreadyExists(to.to_string()));
        }
        self.run(&athena_sql::rename_table(
            &Self::data(from),
            &Self::data(to),
        ))
        .await?;
        let record = self.publish_record(from).await?;
        self.run(&athena_sql::drop_view(from)).await?;
        // The snapshots keep their ids: their records move with the table.
        for (_, r) in self.snapshot_records(from).await? {
            self.record_snapshot(to, &r).await?;
        }
        // The batch index as it was (which write of a batch is the newest is not in the ids).
        let (from_batches, to_batches) = (self.batches_prefix(from), self.batches_prefix(to));
        for o in self.store.list(&from_batches).await? {
            let bytes = self.store.get(&o.key).await?;
            let name = o.key.trim_start_matches(from_batches.as_str());
            self.store
                .put(&format!("{to_batches}{name}"), bytes)
                .await?;
        }
        match record.as_ref().map(|r| r.snapshot_id) {
            Some(Some(id)) => {
                self.run(&athena_sql::publish_view(to, &Self::data(to), Some(id)))
                    .await?
            }
            Some(None) => {
                self.run(&athena_sql::hidden_view(to, &Self::data(to)))
                    .await?
            }
            None => {
                self.run(&athena_sql::publish_view(to, &Self::data(to), None))
                    .await?
            }
        };
        if let Some(r) = &record {
            let bytes = serde_json::to_vec(r)
                .map_err(|e| Error::Internal(format!("a publish record: {e}")))?;
            self.store.put(&self.pin_key(to), bytes).await?;
        }
        self.forget_records(from).await?;
        self.store.delete(&self.pin_key(from)).await
    }

    async fn snapshots(&self, table: &TableRef) -> Result<Vec<SnapshotInfo>> {
        let record = self.publish_record(table).await?;
        let all = self.data_snapshots(table).await?;
        let mut records = self.snapshot_records(table).await?;
        let latest = all.last().map(|s| s.0);
        let current = match &record {
            None => latest,
            Some(r) => r.snapshot_id,
        };
        Ok(all
            .into_iter()
            .map(|(id, parent, at, operation, mut summary)| {
                let number = |k: &str| summary.get(k).and_then(|v| v.parse().ok());
                let (added_rows, total_rows) = (number("added-records"), number("total-records"));
                // A never-managed table showed every commit as it landed; a managed one shows
                // what was pinned, and showed every commit before floe took its view over.
                let published = match &record {
                    None => true,
                    Some(r) => {
                        r.history.iter().any(|(p, _)| *p == id)
                            || r.managed_since.is_some_and(|since| at < since)
                    }
                };
                // A snapshot without a record (its writer died before writing it) was at
                // least computed from its parent.
                let recorded = records.remove(&id);
                let based_on = recorded.as_ref().map_or(parent, |r| r.based_on);
                let mine = recorded.unwrap_or_default();
                summary.extend(mine.properties);
                SnapshotInfo {
                    snapshot_id: id,
                    parent_id: parent,
                    based_on,
                    committed_at: at,
                    operation,
                    batch_id: mine.batch_id,
                    run_id: mine.run_id,
                    added_rows,
                    total_rows,
                    is_current: current == Some(id),
                    published,
                    summary,
                }
            })
            .collect())
    }

    async fn query_schema(&self, sql: &str, at: &ReadAt) -> Result<SchemaRef> {
        let r = self
            .run(&self.rewrite(&athena_sql::schema_probe(sql), at).await?)
            .await?;
        Ok(Arc::new(Schema::new(
            r.columns
                .iter()
                .map(|c| Field::new(&c.name, column_type(c), true))
                .collect::<Vec<_>>(),
        )))
    }

    async fn query(&self, sql: &str, at: &ReadAt) -> Result<Vec<RecordBatch>> {
        let r = self.run(&self.rewrite(sql, at).await?).await?;
        Ok(vec![to_batch(&r)?])
    }

    fn dialect(&self) -> Dialect {
        Dialect::Trino
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_types_map_to_arrow() {
        assert_eq!(arrow_type("decimal(5,2)"), DataType::Decimal128(5, 2));
        assert_eq!(arrow_type("bigint"), DataType::Int64);
        assert!(matches!(
            arrow_type("timestamp(6)"),
            DataType::Timestamp(_, _)
        ));
    }
}
