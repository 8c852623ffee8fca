//! The durable local queue keeps SQS's promises: visibility timeout, receive counts, dead letters
//! after the maximum receives, redrive, messages that outlive the process, one receiver per message.

use std::collections::BTreeSet;
use std::time::Duration;

use floe_core::ports::Queue;
use floe_local::queue::QueueStore;

async fn store() -> (tempfile::TempDir, QueueStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(&dir.path().join(".floe/queues.db"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_received_message_is_hidden_then_comes_back_until_deleted() {
    let (_dir, store) = store().await;
    let q = store.queue("standardise", None);
    q.send("one").await.unwrap();
    q.send("two").await.unwrap();
    let got = q.receive(10, Duration::from_millis(150)).await.unwrap();
    assert_eq!(
        got.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert!(got.iter().all(|d| d.receive_count == 1));
    assert!(
        q.receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "hidden while in flight"
    );
    q.delete(&got[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = q.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("two", 2));
    // A retry with backoff hides it for the delay only.
    q.retry_later(&again[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        q.receive(10, Duration::from_secs(1)).await.unwrap()[0].receive_count,
        3
    );
}

#[tokio::test]
async fn after_max_receives_a_message_goes_to_the_dead_letter_queue_and_redrive_brings_it_back() {
    let (_dir, store) = store().await;
    let q = store.queue("landing", Some(("landing-dlq", 2)));
    q.send("poison").await.unwrap();
    for _ in 0..2 {
        let d = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(d.len(), 1);
    }
    assert!(
        q.receive(1, Duration::ZERO).await.unwrap().is_empty(),
        "not delivered a third time"
    );
    assert_eq!(store.depth("landing").await.unwrap(), 0);
    assert_eq!(store.depth("landing-dlq").await.unwrap(), 1);
    assert_eq!(store.peek("landing-dlq").await.unwrap()[0].1, "poison");
    assert_eq!(store.redrive("landing-dlq", "landing").await.unwrap(), 1);
    let d = q.receive(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!((d[0].body.as_str(), d[0].receive_count), ("poison", 1));
}

#[tokio::test]
async fn messages_outlive_the_process_that_held_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    {
        let store = QueueStore::open(&path).await.unwrap();
        let q = store.queue("audit", None);
        q.send("kept").await.unwrap();
        // Received but never deleted: as if the process died mid-work.
        q.receive(1, Duration::from_millis(50)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    let store = QueueStore::open(&path).await.unwrap();
    let d = store
        .queue("audit", None)
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!((d[0].body.as_str(), d[0].receive_count), ("kept", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_never_get_the_same_message() {
    let (dir, store) = store().await;
    let q = store.queue("q", None);
    for i in 0..200 {
        q.send(&i.to_string()).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // Separate connections pools, as separate processes would have.
        let other = QueueStore::open(&dir.path().join(".floe/queues.db"))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let q = other.queue("q", None);
            let mut seen = Vec::new();
            loop {
                let got = q.receive(7, Duration::from_secs(60)).await.unwrap();
                if got.is_empty() {
                    break seen;
                }
                seen.extend(got.into_iter().map(|d| d.body));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(
        all.len(),
        200,
        "each message delivered exactly once while invisible"
    );
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 200);
}
