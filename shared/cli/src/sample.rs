//! The sample project `floe init` writes (its extracts are then landed through the pipeline),
//! and the larger generated one `floe demo` runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

/// One file of the sample project: path relative to the project, contents.
pub struct ProjectFile {
    pub path: &'static str,
    pub body: &'static str,
}

/// The files `floe init` writes (`{{name}}` in floe.yaml is replaced by the project's name).
pub const FILES: &[ProjectFile] = &[
    ProjectFile {
        path: "floe.yaml",
        body: include_str!("../templates/floe.yaml"),
    },
    ProjectFile {
        path: "tables/nomis.yaml",
        body: include_str!("../templates/nomis.yaml"),
    },
    ProjectFile {
        path: ".github/workflows/floe.yml",
        body: include_str!("../templates/github/floe.yml"),
    },
    ProjectFile {
        path: "templates/current.sql",
        body: include_str!("../templates/gold/templates/current.sql"),
    },
    ProjectFile {
        path: "templates/changes.sql",
        body: include_str!("../templates/gold/templates/changes.sql"),
    },
    ProjectFile {
        path: "models/dim_person.sql",
        body: include_str!("../templates/gold/models/dim_person.sql"),
    },
    ProjectFile {
        path: "models/latest_risk.sql",
        body: include_str!("../templates/gold/models/latest_risk.sql"),
    },
    ProjectFile {
        path: "models/person_addresses.sql",
        body: include_str!("../templates/gold/models/person_addresses.sql"),
    },
    ProjectFile {
        path: "models/risk_history.sql",
        body: include_str!("../templates/gold/models/risk_history.sql"),
    },
    ProjectFile {
        path: "models/risk_summary.sql",
        body: include_str!("../templates/gold/models/risk_summary.sql"),
    },
    ProjectFile {
        path: "models/schema.yaml",
        body: include_str!("../templates/gold/models/schema.yaml"),
    },
    ProjectFile {
        path: "tests/no_negative_risk.sql",
        body: include_str!("../templates/gold/tests/no_negative_risk.sql"),
    },
    ProjectFile {
        path: "macros/bands.sql",
        body: include_str!("../templates/gold/macros/bands.sql"),
    },
    ProjectFile {
        path: "samples/nomis/people/2026-11-01T06:00:00Z/people.csv",
        body: include_str!("../templates/samples/people_2026-11-01.csv"),
    },
    ProjectFile {
        path: "samples/nomis/people/2026-11-02T06:00:00Z/people.csv",
        body: include_str!("../templates/samples/people_2026-11-02.csv"),
    },
    ProjectFile {
        path: "samples/nomis/addresses/2026-11-01T06:00:00Z/addresses.csv",
        body: include_str!("../templates/samples/addresses_2026-11-01.csv"),
    },
];

/// The sample extracts under `samples/`: (table, extract time, file), oldest first.
pub fn sample_extracts(root: &Path) -> Result<Vec<(String, DateTime<Utc>, PathBuf)>> {
    let mut out = Vec::new();
    for f in FILES.iter().filter(|f| f.path.starts_with("samples/")) {
        let parts: Vec<&str> = f.path.split('/').collect();
        let [_, source, table, ts, _file] = parts[..] else {
            bail!(
                "sample path {} is not samples/<source>/<table>/<extract_ts>/<file>",
                f.path
            );
        };
        let ts: DateTime<Utc> = ts
            .parse()
            .with_context(|| format!("extract time in {}", f.path))?;
        out.push((format!("{source}.{table}"), ts, root.join(f.path)));
    }
    out.sort_by_key(|(_, ts, _)| *ts);
    Ok(out)
}
