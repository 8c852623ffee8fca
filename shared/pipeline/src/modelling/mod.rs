//! The gold layer at run time: build models (staged), then test and publish them.
//!
//! [`Modelling::build`] renders each selected model against the relations it reads (a parent
//! staged earlier in the same run is read at its staged version; an unselected one at its
//! published version, or production's when deferring), writes it staged as its materialization
//! says, and runs independent models side by side within the engine's concurrency. A model that
//! fails to build fails alone: its descendants are skipped, the others go on.
//!
//! [`AuditModels::handle`] runs each staged model's data tests against the staged version and
//! publishes the ones that pass, parents first. A failure leaves the published version as it
//! was, records the failing rows in `floe_audit.test_failures`, emits `floe.failed` and calls
//! the project's webhook. Every model's outcome is appended to `floe_audit.model_runs`.
//!
//! # Layout
//! - [`build`]: the build scheduler, materializations and chunks, build failures announced.
//! - [`audit`]: the gold audit (tests, then publish or reject).
//! - [`runs`]: the run-log tables (`model_runs`, `test_failures`).
//! - [`load`]: the project's models loaded at run time, template parameters from the catalog.
//! - `resolve`: `ref`/`source` to relations for one model of a run.
//! - `retry`: one statement retried after a transient failure; engine slots.
//! - `values`: single values read from a query's rows.

pub mod audit;
pub mod build;
pub mod load;
mod resolve;
mod retry;
pub mod runs;
mod values;

pub use audit::*;
pub use build::*;
pub use load::*;
pub use resolve::Target;
pub use retry::STATEMENT_RETRIES;
pub use runs::*;
