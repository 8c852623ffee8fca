//! The Athena adapter over HTTP: against the Athena stand-in (real queries on Trino: results,
//! errors, cancellation at the deadline), and against a scripted endpoint for what no engine
//! shows on demand (throttling, a retryable failure, pages of a given shape). The SDK's own retries are off here, so what
//! is retried is floe's doing.

use std::time::{Duration, Instant};

use aws_sdk_athena::config::retry::RetryConfig;
use floe_aws::athena::{Athena, Pacing};
use floe_aws::clients::Connection;
use floe_core::Error;
use floe_tests::athena_local::StandIn;
use floe_tests::aws::REGION;
use floe_tests::scripted::{Reply, Scripted};
use serde_json::{Value, json};

async fn athena_at(endpoint: &str, pacing: Pacing) -> Athena {
    let config = Connection::stand_in(endpoint, REGION).sdk_config().await;
    let client = aws_sdk_athena::Client::from_conf(
        aws_sdk_athena::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    Athena::new(client, "primary")
        .with_output_location("s3://results/")
        .with_pacing(pacing)
}

fn quick() -> Pacing {
    Pacing {
        first_poll: Duration::from_millis(10),
        max_poll: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
        attempts: 4,
        first_backoff: Duration::from_millis(40),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/athena/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn execution(id: &str, state: &str, extra: Value) -> Reply {
    let mut status = json!({"State": state, "SubmissionDateTime": 1.7e9});
    if let Value::Object(m) = extra {
        status.as_object_mut().unwrap().extend(m);
    }
    Reply::ok(json!({"QueryExecution": {
        "QueryExecutionId": id,
        "Query": "select 1",
        "StatementType": "DML",
        "WorkGroup": "primary",
        "Status": status,
        "Statistics": {"EngineExecutionTimeInMillis": 1234, "DataScannedInBytes": 52428800},
    }}))
}

#[tokio::test]
async fn the_stand_in_runs_queries_to_their_results_errors_and_cancellation() {
    let Some(stand_in) = StandIn::or_skip("athena on the stand-in") else {
        return;
    };
    let world = stand_in.lake().await;
    let athena = Athena::new(world.clients.athena.clone(), &world.workgroup).with_pacing(Pacing {
        timeout: Duration::from_secs(120),
        ..quick()
    });
    // Rows as Athena renders them, typed columns, no header row.
    let r = athena
        .execute(
            "select name, count(*) as n, sum(x) as total from (values ('people', 1.5), ('cases', 2.0), ('cases', 3.0)) as v(name, x) group by 1 order by 1",
            None,
        )
        .await
        .unwrap();
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["name", "n", "total"]);
    assert_eq!(r.columns[1].data_type, "bigint");
    assert_eq!(r.columns[2].data_type, "decimal");
    assert_eq!((r.columns[2].precision, r.columns[2].scale), (38, 1));
    assert_eq!(
        r.rows,
        vec![
            vec![
                Some("cases".to_owned()),
                Some("2".to_owned()),
                Some("5.0".to_owned())
            ],
            vec![
                Some("people".to_owned()),
                Some("1".to_owned()),
                Some("1.5".to_owned())
            ],
        ]
    );
    assert_eq!(r.executions, 1);
    // A syntax error is the query's fault: reported with Athena's reason, not retried.
    let err = athena.execute("selec 1", None).await.unwrap_err();
    assert!(matches!(err, Error::Sql(_)), "{err}");
    assert!(err.to_string().contains("SYNTAX_ERROR"), "{err}");
    // A query past its deadline is cancelled in the engine, and reported as transient.
    let slow = Athena::new(world.clients.athena.clone(), &world.workgroup).with_pacing(Pacing {
        timeout: Duration::from_secs(2),
        ..quick()
    });
    let err = slow
        .execute(
            "select count(*) from unnest(sequence(1, 10000)) a(x) cross join unnest(sequence(1, 10000)) b(y) cross join unnest(sequence(1, 1000)) c(z)",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("cancelled"),
        "{err}"
    );
    let ids = world
        .clients
        .athena
        .list_query_executions()
        .work_group(&world.workgroup)
        .send()
        .await
        .unwrap();
    let last = world
        .clients
        .athena
        .get_query_execution()
        .query_execution_id(ids.query_execution_ids()[0].clone())
        .send()
        .await
        .unwrap();
    let state = last
        .query_execution()
        .and_then(|q| q.status())
        .and_then(|s| s.state())
        .cloned();
    assert_eq!(
        state,
        Some(aws_sdk_athena::types::QueryExecutionState::Cancelled)
    );
}

#[tokio::test]
async fn results_are_paged_through_every_next_token() {
    let server = Scripted::start().await;
    server
        .on(
            "StartQueryExecution",
            vec![Reply::ok(json!({"QueryExecutionId": "q-1"}))],
        )
        .on(
            "GetQueryExecution",
            vec![
                execution("q-1", "QUEUED", json!({})),
                execution("q-1", "RUNNING", json!({})),
                execution("q-1", "SUCCEEDED", json!({})),
            ],
        )
        .on(
            "GetQueryResults",
            (1..=3)
                .map(|i| Reply::ok(fixture(&format!("get_query_results_page{i}.json"))))
                .collect(),
        );
    let athena = athena_at(&server.endpoint, quick()).await;
    let r = athena
        .execute("select * from silver_nomis.people", None)
        .await
        .unwrap();
    let ids: Vec<&str> = r
        .rows
        .iter()
        .map(|row| row[0].as_deref().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5"],
        "all pages, header dropped once"
    );
    assert_eq!(r.rows[1][1], None, "a value without VarCharValue is NULL");
    assert_eq!(r.columns[2].data_type, "timestamp(6)");
    assert_eq!(
        r.bytes_scanned, 52_428_800,
        "DataScannedInBytes is recorded"
    );
    assert_eq!(r.engine_ms, 1234);
    let tokens: Vec<Value> = server
        .requests("GetQueryResults")
        .iter()
        .map(|q| q.body["NextToken"].clone())
        .collect();
    assert_eq!(
        tokens,
        [Value::Null, json!("AYAB-page-2"), json!("AYAB-page-3")]
    );
    assert_eq!(
        server.requests("GetQueryExecution").len(),
        3,
        "polled until done"
    );
    let start = &server.requests("StartQueryExecution")[0].body;
    assert_eq!(start["WorkGroup"], "primary");
    assert_eq!(
        start["ResultConfiguration"]["OutputLocation"],
        "s3://results/"
    );
}

#[tokio::test]
async fn a_throttled_start_backs_off_and_then_succeeds() {
    let server = Scripted::start().await;
    let throttled = Reply::error(400, "TooManyRequestsException", "Rate exceeded");
    server
        .on(
            "StartQueryExecution",
            vec![
                throttled.clone(),
                throttled,
                Reply::ok(json!({"QueryExecutionId": "q-2"})),
            ],
        )
        .on(
            "GetQueryExecution",
            vec![execution("q-2", "SUCCEEDED", json!({}))],
        )
        .on(
            "GetQueryResults",
            vec![Reply::ok(json!({"ResultSet": {"Rows": []}}))],
        );
    let pacing = quick();
    let floor = pacing.first_backoff / 2;
    let athena = athena_at(&server.endpoint, pacing).await;
    let started = Instant::now();
    let r = athena.execute("select 1", None).await.unwrap();
    assert_eq!(r.query_id, "q-2");
    assert_eq!(server.requests("StartQueryExecution").len(), 3);
    // Two backoffs, each at least half the first backoff (full jitter above that floor).
    assert!(
        started.elapsed() >= floor * 2,
        "no backoff: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn throttling_that_does_not_stop_is_a_transient_error_after_the_attempts() {
    let server = Scripted::start().await;
    server.on(
        "StartQueryExecution",
        vec![Reply::error(
            400,
            "TooManyRequestsException",
            "Rate exceeded",
        )],
    );
    let athena = athena_at(&server.endpoint, quick()).await;
    let err = athena.execute("select 1", None).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        server.requests("StartQueryExecution").len(),
        4,
        "the configured attempts"
    );
}

#[tokio::test]
async fn a_query_still_running_at_its_deadline_is_cancelled() {
    let server = Scripted::start().await;
    server
        .on(
            "StartQueryExecution",
            vec![Reply::ok(json!({"QueryExecutionId": "q-slow"}))],
        )
        .on(
            "GetQueryExecution",
            vec![execution("q-slow", "RUNNING", json!({}))],
        )
        .on("StopQueryExecution", vec![Reply::ok(json!({}))]);
    let athena = athena_at(
        &server.endpoint,
        Pacing {
            timeout: Duration::from_millis(300),
            attempts: 1,
            ..quick()
        },
    )
    .await;
    let err = athena
        .execute("select * from huge", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transient(_)), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");
    let stops = server.requests("StopQueryExecution");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].body["QueryExecutionId"], "q-slow");
    assert!(
        server.requests("GetQueryExecution").len() >= 2,
        "it polled before giving up"
    );
}

#[tokio::test]
async fn an_iceberg_commit_conflict_runs_again_and_a_syntax_error_does_not() {
    let server = Scripted::start().await;
    server
        .on(
            "StartQueryExecution",
            vec![
                Reply::ok(json!({"QueryExecutionId": "q-a"})),
                Reply::ok(json!({"QueryExecutionId": "q-b"})),
            ],
        )
        .on(
            "GetQueryExecution",
            vec![
                execution(
                    "q-a",
                    "FAILED",
                    json!({"StateChangeReason": "ICEBERG_COMMIT_ERROR: Failed to commit Iceberg update to table",
                           "AthenaError": {"ErrorCategory": 2, "ErrorType": 1300, "Retryable": false}}),
                ),
                execution("q-b", "SUCCEEDED", json!({})),
            ],
        )
        .on("GetQueryResults", vec![Reply::ok(json!({"ResultSet": {"Rows": []}, "UpdateCount": 3}))]);
    let athena = athena_at(&server.endpoint, quick()).await;
    let r = athena
        .execute("insert into silver_nomis.people select * from staged", None)
        .await
        .unwrap();
    assert_eq!((r.query_id.as_str(), r.executions), ("q-b", 2));

    let server = Scripted::start().await;
    server
        .on(
            "StartQueryExecution",
            vec![Reply::ok(json!({"QueryExecutionId": "q-c"}))],
        )
        .on(
            "GetQueryExecution",
            vec![execution(
                "q-c",
                "FAILED",
                json!({"StateChangeReason": "line 1:8: mismatched input 'FORM'",
                       "AthenaError": {"ErrorCategory": 2, "ErrorType": 1001, "Retryable": false}}),
            )],
        );
    let athena = athena_at(&server.endpoint, quick()).await;
    let err = athena.execute("select * form t", None).await.unwrap_err();
    assert!(matches!(err, Error::Sql(_)), "{err}");
    assert!(err.to_string().contains("mismatched input 'FORM'"), "{err}");
    assert_eq!(
        server.requests("StartQueryExecution").len(),
        1,
        "never retried"
    );
}
