//! Orphan files: files under a table's folder that neither its metadata log nor any of its
//! snapshots reference. A commit cleans up after itself when it fails; a process that dies
//! between writing files and swapping the pointer leaves them behind, and this finds them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use floe_core::{Error, Result};
use iceberg::table::Table;
use serde::Serialize;

use crate::ice;

/// What an orphan scan found (or removed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrphanReport {
    /// The table's folder.
    pub location: String,
    /// Files no snapshot references, as absolute paths.
    pub orphans: Vec<PathBuf>,
    /// Of those, the files removed.
    pub removed: Vec<PathBuf>,
}

fn local(path: &str) -> PathBuf {
    PathBuf::from(path.strip_prefix("file://").unwrap_or(path))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

pub(crate) async fn find(table: &Table, active_staging: &[String]) -> Result<OrphanReport> {
    let md = table.metadata();
    let io = table.file_io();
    let mut referenced: HashSet<PathBuf> = HashSet::new();
    if let Some(loc) = table.metadata_location() {
        referenced.insert(local(loc));
    }
    for m in md.metadata_log() {
        referenced.insert(local(&m.metadata_file));
    }
    for s in md.snapshots() {
        referenced.insert(local(s.manifest_list()));
        for mf in crate::commit::manifests_of(io, md, s).await? {
            referenced.insert(local(&mf.manifest_path));
            let manifest = mf
                .load_manifest(io)
                .await
                .map_err(ice("reading a manifest"))?;
            for e in manifest.entries() {
                referenced.insert(local(e.file_path()));
            }
        }
    }
    let root = local(md.location());
    let mut files = Vec::new();
    walk(&root, &mut files)
        .map_err(|e| Error::Transient(format!("listing {}: {e}", root.display())))?;
    let mut orphans: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| !referenced.contains(f))
        .collect();
    // Files of live staging tables inside this folder belong to them, not to this table.
    orphans.retain(|f| {
        !active_staging
            .iter()
            .any(|id| f.starts_with(root.join("staging").join(id)))
    });
    orphans.sort();
    Ok(OrphanReport {
        location: root.display().to_string(),
        orphans,
        removed: Vec::new(),
    })
}

pub(crate) fn remove(report: &OrphanReport, min_age: Duration) -> Result<OrphanReport> {
    let now = SystemTime::now();
    let mut out = report.clone();
    for f in &report.orphans {
        let old_enough = std::fs::metadata(f)
            .and_then(|m| m.modified())
            .map(|m| now.duration_since(m).unwrap_or_default() >= min_age)
            .unwrap_or(false);
        if old_enough {
            std::fs::remove_file(f)
                .map_err(|e| Error::Transient(format!("removing {}: {e}", f.display())))?;
            out.removed.push(f.clone());
        }
    }
    Ok(out)
}
