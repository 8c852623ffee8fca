//! Schema drift end to end on the embedded engine: a column added, a type widened, a column
//! removed, a change the lake refuses and `floe migrate`; the silver history checked row by row
//! after each, and the gold model downstream rebuilt.

use std::path::Path;

use predicates::prelude::*;

use crate::cli::{floe, query_csv};

const FLOE_YAML: &str = "name: drift\nengine: local\nlake: lake\n";

fn table_yaml(columns: &str) -> String {
    format!(
        "source: shop\ntables:\n  orders:\n    primary_key: [id]\n    deletes: invalidate\n    \
         columns:\n{columns}    generate:\n      current: {{}}\n"
    )
}

/// The current version of each key, with the table's declared columns: a model that follows
/// the config.
const CURRENT: &str = "{{ config(materialized='table') }}\nSELECT {% for c in table.columns %}{{ c.name }}, {% endfor %}valid_from AS current_since FROM {{ source(table.source, table.name) }} WHERE is_current\n";

pub(crate) fn project(dir: &Path) {
    std::fs::write(dir.join("floe.yaml"), FLOE_YAML).unwrap();
    std::fs::create_dir(dir.join("tables")).unwrap();
    std::fs::create_dir(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates/current.sql"), CURRENT).unwrap();
}

pub(crate) fn configure(project: &Path, columns: &str) {
    std::fs::write(project.join("tables/shop.yaml"), table_yaml(columns)).unwrap();
}

/// `floe land --wait` of `csv` as orders-<day>.csv, the extract of that day.
pub(crate) fn land_cmd(project: &Path, day: u32, csv: &str) -> assert_cmd::Command {
    let file = project.join(format!("orders-{day}.csv"));
    std::fs::write(&file, csv).unwrap();
    let mut c = floe();
    c.args(["land", "--table", "shop.orders", "--wait", "--extract-ts"])
        .arg(format!("2026-11-{day:02}T06:00:00Z"))
        .arg("-p")
        .arg(project)
        .arg(&file);
    c
}

pub(crate) fn land(project: &Path, day: u32, csv: &str) -> assert_cmd::assert::Assert {
    land_cmd(project, day, csv).assert()
}

pub(crate) fn lines(csv: &str) -> Vec<&str> {
    csv.lines().skip(1).collect()
}

#[test]
fn drift_by_policy_keeps_the_history_and_migrate_rewrites_it_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: int}\n      price: {type: 'decimal(8,2)'}\n      note: {type: string}\n",
    );
    land(p, 1, "id,qty,price,note\n1,2,1.50,a\n2,3,2.00,b\n").success();

    // Day 2: city added, qty widened to bigint, note removed; the file follows the new config.
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: bigint}\n      price: {type: 'decimal(8,2)'}\n      city: {type: string}\n",
    );
    floe()
        .arg("validate")
        .arg("-p")
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("add column 'city'"))
        .stdout(predicate::str::contains("widen column 'qty'"))
        .stdout(predicate::str::contains("column 'note'"));
    land(
        p,
        2,
        "id,qty,price,city\n1,2,1.50,Leeds\n2,3000000000,2.00,York\n3,1,9.99,Hull\n",
    )
    .success();
    let history = "select id, qty, price, note, city, valid_from, valid_to, is_current \
                   from silver_shop.orders order by id, valid_from";
    assert_eq!(
        lines(&query_csv(p, history)),
        [
            "1,2,1.50,a,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "1,2,1.50,,Leeds,2026-11-02T06:00:00Z,,true",
            "2,3,2.00,b,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "2,3000000000,2.00,,York,2026-11-02T06:00:00Z,,true",
            "3,1,9.99,,Hull,2026-11-02T06:00:00Z,,true",
        ],
    );
    // The gold model generated from the config follows it.
    assert_eq!(
        lines(&query_csv(
            p,
            "select id, qty, city from gold.current_shop_orders order by id"
        )),
        ["1,2,Leeds", "2,3000000000,York", "3,1,Hull"]
    );
    // A source still sending the removed column is read without it.
    land(
        p,
        3,
        "id,qty,price,city,note\n1,2,1.50,Leeds,zz\n2,3000000000,2.00,York,zz\n3,1,9.99,Hull,zz\n",
    )
    .success();
    let before = query_csv(p, history);

    // Day 4: qty to decimal(12,2) cannot be done in place: refused before anything is written.
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: 'decimal(12,2)'}\n      price: {type: 'decimal(8,2)'}\n      city: {type: string}\n",
    );
    floe()
        .arg("validate")
        .arg("-p")
        .arg(p)
        .assert()
        .failure()
        .stdout(predicate::str::contains("floe migrate shop.orders"));
    land(p, 4, "id,qty,price,city\n1,2.5,1.50,Leeds\n")
        .failure()
        .stdout(predicate::str::contains("floe migrate shop.orders"));
    assert_eq!(
        query_csv(p, history),
        before,
        "silver changed after a refusal"
    );
    assert_eq!(
        lines(&query_csv(
            p,
            "select count(distinct _batch_id) from bronze_shop.orders"
        )),
        ["3"],
        "a refused file reached bronze"
    );

    let refused_at = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));

    // A migration bronze cannot satisfy is refused naming the value, and changes nothing.
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: bigint}\n      price: {type: int}\n      city: {type: string}\n",
    );
    floe()
        .args(["migrate", "shop.orders", "-p"])
        .arg(p)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "column price: '1.50' is not a int",
        ))
        .stderr(predicate::str::contains("orders-1.csv"));

    // The migration to decimal(12,2): the whole history under the new type, then day 4 lands.
    configure(
        p,
        "      id: {type: bigint}\n      qty: {type: 'decimal(12,2)'}\n      price: {type: 'decimal(8,2)'}\n      city: {type: string}\n",
    );
    // --dry-run checks bronze and says what would change, and changes nothing.
    floe()
        .args(["migrate", "shop.orders", "--dry-run", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("replace column 'qty'"))
        .stdout(predicate::str::contains("every bronze value converts"))
        .stdout(predicate::str::contains("run `floe migrate").not());
    assert_eq!(query_csv(p, history), before, "a dry run changed silver");
    floe()
        .args(["migrate", "shop.orders", "-p"])
        .arg(p)
        .assert()
        .success()
        .stdout(predicate::str::contains("published silver_shop.orders"))
        .stdout(predicate::str::contains(
            "published gold.current_shop_orders",
        ));
    let migrated = query_csv(p, history);
    assert_eq!(
        lines(&migrated),
        [
            "1,2.00,1.50,a,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "1,2.00,1.50,,Leeds,2026-11-02T06:00:00Z,,true",
            "2,3.00,2.00,b,,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false",
            "2,3000000000.00,2.00,,York,2026-11-02T06:00:00Z,,true",
            "3,1.00,9.99,,Hull,2026-11-02T06:00:00Z,,true",
        ],
    );
    // What readers saw before the migration is still there to time travel to.
    let old = floe()
        .args(["query", "--format", "csv", "--as-of", &refused_at, "-p"])
        .arg(p)
        .arg(history)
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&old.get_output().stdout), before);
    land(
        p,
        4,
        "id,qty,price,city\n1,2.5,1.50,Leeds\n2,3,2.00,York\n3,1,9.99,Hull\n",
    )
    .success();
    let after = query_csv(
        p,
        "select id, qty, is_current from silver_shop.orders where is_current order by id",
    );
    assert_eq!(lines(&after), ["1,2.50,true", "2,3.00,true", "3,1.00,true"]);
    assert_eq!(
        lines(&query_csv(
            p,
            "select id, qty from gold.current_shop_orders order by id"
        )),
        ["1,2.50", "2,3.00", "3,1.00"]
    );
}

#[test]
fn policies_fail_and_rescue_decide_what_a_file_of_another_shape_does() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    let cols = "      id: {type: bigint}\n      qty: {type: int}\n";
    std::fs::write(
        p.join("tables/shop.yaml"),
        table_yaml(cols).replace(
            "deletes: invalidate",
            "deletes: invalidate\n    schema_change: rescue",
        ),
    )
    .unwrap();
    // rescue: undeclared columns are kept as JSON; a missing nullable column is NULL.
    land(p, 1, "id,qty,Colour,size\n1,2,red,\n2,3,blue,L\n").success();
    land(p, 2, "id\n1\n2\n").success();
    assert_eq!(
        lines(&query_csv(
            p,
            "select id, qty, _rescued, valid_from from silver_shop.orders order by id, valid_from"
        )),
        [
            "1,2,\"{\"\"Colour\"\":\"\"red\"\"}\",2026-11-01T06:00:00Z",
            "1,,,2026-11-02T06:00:00Z",
            "2,3,\"{\"\"Colour\"\":\"\"blue\"\",\"\"size\"\":\"\"L\"\"}\",2026-11-01T06:00:00Z",
            "2,,,2026-11-02T06:00:00Z",
        ]
    );

    // fail: the same files are quarantined, and a config change waits for floe migrate.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    let strict = |cols: &str| {
        table_yaml(cols).replace(
            "deletes: invalidate",
            "deletes: invalidate\n    schema_change: fail",
        )
    };
    std::fs::write(p.join("tables/shop.yaml"), strict(cols)).unwrap();
    land(p, 1, "id,qty\n1,2\n").success();
    land(p, 2, "id,qty,colour\n1,2,red\n")
        .failure()
        .stdout(predicate::str::contains("1 quarantined"));
    land(p, 3, "id\n1\n")
        .failure()
        .stdout(predicate::str::contains("1 quarantined"));
    std::fs::write(
        p.join("tables/shop.yaml"),
        strict("      id: {type: bigint}\n      qty: {type: bigint}\n"),
    )
    .unwrap();
    land(p, 4, "id,qty\n1,5\n")
        .failure()
        .stdout(predicate::str::contains("schema_change: fail"));
    floe()
        .args(["migrate", "shop.orders", "-p"])
        .arg(p)
        .assert()
        .success();
    floe()
        .args(["redrive", "--queue", "landing", "-p"])
        .arg(p)
        .assert()
        .success();
    floe()
        .args(["up", "--once", "-p"])
        .arg(p)
        .assert()
        .success();
    assert_eq!(
        lines(&query_csv(
            p,
            "select id, qty, is_current from silver_shop.orders order by valid_from"
        )),
        ["1,2,false", "1,5,true"]
    );
}

#[test]
fn a_changed_deletes_policy_rebuilds_the_history_under_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    let with_deletes = |policy: &str| {
        std::fs::write(
            p.join("tables/shop.yaml"),
            table_yaml("      id: {type: bigint}\n      v: {type: string}\n")
                .replace("deletes: invalidate", &format!("deletes: {policy}")),
        )
        .unwrap();
    };
    with_deletes("new_record");
    land(p, 1, "id,v\n1,a\n2,b\n").success();
    land(p, 2, "id,v\n1,a\n").success();
    let history = "select id, v, valid_from, valid_to, is_current, is_deleted from silver_shop.orders order by id, valid_from";
    assert_eq!(
        lines(&query_csv(p, history)),
        [
            "1,a,2026-11-01T06:00:00Z,,true,false",
            "2,b,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false,false",
            "2,b,2026-11-02T06:00:00Z,,true,true",
        ]
    );
    // Under `invalidate` there is no deleted version: silver no longer writes is_deleted.
    with_deletes("invalidate");
    land(p, 3, "id,v\n1,a\n3,c\n").success();
    assert_eq!(
        lines(&query_csv(p, history)),
        [
            "1,a,2026-11-01T06:00:00Z,,true,",
            "2,b,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false,",
            "3,c,2026-11-03T06:00:00Z,,true,",
        ]
    );
    // And back: the deleted versions come back with the rule.
    with_deletes("new_record");
    land(p, 4, "id,v\n1,a\n3,c\n").success();
    assert_eq!(
        lines(&query_csv(p, history)),
        [
            "1,a,2026-11-01T06:00:00Z,,true,false",
            "2,b,2026-11-01T06:00:00Z,2026-11-02T06:00:00Z,false,false",
            "2,b,2026-11-02T06:00:00Z,,true,true",
            "3,c,2026-11-03T06:00:00Z,,true,false",
        ]
    );
}
