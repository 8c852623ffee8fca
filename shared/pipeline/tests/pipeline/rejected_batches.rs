//! The write-audit-publish invariant as a property: a batch the audit rejected never reaches a
//! published version, then or later. Random extracts are delivered in a random order (late
//! data included) through the local runtime, a random subset of them rejected by the audit
//! (the `FLOE_REJECT_FILES` drill); after every delivery no published version comes from a
//! rejected batch or starts or ends at a rejected extract's time, and at the end silver is
//! exactly the history of the accepted extracts alone.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_lake::LocalLake;
use floe_local::runtime::Runtime;
use proptest::prelude::*;

use super::drift_property::{rows, runtime};

const TABLE: &str = "source: s\ntables:\n  t:\n    primary_key: [id]\n    deletes: invalidate\n    columns:\n      id: {type: bigint, nullable: false}\n      v: {type: string}\n";

fn day_ts(day: usize) -> DateTime<Utc> {
    format!("2026-11-{:02}T06:00:00Z", day + 1).parse().unwrap()
}

async fn open() -> (tempfile::TempDir, Arc<LocalLake>, Runtime) {
    let p = floe_testkit::spawn_project(&[("s", TABLE)]).await;
    (p.dir, p.lake, p.runtime)
}

async fn deliver(
    dir: &std::path::Path,
    rt: &Runtime,
    day: usize,
    rows: &[(i64, &str)],
    reject: bool,
) {
    let name = if reject {
        format!("day-{day}.reject.csv")
    } else {
        format!("day-{day}.csv")
    };
    let file = dir.join(&name);
    let body: String = std::iter::once("id,v\n".to_owned())
        .chain(rows.iter().map(|(id, v)| format!("{id},{v}\n")))
        .collect();
    std::fs::write(&file, body).unwrap();
    rt.land_file(&file, "s.t", day_ts(day)).await.unwrap();
    let report = rt.drain(false, |_| {}).await.unwrap();
    assert!(
        report.quarantined.is_empty() && report.dead_lettered.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.rejected.len(), usize::from(reject), "{report:?}");
}

const HISTORY: &str =
    "SELECT id, v, valid_from, valid_to, is_current FROM silver_s.t ORDER BY id, valid_from";

type Extracts = Vec<Vec<(i64, &'static str)>>;

fn strategy() -> impl Strategy<Value = (Extracts, Vec<bool>, Vec<usize>)> {
    let days = 4usize;
    let extract = proptest::collection::btree_map(
        1i64..5,
        prop_oneof![Just("a"), Just("b"), Just("c")],
        1..4,
    )
    .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    (
        proptest::collection::vec(extract, days),
        proptest::collection::vec(proptest::bool::weighted(0.35), days),
        Just((0..days).collect::<Vec<_>>()).prop_shuffle(),
    )
}

/// The drill is switched on by the environment, which a test may not change for itself (unsafe
/// code is forbidden): the property runs in a child process of this test binary that has it.
#[test]
fn a_rejected_batch_never_reaches_a_published_version() {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rejected_batches::with_the_drill_a_rejected_batch_never_reaches_a_published_version",
            "--include-ignored",
            "--nocapture",
        ])
        .env("FLOE_REJECT_FILES", ".reject.")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the property failed: see its output above"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    #[ignore = "run by a_rejected_batch_never_reaches_a_published_version, with FLOE_REJECT_FILES set"]
    fn with_the_drill_a_rejected_batch_never_reaches_a_published_version((extracts, rejected, order) in strategy()) {
        assert!(std::env::var_os("FLOE_REJECT_FILES").is_some(), "run through a_rejected_batch_never_reaches_a_published_version");
        runtime().block_on(async {
            let (dir, lake, rt) = open().await;
            let mut rejected_times = Vec::new();
            for &day in &order {
                deliver(dir.path(), &rt, day, &extracts[day], rejected[day]).await;
                if rejected[day] {
                    rejected_times.push(day_ts(day).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                }
                // No published version from a rejected batch, or bounded by its extract time.
                if !rejected_times.is_empty() {
                    let from_rejected = rows(
                        &lake,
                        "SELECT count(*) FROM silver_s.t WHERE _batch_id IN \
                         (SELECT batch_id FROM floe_audit.rejected_batches)",
                    )
                    .await;
                    prop_assert_eq!(from_rejected, vec!["0".to_owned()]);
                }
                for row in rows(&lake, HISTORY).await {
                    for t in &rejected_times {
                        prop_assert!(!row.contains(t.as_str()), "{} holds the rejected extract {}", row, t);
                    }
                }
            }
            // The end: the history of the accepted extracts alone, delivered in order.
            let (dir2, accepted, rt2) = open().await;
            for day in (0..extracts.len()).filter(|d| !rejected[*d]) {
                deliver(dir2.path(), &rt2, day, &extracts[day], false).await;
            }
            let expected = if rejected.iter().all(|r| *r) { Vec::new() } else { rows(&accepted, HISTORY).await };
            prop_assert_eq!(rows(&lake, HISTORY).await, expected);
            Ok(())
        })?;
    }
}
