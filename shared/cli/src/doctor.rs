//! `floe doctor`: every statement shape floe runs on Athena, tried once on the account the
//! project names, in a scratch database that is removed after.
//!
//! The stand-in proves floe's SQL on Athena's engine (Trino); only the real service settles what
//! its front end accepts (a view holding `FOR VERSION AS OF`, a MERGE on an Iceberg table,
//! `$snapshots`), what IAM and KMS allow, and S3 and Glue behaviour. Each shape goes through the
//! same code floe's services use (the Athena lake), so a pass means floe's own statements run.

use floe_core::ports::LakeWrites;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use floe_config::Project;
use floe_core::ports::{Lake, ReadAt, WriteOptions};
use floe_core::{BatchId, ObjectRef, RunId, TableRef};

/// One shape's outcome.
struct Check {
    shape: &'static str,
    result: Result<String, String>,
    millis: u128,
}

fn rows(ids: &[i64], tag: &str) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|i| format!("{tag}{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("a well-formed batch")
}

fn batch(n: u32) -> WriteOptions {
    WriteOptions::batch(
        BatchId::for_object(&ObjectRef {
            bucket: "floe-doctor".into(),
            key: format!("doctor/{n}"),
            version_id: None,
            etag: Some(uuid::Uuid::new_v4().to_string()),
            size: 0,
        }),
        RunId::from_string(format!("doctor-{n}")),
    )
}

async fn count(lake: &dyn Lake, sql: &str, at: &ReadAt) -> Result<i64, String> {
    let batches = lake.query(sql, at).await.map_err(|e| e.to_string())?;
    let b = batches.first().ok_or("no result")?;
    b.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.value(0))
        .ok_or_else(|| "the count is not a bigint".to_owned())
}

fn expect(what: &str, got: i64, want: i64) -> Result<String, String> {
    if got == want {
        Ok(format!("{what}: {got}"))
    } else {
        Err(format!("{what}: {got}, expected {want}"))
    }
}

/// Runs every shape in a scratch namespace of `lake`, removes it, and prints the report.
/// Fails when any shape failed.
pub async fn run(project: &Project, lake: Arc<dyn Lake>) -> Result<()> {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    // A silver_ namespace: the lake gives it the project's database prefix like any other.
    let ns = floe_core::Layer::Silver.namespace(&format!("floe_doctor_{id}"));
    let t = TableRef {
        namespace: ns.clone(),
        name: "shapes".into(),
    };
    let merged = TableRef {
        namespace: ns.clone(),
        name: "merged".into(),
    };
    println!(
        "floe doctor: each Athena statement shape floe uses, once, in scratch namespace {ns} of {}",
        project
            .settings
            .athena
            .as_ref()
            .map(|a| format!("workgroup {} ({})", a.workgroup, a.region))
            .unwrap_or_default()
    );
    let mut checks: Vec<Check> = Vec::new();
    let mut snapshots: BTreeMap<&str, i64> = BTreeMap::new();
    macro_rules! check {
        ($shape:expr, $body:expr) => {{
            let started = Instant::now();
            let result: Result<String, String> = $body;
            let c = Check {
                shape: $shape,
                result,
                millis: started.elapsed().as_millis(),
            };
            println!(
                "  {} {:<58} {:>6} ms  {}",
                if c.result.is_ok() { "ok  " } else { "FAIL" },
                c.shape,
                c.millis,
                match &c.result {
                    Ok(m) | Err(m) => m,
                }
            );
            checks.push(c);
        }};
    }
    let schema = rows(&[], "").schema();
    check!(
        "CREATE TABLE (Iceberg, Hive-style DDL) + view",
        async {
            lake.ensure_namespace(&ns)
                .await
                .map_err(|e| e.to_string())?;
            lake.create_table(&t, schema.clone())
                .await
                .map_err(|e| e.to_string())?;
            Ok("created".to_owned())
        }
        .await
    );
    check!(
        "INSERT from a Glue external table over Parquet",
        async {
            let out = lake
                .append(&t, vec![rows(&[1, 2, 3], "a")], &batch(1))
                .await
                .map_err(|e| e.to_string())?;
            snapshots.insert("first", out.snapshot_id);
            expect(
                "rows",
                count(
                    lake.as_ref(),
                    &format!("SELECT count(*) FROM {t}"),
                    &ReadAt::Current,
                )
                .await?,
                3,
            )
        }
        .await
    );
    check!(
        "\"$snapshots\" metadata table",
        async {
            let s = lake.snapshots(&t).await.map_err(|e| e.to_string())?;
            if s.is_empty() {
                return Err("no snapshots".into());
            }
            Ok(format!("{} snapshot(s)", s.len()))
        }
        .await
    );
    check!(
        "DELETE + INSERT, staged behind a view FOR VERSION AS OF",
        async {
            let staged = lake
                .overwrite(
                    &t,
                    vec![rows(&[7, 8], "b")],
                    &WriteOptions {
                        stage_only: true,
                        ..batch(2)
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            let before = count(
                lake.as_ref(),
                &format!("SELECT count(*) FROM {t}"),
                &ReadAt::Current,
            )
            .await?;
            if before != 3 {
                return Err(format!("the staged write was visible ({before} rows)"));
            }
            lake.publish_snapshot(&t, staged.snapshot_id)
                .await
                .map_err(|e| e.to_string())?;
            snapshots.insert("published", staged.snapshot_id);
            expect(
                "rows after publish",
                count(
                    lake.as_ref(),
                    &format!("SELECT count(*) FROM {t}"),
                    &ReadAt::Current,
                )
                .await?,
                2,
            )
        }
        .await
    );
    check!(
        "time travel FOR VERSION AS OF",
        async {
            let first = *snapshots.get("first").ok_or("no first snapshot")?;
            expect(
                "rows at the first snapshot",
                count(
                    lake.as_ref(),
                    &format!("SELECT count(*) FROM {t}"),
                    &ReadAt::Snapshot(first),
                )
                .await?,
                3,
            )
        }
        .await
    );
    check!(
        "MERGE INTO (matched update, not matched insert)",
        async {
            lake.create_table(&merged, schema.clone())
                .await
                .map_err(|e| e.to_string())?;
            lake.append(&merged, vec![rows(&[7], "old")], &batch(3))
                .await
                .map_err(|e| e.to_string())?;
            let data = format!("{}.{}__data", merged.namespace, merged.name);
            lake.execute(
                &merged,
                &format!(
                    "MERGE INTO {data} m USING (SELECT id, name FROM {t}) s ON m.id = s.id \
                 WHEN MATCHED THEN UPDATE SET name = s.name \
                 WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)"
                ),
                &ReadAt::Current,
                &batch(4),
            )
            .await
            .map_err(|e| e.to_string())?;
            expect(
                "rows after MERGE (one updated, one inserted)",
                count(
                    lake.as_ref(),
                    &format!("SELECT count(*) FROM {merged} WHERE name LIKE 'b%'"),
                    &ReadAt::Current,
                )
                .await?,
                2,
            )
        }
        .await
    );
    let versions = TableRef {
        namespace: ns.clone(),
        name: "versions".into(),
    };
    check!(
        "MERGE moving rows between day(valid_to) partitions",
        async {
            // Silver's layout: a version closes by an update of its partition column.
            let ts = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
            let open = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("id", DataType::Int64, true),
                    Field::new("valid_to", ts, true),
                ])),
                vec![
                    Arc::new(Int64Array::from(vec![1, 2])),
                    Arc::new(
                        arrow_array::TimestampMicrosecondArray::from(vec![None::<i64>, None])
                            .with_timezone("UTC"),
                    ),
                ],
            )
            .map_err(|e| e.to_string())?;
            lake.create_partitioned_table(
                &versions,
                open.schema(),
                &[floe_core::PartitionField::day("valid_to")],
            )
            .await
            .map_err(|e| e.to_string())?;
            lake.append(&versions, vec![open], &batch(5))
                .await
                .map_err(|e| e.to_string())?;
            let data = format!("{}.{}__data", versions.namespace, versions.name);
            lake.execute(
                &versions,
                &format!(
                    "MERGE INTO {data} v USING (SELECT 1 AS id, TIMESTAMP '2026-01-02 00:00:00' AS closed \
                     UNION ALL SELECT 3, NULL) s ON v.valid_to IS NULL AND v.id = s.id AND s.closed IS NOT NULL \
                     WHEN MATCHED THEN UPDATE SET valid_to = s.closed \
                     WHEN NOT MATCHED AND s.closed IS NULL THEN INSERT (id, valid_to) VALUES (s.id, NULL)"
                ),
                &ReadAt::Current,
                &batch(6),
            )
            .await
            .map_err(|e| e.to_string())?;
            expect(
                "open versions after it (one closed, one opened)",
                count(
                    lake.as_ref(),
                    &format!("SELECT count(*) FROM {versions} WHERE valid_to IS NULL"),
                    &ReadAt::Current,
                )
                .await?,
                2,
            )
        }
        .await
    );
    check!(
        "OPTIMIZE ... BIN_PACK + VACUUM (floe maintain)",
        async {
            let r = lake
                .maintain(
                    &versions,
                    &floe_core::ports::Maintenance {
                        keep_for: chrono::Duration::days(1),
                        dry_run: false,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            if let Some(why) = r.skipped {
                return Err(format!("skipped: {why}"));
            }
            let left = count(
                lake.as_ref(),
                &format!("SELECT count(*) FROM {versions}"),
                &ReadAt::Current,
            )
            .await?;
            expect(
                &format!("{} files into {}; rows kept", r.files_before, r.files_after),
                left,
                3,
            )
        }
        .await
    );
    let mut failed = checks.iter().filter(|c| c.result.is_err()).count();
    // Clean up whatever was made, whatever happened.
    let mut cleanup = Vec::new();
    for table in [&versions, &merged, &t] {
        if lake.table_exists(table).await.unwrap_or(false)
            && let Err(e) = lake.drop_table(table).await
        {
            cleanup.push(format!("{table}: {e}"));
        }
    }
    let database = format!("{}{ns}", crate::aws::settings(project)?.database_prefix);
    let glue = crate::aws::clients(project).await?.glue;
    if let Err(e) = glue.delete_database().name(&database).send().await {
        cleanup.push(format!("Glue database {database}: {e}"));
    }
    if cleanup.is_empty() {
        println!("cleaned up: the scratch tables and database {database} are gone");
    } else {
        failed += 1;
        println!("cleanup left things behind: {}", cleanup.join("; "));
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} shape(s) failed on this account: floe's Athena path will fail where they \
             do; the messages above say why (permissions, an engine version other than 3, a \
             statement Athena refuses)",
            checks.len()
        );
    }
    println!("every shape ran: floe's Athena statements work on this account");
    Ok(())
}
