//! floe's pipeline: the stage handlers over the ports (`floe_core::ports`), and where their
//! results go. No engine, database or HTTP client lives here: the SQL comes from `floe-sql`,
//! the lakes, queues and stores from the adapter crates, the runners from `floe-local` and
//! `floe-lambda`.
//!
//! # Layout
//! Reading order for one file from S3 event to published gold: [`flow`], then [`stages`], then
//! the four handlers.
//! - [`flow`]: [`flow::route`], where each stage's results go next: the event flow on one screen.
//! - [`stages`]: the stage handlers behind one entry point (message in, next messages out).
//! - [`landing`]: the landing stage (file -> bronze, or quarantine), with [`keys`] (landing keys
//!   and extract times), [`events`] (S3 "Object Created" events), [`extract`] (reading and
//!   checking a landed file) and [`expectations`] (row-level checks: quarantine, drop or warn).
//! - [`standardise`]: the standardise stage (bronze -> staged silver history), with [`drift`]
//!   (the config against the lake, by `schema_change`).
//! - [`audit`]: the silver audit (tests, then publish or reject), with [`rejections`] (batches
//!   refused, left out of later builds).
//! - [`modelling`]: the gold layer at run time: build models staged, test them, publish.
//! - [`ledger`]: the file ledger `floe_audit.files`: where every landed file is;
//!   [`query_log`]: every statement a stage ran and what it scanned; `floe_audit`: appending to
//!   floe's own tables.
//! - [`maintenance`]: compaction and expiry requests (the stack's schedule, `floe maintain`).
//! - [`estimate`]: what landing a file will scan and cost (`floe land --dry-run`).
//! - [`progress`]: how far the long work of this process has got, for the CLI to show.
//! - [`sql`], [`athena_sql`], [`bronze`], [`scd2`]: `floe-sql`'s modules, under the names the
//!   stages use.

pub mod audit;
pub mod drift;
pub mod estimate;
pub mod events;
pub mod expectations;
pub mod extract;
mod floe_audit;
pub mod flow;
pub mod keys;
pub mod landing;
pub mod ledger;
pub mod maintenance;
pub mod modelling;
pub mod progress;
pub mod query_log;
pub mod rejections;
pub mod stages;
pub mod standardise;

// The SQL the stages run lives in floe-sql; these names keep the stages' paths short.
pub use floe_sql::athena as athena_sql;
pub use floe_sql::{self as sql, bronze, scd2};
