//! The same deliveries through the whole AWS chain on the embedded lake and on Athena (the
//! stand-in) give row-for-row the same silver histories: full loads under every deletes policy,
//! a cdc table with several changes per key in one batch, a late extract, a repeated delivery
//! of the same object and the same content landed twice under another name; in-order extracts
//! applied to silver, late ones spliced into the keys they change (rebuilt with untracked
//! columns), and a replaced extract rebuilt, on both.

use std::time::Duration;

use floe_core::Stage;
use floe_core::ports::ReadAt;
use floe_tests::athena_local::StandIn;
use floe_tests::aws::{AwsWorld, QueuePolicy};
use floe_tests::chain::{Chain, lake_for};

fn tables(source: &str) -> String {
    let full = |name: &str, deletes: &str| {
        format!(
            "  {name}:\n    primary_key: [id]\n    deletes: {deletes}\n    columns:\n      id: {{type: bigint, nullable: false}}\n      v: {{type: string}}\n      n: {{type: bigint}}\n"
        )
    };
    format!(
        "source: {source}\ntables:\n{}{}{}  changes:\n    primary_key: [id]\n    load: cdc\n    deletes: invalidate\n    cdc: {{operation_column: op, timestamp_column: at}}\n    columns:\n      id: {{type: bigint, nullable: false}}\n      v: {{type: string}}\n      op: {{type: string}}\n      at: {{type: timestamp}}\n",
        full("ignored", "ignore"),
        full("invalidated", "invalidate"),
        full("kept", "new_record"),
    ) + "  patched:\n    primary_key: [id]\n    load: cdc\n    deletes: invalidate\n    ignore_null_updates: true\n    cdc: {operation_column: op, timestamp_column: at, truncate_value: T}\n    columns:\n      id: {type: bigint, nullable: false}\n      v: {type: string}\n      w: {type: string}\n      op: {type: string}\n      at: {type: timestamp}\n"
        + "  same:\n    primary_key: [id]\n    deletes: invalidate\n    columns:\n      id: {type: bigint, nullable: false}\n      v: {type: string}\n      n: {type: bigint}\n"
        + "  tracked:\n    primary_key: [id]\n    deletes: invalidate\n    track_history: [v]\n    columns:\n      id: {type: bigint, nullable: false}\n      v: {type: string}\n      n: {type: bigint}\n"
        + "  tracked_changes:\n    primary_key: [id]\n    load: cdc\n    deletes: invalidate\n    ignore_changes: [w]\n    cdc: {operation_column: op, timestamp_column: at}\n    columns:\n      id: {type: bigint, nullable: false}\n      v: {type: string}\n      w: {type: string}\n      op: {type: string}\n      at: {type: timestamp}\n"
}

/// (table, extract time, file name, body): in delivery order.
fn deliveries() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    for t in ["ignored", "invalidated", "kept"] {
        out.push((
            t,
            "2026-11-01T06:00:00Z",
            "a.csv",
            "id,v,n\n1,a,1\n2,b,2\n3,c,3\n",
        ));
        // Day 3 arrives before day 2 (late data), and day 2 is delivered twice (same object).
        out.push((
            t,
            "2026-11-03T06:00:00Z",
            "a.csv",
            "id,v,n\n1,a2,1\n3,c,3\n4,d,\n",
        ));
        out.push((
            t,
            "2026-11-02T06:00:00Z",
            "a.csv",
            "id,v,n\n1,a,1\n3,c3,3\n",
        ));
        out.push((
            t,
            "2026-11-02T06:00:00Z",
            "a.csv",
            "id,v,n\n1,a,1\n3,c3,3\n",
        ));
        // Key 2 comes back on day 4; the same content also lands under a second name.
        out.push((
            t,
            "2026-11-04T06:00:00Z",
            "a.csv",
            "id,v,n\n1,a2,1\n2,b,2\n3,c,3\n4,d,4\n",
        ));
        out.push((
            t,
            "2026-11-04T06:00:00Z",
            "b.csv",
            "id,v,n\n1,a2,1\n2,b,2\n3,c,3\n4,d,4\n",
        ));
    }
    // A source that sends only what changed: a NULL keeps the last value, until a delete.
    out.push((
        "patched",
        "2026-11-01T06:00:00Z",
        "p.csv",
        "id,v,w,op,at\n1,a,x,I,2026-11-01 01:00:00\n1,,y,U,2026-11-01 02:00:00\n2,p,q,I,2026-11-01 03:00:00\n",
    ));
    out.push((
        "patched",
        "2026-11-02T06:00:00Z",
        "p.csv",
        "id,v,w,op,at\n1,b,,U,2026-11-02 01:00:00\n1,,,D,2026-11-02 02:00:00\n1,,z,I,2026-11-02 03:00:00\n2,,,U,2026-11-02 04:00:00\n",
    ));
    // A truncate marker (its key empty) closes every current version; a key then comes anew.
    out.push((
        "patched",
        "2026-11-03T06:00:00Z",
        "p.csv",
        "id,v,w,op,at\n,,,T,2026-11-03 01:00:00\n3,m,n,I,2026-11-03 02:00:00\n",
    ));
    // The same extract on two days: the second changes nothing (on Athena its MERGE commits
    // no snapshot).
    for ts in ["2026-11-01T06:00:00Z", "2026-11-02T06:00:00Z"] {
        out.push(("same", ts, "s.csv", "id,v,n\n1,a,1\n2,b,2\n"));
    }
    // History on `v` only: a change of `n` alone updates the current version in place; day 3
    // arrives before day 2.
    for (ts, body) in [
        ("2026-11-01T06:00:00Z", "id,v,n\n1,a,1\n2,b,2\n"),
        ("2026-11-03T06:00:00Z", "id,v,n\n1,a,3\n2,c,2\n"),
        ("2026-11-02T06:00:00Z", "id,v,n\n1,a,2\n2,b,5\n"),
        ("2026-11-04T06:00:00Z", "id,v,n\n1,a,4\n2,c,9\n"),
    ] {
        out.push(("tracked", ts, "t.csv", body));
    }
    out.push((
        "tracked_changes",
        "2026-11-01T06:00:00Z",
        "c.csv",
        "id,v,w,op,at\n1,a,x,I,2026-11-01 01:00:00\n1,a,y,U,2026-11-01 02:00:00\n1,b,y,U,2026-11-01 03:00:00\n",
    ));
    out.push((
        "tracked_changes",
        "2026-11-02T06:00:00Z",
        "c.csv",
        "id,v,w,op,at\n1,b,z,U,2026-11-02 01:00:00\n1,,,D,2026-11-02 02:00:00\n",
    ));
    out.push((
        "changes",
        "2026-11-01T06:00:00Z",
        "c.csv",
        "id,v,op,at\n1,x,I,2026-11-01 01:00:00\n1,y,U,2026-11-01 02:00:00\n2,p,I,2026-11-01 03:00:00\n1,z,U,2026-11-01 04:00:00\n",
    ));
    out.push((
        "changes",
        "2026-11-02T06:00:00Z",
        "c.csv",
        "id,v,op,at\n2,p,D,2026-11-02 01:00:00\n1,z2,U,2026-11-02 02:00:00\n3,q,I,2026-11-02 03:00:00\n2,p2,I,2026-11-02 04:00:00\n",
    ));
    out
}

struct Run {
    chain: Chain,
    _dir: tempfile::TempDir,
}

impl Run {
    async fn deliver(&self, source: &str, tables: &[&str]) {
        for (table, ts, name, body) in deliveries().into_iter().filter(|d| tables.contains(&d.0)) {
            self.chain
                .put(&format!("landing/{source}/{table}/{ts}/{name}"), body)
                .await;
            self.chain.run_until_quiet(Duration::from_secs(600)).await;
        }
        for stage in Stage::ALL {
            let (dead, _) = self.chain.world.dlq(stage).depth().await.unwrap();
            assert_eq!(dead, 0, "{stage} dead-lettered");
        }
    }

    /// The SCD2 step (`apply`, `late` or `rebuild`) recorded on each published version of a table, in
    /// commit order.
    async fn steps(&self, source: &str, table: &str) -> Vec<String> {
        let silver: floe_core::TableRef = format!("silver_{source}.{table}").parse().unwrap();
        self.chain
            .lake
            .snapshots(&silver)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.published)
            .filter_map(|s| s.summary.get("floe.scd2-step").cloned())
            .collect()
    }

    async fn history(&self, source: &str, table: &str) -> Vec<String> {
        let deleted = if table == "kept" { ", is_deleted" } else { "" };
        let values = match table {
            "changes" => "v",
            "patched" | "tracked_changes" => "v, w",
            _ => "v, n",
        };
        let sql = format!(
            "select id, {values}, valid_from, valid_to, is_current{deleted} from silver_{source}.{table} order by id, valid_from"
        );
        let rows = self.chain.lake.query(&sql, &ReadAt::Current).await.unwrap();
        floe_tests::rows_joined(&rows, "|", "NULL")
    }
}

async fn run(stand_in: &StandIn, athena: bool, source: &str) -> Run {
    let tables = tables(source);
    let dir =
        floe_testkit::write_project(&[("floe.yaml", "name: both\n"), ("tables/s.yaml", &tables)]);
    let world = AwsWorld::create(&stand_in.moto(), QueuePolicy::default()).await;
    let (lake, engine) = lake_for(stand_in, athena, dir.path()).await;
    Run {
        chain: Chain::new(world, dir.path(), lake, engine, true),
        _dir: dir,
    }
}

/// The same deliveries of these tables through both chains (side by side); each table's
/// history is the same on both.
async fn both(what: &str, tables: &[&str]) -> Option<(Run, Run, String)> {
    let stand_in = StandIn::or_skip(what)?;
    let source = format!("both_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let local = run(&stand_in, false, &source).await;
    let athena = run(&stand_in, true, &source).await;
    tokio::join!(
        local.deliver(&source, tables),
        athena.deliver(&source, tables)
    );
    for table in tables {
        let expected = local.history(&source, table).await;
        assert!(expected.len() >= 2, "{table}: {expected:?}");
        assert_eq!(
            athena.history(&source, table).await,
            expected,
            "silver_{source}.{table}"
        );
    }
    Some((local, athena, source))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cdc_loads_give_the_same_silver_on_both_engines() {
    let Some((local, athena, source)) = both(
        "cdc silver on both engines",
        &["changes", "patched", "tracked_changes"],
    )
    .await
    else {
        return;
    };
    // ignore_null_updates: NULLs keep the last values; a delete starts the key afresh; a change
    // of nothing but NULLs opens no version. truncate_value: a marker closes every key.
    let patched = local.history(&source, "patched").await;
    let versions: Vec<String> = patched
        .iter()
        .map(|r| r.split('|').take(3).collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        versions,
        ["1|NULL|z", "1|a|x", "1|a|y", "1|b|y", "2|p|q", "3|m|n"],
        "{patched:?}"
    );
    assert!(
        patched[3].contains("|2026-11-02T02:00:00") && patched[3].ends_with("|false"),
        "the delete closes (b, y): {patched:?}"
    );
    // The truncate closes what was current then; key 3 comes after it.
    for closed in [0, 4] {
        assert!(
            patched[closed].ends_with("|2026-11-03T01:00:00Z|false"),
            "the truncate closes it: {patched:?}"
        );
    }
    assert!(patched[5].ends_with("|NULL|true"), "{patched:?}");
    // Cdc batches are rebuilt, and each version records it.
    for run in [&local, &athena] {
        let cdc = run.steps(&source, "changes").await;
        assert!(cdc.iter().all(|s| s == "rebuild"), "{cdc:?}");
    }
    // ignore_changes: a version holds the untracked values of its last change.
    assert_eq!(
        local.history(&source, "tracked_changes").await,
        [
            "1|a|y|2026-11-01T01:00:00Z|2026-11-01T03:00:00Z|false",
            "1|b|z|2026-11-01T03:00:00Z|2026-11-02T02:00:00Z|false",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_loads_that_keep_or_ignore_deletes_give_the_same_silver_on_both_engines() {
    // `deletes: ignore` and `new_record`: compared row for row by `both`.
    let Some((local, athena, source)) = both(
        "full-load silver (ignore, new_record) on both engines",
        &["ignored", "kept"],
    )
    .await
    else {
        return;
    };
    // Day 2, late, is spliced in under both (under `ignore` with each key's next observation
    // read from bronze).
    for run in [&local, &athena] {
        for table in ["kept", "ignored"] {
            let steps = run.steps(&source, table).await;
            assert_eq!(steps[..3], ["apply", "apply", "late"], "{table}: {steps:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_loads_give_the_same_silver_on_both_engines() {
    let Some((local, athena, source)) = both(
        "full-load silver on both engines",
        &["invalidated", "tracked"],
    )
    .await
    else {
        return;
    };
    // In-order extracts are applied to silver on both engines (Athena: one MERGE of the
    // versions that change), the late day 2 is spliced into the keys it changes (Athena: one
    // MERGE too), day 4's second file replaces day 4 and rebuilds from bronze; each version
    // records which. With `track_history`, a late extract rebuilds.
    for run in [&local, &athena] {
        let steps = run.steps(&source, "invalidated").await;
        assert_eq!(
            steps,
            ["apply", "apply", "late", "apply", "rebuild"],
            "{steps:?}"
        );
        let tracked = run.steps(&source, "tracked").await;
        assert_eq!(tracked[..3], ["apply", "apply", "rebuild"], "{tracked:?}");
    }
    // track_history: a version holds the untracked values of its last extract.
    assert_eq!(
        local.history(&source, "tracked").await,
        [
            "1|a|4|2026-11-01T06:00:00Z|NULL|true",
            "2|b|5|2026-11-01T06:00:00Z|2026-11-03T06:00:00Z|false",
            "2|c|9|2026-11-03T06:00:00Z|NULL|true",
        ]
    );
    // A sanity check of the history itself (the embedded engine's is checked against a
    // reference model in floe-pipeline's tests): key 2 gone on day 2, back on day 4.
    let invalidated = local.history(&source, "invalidated").await;
    assert!(
        invalidated
            .iter()
            .any(|r| r.starts_with("2|b|2|2026-11-01") && r.contains("|2026-11-02")),
        "{invalidated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_extract_that_changes_nothing_is_published_on_both_engines() {
    let Some((local, athena, source)) =
        both("an unchanged extract on both engines", &["same"]).await
    else {
        return;
    };
    // Every file is accounted for: both days are published in the file ledger, though on
    // Athena the second day's version is the first day's snapshot.
    for run in [&local, &athena] {
        let files = floe_pipeline::ledger::status_of(run.chain.lake.as_ref(), &[])
            .await
            .unwrap();
        let same: Vec<String> = files
            .iter()
            .filter(|f| f.key.contains(&format!("{source}/same/")))
            .map(|f| format!("{} {:?}", f.key, f.status))
            .collect();
        assert_eq!(same.len(), 2, "{same:?}");
        assert!(same.iter().all(|f| f.ends_with("Published")), "{same:?}");
    }
}
