//! Schema drift through the whole AWS chain on both engines: a column added, a type widened and
//! a column removed from the config between two extracts give the same silver history on the
//! embedded lake and on Athena (the stand-in), checked row by row; a source that still sends
//! the removed column is read without it.

use std::path::Path;
use std::time::Duration;

use floe_core::Stage;
use floe_core::ports::ReadAt;
use floe_tests::athena_local::StandIn;
use floe_tests::aws::{AwsWorld, QueuePolicy};
use floe_tests::chain::{Chain, lake_for};

fn configure(dir: &Path, source: &str, columns: &str) {
    std::fs::write(
        dir.join("tables/s.yaml"),
        format!(
            "source: {source}\ntables:\n  orders:\n    primary_key: [id]\n    deletes: invalidate\n    columns:\n{columns}"
        ),
    )
    .unwrap();
}

const BEFORE: &str =
    "      id: {type: bigint, nullable: false}\n      v: {type: string}\n      n: {type: int}\n";
const AFTER: &str = "      id: {type: bigint, nullable: false}\n      n: {type: bigint}\n      city: {type: string}\n";

async fn history(athena: bool, stand_in: &StandIn, source: &str) -> Vec<String> {
    let dir = floe_testkit::write_project(&[("floe.yaml", "name: drift\n")]);
    configure(dir.path(), source, BEFORE);
    let world = AwsWorld::create(&stand_in.moto(), QueuePolicy::default()).await;
    let (lake, engine) = lake_for(stand_in, athena, dir.path()).await;
    let mut chain = Chain::new(world, dir.path(), lake, engine.clone(), true);
    let deliveries = [
        ("2026-11-01T06:00:00Z", "id,v,n\n1,a,1\n2,b,2\n", None),
        (
            "2026-11-02T06:00:00Z",
            "id,n,city\n1,1,Leeds\n2,3000000000,York\n3,3,Hull\n",
            Some(AFTER),
        ),
        (
            "2026-11-03T06:00:00Z",
            "id,v,n,city\n1,zz,1,Leeds\n2,zz,3000000000,York\n",
            None,
        ),
    ];
    for (ts, body, config) in deliveries {
        if let Some(columns) = config {
            configure(dir.path(), source, columns);
            chain = chain.reload(dir.path(), engine.clone());
        }
        chain
            .put(&format!("landing/{source}/orders/{ts}/orders.csv"), body)
            .await;
        chain.run_until_quiet(Duration::from_secs(600)).await;
    }
    for stage in Stage::ALL {
        let (dead, _) = chain.world.dlq(stage).depth().await.unwrap();
        assert_eq!(dead, 0, "{stage} dead-lettered");
    }
    let rows = chain
        .lake
        .query(
            &format!(
                "select id, v, n, city, valid_from, valid_to, is_current from silver_{source}.orders order by id, valid_from"
            ),
            &ReadAt::Current,
        )
        .await
        .unwrap();
    floe_tests::rows_joined(&rows, "|", "NULL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_gives_the_same_history_on_both_engines() {
    let Some(stand_in) = StandIn::or_skip("drift on both engines") else {
        return;
    };
    let source = format!("drift_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let local = history(false, &stand_in, &source).await;
    // (values, valid from day, valid to day); rows_joined gives the rows sorted as text.
    let expected = [
        ("1|a|1|NULL", 1, Some(2)),
        ("1|NULL|1|Leeds", 2, None),
        ("2|b|2|NULL", 1, Some(2)),
        ("2|NULL|3000000000|York", 2, None),
        ("3|NULL|3|Hull", 2, Some(3)),
    ];
    assert_eq!(local.len(), expected.len(), "{local:#?}");
    for (values, from, to) in expected {
        let row = local
            .iter()
            .find(|r| r.starts_with(&format!("{values}|2026-11-{from:02}")))
            .unwrap_or_else(|| panic!("no version {values} from day {from}: {local:#?}"));
        match to {
            Some(to) => assert!(
                row.contains(&format!("|2026-11-{to:02}")) && row.ends_with("|false"),
                "{row} does not end on day {to}"
            ),
            None => assert!(row.ends_with("|NULL|true"), "{row} is not current"),
        }
    }
    let athena = history(true, &stand_in, &source).await;
    assert_eq!(athena, local, "silver_{source}.orders on Athena");
}
