//! Table maintenance as a stage's work: the deployed stack's schedule sends
//! `{"maintain": "all"}` (or `{"maintain": ["silver_s.t", ...]}`) to the modelling queue, and the
//! modelling service runs [`floe_core::ports::Lake::maintain`] on each table with the project's
//! retention (`maintenance.keep_snapshots_days`). `floe maintain` does the same from the CLI.

use floe_config::Project;
use floe_core::ports::{Lake, Maintenance, MaintenanceReport};
use floe_core::{Error, Result, TableRef};
use serde::Deserialize;

/// A maintenance request, as the schedule sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `"all"`, or the tables.
    pub maintain: Scope,
}

/// Which tables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Scope {
    /// `"all"`: every table of the lake.
    All(AllTables),
    /// These tables (`namespace.table`).
    Tables(Vec<String>),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllTables {
    /// Every table.
    All,
}

/// The request in a message body, if it is one.
pub fn request(body: &str) -> Option<Request> {
    serde_json::from_str(body).ok()
}

/// The tables a scope names (every table of the lake for `all`); an unknown one is an error.
pub async fn tables(lake: &dyn Lake, scope: &Scope) -> Result<Vec<TableRef>> {
    match scope {
        Scope::All(_) => lake.list_tables(None).await,
        Scope::Tables(names) => {
            let mut out = Vec::new();
            for n in names {
                let t: TableRef = n.parse()?;
                if !lake.table_exists(&t).await? {
                    return Err(Error::NotFound(format!(
                        "no table {t} in the lake (maintaining every table: `floe maintain --all`, \
                         or {{\"maintain\": \"all\"}} on the modelling queue)"
                    )));
                }
                out.push(t);
            }
            Ok(out)
        }
    }
}

/// The project's retention.
pub fn keep_for(project: &Project) -> chrono::Duration {
    chrono::Duration::days(i64::from(project.settings.keep_snapshots_days))
}

/// One line saying what maintenance did (or, in a dry run, would do) to a table.
pub fn describe(t: &TableRef, r: &MaintenanceReport, dry_run: bool) -> String {
    match &r.skipped {
        Some(why) => format!("{t}: skipped: {why}"),
        None if dry_run => format!(
            "{t}: {} files{}; {} snapshots would expire, {} kept; {} orphan files found",
            r.files_before,
            if r.compacted {
                ", would be compacted"
            } else {
                ""
            },
            r.snapshots_expired,
            r.snapshots_kept,
            r.orphan_files,
        ),
        None => format!(
            "{t}: {} files{}; {} snapshots expired, {} kept; {} unreferenced files removed",
            r.files_before,
            if r.compacted {
                format!(" compacted into {}", r.files_after)
            } else {
                String::new()
            },
            r.snapshots_expired,
            r.snapshots_kept,
            r.orphan_files,
        ),
    }
}

/// Maintains every table of the request; a line per table. A table that fails does not stop
/// the others; the request fails after them (and is retried, as any message), naming them.
pub async fn run(lake: &dyn Lake, project: &Project, request: &Request) -> Result<Vec<String>> {
    let m = Maintenance {
        keep_for: keep_for(project),
        dry_run: false,
    };
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for t in tables(lake, &request.maintain).await? {
        match lake.maintain(&t, &m).await {
            Ok(r) => lines.push(describe(&t, &r, false)),
            Err(e) => {
                tracing::warn!(table = %t, error = %e, "maintenance failed");
                failed.push(format!("{t}: {e}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(lines)
    } else {
        Err(Error::Transient(format!(
            "maintenance failed on {} table(s): {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_every_table_or_a_list() {
        assert_eq!(
            request(r#"{"maintain": "all"}"#),
            Some(Request {
                maintain: Scope::All(AllTables::All)
            })
        );
        assert_eq!(
            request(r#"{"maintain": ["silver_s.t"]}"#).map(|r| r.maintain),
            Some(Scope::Tables(vec!["silver_s.t".into()]))
        );
        assert_eq!(request(r#"{"maintain": "some"}"#), None);
        assert_eq!(request(r#"{"run_id": "r"}"#), None);
    }
}
