//! floe's own snapshot producer: manifests, manifest list, table metadata and an atomic swap of
//! the table's metadata pointer in the SQL catalog.
//!
//! iceberg-rust 0.10 only commits appends, and keeps the commit type that would let us plug in
//! other operations private. Its public spec builders are enough to write every file a commit
//! needs; the one step left is the pointer swap, which is a compare-and-swap `UPDATE` of the
//! catalog row (the same statement the SQL catalog runs). Writing order, as Iceberg requires:
//! data files -> manifests -> manifest list -> metadata.json -> pointer swap. Nothing is visible
//! before the swap, so a failure at any earlier step leaves the table as it was.

use std::collections::HashMap;
use std::str::FromStr;

use floe_core::ports::WriteOptions;
use floe_core::{Error, Result};
use iceberg::MetadataLocation;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, MAIN_BRANCH, ManifestContentType, ManifestFile, ManifestList,
    ManifestWriter, ManifestWriterBuilder, Operation, Snapshot, SnapshotReference,
    SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
    UNASSIGNED_SEQUENCE_NUMBER,
};
use iceberg::table::Table;

use crate::ice;

/// Snapshot summary key holding the batch id.
pub const BATCH_ID: &str = "floe.batch-id";
/// Snapshot summary key holding the run id.
pub const RUN_ID: &str = "floe.run-id";
/// Snapshot summary key marking a snapshot written as staged (not published when committed).
pub const STAGED: &str = "floe.staged";

/// How a commit changes the table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    /// Keep every live file and add the new ones.
    Append,
    /// Mark every live file deleted and add the new ones.
    Overwrite,
    /// Keep every live file and add the new ones, position delete files among them (a row
    /// delta: Iceberg's `overwrite` operation without removing a data file).
    Delta,
}

/// The files of one attempt that must go if the attempt does not land.
#[derive(Debug, Default)]
pub struct AttemptFiles(pub Vec<String>);

impl AttemptFiles {
    pub async fn remove(self, io: &FileIO) {
        for path in self.0 {
            if let Err(e) = io.delete(&path).await {
                tracing::warn!(%path, error = %e, "could not remove a file of a failed commit");
            }
        }
    }
}

/// A commit built against one version of the table's metadata, ready for the pointer swap.
pub struct Prepared {
    pub snapshot_id: i64,
    pub new_location: String,
    pub rows_added: u64,
    pub files_added: usize,
    pub attempt_files: AttemptFiles,
}

/// The snapshot that holds `batch_id`, if the batch is committed: a snapshot on the main branch's
/// lineage, or a staged snapshot that can still be published (built on the current main).
///
/// A staged snapshot whose base has moved on can never be published; a retry of its batch must
/// stage again, so it does not count.
pub fn snapshot_of_batch(md: &TableMetadata, batch_id: &str) -> Option<i64> {
    let current = md.current_snapshot_id();
    let mut lineage = std::collections::HashSet::new();
    let mut next = current;
    while let Some(id) = next {
        if !lineage.insert(id) {
            break;
        }
        next = md.snapshot_by_id(id).and_then(|s| s.parent_snapshot_id());
    }
    md.snapshots()
        .filter(|s| {
            s.summary()
                .additional_properties
                .get(BATCH_ID)
                .map(String::as_str)
                == Some(batch_id)
        })
        .find(|s| lineage.contains(&s.snapshot_id()) || s.parent_snapshot_id() == current)
        .map(|s| s.snapshot_id())
}

fn new_snapshot_id(md: &TableMetadata) -> i64 {
    loop {
        let (l, r) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((l ^ r) as i64) & i64::MAX;
        if id != 0 && md.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// The manifests a snapshot's manifest list names.
pub(crate) async fn manifests_of(
    io: &FileIO,
    md: &TableMetadata,
    snapshot: &Snapshot,
) -> Result<Vec<ManifestFile>> {
    let bytes = io
        .new_input(snapshot.manifest_list())
        .map_err(ice("opening a manifest list"))?
        .read()
        .await
        .map_err(ice("reading a manifest list"))?;
    let list = ManifestList::parse_with_version(&bytes, md.format_version())
        .map_err(ice("parsing a manifest list"))?;
    Ok(list.consume_entries().into_iter().collect())
}

async fn live_manifests(io: &FileIO, md: &TableMetadata) -> Result<Vec<ManifestFile>> {
    match md.current_snapshot() {
        Some(current) => manifests_of(io, md, current).await,
        None => Ok(Vec::new()),
    }
}

/// The live data files of the table's current snapshot.
pub async fn live_data_files(table: &Table) -> Result<Vec<DataFile>> {
    let io = table.file_io();
    let mut out = Vec::new();
    for m in live_manifests(io, table.metadata()).await? {
        if m.content != ManifestContentType::Data {
            continue;
        }
        let manifest = m
            .load_manifest(io)
            .await
            .map_err(ice("reading a manifest"))?;
        out.extend(
            manifest
                .entries()
                .iter()
                .filter(|e| e.is_alive())
                .map(|e| e.data_file().clone()),
        );
    }
    Ok(out)
}

/// A writer of a manifest of `snapshot_id` at `path` (data files, or delete files), for the
/// table's current schema and spec.
fn manifest_writer(
    io: &FileIO,
    md: &TableMetadata,
    snapshot_id: i64,
    path: &str,
    content: ManifestContentType,
) -> Result<ManifestWriter> {
    let builder = ManifestWriterBuilder::new(
        io.new_output(path).map_err(ice("creating a manifest"))?,
        Some(snapshot_id),
        md.current_schema().clone(),
        md.default_partition_spec().as_ref().clone(),
    );
    Ok(match content {
        ManifestContentType::Data => builder.build_v2_data(),
        ManifestContentType::Deletes => builder.build_v2_deletes(),
    })
}

fn total(md: &TableMetadata, key: &str) -> u64 {
    md.current_snapshot()
        .and_then(|s| s.summary().additional_properties.get(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Writes the manifests, manifest list and metadata file of a commit on top of `table`.
pub async fn prepare(
    table: &Table,
    kind: CommitKind,
    files: &[DataFile],
    options: &WriteOptions,
) -> Result<Prepared> {
    let md = table.metadata();
    let io = table.file_io();
    let schema = md.current_schema().clone();
    let spec = md.default_partition_spec().clone();
    let snapshot_id = new_snapshot_id(md);
    let seq = md.next_sequence_number();
    let parent = md.current_snapshot_id();
    let commit_uuid = uuid::Uuid::now_v7();
    let mut attempt = AttemptFiles::default();
    let mut summary = SnapshotSummaryCollector::default();

    let (deletes, files): (Vec<DataFile>, Vec<DataFile>) = files
        .iter()
        .cloned()
        .partition(|f| f.content_type() != DataContentType::Data);
    let files = files.as_slice();
    if !deletes.is_empty() && kind != CommitKind::Delta {
        return Err(Error::Internal(
            "delete files are committed by a row delta only".into(),
        ));
    }
    let result: Result<Prepared> =
        async {
            let mut manifests = Vec::new();
            // The new files, in one manifest whose entries inherit this snapshot's sequence number.
            if !files.is_empty() {
                let path = format!("{}/metadata/{commit_uuid}-m0.avro", md.location());
                attempt.0.push(path.clone());
                let mut w = manifest_writer(io, md, snapshot_id, &path, ManifestContentType::Data)?;
                for f in files {
                    summary.add_file(f, schema.clone(), spec.clone());
                    w.add_file(f.clone(), UNASSIGNED_SEQUENCE_NUMBER)
                        .map_err(ice("adding a data file"))?;
                }
                manifests.push(
                    w.write_manifest_file()
                        .await
                        .map_err(ice("writing a manifest"))?,
                );
            }
            // The new position delete files, in a delete manifest of their own.
            if !deletes.is_empty() {
                let path = format!("{}/metadata/{commit_uuid}-m2.avro", md.location());
                attempt.0.push(path.clone());
                let mut w =
                    manifest_writer(io, md, snapshot_id, &path, ManifestContentType::Deletes)?;
                for f in &deletes {
                    summary.add_file(f, schema.clone(), spec.clone());
                    w.add_file(f.clone(), UNASSIGNED_SEQUENCE_NUMBER)
                        .map_err(ice("adding a delete file"))?;
                }
                manifests.push(
                    w.write_manifest_file()
                        .await
                        .map_err(ice("writing a manifest"))?,
                );
            }
            let existing = live_manifests(io, md).await?;
            let (mut total_files, mut total_records, mut total_size) = (
                total(md, "total-data-files"),
                total(md, "total-records"),
                total(md, "total-files-size"),
            );
            let (mut delete_files, mut position_deletes) = (
                total(md, "total-delete-files"),
                total(md, "total-position-deletes"),
            );
            match kind {
                CommitKind::Append | CommitKind::Delta => manifests.extend(existing),
                CommitKind::Overwrite => {
                    // Every live file (delete files too) is recorded as deleted, so the history
                    // says what was replaced.
                    let mut removed: [(ManifestContentType, Option<ManifestWriter>, usize, String);
                        2] = [
                        (
                            ManifestContentType::Data,
                            None,
                            0,
                            format!("{}/metadata/{commit_uuid}-m1.avro", md.location()),
                        ),
                        (
                            ManifestContentType::Deletes,
                            None,
                            0,
                            format!("{}/metadata/{commit_uuid}-m3.avro", md.location()),
                        ),
                    ];
                    for m in existing {
                        let slot = usize::from(m.content != ManifestContentType::Data);
                        let manifest = m
                            .load_manifest(io)
                            .await
                            .map_err(ice("reading a manifest"))?;
                        for e in manifest.entries().iter().filter(|e| e.is_alive()) {
                            let (content, writer, n, path) = &mut removed[slot];
                            if writer.is_none() {
                                *writer =
                                    Some(manifest_writer(io, md, snapshot_id, path, *content)?);
                            }
                            summary.remove_file(e.data_file(), schema.clone(), spec.clone());
                            writer
                                .as_mut()
                                .expect("opened above")
                                .add_delete_file(
                                    e.data_file().clone(),
                                    e.sequence_number().unwrap_or(0),
                                    e.file_sequence_number,
                                )
                                .map_err(ice("recording a deleted file"))?;
                            *n += 1;
                        }
                    }
                    for (_, writer, n, path) in removed {
                        if let Some(w) = writer
                            && n > 0
                        {
                            attempt.0.push(path);
                            manifests.push(
                                w.write_manifest_file()
                                    .await
                                    .map_err(ice("writing a manifest"))?,
                            );
                        }
                    }
                    (total_files, total_records, total_size) = (0, 0, 0);
                    (delete_files, position_deletes) = (0, 0);
                }
            }

            let list_path = format!(
                "{}/metadata/snap-{snapshot_id}-0-{commit_uuid}.avro",
                md.location()
            );
            attempt.0.push(list_path.clone());
            let mut lw = iceberg::spec::ManifestListWriter::v2(
                io.new_output(&list_path)
                    .map_err(ice("creating a manifest list"))?
                    .writer()
                    .await
                    .map_err(ice("creating a manifest list"))?,
                snapshot_id,
                parent,
                seq,
            );
            lw.add_manifests(manifests.into_iter())
                .map_err(ice("listing manifests"))?;
            lw.close().await.map_err(ice("writing a manifest list"))?;

            let rows_added: u64 = files.iter().map(|f| f.record_count()).sum();
            let size_added: u64 = files
                .iter()
                .chain(&deletes)
                .map(|f| f.file_size_in_bytes())
                .sum();
            let mut props: HashMap<String, String> = options
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(b) = &options.batch_id {
                props.insert(BATCH_ID.into(), b.to_string());
            }
            if let Some(r) = &options.run_id {
                props.insert(RUN_ID.into(), r.to_string());
            }
            if options.stage_only {
                props.insert(STAGED.into(), "true".into());
            }
            props.extend(summary.build());
            // Totals are always written: readers (and later commits) rely on them.
            props.insert(
                "total-data-files".into(),
                (total_files + files.len() as u64).to_string(),
            );
            props.insert(
                "total-records".into(),
                (total_records + rows_added).to_string(),
            );
            props.insert(
                "total-files-size".into(),
                (total_size + size_added).to_string(),
            );
            props.insert(
                "total-delete-files".into(),
                (delete_files + deletes.len() as u64).to_string(),
            );
            props.insert(
                "total-position-deletes".into(),
                (position_deletes + deletes.iter().map(|f| f.record_count()).sum::<u64>())
                    .to_string(),
            );
            props.insert("total-equality-deletes".into(), "0".into());
            let snapshot = Snapshot::builder()
                .with_snapshot_id(snapshot_id)
                .with_parent_snapshot_id(parent)
                .with_sequence_number(seq)
                .with_timestamp_ms(
                    chrono::Utc::now()
                        .timestamp_millis()
                        .max(md.last_updated_ms()),
                )
                .with_manifest_list(list_path)
                .with_summary(Summary {
                    operation: match kind {
                        CommitKind::Append => Operation::Append,
                        CommitKind::Overwrite | CommitKind::Delta => Operation::Overwrite,
                    },
                    additional_properties: props,
                })
                .with_schema_id(md.current_schema_id())
                .build();
            let current = table
                .metadata_location_result()
                .map_err(ice("reading the metadata location"))?;
            let builder = md.clone().into_builder(Some(current.to_owned()));
            let builder = if options.stage_only {
                builder.add_snapshot(snapshot)
            } else {
                builder.set_branch_snapshot(snapshot, MAIN_BRANCH)
            }
            .map_err(ice("adding the snapshot"))?;
            let new_md = builder
                .build()
                .map_err(ice("building table metadata"))?
                .metadata;
            let new_location = write_metadata(io, current, &new_md).await?;
            attempt.0.push(new_location.clone());
            Ok(Prepared {
                snapshot_id,
                new_location,
                rows_added,
                files_added: files.len(),
                attempt_files: AttemptFiles::default(),
            })
        }
        .await;
    match result {
        Ok(mut p) => {
            p.attempt_files = attempt;
            Ok(p)
        }
        Err(e) => {
            attempt.remove(io).await;
            Err(e)
        }
    }
}

/// New metadata with `main` pointing at an existing snapshot (publishing a staged snapshot).
pub async fn prepare_set_main(table: &Table, snapshot_id: i64) -> Result<(String, AttemptFiles)> {
    let md = table.metadata();
    let current = table
        .metadata_location_result()
        .map_err(ice("reading the metadata location"))?;
    let new_md = md
        .clone()
        .into_builder(Some(current.to_owned()))
        .set_ref(
            MAIN_BRANCH,
            SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)),
        )
        .map_err(ice("moving the main branch"))?
        .build()
        .map_err(ice("building table metadata"))?
        .metadata;
    let loc = write_metadata(table.file_io(), current, &new_md).await?;
    Ok((loc.clone(), AttemptFiles(vec![loc])))
}

pub(crate) async fn write_metadata(
    io: &FileIO,
    current: &str,
    md: &TableMetadata,
) -> Result<String> {
    let loc = MetadataLocation::from_str(current)
        .map_err(ice("parsing the metadata location"))?
        .with_next_version()
        .with_new_metadata(md);
    md.write_to(io, &loc)
        .await
        .map_err(ice("writing table metadata"))?;
    Ok(loc.to_string())
}

/// Maps a failed commit step to a floe error.
pub fn conflict(table: &str, detail: impl Into<String>) -> Error {
    Error::CommitConflict {
        table: table.to_owned(),
        detail: detail.into(),
    }
}
