//! Printing query results and snapshot histories as a table, CSV or JSON.

use std::io::Write;

use anyhow::Result;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use floe_core::ports::SnapshotInfo;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Whether `e` is a write to a closed pipe (`floe query ... | head`): the reader has what it
/// wanted, so the command ends quietly with success, as Unix tools do.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                c.downcast_ref::<datafusion::arrow::error::ArrowError>(),
                Some(datafusion::arrow::error::ArrowError::IoError(_, io))
                    if io.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

/// Rows of a table-format result printed at once: a larger result is printed as consecutive
/// tables of this many rows, each aligned on its own, so its rows are never all in memory.
const TABLE_BLOCK_ROWS: usize = 10_000;

/// Prints a query's rows as they come: CSV and JSON row by row, the table format in blocks of
/// [`TABLE_BLOCK_ROWS`].
pub async fn print_stream(
    mut rows: futures::stream::BoxStream<'static, floe_core::Result<RecordBatch>>,
    format: Format,
) -> Result<()> {
    use futures::StreamExt;
    let mut out = std::io::stdout().lock();
    let mut total = 0usize;
    match format {
        Format::Table => {
            let mut block: Vec<RecordBatch> = Vec::new();
            let mut in_block = 0usize;
            let mut schema = None;
            while let Some(b) = rows.next().await {
                let b = b?;
                schema.get_or_insert_with(|| b.schema());
                total += b.num_rows();
                in_block += b.num_rows();
                block.push(b);
                if in_block >= TABLE_BLOCK_ROWS {
                    writeln!(out, "{}", pretty_format_batches(&block)?)?;
                    block.clear();
                    in_block = 0;
                }
            }
            if in_block > 0 || total == 0 {
                if block.is_empty()
                    && let Some(s) = schema
                {
                    block.push(RecordBatch::new_empty(s));
                }
                writeln!(out, "{}", pretty_format_batches(&block)?)?;
            }
            writeln!(out, "({total} row{})", if total == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            // Each batch is rendered into memory and written whole, so a closed pipe is the
            // plain I/O error a reader going away is (the CSV writer would report it as its own).
            let mut header = true;
            while let Some(b) = rows.next().await {
                let mut text = Vec::new();
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(header)
                    .build(&mut text)
                    .write(&b?)?;
                header = false;
                out.write_all(&text)?;
            }
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            while let Some(b) = rows.next().await {
                w.write(&b?)?;
            }
            w.finish()?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn print_batches(batches: &[RecordBatch], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            writeln!(out, "{}", pretty_format_batches(batches)?)?;
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn print_history(snapshots: &[SnapshotInfo], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(snapshots)?)?,
        Format::Csv => {
            writeln!(
                out,
                "snapshot_id,committed_at,operation,state,added_rows,total_rows,batch_id,run_id"
            )?;
            for s in snapshots {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    s.snapshot_id,
                    s.committed_at.to_rfc3339(),
                    s.operation,
                    state(s),
                    s.added_rows.unwrap_or(0),
                    s.total_rows.map(|n| n.to_string()).unwrap_or_default(),
                    s.batch_id.as_deref().unwrap_or(""),
                    s.run_id.as_deref().unwrap_or("")
                )?;
            }
        }
        Format::Table => {
            let header = [
                "snapshot_id",
                "committed_at (UTC)",
                "operation",
                "state",
                "added",
                "total",
                "batch_id",
                "run_id",
            ];
            let rows: Vec<[String; 8]> = snapshots
                .iter()
                .map(|s| {
                    [
                        s.snapshot_id.to_string(),
                        s.committed_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                        s.operation.clone(),
                        state(s).to_owned(),
                        s.added_rows.unwrap_or(0).to_string(),
                        s.total_rows.map(|n| n.to_string()).unwrap_or_default(),
                        s.batch_id.clone().unwrap_or_default(),
                        s.run_id.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            writeln!(out, "{}", line(header.to_vec()))?;
            for r in &rows {
                writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
            }
            writeln!(
                out,
                "({} snapshot{})",
                snapshots.len(),
                if snapshots.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn state(s: &SnapshotInfo) -> &'static str {
    match (s.is_current, s.published) {
        (true, _) => "current",
        (false, true) => "published",
        (false, false) => "staged",
    }
}
