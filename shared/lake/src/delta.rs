//! Merge-on-read writes ([`floe_core::ports::Write::Delta`]): rows that replace live rows are
//! added as new data files, and the rows they replace are marked in one position delete file
//! (Iceberg v2: the data file's path and the row's position in it) instead of rewriting the
//! data files they live in. Readers (DataFusion through iceberg-rust, pyiceberg, Trino) apply
//! the delete file; maintenance folds it in when it compacts.
//!
//! The replaced rows are found by reading only the `on` columns of the live data files, so a
//! day's change to a large table costs those columns and the changed rows, not the table.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use floe_core::{Error, Result};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{DataContentType, DataFile, ManifestContentType, Schema, Struct};
use iceberg::table::Table;
use iceberg::writer::file_writer::{FileWriter as _, FileWriterBuilder as _, ParquetWriterBuilder};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use crate::ice;

/// The `on` values of the rows being replaced, each to be found exactly once among the live
/// rows.
pub(crate) struct Replaced {
    on: Vec<String>,
    types: Vec<DataType>,
    converter: RowConverter,
    /// Row-format `on` values -> whether a live row was found for them.
    keys: HashMap<Box<[u8]>, bool>,
}

impl Replaced {
    /// An empty set for `table`'s `on` columns (typed as the table's current schema).
    pub(crate) fn new(table: &Table, on: &[String]) -> Result<Self> {
        let arrow = schema_to_arrow_schema(table.metadata().current_schema())
            .map_err(ice("converting the table schema"))?;
        let name = table.identifier().to_string();
        if on.is_empty() {
            return Err(Error::Internal(format!(
                "a row delta on {name} names no columns to match the replaced rows on"
            )));
        }
        let types = on
            .iter()
            .map(|c| {
                arrow
                    .field_with_name(c)
                    .map(|f| f.data_type().clone())
                    .map_err(|_| {
                        Error::Internal(format!(
                            "a row delta on {name} matches on '{c}', which it has not"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .map_err(|e| Error::Internal(format!("row delta on {name}: {e}")))?;
        Ok(Self {
            on: on.to_vec(),
            types,
            converter,
            keys: HashMap::new(),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `batch` without its `replaces` column; the `on` values of its rows marked as replacing
    /// are noted.
    pub(crate) fn take(
        &mut self,
        table: &str,
        batch: RecordBatch,
        replaces: &str,
    ) -> Result<RecordBatch> {
        let schema = batch.schema();
        let i = schema.index_of(replaces).map_err(|_| {
            Error::Internal(format!(
                "the rows of a row delta on {table} have no '{replaces}' column"
            ))
        })?;
        let marks = batch
            .column(i)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                Error::Internal(format!(
                    "'{replaces}' of a row delta on {table} is {}, not a boolean",
                    schema.field(i).data_type()
                ))
            })?;
        // A NULL mark adds the row and replaces nothing.
        let marks: BooleanArray = marks.iter().map(|m| Some(m == Some(true))).collect();
        if marks.true_count() > 0 {
            let columns = self.columns_of(table, &batch)?;
            let marked = columns
                .iter()
                .map(|c| datafusion::arrow::compute::filter(c, &marks))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Internal(format!("row delta on {table}: {e}")))?;
            let rows = self
                .converter
                .convert_columns(&marked)
                .map_err(|e| Error::Internal(format!("row delta on {table}: {e}")))?;
            for r in rows.iter() {
                if self.keys.insert(r.as_ref().into(), false).is_some() {
                    return Err(Error::Internal(format!(
                        "two rows of a row delta on {table} replace the same row (same {})",
                        self.on.join(", ")
                    )));
                }
            }
        }
        let mut kept = batch;
        kept.remove_column(i);
        Ok(kept)
    }

    /// `batch`'s `on` columns, cast to the table's types.
    fn columns_of(&self, table: &str, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.on
            .iter()
            .zip(&self.types)
            .map(|(c, ty)| {
                let col = batch.column_by_name(c).ok_or_else(|| {
                    Error::Internal(format!(
                        "the rows of a row delta on {table} have no '{c}' column"
                    ))
                })?;
                cast(col, ty)
                    .map_err(|e| Error::Internal(format!("row delta on {table}, '{c}': {e}")))
            })
            .collect()
    }

    /// The positions, file by file (paths and positions in order), of the live rows of `table`'s
    /// current snapshot that the noted rows replace. Every noted row must find exactly one.
    /// Reads files from disk: run it off the async workers.
    pub(crate) fn positions(
        &mut self,
        name: &str,
        files: &[DataFile],
        deleted: &HashMap<String, HashSet<i64>>,
        field_ids: &[i32],
    ) -> Result<Vec<(String, Vec<i64>)>> {
        let mut out = Vec::new();
        for file in files {
            let path = file.file_path();
            let gone = deleted.get(path);
            let handle = std::fs::File::open(local(path))
                .map_err(|e| Error::Transient(format!("opening {path}: {e}")))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(handle)
                .map_err(|e| Error::Transient(format!("reading {path}: {e}")))?;
            // The `on` columns by field id (a renamed column keeps its id), in file order.
            let leaves = builder.parquet_schema().columns();
            let mut wanted: Vec<(usize, usize)> = Vec::new();
            for (k, id) in field_ids.iter().enumerate() {
                let leaf = leaves
                    .iter()
                    .position(|c| {
                        let info = c.self_type().get_basic_info();
                        info.has_id() && info.id() == *id
                    })
                    .ok_or_else(|| {
                        Error::Internal(format!(
                            "{path} of {name} has no column '{}' to match replaced rows on",
                            self.on[k]
                        ))
                    })?;
                wanted.push((leaf, k));
            }
            wanted.sort_unstable();
            let mask = ProjectionMask::leaves(builder.parquet_schema(), wanted.iter().map(|w| w.0));
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| Error::Transient(format!("reading {path}: {e}")))?;
            let mut found = Vec::new();
            let mut position = 0i64;
            for batch in reader {
                let batch = batch.map_err(|e| Error::Transient(format!("reading {path}: {e}")))?;
                let mut columns: Vec<Option<ArrayRef>> = vec![None; self.on.len()];
                for (j, (_, k)) in wanted.iter().enumerate() {
                    columns[*k] = Some(
                        cast(batch.column(j), &self.types[*k])
                            .map_err(|e| Error::Internal(format!("{path}: {e}")))?,
                    );
                }
                let columns: Vec<ArrayRef> = columns.into_iter().flatten().collect();
                let rows = self
                    .converter
                    .convert_columns(&columns)
                    .map_err(|e| Error::Internal(format!("{path}: {e}")))?;
                for (i, r) in rows.iter().enumerate() {
                    let pos = position + i as i64;
                    if gone.is_some_and(|g| g.contains(&pos)) {
                        continue;
                    }
                    if let Some(seen) = self.keys.get_mut(r.as_ref()) {
                        if *seen {
                            return Err(Error::Internal(format!(
                                "{name} has more than one live row with the same {} as a row \
                                 that replaces one: the write would be ambiguous",
                                self.on.join(", ")
                            )));
                        }
                        *seen = true;
                        found.push(pos);
                    }
                }
                position += batch.num_rows() as i64;
            }
            if !found.is_empty() {
                out.push((path.to_owned(), found));
            }
        }
        let missing = self.keys.values().filter(|seen| !**seen).count();
        if missing > 0 {
            return Err(Error::Internal(format!(
                "{missing} row(s) of a row delta on {name} replace no live row (matched on {}): \
                 the table is not what the write was computed from",
                self.on.join(", ")
            )));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// A table path as a local one.
fn local(path: &str) -> &Path {
    Path::new(path.trim_start_matches("file://"))
}

/// The current snapshot's live data files, and the positions its position delete files mark,
/// by data file.
pub(crate) async fn live_files(
    table: &Table,
) -> Result<(Vec<DataFile>, HashMap<String, HashSet<i64>>)> {
    let io = table.file_io();
    let md = table.metadata();
    let (mut data, mut deleted) = (Vec::new(), HashMap::<String, HashSet<i64>>::new());
    let Some(snapshot) = md.current_snapshot() else {
        return Ok((data, deleted));
    };
    for m in crate::commit::manifests_of(io, md, snapshot).await? {
        let manifest = m
            .load_manifest(io)
            .await
            .map_err(ice("reading a manifest"))?;
        for e in manifest.entries().iter().filter(|e| e.is_alive()) {
            let f = e.data_file();
            match (m.content, f.content_type()) {
                (ManifestContentType::Data, _) => data.push(f.clone()),
                (_, DataContentType::PositionDeletes) => {
                    read_deletes(f.file_path(), &mut deleted)?;
                }
                (_, other) => {
                    return Err(Error::Internal(format!(
                        "{} has a delete file of a kind floe does not write ({other:?}): {}",
                        table.identifier(),
                        f.file_path()
                    )));
                }
            }
        }
    }
    Ok((data, deleted))
}

/// Adds the (data file, position) pairs of a position delete file to `into`.
fn read_deletes(path: &str, into: &mut HashMap<String, HashSet<i64>>) -> Result<()> {
    let handle = std::fs::File::open(local(path))
        .map_err(|e| Error::Transient(format!("opening {path}: {e}")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(handle)
        .and_then(|b| b.build())
        .map_err(|e| Error::Transient(format!("reading {path}: {e}")))?;
    for batch in reader {
        let batch = batch.map_err(|e| Error::Transient(format!("reading {path}: {e}")))?;
        let bad = || Error::Internal(format!("{path} is not a position delete file"));
        let files = batch
            .column_by_name("file_path")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(bad)?;
        let positions = batch
            .column_by_name("pos")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(bad)?;
        for i in 0..batch.num_rows() {
            into.entry(files.value(i).to_owned())
                .or_default()
                .insert(positions.value(i));
        }
    }
    Ok(())
}

/// Writes one position delete file marking `positions` (sorted by file, then position).
pub(crate) async fn write_deletes(
    table: &Table,
    positions: &[(String, Vec<i64>)],
    name: &str,
) -> Result<Option<DataFile>> {
    let count: usize = positions.iter().map(|(_, p)| p.len()).sum();
    if count == 0 {
        return Ok(None);
    }
    let md = table.metadata();
    let schema = Schema::builder()
        .with_fields(vec![
            iceberg::metadata_columns::delete_file_path_field().clone(),
            iceberg::metadata_columns::delete_file_pos_field().clone(),
        ])
        .build()
        .map_err(ice("building the delete file schema"))?;
    let arrow = Arc::new(
        schema_to_arrow_schema(&schema).map_err(ice("converting the delete file schema"))?,
    );
    let paths: StringArray = positions
        .iter()
        .flat_map(|(f, p)| std::iter::repeat_n(Some(f.as_str()), p.len()))
        .collect();
    let pos: Int64Array = positions
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    let batch = RecordBatch::try_new(arrow, vec![Arc::new(paths), Arc::new(pos)])
        .map_err(|e| Error::Internal(format!("building a delete file: {e}")))?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let path = format!("{}/data/{name}-deletes.parquet", md.location());
    let output = table
        .file_io()
        .new_output(&path)
        .map_err(ice("creating a delete file"))?;
    let mut writer = ParquetWriterBuilder::new(props, Arc::new(schema))
        .build(output)
        .await
        .map_err(ice("opening a delete file"))?;
    writer
        .write(&batch)
        .await
        .map_err(ice("writing a delete file"))?;
    let mut built = writer.close().await.map_err(ice("closing a delete file"))?;
    let Some(mut file) = built.pop() else {
        return Ok(None);
    };
    let file = file
        .content(DataContentType::PositionDeletes)
        .partition(Struct::empty())
        .partition_spec_id(md.default_partition_spec_id())
        .build()
        .map_err(|e| Error::Internal(format!("describing a delete file: {e}")))?;
    Ok(Some(file))
}
