//! The file ledger: `floe_audit.files`, one row each time something happens to a landed file
//! (landed in bronze, quarantined, its history published or rejected, its message
//! dead-lettered), so "where is file X" always has an answer. The newest row of a key is the
//! file's status; a file in the landing zone with no row yet is pending (see [`status_of`]).
//!
//! Each row is its own append, idempotent by (file, status): a redelivered message records
//! nothing twice.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use floe_core::message::{Envelope, StageMessage};
use floe_core::ports::{Lake, ReadAt};
use floe_core::{BatchId, Error, ObjectRef, Result, RunId, TableRef};

/// The ledger table.
pub fn table() -> TableRef {
    TableRef::new("floe_audit", "files").expect("a valid name")
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// In the landing zone, not processed yet (never written: a file without rows).
    Pending,
    /// Appended to bronze; its silver history is being built.
    Landed,
    /// Refused by landing: copied to the quarantine with a report.
    Quarantined,
    /// Its silver history passed the audit and was published.
    Published,
    /// Its silver history failed the audit: left out of every later build.
    Rejected,
    /// A stage failed on it for good: its message is in a dead-letter queue.
    DeadLettered,
}

impl FileStatus {
    /// The name in the ledger and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Landed => "landed",
            FileStatus::Quarantined => "quarantined",
            FileStatus::Published => "published",
            FileStatus::Rejected => "rejected",
            FileStatus::DeadLettered => "dead_lettered",
        }
    }

    /// Every status, for `--status` and its help.
    pub const ALL: [FileStatus; 6] = [
        FileStatus::Pending,
        FileStatus::Landed,
        FileStatus::Quarantined,
        FileStatus::Published,
        FileStatus::Rejected,
        FileStatus::DeadLettered,
    ];

    /// The status of a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One event of a file.
#[derive(Debug, Clone)]
pub struct FileEvent {
    /// The landed object.
    pub object: ObjectRef,
    /// `source.table`, when the key names a declared table.
    pub table: Option<String>,
    /// The extract time, when the key has one.
    pub extract_ts: Option<DateTime<Utc>>,
    /// What happened.
    pub status: FileStatus,
    /// Why (a quarantine's first problem, a rejection's failed tests, a dead-letter's error).
    pub reason: Option<String>,
    /// The batch (bronze and silver), when the file got that far.
    pub batch_id: Option<String>,
    /// The quarantine report, for a quarantined file.
    pub report: Option<String>,
}

fn schema() -> Arc<Schema> {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("file_key", DataType::Utf8, false),
        Field::new("bucket", DataType::Utf8, false),
        Field::new("etag", DataType::Utf8, true),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("extract_ts", utc.clone(), true),
        Field::new("status", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("batch_id", DataType::Utf8, true),
        Field::new("report", DataType::Utf8, true),
        Field::new("recorded_at", utc, false),
    ]))
}

/// Appends `event` to the ledger (nothing if the same file already has this status).
pub async fn record(
    lake: &dyn Lake,
    event: &FileEvent,
    at: DateTime<Utc>,
    run: &RunId,
) -> Result<()> {
    let o = &event.object;
    let text = |v: Option<&str>| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let utc = |v: Option<i64>| {
        Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC")) as ArrayRef
    };
    let columns = vec![
        text(Some(&o.key)),
        text(Some(&o.bucket)),
        text(o.etag.as_deref()),
        Arc::new(Int64Array::from(vec![o.size as i64])),
        text(event.table.as_deref()),
        utc(event.extract_ts.map(|t| t.timestamp_micros())),
        text(Some(event.status.as_str())),
        text(event.reason.as_deref()),
        text(event.batch_id.as_deref()),
        text(event.report.as_deref()),
        utc(Some(at.timestamp_micros())),
    ];
    let identity = BatchId::for_object(o);
    let batch = BatchId::derive(&["ledger", identity.as_str(), event.status.as_str()]);
    crate::floe_audit::append(lake, &table(), schema(), columns, batch, run).await
}

/// The landed file a stage message is about, if it names one (a standardise message, or an
/// audit message of silver).
pub fn object_of(message: &StageMessage) -> Option<&ObjectRef> {
    match message {
        StageMessage::Standardise { object, .. } => Some(object),
        StageMessage::Audit { redo, .. } => object_of(redo),
        _ => None,
    }
    .filter(|o| !o.key.is_empty())
}

/// Records that the message `body` of `stage` was dead-lettered, for the files it names (an S3
/// event's objects, or a stage message's file). Never fails: the dead-letter itself matters
/// more than its ledger row, which is logged when it cannot be written.
pub async fn record_dead_letter(
    lake: &dyn Lake,
    project: &floe_config::Project,
    stage: &str,
    body: &str,
    reason: &str,
    at: DateTime<Utc>,
) {
    let mut files: Vec<(ObjectRef, Option<String>)> = Vec::new();
    if let Ok(crate::events::S3Event::Created(objects)) = crate::events::parse(body) {
        files.extend(objects.into_iter().map(|o| (o, None)));
    } else if let Ok(m) = Envelope::from_json(body)
        && let Some(o) = object_of(&m.body)
    {
        files.push((o.clone(), Some(m.batch_id.to_string())));
    }
    for (object, batch_id) in files {
        let key = crate::keys::parse_key(&object.key).ok();
        let table = key
            .as_ref()
            .map(|k| format!("{}.{}", k.source, k.table))
            .filter(|t| project.table(t).is_ok());
        let event = FileEvent {
            extract_ts: key.map(|k| k.extract_ts),
            object,
            table,
            status: FileStatus::DeadLettered,
            reason: Some(format!("{stage}: {reason}")),
            batch_id,
            report: None,
        };
        if let Err(e) = record(lake, &event, at, &RunId::new()).await {
            tracing::error!(file = %event.object.key, error = %e, "could not record the dead-letter in the file ledger");
        }
    }
}

/// A file's latest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The landing key.
    pub key: String,
    /// `source.table`, when known.
    pub table: Option<String>,
    /// The extract time, when known.
    pub extract_ts: Option<DateTime<Utc>>,
    /// The size in bytes.
    pub size: u64,
    /// The status.
    pub status: FileStatus,
    /// Why, for the statuses that have a reason.
    pub reason: Option<String>,
    /// The batch.
    pub batch_id: Option<String>,
    /// The quarantine report.
    pub report: Option<String>,
    /// When the status was recorded (None for a pending file).
    pub at: Option<DateTime<Utc>>,
}

/// Every file the ledger knows, at its latest status, and every file of `landing` (the keys in
/// the landing zone) it does not know yet as pending; ordered by key.
pub async fn status_of(lake: &dyn Lake, landing: &[ObjectRef]) -> Result<Vec<FileRow>> {
    let mut out: Vec<FileRow> = Vec::new();
    if lake.table_exists(&table()).await? {
        let sql = floe_sql::reads::latest_file_records(&table());
        for b in lake.query(&sql, &ReadAt::Current).await? {
            let text = |c: usize| -> Result<StringArray> {
                let a = arrow_cast::cast(b.column(c), &DataType::Utf8)
                    .map_err(|e| Error::Internal(format!("reading the file ledger: {e}")))?;
                Ok(a.as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to text")
                    .clone())
            };
            let time = |c: usize| -> Result<TimestampMicrosecondArray> {
                let a = arrow_cast::cast(
                    b.column(c),
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )
                .map_err(|e| Error::Internal(format!("reading the file ledger: {e}")))?;
                Ok(a.as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("cast to timestamps")
                    .clone())
            };
            let (key, tbl, ts, size, status, reason, batch, report, at) = (
                text(0)?,
                text(1)?,
                time(2)?,
                text(3)?,
                text(4)?,
                text(5)?,
                text(6)?,
                text(7)?,
                time(8)?,
            );
            let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
            let when = |a: &TimestampMicrosecondArray, i: usize| {
                (!a.is_null(i))
                    .then(|| DateTime::from_timestamp_micros(a.value(i)))
                    .flatten()
            };
            for i in 0..b.num_rows() {
                out.push(FileRow {
                    key: key.value(i).to_owned(),
                    table: opt(&tbl, i),
                    extract_ts: when(&ts, i),
                    size: size.value(i).parse().unwrap_or(0),
                    status: FileStatus::parse(status.value(i)).unwrap_or(FileStatus::Pending),
                    reason: opt(&reason, i),
                    batch_id: opt(&batch, i),
                    report: opt(&report, i),
                    at: when(&at, i),
                });
            }
        }
    }
    let known: std::collections::BTreeSet<String> = out.iter().map(|r| r.key.clone()).collect();
    for o in landing {
        if known.contains(&o.key) {
            continue;
        }
        let key = crate::keys::parse_key(&o.key).ok();
        out.push(FileRow {
            key: o.key.clone(),
            table: key.as_ref().map(|k| format!("{}.{}", k.source, k.table)),
            extract_ts: key.map(|k| k.extract_ts),
            size: o.size,
            status: FileStatus::Pending,
            reason: None,
            batch_id: None,
            report: None,
            at: None,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
