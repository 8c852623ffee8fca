//! The README's local-AWS session, run as a user would: `floe init`, `scripts/aws-local.sh up
//! PROJECT_DIR` (the project's stack on the Athena stand-in), `floe land --wait` and
//! `floe up --once` (the four stage services in-process on the stack's SQS queues, SQL on
//! Athena), then `floe query` and `floe history` through Athena. The same files landed on the
//! embedded engine give the same silver history.
//! Schema drift on Athena through the CLI: an added column and a widened type applied by
//! themselves, a refused change, then `floe migrate` (dry run first), the history and the gold
//! model downstream checked row by row.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use floe_tests::athena_local::StandIn;
use predicates::prelude::PredicateBooleanExt;

const FILES: [(&str, &str); 3] = [
    ("people", "2026-11-01T06:00:00Z"),
    ("addresses", "2026-11-01T06:00:00Z"),
    ("people", "2026-11-02T06:00:00Z"),
];

fn floe(dir: &Path, env: &[(String, String)]) -> Command {
    let mut c = Command::cargo_bin("floe").unwrap();
    c.env_remove("FLOE_PROJECT").arg("-p").arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn sample(dir: &Path, table: &str, ts: &str) -> std::path::PathBuf {
    let folder = dir.join("samples/nomis").join(table).join(ts);
    std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// `floe query --format csv SQL`'s output; the query must succeed.
fn query_csv(dir: &Path, env: &[(String, String)], sql: &str) -> String {
    let out = floe(dir, env)
        .args(["query", "--format", "csv", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn silver(dir: &Path, env: &[(String, String)]) -> String {
    query_csv(
        dir,
        env,
        "select person_id, last_name, risk_score, valid_from, valid_to, is_current from silver_nomis.people order by person_id, valid_from",
    )
}

#[test]
fn the_readme_session_runs_the_production_chain_on_the_stand_in() {
    let Some(stand_in) = StandIn::or_skip("the README's local-AWS session") else {
        return;
    };
    let aws = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    for d in [aws.path(), local.path()] {
        floe(d, &[])
            .args(["init", "--no-sample"])
            .arg(d)
            .assert()
            .success();
    }
    // The project's resources on the stand-in, and engine: athena in its floe.yaml.
    let env = stack_up(&stand_in, aws.path());
    assert!(env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"), "{env:?}");
    let yaml = std::fs::read_to_string(aws.path().join("floe.yaml")).unwrap();
    assert!(
        yaml.contains("engine: athena") && yaml.contains("stack: floe-t"),
        "{yaml}"
    );
    floe(aws.path(), &env).arg("validate").assert().success();

    // Land: the first file run through at once (--wait), the others by `floe up --once`.
    for (i, (table, ts)) in FILES.iter().enumerate() {
        for (dir, env) in [(aws.path(), env.as_slice()), (local.path(), &[][..])] {
            let mut land = floe(dir, env);
            land.args([
                "land",
                "--table",
                &format!("nomis.{table}"),
                "--extract-ts",
                ts,
            ])
            .arg(sample(dir, table, ts));
            if i == 0 {
                land.arg("--wait");
            }
            land.assert().success();
        }
    }
    for (dir, env) in [(aws.path(), env.as_slice()), (local.path(), &[][..])] {
        floe(dir, env).args(["up", "--once"]).assert().success();
    }

    // The same silver on both engines, read through Athena and through the embedded engine.
    let on_athena = silver(aws.path(), &env);
    assert_eq!(on_athena, silver(local.path(), &[]));
    assert!(on_athena.lines().count() > 3, "{on_athena}");
    floe(aws.path(), &env)
        .args(["history", "silver_nomis.people"])
        .assert()
        .success()
        .stdout(predicates::str::contains("current"));
    // Gold was built, tested and published through the chain: every materialization of the
    // sample project (view, table, incremental merge, insert_by_chunk) holds what it holds on
    // the embedded engine.
    for model in [
        "current_nomis_people",
        "current_nomis_addresses",
        "changes_nomis_people",
        "dim_person",
        "person_addresses",
        "latest_risk",
        "risk_history",
        "risk_summary",
    ] {
        let count = |dir: &Path, env: &[(String, String)]| {
            query_csv(dir, env, &format!("select count(*) as n from gold.{model}"))
        };
        let on_athena = count(aws.path(), &env);
        assert_eq!(on_athena, count(local.path(), &[]), "gold.{model}");
        assert_ne!(on_athena.lines().nth(1), Some("0"), "gold.{model} is empty");
    }
    // Every stage logged what it ran; on Athena each statement but DDL bills 10 MB at least.
    let out = floe(aws.path(), &env)
        .args(["cost", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for stage in ["landing", "standardise", "audit", "modelling"] {
        let row = rows
            .iter()
            .find(|r| r["stage"] == stage)
            .unwrap_or_else(|| panic!("{stage} logged nothing: {rows:?}"));
        let n = |k: &str| row[k].as_str().unwrap().parse::<u64>().unwrap();
        assert!(n("statements") > 0 && n("bytes_scanned") > 0, "{row}");
        assert!(n("billed_bytes") >= 10 << 20, "{row}");
        assert!(
            row["usd"].as_str().unwrap().parse::<f64>().unwrap() > 0.0,
            "{row}"
        );
    }
    // The gold builds' run records have what each scanned (Athena's bytes; the views, made by
    // DDL, scan nothing).
    let unmeasured = query_csv(
        aws.path(),
        &env,
        "select count(*) as n from floe_audit.model_runs where status = 'success' and (bytes_scanned is null or bytes_scanned = 0) and model not in ('risk_summary', 'changes_nomis_people', 'changes_nomis_addresses')",
    );
    assert_eq!(unmeasured.lines().nth(1), Some("0"), "{unmeasured}");
    // Every table maintained (the query log, a Glue table of Parquet objects, is skipped), and
    // silver reads the same after.
    floe(aws.path(), &env)
        .args(["maintain", "--all"])
        .assert()
        .success()
        .stdout(predicates::str::contains("silver_nomis.people: "))
        .stdout(predicates::str::contains(
            "floe_audit.query_log: skipped: not an Iceberg table",
        ));
    assert_eq!(silver(aws.path(), &env), on_athena);
    // The first-deploy check passes every shape on the stand-in, and cleans up after itself.
    floe(aws.path(), &env)
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicates::str::contains("every shape ran"))
        .stdout(predicates::str::contains("FAIL").not());
    floe(local.path(), &[])
        .arg("doctor")
        .assert()
        .failure()
        .stderr(predicates::str::contains("floe doctor checks Athena"));
}

fn uuid_like() -> String {
    format!(
        "{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            ^ u128::from(std::process::id())
    )
    .chars()
    .rev()
    .collect()
}

/// `scripts/aws-local.sh up DIR`: the project's stack on the stand-in and `engine: athena` in its
/// floe.yaml; returns the environment it prints (AWS_ENDPOINT_URL and the rest).
fn stack_up(stand_in: &StandIn, dir: &Path) -> Vec<(String, String)> {
    let port = stand_in.endpoint.rsplit(':').next().unwrap().to_owned();
    let stage = format!("t{}", &uuid_like()[..8]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let up = Process::new(root.join("scripts/aws-local.sh"))
        .arg("up")
        .arg(dir)
        .env("FLOE_AWS_LOCAL_PORT", &port)
        .env("FLOE_AWS_LOCAL_STAGE", &stage)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    String::from_utf8(up.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A new project (`floe init --no-sample`) with its stack on the stand-in; its environment.
fn athena_project(stand_in: &StandIn) -> (tempfile::TempDir, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    floe(dir.path(), &[])
        .args(["init", "--no-sample"])
        .arg(dir.path())
        .assert()
        .success();
    let env = stack_up(stand_in, dir.path());
    (dir, env)
}

#[test]
fn migrate_rewrites_the_history_on_athena() {
    let Some(stand_in) = StandIn::or_skip("floe migrate on Athena") else {
        return;
    };
    let (dir, env) = athena_project(&stand_in);
    let p = dir.path();
    let configure = |columns: &str| {
        std::fs::write(
            p.join("tables/shop.yaml"),
            format!(
                "source: shop\ntables:\n  orders:\n    primary_key: [id]\n    deletes: invalidate\n    \
                 columns:\n      id: {{type: bigint}}\n{columns}    generate:\n      current: {{}}\n"
            ),
        )
        .unwrap();
    };
    let land = |day: u32, csv: &str| {
        let file = p.join(format!("orders-{day}.csv"));
        std::fs::write(&file, csv).unwrap();
        let mut c = floe(p, &env);
        c.args(["land", "--table", "shop.orders", "--wait", "--extract-ts"])
            .arg(format!("2026-11-{day:02}T06:00:00Z"))
            .arg(&file);
        c.assert()
    };
    let query = |sql: &str| -> Vec<String> {
        let out = floe(p, &env)
            .args(["query", "--format", "csv", sql])
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout)
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };
    let history = "select id, qty, city, valid_from, valid_to, is_current from silver_shop.orders order by id, valid_from";
    let gold = "select id, qty, city from gold.current_shop_orders order by id";
    configure("      qty: {type: int}\n");
    land(1, "id,qty\n1,2\n2,3\n").success();

    // Day 2: city added and qty widened to bigint, applied by themselves.
    configure("      qty: {type: bigint}\n      city: {type: string}\n");
    land(2, "id,qty,city\n1,2,Leeds\n2,3000000000,York\n").success();
    let before = query(history);
    assert_eq!(
        before,
        [
            "1,2,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "1,2,Leeds,2026-11-02T06:00:00Z,,true",
            "2,3,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "2,3000000000,York,2026-11-02T06:00:00Z,,true",
        ]
    );
    assert_eq!(query(gold), ["1,2,Leeds", "2,3000000000,York"]);
    floe(p, &env)
        .arg("validate")
        .assert()
        .success()
        .stdout(predicates::str::contains("differs from the lake").not());

    // Day 3: bigint to decimal(12,2) cannot be done in place: the file is refused, nothing
    // written.
    configure("      qty: {type: 'decimal(12,2)'}\n      city: {type: string}\n");
    let day3 = "id,qty,city\n1,2.5,Leeds\n2,3000000000,York\n";
    land(3, day3)
        .failure()
        .stderr(predicates::str::contains("dead-lettered"));
    assert_eq!(query(history), before, "silver changed after a refusal");
    // `floe validate` compares the config with the lake on Athena too (Glue's schemas).
    floe(p, &env)
        .arg("validate")
        .assert()
        .failure()
        .stdout(predicates::str::contains(
            "shop.orders differs from the lake",
        ))
        .stdout(predicates::str::contains("floe migrate shop.orders"));

    floe(p, &env)
        .args(["migrate", "shop.orders", "--dry-run"])
        .assert()
        .success()
        .stdout(predicates::str::contains("replace column 'qty'"))
        .stdout(predicates::str::contains("every bronze value converts"));
    assert_eq!(query(history), before, "a dry run changed silver");
    floe(p, &env)
        .args(["migrate", "shop.orders"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "rebuilding the history of silver_shop.orders",
        ));
    assert_eq!(
        query(history),
        [
            "1,2.00,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "1,2.00,Leeds,2026-11-02T06:00:00Z,,true",
            "2,3.00,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "2,3000000000.00,York,2026-11-02T06:00:00Z,,true",
        ]
    );
    assert_eq!(
        query(gold),
        ["1,2.00,Leeds", "2,3000000000.00,York"],
        "the model downstream follows the new type"
    );
    // The extract refused before lands now, under the new type.
    land(3, day3).success();
    assert_eq!(
        query(history)[..3],
        [
            "1,2.00,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "1,2.00,Leeds,2026-11-02T06:00:00Z,2026-11-03T06:00:00Z,false",
            "1,2.50,Leeds,2026-11-03T06:00:00Z,,true",
        ]
    );
    assert_eq!(query(gold), ["1,2.50,Leeds", "2,3000000000.00,York"]);
}

/// A customers extract of `n` rows as CSV; `day` changes every 100th row's score (from the
/// 7th), and from day 2 on every 50th key is missing.
fn customers(n: u64, day: u64) -> String {
    let mut out = String::from("id,name,city,score\n");
    for i in 1..=n {
        if day > 1 && i % 50 == 0 {
            continue;
        }
        let score = if i % 100 == 7 { i * 7 + day } else { i * 7 };
        out.push_str(&format!(
            "{i},name {i},{},{}.{}\n",
            ["Leeds", "York", "Hull", "Bath"][(i % 4) as usize],
            score,
            i % 10
        ));
    }
    out
}

#[test]
fn land_dry_run_estimates_what_the_run_then_scans_on_athena() {
    let Some(stand_in) = StandIn::or_skip("the land --dry-run estimate on Athena") else {
        return;
    };
    let (dir, env) = athena_project(&stand_in);
    let p = dir.path();
    std::fs::write(
        p.join("tables/crm.yaml"),
        "source: crm\ntables:\n  customers:\n    primary_key: [id]\n    deletes: invalidate\n    \
         columns:\n      id: {type: bigint, nullable: false}\n      name: {type: string}\n      \
         city: {type: string}\n      score: {type: double}\n",
    )
    .unwrap();
    let file = |day: u64| {
        let f = p.join(format!("customers-{day}.csv"));
        std::fs::write(&f, customers(20_000, day)).unwrap();
        f
    };
    let land = |day: u64, ts: &str, extra: &[&str]| {
        floe(p, &env)
            .args(["land", "--table", "crm.customers", "--extract-ts", ts])
            .args(extra)
            .arg(file(day))
            .output()
            .unwrap()
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    ok(land(1, "2026-11-01T06:00:00Z", &["--wait"]));
    ok(land(3, "2026-11-03T06:00:00Z", &["--wait"]));
    // An in-order extract (applied), then a late one (spliced in): each estimate against what
    // the run then scanned, by stage, from floe's query log.
    for (day, ts, step) in [
        (4, "2026-11-04T06:00:00Z", "apply"),
        (2, "2026-11-02T06:00:00Z", "late"),
    ] {
        let estimate: serde_json::Value =
            serde_json::from_slice(&ok(land(day, ts, &["--dry-run", "--format", "json"]))).unwrap();
        assert_eq!(estimate["step"], step, "{estimate}");
        let since = chrono::Utc::now().to_rfc3339();
        ok(land(day, ts, &["--wait"]));
        let cost: Vec<serde_json::Value> = serde_json::from_slice(&ok(floe(p, &env)
            .args(["cost", "--since", &since, "--format", "json"])
            .output()
            .unwrap()))
        .unwrap();
        for stage in ["landing", "standardise", "audit"] {
            let estimated: u64 = estimate["statements"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["stage"] == stage)
                .map(|s| s["bytes"].as_u64().unwrap())
                .sum();
            let scanned: u64 = cost
                .iter()
                .find(|r| r["stage"] == stage)
                .and_then(|r| r["bytes_scanned"].as_str()?.parse().ok())
                .unwrap_or_else(|| panic!("{stage} logged nothing: {cost:?}"));
            assert!(
                estimated <= 2 * scanned && scanned <= 2 * estimated,
                "{step}: {stage} estimated {estimated} bytes, scanned {scanned}: {estimate} {cost:?}"
            );
        }
    }
}
