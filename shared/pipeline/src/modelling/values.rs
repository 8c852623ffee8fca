//! Reading single values out of a query's Arrow rows (counts, chunk bounds).

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::DateTime;
use floe_core::{Error, Result};
use floe_models::materialize::Bound;

/// The first value of the first column of a query's rows, as text.
pub(super) fn scalar(rows: &[RecordBatch], col: usize) -> Option<Arc<dyn Array>> {
    let b = rows.iter().find(|b| b.num_rows() > 0)?;
    Some(b.column(col).slice(0, 1))
}

pub(super) fn to_u64(a: &Option<Arc<dyn Array>>) -> u64 {
    let Some(a) = a else { return 0 };
    let Ok(c) = arrow_cast::cast(a, &DataType::Int64) else {
        return 0;
    };
    let c = c
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("cast to Int64");
    if c.is_null(0) {
        0
    } else {
        c.value(0).max(0) as u64
    }
}

pub(super) fn to_bound(a: &Option<Arc<dyn Array>>, column: &str) -> Result<Option<Bound>> {
    let Some(a) = a else { return Ok(None) };
    if a.is_null(0) {
        return Ok(None);
    }
    let cast = |to: &DataType| arrow_cast::cast(a, to).map_err(|e| Error::Internal(e.to_string()));
    Ok(Some(match a.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let c = cast(&DataType::Int64)?;
            Bound::Int(
                c.as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .expect("Int64")
                    .value(0),
            )
        }
        DataType::Date32 | DataType::Date64 => {
            let c = cast(&DataType::Date32)?;
            let days = c
                .as_any()
                .downcast_ref::<arrow_array::Date32Array>()
                .expect("Date32")
                .value(0);
            Bound::Date(
                chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                    .ok_or_else(|| Error::Internal(format!("date {days} out of range")))?,
            )
        }
        DataType::Timestamp(_, _) => {
            let c = cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let us = c
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .expect("timestamp")
                .value(0);
            Bound::Timestamp(
                DateTime::from_timestamp_micros(us)
                    .ok_or_else(|| Error::Internal(format!("timestamp {us} out of range")))?
                    .naive_utc(),
            )
        }
        other => {
            return Err(Error::Config(format!(
                "insert_by_chunk: chunk_by column {column} is {other}; chunks split integer, date or timestamp columns"
            )));
        }
    }))
}

/// The schema a model table is created with: every column nullable (a model's NULLs are its
/// tests' business, not the writer's).
pub(super) fn nullable(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}
