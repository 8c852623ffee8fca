//! Bronze: every extract as delivered, one batch per landed file.
//!
//! Source columns are kept as text, exactly as the file had them (after header names are
//! standardised to the configured snake_case names), so bronze can always be reprocessed; typing
//! and cleaning happen in standardise. floe's own columns follow.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_config::TableConfig;

/// The batch (landed file) a row came from.
pub const BATCH_ID: &str = "_batch_id";
/// The extract time from the landing key: the instant the source system's data describes.
pub const EXTRACT_TS: &str = "_extract_ts";
/// When floe landed the file (breaks ties between two files of the same extract time).
pub const LANDED_AT: &str = "_landed_at";
/// The landing key of the file.
pub const SOURCE_FILE: &str = "_source_file";
/// The row's position in the file (1 = first data row).
pub const ROW_NUMBER: &str = "_row_number";

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Bronze's layout on an engine that partitions (Athena): one partition per extract day, so
/// reading one batch (`_batch_id` and `_extract_ts` known) reads one day's files, not every
/// extract bronze keeps.
pub fn partitioning() -> Vec<floe_core::PartitionField> {
    vec![floe_core::PartitionField::day(EXTRACT_TS)]
}

/// The bronze schema of a table: its declared columns as text (and `_rescued` under
/// `schema_change: rescue`), then floe's columns.
pub fn schema(table: &TableConfig) -> SchemaRef {
    let mut fields: Vec<Field> = crate::declared(table)
        .iter()
        .map(|c| Field::new(&c.name, DataType::Utf8, true))
        .collect();
    fields.extend([
        Field::new(BATCH_ID, DataType::Utf8, false),
        Field::new(EXTRACT_TS, utc(), false),
        Field::new(LANDED_AT, utc(), false),
        Field::new(SOURCE_FILE, DataType::Utf8, false),
        Field::new(ROW_NUMBER, DataType::Int64, false),
    ]);
    Arc::new(Schema::new(fields))
}
