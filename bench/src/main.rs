//! `floe-bench-floor`: the floor that `scripts/bench.sh` compares floe's SCD2 with.
//!
//! Any SCD2 of a full extract must at least read the previous extract and the new one, match
//! them on the key, and write out what changed. This does exactly that and nothing more, with
//! the DataFusion version floe runs on: a full outer join of the two files on the key, keeping
//! the inserted keys, the deleted keys and the rows whose non-key values differ (NULL-safe), all
//! written as one Parquet file with a `change` column (I, U or D). No history table, no bronze,
//! no audit, no catalog commit: whatever floe takes above this is the price of those.
//!
//! It prints one line: `changed rows: N (I inserted, U updated, D deleted)`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

/// Reads two full extracts of a table and writes the changed rows as Parquet.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The previous full extract.
    #[arg(long)]
    previous: PathBuf,
    /// The new full extract.
    #[arg(long)]
    current: PathBuf,
    /// Format of both extracts.
    #[arg(long, value_enum)]
    format: Format,
    /// The key column (one).
    #[arg(long)]
    key: String,
    /// Every column as NAME:SQL_TYPE, in file order (e.g. customer_id:BIGINT). CSV needs the
    /// types; with Parquet only the names are used (the file has its own schema).
    #[arg(long = "column", required = true)]
    columns: Vec<String>,
    /// Where to write the changed rows (one Parquet file).
    #[arg(long)]
    out: PathBuf,
}

fn columns(args: &Args) -> Result<Vec<(String, String)>> {
    let cols: Vec<(String, String)> = args
        .columns
        .iter()
        .map(|c| {
            c.split_once(':')
                .map(|(n, t)| (n.trim().to_owned(), t.trim().to_owned()))
                .with_context(|| format!("--column {c}: expected NAME:SQL_TYPE"))
        })
        .collect::<Result<_>>()?;
    if !cols.iter().any(|(n, _)| *n == args.key) {
        bail!(
            "the key column {} is not among the --column values",
            args.key
        );
    }
    Ok(cols)
}

fn register_sql(name: &str, file: &Path, format: Format, cols: &[(String, String)]) -> String {
    let location = file.display().to_string().replace('\'', "''");
    match format {
        Format::Csv => {
            let schema = cols
                .iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "CREATE EXTERNAL TABLE {name} ({schema}) STORED AS CSV LOCATION '{location}' \
                 OPTIONS ('format.has_header' 'true')"
            )
        }
        Format::Parquet => {
            format!("CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{location}'")
        }
    }
}

/// The changed rows: the new values of inserted and updated keys, the old ones of deleted keys.
fn changes_sql(key: &str, cols: &[(String, String)]) -> String {
    let select = cols
        .iter()
        .map(|(n, _)| format!("CASE WHEN c.{key} IS NULL THEN p.{n} ELSE c.{n} END AS {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let differs = cols
        .iter()
        .filter(|(n, _)| *n != key)
        // Parenthesised: the parser binds OR tighter than IS DISTINCT FROM.
        .map(|(n, _)| format!("(c.{n} IS DISTINCT FROM p.{n})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!(
        "SELECT {select}, \
           CASE WHEN p.{key} IS NULL THEN 'I' WHEN c.{key} IS NULL THEN 'D' ELSE 'U' END AS change \
         FROM current c FULL OUTER JOIN previous p ON c.{key} = p.{key} \
         WHERE p.{key} IS NULL OR c.{key} IS NULL OR {differs}"
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cols = columns(&args)?;
    for f in [&args.previous, &args.current] {
        if !f.is_file() {
            bail!("{} is not a file", f.display());
        }
    }
    let started = Instant::now();
    let ctx = SessionContext::new();
    for (name, file) in [("previous", &args.previous), ("current", &args.current)] {
        ctx.sql(&register_sql(name, file, args.format, &cols))
            .await
            .with_context(|| format!("reading {}", file.display()))?;
    }
    let out = args.out.display().to_string().replace('\'', "''");
    let copy = format!(
        "COPY ({}) TO '{out}' STORED AS PARQUET",
        changes_sql(&args.key, &cols)
    );
    ctx.sql(&copy)
        .await?
        .collect()
        .await
        .context("writing the changed rows")?;

    // A count by kind, read back from the file written: proof it holds what it should.
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE changed STORED AS PARQUET LOCATION '{out}'"
    ))
    .await?;
    let counts = ctx
        .sql("SELECT change, COUNT(*) AS n FROM changed GROUP BY change ORDER BY change")
        .await?
        .collect()
        .await
        .context("reading back the changed rows")?;
    let (mut total, mut by_kind) = (0i64, Vec::new());
    for batch in &counts {
        // Parquet strings come back as views: cast to plain UTF-8 to read them.
        let kinds = cast(batch.column(0), &DataType::Utf8)?;
        let kinds = kinds.as_string::<i32>();
        let ns = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .context("count column")?;
        for i in 0..batch.num_rows() {
            total += ns.value(i);
            by_kind.push(format!("{} {}", ns.value(i), kinds.value(i)));
        }
    }
    println!(
        "changed rows: {total} ({}) in {:.3} s",
        by_kind.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
