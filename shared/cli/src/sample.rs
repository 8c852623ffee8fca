//! The sample project `floe init` writes, and the loading of its extracts into bronze so the new
//! project can be queried at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_config::TableConfig;
use floe_core::ports::{CommitOutcome, Lake, WriteOptions};
use floe_core::{BatchId, Layer, ObjectRef, RunId};

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

/// Bronze's own columns, after the source columns.
pub fn bronze_columns() -> Vec<Field> {
    vec![
        Field::new("_batch_id", DataType::Utf8, false),
        Field::new(
            "_extract_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("_source_file", DataType::Utf8, false),
    ]
}

/// The bronze schema of a table: its declared columns, then bronze's own.
pub fn bronze_schema(table: &TableConfig) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(bronze_columns());
    Arc::new(Schema::new(fields))
}

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

/// Appends one CSV extract to the table's bronze table (created if needed) as one batch.
pub async fn load_extract(
    lake: &dyn Lake,
    table: &TableConfig,
    file: &Path,
    extract_ts: DateTime<Utc>,
    shown: &str,
) -> Result<CommitOutcome> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let header: Vec<String> = String::from_utf8_lossy(header)
        .trim_end_matches('\r')
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let declared: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    if header != declared {
        bail!(
            "{shown}:1: the header is [{}] but {} declares [{}] in that order",
            header.join(", "),
            table.qualified_name(),
            declared.join(", ")
        );
    }
    let reader = ReaderBuilder::new(table.arrow_schema())
        .with_header(true)
        .build(std::io::Cursor::new(&bytes))
        .with_context(|| format!("reading {shown}"))?;
    let object = ObjectRef::local("landing", shown, &bytes);
    let batch_id = BatchId::for_object(&object);
    let bronze_schema = bronze_schema(table);
    let mut batches = Vec::new();
    for b in reader {
        let b = b.with_context(|| format!("{shown}: a value does not match its column's type"))?;
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        cols.push(Arc::new(StringArray::from(vec![batch_id.as_str(); n])));
        cols.push(Arc::new(
            TimestampMicrosecondArray::from(vec![extract_ts.timestamp_micros(); n])
                .with_timezone("UTC"),
        ));
        cols.push(Arc::new(StringArray::from(vec![shown; n])));
        batches.push(RecordBatch::try_new(bronze_schema.clone(), cols)?);
    }
    let bronze = table.table_ref(Layer::Bronze);
    if !lake.table_exists(&bronze).await? {
        lake.create_table(&bronze, bronze_schema).await?;
    }
    let mut options = WriteOptions::batch(batch_id, RunId::new());
    options
        .properties
        .insert("floe.extract-ts".into(), extract_ts.to_rfc3339());
    options
        .properties
        .insert("floe.source-file".into(), shown.to_owned());
    Ok(lake.append(&bronze, batches, &options).await?)
}
