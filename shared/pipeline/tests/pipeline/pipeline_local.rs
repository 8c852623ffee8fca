//! The local pipeline end to end, through the real durable queues: files land, flow through
//! landing -> standardise -> audit, and silver holds exactly the expected history. Bad files are
//! quarantined with a report naming file, line and column, and other tables keep flowing.
//!
//! One file (over 700 lines) on purpose: every scenario drives the same runtime end to end; it
//! is the local pipeline's acceptance suite, read top to bottom.

use floe_core::ports::LakeWrites;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::ports::{Lake, Queue, ReadAt};
use floe_local::runtime::Runtime;
use floe_testkit::LocalProject;

const TABLES: &str = "\
source: nomis
tables:
  people:
    primary_key: [person_id]
    load: full
    deletes: invalidate
    columns:
      person_id: {type: bigint, nullable: false}
      first_name: {type: string}
      risk_score: {type: 'decimal(5,2)'}
      born: {type: date}
  cases:
    primary_key: [case_id]
    columns:
      case_id: {type: bigint, nullable: false}
      status: {type: string}
  visits:
    primary_key: [visit_id]
    format: jsonl
    dedupe_by: seen_at
    columns:
      visit_id: {type: bigint, nullable: false}
      place: {type: string}
      seen_at: {type: timestamp}
      confirmed: {type: boolean}
  scores:
    primary_key: [person_id, kind]
    format: parquet
    columns:
      person_id: {type: bigint, nullable: false}
      kind: {type: string, nullable: false}
      score: {type: double}
  events:
    primary_key: [event_id]
    load: cdc
    deletes: new_record
    cdc: {operation_column: op, timestamp_column: changed_at}
    columns:
      event_id: {type: int, nullable: false}
      kind: {type: string}
      op: {type: string}
      changed_at: {type: timestamp}
";

/// The local pipeline over a project holding [`TABLES`] (the shared test kit's).
async fn pipeline() -> LocalProject {
    floe_testkit::spawn_project(&[("nomis", TABLES)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn five_extracts_flow_through_the_queues_into_the_expected_history() {
    let p = pipeline().await;
    let header = "person_id,First Name,risk_score,born\n";
    let extracts = [
        (
            1,
            "1,Ada,12.50,1985-12-10\n2,Alan,40.00,1979-06-23\n3,Grace,,1990-12-09\n",
        ),
        // update (2), NULL change (3 gets a score), insert (4)
        (
            2,
            "1,Ada,12.50,1985-12-10\n2,Alan,41.00,1979-06-23\n3,Grace,7.00,1990-12-09\n4, Edsger ,1.00,\n",
        ),
        // identical to the day before: nothing changes
        (
            3,
            "1,Ada,12.50,1985-12-10\n2,Alan,41.00,1979-06-23\n3,Grace,7.00,1990-12-09\n4,Edsger,1.00,\n",
        ),
        // 2 deleted, 3's score back to NULL
        (
            4,
            "1,Ada,12.50,1985-12-10\n3,Grace,,1990-12-09\n4,Edsger,1.00,\n",
        ),
        // 2 reappears unchanged
        (
            5,
            "1,Ada,12.50,1985-12-10\n2,Alan,41.00,1979-06-23\n3,Grace,,1990-12-09\n4,Edsger,1.00,\n",
        ),
    ];
    for (day, rows) in extracts {
        p.land(
            "nomis.people",
            day,
            &format!("people_{day}.csv"),
            format!("{header}{rows}").as_bytes(),
        )
        .await;
        let report = p.drain().await;
        assert_eq!(report.published.len(), 1, "{report:?}");
        assert!(
            report.quarantined.is_empty() && report.dead_lettered.is_empty(),
            "{report:?}"
        );
    }
    let history = p
        .query("select person_id, first_name, risk_score, born, valid_from, valid_to, is_current from silver_nomis.people order by person_id, valid_from")
        .await;
    let d = |n: u32| format!("2026-11-{n:02}T06:00:00Z");
    let expected = vec![
        format!("1 | Ada | 12.50 | 1985-12-10 | {} | NULL | true", d(1)),
        format!(
            "2 | Alan | 40.00 | 1979-06-23 | {} | {} | false",
            d(1),
            d(2)
        ),
        format!(
            "2 | Alan | 41.00 | 1979-06-23 | {} | {} | false",
            d(2),
            d(4)
        ),
        format!("2 | Alan | 41.00 | 1979-06-23 | {} | NULL | true", d(5)),
        format!(
            "3 | Grace | NULL | 1990-12-09 | {} | {} | false",
            d(1),
            d(2)
        ),
        format!(
            "3 | Grace | 7.00 | 1990-12-09 | {} | {} | false",
            d(2),
            d(4)
        ),
        format!("3 | Grace | NULL | 1990-12-09 | {} | NULL | true", d(4)),
        format!("4 | Edsger | 1.00 | NULL | {} | NULL | true", d(2)),
    ];
    assert_eq!(history, expected);
    // Bronze kept every extract as delivered (the padded name included).
    assert_eq!(
        p.query("select count(*) from bronze_nomis.people").await,
        ["18"]
    );
    assert_eq!(p.query("select first_name from bronze_nomis.people where person_id = '4' and _extract_ts = timestamp '2026-11-02T06:00:00Z'").await, [" Edsger "]);
    // Each batch published one silver snapshot; the events say so.
    let published = p
        .runtime
        .events()
        .read()
        .unwrap()
        .into_iter()
        .filter(|e| e.detail_type == "floe.published")
        .count();
    assert_eq!(published, 5);
    // A replayed extract changes nothing.
    p.land(
        "nomis.people",
        3,
        "people_3.csv",
        format!("{header}{}", extracts[2].1).as_bytes(),
    )
    .await;
    p.drain().await;
    assert_eq!(
        p.query("select count(*) from silver_nomis.people").await,
        ["8"]
    );
    assert_eq!(
        p.query("select count(*) from bronze_nomis.people").await,
        ["18"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cdc_changes_become_versions_at_their_change_time() {
    let p = pipeline().await;
    let body = "event_id,kind,op,changed_at\n\
                1,arrest,I,2026-11-01T08:00:00Z\n\
                1,charge,U,2026-11-01T09:00:00Z\n\
                2,visit,I,2026-11-01T10:00:00Z\n\
                1,charge,D,2026-11-01T11:00:00Z\n";
    p.land("nomis.events", 1, "events.csv", body.as_bytes())
        .await;
    let report = p.drain().await;
    assert_eq!(report.published.len(), 1, "{report:?}");
    let rows = p
        .query("select event_id, kind, valid_from, valid_to, is_current, is_deleted from silver_nomis.events order by event_id, valid_from")
        .await;
    assert_eq!(
        rows,
        [
            "1 | arrest | 2026-11-01T08:00:00Z | 2026-11-01T09:00:00Z | false | false",
            "1 | charge | 2026-11-01T09:00:00Z | 2026-11-01T11:00:00Z | false | false",
            "1 | charge | 2026-11-01T11:00:00Z | NULL | true | true",
            "2 | visit | 2026-11-01T10:00:00Z | NULL | true | false",
        ]
    );
}

/// Lands one bad file next to a good one of another table and checks: the bad file is quarantined
/// with a report naming the file, line and column; the good one is published.
async fn quarantined(
    table: &str,
    name: &str,
    body: &[u8],
    says: &str,
    line: Option<u64>,
    column: Option<&str>,
) {
    let p = pipeline().await;
    p.land("nomis.cases", 1, "cases.csv", b"case_id,status\n1,open\n")
        .await;
    let file = p.dir.path().join(name);
    std::fs::write(&file, body).unwrap();
    let ts: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
    let key = match table {
        // A key outside the landing layout: put straight into the landing folder.
        "raw" => {
            let key = "landing/nomis/people.csv".to_owned();
            std::fs::create_dir_all(p.dir.path().join("landing/nomis")).unwrap();
            std::fs::write(p.dir.path().join(&key), body).unwrap();
            let object = floe_core::ObjectRef::local("landing", &key, body);
            p.runtime.announce(&object).await.unwrap();
            key
        }
        _ => p.runtime.land_file(&file, table, ts).await.unwrap().key,
    };
    let report = p.drain().await;
    assert_eq!(
        report.published,
        vec![("silver_nomis.cases".to_owned(), report.published[0].1)],
        "{report:?}"
    );
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let (bad, report_key) = &report.quarantined[0];
    assert_eq!(bad, &key);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.path().join(report_key)).unwrap()).unwrap();
    let messages: Vec<String> = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains(says)),
        "{messages:#?} should say {says}"
    );
    let first = &json["problems"][0];
    assert_eq!(first["line"].as_u64(), line, "{json:#}");
    assert_eq!(first["column"].as_str(), column, "{json:#}");
    assert!(
        messages[0].starts_with(&key),
        "messages name the file: {messages:?}"
    );
    // The file itself is kept in quarantine, and nothing reached bronze.
    assert!(
        p.dir
            .path()
            .join(key.replacen("landing/", "quarantine/", 1))
            .exists()
    );
    if table == "nomis.people" {
        assert!(
            !p.lake
                .table_exists(&"bronze_nomis.people".parse().unwrap())
                .await
                .unwrap()
        );
    }
    let events = p.runtime.events().read().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.detail_type == "floe.quarantined" && e.detail["file"] == key.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_csv_is_quarantined() {
    quarantined("nomis.people", "p.csv", b"person_id,first_name,risk_score,born\n1,Ada,1.00,1985-12-10\n2,\"Alan,2.00,1979-06-23\n3,Grace\n", "fields where the header has 4", Some(3), None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_column_types_are_quarantined() {
    quarantined(
        "nomis.people",
        "p.csv",
        b"person_id,first_name,risk_score,born\n1,Ada,1.00,1985-12-10\n2,Alan,lots,1979-06-23\n",
        "'lots' is not a valid decimal(5,2)",
        Some(3),
        Some("risk_score"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timestamp_beyond_what_the_engines_store_is_named_as_such() {
    // Well-formed ISO 8601, but past what nanosecond timestamps hold: the report says the
    // range, not "use ISO 8601".
    quarantined(
        "nomis.visits",
        "v.jsonl",
        b"{\"visit_id\": 1, \"place\": \"Leeds\", \"seen_at\": \"2026-11-01T06:00:00Z\", \"confirmed\": true}\n{\"visit_id\": 2, \"place\": \"York\", \"seen_at\": \"9999-12-31T23:59:59Z\", \"confirmed\": true}\n",
        "'9999-12-31T23:59:59Z' is outside the timestamps floe stores (1677-09-22 to 2262-04-10)",
        Some(2),
        Some("seen_at"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_cast_would_change_is_refused_not_rounded() {
    // risk_score is decimal(5,2): 1.999 would be stored as 2.00.
    quarantined(
        "nomis.people",
        "p.csv",
        b"person_id,first_name,risk_score,born\n1,Ada,1.50,1985-12-10\n2,Alan,1.999,1979-06-23\n",
        "'1.999' has more decimal places than decimal(5,2) keeps",
        Some(3),
        Some("risk_score"),
    )
    .await;
    // born is a date: a time of day would be cut off.
    quarantined(
        "nomis.people",
        "p.csv",
        b"person_id,first_name,risk_score,born\n1,Ada,1.50,1985-12-10T06:30:00\n",
        "has a time of day, which a date column would drop",
        Some(2),
        Some("born"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crlf_lines_are_numbered_as_an_editor_shows_them() {
    quarantined(
        "nomis.people",
        "p.csv",
        b"person_id,first_name,risk_score,born\r\n1,Ada,1.00,1985-12-10\r\n2,Alan,1.00,1979-06-23\r\n3,Grace,lots,1906-12-09\r\n",
        "'lots' is not a valid decimal(5,2)",
        Some(4),
        Some("risk_score"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_of_another_format_and_duplicate_json_keys_are_named() {
    let parquet = {
        use datafusion::arrow::array::{Int64Array, RecordBatch};
        let batch = RecordBatch::try_from_iter([(
            "person_id",
            std::sync::Arc::new(Int64Array::from(vec![1])) as _,
        )])
        .unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    };
    quarantined(
        "nomis.people",
        "p.csv",
        &parquet,
        "this is a Parquet file, but the table's format is csv",
        None,
        None,
    )
    .await;
    quarantined(
        "nomis.scores",
        "s.parquet",
        b"person_id,kind,score\n1,a,2\n",
        "not a Parquet file",
        None,
        None,
    )
    .await;
    quarantined(
        "nomis.visits",
        "v.jsonl",
        b"{\"visit_id\": 1, \"place\": \"Leeds\", \"place\": \"York\"}\n",
        "the key \"place\" appears twice",
        Some(1),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_extracts_and_byte_order_marks_are_read() {
    use std::io::Write;
    let p = pipeline().await;
    let csv = b"\xEF\xBB\xBFperson_id,first_name,risk_score,born\n1,Ada,1.50,1985-12-10\n2,Alan,2.00,1979-06-23\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv).unwrap();
    p.land("nomis.people", 1, "people.csv.gz", &gz.finish().unwrap())
        .await;
    let jsonl = "\u{feff}{\"visit_id\": 7, \"place\": \"Leeds\", \"seen_at\": \"2026-11-01T06:00:00Z\", \"confirmed\": true}\n";
    let zst = zstd::stream::encode_all(jsonl.as_bytes(), 3).unwrap();
    p.land("nomis.visits", 1, "visits.jsonl.zst", &zst).await;
    let report = p.drain().await;
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    assert_eq!(
        p.query("select first_name from silver_nomis.people order by person_id")
            .await,
        ["Ada", "Alan"]
    );
    assert_eq!(
        p.query("select place from silver_nomis.visits").await,
        ["Leeds"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_primary_key_column_is_quarantined() {
    quarantined(
        "nomis.people",
        "p.csv",
        b"first_name,risk_score,born\nAda,1.00,1985-12-10\n",
        "primary key column 'person_id' is missing",
        Some(1),
        Some("person_id"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_file_is_quarantined() {
    quarantined(
        "nomis.people",
        "p.csv",
        b"",
        "the file is empty",
        None,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_table_is_quarantined() {
    quarantined(
        "nomis.peple",
        "p.csv",
        b"person_id\n1\n",
        "unknown table 'nomis.peple' (did you mean 'nomis.people'?)",
        None,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_outside_the_landing_layout_is_quarantined() {
    quarantined(
        "raw",
        "p.csv",
        b"person_id\n1\n",
        "is not a landing key",
        None,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_key_in_a_full_extract_is_quarantined() {
    quarantined("nomis.people", "p.csv", b"person_id,first_name,risk_score,born\n1,Ada,1.00,1985-12-10\n2,Alan,2.00,1979-06-23\n1,Ada,3.00,1985-12-10\n", "duplicate key (person_id=1) first seen on line 2", Some(4), None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_differ_only_in_spelling_are_duplicates() {
    quarantined(
        "nomis.people",
        "p.csv",
        b"person_id,first_name,risk_score,born\n7,Ada,1.00,1985-12-10\n007,Ada,1.00,1985-12-10\n",
        "duplicate key (person_id=7) first seen on line 2",
        Some(3),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_utf8_is_quarantined() {
    quarantined("nomis.people", "p.csv", b"person_id,first_name,risk_score,born\n1,Ada,1.00,1985-12-10\n2,Ren\xe9e,2.00,1979-06-23\n", "not UTF-8", Some(3), Some("first_name")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_dead_lettered_and_redrive_brings_it_back() {
    let p = pipeline().await;
    p.runtime
        .queue("standardise")
        .send("{\"schema_version\": 7}")
        .await
        .unwrap();
    let report = p.drain().await;
    assert_eq!(report.dead_lettered.len(), 1, "{report:?}");
    assert!(
        report.dead_lettered[0].1.contains("schema_version 7"),
        "{report:?}"
    );
    assert_eq!(
        p.runtime.queues().depth("standardise-dlq").await.unwrap(),
        1
    );
    assert_eq!(
        p.runtime
            .queues()
            .redrive("standardise-dlq", "standardise")
            .await
            .unwrap(),
        1
    );
    assert_eq!(p.runtime.queues().depth("standardise").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_history_that_fails_its_tests_is_rejected_and_the_published_one_stays() {
    use floe_core::message::StageMessage;
    use floe_core::{BatchId, ObjectRef};

    let p = pipeline().await;
    p.land(
        "nomis.cases",
        1,
        "cases.csv",
        b"case_id,status\n1,open\n2,open\n",
    )
    .await;
    p.drain().await;
    let silver: floe_core::TableRef = "silver_nomis.cases".parse().unwrap();
    let published = p.current_snapshot("silver_nomis.cases").await;
    let before = p
        .query("select case_id, status, is_current from silver_nomis.cases order by case_id")
        .await;

    // A broken history: two current versions of case 1, an inverted interval, and a version of
    // case 2 starting while its current one is still open.
    let bad = p
        .lake
        .query(
            "select case_id, status, valid_from, valid_to, is_current, _row_hash, _batch_id from silver_nomis.cases
             union all
             select case_id, 'closed', valid_from, timestamp '2000-01-01T00:00:00Z', true, _row_hash, _batch_id from silver_nomis.cases where case_id = 1
             union all
             select case_id, 'reopened', valid_from + interval '1' day, valid_to, false, _row_hash, _batch_id from silver_nomis.cases where case_id = 2",
            &ReadAt::Current,
        )
        .await
        .unwrap();
    let object = ObjectRef::local(
        "landing",
        "landing/nomis/cases/2026-11-02T06:00:00Z/cases.csv",
        b"x",
    );
    let batch = BatchId::for_object(&object);
    let redo = StageMessage::Model {
        table: silver.clone(),
        snapshot_id: 0,
    };
    let failures = audit_staged(&p, &silver, bad, &batch, &batch, Default::default(), redo).await;
    let names: Vec<&str> = failures.iter().map(|f| f.test.as_str()).collect();
    assert!(names.contains(&"one current row per key"), "{names:?}");
    assert!(
        names.contains(&"validity intervals are not inverted"),
        "{names:?}"
    );
    let overlaps = failures
        .iter()
        .find(|f| f.test == "validity intervals do not overlap")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert!(
        overlaps.examples.iter().any(|line| line
            .replace(' ', "")
            .starts_with("|2|2026-11-01T06:00:00Z||2026-11-02")),
        "case 2's open version runs into the next: {overlaps:?}"
    );
    // Readers still see the published version, by snapshot id and by content.
    let now = p.current_snapshot("silver_nomis.cases").await;
    assert_eq!(now.snapshot_id, published.snapshot_id);
    assert_eq!(
        p.query("select case_id, status, is_current from silver_nomis.cases order by case_id")
            .await,
        before
    );
    let failed: Vec<_> = p
        .runtime
        .events()
        .read()
        .unwrap()
        .into_iter()
        .filter(|e| e.detail_type == "floe.failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("published version is unchanged")
    );
    assert_eq!(
        failed[0].detail["failures"][0]["test"],
        "one current row per key"
    ); // The refused batch is recorded, and left out of later builds of the table.
    let recorded = p
        .query("select table_name, batch_id from floe_audit.rejected_batches")
        .await;
    assert_eq!(recorded, [format!("silver_nomis.cases | {batch}")]);
}

/// The audit reconciles an applied extract (of a table whose extracts define every live key:
/// `deletes: invalidate`) by the tally standardise recorded: a history whose versions valid at
/// the extract time hold one the extract does not (a key it left out, still current) gives every
/// extract key its version, so only the tally catches it.
#[tokio::test(flavor = "multi_thread")]
async fn a_history_that_does_not_tally_with_its_extract_is_rejected() {
    use floe_core::BatchId;
    use floe_core::message::StageMessage;

    let p = pipeline().await;
    let object = p
        .land(
            "nomis.people",
            1,
            "people.csv",
            b"person_id,first_name,risk_score,born\n1,Ada,1.50,1990-01-02\n2,Alan,2.25,1991-03-04\n",
        )
        .await;
    p.drain().await;
    let silver: floe_core::TableRef = "silver_nomis.people".parse().unwrap();
    let bronze: floe_core::TableRef = "bronze_nomis.people".parse().unwrap();
    let published = p.current_snapshot("silver_nomis.people").await;
    assert!(
        published
            .summary
            .contains_key(floe_pipeline::standardise::EXTRACT_TALLY),
        "an applied extract records its tally: {:?}",
        published.summary
    );
    // The same history, plus a current version of a key the extract does not hold.
    let bad = p
        .lake
        .query(
            "select person_id, first_name, risk_score, born, valid_from, valid_to, is_current, _row_hash, _batch_id from silver_nomis.people
             union all
             select 3, first_name, risk_score, born, valid_from, valid_to, is_current, _row_hash, _batch_id from silver_nomis.people where person_id = 1",
            &ReadAt::Current,
        )
        .await
        .unwrap();
    // Staged with the published version's floe records (its tally among them).
    let properties = published
        .summary
        .iter()
        .filter(|(k, _)| {
            k.starts_with("floe.")
                && !["floe.batch-id", "floe.run-id", "floe.staged"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let redo = StageMessage::Standardise {
        object: object.clone(),
        bronze_snapshot_id: p.current_snapshot("bronze_nomis.people").await.snapshot_id,
        bronze,
        extract_ts: floe_testkit::november(1),
    };
    let failures = audit_staged(
        &p,
        &silver,
        bad,
        &BatchId::derive(&["tampered"]),
        &BatchId::for_object(&object),
        properties,
        redo,
    )
    .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0].test,
        floe_pipeline::sql::silver_tests::RECONCILES
    );
    assert!(
        failures[0].examples[0].contains("tally 3:"),
        "the tally names what it found: {failures:?}"
    );
}

/// Stages `rows` as a version of `silver` (written under `written_as`, with `properties`),
/// audits it as batch `batch` (`redo`: what a restage would run) and returns the failed tests
/// of the rejection it must be.
async fn audit_staged(
    p: &LocalProject,
    silver: &floe_core::TableRef,
    rows: Vec<datafusion::arrow::array::RecordBatch>,
    written_as: &floe_core::BatchId,
    batch: &floe_core::BatchId,
    properties: std::collections::BTreeMap<String, String>,
    redo: floe_core::message::StageMessage,
) -> Vec<floe_pipeline::audit::Failure> {
    use floe_core::RunId;
    use floe_core::message::{Envelope, StageMessage, Staged};
    use floe_core::ports::WriteOptions;
    use floe_pipeline::audit::{Audit, Verdict};

    let mut options = WriteOptions::batch(written_as.clone(), RunId::from_string("r"));
    options.stage_only = true;
    options.properties.extend(properties);
    let staged = p.lake.overwrite(silver, rows, &options).await.unwrap();
    let message = Envelope::new(
        batch.clone(),
        RunId::from_string("r"),
        StageMessage::Audit {
            table: silver.clone(),
            staged: Staged::Snapshot {
                snapshot_id: staged.snapshot_id,
            },
            redo: Box::new(redo),
        },
    );
    let clock = floe_core::ports::SystemClock;
    let verdict = Audit {
        project: p.runtime.project(),
        lake: p.lake.as_ref(),
        events: p.runtime.events(),
        clock: &clock,
    }
    .handle(&message)
    .await
    .unwrap();
    match verdict {
        Verdict::Rejected { failures, .. } => failures,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_batch_is_left_out_of_the_next_build() {
    use floe_core::ports::Clock;
    let p = pipeline().await;
    p.land("nomis.cases", 1, "cases.csv", b"case_id,status\n1,open\n")
        .await;
    p.drain().await;
    p.land("nomis.cases", 2, "cases.csv", b"case_id,status\n1,closed\n")
        .await;
    let report = p.drain().await;
    assert_eq!(report.published.len(), 1);
    // Say the audit refused day 2 (its batch is in bronze).
    let day2 = p
        .query("select distinct _batch_id from bronze_nomis.cases where _extract_ts = timestamp '2026-11-02T06:00:00Z'")
        .await;
    floe_pipeline::rejections::record(
        p.lake.as_ref(),
        &"silver_nomis.cases".parse().unwrap(),
        &floe_core::BatchId::parse(&day2[0]).unwrap(),
        &floe_core::RunId::from_string("r"),
        floe_core::ports::SystemClock.now(),
        "test",
    )
    .await
    .unwrap();
    p.land(
        "nomis.cases",
        3,
        "cases.csv",
        b"case_id,status\n1,open\n2,new\n",
    )
    .await;
    let report = p.drain().await;
    assert_eq!(report.published.len(), 1, "{report:?}");
    // Day 2's 'closed' is gone from the history: case 1 stayed open from day 1.
    assert_eq!(
        p.query("select case_id, status, valid_from, valid_to from silver_nomis.cases order by case_id, valid_from").await,
        ["1 | open | 2026-11-01T06:00:00Z | NULL", "2 | new | 2026-11-03T06:00:00Z | NULL"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_with_dedupe_by_keep_the_latest_row_per_key() {
    let p = pipeline().await;
    let body = br#"{"visit_id": 1, "place": "Leeds", "seen_at": "2026-11-01T08:00:00Z", "confirmed": "yes"}
{"visit_id": 1, "place": "York", "seen_at": "2026-11-01T09:00:00Z", "confirmed": false}
{"visit_id": 2, "place": "Hull", "seen_at": null, "confirmed": true}
{"VisitId": 3, "Place": "  ", "SeenAt": "2026-11-01T07:00:00Z", "Confirmed": "n"}
"#;
    p.land("nomis.visits", 1, "visits.jsonl", body).await;
    let report = p.drain().await;
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(
        p.query(
            "select visit_id, place, seen_at, confirmed from silver_nomis.visits order by visit_id"
        )
        .await,
        [
            "1 | York | 2026-11-01T09:00:00Z | false",
            "2 | Hull | NULL | true",
            "3 | NULL | 2026-11-01T07:00:00Z | false",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_files_land_with_a_composite_key() {
    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let p = pipeline().await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 1, 2])),
            Arc::new(StringArray::from(vec!["risk", "need", "risk"])),
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.25)])),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    p.land("nomis.scores", 1, "scores.parquet", &bytes).await;
    let report = p.drain().await;
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(
        p.query("select person_id, kind, score, is_current from silver_nomis.scores order by person_id, kind").await,
        ["1 | need | NULL | true", "1 | risk | 0.5 | true", "2 | risk | 2.25 | true"]
    );
    // Not Parquet at all: quarantined with a clear reason.
    p.land(
        "nomis.scores",
        2,
        "scores.parquet",
        b"person_id,kind\n1,risk\n",
    )
    .await;
    let report = p.drain().await;
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_still_being_written_into_landing_is_not_taken_yet() {
    let p = pipeline().await;
    let path = p
        .dir
        .path()
        .join("landing/nomis/cases/2026-11-01T06:00:00Z/cases.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "case_id,status\n1,open\n").unwrap();
    assert!(
        p.runtime.unannounced().await.unwrap().is_empty(),
        "first sight: wait a scan"
    );
    let stable = p.runtime.unannounced().await.unwrap();
    assert_eq!(stable.len(), 1, "unchanged over two scans: taken");
    // It grows (a copy still running): not taken until it stops changing.
    std::fs::write(&path, "case_id,status\n1,open\n2,open\n").unwrap();
    assert!(p.runtime.unannounced().await.unwrap().is_empty());
    let grown = p.runtime.unannounced().await.unwrap();
    assert_eq!(grown.len(), 1);
    assert_ne!(grown[0].etag, stable[0].etag);
    p.runtime.mark_announced(&grown[0]).await.unwrap();
    assert!(
        p.runtime.unannounced().await.unwrap().is_empty(),
        "announced files are not taken again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_order_extracts_are_applied_and_a_late_one_is_spliced_in_under_deletes_ignore() {
    let p = pipeline().await;
    p.land(
        "nomis.cases",
        1,
        "cases.csv",
        b"case_id,status\n1,open\n2,open\n",
    )
    .await;
    p.drain().await;
    p.land(
        "nomis.cases",
        3,
        "cases.csv",
        b"case_id,status\n1,closed\n3,new\n",
    )
    .await;
    p.drain().await;
    assert_eq!(
        p.published_steps("silver_nomis.cases").await,
        ["apply", "apply"]
    );
    // Day 2 arrives after day 3: spliced in where it changes the history (keys 1 and 2), with
    // each key's next observation read from bronze (`cases` keeps `deletes: ignore`).
    p.land(
        "nomis.cases",
        2,
        "cases.csv",
        b"case_id,status\n1,open\n2,gone soon\n",
    )
    .await;
    p.drain().await;
    // And the next in-order extract is applied to the spliced history.
    p.land(
        "nomis.cases",
        4,
        "cases.csv",
        b"case_id,status\n1,closed\n3,new\n4,new\n",
    )
    .await;
    p.drain().await;
    assert_eq!(
        p.published_steps("silver_nomis.cases").await,
        ["apply", "apply", "late", "apply"]
    );
    assert_eq!(
        p.query(
            "select case_id, status, valid_from, valid_to, is_current from silver_nomis.cases \
             order by case_id, valid_from"
        )
        .await,
        [
            "1 | open | 2026-11-01T06:00:00Z | 2026-11-03T06:00:00Z | false",
            "1 | closed | 2026-11-03T06:00:00Z | NULL | true",
            "2 | open | 2026-11-01T06:00:00Z | 2026-11-02T06:00:00Z | false",
            // `cases` keeps the default `deletes: ignore`: a missing key stays current.
            "2 | gone soon | 2026-11-02T06:00:00Z | NULL | true",
            "3 | new | 2026-11-03T06:00:00Z | NULL | true",
            "4 | new | 2026-11-04T06:00:00Z | NULL | true",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_extract_is_spliced_into_the_keys_it_changes() {
    // `people` records deletions (`deletes: invalidate`), so silver alone says what each key was
    // at every extract: a late extract changes only its keys' versions around its time.
    let p = pipeline().await;
    let people = |rows: &str| format!("person_id,first_name,risk_score,born\n{rows}");
    for (day, rows) in [
        (
            1,
            "1,Ada,1.00,1990-01-01\n2,Alan,2.00,1991-01-01\n3,Grace,3.00,1992-01-01\n",
        ),
        (
            3,
            "1,Ada,1.00,1990-01-01\n2,Alan,2.50,1991-01-01\n3,Grace,3.00,1992-01-01\n",
        ),
        // Day 2, late: Alan already at 2.50, Grace missing, Edsger new.
        (
            2,
            "1,Ada,1.00,1990-01-01\n2,Alan,2.50,1991-01-01\n4,Edsger,4.00,1993-01-01\n",
        ),
    ] {
        p.land(
            "nomis.people",
            day,
            &format!("people_{day}.csv"),
            people(rows).as_bytes(),
        )
        .await;
        p.drain().await;
    }
    assert_eq!(
        p.published_steps("silver_nomis.people").await,
        ["apply", "apply", "late"]
    );
    let history = "select person_id, risk_score, valid_from, valid_to, is_current \
                   from silver_nomis.people order by person_id, valid_from";
    let day = |d: u32| format!("2026-11-{d:02}T06:00:00Z");
    assert_eq!(
        p.query(history).await,
        [
            format!("1 | 1.00 | {} | NULL | true", day(1)),
            // Alan's change moves from day 3 to day 2.
            format!("2 | 2.00 | {} | {} | false", day(1), day(2)),
            format!("2 | 2.50 | {} | NULL | true", day(2)),
            // Grace is gone on day 2 and back on day 3.
            format!("3 | 3.00 | {} | {} | false", day(1), day(2)),
            format!("3 | 3.00 | {} | NULL | true", day(3)),
            // Edsger was there on day 2 only.
            format!("4 | 4.00 | {} | {} | false", day(2), day(3)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn extracts_landed_together_rebuild_then_the_next_one_applies() {
    let p = pipeline().await;
    // Two extracts land before either is standardised: neither may be applied alone.
    p.land("nomis.cases", 1, "a.csv", b"case_id,status\n1,open\n")
        .await;
    p.land(
        "nomis.cases",
        2,
        "b.csv",
        b"case_id,status\n1,closed\n2,open\n",
    )
    .await;
    p.drain().await;
    p.land(
        "nomis.cases",
        3,
        "c.csv",
        b"case_id,status\n1,closed\n2,won\n",
    )
    .await;
    p.drain().await;
    let steps = p.published_steps("silver_nomis.cases").await;
    assert_eq!(steps.last().map(String::as_str), Some("apply"), "{steps:?}");
    assert!(
        steps[..steps.len() - 1].iter().all(|s| s == "rebuild"),
        "{steps:?}"
    );
    assert_eq!(
        p.query("select case_id, status, valid_from, valid_to from silver_nomis.cases order by case_id, valid_from")
            .await,
        [
            "1 | open | 2026-11-01T06:00:00Z | 2026-11-02T06:00:00Z",
            "1 | closed | 2026-11-02T06:00:00Z | NULL",
            "2 | open | 2026-11-02T06:00:00Z | 2026-11-03T06:00:00Z",
            "2 | won | 2026-11-03T06:00:00Z | NULL",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_change_rebuilds_the_history_under_the_new_rules() {
    let p = pipeline().await;
    p.land(
        "nomis.cases",
        1,
        "cases.csv",
        b"case_id,status\n1,open\n2,open\n",
    )
    .await;
    p.drain().await;
    p.land("nomis.cases", 2, "cases.csv", b"case_id,status\n1,open\n")
        .await;
    p.drain().await;
    // Under `deletes: ignore` case 2 stays current. Switch the table to `invalidate`.
    let tables = TABLES.replacen(
        "  cases:\n    primary_key: [case_id]\n",
        "  cases:\n    primary_key: [case_id]\n    deletes: invalidate\n",
        1,
    );
    assert_ne!(tables, TABLES);
    std::fs::write(p.dir.path().join("tables/nomis.yaml"), tables).unwrap();
    let project = Project::load(p.dir.path()).unwrap();
    let runtime = Runtime::open(project, p.lake.clone()).await.unwrap();
    let file = p.dir.path().join("day3.csv");
    std::fs::write(&file, b"case_id,status\n1,open\n").unwrap();
    runtime
        .land_file(
            &file,
            "nomis.cases",
            "2026-11-03T06:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    runtime.drain(false, |m| eprintln!("{m}")).await.unwrap();
    let steps = p.published_steps("silver_nomis.cases").await;
    assert_eq!(steps, ["apply", "apply", "rebuild"]);
    // The whole history follows the new rule: case 2 closed when day 2 left it out, not day 3.
    assert_eq!(
        p.query("select case_id, valid_from, valid_to from silver_nomis.cases order by case_id, valid_from")
            .await,
        [
            "1 | 2026-11-01T06:00:00Z | NULL",
            "2 | 2026-11-01T06:00:00Z | 2026-11-02T06:00:00Z",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_on_the_wrong_queue_is_dead_lettered_naming_its_queue() {
    use floe_core::message::{Envelope, StageMessage};
    let p = pipeline().await;
    let model = Envelope::new(
        floe_core::BatchId::derive(&["misplaced"]),
        floe_core::RunId::new(),
        StageMessage::Model {
            table: "silver_nomis.people".parse().unwrap(),
            snapshot_id: 1,
        },
    );
    p.runtime
        .queue("standardise")
        .send(&model.to_json())
        .await
        .unwrap();
    let report = p.drain().await;
    assert_eq!(report.dead_lettered.len(), 1, "{report:?}");
    let (stage, reason) = &report.dead_lettered[0];
    assert_eq!(stage, "standardise");
    assert!(
        reason.contains("the standardise queue does not take this message")
            && reason.contains("it is for the modelling queue"),
        "{reason}"
    );
    let events = p.runtime.events().read().unwrap();
    let failed = events
        .iter()
        .find(|e| e.detail_type == "floe.failed")
        .expect("a floe.failed event");
    assert_eq!(failed.detail["dead_letter_queue"], "standardise-dlq");
}
