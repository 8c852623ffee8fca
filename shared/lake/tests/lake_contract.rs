//! The embedded lake's side of the Lake contract, in its own detail: how many snapshots a write
//! takes, what their summaries say, its error texts, staging tables, and what only its hooks can
//! show (fault injection, orphan scans). The port's contract over every adapter (the embedded
//! lake, Athena on the stand-in) is tests/tests/e2e/lake_contract.rs.

use floe_core::ports::LakeWrites;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, Error, ObjectRef, RunId, TableRef};
use floe_lake::{Fault, LocalLake};
use rstest::rstest;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn rows(ids: &[i64], tag: &str) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|i| format!("{tag}{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn batch_id(n: u32) -> BatchId {
    BatchId::for_object(&ObjectRef {
        bucket: "landing".into(),
        key: format!("landing/s/t/{n}/f.csv"),
        version_id: None,
        etag: Some(format!("e{n}")),
        size: 1,
    })
}

fn opts(n: u32) -> WriteOptions {
    WriteOptions::batch(batch_id(n), RunId::from_string(format!("run{n}")))
}

fn table() -> TableRef {
    "silver_test.people".parse().unwrap()
}

/// Reads `select id, name from t order by id` as pairs.
async fn read(lake: &dyn Lake, t: &TableRef, at: ReadAt) -> Vec<(i64, String)> {
    let batches = lake
        .query(&format!("select id, name from {t} order by id"), &at)
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let names = datafusion::arrow::compute::cast(b.column(1), &DataType::Utf8).unwrap();
        let names = names.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push((ids.value(i), names.value(i).to_owned()));
        }
    }
    out
}

fn pairs(ids: &[i64], tag: &str) -> Vec<(i64, String)> {
    ids.iter().map(|i| (*i, format!("{tag}{i}"))).collect()
}

enum Backend {
    Local,
}

struct Harness {
    _dir: tempfile::TempDir,
    lake: Arc<LocalLake>,
}

async fn open(backend: Backend) -> Harness {
    match backend {
        Backend::Local => {
            let dir = tempfile::tempdir().unwrap();
            let lake = Arc::new(LocalLake::open(&dir.path().join("lake")).await.unwrap());
            Harness { _dir: dir, lake }
        }
    }
}

async fn with_table(lake: &dyn Lake) -> TableRef {
    let t = table();
    lake.create_table(&t, schema()).await.unwrap();
    t
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn append_adds_one_snapshot_per_batch_with_its_ids(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    assert_eq!(read(lake, &t, ReadAt::Current).await, vec![]);
    let a = lake
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    let b = lake
        .append(&t, vec![rows(&[3], "b")], &opts(2))
        .await
        .unwrap();
    assert_eq!((a.rows_added, b.rows_added), (2, 1));
    assert!(!a.already_committed && !b.already_committed);
    let mut expected = pairs(&[1, 2], "a");
    expected.extend(pairs(&[3], "b"));
    assert_eq!(read(lake, &t, ReadAt::Current).await, expected);
    let history = lake.snapshots(&t).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].snapshot_id, a.snapshot_id);
    assert_eq!(history[0].batch_id.as_deref(), Some(batch_id(1).as_str()));
    assert_eq!(history[0].run_id.as_deref(), Some("run1"));
    assert_eq!(history[1].parent_id, Some(a.snapshot_id));
    assert_eq!(history[1].total_rows, Some(3));
    assert!(history[1].is_current && !history[0].is_current);
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn overwrite_replaces_rows_and_keeps_history(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let first = lake
        .append(&t, vec![rows(&[1, 2, 3], "a")], &opts(1))
        .await
        .unwrap();
    let second = lake
        .overwrite(&t, vec![rows(&[7], "z")], &opts(2))
        .await
        .unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[7], "z"));
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(first.snapshot_id)).await,
        pairs(&[1, 2, 3], "a")
    );
    let history = lake.snapshots(&t).await.unwrap();
    assert_eq!(history[1].operation, "overwrite");
    assert_eq!(history[1].total_rows, Some(1));
    assert_eq!(
        history[1]
            .summary
            .get("deleted-records")
            .map(String::as_str),
        Some("3")
    );
    // Overwriting with nothing empties the table, as a new snapshot.
    lake.overwrite(&t, vec![], &opts(3)).await.unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, vec![]);
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(second.snapshot_id)).await,
        pairs(&[7], "z")
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn time_travel_by_snapshot_id_and_by_timestamp(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a = lake
        .append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    lake.append(&t, vec![rows(&[2], "b")], &opts(2))
        .await
        .unwrap();

    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(a.snapshot_id)).await,
        pairs(&[1], "a")
    );
    assert_eq!(
        read(lake, &t, ReadAt::Timestamp(between)).await,
        pairs(&[1], "a")
    );
    assert_eq!(
        read(lake, &t, ReadAt::Timestamp(chrono::Utc::now()))
            .await
            .len(),
        2
    );
    let err = lake
        .query(&format!("select * from {t}"), &ReadAt::Timestamp(before))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(
        err.to_string().contains("first snapshot was published at"),
        "{err}"
    );
    let err = lake
        .query(&format!("select * from {t}"), &ReadAt::Snapshot(42))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("silver_test.people has no snapshot 42"),
        "{err}"
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn rename_moves_the_table_and_refuses_to_clobber(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    lake.append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    let to: TableRef = "silver_test.persons".parse().unwrap();
    lake.rename_table(&t, &to).await.unwrap();
    assert!(!lake.table_exists(&t).await.unwrap());
    assert_eq!(read(lake, &to, ReadAt::Current).await, pairs(&[1], "a"));
    // The old name is free again and gets a folder of its own.
    let again = with_table(lake).await;
    lake.append(&again, vec![rows(&[9], "n")], &opts(2))
        .await
        .unwrap();
    assert_eq!(read(lake, &to, ReadAt::Current).await, pairs(&[1], "a"));
    let err = lake.rename_table(&again, &to).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn an_append_with_a_committed_batch_id_changes_nothing(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let first = lake
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    let replay = lake
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    assert!(replay.already_committed);
    assert_eq!(replay.snapshot_id, first.snapshot_id);
    assert_eq!(replay.rows_added, 0);
    assert_eq!(lake.snapshots(&t).await.unwrap().len(), 1);
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1, 2], "a"));
    // Also after other commits, and for an overwrite carrying the same batch.
    lake.append(&t, vec![rows(&[3], "b")], &opts(2))
        .await
        .unwrap();
    let replay = lake
        .overwrite(&t, vec![rows(&[5], "x")], &opts(1))
        .await
        .unwrap();
    assert!(replay.already_committed);
    assert_eq!(read(lake, &t, ReadAt::Current).await.len(), 3);
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn a_staged_snapshot_is_invisible_until_published(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    lake.append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    let mut staged_opts = opts(2);
    staged_opts.stage_only = true;
    let staged = lake
        .overwrite(&t, vec![rows(&[2], "b")], &staged_opts)
        .await
        .unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1], "a"));
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(staged.snapshot_id)).await,
        pairs(&[2], "b")
    );
    let info = lake.snapshots(&t).await.unwrap();
    assert!(
        !info
            .iter()
            .find(|s| s.snapshot_id == staged.snapshot_id)
            .unwrap()
            .published
    );
    lake.publish_snapshot(&t, staged.snapshot_id).await.unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[2], "b"));
    // Publishing again is a no-op; a snapshot staged on an old version is refused.
    lake.publish_snapshot(&t, staged.snapshot_id).await.unwrap();
    let mut late = opts(3);
    late.stage_only = true;
    let stale = lake.append(&t, vec![rows(&[3], "c")], &late).await.unwrap();
    lake.append(&t, vec![rows(&[4], "d")], &opts(4))
        .await
        .unwrap();
    let err = lake
        .publish_snapshot(&t, stale.snapshot_id)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("stage it again"), "{err}");
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test]
async fn an_overwrite_computed_from_a_stale_read_is_a_conflict(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake: &dyn Lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let seen = lake
        .append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    lake.append(&t, vec![rows(&[2], "b")], &opts(2))
        .await
        .unwrap();
    let mut o = opts(3);
    o.expected_snapshot_id = Some(seen.snapshot_id);
    let err = lake
        .overwrite(&t, vec![rows(&[1], "x")], &o)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitConflict { .. }), "{err}");
    assert_eq!(read(lake, &t, ReadAt::Current).await.len(), 2);
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishing_a_staging_table_is_atomic_for_readers(#[case] backend: Backend) {
    let h = open(backend).await;
    let lake = h.lake.clone();
    let live = table();
    // The first publish creates the live table from the staging one.
    let staged = lake.create_staging_table(&live, schema()).await.unwrap();
    lake.append(&staged, vec![rows(&[1, 2, 3], "v0_")], &opts(100))
        .await
        .unwrap();
    lake.publish_table(&staged, &live, &opts(0)).await.unwrap();
    assert!(!lake.table_exists(&staged).await.unwrap());
    assert_eq!(
        read(lake.as_ref(), &live, ReadAt::Current).await,
        pairs(&[1, 2, 3], "v0_")
    );

    // A reader polls while versions 1..=5 are published; every read must be one whole version.
    let versions: Vec<Vec<(i64, String)>> = (0..=5)
        .map(|v| pairs(&[1, 2, 3], &format!("v{v}_")))
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (lake, live, stop, versions) =
            (lake.clone(), live.clone(), stop.clone(), versions.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seen = read(lake.as_ref(), &live, ReadAt::Current).await;
                assert!(
                    versions.contains(&seen),
                    "a reader saw a partial table: {seen:?}"
                );
                reads += 1;
            }
            reads
        })
    };
    for v in 1..=5u32 {
        let staged = lake.create_staging_table(&live, schema()).await.unwrap();
        lake.append(
            &staged,
            vec![rows(&[1, 2, 3], &format!("v{v}_"))],
            &opts(100 + v),
        )
        .await
        .unwrap();
        let out = lake.publish_table(&staged, &live, &opts(v)).await.unwrap();
        assert_eq!(out.rows_added, 3);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    assert_eq!(
        read(lake.as_ref(), &live, ReadAt::Current).await,
        versions[5]
    );
    // The live table kept its history: each publish is one snapshot, older versions readable.
    let history = lake.snapshots(&live).await.unwrap();
    assert_eq!(history.len(), 6);
    assert_eq!(
        read(
            lake.as_ref(),
            &live,
            ReadAt::Snapshot(history[1].snapshot_id)
        )
        .await,
        versions[1]
    );
    assert!(lake.orphan_files(&live).await.unwrap().orphans.is_empty());
}

#[rstest]
#[case::local(Backend::Local)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_lose_an_update(#[case] backend: Backend) {
    let h = open(backend).await;
    let t = with_table(h.lake.as_ref()).await;
    // A second handle on the same folder stands in for a second process.
    let other = Arc::new(LocalLake::open(h.lake.root()).await.unwrap());
    let mut tasks = Vec::new();
    for (w, lake) in [h.lake.clone(), other].into_iter().enumerate() {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..8u32 {
                let n = w as u32 * 100 + i;
                lake.append(&t, vec![rows(&[n as i64], "w")], &opts(n))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let got = read(h.lake.as_ref(), &t, ReadAt::Current).await;
    let mut ids: Vec<i64> = (0..8).chain(100..108).collect();
    ids.sort();
    assert_eq!(got, pairs(&ids, "w"));
    assert_eq!(h.lake.snapshots(&t).await.unwrap().len(), 16);
    assert!(h.lake.orphan_files(&t).await.unwrap().orphans.is_empty());
}

#[tokio::test]
async fn a_write_that_fails_before_its_commit_leaves_no_trace() {
    let h = open(Backend::Local).await;
    let lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let first = lake
        .append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();

    lake.inject_fault(Fault::FailBeforeSwap);
    let err = lake
        .append(&t, vec![rows(&[2], "b")], &opts(2))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1], "a"));
    assert_eq!(
        lake.snapshots(&t)
            .await
            .unwrap()
            .last()
            .unwrap()
            .snapshot_id,
        first.snapshot_id
    );
    assert!(
        lake.orphan_files(&t).await.unwrap().orphans.is_empty(),
        "a failed commit cleans up"
    );

    // A crash leaves files behind: the table is unchanged and the orphans are reported.
    lake.inject_fault(Fault::CrashBeforeSwap);
    lake.overwrite(&t, vec![rows(&[3], "c")], &opts(3))
        .await
        .unwrap_err();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1], "a"));
    let report = lake.orphan_files(&t).await.unwrap();
    assert!(
        report
            .orphans
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "parquet")),
        "{report:?}"
    );
    assert!(
        report
            .orphans
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".metadata.json")),
        "{report:?}"
    );
    let cleaned = lake.remove_orphan_files(&t, Duration::ZERO).await.unwrap();
    assert_eq!(cleaned.removed.len(), report.orphans.len());
    assert!(lake.orphan_files(&t).await.unwrap().orphans.is_empty());
    // The retried write then lands as if nothing had happened.
    lake.overwrite(&t, vec![rows(&[3], "c")], &opts(3))
        .await
        .unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[3], "c"));
}

/// A write large enough is shared out to one Parquet writer per core: several data files, every
/// row once, and a failure part-way leaves none of them behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_is_shared_out_to_several_files_and_keeps_every_row() {
    let h = open(Backend::Local).await;
    let lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let ids: Vec<i64> = (0..600_000).collect();
    let out = lake
        .append(&t, vec![rows(&ids, "n")], &opts(1))
        .await
        .unwrap();
    assert_eq!(out.rows_added, 600_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores > 1 {
        assert!(out.files_added > 1, "{out:?}");
    }
    let counted = lake
        .query(
            &format!("select count(*) as n, count(distinct id) as d, min(id) as lo, max(id) as hi from {t}"),
            &ReadAt::Current,
        )
        .await
        .unwrap();
    let b = &counted[0];
    let col = |i: usize| {
        b.column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(0))
    };
    assert_eq!(
        (col(0), col(1), col(2), col(3)),
        (Some(600_000), Some(600_000), Some(0), Some(599_999))
    );
    // A failure after the files were written removes them all.
    lake.inject_fault(Fault::FailBeforeSwap);
    lake.append(&t, vec![rows(&ids, "m")], &opts(2))
        .await
        .unwrap_err();
    assert!(lake.orphan_files(&t).await.unwrap().orphans.is_empty());
}

/// A write's query can read rows held in memory by name, beside the lake's tables.
#[tokio::test]
async fn a_query_write_reads_rows_held_in_memory() {
    use floe_core::ports::{Input, Write};
    let h = open(Backend::Local).await;
    let lake = h.lake.as_ref();
    assert!(lake.capabilities().memory_relations);
    let t = with_table(lake).await;
    lake.append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    let sql = format!(
        "select id, name from {t} where id not in (select id from held) union all select id, name from held"
    );
    let at = ReadAt::Current;
    lake.write(
        &t,
        Write::Overwrite(Input::QueryOver {
            sql: &sql,
            at: &at,
            relations: vec![("held".into(), vec![rows(&[2, 3], "b")])],
        }),
        &opts(2),
    )
    .await
    .unwrap();
    assert_eq!(
        read(lake, &t, ReadAt::Current).await,
        vec![(1, "a1".into()), (2, "b2".into()), (3, "b3".into())]
    );
}

#[tokio::test]
async fn bad_writes_and_reads_say_what_is_wrong() {
    let h = open(Backend::Local).await;
    let lake = h.lake.as_ref();
    let t = with_table(lake).await;
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("idd", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = lake
        .append(&t, vec![wrong], &opts(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no column 'idd'"), "{err}");
    let err = lake
        .query("select * from people", &ReadAt::Current)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs its namespace") && err.contains("silver_test.people"),
        "{err}"
    );
    let err = lake
        .query("select * from silver_test.nope", &ReadAt::Current)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = lake
        .query(
            &format!("insert into {t} values (1, 'x')"),
            &ReadAt::Current,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Sql(_)), "{err}");
    assert_eq!(lake.snapshots(&t).await.unwrap().len(), 0);
    assert!(
        lake.create_table(&t, schema())
            .await
            .unwrap_err()
            .to_string()
            .contains("already exists")
    );
    let _ = Int64Array::from(vec![1]).len();
}

/// Two processes on a new project (two `floe land --wait`): each opens the lake and creates the
/// same namespace and table at once. Lakes opened separately on one folder stand for them (each
/// has its own catalog connections). Whoever loses a race finds the table there: never an
/// internal error, never a "database is locked" that is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_to_create_the_same_table_on_a_new_lake_is_safe() {
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let path = dir.path().join("lake");
                tokio::spawn(async move {
                    let lake = LocalLake::open(&path).await?;
                    let t: TableRef = "bronze_s.t".parse().unwrap();
                    lake.ensure_namespace("bronze_s").await?;
                    match lake.create_table(&t, schema()).await {
                        Ok(()) | Err(Error::AlreadyExists(_)) => Ok::<_, Error>(lake),
                        Err(e) => Err(e),
                    }
                })
            })
            .collect();
        for task in tasks {
            let lake = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(
                lake.table_exists(&"bronze_s.t".parse().unwrap())
                    .await
                    .unwrap()
            );
        }
    }
}
