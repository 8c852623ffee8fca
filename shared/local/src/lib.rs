//! floe's local runtime: the stage handlers chained through durable local queues, in one process,
//! with the landing folder standing in for S3 and a JSON-lines file for EventBridge. Nothing in
//! the handlers knows it is local: these adapters implement the same ports as SQS, S3 and
//! EventBridge.
//!
//! # Layout
//! - [`runtime`]: the runner: announcing landed files, draining the queues (a failed message is
//!   retried or dead-lettered by `floe_core::flow::Disposition`), and what a drain did.
//! - [`queue`]: durable queues on SQLite, with visibility timeouts and dead-letter queues.
//! - [`store`]: a folder as an object store (the landing zone and quarantine).
//! - [`events`]: `floe.*` events appended to a JSON-lines log.

pub mod events;
pub mod queue;
pub mod runtime;
pub mod store;

pub use runtime::{MAX_RECEIVES, Report, Runtime, STATE_DIR, state_dir};
