//! Interop for what the pipeline writes: pyiceberg reads the bronze and silver tables of a local
//! pipeline run (staged then published snapshots, text and typed columns, position delete
//! files) with floe's rows.

use floe_core::ports::{Lake, ReadAt};
use floe_tests::{json_rows, pyiceberg_read, python_or_skip, rows_as_strings};

const TABLES: &str = "\
source: crm
tables:
  accounts:
    primary_key: [account_id]
    deletes: new_record
    columns:
      account_id: {type: bigint, nullable: false}
      name: {type: string}
      balance: {type: 'decimal(10,2)'}
      opened: {type: date}
      vip: {type: boolean}
";

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_reads_the_pipelines_bronze_and_silver() {
    let Some(python) = python_or_skip("pyiceberg_reads_the_pipelines_bronze_and_silver") else {
        return;
    };
    let p = floe_testkit::spawn_project(&[("crm", TABLES)]).await;
    let extracts = [
        "account_id,name,balance,opened,vip\n1,Acme,10.50,2020-01-02,yes\n2,Initech,-3.00,,no\n",
        "account_id,name,balance,opened,vip\n1,Acme,11.00,2020-01-02,yes\n3,Hooli,0.00,2021-05-06,\n",
    ];
    for (i, body) in extracts.iter().enumerate() {
        p.land(
            "crm.accounts",
            i as u32 + 1,
            &format!("accounts_{i}.csv"),
            body.as_bytes(),
        )
        .await;
        let report = p.drain().await;
        assert_eq!(report.published.len(), 1, "{report:?}");
    }
    let lake = &p.lake;
    // The second extract was applied as a row delta: silver's replaced versions are marked in a
    // position delete file, which pyiceberg must apply too.
    let silver_files = lake
        .file_stats(&"silver_crm.accounts".parse().unwrap())
        .await
        .unwrap();
    assert!(silver_files.iter().any(|f| f.deletes), "{silver_files:?}");
    let py = pyiceberg_read(
        &python,
        lake.root(),
        &["bronze_crm.accounts", "silver_crm.accounts"],
    );
    for table in ["bronze_crm.accounts", "silver_crm.accounts"] {
        let ours = rows_as_strings(
            &lake
                .query(&format!("select * from {table}"), &ReadAt::Current)
                .await
                .unwrap(),
        );
        let theirs = json_rows(&py[table]["rows"]);
        assert_eq!(theirs, ours, "{table}");
        let current = lake
            .snapshots(&table.parse().unwrap())
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.is_current)
            .unwrap();
        assert_eq!(
            py[table]["current"].as_i64(),
            Some(current.snapshot_id),
            "{table}"
        );
    }
    // Silver: 1 changed, 2 deleted (a deleted version under new_record), 3 new.
    assert_eq!(
        py["silver_crm.accounts"]["rows"].as_array().unwrap().len(),
        5
    );
}
