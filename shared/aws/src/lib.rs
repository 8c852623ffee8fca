//! floe on AWS: adapters for the ports in `floe_core::ports`, and the Lambda entry point that
//! runs a stage handler over SQS.
//!
//! # Layout
//! - [`settings`]: the services' typed configuration, read from the environment once.
//! - [`clients`]: one `SdkConfig` (endpoint overridable, for a local stand-in) and the clients.
//! - [`sdk_error`]: SDK errors mapped to floe's retryable/permanent errors, at this edge only.
//! - [`s3`]: the landing and quarantine buckets as an `ObjectStore`.
//! - [`sqs`]: stage queues as a `Queue`, plus batch sends, depths and dead-letter redrive.
//! - [`eventbridge`]: `floe.*` events on an event bus, as an `EventSink`.
//! - [`athena`]: running queries on Athena (start, poll with backoff, paginate, cancel).
//! - [`lake`]: the lake on Athena + Glue + S3 (Iceberg tables behind views pinned at the
//!   published snapshot).
//! - [`metrics`]: CloudWatch Embedded Metric Format lines.
//! - [`service`]: a stage as an SQS-triggered Lambda (partial batch failures, DLQ, metrics).
//! - [`poller`]: what Lambda's SQS event source mapping does, for running a service elsewhere.

pub mod athena;
pub mod clients;
pub mod eventbridge;
pub mod lake;
pub mod metrics;
pub mod poller;
pub mod s3;
pub mod sdk_error;
pub mod service;
pub mod settings;
pub mod sqs;

pub use floe_pipeline::stages::Stage;
