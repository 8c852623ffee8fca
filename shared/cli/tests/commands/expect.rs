//! Row-level expectations at landing: rows dropped (and kept in floe_audit.dropped_rows),
//! warned (counted in floe_audit.expectation_results), or the file quarantined with each row
//! named; bad expectations are config errors with their field.

use predicates::prelude::*;

use crate::cli::{floe, query_csv};
use crate::drift::{land, lines, project};

const TABLE: &str = r#"source: shop
tables:
  orders:
    primary_key: [id]
    columns:
      id: {type: bigint}
      qty: {type: int, expect: {range: {min: 0, max: 100}, on_fail: drop}}
      code: {type: string, expect: {regex: '^[A-Z]{3}$', on_fail: warn}}
      status: {type: string, expect: {accepted_values: [open, closed]}}
    expect:
      - name: big_orders_have_a_code
        sql: "qty < 50 OR code IS NOT NULL"
        on_fail: drop
"#;

#[test]
fn expectations_drop_warn_or_refuse_rows_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    std::fs::write(p.join("tables/shop.yaml"), TABLE).unwrap();
    floe().arg("validate").arg("-p").arg(p).assert().success();
    land(
        p,
        1,
        "id,qty,code,status\n1,5,ABC,open\n2,500,ABC,open\n3,60,,closed\n4,7,abcd,open\n",
    )
    .success();
    assert_eq!(
        lines(&query_csv(
            p,
            "select id, qty, code from silver_shop.orders order by id"
        )),
        ["1,5,ABC", "4,7,abcd"]
    );
    assert_eq!(
        lines(&query_csv(
            p,
            "select line, expectation, row_json from floe_audit.dropped_rows order by line"
        )),
        [
            r#"3,qty_range,"{""code"":""ABC"",""id"":""2"",""qty"":""500"",""status"":""open""}""#,
            // The values as delivered (an empty CSV field is "").
            r#"4,big_orders_have_a_code,"{""code"":"""",""id"":""3"",""qty"":""60"",""status"":""closed""}""#,
        ]
    );
    assert_eq!(
        lines(&query_csv(
            p,
            "select expectation, on_fail, failing_rows, checked_rows from floe_audit.expectation_results order by expectation"
        )),
        [
            "big_orders_have_a_code,drop,1,4",
            "code_regex,warn,1,4",
            "qty_range,drop,1,4",
            "status_accepted_values,quarantine_file,0,4",
        ]
    );

    // The default refuses the file, naming each row.
    land(p, 2, "id,qty,code,status\n1,5,ABC,open\n5,1,XYZ,pending\n")
        .failure()
        .stdout(predicate::str::contains("1 quarantined"));
    let report = std::fs::read_to_string(
        p.join("quarantine/shop/orders/2026-11-02T06:00:00Z/orders-2.csv.report.json"),
    )
    .unwrap();
    assert!(
        report.contains("orders-2.csv:3: column status: fails the expectation 'status_accepted_values': one of 'open', 'closed' (value 'pending')"),
        "{report}"
    );

    // Every row dropped: refused rather than landing an empty extract.
    land(p, 3, "id,qty,code,status\n1,500,ABC,open\n")
        .failure()
        .stdout(predicate::str::contains("1 quarantined"));
}

#[test]
fn bad_expectations_are_config_errors_with_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project(p);
    for (bad, field, message) in [
        (
            "code: {type: string, expect: {regex: '[A-'}}",
            "columns.code.expect.regex",
            "not a valid regular expression",
        ),
        (
            "code: {type: int, expect: {range: {min: 'a'}}}",
            "columns.code.expect.range",
            "numeric",
        ),
        (
            "code: {type: string, expect: {not_null: true, on_fail: dorp}}",
            "columns.code.expect.on_fail",
            "did you mean 'drop'",
        ),
        (
            "code: {type: int, expect: {regex: 'x'}}",
            "columns.code.expect.regex",
            "regex checks text",
        ),
    ] {
        std::fs::write(
            p.join("tables/shop.yaml"),
            format!(
                "source: shop\ntables:\n  orders:\n    primary_key: [id]\n    columns:\n      id: {{type: bigint}}\n      {bad}\n"
            ),
        )
        .unwrap();
        floe()
            .arg("validate")
            .arg("-p")
            .arg(p)
            .assert()
            .failure()
            .stderr(predicate::str::contains(format!("tables.orders.{field}")))
            .stderr(predicate::str::contains(message));
    }
}
