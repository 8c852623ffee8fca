//! The lake on Athena + Glue + S3, end to end over HTTP: S3 and Glue are a moto server, Athena
//! is a scripted endpoint (moto's Athena runs no SQL), so the test pins the exact statements the
//! lake submits for a landed batch, a replay, a staged rebuild, an audit read and a publish, and
//! checks each parses as Athena SQL. What Athena's own DDL would do to the Glue catalog is done
//! here by hand.

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use aws_sdk_athena::config::retry::RetryConfig;
use floe_aws::athena::{Athena, Pacing};
use floe_aws::clients::Connection;
use floe_aws::lake::AthenaLake;
use floe_core::ports::{Lake, ObjectStore, ReadAt, WriteOptions};
use floe_core::{BatchId, Error, ObjectRef, RunId, TableRef};
use floe_tests::aws::{Moto, REGION};
use floe_tests::scripted::{Reply, Scripted};
use serde_json::{Value, json};

fn empty() -> Reply {
    Reply::ok(json!({"ResultSet": {"Rows": [], "ResultSetMetadata": {"ColumnInfo": []}}}))
}

fn rows(columns: &[(&str, &str)], rows: &[&[Option<&str>]]) -> Reply {
    let cell = |v: &Option<&str>| match v {
        Some(v) => json!({"VarCharValue": v}),
        None => json!({}),
    };
    let header = json!({"Data": columns.iter().map(|(n, _)| json!({"VarCharValue": n})).collect::<Vec<_>>()});
    let mut all = vec![header];
    all.extend(
        rows.iter()
            .map(|r| json!({"Data": r.iter().map(cell).collect::<Vec<_>>()})),
    );
    Reply::ok(json!({"ResultSet": {
        "Rows": all,
        "ResultSetMetadata": {"ColumnInfo": columns.iter().map(|(n, t)| json!({"Name": n, "Type": t})).collect::<Vec<_>>()}
    }}))
}

fn dml(count: i64) -> Reply {
    Reply::ok(
        json!({"UpdateCount": count, "ResultSet": {"Rows": [], "ResultSetMetadata": {"ColumnInfo": []}}}),
    )
}

const SNAPSHOT_COLS: &[(&str, &str)] = &[
    ("snapshot_id", "bigint"),
    ("parent_id", "bigint"),
    ("_col2", "varchar"),
    ("operation", "varchar"),
    ("_col4", "json"),
];

fn snapshots(n: usize) -> Reply {
    let all: [&[Option<&str>]; 3] = [
        &[
            Some("101"),
            None,
            Some("2026-11-24 10:00:00.000 UTC"),
            Some("append"),
            Some(r#"{"added-records":"2","total-records":"2"}"#),
        ],
        &[
            Some("102"),
            Some("101"),
            Some("2026-11-24 11:00:00.000 UTC"),
            Some("delete"),
            Some(r#"{"total-records":"0"}"#),
        ],
        &[
            Some("103"),
            Some("102"),
            Some("2026-11-24 11:00:01.000 UTC"),
            Some("append"),
            Some(r#"{"added-records":"5","total-records":"5"}"#),
        ],
    ];
    rows(SNAPSHOT_COLS, &all[..n])
}

/// A lake bucket on moto, a scripted Athena answering `results` in order (every query
/// succeeds), and the Athena lake over both at `s3://<bucket><warehouse>`.
struct Setup {
    clients: floe_aws::clients::Clients,
    prefix: String,
    bucket: String,
    scripted: Scripted,
    lake: AthenaLake,
}

async fn setup(moto: &Moto, results: Vec<Reply>, warehouse: &str) -> Setup {
    let clients = moto.connection().clients().await;
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let bucket = format!("{prefix}-lake");
    floe_tests::aws::create_bucket(&clients, &bucket).await;
    let scripted = Scripted::start().await;
    scripted
        .on(
            "StartQueryExecution",
            vec![Reply::ok(json!({"QueryExecutionId": "q"}))],
        )
        .on(
            "GetQueryExecution",
            vec![Reply::ok(
                json!({"QueryExecution": {"QueryExecutionId": "q", "StatementType": "DML",
                "Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": 1000}}}),
            )],
        )
        .on("GetQueryResults", results);
    let config = Connection::stand_in(&scripted.endpoint, REGION)
        .sdk_config()
        .await;
    let athena_client = aws_sdk_athena::Client::from_conf(
        aws_sdk_athena::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let athena = Athena::new(athena_client, "floe").with_pacing(Pacing {
        first_poll: std::time::Duration::from_millis(5),
        ..Pacing::default()
    });
    let lake = AthenaLake::new(
        athena,
        clients.glue.clone(),
        clients.s3.clone(),
        &format!("s3://{bucket}{warehouse}"),
    )
    .unwrap();
    Setup {
        clients,
        prefix,
        bucket,
        scripted,
        lake,
    }
}

#[tokio::test]
async fn the_athena_lake_lands_replays_stages_audits_and_publishes_with_these_statements() {
    let Some(python) = floe_tests::python_or_skip("athena_lake") else {
        return;
    };
    let Some(moto) = Moto::start_or_skip("athena_lake") else {
        return;
    };
    let count = &[("_col0", "bigint")];
    let results = vec![
        empty(),                      // 1 create table
        empty(),                      // 2 view
        rows(count, &[&[Some("0")]]), // 3 holds the batch?
        dml(2),                       // 4 insert
        snapshots(1),                 // 5 latest
        rows(count, &[&[Some("2")]]), // 6 replay: holds the batch
        snapshots(1),                 // 7 latest
        empty(),                      // 8 publish 101
        empty(),                      // 9 delete
        dml(5),                       // 10 insert from the query
        snapshots(3),                 // 11 latest
        snapshots(3),                 // 12 snapshots()
        rows(count, &[&[Some("0")]]), // 13 audit read
        empty(),                      // 14 publish 103
    ];
    let Setup {
        clients,
        prefix,
        bucket,
        scripted,
        lake,
    } = setup(&moto, results, "/warehouse").await;
    let namespace = format!("bronze_{prefix}");
    let table: TableRef = format!("{namespace}.people").parse().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("_batch_id", DataType::Utf8, false),
    ]));

    // Create: DDL and view through Athena; then the catalog as Athena's DDL would leave it.
    lake.create_table(&table, schema.clone()).await.unwrap();
    for (name, kind) in [
        ("people__data", "EXTERNAL_TABLE"),
        ("people", "VIRTUAL_VIEW"),
    ] {
        let cols = schema
            .fields()
            .iter()
            .map(|f| {
                aws_sdk_glue::types::Column::builder()
                    .name(f.name())
                    .r#type("string")
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        clients
            .glue
            .create_table()
            .database_name(&namespace)
            .table_input(
                aws_sdk_glue::types::TableInput::builder()
                    .name(name)
                    .table_type(kind)
                    .storage_descriptor(
                        aws_sdk_glue::types::StorageDescriptor::builder()
                            .set_columns(Some(cols))
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    assert!(lake.table_exists(&table).await.unwrap());
    assert!(matches!(
        lake.create_table(&table, schema.clone()).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(
        lake.list_tables(Some(&namespace)).await.unwrap(),
        vec![table.clone()]
    );

    // A landed batch, then its replay.
    let batch = BatchId::for_object(&ObjectRef::local(
        "landing",
        "landing/s/people/2026-11-01/x.csv",
        b"x",
    ));
    let rows_in = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["1", "2"])),
            Arc::new(StringArray::from(vec![batch.as_str(); 2])),
        ],
    )
    .unwrap();
    let options = WriteOptions::batch(batch.clone(), RunId::new());
    let first = lake
        .append(&table, vec![rows_in.clone()], &options)
        .await
        .unwrap();
    assert_eq!(
        (first.snapshot_id, first.rows_added, first.already_committed),
        (101, 2, false)
    );
    let replay = lake.append(&table, vec![rows_in], &options).await.unwrap();
    assert!(replay.already_committed);
    let incoming = floe_aws::s3::S3Store::new(clients.s3.clone(), &bucket);
    assert!(
        incoming
            .list("warehouse/_floe/incoming/")
            .await
            .unwrap()
            .is_empty(),
        "the Parquet file is removed"
    );
    let temp = clients
        .glue
        .get_tables()
        .database_name("floe_incoming")
        .send()
        .await
        .unwrap();
    assert!(
        temp.table_list().is_empty(),
        "the temporary table is dropped"
    );

    // Publish 101; a staged rebuild from a query; a conflicting one refused before any SQL runs.
    lake.publish_snapshot(&table, 101).await.unwrap();
    let mut staged = WriteOptions::batch(batch.clone(), RunId::new());
    staged.stage_only = true;
    staged.expected_snapshot_id = Some(101);
    let outcome = lake
        .write_query(
            &table,
            &format!("SELECT id, _batch_id FROM {table}"),
            &ReadAt::Current,
            &staged,
        )
        .await
        .unwrap();
    assert_eq!((outcome.snapshot_id, outcome.rows_added), (103, 5));
    staged.expected_snapshot_id = Some(999);
    assert!(matches!(
        lake.write_query(&table, "SELECT 1", &ReadAt::Current, &staged)
            .await,
        Err(Error::CommitConflict { .. })
    ));
    let snaps = lake.snapshots(&table).await.unwrap();
    let flags: Vec<(i64, bool, bool)> = snaps
        .iter()
        .map(|s| (s.snapshot_id, s.is_current, s.published))
        .collect();
    assert_eq!(
        flags,
        [(101, true, true), (102, false, false), (103, false, false)],
        "readers still see 101"
    );
    assert_eq!(snaps[2].added_rows, Some(5));

    // The audit reads the staged snapshot; then publishes it.
    let at = ReadAt::Pinned([(table.clone(), 103)].into());
    let audit = lake
        .query(
            &format!("SELECT count(*) FROM {table} WHERE id IS NULL"),
            &at,
        )
        .await
        .unwrap();
    assert_eq!(audit[0].num_rows(), 1);
    lake.publish_snapshot(&table, 103).await.unwrap();
    let pin: Value = serde_json::from_slice(
        &incoming
            .get(&format!(
                "warehouse/_floe/published/{namespace}/people.json"
            ))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pin["snapshot_id"], 103);

    let statements: Vec<String> = scripted
        .requests("StartQueryExecution")
        .iter()
        .map(|r| r.body["QueryString"].as_str().unwrap().to_owned())
        .collect();
    let data = format!("{namespace}.people__data");
    let expect = [
        format!(
            "CREATE TABLE IF NOT EXISTS {data} (`id` string, `_batch_id` string) LOCATION 's3://{bucket}/warehouse/{namespace}/people/'"
        ),
        format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM {data}"),
        format!("SELECT count(*) FROM {data} WHERE \"_batch_id\" = '{batch}'"),
        format!(
            "INSERT INTO {data} (\"id\", \"_batch_id\") SELECT \"id\", \"_batch_id\" FROM floe_incoming.t_"
        ),
        "SELECT snapshot_id".to_owned(),
        format!("SELECT count(*) FROM {data} WHERE \"_batch_id\" = '{batch}'"),
        "SELECT snapshot_id".to_owned(),
        format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM {data} FOR VERSION AS OF 101"),
        format!("DELETE FROM {data}"),
        format!("INSERT INTO {data} SELECT * FROM (\nSELECT id, _batch_id FROM {table}\n) q"),
        "SELECT snapshot_id".to_owned(),
        "SELECT snapshot_id".to_owned(),
        format!("SELECT count(*) FROM {data} FOR VERSION AS OF 103 WHERE id IS NULL"),
        format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM {data} FOR VERSION AS OF 103"),
    ];
    assert_eq!(statements.len(), expect.len(), "{statements:#?}");
    for (got, want) in statements.iter().zip(&expect) {
        assert!(
            got.starts_with(want.as_str()),
            "\n got: {got}\nwant: {want}..."
        );
    }

    // Every statement is Athena SQL.
    floe_tests::athena_sql_check(&python, &json!({"statements": statements}));
}

#[tokio::test]
async fn a_first_staged_write_is_hidden_from_readers_until_published() {
    let Some(moto) = Moto::start_or_skip("athena_lake") else {
        return;
    };
    let Setup {
        prefix,
        scripted,
        lake,
        ..
    } = setup(
        &moto,
        vec![
            empty(),
            dml(0),
            dml(5),
            snapshots(1),
            snapshots(1),
            empty(),
            snapshots(1),
        ],
        "",
    )
    .await;
    let table: TableRef = format!("silver_{prefix}.people").parse().unwrap();
    let staged = WriteOptions {
        stage_only: true,
        ..Default::default()
    };
    let outcome = lake
        .write_query(&table, "SELECT 1 AS id", &ReadAt::Current, &staged)
        .await
        .unwrap();
    assert_eq!(outcome.snapshot_id, 101);
    let snaps = lake.snapshots(&table).await.unwrap();
    assert!(
        !snaps[0].is_current && !snaps[0].published,
        "a staged first write is not what readers see"
    );
    lake.publish_snapshot(&table, 101).await.unwrap();
    let snaps = lake.snapshots(&table).await.unwrap();
    assert!(snaps[0].is_current && snaps[0].published);
    let statements: Vec<String> = scripted
        .requests("StartQueryExecution")
        .iter()
        .map(|r| r.body["QueryString"].as_str().unwrap().to_owned())
        .collect();
    let data = format!("{table}__data");
    assert_eq!(
        statements[0],
        format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM {data} WHERE FALSE")
    );
    assert_eq!(statements[1], format!("DELETE FROM {data}"));
    assert!(statements[2].starts_with(&format!("INSERT INTO {data}")));
    assert_eq!(
        statements[5],
        format!("CREATE OR REPLACE VIEW {table} AS SELECT * FROM {data} FOR VERSION AS OF 101")
    );
}

#[tokio::test]
async fn glue_table_parameters_generate_models_with_their_parameters() {
    let Some(moto) = Moto::start_or_skip("athena_lake") else {
        return;
    };
    let Setup {
        clients,
        prefix,
        lake,
        ..
    } = setup(&moto, vec![], "/warehouse").await;
    // A project whose table opts in to no template in YAML; Glue says which and with what.
    let dir = tempfile::tempdir().unwrap();
    let write = |p: &str, s: &str| {
        let f = dir.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    };
    write(
        "floe.yaml",
        &format!(
            "name: g\nengine: athena\nathena: {{region: {REGION}, workgroup: floe, output_location: 's3://x/r/', landing_bucket: land, lake_location: 's3://x/w'}}\n"
        ),
    );
    write(
        "tables/s.yaml",
        &format!(
            "source: {prefix}\ntables:\n  people:\n    primary_key: [id]\n    columns:\n      id: {{type: bigint}}\n"
        ),
    );
    write(
        "templates/current.sql",
        "{{ config(materialized=params.materialized | default('table')) }}\nSELECT * FROM {{ source(table.source, table.name) }} WHERE is_current",
    );
    let project = floe_config::Project::load(dir.path()).unwrap();
    let namespace = format!("silver_{prefix}");
    clients
        .glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&namespace)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (name, params) in [
        (
            "people__data",
            vec![
                ("floe.generate.current", "true"),
                ("floe.generate.current.materialized", "view"),
            ],
        ),
        ("people", vec![]),
    ] {
        let mut input = aws_sdk_glue::types::TableInput::builder().name(name);
        for (k, v) in params {
            input = input.parameters(k, v);
        }
        clients
            .glue
            .create_table()
            .database_name(&namespace)
            .table_input(input.build().unwrap())
            .send()
            .await
            .unwrap();
    }
    let models = floe_pipeline::modelling::load_models(&project, &lake)
        .await
        .unwrap();
    let name = format!("current_{prefix}_people");
    let m = models.get(&name).unwrap();
    assert_eq!(m.materialized.name(), "view", "the parameter from Glue");
    // Without the Glue opt-in there is no model.
    assert!(
        floe_models::Models::load(&project)
            .unwrap()
            .models
            .is_empty()
    );
}
