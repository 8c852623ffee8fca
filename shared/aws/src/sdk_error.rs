//! SDK errors mapped to floe's [`Error`]: throttling, timeouts, network failures and 5xx answers
//! are transient (retried with backoff); missing resources are `NotFound`; permission and
//! validation errors are permanent and say what to check.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use floe_core::Error;

/// Error codes AWS services use for throttling, across S3, SQS, EventBridge, Athena and Glue.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerException",
    "AWS.SimpleQueueService.RequestThrottled",
];

const NOT_FOUND: &[&str] = &[
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "ResourceNotFoundException",
    "EntityNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "KMS.AccessDeniedException",
];

/// Whether an AWS error code means "slow down and try again".
pub fn is_throttling(code: &str) -> bool {
    THROTTLING.contains(&code)
}

/// Maps an SDK error of the call `what` (e.g. "SQS SendMessage to <url>").
pub fn map<E>(what: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = format!("{what}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let status = se.raw().status().as_u16();
            if is_throttling(code) || status == 429 || status >= 500 {
                Error::Transient(detail)
            } else if NOT_FOUND.contains(&code) || status == 404 {
                Error::NotFound(detail)
            } else if DENIED.contains(&code) || status == 403 {
                Error::Config(format!(
                    "{detail} (permission denied: check the function's IAM role and the \
                     resource's policy)"
                ))
            } else {
                Error::Internal(detail)
            }
        }
        SdkError::ConstructionFailure(_) => Error::Internal(detail),
        // Timeouts, connection failures and unreadable responses may pass.
        _ => Error::Transient(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_recognised() {
        assert!(is_throttling("ThrottlingException"));
        assert!(is_throttling("TooManyRequestsException"));
        assert!(!is_throttling("InvalidRequestException"));
    }
}
