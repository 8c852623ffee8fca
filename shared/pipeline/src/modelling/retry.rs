//! Retrying one statement after a transient failure, and waiting for a slot of the engine's
//! concurrency.

use std::time::Duration;

use floe_core::{Error, Result};

/// How often a transient failure of one statement is retried, with backoff and jitter.
pub const STATEMENT_RETRIES: u32 = 3;
pub(super) const STATEMENT_BACKOFF: floe_core::backoff::Backoff =
    floe_core::backoff::Backoff::new(Duration::from_millis(400), Duration::from_millis(1600))
        .with_jitter();

pub(super) async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_retryable() && attempt < STATEMENT_RETRIES => {
                attempt += 1;
                tracing::warn!(what, attempt, error = %e, "retrying after a transient failure");
                tokio::time::sleep(STATEMENT_BACKOFF.delay(attempt)).await;
            }
            other => return other,
        }
    }
}

pub(super) async fn permit(s: &tokio::sync::Semaphore) -> Result<tokio::sync::SemaphorePermit<'_>> {
    s.acquire()
        .await
        .map_err(|e| Error::Internal(format!("the statement budget closed: {e}")))
}
