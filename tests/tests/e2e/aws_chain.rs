//! The Lambda services' handler against real AWS APIs (a moto server on 127.0.0.1): a file put
//! into the landing bucket reaches the landing service through S3 -> EventBridge -> SQS, and the
//! chain passes its messages stage to stage through real SQS queues until silver is published
//! and `floe.published` is on the event bus. Failures: one bad record of a batch is the only one
//! reported; a permanent failure goes to the DLQ at once; a poison message that keeps failing is
//! dead-lettered by SQS after maxReceiveCount, and a redrive brings it back.
//!
//! The chain runs on both engines: the embedded lake (`FLOE_ENGINE=local`) and Athena, on the
//! stand-in (moto with Athena's API run on Trino, Iceberg tables in moto's Glue and S3): the
//! production path, statement for statement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use floe_core::Stage;
use floe_core::ports::{Lake, ObjectStore, Queue, ReadAt};
use floe_lake::LocalLake;
use floe_lambda::poller::poll_once;
use floe_tests::aws::{AwsWorld, Moto, QueuePolicy};
use floe_tests::chain::{Chain, athena_engine};

/// How long a chain may take to go quiet (a loaded 2-core machine, Athena on Trino).
const QUIET: Duration = Duration::from_secs(300);

const TABLES: &str = "\
source: nomis
tables:
  people:
    primary_key: [person_id]
    columns:
      person_id: {type: bigint, nullable: false}
      first_name: {type: string}
      risk_score: {type: double}
";

/// A chain on the embedded lake over a project with these files besides floe.yaml and
/// tables/nomis.yaml.
async fn chain_with(
    moto: &Moto,
    policy: QueuePolicy,
    with_dlq: bool,
    files: &[(&str, &str)],
) -> (Chain, tempfile::TempDir) {
    let mut all = vec![
        ("floe.yaml", "name: aws_chain\n"),
        ("tables/nomis.yaml", TABLES),
    ];
    all.extend_from_slice(files);
    let dir = floe_testkit::write_project(&all);
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::open(&dir.path().join("lake")).await.unwrap());
    let world = AwsWorld::create(moto, policy).await;
    (Chain::new(world, dir.path(), lake, None, with_dlq), dir)
}

async fn chain(moto: &Moto, policy: QueuePolicy, with_dlq: bool) -> (Chain, tempfile::TempDir) {
    chain_with(moto, policy, with_dlq, &[]).await
}

/// `person_id:first_name:is_current` of every silver version.
async fn silver(c: &Chain) -> Vec<String> {
    let batches = c
        .lake
        .query(
            "select person_id, first_name, is_current from silver_nomis.people",
            &ReadAt::Current,
        )
        .await
        .unwrap();
    floe_tests::rows_joined(&batches, ":", "")
}

#[tokio::test]
async fn a_silver_publish_builds_tests_and_publishes_gold_through_the_modelling_and_audit_services()
{
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    let tables_with_template = TABLES.replace(
        "      risk_score: {type: double}\n",
        "      risk_score: {type: double}\n    generate:\n      current: {}\n",
    );
    let (c, _dir) = chain_with(
        &moto,
        QueuePolicy::default(),
        true,
        &[
            ("tables/nomis.yaml", tables_with_template.as_str()),
            (
                "templates/current.sql",
                "{{ config(materialized='table') }}\nSELECT person_id, first_name, risk_score FROM {{ source(table.source, table.name) }} WHERE is_current",
            ),
            (
                "models/risky.sql",
                "{{ config(materialized='table') }}\nSELECT person_id, first_name FROM {{ ref('current_nomis_people') }} WHERE risk_score > 1",
            ),
            (
                "models/schema.yaml",
                "models:\n  - name: risky\n    columns:\n      - name: first_name\n        tests:\n          - accepted_values: {values: [Bo, Bob]}\n",
            ),
        ],
    )
    .await;
    c.put(
        "landing/nomis/people/2026-11-01T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bo,1.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    let risky = c
        .lake
        .query(
            "select person_id, first_name from gold.risky",
            &ReadAt::Current,
        )
        .await
        .unwrap();
    assert_eq!(
        floe_tests::rows_as_strings(&risky),
        [[Some("2".to_owned()), Some("Bo".to_owned())]]
    );
    let events = c.world.take_floe_events().await;
    let published: Vec<String> = events
        .iter()
        .filter(|(t, _)| t == "floe.published")
        .map(|(_, d)| d["table"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        published,
        [
            "silver_nomis.people",
            "gold.current_nomis_people",
            "gold.risky"
        ],
        "silver, then the models in DAG order: {events:?}"
    );

    // A value the test refuses: gold.risky keeps its published version, floe.failed says why.
    let risky_table: floe_core::TableRef = "gold.risky".parse().unwrap();
    let before = c.lake.snapshots(&risky_table).await.unwrap();
    c.put(
        "landing/nomis/people/2026-11-02T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Robert,1.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    let after = c.lake.snapshots(&risky_table).await.unwrap();
    let current = |s: &[floe_core::ports::SnapshotInfo]| {
        s.iter().find(|x| x.is_current).map(|x| x.snapshot_id)
    };
    assert_eq!(
        current(&after),
        current(&before),
        "the published version stands"
    );
    let events = c.world.take_floe_events().await;
    let failed = events
        .iter()
        .find(|(t, _)| t == "floe.failed")
        .expect("floe.failed for gold.risky");
    assert_eq!(failed.1["table"], "gold.risky");
    assert_eq!(
        failed.1["failures"][0]["test"],
        "accepted_values(first_name)"
    );
}

#[tokio::test]
async fn a_put_object_flows_through_eventbridge_and_sqs_to_a_published_silver_table() {
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    let (c, _dir) = chain(&moto, QueuePolicy::default(), true).await;

    c.put(
        "landing/nomis/people/2026-11-01T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bo,1.5\n",
    )
    .await;
    // A key outside landing/ is not announced by the rule.
    c.put("notes/readme.txt", "not data").await;
    let (waiting, _) = c.world.queue(Stage::Landing).depth().await.unwrap();
    assert_eq!(waiting, 1, "one EventBridge event for the one landed file");
    c.run_until_quiet(QUIET).await;
    assert_eq!(silver(&c).await, ["1:Ada:true", "2:Bo:true"]);

    // The next day's extract changes Bo: the chain closes his version and opens a new one.
    c.put(
        "landing/nomis/people/2026-11-02T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bob,1.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    assert_eq!(silver(&c).await, ["1:Ada:true", "2:Bo:false", "2:Bob:true"]);

    let events = c.world.take_floe_events().await;
    let published: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "floe.published")
        .collect();
    assert_eq!(
        published.len(),
        2,
        "one floe.published per publish: {events:?}"
    );
    assert_eq!(published[0].1["table"], "silver_nomis.people");
    let snapshots = c
        .lake
        .snapshots(&"silver_nomis.people".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(snapshots.iter().filter(|s| s.published).count(), 2);

    // A bad file is quarantined into the quarantine bucket with its report.
    c.put(
        "landing/nomis/people/2026-11-03T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\nx,Ada,0.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    let quarantine =
        floe_aws::s3::S3Store::new(c.world.clients.s3.clone(), &c.world.quarantine_bucket);
    let keys: Vec<String> = quarantine
        .list("quarantine/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 2, "the file and its report: {keys:?}");
    let report = keys
        .iter()
        .find(|k| k.ends_with(".json"))
        .expect("a report");
    let report = String::from_utf8(quarantine.get(report).await.unwrap()).unwrap();
    assert!(
        report.contains("people.csv:2: column person_id"),
        "{report}"
    );
    let events = c.world.take_floe_events().await;
    assert!(
        events.iter().any(|(t, _)| t == "floe.quarantined"),
        "{events:?}"
    );
    assert_eq!(
        silver(&c).await.len(),
        3,
        "silver is untouched by the bad file"
    );
}

/// Each landed file's name and ledger status, with the landing bucket's files the ledger does
/// not know as pending (what `floe files` prints).
async fn ledger(c: &Chain) -> Vec<String> {
    let landing = floe_aws::s3::S3Store::new(c.world.clients.s3.clone(), &c.world.landing_bucket);
    let listed = landing.list("landing/").await.unwrap();
    floe_pipeline::ledger::status_of(c.lake.as_ref(), &listed)
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.key, r.status.as_str()))
        .collect()
}

#[tokio::test]
async fn a_file_whose_event_was_lost_is_landed_by_the_reconcile_message() {
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    let (c, _dir) = chain(&moto, QueuePolicy::default(), true).await;
    let day = |d: u32| format!("landing/nomis/people/2026-11-0{d}T06:00:00Z/people.csv");
    c.put(
        &day(1),
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bo,1.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    // Day 2's event is lost: the object is in the bucket, its message is gone.
    c.put(
        &day(2),
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bob,1.5\n",
    )
    .await;
    let landing = c.world.queue(Stage::Landing);
    let lost = landing.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(lost.len(), 1);
    landing.delete(&lost[0].receipt).await.unwrap();
    c.run_until_quiet(QUIET).await;
    assert_eq!(silver(&c).await, ["1:Ada:true", "2:Bo:true"]);
    assert_eq!(
        ledger(&c).await,
        [
            format!("{}:published", day(1)),
            format!("{}:pending", day(2))
        ]
    );
    // The stack's hourly rule sends this: the file the ledger does not know is landed; with
    // nothing unknown left, the next one changes nothing.
    for _ in 0..2 {
        landing
            .send(floe_pipeline::events::RECONCILE)
            .await
            .unwrap();
        c.run_until_quiet(QUIET).await;
        assert_eq!(silver(&c).await, ["1:Ada:true", "2:Bo:false", "2:Bob:true"]);
        assert_eq!(
            ledger(&c).await,
            [
                format!("{}:published", day(1)),
                format!("{}:published", day(2))
            ]
        );
    }
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("receipt-{id}"));
    m.body = Some(body.into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    m
}

/// Lands one file and returns the standardise message the landing service sent for it.
async fn standardise_message(c: &Chain) -> String {
    c.put(
        "landing/nomis/people/2026-11-01T06:00:00Z/people.csv",
        "person_id,first_name,risk_score\n1,Ada,0.5\n",
    )
    .await;
    poll_once(
        c.world.queue(Stage::Landing),
        &c.services[&Stage::Landing],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let q = c.world.queue(Stage::Standardise);
    let d = q.receive(1, Duration::from_secs(1)).await.unwrap();
    q.delete(&d[0].receipt).await.unwrap();
    d[0].body.clone()
}

#[tokio::test]
async fn one_bad_record_in_a_batch_is_the_only_one_reported() {
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    // Without FLOE_DLQ_URL a permanent failure is reported too (SQS dead-letters it later).
    let (c, _dir) = chain(&moto, QueuePolicy::default(), false).await;
    let good = standardise_message(&c).await;
    let mut event = SqsEvent::default();
    event.records = vec![
        record("m-1", &good),
        record("m-2", "{not json"),
        record("m-3", &good),
    ];
    let response = c.services[&Stage::Standardise].handle(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-2"]);
    // The good records went on to the audit queue (the duplicate is the same batch: harmless).
    let (waiting, _) = c.world.queue(Stage::Audit).depth().await.unwrap();
    assert_eq!(waiting, 2);
}

#[tokio::test]
async fn a_permanent_failure_goes_to_the_dead_letter_queue_at_once_with_an_event() {
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    let (c, _dir) = chain(&moto, QueuePolicy::default(), true).await;
    let good = standardise_message(&c).await;
    let mut event = SqsEvent::default();
    event.records = vec![record("m-1", &good), record("m-2", "{not json")];
    let response = c.services[&Stage::Standardise].handle(event).await;
    assert!(response.batch_item_failures.is_empty());

    // An event for another bucket is misrouted: dead-lettered, not read from the wrong bucket.
    let misrouted = serde_json::json!({
        "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "someone-elses"}, "object": {"key": "landing/nomis/people/2026-11-01/x.csv"}}
    });
    let mut event = SqsEvent::default();
    event.records = vec![record("m-3", &misrouted.to_string())];
    let response = c.services[&Stage::Landing].handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    let dead = c
        .world
        .dlq(Stage::Landing)
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let dead = c
        .world
        .dlq(Stage::Standardise)
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{not json");
    let events = c.world.take_floe_events().await;
    let failed: Vec<_> = events.iter().filter(|(t, _)| t == "floe.failed").collect();
    assert_eq!(failed.len(), 2, "{events:?}");
    assert_eq!(failed[0].1["stage"], "standardise");
    assert_eq!(failed[0].1["kind"], "bad_message");
    assert_eq!(
        failed[0].1["dead_letter_queue"],
        c.world.dlq(Stage::Standardise).url(),
        "the event names the queue the message is in"
    );
    assert_eq!(failed[0].1["message_id"], "m-2");
    assert_eq!(failed[1].1["stage"], "landing");
    assert!(
        failed[1].1["reason"]
            .as_str()
            .unwrap()
            .contains("someone-elses")
    );
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_after_max_receives_and_redrive_brings_it_back() {
    let Some(moto) = Moto::start_or_skip("aws_chain") else {
        return;
    };
    let policy = QueuePolicy {
        max_receives: 2,
        visibility_secs: 1,
    };
    let (c, _dir) = chain(&moto, policy, false).await;
    let queue = c.world.queue(Stage::Audit);
    let service = &c.services[&Stage::Audit];
    queue.send("{poison").await.unwrap();
    let mut receives = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = poll_once(queue, service, Duration::from_secs(1))
            .await
            .unwrap();
        receives += p.received;
        assert!(
            p.received == p.failed.len(),
            "the poison message always fails"
        );
        let (dead, _) = c.world.dlq(Stage::Audit).depth().await.unwrap();
        if dead == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(receives, 2, "delivered exactly maxReceiveCount times");
    assert_eq!(queue.depth().await.unwrap(), (0, 0));

    // Redrive: the DLQ found from the queue's RedrivePolicy, its messages moved back.
    let dlq_arn = queue
        .dead_letter_arn()
        .await
        .unwrap()
        .expect("a redrive policy");
    assert_eq!(dlq_arn, c.world.dlq(Stage::Audit).arn().await.unwrap());
    let moved = c
        .world
        .dlq(Stage::Audit)
        .move_all_to(queue, |_| {})
        .await
        .unwrap();
    assert_eq!(moved, 1);
    let back = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, "{poison");
    assert_eq!(c.world.dlq(Stage::Audit).depth().await.unwrap(), (0, 0));
}

/// The whole production path on the Athena stand-in: PutObject -> EventBridge -> SQS ->
/// landing -> standardise -> audit -> modelling -> audit, every table an Iceberg table in Glue
/// written by Athena (Trino), gold read back through Athena.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_athena_a_landed_file_becomes_published_silver_and_gold() {
    let Some(stand_in) = floe_tests::athena_local::StandIn::or_skip("aws_chain on athena") else {
        return;
    };
    let athena = stand_in.lake().await;
    // Glue is shared by every test on the stand-in: this test's source and models are its own.
    let source = format!("src_{}", athena.prefix);
    let model = format!("risky_{}", athena.prefix);
    let dir = tempfile::tempdir().unwrap();
    let write = |p: &str, body: &str| {
        let f = dir.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, body).unwrap();
    };
    write("floe.yaml", "name: aws_chain\n");
    write(
        "tables/src.yaml",
        &TABLES
            .replace("source: nomis", &format!("source: {source}"))
            .replace(
                "      risk_score: {type: double}\n",
                "      risk_score: {type: 'decimal(5,2)'}\n    deletes: invalidate\n    generate:\n      current: {}\n",
            ),
    );
    write(
        "templates/current.sql",
        "{{ config(materialized='table') }}\nSELECT person_id, first_name, risk_score FROM {{ source(table.source, table.name) }} WHERE is_current",
    );
    write(
        &format!("models/{model}.sql"),
        &format!(
            "{{{{ config(materialized='table') }}}}\nSELECT person_id, first_name, risk_score FROM {{{{ ref('current_{source}_people') }}}} WHERE risk_score > 1"
        ),
    );
    write(
        "models/schema.yaml",
        &format!(
            "models:\n  - name: {model}\n    columns:\n      - name: first_name\n        tests:\n          - accepted_values: {{values: [Bo, Bob]}}\n"
        ),
    );
    let world = AwsWorld::create(&stand_in.moto(), QueuePolicy::default()).await;
    let c = Chain::new(
        world,
        dir.path(),
        athena.lake.clone(),
        Some(athena_engine(&athena)),
        true,
    );
    c.put(
        &format!("landing/{source}/people/2026-11-01T06:00:00Z/people.csv"),
        "person_id,first_name,risk_score\n1,Ada,0.5\n2,Bo,1.5\n3,Cy,0.25\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;
    c.put(
        &format!("landing/{source}/people/2026-11-02T06:00:00Z/people.csv"),
        "person_id,first_name,risk_score\n1,Ada,0.75\n2,Bob,1.5\n",
    )
    .await;
    c.run_until_quiet(QUIET).await;

    let rows = |sql: String| {
        let lake = c.lake.clone();
        async move {
            floe_tests::rows_joined(&lake.query(&sql, &ReadAt::Current).await.unwrap(), "|", "")
        }
    };
    // Silver: the full history, read through Athena (day 2 changed 1 and 2 and dropped 3).
    assert_eq!(
        rows(format!(
            "select person_id, first_name, cast(risk_score as varchar), cast(valid_from as varchar), cast(valid_to as varchar), is_current from silver_{source}.people order by person_id, valid_from"
        ))
        .await,
        [
            "1|Ada|0.50|2026-11-01 06:00:00.000000|2026-11-02 06:00:00.000000|false",
            "1|Ada|0.75|2026-11-02 06:00:00.000000||true",
            "2|Bo|1.50|2026-11-01 06:00:00.000000|2026-11-02 06:00:00.000000|false",
            "2|Bob|1.50|2026-11-02 06:00:00.000000||true",
            "3|Cy|0.25|2026-11-01 06:00:00.000000|2026-11-02 06:00:00.000000|false",
        ]
    );
    // Gold, built from the published silver, tested, published; decimals stay decimals.
    assert_eq!(
        rows(format!("select person_id, first_name, cast(risk_score as varchar), typeof(risk_score) from gold.{model} order by 1")).await,
        ["2|Bob|1.50|decimal(5,2)"]
    );
    let events = c.world.take_floe_events().await;
    let published: Vec<String> = events
        .iter()
        .filter(|(t, _)| t == "floe.published")
        .map(|(_, d)| d["table"].as_str().unwrap_or_default().to_owned())
        .collect();
    let silver = format!("silver_{source}.people");
    assert_eq!(
        published.iter().filter(|t| **t == silver).count(),
        2,
        "both extracts published: {events:?}"
    );
    assert!(published.contains(&format!("gold.{model}")), "{events:?}");
    assert!(
        !events.iter().any(|(t, _)| t == "floe.failed"),
        "{events:?}"
    );
    for stage in Stage::ALL {
        let (waiting, _) = c.world.dlq(stage).depth().await.unwrap();
        assert_eq!(waiting, 0, "nothing dead-lettered in {stage}");
    }
}
