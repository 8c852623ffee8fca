//! Athena SQL conformance. For each scenario (full loads under every `deletes` policy, and a
//! cdc load), every statement the Athena engine renders parses with an independent Athena
//! parser (sqlglot, `read="athena"`); the SCD2 statements, transpiled by sqlglot to DuckDB and
//! run there on the scenario's bronze, give the same history as the embedded engine: the
//! rebuild query, the MERGE applied extract by extract, and (full loads) those MERGEs with one
//! extract arriving late and spliced in.
//!
//! `_row_hash` is left out of the comparison: it is only compared within one engine, and
//! engines render some values as text differently (see `sql::row_fingerprint`).

use floe_core::ports::LakeWrites;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use floe_config::{LoadKind, Project, TableConfig};
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, Layer, ObjectRef, RunId, TableRef};
use floe_lake::LocalLake;
use floe_pipeline::athena_sql::{self, LandedBatch};
use floe_pipeline::sql::Dialect;
use floe_pipeline::{bronze, scd2};
use serde_json::{Value, json};

const TABLES: &str = "\
source: s
tables:
  invalidate:
    primary_key: [id]
    deletes: invalidate
    columns: &cols
      id: {type: bigint, nullable: false}
      name: {type: string}
      score: {type: double}
      born: {type: date}
  new_record:
    primary_key: [id]
    deletes: new_record
    columns: *cols
  ignore:
    primary_key: [id]
    deletes: ignore
    columns: *cols
  changes:
    primary_key: [id]
    load: cdc
    deletes: new_record
    cdc: {operation_column: op, timestamp_column: changed_at}
    columns:
      id: {type: bigint, nullable: false}
      name: {type: string}
      op: {type: string}
      changed_at: {type: timestamp}
";

type Extract = (&'static str, Vec<Vec<Option<&'static str>>>);

/// Five daily full extracts: changes, an empty string, a deletion, a reappearance, an identical
/// re-extract, and two keys gone at the end.
fn full_extracts() -> Vec<Extract> {
    let r = |id, name, score, born: Option<&'static str>| vec![Some(id), name, score, born];
    vec![
        (
            "2026-11-01T06:00:00Z",
            vec![
                r("1", Some("Ada"), Some("0.5"), Some("1990-01-01")),
                r("2", Some("Bo"), Some("1.5"), None),
                r("3", Some("Cy"), Some("2.0"), Some("1985-05-05")),
            ],
        ),
        (
            "2026-11-02T06:00:00Z",
            vec![
                r("1", Some("Ada"), Some("0.5"), Some("1990-01-01")),
                r("2", Some("Bob"), Some("1.5"), None),
                r("4", Some("Di"), Some(" "), None),
            ],
        ),
        (
            "2026-11-03T06:00:00Z",
            vec![
                r("1", Some("Ada"), Some("0.75"), Some("1990-01-01")),
                r("2", Some("Bob"), Some("1.5"), None),
                r("3", Some("Cy"), Some("2.0"), Some("1985-05-05")),
                r("4", Some("Di"), None, None),
            ],
        ),
        (
            "2026-11-04T06:00:00Z",
            vec![
                r("1", Some("Ada"), Some("0.75"), Some("1990-01-01")),
                r("2", Some("Bob"), Some("1.5"), None),
                r("3", Some("Cy"), Some("2.0"), Some("1985-05-05")),
                r("4", Some("Di"), None, None),
            ],
        ),
        (
            "2026-11-05T06:00:00Z",
            vec![
                r("1", Some("Ada"), Some("0.75"), Some("1990-01-01")),
                r("4", Some("Dee"), Some("3"), None),
            ],
        ),
    ]
}

/// Two cdc batches: inserts, updates (two of one key in a batch), a delete and a re-insert.
fn cdc_extracts() -> Vec<Extract> {
    let r = |id, name, op, at| vec![Some(id), Some(name), Some(op), Some(at)];
    vec![
        (
            "2026-11-01T06:00:00Z",
            vec![
                r("1", "Ada", "I", "2026-10-31T10:00:00"),
                r("2", "Bo", "I", "2026-10-31T11:00:00"),
                r("1", "Ada L", "U", "2026-10-31T12:00:00"),
                r("1", "Ada Lo", "U", "2026-10-31 13:00:00"),
            ],
        ),
        (
            "2026-11-02T06:00:00Z",
            vec![
                r("2", "Bo", "D", "2026-11-01T09:00:00Z"),
                r("3", "Cy", "I", "2026-11-01T09:30:00"),
                r("2", "Bob", "I", "2026-11-01T10:00:00"),
            ],
        ),
    ]
}

fn project() -> (tempfile::TempDir, Project) {
    let dir = floe_testkit::write_project(&[
        ("floe.yaml", "name: conformance\n"),
        ("tables/s.yaml", TABLES),
    ]);
    let project = Project::load(dir.path()).unwrap();
    (dir, project)
}

struct Batch {
    id: BatchId,
    key: String,
    ts: DateTime<Utc>,
    rows: Vec<Vec<Option<&'static str>>>,
}

fn batches(t: &TableConfig, extracts: Vec<Extract>) -> Vec<Batch> {
    extracts
        .into_iter()
        .map(|(ts, rows)| {
            let key = format!("landing/s/{}/{ts}/extract.csv", t.name);
            Batch {
                id: BatchId::for_object(&ObjectRef::local("landing", &key, ts.as_bytes())),
                key,
                ts: ts.parse().unwrap(),
                rows,
            }
        })
        .collect()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

async fn load_bronze(
    lake: &LocalLake,
    t: &TableConfig,
    bronze_table: &TableRef,
    batches: &[Batch],
) {
    lake.ensure_namespace(&bronze_table.namespace)
        .await
        .unwrap();
    let schema = bronze::schema(t);
    lake.create_table(bronze_table, schema.clone())
        .await
        .unwrap();
    for (i, b) in batches.iter().enumerate() {
        let n = b.rows.len();
        let mut cols: Vec<ArrayRef> = (0..t.columns.len())
            .map(|c| {
                Arc::new(StringArray::from(
                    b.rows.iter().map(|r| r[c]).collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        let landed = b.ts + chrono::Duration::minutes(5);
        cols.push(Arc::new(StringArray::from(vec![b.id.as_str(); n])));
        cols.push(Arc::new(
            TimestampMicrosecondArray::from(vec![micros(b.ts); n]).with_timezone("UTC"),
        ));
        cols.push(Arc::new(
            TimestampMicrosecondArray::from(vec![micros(landed); n]).with_timezone("UTC"),
        ));
        cols.push(Arc::new(StringArray::from(vec![b.key.as_str(); n])));
        cols.push(Arc::new(Int64Array::from(
            (1..=n as i64).collect::<Vec<_>>(),
        )));
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        lake.append(
            bronze_table,
            vec![batch],
            &WriteOptions::batch(b.id.clone(), RunId::new()),
        )
        .await
        .unwrap_or_else(|e| panic!("batch {i}: {e}"));
    }
}

fn duck_type(t: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType::*;
    match t {
        Utf8 => "VARCHAR".into(),
        Int64 => "BIGINT".into(),
        Float64 => "DOUBLE".into(),
        Date32 => "DATE".into(),
        Boolean => "BOOLEAN".into(),
        Timestamp(_, _) => "TIMESTAMP".into(),
        other => panic!("no DuckDB type for {other} in this test"),
    }
}

fn layout(table: &str, schema: &datafusion::arrow::datatypes::Schema) -> Value {
    json!({
        "table": table,
        "columns": schema.fields().iter().map(|f| json!([f.name(), duck_type(f.data_type())])).collect::<Vec<_>>(),
    })
}

/// Rows sorted, timestamps without the zone mark (DataFusion prints a zoned UTC timestamp with
/// `Z` and a naive one without; DuckDB's are all naive UTC here).
fn sorted(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>> {
    let mut rows: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| {
                    v.map(|v| match v.strip_suffix('Z') {
                        Some(t) if t.len() == 19 && t.as_bytes()[10] == b'T' => t.to_owned(),
                        _ => v,
                    })
                })
                .collect()
        })
        .collect();
    rows.sort_by_key(|r| {
        r.iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    rows
}

#[tokio::test]
async fn athena_statements_parse_and_give_the_embedded_engines_history_on_duckdb() {
    let Some(python) = floe_tests::python_or_skip("athena_sql") else {
        return;
    };
    let (dir, project) = project();
    let lake = LocalLake::open(&dir.path().join("lake")).await.unwrap();
    let mut checked = 0;
    let mut lates = 0;
    for t in project.tables.values() {
        let extracts = match t.load {
            LoadKind::Full => full_extracts(),
            LoadKind::Cdc => cdc_extracts(),
        };
        let batches = batches(t, extracts);
        let bronze_table = t.table_ref(Layer::Bronze);
        let silver_table = t.table_ref(Layer::Silver);
        load_bronze(&lake, t, &bronze_table, &batches).await;

        // What the embedded engine makes of it.
        let silver_schema = scd2::silver_schema(t);
        let compare: Vec<String> = silver_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != scd2::ROW_HASH)
            .collect();
        let cols = compare
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let embedded = lake
            .query(
                &format!(
                    "SELECT {cols} FROM ({}) h",
                    scd2::history_sql(Dialect::DataFusion, t, &bronze_table.to_string())
                ),
                &ReadAt::Current,
            )
            .await
            .unwrap();
        let embedded = sorted(floe_tests::rows_as_strings(&embedded));
        assert!(
            embedded.len() >= batches[0].rows.len(),
            "{}: a history",
            t.qualified_name()
        );

        // Everything the Athena engine renders for this scenario.
        let location = |t: &TableRef| format!("s3://lake/{}/{}/", t.namespace, t.name);
        let external: TableRef = format!("floe_landing.tmp_{}", batches[0].id.as_str())
            .parse()
            .unwrap();
        let staging: TableRef = format!("{}.{}__stage", silver_table.namespace, silver_table.name)
            .parse()
            .unwrap();
        let mut statements = vec![
            athena_sql::create_table(
                &bronze_table,
                &bronze::schema(t),
                &location(&bronze_table),
                &bronze::partitioning(),
            )
            .unwrap(),
            athena_sql::create_table(
                &silver_table,
                &silver_schema,
                &location(&silver_table),
                &scd2::partitioning(),
            )
            .unwrap(),
        ];
        for b in &batches {
            let uri = format!("s3://landing-bucket/{}", b.key);
            statements.push(athena_sql::bronze_append(
                t,
                &bronze_table,
                &LandedBatch {
                    external: &external,
                    uri: &uri,
                    batch_id: b.id.as_str(),
                    extract_ts: b.ts,
                    key: &b.key,
                },
            ));
        }
        let rebuild = scd2::history_sql(Dialect::Trino, t, &bronze_table.to_string());
        let merges: Vec<String> = if t.load == LoadKind::Full {
            batches
                .iter()
                .map(|b| {
                    scd2::apply_extract_merge(
                        t,
                        &bronze_table.to_string(),
                        &silver_table.to_string(),
                        &silver_table.to_string(),
                        b.id.as_str(),
                        b.ts,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        statements.extend(merges.iter().cloned());
        // Day 3 arrives after day 4: the others merged in order, then day 3 spliced in.
        let late_merges: Option<Vec<String>> = scd2::splices_late_extracts(t).then(|| {
            let (late, next) = (&batches[2], &batches[3]);
            let mut m: Vec<String> = merges
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, m)| m.clone())
                .collect();
            let (bronze, silver) = (bronze_table.to_string(), silver_table.to_string());
            m.push(scd2::late_extract_merge(
                &scd2::LateExtract {
                    table: t,
                    bronze: &bronze,
                    silver: &silver,
                    batch_id: late.id.as_str(),
                    extract_ts: late.ts,
                    next: scd2::NextExtract {
                        extract_ts: next.ts,
                        batch_id: next.id.as_str(),
                    },
                    rejected: &[],
                },
                &silver,
            ));
            m
        });
        statements.extend(late_merges.iter().flatten().cloned());
        statements.push(athena_sql::publish_view(&silver_table, &staging, None));
        statements.push(athena_sql::publish_view(
            &silver_table,
            &staging,
            Some(4_611_686_018_427_387_904),
        ));
        statements.push(athena_sql::hidden_view(&silver_table, &staging));
        statements.push(athena_sql::drop_table(&staging));
        statements.push(athena_sql::drop_table(&external));

        let bronze_rows: Vec<Value> = batches
            .iter()
            .flat_map(|b| {
                b.rows.iter().enumerate().map(move |(i, r)| {
                    let mut v: Vec<Value> = r.iter().map(|c| json!(c)).collect();
                    v.extend([
                        json!(b.id.as_str()),
                        json!(b.ts.format("%Y-%m-%d %H:%M:%S").to_string()),
                        json!(
                            (b.ts + chrono::Duration::minutes(5))
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string()
                        ),
                        json!(b.key),
                        json!(i + 1),
                    ]);
                    Value::Array(v)
                })
            })
            .collect();
        let mut bronze_layout = layout(&bronze_table.to_string(), &bronze::schema(t));
        bronze_layout["rows"] = json!(bronze_rows);
        let mut job = json!({
            "statements": statements,
            "bronze": bronze_layout,
            "silver": layout(&silver_table.to_string(), &silver_schema),
            "rebuild": rebuild,
            "merges": merges,
            "compare": compare,
        });
        if let Some(late) = &late_merges {
            job["late_merges"] = json!(late);
        }
        let out = floe_tests::athena_sql_check(&python, &job);
        let rows = |k: &str| -> Vec<Vec<Option<String>>> {
            sorted(
                out[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .collect(),
            )
        };
        assert_eq!(
            rows("rebuild"),
            embedded,
            "{}: the rebuild on DuckDB",
            t.qualified_name()
        );
        if t.load == LoadKind::Full {
            assert_eq!(
                rows("merged"),
                embedded,
                "{}: the MERGEs on DuckDB",
                t.qualified_name()
            );
        }
        if late_merges.is_some() {
            assert_eq!(
                rows("late"),
                embedded,
                "{}: the MERGEs with a late extract on DuckDB",
                t.qualified_name()
            );
            lates += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
    assert_eq!(lates, 3, "every full-load policy splices late extracts");
}
