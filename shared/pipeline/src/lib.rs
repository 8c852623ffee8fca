//! floe's pipeline: the stage handlers and the SQL they run.
//!
//! # Layout
//! - [`bronze`]: the bronze table layout (every extract as delivered, plus batch metadata).
//! - [`sql`]: quoting and the declarative standardisation of one column.
//! - [`scd2`]: silver history (SCD2) as one query over bronze, for full and cdc loads.

pub mod bronze;
pub mod scd2;
pub mod sql;
