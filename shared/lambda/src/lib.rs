//! A floe stage as an SQS-triggered Lambda function: the stage handlers (`floe-pipeline`) over
//! the AWS adapters (`floe-aws`), configured from the environment. The four services' `main`s
//! are one call each: [`service::run_lambda`].
//!
//! # Layout
//! - [`settings`]: the services' typed configuration, read from the environment once.
//! - [`service`]: a stage as an SQS-triggered Lambda (partial batch failures, DLQ, metrics).
//! - [`poller`]: what Lambda's SQS event source mapping does, for running a service elsewhere.

pub mod poller;
pub mod service;
pub mod settings;

pub use floe_core::Stage;
