//! Queries on Amazon Athena: start, poll with backoff, page through results, cancel on timeout.
//!
//! Failures are classified as the rest of floe does: throttling (`TooManyRequestsException`),
//! Athena's own "retryable" errors and Iceberg commit conflicts (`ICEBERG_COMMIT_ERROR`) are
//! transient and retried here with exponential backoff and jitter; syntax and semantic errors
//! are [`Error::Sql`]; permission errors are [`Error::Config`]. A query still running at its
//! deadline is cancelled (StopQueryExecution) and reported as transient, so it is never left
//! scanning (and billing) behind a caller that gave up.

use std::time::{Duration, Instant};

use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, StatementType,
};
use floe_core::{Error, Result};

use crate::metrics::{Record, Unit, athena_cost_usd};
use crate::sdk_error;

/// How polling and retries pace themselves.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// The first wait between two polls of a running query.
    pub first_poll: Duration,
    /// The longest wait between two polls.
    pub max_poll: Duration,
    /// How long a query may run before it is cancelled.
    pub timeout: Duration,
    /// Attempts for a throttled call or a transient query failure.
    pub attempts: u32,
    /// The first backoff after a throttled call or transient failure (doubled each time).
    pub first_backoff: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            first_poll: Duration::from_millis(200),
            max_poll: Duration::from_secs(5),
            timeout: Duration::from_secs(15 * 60),
            attempts: 6,
            first_backoff: Duration::from_millis(500),
        }
    }
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Athena's type name (`varchar`, `bigint`, `timestamp`, `decimal`, ...).
    pub data_type: String,
    /// Precision (decimal digits of a `decimal`).
    pub precision: i32,
    /// Scale (digits after the point of a `decimal`).
    pub scale: i32,
}

/// A finished query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Athena's id of the (last) execution.
    pub query_id: String,
    /// The result's columns (empty for DDL).
    pub columns: Vec<Column>,
    /// The rows, each value as Athena renders it (`None` for NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows a DML statement (INSERT, MERGE, DELETE) wrote, as Athena reports it.
    pub update_count: Option<i64>,
    /// Bytes the query scanned (what Athena bills).
    pub bytes_scanned: u64,
    /// Engine time.
    pub engine_ms: u64,
    /// Executions it took (1 unless a transient failure was retried).
    pub executions: u32,
}

/// Athena in one workgroup.
#[derive(Debug, Clone)]
pub struct Athena {
    client: aws_sdk_athena::Client,
    workgroup: String,
    output_location: Option<String>,
    pacing: Pacing,
    price_per_tb_usd: f64,
    /// Queries run at once by this process (shared by its clones), when limited.
    running: Option<std::sync::Arc<tokio::sync::Semaphore>>,
}

/// How an execution ended.
enum Ended {
    Succeeded {
        bytes: u64,
        engine_ms: u64,
        statement: Option<StatementType>,
    },
    Failed(Error),
}

impl Athena {
    /// Athena in `workgroup` (whose settings give the output location unless one is set).
    pub fn new(client: aws_sdk_athena::Client, workgroup: &str) -> Self {
        Athena {
            client,
            workgroup: workgroup.to_owned(),
            output_location: None,
            pacing: Pacing::default(),
            price_per_tb_usd: 5.0,
            running: None,
        }
    }

    /// At most `n` queries at once from this process (its share of the account's Athena
    /// quota); a query waits for a free slot before it starts.
    pub fn with_max_concurrent_queries(mut self, n: usize) -> Self {
        self.running = Some(std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        self
    }

    /// Results go to this S3 location (when the workgroup does not enforce its own).
    pub fn with_output_location(mut self, location: &str) -> Self {
        self.output_location = Some(location.to_owned());
        self
    }

    /// Polling, timeout and retry pacing.
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// The price per TB scanned used in cost metrics.
    pub fn with_price_per_tb(mut self, usd: f64) -> Self {
        self.price_per_tb_usd = usd;
        self
    }

    /// Runs `sql` (in `database` when given) to the end and returns its rows. Transient failures
    /// are retried with backoff up to the pacing's attempts; the statement must be safe to run
    /// again (reads, DDL with IF [NOT] EXISTS, and Iceberg DML, whose failed commit changed
    /// nothing).
    pub async fn execute(&self, sql: &str, database: Option<&str>) -> Result<QueryResult> {
        let _slot = match &self.running {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|e| Error::Internal(format!("the query limit closed: {e}")))?,
            ),
            None => None,
        };
        let mut attempt = 1;
        let started_at = chrono::Utc::now();
        loop {
            // A throttled start is retried inside `start`; a timeout is not run again (it would
            // most likely time out again, scanning as much); an execution that FAILED for a
            // transient reason (a commit conflict, an internal error) is.
            let id = self.start(sql, database).await?;
            match self.wait(&id).await? {
                Ended::Failed(e) if e.is_retryable() && attempt < self.pacing.attempts => {
                    let wait = self.backoff(attempt);
                    tracing::warn!(error = %e, attempt, ?wait, "Athena query failed transiently; running it again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Ended::Failed(e) => return Err(e),
                Ended::Succeeded {
                    bytes,
                    engine_ms,
                    statement,
                } => {
                    let (columns, rows, update_count) = self.results(&id, statement).await?;
                    floe_core::cost::record(sql, bytes, engine_ms, started_at);
                    Record::new("athena")
                        .metric("BytesScanned", Unit::Bytes, bytes as f64)
                        .metric(
                            "EstimatedCostUSD",
                            Unit::None,
                            athena_cost_usd(bytes, self.price_per_tb_usd),
                        )
                        .metric("EngineTime", Unit::Milliseconds, engine_ms as f64)
                        .property("query_id", id.as_str())
                        .emit();
                    return Ok(QueryResult {
                        query_id: id,
                        columns,
                        rows,
                        update_count,
                        bytes_scanned: bytes,
                        engine_ms,
                        executions: attempt,
                    });
                }
            }
        }
    }

    /// The wait before retry `attempt`: doubling from `first_backoff`, with jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        floe_core::backoff::Backoff::new(
            self.pacing.first_backoff,
            self.pacing.first_backoff * 1024,
        )
        .with_jitter()
        .delay(attempt)
    }

    /// Starts an execution; throttled starts are retried with backoff.
    async fn start(&self, sql: &str, database: Option<&str>) -> Result<String> {
        let mut attempt = 1;
        loop {
            let mut req = self
                .client
                .start_query_execution()
                .query_string(sql)
                .work_group(&self.workgroup)
                .client_request_token(uuid::Uuid::new_v4().to_string());
            if let Some(db) = database {
                req = req
                    .query_execution_context(QueryExecutionContext::builder().database(db).build());
            }
            if let Some(out) = &self.output_location {
                req = req.result_configuration(
                    ResultConfiguration::builder().output_location(out).build(),
                );
            }
            match req.send().await {
                Ok(out) => {
                    return out.query_execution_id().map(str::to_owned).ok_or_else(|| {
                        Error::Internal("Athena StartQueryExecution returned no id".into())
                    });
                }
                Err(e) => {
                    let e = sdk_error::map("Athena StartQueryExecution", e);
                    if e.is_retryable() && attempt < self.pacing.attempts {
                        let wait = self.backoff(attempt);
                        tracing::warn!(error = %e, attempt, ?wait, "Athena throttled the start; backing off");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    } else {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Polls until the execution ends; cancels it at the deadline.
    async fn wait(&self, id: &str) -> Result<Ended> {
        let started = Instant::now();
        let mut poll = self.pacing.first_poll;
        let mut throttled = 0;
        loop {
            let out = match self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = sdk_error::map(&format!("Athena GetQueryExecution {id}"), e);
                    throttled += 1;
                    if !e.is_retryable() || throttled >= self.pacing.attempts {
                        return Err(e);
                    }
                    tokio::time::sleep(self.backoff(throttled)).await;
                    continue;
                }
            };
            let q = out
                .query_execution()
                .ok_or_else(|| Error::Internal(format!("Athena query {id}: no execution")))?;
            let status = q.status();
            let state = status.and_then(|s| s.state()).cloned();
            match state {
                Some(QueryExecutionState::Succeeded) => {
                    let stats = q.statistics();
                    return Ok(Ended::Succeeded {
                        bytes: stats
                            .and_then(|s| s.data_scanned_in_bytes())
                            .unwrap_or(0)
                            .max(0) as u64,
                        engine_ms: stats
                            .and_then(|s| s.engine_execution_time_in_millis())
                            .unwrap_or(0)
                            .max(0) as u64,
                        statement: q.statement_type().cloned(),
                    });
                }
                Some(QueryExecutionState::Failed) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("no reason given");
                    let err = status.and_then(|s| s.athena_error());
                    return Ok(Ended::Failed(classify_failure(
                        id,
                        reason,
                        err.and_then(|e| e.error_category()),
                        err.is_some_and(|e| e.retryable()),
                    )));
                }
                Some(QueryExecutionState::Cancelled) => {
                    return Err(Error::Transient(format!(
                        "Athena query {id} was cancelled (by someone else: floe cancels only at \
                         its deadline)"
                    )));
                }
                _ => {}
            }
            if started.elapsed() >= self.pacing.timeout {
                self.cancel(id).await;
                return Err(Error::Transient(format!(
                    "Athena query {id} still running after {:?}: cancelled it (raise the timeout, \
                     or make the query scan less)",
                    self.pacing.timeout
                )));
            }
            tokio::time::sleep(poll.min(self.pacing.timeout.saturating_sub(started.elapsed())))
                .await;
            poll = (poll * 2).min(self.pacing.max_poll);
        }
    }

    /// Cancels an execution; a failure to cancel is logged (the deadline error is what matters).
    pub async fn cancel(&self, id: &str) {
        if let Err(e) = self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
        {
            tracing::error!(query_id = id, error = %sdk_error::map("Athena StopQueryExecution", e), "could not cancel the query");
        }
    }

    /// Pages through an execution's results.
    async fn results(
        &self,
        id: &str,
        statement: Option<StatementType>,
    ) -> Result<(Vec<Column>, Vec<Vec<Option<String>>>, Option<i64>)> {
        let mut update_count = None;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        let mut first_page = true;
        loop {
            let out = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(1000)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| sdk_error::map(&format!("Athena GetQueryResults {id}"), e))?;
            if first_page && statement == Some(StatementType::Dml) {
                update_count = out.update_count();
            }
            let Some(set) = out.result_set() else { break };
            if first_page {
                columns = set
                    .result_set_metadata()
                    .map(|m| {
                        m.column_info()
                            .iter()
                            .map(|c| Column {
                                name: c.name().to_owned(),
                                data_type: c.r#type().to_owned(),
                                precision: c.precision(),
                                scale: c.scale(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            let mut page: Vec<Vec<Option<String>>> = set
                .rows()
                .iter()
                .map(|r| {
                    r.data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_owned))
                        .collect()
                })
                .collect();
            // A SELECT's first row is its header; DDL and DML results have none.
            if first_page
                && statement.as_ref().is_none_or(|s| *s == StatementType::Dml)
                && page.first().is_some_and(|r| is_header(r, &columns))
            {
                page.remove(0);
            }
            rows.extend(page);
            first_page = false;
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok((columns, rows, update_count))
    }
}

fn is_header(row: &[Option<String>], columns: &[Column]) -> bool {
    !columns.is_empty()
        && row.len() == columns.len()
        && row
            .iter()
            .zip(columns)
            .all(|(v, c)| v.as_deref() == Some(c.name.as_str()))
}

/// Classifies a FAILED execution from its reason and Athena's error category (1 system,
/// 2 user, 3 other).
pub fn classify_failure(id: &str, reason: &str, category: Option<i32>, retryable: bool) -> Error {
    let detail = format!("Athena query {id} failed: {reason}");
    let transient_marks = [
        "ICEBERG_COMMIT_ERROR",
        "TooManyRequestsException",
        "Rate exceeded",
        "SlowDown",
        "Throttling",
        "INTERNAL_ERROR",
    ];
    let permission_marks = [
        "AccessDenied",
        "Access Denied",
        "Insufficient permissions",
        "not authorized",
    ];
    if retryable || transient_marks.iter().any(|m| reason.contains(m)) {
        Error::Transient(detail)
    } else if permission_marks.iter().any(|m| reason.contains(m)) {
        Error::Config(format!(
            "{detail} (permission denied: check the role's Athena, Glue, S3 and KMS grants)"
        ))
    } else if category == Some(1) {
        Error::Transient(detail)
    } else {
        Error::Sql(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        let c = |reason, cat, retry| classify_failure("q", reason, cat, retry);
        assert!(c("ICEBERG_COMMIT_ERROR: conflict", Some(2), false).is_retryable());
        assert!(c("anything", Some(2), true).is_retryable());
        assert!(c("Internal service error", Some(1), false).is_retryable());
        assert!(matches!(
            c("line 1:8: mismatched input 'FORM'", Some(2), false),
            Error::Sql(_)
        ));
        assert!(matches!(
            c("Access Denied (Service: S3)", Some(2), false),
            Error::Config(_)
        ));
    }
}
