//! The floe domain: identifiers, stage messages, the error type and the ports every engine and
//! runtime implements.
//!
//! # Layout
//! - [`id`]: sources, tables, layers, batch and run identifiers (a batch id is derived from the
//!   landed object, so a duplicate S3 event names the same batch).
//! - [`message`]: the JSON messages the services pass each other, versioned by `schema_version`.
//! - [`error`]: one error type whose variants say whether a retry can help.
//! - [`ports`]: the object store, queue, lake and clock traits with their invariants.

pub mod cost;
pub mod error;
pub mod id;
pub mod message;
pub mod ports;

pub use error::{Error, Result};
pub use id::{BatchId, Layer, ObjectRef, RunId, TableRef};
pub use ports::{PartitionField, PartitionTransform};
