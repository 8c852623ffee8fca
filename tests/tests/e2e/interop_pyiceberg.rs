//! Interop: pyiceberg, an independent Iceberg implementation, reads floe's tables through the same
//! SQL catalog and sees the same snapshots and the same rows as floe.

use floe_core::ports::LakeWrites;
use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, ObjectRef, RunId, TableRef};
use floe_lake::LocalLake;
use floe_tests::{json_rows, pyiceberg_read, python_or_skip, rows_as_strings};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Decimal128(5, 2), true),
        Field::new("born", DataType::Date32, true),
        Field::new(
            "seen_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("active", DataType::Boolean, true),
    ]))
}

/// id, name, score (cents), born (days since 1970), seen_at (µs), active.
type Row<'a> = (
    i64,
    Option<&'a str>,
    Option<i128>,
    Option<i32>,
    Option<i64>,
    Option<bool>,
);

fn batch(rows: &[Row<'_>]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(
                Decimal128Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())
                    .with_precision_and_scale(5, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn opts(n: u32) -> WriteOptions {
    let object = ObjectRef::local(
        "landing",
        &format!("landing/s/t/{n}/f.csv"),
        &n.to_le_bytes(),
    );
    WriteOptions::batch(
        BatchId::for_object(&object),
        RunId::from_string(format!("run{n}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_reads_the_same_rows_and_snapshots_as_floe() {
    let Some(python) = python_or_skip("pyiceberg_reads_the_same_rows_and_snapshots_as_floe") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(&dir.path().join("lake")).await.unwrap();
    let t: TableRef = "silver_demo.people".parse().unwrap();
    lake.create_table(&t, schema()).await.unwrap();
    let ts = 1_793_000_000_000_000i64; // 2026-10-25T...
    lake.append(
        &t,
        vec![batch(&[
            (1, Some("Ada"), Some(1250), Some(5822), Some(ts), Some(true)),
            (2, None, None, None, None, None),
        ])],
        &opts(1),
    )
    .await
    .unwrap();
    lake.append(
        &t,
        vec![batch(&[(
            3,
            Some("Grace"),
            Some(-700),
            Some(0),
            Some(ts + 1_500_000),
            Some(false),
        )])],
        &opts(2),
    )
    .await
    .unwrap();
    lake.overwrite(
        &t,
        vec![batch(&[(
            4,
            Some("Alan"),
            Some(99999),
            Some(-365),
            Some(ts),
            Some(true),
        )])],
        &opts(3),
    )
    .await
    .unwrap();
    lake.append(
        &t,
        vec![batch(&[(
            5,
            Some("Edsger"),
            Some(1),
            Some(1),
            Some(ts),
            None,
        )])],
        &opts(4),
    )
    .await
    .unwrap();
    // A staged snapshot: pyiceberg must not see it as current either.
    let mut staged = opts(5);
    staged.stage_only = true;
    let staged = lake
        .append(
            &t,
            vec![batch(&[(6, Some("Staged"), None, None, None, None)])],
            &staged,
        )
        .await
        .unwrap();

    let py = pyiceberg_read(&python, lake.root(), &["silver_demo.people"]);
    let py = &py["silver_demo.people"];
    let ours = lake.snapshots(&t).await.unwrap();
    let ids: Vec<i64> = ours.iter().map(|s| s.snapshot_id).collect();
    let py_ids: Vec<i64> = py["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(py_ids, ids, "snapshot ids");
    let current = ours.iter().find(|s| s.is_current).unwrap().snapshot_id;
    assert_eq!(py["current"].as_i64(), Some(current));
    assert_ne!(current, staged.snapshot_id);

    let sql = format!("select * from {t}");
    assert_eq!(
        json_rows(&py["rows"]),
        rows_as_strings(&lake.query(&sql, &ReadAt::Current).await.unwrap()),
        "current rows"
    );
    for id in ids {
        let theirs = json_rows(&py["rows_at"][id.to_string()]);
        let ours = rows_as_strings(&lake.query(&sql, &ReadAt::Snapshot(id)).await.unwrap());
        assert_eq!(theirs, ours, "rows at snapshot {id}");
        assert_eq!(
            py["summaries"][id.to_string()]["floe.batch-id"]
                .as_str()
                .map(str::len),
            Some(25),
            "the batch id is in the summary pyiceberg reads"
        );
    }
    assert_eq!(json_rows(&py["rows"]).len(), 2, "overwrite then append");
}
