//! What table maintenance (the lake port's `maintain`) is asked to do and what it reports. The
//! port itself, and which snapshots maintenance keeps, are in `ports`.

use std::collections::BTreeMap;

use serde::Serialize;

/// The `floe.*` property marking a snapshot `Lake::maintain` made: the same rows as its
/// parent in other files, no batch of its own.
pub const MAINTENANCE: &str = "floe.maintenance";

/// What `Lake::maintain` does to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Time travel keeps working this far back: every snapshot committed since, and every
    /// snapshot that was the published one at some instant since, are kept.
    pub keep_for: chrono::Duration,
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
}

/// One live file of a table's current snapshot, from its Iceberg metadata: what the bytes a
/// scan will read are estimated from (`Lake::file_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileStat {
    /// The file's partition values by partition field name (`valid_to_day`,
    /// `_extract_ts_day`), as text (dates as `YYYY-MM-DD`); empty when the table is unpartitioned.
    pub partition: BTreeMap<String, Option<String>>,
    /// A delete file (position or equality deletes), not rows.
    pub deletes: bool,
    /// Its size.
    pub bytes: u64,
    /// Rows it holds (or deletes).
    pub rows: u64,
}

/// What `Lake::maintain` did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// Data files (and delete files) before, and after compaction.
    pub files_before: usize,
    /// After compaction (the same in a dry run, or when nothing needed it).
    pub files_after: usize,
    /// Whether the files were rewritten (or would be).
    pub compacted: bool,
    /// Snapshots expired (or that would be).
    pub snapshots_expired: usize,
    /// Snapshots kept.
    pub snapshots_kept: usize,
    /// Files no snapshot references that were removed (or would be).
    pub orphan_files: usize,
    /// Why the table was left alone, when it was.
    pub skipped: Option<String>,
}
