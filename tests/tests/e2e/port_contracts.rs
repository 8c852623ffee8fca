//! The contracts of the queue, object-store and event-sink ports (see `floe_core::ports`), each
//! scenario written once against the port and run against every adapter: the local runtime's
//! (SQLite queues, a folder, a JSON-lines log) and the AWS ones on moto (SQS with a redrive
//! policy, S3, EventBridge). A moto case says SKIPPED when moto is missing, and fails instead
//! under `FLOE_REQUIRE_MOTO=1` (CI). The Lake port's contract is `lake_contract`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use floe_aws::eventbridge::EventBridgeSink;
use floe_aws::s3::S3Store;
use floe_core::ports::{Delivery, EventSink, ObjectStore, PipelineEvent, Queue};
use floe_core::{Error, Stage};
use floe_local::events::EventLog;
use floe_local::queue::QueueStore;
use floe_local::store::LocalStore;
use floe_tests::aws::{AwsWorld, Moto, QueuePolicy};
use rstest::rstest;
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Local,
    Moto,
}

/// What a case keeps alive while it runs: its folder, or its moto server and resources.
struct World {
    _dir: Option<tempfile::TempDir>,
    _moto: Option<Moto>,
    aws: Option<AwsWorld>,
    dir: std::path::PathBuf,
}

async fn world(backend: Backend, test: &str, max_receives: u32) -> Option<World> {
    match backend {
        Backend::Local => {
            let dir = tempfile::tempdir().unwrap();
            Some(World {
                dir: dir.path().to_owned(),
                _dir: Some(dir),
                _moto: None,
                aws: None,
            })
        }
        Backend::Moto => {
            let moto = Moto::start_or_skip(test)?;
            let aws = AwsWorld::create(
                &moto,
                QueuePolicy {
                    max_receives,
                    visibility_secs: 30,
                },
            )
            .await;
            Some(World {
                _dir: None,
                dir: std::env::temp_dir(),
                _moto: Some(moto),
                aws: Some(aws),
            })
        }
    }
}

/// A queue that dead-letters after `max_receives`, and its dead-letter queue.
async fn queues(w: &World, max_receives: u32) -> (Arc<dyn Queue>, Arc<dyn Queue>) {
    match &w.aws {
        None => {
            let store = QueueStore::open(&w.dir.join("queues.db")).await.unwrap();
            (
                Arc::new(store.queue("work", Some(("work-dlq", max_receives)))),
                Arc::new(store.queue("work-dlq", None)),
            )
        }
        Some(aws) => (
            Arc::new(aws.queue(Stage::Standardise).clone()),
            Arc::new(aws.dlq(Stage::Standardise).clone()),
        ),
    }
}

/// The visibility timeout the cases use: SQS counts it in whole seconds.
const VISIBLE_AGAIN: Duration = Duration::from_secs(1);
/// Long enough for a message hidden for [`VISIBLE_AGAIN`] to be back.
const AFTER_VISIBILITY: Duration = Duration::from_millis(1600);

/// Receives until `n` messages came or a few seconds passed (SQS may return fewer than asked).
async fn receive_n(q: &dyn Queue, n: usize, visibility: Duration) -> Vec<Delivery> {
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(q.receive(10, visibility).await.unwrap());
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

fn bodies(d: &[Delivery]) -> BTreeSet<String> {
    d.iter().map(|d| d.body.clone()).collect()
}

#[rstest]
#[case::local(Backend::Local)]
#[case::sqs_on_moto(Backend::Moto)]
#[tokio::test]
async fn a_received_message_is_hidden_then_comes_back_until_it_is_deleted(
    #[case] backend: Backend,
) {
    let Some(w) = world(backend, "queue: hidden then back", 5).await else {
        return;
    };
    let (q, _) = queues(&w, 5).await;
    q.send("one").await.unwrap();
    q.send("two").await.unwrap();
    let first = receive_n(q.as_ref(), 2, VISIBLE_AGAIN).await;
    assert_eq!(bodies(&first), BTreeSet::from(["one".into(), "two".into()]));
    assert!(first.iter().all(|d| d.receive_count == 1), "{first:?}");
    assert!(
        q.receive(10, VISIBLE_AGAIN).await.unwrap().is_empty(),
        "received messages are hidden from other receivers"
    );
    let one = first.iter().find(|d| d.body == "one").unwrap();
    q.delete(&one.receipt).await.unwrap();
    tokio::time::sleep(AFTER_VISIBILITY).await;
    let again = receive_n(q.as_ref(), 1, Duration::from_secs(30)).await;
    assert_eq!(bodies(&again), BTreeSet::from(["two".into()]));
    assert_eq!(again[0].receive_count, 2, "the receive count goes up");
    q.delete(&again[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(q.receive(10, VISIBLE_AGAIN).await.unwrap().is_empty());
}

#[rstest]
#[case::local(Backend::Local)]
#[case::sqs_on_moto(Backend::Moto)]
#[tokio::test]
async fn retry_later_hides_a_message_for_the_delay_then_gives_it_back(#[case] backend: Backend) {
    let Some(w) = world(backend, "queue: retry later", 5).await else {
        return;
    };
    let (q, _) = queues(&w, 5).await;
    q.send("later").await.unwrap();
    let got = receive_n(q.as_ref(), 1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1);
    q.retry_later(&got[0].receipt, VISIBLE_AGAIN).await.unwrap();
    assert!(
        q.receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "hidden for the delay"
    );
    tokio::time::sleep(AFTER_VISIBILITY).await;
    let back = receive_n(q.as_ref(), 1, Duration::from_secs(30)).await;
    assert_eq!(bodies(&back), BTreeSet::from(["later".into()]));
    assert_eq!(back[0].receive_count, 2);
}

#[rstest]
#[case::local(Backend::Local)]
#[case::sqs_on_moto(Backend::Moto)]
#[tokio::test]
async fn a_message_received_too_often_moves_to_the_dead_letter_queue(#[case] backend: Backend) {
    let Some(w) = world(backend, "queue: dead letters", 2).await else {
        return;
    };
    let (q, dlq) = queues(&w, 2).await;
    q.send("poison").await.unwrap();
    for receive in 1..=2 {
        let got = receive_n(q.as_ref(), 1, VISIBLE_AGAIN).await;
        assert_eq!(
            bodies(&got),
            BTreeSet::from(["poison".into()]),
            "receive {receive}"
        );
        assert_eq!(got[0].receive_count, receive);
        tokio::time::sleep(AFTER_VISIBILITY).await;
    }
    assert!(
        q.receive(10, VISIBLE_AGAIN).await.unwrap().is_empty(),
        "not delivered a third time"
    );
    let dead = receive_n(dlq.as_ref(), 1, Duration::from_secs(30)).await;
    assert_eq!(bodies(&dead), BTreeSet::from(["poison".into()]));
}

#[rstest]
#[case::local(Backend::Local)]
#[case::sqs_on_moto(Backend::Moto)]
#[tokio::test]
async fn each_message_goes_to_one_receiver_at_a_time(#[case] backend: Backend) {
    let Some(w) = world(backend, "queue: one receiver", 5).await else {
        return;
    };
    let (q, _) = queues(&w, 5).await;
    let sent: BTreeSet<String> = (0..24).map(|i| format!("m{i}")).collect();
    for m in &sent {
        q.send(m).await.unwrap();
    }
    let receiver = |q: Arc<dyn Queue>| async move {
        let mut got = Vec::new();
        for _ in 0..30 {
            let batch = q.receive(10, Duration::from_secs(30)).await.unwrap();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            got.extend(batch.into_iter().map(|d| d.body));
        }
        got
    };
    let (a, b) = tokio::join!(receiver(q.clone()), receiver(q.clone()));
    let all: Vec<&String> = a.iter().chain(&b).collect();
    let distinct: BTreeSet<String> = all.iter().map(|s| (*s).clone()).collect();
    assert_eq!(distinct, sent, "every message was received");
    let duplicates = all.len() - distinct.len();
    match backend {
        // The local queue hands a message out in one SQLite transaction: never twice.
        Backend::Local => assert_eq!(duplicates, 0, "a message went to two receivers"),
        // A standard SQS queue is at-least-once: AWS documents that a message is occasionally
        // delivered twice, and moto's ReceiveMessage, unlocked, does so under two concurrent
        // receivers now and then. floe's handlers are idempotent for that reason; what must
        // hold is that hiding works for (nearly) every message, not that it never slips.
        Backend::Moto => assert!(
            duplicates <= 2,
            "{duplicates} of {} messages went to two receivers: the visibility timeout did not hide them",
            sent.len()
        ),
    }
}

/// The landing store of a case: a folder, or the landing bucket.
fn store(w: &World) -> Arc<dyn ObjectStore> {
    match &w.aws {
        None => Arc::new(LocalStore::new("landing", &w.dir)),
        Some(aws) => Arc::new(S3Store::new(aws.clients.s3.clone(), &aws.landing_bucket)),
    }
}

#[rstest]
#[case::local(Backend::Local)]
#[case::s3_on_moto(Backend::Moto)]
#[tokio::test]
async fn a_put_object_reads_back_whole_with_an_identity_of_its_content(#[case] backend: Backend) {
    let Some(w) = world(backend, "object store: put and get", 3).await else {
        return;
    };
    let s = store(&w);
    // Keys as landing makes them: an extract time with colons, a file name with a space and a +.
    let key = "landing/nomis/people/2026-11-01T06:00:00Z/people 1+2.csv";
    let bytes = b"id,name\n1,Ada\n".to_vec();
    let put = s.put(key, bytes.clone()).await.unwrap();
    assert_eq!((put.bucket.as_str(), put.key.as_str()), (s.bucket(), key));
    assert_eq!(put.size, bytes.len() as u64);
    assert_eq!(s.get(key).await.unwrap(), bytes);
    let identity = |o: &floe_core::ObjectRef| (o.version_id.clone(), o.etag.clone());
    assert!(identity(&put) != (None, None), "an object has an identity");
    let other = s
        .put("landing/nomis/people/x/other.csv", b"id\n2\n".to_vec())
        .await
        .unwrap();
    assert_ne!(
        identity(&other),
        identity(&put),
        "other bytes, another identity"
    );
    let same = s.put(key, bytes.clone()).await.unwrap();
    assert_eq!(
        floe_core::BatchId::for_object(&same),
        floe_core::BatchId::for_object(&put),
        "the same bytes put again are the same batch (unversioned bucket)"
    );
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    s.put("landing/big/t/x/big.bin", big.clone()).await.unwrap();
    assert_eq!(s.get("landing/big/t/x/big.bin").await.unwrap(), big);
}

/// The quarantine store of a case: another folder, or the quarantine bucket.
fn quarantine_store(w: &World) -> Arc<dyn ObjectStore> {
    match &w.aws {
        None => Arc::new(LocalStore::new("quarantine", &w.dir.join("q"))),
        Some(aws) => Arc::new(S3Store::new(aws.clients.s3.clone(), &aws.quarantine_bucket)),
    }
}

#[rstest]
#[case::local(Backend::Local)]
#[case::s3_on_moto(Backend::Moto)]
#[tokio::test]
async fn an_object_streams_as_it_is_read_and_copies_between_stores(#[case] backend: Backend) {
    let Some(w) = world(backend, "object store: open and copy", 3).await else {
        return;
    };
    let s = store(&w);
    let key = "landing/nomis/people/2026-11-01T06:00:00Z/people 1+2.csv";
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    s.put(key, big.clone()).await.unwrap();
    // Read on a blocking thread, in small reads, as landing reads a file.
    let reader = s.open(key).await.unwrap();
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut reader = reader;
        let mut out = Vec::new();
        let mut block = [0u8; 4096];
        loop {
            let n = reader.read(&mut block).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&block[..n]);
        }
    })
    .await
    .unwrap();
    assert!(read == big, "the object streams back byte for byte");
    let q = quarantine_store(&w);
    let to = "quarantine/nomis/people/2026-11-01T06:00:00Z/people 1+2.csv";
    q.copy_from(s.as_ref(), key, to).await.unwrap();
    assert!(q.get(to).await.unwrap() == big, "the copy is whole");
    let missing = q
        .copy_from(s.as_ref(), "landing/no/such/x/file.csv", "quarantine/x")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, floe_core::Error::NotFound(_)),
        "{missing}"
    );
    assert!(matches!(
        s.open("landing/no/such/x/file.csv").await,
        Err(floe_core::Error::NotFound(_))
    ));
}

#[rstest]
#[case::local(Backend::Local)]
#[case::s3_on_moto(Backend::Moto)]
#[tokio::test]
async fn listing_is_by_prefix_in_key_order_and_deletes_are_idempotent(#[case] backend: Backend) {
    let Some(w) = world(backend, "object store: list and delete", 3).await else {
        return;
    };
    let s = store(&w);
    for k in [
        "landing/b/t/2/f.csv",
        "landing/a/t/1/f.csv",
        "landing/a/t/2/g.csv",
        "quarantine/a/t/1/f.csv",
    ] {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    let listed: Vec<(String, u64)> = s
        .list("landing/a/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("landing/a/t/1/f.csv".to_owned(), 19),
            ("landing/a/t/2/g.csv".to_owned(), 19)
        ]
    );
    assert_eq!(s.list("landing/").await.unwrap().len(), 3);
    assert!(s.list("nothing/").await.unwrap().is_empty());
    s.delete("landing/a/t/1/f.csv").await.unwrap();
    assert!(matches!(
        s.get("landing/a/t/1/f.csv").await,
        Err(Error::NotFound(_))
    ));
    s.delete("landing/a/t/1/f.csv").await.unwrap();
    assert!(matches!(
        s.get("landing/never/there.csv").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(s.list("landing/a/").await.unwrap().len(), 1);
}

#[rstest]
#[case::local(Backend::Local)]
#[case::eventbridge_on_moto(Backend::Moto)]
#[tokio::test]
async fn emitted_events_arrive_with_their_type_and_detail(#[case] backend: Backend) {
    let Some(w) = world(backend, "event sink: emit", 3).await else {
        return;
    };
    let sink: Arc<dyn EventSink> = match &w.aws {
        None => Arc::new(EventLog::new(&w.dir.join("events.jsonl"))),
        Some(aws) => Arc::new(EventBridgeSink::new(
            aws.clients.eventbridge.clone(),
            &aws.bus,
        )),
    };
    let sent = [
        (
            "floe.published",
            json!({"table": "silver_nomis.people", "snapshot_id": 7}),
        ),
        (
            "floe.failed",
            json!({"stage": "audit", "reason": "a test failed"}),
        ),
        (
            "floe.quarantined",
            json!({"key": "landing/nomis/people/x/p.csv", "problems": 2}),
        ),
    ];
    for (kind, detail) in &sent {
        sink.emit(PipelineEvent {
            detail_type: (*kind).to_owned(),
            time: chrono::Utc::now(),
            detail: detail.clone(),
        })
        .await
        .unwrap();
    }
    let mut got: Vec<(String, serde_json::Value)> = Vec::new();
    for _ in 0..50 {
        match &w.aws {
            None => {
                got = EventLog::new(&w.dir.join("events.jsonl"))
                    .read()
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.detail_type, e.detail))
                    .collect();
            }
            Some(aws) => got.extend(aws.take_floe_events().await),
        }
        if got.len() >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut want: Vec<(String, serde_json::Value)> = sent
        .iter()
        .map(|(k, d)| ((*k).to_owned(), d.clone()))
        .collect();
    let key = |e: &(String, serde_json::Value)| e.0.clone();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
}
