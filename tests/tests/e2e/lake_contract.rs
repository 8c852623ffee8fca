//! The Lake port's contract, run against every adapter: the embedded lake and the lake on
//! Athena (the stand-in: Trino on moto's Glue and S3).
//!
//! One file (over 700 lines) on purpose: the contract is one list of scenarios run on every
//! adapter; split up, a scenario could join one adapter's list and not the other's.
//!
//! Each scenario is written once against `&dyn Lake` and asserts the port's invariants (see
//! `floe_core::ports::Lake`), not an adapter's way of keeping them: how many snapshots a write
//! takes, or what a summary says, differs (a replace is one commit on the embedded lake and two
//! behind a pinned view on Athena). The embedded lake's own commit details (fault injection,
//! orphan files) are tested in shared/lake/tests.

use floe_core::ports::LakeWrites;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, ObjectRef, RunId, TableRef};
use floe_lake::LocalLake;
use floe_tests::athena_local::StandIn;
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

fn staged(n: u32) -> WriteOptions {
    WriteOptions {
        stage_only: true,
        ..opts(n)
    }
}

/// `select id, name from t order by id` as pairs.
async fn read(lake: &dyn Lake, t: &TableRef, at: ReadAt) -> Vec<(i64, String)> {
    let batches = lake
        .query(&format!("select id, name from {t} order by id"), &at)
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let ids = arrow_cast_i64(b.column(0));
        let names = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        for (i, id) in ids.into_iter().enumerate() {
            out.push((id, names.value(i).to_owned()));
        }
    }
    out
}

fn arrow_cast_i64(a: &Arc<dyn Array>) -> Vec<i64> {
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("id is a bigint");
    a.values().to_vec()
}

fn pairs(ids: &[i64], tag: &str) -> Vec<(i64, String)> {
    ids.iter().map(|i| (*i, format!("{tag}{i}"))).collect()
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Local,
    Athena,
    /// Athena with Glue databases named `<prefix><namespace>`, as a dev stack names them.
    AthenaPrefixed,
}

/// A lake, a second handle on it (another process), and a table name of this test's own.
struct Harness {
    _dir: Option<tempfile::TempDir>,
    lake: Arc<dyn Lake>,
    other: Arc<dyn Lake>,
    namespace: String,
}

impl Harness {
    fn table(&self, name: &str) -> TableRef {
        TableRef {
            namespace: self.namespace.clone(),
            name: name.into(),
        }
    }

    async fn with_table(&self) -> TableRef {
        let t = self.table("people");
        self.lake.create_table(&t, schema()).await.unwrap();
        t
    }
}

async fn open(backend: Backend, test: &str) -> Option<Harness> {
    match backend {
        Backend::Local => {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("lake");
            let lake = Arc::new(LocalLake::open(&root).await.unwrap());
            let other = Arc::new(LocalLake::open(&root).await.unwrap());
            Some(Harness {
                _dir: Some(dir),
                lake,
                other,
                namespace: "silver_test".into(),
            })
        }
        Backend::Athena | Backend::AthenaPrefixed => {
            let stand_in = StandIn::or_skip(test)?;
            let world = stand_in.lake().await;
            let other = stand_in.open(&world.clients, &world.workgroup, &world.lake_bucket);
            let (lake, other): (Arc<dyn Lake>, Arc<dyn Lake>) =
                if matches!(backend, Backend::AthenaPrefixed) {
                    let prefix = format!("{}_", world.prefix);
                    let lake = stand_in
                        .open(&world.clients, &world.workgroup, &world.lake_bucket)
                        .with_database_prefix(&prefix);
                    (
                        Arc::new(lake),
                        Arc::new(other.with_database_prefix(&prefix)),
                    )
                } else {
                    (world.lake, Arc::new(other))
                };
            Some(Harness {
                _dir: None,
                lake,
                other,
                // Glue is shared by every test on the stand-in.
                namespace: format!("silver_{}", world.prefix),
            })
        }
    }
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[case::athena_prefixed(Backend::AthenaPrefixed)]
#[tokio::test]
async fn appends_commit_whole_and_record_their_batch(#[case] backend: Backend) {
    let Some(h) = open(backend, "appends_commit_whole").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
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
    let of = |id: i64| history.iter().find(|s| s.snapshot_id == id).unwrap();
    assert_eq!(
        of(a.snapshot_id).batch_id.as_deref(),
        Some(batch_id(1).as_str())
    );
    assert_eq!(of(a.snapshot_id).run_id.as_deref(), Some("run1"));
    assert_eq!(of(b.snapshot_id).parent_id, Some(a.snapshot_id));
    assert!(of(b.snapshot_id).is_current && !of(a.snapshot_id).is_current);
    assert!(of(a.snapshot_id).published && of(b.snapshot_id).published);
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_committed_batch_is_never_written_twice(#[case] backend: Backend) {
    let Some(h) = open(backend, "a_committed_batch_is_never_written_twice").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let first = lake
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    let count = lake.snapshots(&t).await.unwrap().len();
    let replay = lake
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    assert!(replay.already_committed);
    assert_eq!(replay.snapshot_id, first.snapshot_id);
    assert_eq!(replay.rows_added, 0);
    assert_eq!(lake.snapshots(&t).await.unwrap().len(), count);
    // Also after other commits.
    lake.append(&t, vec![rows(&[3], "b")], &opts(2))
        .await
        .unwrap();
    let again = h
        .other
        .append(&t, vec![rows(&[1, 2], "a")], &opts(1))
        .await
        .unwrap();
    assert!(again.already_committed);
    assert_eq!(read(lake, &t, ReadAt::Current).await.len(), 3);
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn an_overwrite_replaces_every_row_and_keeps_the_old_version(#[case] backend: Backend) {
    let Some(h) = open(backend, "an_overwrite_replaces_every_row").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
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
    let now = lake.snapshots(&t).await.unwrap();
    assert!(
        now.iter()
            .any(|s| s.snapshot_id == second.snapshot_id && s.is_current)
    );
    lake.overwrite(&t, vec![], &opts(3)).await.unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, vec![]);
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(second.snapshot_id)).await,
        pairs(&[7], "z")
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_one_whole_version_while_a_table_is_replaced(#[case] backend: Backend) {
    let Some(h) = open(backend, "readers_see_one_whole_version").await else {
        return;
    };
    let t = h.with_table().await;
    h.lake
        .append(&t, vec![rows(&[1, 2, 3], "v0_")], &opts(100))
        .await
        .unwrap();
    let versions: Vec<Vec<(i64, String)>> = (0..=3)
        .map(|v| pairs(&[1, 2, 3], &format!("v{v}_")))
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (lake, t, stop, versions) =
            (h.other.clone(), t.clone(), stop.clone(), versions.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seen = read(lake.as_ref(), &t, ReadAt::Current).await;
                assert!(
                    versions.contains(&seen),
                    "a reader saw a partial table: {seen:?}"
                );
                reads += 1;
            }
            reads
        })
    };
    for v in 1..=3u32 {
        h.lake
            .overwrite(&t, vec![rows(&[1, 2, 3], &format!("v{v}_"))], &opts(v))
            .await
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    assert_eq!(
        read(h.lake.as_ref(), &t, ReadAt::Current).await,
        versions[3]
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[case::athena_prefixed(Backend::AthenaPrefixed)]
#[tokio::test]
async fn a_staged_write_is_invisible_until_published(#[case] backend: Backend) {
    let Some(h) = open(backend, "a_staged_write_is_invisible").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    // A table's first write, staged: readers see nothing until it is published.
    let first = lake
        .overwrite(&t, vec![rows(&[1], "a")], &staged(1))
        .await
        .unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, vec![]);
    lake.publish_snapshot(&t, first.snapshot_id).await.unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1], "a"));
    let published = lake.snapshots(&t).await.unwrap();
    let current = published
        .iter()
        .find(|s| s.is_current)
        .map(|s| s.snapshot_id);
    assert_eq!(current, Some(first.snapshot_id));

    let next = lake
        .overwrite(&t, vec![rows(&[2], "b")], &staged(2))
        .await
        .unwrap();
    assert_eq!(
        read(h.other.as_ref(), &t, ReadAt::Current).await,
        pairs(&[1], "a")
    );
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(next.snapshot_id)).await,
        pairs(&[2], "b")
    );
    let info = lake.snapshots(&t).await.unwrap();
    let snap = info
        .iter()
        .find(|s| s.snapshot_id == next.snapshot_id)
        .unwrap();
    assert!(!snap.published && !snap.is_current);
    // It was computed from the published version: not stale.
    assert_eq!(snap.based_on, Some(first.snapshot_id));
    lake.publish_snapshot(&t, next.snapshot_id).await.unwrap();
    assert_eq!(
        read(h.other.as_ref(), &t, ReadAt::Current).await,
        pairs(&[2], "b")
    );
    // Publishing again is a no-op.
    lake.publish_snapshot(&t, next.snapshot_id).await.unwrap();
    let info = lake.snapshots(&t).await.unwrap();
    assert!(
        info.iter()
            .find(|s| s.snapshot_id == next.snapshot_id)
            .unwrap()
            .published
    );
    // A version staged before another was published is stale: refused, to be staged again.
    let stale = lake
        .overwrite(&t, vec![rows(&[3], "c")], &staged(3))
        .await
        .unwrap();
    let winner = h
        .other
        .overwrite(&t, vec![rows(&[4], "d")], &staged(4))
        .await
        .unwrap();
    h.other
        .publish_snapshot(&t, winner.snapshot_id)
        .await
        .unwrap();
    let err = lake
        .publish_snapshot(&t, stale.snapshot_id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, floe_core::Error::CommitConflict { .. }),
        "{err}"
    );
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[4], "d"));
    // Staged again (same batch), it is written anew, not taken for the stale one.
    let again = lake
        .overwrite(&t, vec![rows(&[3], "c")], &staged(3))
        .await
        .unwrap();
    assert!(!again.already_committed);
    lake.publish_snapshot(&t, again.snapshot_id).await.unwrap();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[3], "c"));
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_write_that_builds_on_the_table_starts_from_the_published_version(
    #[case] backend: Backend,
) {
    let Some(h) = open(backend, "a_write_builds_on_the_published").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let first = lake
        .overwrite(&t, vec![rows(&[1], "a")], &staged(1))
        .await
        .unwrap();
    lake.publish_snapshot(&t, first.snapshot_id).await.unwrap();
    // Staged and never published (its audit failed): no later write may carry its rows.
    lake.append(&t, vec![rows(&[2], "b")], &staged(2))
        .await
        .unwrap();
    let next = lake
        .append_query(
            &t,
            "SELECT CAST(3 AS BIGINT) AS id, 'c3' AS name",
            &ReadAt::Current,
            &staged(3),
        )
        .await
        .unwrap();
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(next.snapshot_id)).await,
        vec![(1, "a1".to_owned()), (3, "c3".to_owned())]
    );
    lake.publish_snapshot(&t, next.snapshot_id).await.unwrap();
    lake.append(&t, vec![rows(&[4], "d")], &staged(4))
        .await
        .unwrap();
    lake.append(&t, vec![rows(&[5], "e")], &opts(5))
        .await
        .unwrap();
    assert_eq!(
        read(h.other.as_ref(), &t, ReadAt::Current).await,
        vec![
            (1, "a1".to_owned()),
            (3, "c3".to_owned()),
            (5, "e5".to_owned())
        ]
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn maintenance_keeps_every_answer_within_the_retention(#[case] backend: Backend) {
    use floe_core::ports::Maintenance;
    let Some(h) = open(backend, "maintenance_keeps_every_answer").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let publish = |o: floe_core::ports::CommitOutcome| {
        let t = t.clone();
        async move { lake.publish_snapshot(&t, o.snapshot_id).await.unwrap() }
    };
    // Older than the retention: a version replaced before it began, and the one published
    // when it began. (Seconds apart: engines expire by commit age, with a few seconds' margin.)
    let pause = || tokio::time::sleep(std::time::Duration::from_secs(7));
    let old = lake
        .overwrite(&t, vec![rows(&[1], "a")], &staged(1))
        .await
        .unwrap();
    publish(old.clone()).await;
    pause().await;
    publish(
        lake.append(&t, vec![rows(&[2], "b")], &staged(2))
            .await
            .unwrap(),
    )
    .await;
    pause().await;
    let horizon = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // Within it: a staged-then-published append and a direct one, each a small file.
    let c = lake
        .append(&t, vec![rows(&[3], "c")], &staged(3))
        .await
        .unwrap();
    publish(c.clone()).await;
    let d = lake
        .append(&t, vec![rows(&[4], "d")], &opts(4))
        .await
        .unwrap();
    let answers = || async {
        (
            read(lake, &t, ReadAt::Current).await,
            read(lake, &t, ReadAt::Snapshot(c.snapshot_id)).await,
            read(lake, &t, ReadAt::Snapshot(d.snapshot_id)).await,
            read(lake, &t, ReadAt::Timestamp(horizon)).await,
        )
    };
    let before = answers().await;
    assert_eq!(before.3, [pairs(&[1], "a"), pairs(&[2], "b")].concat());
    let m = |dry_run| Maintenance {
        keep_for: chrono::Utc::now() - horizon,
        dry_run,
    };
    let snapshots = lake.snapshots(&t).await.unwrap().len();
    let planned = lake.maintain(&t, &m(true)).await.unwrap();
    assert!(planned.skipped.is_none(), "{planned:?}");
    assert!(
        planned.compacted && planned.files_before >= 4,
        "{planned:?}"
    );
    assert!(planned.snapshots_expired >= 1, "{planned:?}");
    assert_eq!(
        lake.snapshots(&t).await.unwrap().len(),
        snapshots,
        "a dry run changes nothing"
    );
    let done = lake.maintain(&t, &m(false)).await.unwrap();
    assert!(
        done.compacted && done.files_after < done.files_before,
        "{done:?}"
    );
    assert!(done.snapshots_expired >= 1, "{done:?}");
    // Every answer within the retention is the same; the version replaced before it is gone.
    assert_eq!(answers().await, before);
    assert!(
        lake.query(
            &format!("select id from {t}"),
            &ReadAt::Snapshot(old.snapshot_id)
        )
        .await
        .is_err(),
        "snapshot {} is older than the retention",
        old.snapshot_id
    );
    // The table goes on as before: a staged write on the compacted version publishes.
    let e = lake
        .append(&t, vec![rows(&[5], "e")], &staged(5))
        .await
        .unwrap();
    publish(e).await;
    assert_eq!(
        read(h.other.as_ref(), &t, ReadAt::Current).await,
        [before.0.clone(), pairs(&[5], "e")].concat()
    );
    // A table with a version staged and not published is left alone.
    lake.append(&t, vec![rows(&[6], "f")], &staged(6))
        .await
        .unwrap();
    let skipped = lake.maintain(&t, &m(false)).await.unwrap();
    assert!(skipped.skipped.is_some(), "{skipped:?}");
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_write_computed_from_a_version_no_longer_published_is_a_conflict(
    #[case] backend: Backend,
) {
    let Some(h) = open(backend, "a_write_computed_from_a_stale_read").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let seen = lake
        .append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    h.other
        .append(&t, vec![rows(&[2], "b")], &opts(2))
        .await
        .unwrap();
    let o = WriteOptions {
        expected_snapshot_id: Some(seen.snapshot_id),
        ..opts(3)
    };
    let err = lake
        .overwrite(&t, vec![rows(&[1], "x")], &o)
        .await
        .unwrap_err();
    assert!(
        matches!(err, floe_core::Error::CommitConflict { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(read(lake, &t, ReadAt::Current).await.len(), 2);
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn time_travel_reads_a_snapshot_or_what_was_published_at_an_instant(
    #[case] backend: Backend,
) {
    let Some(h) = open(backend, "time_travel").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let a = lake
        .append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
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
    // A staged write is not what was published: an instant after it still reads the old one.
    let s = lake
        .overwrite(&t, vec![rows(&[9], "s")], &staged(3))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after_staging = chrono::Utc::now();
    assert_eq!(
        read(lake, &t, ReadAt::Timestamp(after_staging)).await.len(),
        2
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    lake.publish_snapshot(&t, s.snapshot_id).await.unwrap();
    assert_eq!(
        read(lake, &t, ReadAt::Timestamp(chrono::Utc::now())).await,
        pairs(&[9], "s")
    );
    assert_eq!(
        read(lake, &t, ReadAt::Timestamp(after_staging)).await.len(),
        2
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_lose_a_commit(#[case] backend: Backend) {
    let Some(h) = open(backend, "concurrent_writers_never_lose_a_commit").await else {
        return;
    };
    let t = h.with_table().await;
    let mut tasks = Vec::new();
    for (w, lake) in [h.lake.clone(), h.other.clone()].into_iter().enumerate() {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..4u32 {
                let n = w as u32 * 100 + i;
                match lake
                    .append(&t, vec![rows(&[n as i64], "w")], &opts(n))
                    .await
                {
                    Ok(_) => kept.push(n as i64),
                    // Refused is allowed (the writer is told); lost is not.
                    Err(e) => assert!(e.is_retryable(), "{e}"),
                }
            }
            kept
        }));
    }
    let mut kept = Vec::new();
    for task in tasks {
        kept.extend(task.await.unwrap());
    }
    kept.sort();
    assert!(!kept.is_empty());
    assert_eq!(
        read(h.lake.as_ref(), &t, ReadAt::Current).await,
        pairs(&kept, "w")
    );
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_failed_write_leaves_the_table_as_it_was(#[case] backend: Backend) {
    let Some(h) = open(backend, "a_failed_write_leaves_the_table_as_it_was").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    lake.append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    let before = lake.snapshots(&t).await.unwrap();
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("idd", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    lake.append(&t, vec![wrong.clone()], &opts(2))
        .await
        .unwrap_err();
    lake.overwrite(&t, vec![wrong], &opts(3)).await.unwrap_err();
    let sql_err = lake
        .write_query(
            &t,
            "select no_such_column from nowhere.nothing",
            &ReadAt::Current,
            &opts(4),
        )
        .await
        .unwrap_err();
    assert!(!sql_err.is_retryable(), "{sql_err}");
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&[1], "a"));
    let after = lake.snapshots(&t).await.unwrap();
    let current = |s: &[floe_core::ports::SnapshotInfo]| {
        s.iter().find(|s| s.is_current).map(|s| s.snapshot_id)
    };
    assert_eq!(current(&after), current(&before));
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[case::athena_prefixed(Backend::AthenaPrefixed)]
#[tokio::test]
async fn rename_moves_the_table_and_refuses_to_clobber(#[case] backend: Backend) {
    let Some(h) = open(backend, "rename_moves_the_table").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    lake.append(&t, vec![rows(&[1], "a")], &opts(1))
        .await
        .unwrap();
    let to = h.table("persons");
    lake.rename_table(&t, &to).await.unwrap();
    assert!(!lake.table_exists(&t).await.unwrap());
    assert_eq!(read(lake, &to, ReadAt::Current).await, pairs(&[1], "a"));
    let again = h.with_table().await;
    lake.append(&again, vec![rows(&[9], "n")], &opts(2))
        .await
        .unwrap();
    assert_eq!(read(lake, &to, ReadAt::Current).await, pairs(&[1], "a"));
    let err = lake.rename_table(&again, &to).await.unwrap_err();
    assert!(matches!(err, floe_core::Error::AlreadyExists(_)), "{err}");
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_streamed_write_commits_whole_or_not_at_all(#[case] backend: Backend) {
    use floe_core::ports::{Input, Write};
    use futures::StreamExt;
    let Some(h) = open(backend, "a_streamed_write_commits_whole_or_not_at_all").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    // Rows as they come, a batch at a time: committed once the stream ends.
    let stream = futures::stream::iter((0..5).map(|i| Ok(rows(&[2 * i, 2 * i + 1], "s"))));
    let out = lake
        .write(&t, Write::Append(Input::Stream(stream.boxed())), &opts(1))
        .await
        .unwrap();
    assert_eq!(out.rows_added, 10);
    let all: Vec<i64> = (0..10).collect();
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&all, "s"));
    let before = lake.snapshots(&t).await.unwrap().len();
    // A stream that fails after some batches (a file refused at a later chunk): nothing of it
    // is committed, whether it appends or replaces.
    let failing = || {
        futures::stream::iter((0..3).map(|i| {
            if i < 2 {
                Ok(rows(&[100 + i], "x"))
            } else {
                Err(floe_core::Error::InvalidData {
                    file: "f.csv".into(),
                    detail: "refused at chunk 3".into(),
                })
            }
        }))
        .boxed()
    };
    let err = lake
        .write(&t, Write::Append(Input::Stream(failing())), &opts(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused at chunk 3"), "{err}");
    let err = lake
        .write(&t, Write::Overwrite(Input::Stream(failing())), &opts(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused at chunk 3"), "{err}");
    assert_eq!(read(lake, &t, ReadAt::Current).await, pairs(&all, "s"));
    assert_eq!(lake.snapshots(&t).await.unwrap().len(), before);
    // A replayed batch is recognised before its stream is read.
    let untouched = futures::stream::iter([Err(floe_core::Error::Internal(
        "a replay must not read its rows".into(),
    ))]);
    let replay = lake
        .write(
            &t,
            Write::Append(Input::Stream(untouched.boxed())),
            &opts(1),
        )
        .await
        .unwrap();
    assert!(replay.already_committed);
}

/// `rows` with a `replaces` column: true for the ids in `replacing`.
fn delta_rows(ids: &[i64], tag: &str, replacing: &[i64]) -> RecordBatch {
    let plain = rows(ids, tag);
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("replaces", DataType::Boolean, false));
    let mut columns = plain.columns().to_vec();
    columns.push(Arc::new(arrow_array::BooleanArray::from(
        ids.iter()
            .map(|i| replacing.contains(i))
            .collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[rstest]
#[case::local(Backend::Local)]
#[case::athena(Backend::Athena)]
#[tokio::test]
async fn a_row_delta_replaces_rows_exactly_or_changes_nothing(#[case] backend: Backend) {
    use floe_core::ports::{Input, Maintenance, Write};
    let Some(h) = open(backend, "a_row_delta_replaces_rows_exactly").await else {
        return;
    };
    let lake = h.lake.as_ref();
    let t = h.with_table().await;
    let on = ["id".to_owned()];
    let delta = |batch: RecordBatch, n: u32| {
        let t = t.clone();
        let on = on.clone();
        async move {
            lake.write(
                &t,
                Write::Delta {
                    rows: Input::Rows(vec![batch]),
                    on: &on,
                    replaces: "replaces",
                },
                &opts(n),
            )
            .await
        }
    };
    let first = lake
        .append(&t, vec![rows(&[1, 2, 3], "a")], &opts(1))
        .await
        .unwrap();
    if !lake.capabilities().row_deltas {
        // An engine without row deltas says so and writes nothing (Athena replaces rows with
        // MERGE statements instead).
        let err = delta(delta_rows(&[2], "b", &[2]), 2).await.unwrap_err();
        assert!(err.to_string().contains(&t.to_string()), "{err}");
        assert_eq!(
            read(lake, &t, ReadAt::Current).await,
            pairs(&[1, 2, 3], "a")
        );
        return;
    }
    // 2 is replaced, 4 is added.
    let out = delta(delta_rows(&[2, 4], "b", &[2]), 2).await.unwrap();
    assert_eq!(out.rows_added, 2);
    let expected = vec![
        (1, "a1".to_owned()),
        (2, "b2".into()),
        (3, "a3".into()),
        (4, "b4".into()),
    ];
    assert_eq!(read(lake, &t, ReadAt::Current).await, expected);
    assert_eq!(
        read(lake, &t, ReadAt::Snapshot(first.snapshot_id)).await,
        pairs(&[1, 2, 3], "a")
    );
    let history = lake.snapshots(&t).await.unwrap();
    assert_eq!(history.last().unwrap().total_rows, Some(4));
    // The replaced row's data file was kept: a delete file marks the row.
    assert!(lake.file_stats(&t).await.unwrap().iter().any(|f| f.deletes));
    // A row replaced again (now in the delta's own file) and one of the first file.
    delta(delta_rows(&[1, 2], "c", &[1, 2]), 3).await.unwrap();
    let expected = vec![
        (1, "c1".to_owned()),
        (2, "c2".into()),
        (3, "a3".into()),
        (4, "b4".into()),
    ];
    assert_eq!(read(lake, &t, ReadAt::Current).await, expected);
    assert!(
        delta(delta_rows(&[1], "z", &[1]), 3)
            .await
            .unwrap()
            .already_committed
    );
    // A row that replaces nothing, or two that replace the same row: nothing is written.
    let snapshots = lake.snapshots(&t).await.unwrap().len();
    let err = delta(delta_rows(&[9], "x", &[9]), 4).await.unwrap_err();
    assert!(err.to_string().contains("replace no live row"), "{err}");
    let err = delta(delta_rows(&[3, 3], "x", &[3]), 5).await.unwrap_err();
    assert!(err.to_string().contains("replace the same row"), "{err}");
    assert_eq!(read(lake, &t, ReadAt::Current).await, expected);
    assert_eq!(lake.snapshots(&t).await.unwrap().len(), snapshots);
    // Maintenance folds the delete files in; the answers stay.
    let keep_all = Maintenance {
        keep_for: chrono::Duration::days(7),
        dry_run: false,
    };
    let report = lake.maintain(&t, &keep_all).await.unwrap();
    assert!(report.compacted, "{report:?}");
    assert!(!lake.file_stats(&t).await.unwrap().iter().any(|f| f.deletes));
    assert_eq!(read(lake, &t, ReadAt::Current).await, expected);
}
