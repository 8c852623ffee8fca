//! The floe domain: identifiers, stage messages, the error type and the ports every engine and
//! runtime implements.
//!
//! # Layout
//! - [`id`]: sources, tables, layers, batch and run identifiers (a batch id is derived from the
//!   landed object, so a duplicate S3 event names the same batch).
//! - [`message`]: the JSON messages the services pass each other, versioned by `schema_version`.
//! - [`flow`]: the stages, which queue takes which message, and what a runner does with a
//!   message whose handler failed (retry, dead-letter, `floe.failed`).
//! - [`error`]: one error type whose variants say whether a retry can help.
//! - [`event`]: the `floe.*` events, typed (published, failed, quarantined).
//! - [`ports`]: the lake (one write entry, its capabilities), object store, queue, event sink,
//!   in-memory SQL, notifier and clock traits, with their invariants.
//! - [`maintenance`]: what table maintenance is asked to do and what it reports (re-exported
//!   from [`ports`]).
//! - [`cost`]: the statements a piece of work ran and what they scanned (the query log's feed).
//! - [`backoff`]: the one retry schedule (exponential, capped, optional jitter).
//! - [`drill`]: the drill hooks (`FLOE_CRASH_AT`, `FLOE_SKIP_CHUNK`, `FLOE_REJECT_FILES`), read
//!   from the environment in one place.

pub mod backoff;
pub mod cost;
pub mod drill;
pub mod error;
pub mod event;
pub mod flow;
pub mod id;
pub mod maintenance;
pub mod message;
pub mod ports;

pub use error::{Error, Result};
pub use flow::{Disposition, Stage};
pub use id::{BatchId, Layer, ObjectRef, RunId, TableRef};
pub use ports::{PartitionField, PartitionTransform};
