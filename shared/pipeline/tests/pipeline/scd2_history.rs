//! SCD2 semantics: the silver history query against a reference model of DESIGN.md's contract,
//! on real Iceberg bronze tables, for every deletes policy, full and cdc loads, with extracts
//! delivered in random order and more than once.
//!
//! One file (over 700 lines) on purpose: the reference model and the properties comparing the
//! engine's history with it are one oracle, read together.

use floe_core::ports::LakeWrites;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use floe_config::{
    CdcColumns, ColumnConfig, ColumnType, DeletesPolicy, FileFormat, HistoryColumns, LoadKind,
    TableConfig,
};
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, ObjectRef, RunId, TableRef};
use floe_lake::LocalLake;
use floe_pipeline::{bronze, scd2};
use proptest::prelude::*;

fn column(name: &str, ty: ColumnType) -> ColumnConfig {
    ColumnConfig {
        name: name.into(),
        ty,
        nullable: name != "id",
        description: None,
    }
}

fn table(load: LoadKind, deletes: DeletesPolicy) -> TableConfig {
    let mut columns = vec![
        column("id", ColumnType::Bigint),
        column("v", ColumnType::String),
    ];
    let cdc = (load == LoadKind::Cdc).then(|| {
        columns.push(column("op", ColumnType::String));
        columns.push(column("changed_at", ColumnType::Timestamp));
        CdcColumns {
            operation_column: "op".into(),
            timestamp_column: "changed_at".into(),
            truncate: None,
        }
    });
    TableConfig {
        source: "s".into(),
        name: "t".into(),
        description: None,
        primary_key: vec!["id".into()],
        load,
        format: FileFormat::Csv,
        deletes,
        dedupe_by: None,
        cdc,
        max_file_mb: 1,
        schema_change: Default::default(),
        expectations: Vec::new(),
        ignore_null_updates: false,
        history: HistoryColumns::All,
        columns,
        generate: Default::default(),
        file: "tables/s.yaml".into(),
    }
}

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(n)
}

/// A full extract: its time and its rows (key -> value).
type Extract = (DateTime<Utc>, BTreeMap<i64, Option<String>>);

/// One row of history: id, v, valid_from, valid_to, is_current, is_deleted.
type Version = (
    i64,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    bool,
    bool,
);

/// A file as it lands: extract time, rows as text (None = empty field), and a name.
#[derive(Debug, Clone)]
struct File {
    extract: DateTime<Utc>,
    rows: Vec<Vec<Option<String>>>,
    name: String,
}

async fn land(lake: &LocalLake, t: &TableConfig, bronze_ref: &TableRef, file: &File, landed: i64) {
    let schema = bronze::schema(t);
    let n = file.rows.len();
    let mut cols: Vec<ArrayRef> = (0..t.columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                file.rows
                    .iter()
                    .map(|r| Some(r[i].clone().unwrap_or_default()))
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let object = ObjectRef::local("landing", &file.name, format!("{:?}", file.rows).as_bytes());
    let batch = BatchId::for_object(&object);
    let utc = |v: i64| {
        Arc::new(TimestampMicrosecondArray::from(vec![v; n]).with_timezone("UTC")) as ArrayRef
    };
    cols.push(Arc::new(StringArray::from(vec![batch.as_str(); n])));
    cols.push(utc(file.extract.timestamp_micros()));
    cols.push(utc(landed));
    cols.push(Arc::new(StringArray::from(vec![file.name.as_str(); n])));
    cols.push(Arc::new(Int64Array::from(
        (1..=n as i64).collect::<Vec<_>>(),
    )));
    let rb = RecordBatch::try_new(schema, cols).unwrap();
    lake.append(
        bronze_ref,
        vec![rb],
        &WriteOptions::batch(batch, RunId::from_string("test")),
    )
    .await
    .unwrap();
}

async fn history(files: &[File], t: &TableConfig) -> BTreeSet<Version> {
    versions(history_rows(files, t).await)
}

async fn history_rows(files: &[File], t: &TableConfig) -> Vec<RecordBatch> {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(dir.path()).await.unwrap();
    let b: TableRef = "bronze_s.t".parse().unwrap();
    lake.create_table(&b, bronze::schema(t)).await.unwrap();
    for (i, f) in files.iter().enumerate() {
        land(&lake, t, &b, f, i as i64).await;
    }
    lake.query(
        &scd2::history_sql(floe_pipeline::sql::Dialect::DataFusion, t, "bronze_s.t"),
        &ReadAt::Current,
    )
    .await
    .unwrap()
}

/// The history built the incremental way: each file, in the order given, landed and then
/// applied to silver as one extract (`scd2::apply_extract_sql`), as the standardise stage does
/// for extracts that arrive in order.
async fn applied(files: &[File], t: &TableConfig) -> BTreeSet<Version> {
    versions(applied_rows(files, t).await)
}

async fn applied_rows(files: &[File], t: &TableConfig) -> Vec<RecordBatch> {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(dir.path()).await.unwrap();
    let files: Vec<&File> = files.iter().collect();
    apply_in_order(&lake, t, &files).await;
    lake.query("SELECT * FROM silver_s.t", &ReadAt::Current)
        .await
        .unwrap()
}

fn batch_of(f: &File) -> BatchId {
    BatchId::for_object(&ObjectRef::local(
        "landing",
        &f.name,
        format!("{:?}", f.rows).as_bytes(),
    ))
}

/// Creates `t`'s bronze (`bronze_s.t`) and silver (`silver_s.t`) tables in `lake`.
async fn create_tables(lake: &LocalLake, t: &TableConfig) -> (TableRef, TableRef) {
    let b: TableRef = "bronze_s.t".parse().unwrap();
    let silver: TableRef = "silver_s.t".parse().unwrap();
    lake.create_table(&b, bronze::schema(t)).await.unwrap();
    lake.create_table(&silver, scd2::silver_schema(t))
        .await
        .unwrap();
    (b, silver)
}

/// Creates bronze and silver in `lake`, then lands each file and applies it to silver
/// (`scd2::apply_extract_sql`), in the order given.
async fn apply_in_order(lake: &LocalLake, t: &TableConfig, files: &[&File]) {
    let (b, silver) = create_tables(lake, t).await;
    for (i, f) in files.iter().enumerate() {
        land(lake, t, &b, f, i as i64).await;
        let sql = scd2::apply_extract_sql(
            floe_pipeline::sql::Dialect::DataFusion,
            t,
            "bronze_s.t",
            "silver_s.t",
            batch_of(f).as_str(),
            f.extract,
        );
        lake.write_query(&silver, &sql, &ReadAt::Current, &WriteOptions::default())
            .await
            .unwrap();
    }
}

/// The history built as the embedded standardise stage builds it: each file, in the order given,
/// landed, its versions computed and held (`scd2::extract_versions_sql`), and only the versions
/// that change written as a row delta (`scd2::apply_extract_delta`: new files plus a position
/// delete file for the versions they replace).
async fn applied_as_deltas_rows(files: &[File], t: &TableConfig) -> Vec<RecordBatch> {
    use floe_core::ports::{Input, Write};
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(dir.path()).await.unwrap();
    let (b, silver) = create_tables(&lake, t).await;
    let dialect = floe_pipeline::sql::Dialect::DataFusion;
    let on = scd2::delta_match_columns(t);
    for (i, f) in files.iter().enumerate() {
        land(&lake, t, &b, f, i as i64).await;
        let batch = batch_of(f);
        let versions_sql =
            scd2::extract_versions_sql(dialect, t, "bronze_s.t", batch.as_str(), f.extract);
        let mut versions = lake.query(&versions_sql, &ReadAt::Current).await.unwrap();
        if versions.is_empty() {
            let schema = lake
                .query_schema(&versions_sql, &ReadAt::Current)
                .await
                .unwrap();
            versions.push(RecordBatch::new_empty(schema));
        }
        let sql = scd2::apply_extract_delta(dialect, t, "silver_s.t", batch.as_str(), f.extract);
        lake.write(
            &silver,
            Write::Delta {
                rows: Input::QueryOver {
                    sql: &sql,
                    at: &ReadAt::Current,
                    relations: vec![(scd2::EXTRACT_VERSIONS.to_owned(), versions)],
                },
                on: &on,
                replaces: scd2::REPLACES,
            },
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    lake.query("SELECT * FROM silver_s.t", &ReadAt::Current)
        .await
        .unwrap()
}

/// The history when file `late` (not the last by extract time) arrives after all the others:
/// those applied in order, then it spliced in (`scd2::late_extract_sql`), as the standardise
/// stage does for a late extract.
async fn late_rows(files: &[File], late: usize, t: &TableConfig) -> Vec<RecordBatch> {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(dir.path()).await.unwrap();
    let on_time: Vec<&File> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != late)
        .map(|(_, f)| f)
        .collect();
    apply_in_order(&lake, t, &on_time).await;
    let f = &files[late];
    let next = files
        .iter()
        .filter(|n| n.extract > f.extract)
        .min_by_key(|n| n.extract)
        .expect("a later extract");
    let next_batch = batch_of(next);
    land(
        &lake,
        t,
        &"bronze_s.t".parse().unwrap(),
        f,
        files.len() as i64,
    )
    .await;
    let late_batch = batch_of(f);
    let sql = scd2::late_extract_sql(
        floe_pipeline::sql::Dialect::DataFusion,
        &scd2::LateExtract {
            table: t,
            bronze: "bronze_s.t",
            silver: "silver_s.t",
            batch_id: late_batch.as_str(),
            extract_ts: f.extract,
            next: scd2::NextExtract {
                extract_ts: next.extract,
                batch_id: next_batch.as_str(),
            },
            rejected: &[],
        },
    );
    lake.write_query(
        &"silver_s.t".parse().unwrap(),
        &sql,
        &ReadAt::Current,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    lake.query("SELECT * FROM silver_s.t", &ReadAt::Current)
        .await
        .unwrap()
}

/// Every column of every row, as sorted text lines (columns in silver's order).
fn all_rows(batches: &[RecordBatch], t: &TableConfig) -> Vec<String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let names: Vec<String> = scd2::silver_schema(t)
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<ArrayFormatter> = names
            .iter()
            .map(|n| {
                let c = b.column(b.schema().index_of(n).unwrap());
                ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| c.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
        }
    }
    out.sort();
    out
}

fn versions(batches: Vec<RecordBatch>) -> BTreeSet<Version> {
    versions_with_w(batches)
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// The versions, each with its `w` (None when the table has no `w`).
fn versions_with_w(batches: Vec<RecordBatch>) -> BTreeSet<(Version, Option<String>)> {
    let mut out = BTreeSet::new();
    for rb in batches {
        let ws = rb
            .schema()
            .index_of("w")
            .ok()
            .map(|i| cast(rb.column(i), &DataType::Utf8).unwrap());
        let col = |name: &str| rb.column(rb.schema().index_of(name).unwrap()).clone();
        let ids = cast(&col("id"), &DataType::Int64).unwrap();
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        let vs = cast(&col("v"), &DataType::Utf8).unwrap();
        let vs = vs.as_any().downcast_ref::<StringArray>().unwrap();
        let ts = |name: &str| {
            cast(
                &col(name),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
            .unwrap()
        };
        let from = ts("valid_from");
        let from = from
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let to = ts("valid_to");
        let to = to
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let current = col("is_current");
        let current = current
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BooleanArray>()
            .unwrap();
        let deleted = rb
            .schema()
            .index_of("is_deleted")
            .ok()
            .map(|i| rb.column(i).clone());
        for r in 0..rb.num_rows() {
            let micros = |a: &TimestampMicrosecondArray| {
                (!a.is_null(r)).then(|| Utc.timestamp_micros(a.value(r)).unwrap())
            };
            let is_deleted = deleted.as_ref().is_some_and(|d| {
                d.as_any()
                    .downcast_ref::<datafusion::arrow::array::BooleanArray>()
                    .unwrap()
                    .value(r)
            });
            let w = ws.as_ref().and_then(|w| {
                let w = w.as_any().downcast_ref::<StringArray>().unwrap();
                (!w.is_null(r)).then(|| w.value(r).to_owned())
            });
            out.insert((
                (
                    ids.value(r),
                    (!vs.is_null(r)).then(|| vs.value(r).to_owned()),
                    micros(from).unwrap(),
                    micros(to),
                    current.value(r),
                    is_deleted,
                ),
                w,
            ));
        }
    }
    out
}

/// DESIGN.md's full-load contract, applied one extract at a time, in extract order: the model
/// below with every value column tracked (no `w`).
fn model_full(extracts: &[Extract], deletes: DeletesPolicy) -> BTreeSet<Version> {
    let without_w: Vec<TrackedExtract> = extracts
        .iter()
        .map(|(t, rows)| {
            (
                *t,
                rows.iter().map(|(k, v)| (*k, (v.clone(), None))).collect(),
            )
        })
        .collect();
    model_tracked_full(&without_w, deletes)
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

fn full_files(extracts: &[Extract]) -> Vec<File> {
    extracts
        .iter()
        .map(|(t, rows)| File {
            extract: *t,
            rows: rows
                .iter()
                .map(|(k, v)| vec![Some(k.to_string()), v.clone()])
                .collect(),
            name: format!("landing/s/t/{}/t.csv", t.to_rfc3339()),
        })
        .collect()
}

fn extracts_strategy() -> impl Strategy<Value = Vec<Extract>> {
    let value = prop_oneof![
        Just(None),
        Just(Some("a".to_owned())),
        Just(Some("b".to_owned()))
    ];
    let extract = proptest::collection::btree_map(1i64..6, value, 1..5);
    proptest::collection::vec(extract, 1..6).prop_map(|xs| {
        xs.into_iter()
            .enumerate()
            .map(|(i, rows)| (day(i as i64), rows))
            .collect()
    })
}

/// Delivery order: a permutation of the files, some delivered twice (the same object again, or
/// the same extract re-landed under another name).
fn delivery(files: Vec<File>, order: Vec<usize>, repeats: Vec<(usize, bool)>) -> Vec<File> {
    let n = files.len();
    let mut idx: Vec<usize> = (0..n).collect();
    for (i, j) in order.iter().enumerate() {
        idx.swap(i % n, j % n);
    }
    let mut out: Vec<File> = idx.iter().map(|i| files[*i].clone()).collect();
    for (r, renamed) in repeats {
        let mut f = files[r % n].clone();
        if renamed {
            f.name = format!("{}.again", f.name);
        }
        out.push(f);
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn five_extracts_give_exactly_the_expected_history() {
    // Inserts, an update, a NULL change, an identical extract, a delete and a reappearing key.
    let rows = |xs: &[(i64, Option<&str>)]| {
        xs.iter()
            .map(|(k, v)| (*k, v.map(str::to_owned)))
            .collect::<BTreeMap<_, _>>()
    };
    let extracts = vec![
        (
            day(0),
            rows(&[(1, Some("a")), (2, Some("b")), (3, Some("c"))]),
        ),
        (day(1), rows(&[(1, Some("a")), (2, Some("B")), (3, None)])),
        (day(2), rows(&[(1, Some("a")), (2, Some("B")), (3, None)])),
        (day(3), rows(&[(1, Some("a")), (3, None), (4, Some("d"))])),
        (
            day(4),
            rows(&[
                (1, Some("a")),
                (2, Some("B")),
                (3, Some("c")),
                (4, Some("d")),
            ]),
        ),
    ];
    let v = |k: i64, val: Option<&str>, from: i64, to: Option<i64>, deleted: bool| -> Version {
        (
            k,
            val.map(str::to_owned),
            day(from),
            to.map(day),
            to.is_none(),
            deleted,
        )
    };
    let t = table(LoadKind::Full, DeletesPolicy::Invalidate);
    let got = runtime().block_on(history(&full_files(&extracts), &t));
    let expected: BTreeSet<Version> = [
        v(1, Some("a"), 0, None, false),
        v(2, Some("b"), 0, Some(1), false),
        v(2, Some("B"), 1, Some(3), false),
        v(2, Some("B"), 4, None, false),
        v(3, Some("c"), 0, Some(1), false),
        v(3, None, 1, Some(4), false),
        v(3, Some("c"), 4, None, false),
        v(4, Some("d"), 3, None, false),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);
    assert_eq!(got, model_full(&extracts, DeletesPolicy::Invalidate));

    let t = table(LoadKind::Full, DeletesPolicy::NewRecord);
    let got = runtime().block_on(history(&full_files(&extracts), &t));
    assert!(
        got.contains(&v(2, Some("B"), 3, Some(4), true)),
        "a deleted version from day 3: {got:?}"
    );
    assert_eq!(got, model_full(&extracts, DeletesPolicy::NewRecord));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn full_loads_in_any_order_with_duplicates_match_in_order_delivery(
        extracts in extracts_strategy(),
        order in proptest::collection::vec(0usize..8, 0..8),
        repeats in proptest::collection::vec((0usize..8, any::<bool>()), 0..3),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = table(LoadKind::Full, policy);
        let files = full_files(&extracts);
        let got = runtime().block_on(history(&delivery(files, order, repeats), &t));
        prop_assert_eq!(got, model_full(&extracts, policy));
    }

    #[test]
    fn extracts_applied_one_by_one_in_order_match_the_model(
        extracts in extracts_strategy(),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = table(LoadKind::Full, policy);
        let got = runtime().block_on(applied(&full_files(&extracts), &t));
        prop_assert_eq!(got, model_full(&extracts, policy));
    }

    #[test]
    fn extracts_applied_as_row_deltas_match_the_model(
        extracts in extracts_strategy(),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = table(LoadKind::Full, policy);
        let got = versions(runtime().block_on(applied_as_deltas_rows(&full_files(&extracts), &t)));
        prop_assert_eq!(got, model_full(&extracts, policy));
    }

    #[test]
    fn with_dedupe_by_applying_in_order_matches_the_rebuild(
        extracts in proptest::collection::vec(
            proptest::collection::vec(
                (
                    1i64..4,
                    prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))],
                    prop_oneof![Just(None), Just(Some("x")), Just(Some("y"))],
                ),
                1..6,
            ),
            1..5,
        ),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        // Several rows per key in one extract; `dedupe_by: v` keeps the highest v (NULLs last),
        // then the last in the file, which `w` tells apart. (Landing refuses empty files, so no
        // extract is empty.) Every column of every version must be the rebuild's.
        let mut t = table(LoadKind::Full, policy);
        t.dedupe_by = Some("v".into());
        t.columns.push(column("w", ColumnType::String));
        let files: Vec<File> = extracts
            .iter()
            .enumerate()
            .map(|(i, rows)| File {
                extract: day(i as i64),
                rows: rows
                    .iter()
                    .map(|(k, v, w)| vec![Some(k.to_string()), v.map(str::to_owned), w.map(str::to_owned)])
                    .collect(),
                name: format!("landing/s/t/{}/t.csv", day(i as i64).to_rfc3339()),
            })
            .collect();
        let rebuilt = all_rows(&runtime().block_on(history_rows(&files, &t)), &t);
        let got = all_rows(&runtime().block_on(applied_rows(&files, &t)), &t);
        prop_assert_eq!(got, rebuilt);
    }

    #[test]
    fn a_late_extract_spliced_in_equals_the_rebuild(
        extracts in extracts_strategy().prop_filter("a late extract needs one after it", |x| x.len() > 1),
        late in 0usize..8,
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        // Every column of every version (batch ids and fingerprints too) is the rebuild's, and
        // the versions are the model's.
        let t = table(LoadKind::Full, policy);
        let files = full_files(&extracts);
        let late = late % (files.len() - 1);
        let rebuilt = runtime().block_on(history_rows(&files, &t));
        let got = runtime().block_on(late_rows(&files, late, &t));
        prop_assert_eq!(all_rows(&got, &t), all_rows(&rebuilt, &t));
        prop_assert_eq!(versions(got), model_full(&extracts, policy));
    }
}

#[test]
fn late_extracts_splice_every_kind_of_change() {
    // Day 2 arrives last. Against day 1 it has: 1 the same, 2 changed (and day 3 has day 2's
    // value: the versions join), 3 missing (back on day 3), 4 new, 5 missing and still missing
    // on day 3, 6 changed back to day 0's value.
    let rows = |xs: &[(i64, &str)]| {
        xs.iter()
            .map(|(k, v)| (*k, Some((*v).to_owned())))
            .collect::<BTreeMap<_, _>>()
    };
    let extracts = vec![
        (
            day(0),
            rows(&[(1, "a"), (2, "b"), (3, "c"), (5, "e"), (6, "f")]),
        ),
        (
            day(1),
            rows(&[(1, "a"), (2, "b"), (3, "c"), (5, "e"), (6, "F")]),
        ),
        (day(2), rows(&[(1, "a"), (2, "B"), (4, "d"), (6, "f")])),
        (
            day(3),
            rows(&[(1, "a"), (2, "B"), (3, "c"), (4, "d"), (6, "f")]),
        ),
    ];
    for policy in [
        DeletesPolicy::Ignore,
        DeletesPolicy::Invalidate,
        DeletesPolicy::NewRecord,
    ] {
        let t = table(LoadKind::Full, policy);
        let files = full_files(&extracts);
        let rebuilt = runtime().block_on(history_rows(&files, &t));
        let got = runtime().block_on(late_rows(&files, 2, &t));
        assert_eq!(all_rows(&got, &t), all_rows(&rebuilt, &t), "{policy:?}");
        assert_eq!(versions(got), model_full(&extracts, policy), "{policy:?}");
    }
}

/// A change row: key, operation, value.
type Change = (i64, &'static str, Option<String>);

/// DESIGN.md's cdc contract, applied one change at a time, in change-time order: the model
/// below with every value column tracked (no `w`).
fn model_cdc(changes: &[(DateTime<Utc>, Change)], deletes: DeletesPolicy) -> BTreeSet<Version> {
    let without_w: Vec<(DateTime<Utc>, TrackedChange)> = changes
        .iter()
        .map(|(t, (k, op, v))| (*t, (*k, *op, v.clone(), None)))
        .collect();
    model_tracked_cdc(&without_w, deletes)
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// Change rows (in change-time order) split into batches (several changes per key per batch).
fn cdc_files(changes: &[(DateTime<Utc>, Change)], batch_of: &[usize]) -> Vec<File> {
    batch_files(
        changes
            .iter()
            .map(|(t, (k, op, v))| (*t, *k, *op, vec![v.clone()])),
        batch_of,
    )
}

/// Change rows, each (change time, key, operation, values), as up to three batch files: row i
/// goes to batch `batch_of[i] % 3`; columns key, values, operation, change time.
fn batch_files(
    changes: impl Iterator<Item = (DateTime<Utc>, i64, &'static str, Vec<Option<String>>)>,
    batch_of: &[usize],
) -> Vec<File> {
    let mut files: BTreeMap<usize, File> = BTreeMap::new();
    for (i, (t, k, op, values)) in changes.enumerate() {
        let b = batch_of.get(i).copied().unwrap_or(0) % 3;
        let mut row = vec![Some(k.to_string())];
        row.extend(values);
        row.push(Some(op.to_owned()));
        row.push(Some(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
        files
            .entry(b)
            .or_insert_with(|| File {
                extract: day(100 + b as i64),
                rows: Vec::new(),
                name: format!("landing/s/t/batch{b}/t.csv"),
            })
            .rows
            .push(row);
    }
    files.into_values().collect()
}

fn changes_strategy() -> impl Strategy<Value = Vec<(DateTime<Utc>, Change)>> {
    let value = prop_oneof![
        Just(None),
        Just(Some("a".to_owned())),
        Just(Some("b".to_owned()))
    ];
    let op = prop_oneof![Just("I"), Just("U"), Just("D")];
    proptest::collection::vec((1i64..4, op, value), 1..14).prop_map(|xs| {
        xs.into_iter()
            .enumerate()
            .map(|(i, c)| (day(0) + chrono::Duration::minutes(i as i64), c))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn cdc_batches_in_any_order_with_duplicates_match_in_order_delivery(
        changes in changes_strategy(),
        batch_of in proptest::collection::vec(0usize..3, 14),
        order in proptest::collection::vec(0usize..4, 0..4),
        repeats in proptest::collection::vec((0usize..4, any::<bool>()), 0..3),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = table(LoadKind::Cdc, policy);
        let files = cdc_files(&changes, &batch_of);
        let got = runtime().block_on(history(&delivery(files, order, repeats), &t));
        prop_assert_eq!(got, model_cdc(&changes, policy));
    }
}

// History on a column subset: `track_history: [v]`, so a change of `w` alone updates the key's
// current version in place. The models here are also the plain contract's (all tracked, no `w`).

/// A table with a tracked value `v` and an untracked one `w`.
fn tracked_table(load: LoadKind, deletes: DeletesPolicy) -> TableConfig {
    let mut t = table(load, deletes);
    t.columns.insert(2, column("w", ColumnType::String));
    t.history = HistoryColumns::Only(vec!["v".into()]);
    t
}

/// A version with its `w`.
type Tracked = (Version, Option<String>);

/// A key's open version in the models below: v, w, valid from, deleted.
type Open = (Option<String>, Option<String>, DateTime<Utc>, bool);

/// Applies one row (key, v, w) at `t` to the open versions: a live version with the same `v`
/// takes the new `w` in place; anything else closes it and opens one.
fn model_upsert(
    open: &mut BTreeMap<i64, Open>,
    done: &mut Vec<Tracked>,
    t: DateTime<Utc>,
    k: i64,
    v: &Option<String>,
    w: &Option<String>,
) {
    match open.get_mut(&k) {
        Some(o) if !o.3 && &o.0 == v => o.1 = w.clone(),
        Some(o) => {
            done.push(((k, o.0.clone(), o.2, Some(t), false, o.3), o.1.clone()));
            *o = (v.clone(), w.clone(), t, false);
        }
        None => {
            open.insert(k, (v.clone(), w.clone(), t, false));
        }
    }
}

/// Ends a key's live version at `t` as `deletes` says (a deleted key under `new_record` opens a
/// deleted version with its last values).
fn model_delete(
    open: &mut BTreeMap<i64, Open>,
    done: &mut Vec<Tracked>,
    t: DateTime<Utc>,
    k: i64,
    deletes: DeletesPolicy,
) {
    let Some((v, w, from, false)) = open.get(&k).cloned() else {
        return;
    };
    match deletes {
        DeletesPolicy::Ignore => {}
        DeletesPolicy::Invalidate => {
            done.push(((k, v, from, Some(t), false, false), w));
            open.remove(&k);
        }
        DeletesPolicy::NewRecord => {
            done.push(((k, v.clone(), from, Some(t), false, false), w.clone()));
            open.insert(k, (v, w, t, true));
        }
    }
}

fn model_close(open: BTreeMap<i64, Open>, mut done: Vec<Tracked>) -> BTreeSet<Tracked> {
    done.extend(
        open.into_iter()
            .map(|(k, (v, w, from, deleted))| ((k, v, from, None, true, deleted), w)),
    );
    done.into_iter().collect()
}

/// A full extract with `w`: its time and its rows (key -> (v, w)).
type TrackedExtract = (
    DateTime<Utc>,
    BTreeMap<i64, (Option<String>, Option<String>)>,
);

fn model_tracked_full(extracts: &[TrackedExtract], deletes: DeletesPolicy) -> BTreeSet<Tracked> {
    let mut done = Vec::new();
    let mut open = BTreeMap::new();
    for (t, rows) in extracts {
        for (k, (v, w)) in rows {
            model_upsert(&mut open, &mut done, *t, *k, v, w);
        }
        let missing: Vec<i64> = open
            .keys()
            .filter(|k| !rows.contains_key(k))
            .copied()
            .collect();
        for k in missing {
            model_delete(&mut open, &mut done, *t, k, deletes);
        }
    }
    model_close(open, done)
}

fn tracked_full_files(extracts: &[TrackedExtract]) -> Vec<File> {
    extracts
        .iter()
        .map(|(t, rows)| File {
            extract: *t,
            rows: rows
                .iter()
                .map(|(k, (v, w))| vec![Some(k.to_string()), v.clone(), w.clone()])
                .collect(),
            name: format!("landing/s/t/{}/t.csv", t.to_rfc3339()),
        })
        .collect()
}

fn small_value(a: &'static str, b: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(a.to_owned())),
        Just(Some(b.to_owned()))
    ]
}

fn tracked_extracts() -> impl Strategy<Value = Vec<TrackedExtract>> {
    let extract = proptest::collection::btree_map(
        1i64..5,
        (small_value("a", "b"), small_value("x", "y")),
        1..5,
    );
    proptest::collection::vec(extract, 1..7).prop_map(|xs| {
        xs.into_iter()
            .enumerate()
            .map(|(i, rows)| (day(i as i64), rows))
            .collect()
    })
}

/// A change row with `w`: key, operation, v, w.
type TrackedChange = (i64, &'static str, Option<String>, Option<String>);

fn model_tracked_cdc(
    changes: &[(DateTime<Utc>, TrackedChange)],
    deletes: DeletesPolicy,
) -> BTreeSet<Tracked> {
    let mut done = Vec::new();
    let mut open = BTreeMap::new();
    for (t, (k, op, v, w)) in changes {
        if *op == "D" {
            // A cdc delete always ends the version (`ignore` only concerns full extracts).
            let policy = match deletes {
                DeletesPolicy::NewRecord => DeletesPolicy::NewRecord,
                _ => DeletesPolicy::Invalidate,
            };
            model_delete(&mut open, &mut done, *t, *k, policy);
        } else {
            model_upsert(&mut open, &mut done, *t, *k, v, w);
        }
    }
    model_close(open, done)
}

fn tracked_cdc_files(changes: &[(DateTime<Utc>, TrackedChange)], batch_of: &[usize]) -> Vec<File> {
    batch_files(
        changes
            .iter()
            .map(|(t, (k, op, v, w))| (*t, *k, *op, vec![v.clone(), w.clone()])),
        batch_of,
    )
}

#[test]
fn a_change_of_an_untracked_column_updates_the_current_version_in_place() {
    let rows = |xs: &[(i64, &str, &str)]| {
        xs.iter()
            .map(|(k, v, w)| (*k, (Some(v.to_string()), Some(w.to_string()))))
            .collect::<BTreeMap<_, _>>()
    };
    // Key 1: w changes twice under the same v, then v changes, then w again.
    let extracts = vec![
        (day(0), rows(&[(1, "a", "x")])),
        (day(1), rows(&[(1, "a", "y")])),
        (day(2), rows(&[(1, "a", "z")])),
        (day(3), rows(&[(1, "b", "z")])),
        (day(4), rows(&[(1, "b", "x")])),
    ];
    let t = tracked_table(LoadKind::Full, DeletesPolicy::Invalidate);
    let v = |val: &str, w: &str, from: i64, to: Option<i64>| -> Tracked {
        (
            (
                1,
                Some(val.into()),
                day(from),
                to.map(day),
                to.is_none(),
                false,
            ),
            Some(w.into()),
        )
    };
    let expected: BTreeSet<Tracked> = [v("a", "z", 0, Some(3)), v("b", "x", 3, None)]
        .into_iter()
        .collect();
    let files = tracked_full_files(&extracts);
    let rebuilt = versions_with_w(runtime().block_on(history_rows(&files, &t)));
    assert_eq!(rebuilt, expected);
    let applied = versions_with_w(runtime().block_on(applied_rows(&files, &t)));
    assert_eq!(applied, expected);
    let deltas = versions_with_w(runtime().block_on(applied_as_deltas_rows(&files, &t)));
    assert_eq!(deltas, expected);
    assert_eq!(
        model_tracked_full(&extracts, DeletesPolicy::Invalidate),
        expected
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn tracked_full_loads_in_any_order_match_the_model(
        extracts in tracked_extracts(),
        order in proptest::collection::vec(0usize..8, 0..8),
        repeats in proptest::collection::vec((0usize..8, any::<bool>()), 0..3),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = tracked_table(LoadKind::Full, policy);
        let files = delivery(tracked_full_files(&extracts), order, repeats);
        let got = versions_with_w(runtime().block_on(history_rows(&files, &t)));
        prop_assert_eq!(got, model_tracked_full(&extracts, policy));
    }

    #[test]
    fn tracked_extracts_applied_in_order_match_the_model(
        extracts in tracked_extracts(),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = tracked_table(LoadKind::Full, policy);
        let got = versions_with_w(runtime().block_on(applied_rows(&tracked_full_files(&extracts), &t)));
        prop_assert_eq!(got, model_tracked_full(&extracts, policy));
    }

    #[test]
    fn tracked_extracts_applied_as_row_deltas_match_the_model(
        extracts in tracked_extracts(),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = tracked_table(LoadKind::Full, policy);
        let got = versions_with_w(runtime().block_on(applied_as_deltas_rows(&tracked_full_files(&extracts), &t)));
        prop_assert_eq!(got, model_tracked_full(&extracts, policy));
    }

    #[test]
    fn tracked_cdc_batches_in_any_order_match_the_model(
        changes in proptest::collection::vec(
            (1i64..4, prop_oneof![Just("I"), Just("U"), Just("D")], small_value("a", "b"), small_value("x", "y")),
            1..14,
        ).prop_map(|xs| xs.into_iter().enumerate().map(|(i, c)| (day(0) + chrono::Duration::minutes(i as i64), c)).collect::<Vec<_>>()),
        batch_of in proptest::collection::vec(0usize..3, 14),
        order in proptest::collection::vec(0usize..4, 0..4),
        repeats in proptest::collection::vec((0usize..4, any::<bool>()), 0..3),
        policy in prop_oneof![Just(DeletesPolicy::Ignore), Just(DeletesPolicy::Invalidate), Just(DeletesPolicy::NewRecord)],
    ) {
        let t = tracked_table(LoadKind::Cdc, policy);
        let files = delivery(tracked_cdc_files(&changes, &batch_of), order, repeats);
        let got = versions_with_w(runtime().block_on(history_rows(&files, &t)));
        prop_assert_eq!(got, model_tracked_cdc(&changes, policy));
    }
}
