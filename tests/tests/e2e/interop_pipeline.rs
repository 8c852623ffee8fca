//! Interop for what the pipeline writes: pyiceberg reads the bronze and silver tables of a local
//! pipeline run (staged then published snapshots, text and typed columns) with floe's rows.

use std::sync::Arc;

use floe_config::Project;
use floe_core::ports::{Lake, ReadAt};
use floe_lake::LocalLake;
use floe_local::runtime::Runtime;
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
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("floe.yaml"), "name: interop\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tables")).unwrap();
    std::fs::write(dir.path().join("tables/crm.yaml"), TABLES).unwrap();
    let project = Project::load(dir.path()).unwrap();
    let lake = Arc::new(LocalLake::open(&project.settings.lake_dir).await.unwrap());
    let runtime = Runtime::open(project, lake.clone()).await.unwrap();
    let extracts = [
        "account_id,name,balance,opened,vip\n1,Acme,10.50,2020-01-02,yes\n2,Initech,-3.00,,no\n",
        "account_id,name,balance,opened,vip\n1,Acme,11.00,2020-01-02,yes\n3,Hooli,0.00,2021-05-06,\n",
    ];
    for (i, body) in extracts.iter().enumerate() {
        let file = dir.path().join(format!("accounts_{i}.csv"));
        std::fs::write(&file, body).unwrap();
        let ts = format!("2026-11-0{}T06:00:00Z", i + 1).parse().unwrap();
        runtime.land_file(&file, "crm.accounts", ts).await.unwrap();
        let report = runtime.drain(false, |_| {}).await.unwrap();
        assert_eq!(report.published.len(), 1, "{report:?}");
    }
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
