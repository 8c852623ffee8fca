//! Landing a file chunk by chunk (a few rows to a chunk here, so a small file has many): every
//! row lands with its file line whatever the format, a problem in any chunk refuses the whole
//! file with nothing left in bronze, keys repeated across chunks are found, and expectations
//! count and drop rows across chunks as over one.

use std::sync::Arc;

use floe_core::ports::Lake;
use floe_testkit::LocalProject;

const TABLES: &str = "\
source: s
tables:
  people:
    primary_key: [person_id]
    load: full
    deletes: invalidate
    columns:
      person_id: {type: bigint, nullable: false}
      name: {type: string}
      score: {type: 'decimal(5,2)', expect: {range: {min: 0}, on_fail: drop}}
  visits:
    primary_key: [visit_id]
    format: jsonl
    columns:
      visit_id: {type: bigint, nullable: false}
      place: {type: string}
  scores:
    primary_key: [person_id, kind]
    format: parquet
    columns:
      person_id: {type: bigint, nullable: false}
      kind: {type: string, nullable: false}
      score: {type: double}
";

/// Rows to a chunk in these tests.
const CHUNK: usize = 7;

async fn chunked() -> LocalProject {
    let mut p = floe_testkit::spawn_project(&[("s", TABLES)]).await;
    p.runtime = p.runtime.with_chunk_rows(CHUNK);
    p
}

/// A people extract of `rows` rows (line = row + 1), with `edit` applied to each row's fields.
fn people(rows: u64, edit: impl Fn(u64, &mut Vec<String>)) -> String {
    let mut out = String::from("person_id,name,score\n");
    for r in 1..=rows {
        let mut fields = vec![r.to_string(), format!("n{r}"), format!("{}.25", r % 90)];
        edit(r, &mut fields);
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// The Parquet files under a table's folder in the lake.
fn data_files(p: &LocalProject, table: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.push(path);
            }
        }
    }
    let (ns, name) = table.split_once('.').unwrap();
    let mut out = Vec::new();
    walk(
        &p.runtime.project().settings.lake_dir.join(ns).join(name),
        &mut out,
    );
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_many_chunks_lands_every_row_with_its_line() {
    let p = chunked().await;
    // Row 20's name spans two lines (quoted), so every later row is one line further down;
    // rows end in CRLF from row 30 on.
    let csv = people(50, |r, f| {
        if r == 20 {
            f[1] = "\"two\nlines\"".into();
        }
    });
    let csv: String = csv
        .split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            if i >= 31 {
                l.replace('\n', "\r\n")
            } else {
                l.to_owned()
            }
        })
        .collect();
    p.land("s.people", 1, "people.csv", csv.as_bytes()).await;
    let jsonl: String = (1..=30)
        .map(|v| format!("{{\"visit_id\": {v}, \"place\": \"p{v}\"}}\n"))
        .collect();
    p.land("s.visits", 1, "visits.jsonl", jsonl.as_bytes())
        .await;
    let parquet = {
        use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("score", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(1..=25)),
                Arc::new(StringArray::from_iter_values((1..=25).map(|_| "risk"))),
                Arc::new(Float64Array::from_iter_values((1..=25).map(f64::from))),
            ],
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        bytes
    };
    p.land("s.scores", 1, "scores.parquet", &parquet).await;
    let report = p.drain().await;
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(report.published.len(), 3, "{report:?}");
    // Every row, with the line an editor shows it on.
    let lines: Vec<String> = (1..=50u64)
        .map(|r| format!("{r} | {}", if r <= 20 { r + 1 } else { r + 2 }))
        .collect();
    assert_eq!(
        p.query("select person_id, _row_number from bronze_s.people order by _row_number")
            .await,
        lines
    );
    assert_eq!(
        p.query("select name from silver_s.people where person_id = 20")
            .await,
        ["two\nlines"]
    );
    assert_eq!(
        p.query("select count(*), min(_row_number), max(_row_number) from bronze_s.visits")
            .await,
        ["30 | 1 | 30"]
    );
    assert_eq!(
        p.query("select count(*), max(_row_number) from bronze_s.scores")
            .await,
        ["25 | 25"]
    );
    assert_eq!(
        p.query("select count(*), sum(score) from silver_s.scores")
            .await,
        ["25 | 325.0"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_problem_in_a_later_chunk_refuses_the_whole_file_and_bronze_stays_as_it_was() {
    let p = chunked().await;
    p.land(
        "s.people",
        1,
        "people.csv",
        people(10, |_, _| {}).as_bytes(),
    )
    .await;
    assert!(p.drain().await.quarantined.is_empty());
    let bronze: floe_core::TableRef = "bronze_s.people".parse().unwrap();
    let snapshots = p.lake.snapshots(&bronze).await.unwrap().len();
    let files = data_files(&p, "bronze_s.people");
    // Chunk 3 holds a value that is not a decimal, chunk 6 a row with a field too many, and
    // chunk 5 repeats the key of a row of chunk 1.
    let bad = people(45, |r, f| match r {
        17 => f[2] = "lots".into(),
        33 => f[0] = "3".into(),
        40 => f.push("extra".into()),
        _ => {}
    });
    p.land("s.people", 2, "people.csv", bad.as_bytes()).await;
    let report = p.drain().await;
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.root().join(&report.quarantined[0].1)).unwrap())
            .unwrap();
    let problems: Vec<(u64, String)> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_eq!(problems[0].0, 18);
    assert!(problems[0].1.contains("'lots' is not a valid decimal(5,2)"));
    assert_eq!(problems[1].0, 34);
    assert!(
        problems[1]
            .1
            .contains("duplicate key (person_id=3) first seen on line 4")
    );
    assert_eq!(problems[2].0, 41);
    assert!(problems[2].1.contains("4 fields where the header has 3"));
    // Nothing of it reached bronze: no snapshot, no file left behind.
    assert_eq!(p.lake.snapshots(&bronze).await.unwrap().len(), snapshots);
    assert_eq!(data_files(&p, "bronze_s.people"), files);
    assert_eq!(
        p.query("select count(*) from silver_s.people").await,
        ["10"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expectations_count_and_drop_rows_across_chunks() {
    let p = chunked().await;
    // A negative score in chunks 1, 2 and 4: dropped, each with its line.
    let csv = people(30, |r, f| {
        if [2, 9, 25].contains(&r) {
            f[2] = "-1.00".into();
        }
    });
    let object = p.land("s.people", 1, "people.csv", csv.as_bytes()).await;
    let report = p.drain().await;
    assert!(report.quarantined.is_empty(), "{report:?}");
    // The same event again (S3 delivers at least once): recognised as landed, counted once.
    p.runtime.announce(&object).await.unwrap();
    let report = p.drain().await;
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(
        p.query("select count(*) from bronze_s.people").await,
        ["27"]
    );
    assert_eq!(
        p.query("select count(*) from silver_s.people").await,
        ["27"]
    );
    assert_eq!(
        p.query("select line from floe_audit.dropped_rows order by line")
            .await,
        ["3", "10", "26"]
    );
    assert_eq!(
        p.query("select failing_rows, checked_rows from floe_audit.expectation_results")
            .await,
        ["3 | 30"]
    );
    // Every row dropped, chunk after chunk: refused as a whole.
    let csv = people(20, |_, f| f[2] = "-1.00".into());
    p.land("s.people", 2, "people.csv", csv.as_bytes()).await;
    let report = p.drain().await;
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let text = std::fs::read_to_string(p.root().join(&report.quarantined[0].1)).unwrap();
    assert!(text.contains("every row fails an expectation"), "{text}");
}
