//! The AWS verbs of `floe` (a project with `engine: athena`) against a moto server: land uploads
//! to the landing bucket and its event reaches the landing queue; inject puts messages on a queue
//! or events on a bus; redrive finds a queue's DLQ and moves its messages back.

use std::time::Duration;

use assert_cmd::Command;
use floe_core::Stage;
use floe_core::ports::{ObjectStore, Queue};
use floe_tests::aws::{AwsWorld, Moto, QueuePolicy, REGION};
use predicates::prelude::*;

/// `tables/nomis.yaml` with one table, `nomis.people`.
const ONE_TABLE: &str = "source: nomis\ntables:\n  people:\n    primary_key: [id]\n    columns:\n      id: {type: bigint}\n";

fn project(world: &AwsWorld, endpoint: &str) -> tempfile::TempDir {
    let floe_yaml = format!(
        "name: on_aws\nengine: athena\nathena:\n  region: {REGION}\n  workgroup: floe\n  \
         output_location: s3://results/\n  landing_bucket: {}\n  lake_location: s3://lake/\n  \
         endpoint_url: {endpoint}\n  stack: {}-no-stack\n",
        world.landing_bucket, world.prefix
    );
    floe_testkit::write_project(&[("floe.yaml", &floe_yaml), ("tables/nomis.yaml", ONE_TABLE)])
}

fn floe(dir: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("floe").unwrap();
    c.env_remove("FLOE_PROJECT")
        .env_remove("FLOE_AWS_ENDPOINT_URL")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .arg("-p")
        .arg(dir.path());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn land_inject_and_redrive_work_against_aws() {
    let Some(moto) = Moto::start_or_skip("cli aws") else {
        return;
    };
    let world = AwsWorld::create(&moto, QueuePolicy::default()).await;
    let dir = project(&world, &moto.endpoint);
    let file = dir.path().join("people.csv");
    std::fs::write(&file, "id\n1\n").unwrap();

    floe(&dir)
        .args([
            "land",
            "--table",
            "nomis.people",
            "--extract-ts",
            "2026-11-01T06:00:00Z",
        ])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "s3://{}/landing/nomis/people/2026-11-01T06:00:00Z/people.csv (batch b",
            world.landing_bucket
        )));
    let landing = floe_aws::s3::S3Store::new(world.clients.s3.clone(), &world.landing_bucket);
    assert_eq!(
        landing
            .get("landing/nomis/people/2026-11-01T06:00:00Z/people.csv")
            .await
            .unwrap(),
        b"id\n1\n"
    );
    let event = world
        .queue(Stage::Landing)
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        event.len(),
        1,
        "the upload's EventBridge event is on the landing queue"
    );
    assert!(event[0].body.contains("\"Object Created\""));

    floe(&dir)
        .args(["land", "--wait", "--table", "nomis.people"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("the landing queue of stack"));
    floe(&dir)
        .args(["land", "--table", "nomis.persons"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nomis.people"));

    // inject: the event just received, replayed onto the landing DLQ (as if dead-lettered) ...
    let replay = dir.path().join("replay.json");
    std::fs::write(&replay, format!("[{0}, {0}]", event[0].body)).unwrap();
    let dlq_name = format!("{}-landing-dlq", world.prefix);
    floe(&dir)
        .args(["inject", "--to", &dlq_name, "--event"])
        .arg(&replay)
        .assert()
        .success()
        .stdout(predicate::str::contains("sent message").count(2));
    assert_eq!(world.dlq(Stage::Landing).depth().await.unwrap().0, 2);

    // ... and redrive, naming the stage queue: its RedrivePolicy leads to the DLQ.
    world
        .queue(Stage::Landing)
        .delete(&event[0].receipt)
        .await
        .unwrap();
    floe(&dir)
        .args(["redrive", "--queue", &format!("{}-landing", world.prefix)])
        .assert()
        .success()
        .stdout(predicate::str::contains("moved 2 message(s)"));
    assert_eq!(world.dlq(Stage::Landing).depth().await.unwrap(), (0, 0));
    let back = world
        .queue(Stage::Landing)
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(json(&back[0].body), json(&event[0].body));

    // An event for a bus.
    let custom = dir.path().join("custom.json");
    std::fs::write(
        &custom,
        r#"{"source": "floe", "detail-type": "floe.replayed", "detail": {"note": "by hand"}}"#,
    )
    .unwrap();
    floe(&dir)
        .args(["inject", "--to", &format!("bus:{}", world.bus), "--event"])
        .arg(&custom)
        .assert()
        .success();
    let events = world.take_floe_events().await;
    assert_eq!(
        events,
        vec![(
            "floe.replayed".to_owned(),
            serde_json::json!({"note": "by hand"})
        )]
    );

    floe(&dir)
        .args(["redrive", "--queue", "no-such-queue"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no SQS queue named 'no-such-queue'",
        ));
}

#[test]
fn validate_says_when_the_lake_is_out_of_reach_and_still_checks_the_config() {
    // Nothing listens on port 9 of the loopback: Glue cannot be asked.
    let floe_yaml = format!(
        "name: offline\nengine: athena\nathena:\n  region: {REGION}\n  workgroup: floe\n  \
         output_location: s3://results/\n  landing_bucket: landing\n  lake_location: s3://lake/\n  \
         endpoint_url: http://127.0.0.1:9\n"
    );
    let dir =
        floe_testkit::write_project(&[("floe.yaml", &floe_yaml), ("tables/nomis.yaml", ONE_TABLE)]);
    floe(&dir)
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the lake was not compared with the config",
        ))
        .stdout(predicate::str::contains("ok"));
}
