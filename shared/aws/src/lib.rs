//! floe on AWS: the adapters of the ports in `floe_core::ports`. The Lambda functions that run
//! the stage handlers over them are in `floe-lambda`; nothing here knows the handlers.
//!
//! # Layout
//! - [`clients`]: one `SdkConfig` (endpoint overridable, for a local stand-in) and the clients.
//! - [`sdk_error`]: SDK errors mapped to floe's retryable/permanent errors, at this edge only.
//! - [`s3`]: the landing and quarantine buckets as an `ObjectStore`.
//! - [`sqs`]: stage queues as a `Queue`, plus batch sends, depths and dead-letter redrive.
//! - [`eventbridge`]: `floe.*` events on an event bus, as an `EventSink`.
//! - [`athena`]: running queries on Athena (start, poll with backoff, paginate, cancel).
//! - [`lake`]: the lake on Athena + Glue + S3 (Iceberg tables behind views pinned at the
//!   published snapshot).
//! - [`metrics`]: CloudWatch Embedded Metric Format lines.

pub mod athena;
pub mod clients;
pub mod eventbridge;
pub mod lake;
pub mod metrics;
pub mod s3;
pub mod sdk_error;
pub mod sqs;
