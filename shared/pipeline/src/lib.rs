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
//! - [`landing`]: the landing stage (file -> bronze, or quarantine).
//! - [`standardise`]: the standardise stage (bronze -> staged silver history).
//! - [`audit`]: the silver audit (tests, then publish or reject).
//! - [`modelling`]: the gold layer at run time: build models staged, test them, publish.
//! - [`notify`]: the failure webhook (Slack-compatible).
//! - [`progress`]: how far the long work of this process has got, for the CLI to show.
//! - [`rejections`]: batches refused by an audit, left out of later builds.
//! - [`stages`]: the stage handlers behind one entry point (message in, next messages out).
//! - [`runtime`]: the stages chained through local queues in one process.
//! - [`local`]: the local runtime's adapters: durable SQLite queues, the landing folder.

pub mod athena_sql;
pub mod audit;
pub mod bronze;
pub mod drift;
pub mod estimate;
pub mod events;
pub mod expectations;
pub mod extract;
mod floe_audit;
pub mod landing;
pub mod ledger;
pub mod local;
pub mod maintenance;
pub mod modelling;
pub mod notify;
pub mod progress;
pub mod query_log;
pub mod rejections;
pub mod runtime;
pub mod scd2;
pub mod sql;
pub mod stages;
pub mod standardise;
