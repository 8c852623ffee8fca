//! floe's pipeline: the stage handlers and the SQL they run.
//!
//! # Layout
//! - [`athena_sql`]: the statements the Athena engine runs (DDL, bronze append, SCD2 rebuild
//!   and MERGE, publish views), in Athena's SQL.
//! - [`bronze`]: the bronze table layout (every extract as delivered, plus batch metadata).
//! - [`drift`]: schema drift: the config against the lake, by the table's `schema_change`.
//! - [`sql`]: quoting and the declarative standardisation of one column.
//! - [`scd2`]: silver history (SCD2) as one query over bronze, for full and cdc loads.
//! - [`events`]: S3 "Object Created" events (EventBridge and S3-notification shapes).
//! - [`expectations`]: row-level expectations checked at landing (quarantine, drop or warn).
//! - [`extract`]: reading a landed file (CSV, Parquet, JSON lines) and checking it.
//! - [`ledger`]: the file ledger `floe_audit.files`: where every landed file is.
//! - [`keys`]: landing keys (`landing/<source>/<table>/<extract_ts>/<file>`) and extract times.
//! - [`landing`]: the landing stage (file -> bronze, or quarantine).
//! - [`standardise`]: the standardise stage (bronze -> staged silver history).
//! - [`audit`]: the silver audit (tests, then publish or reject).
//! - [`modelling`]: the gold layer at run time: build models staged, test them, publish.
//! - [`progress`]: how far the long work of this process has got, for the CLI to show.
//! - [`rejections`]: batches refused by an audit, left out of later builds.
//! - [`stages`]: the stage handlers behind one entry point (message in, next messages out).
//! - [`flow`]: [`flow::route`], where each stage's results go next: the event flow on one screen.

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
