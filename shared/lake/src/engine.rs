//! The DataFusion session every query of the embedded lake runs in.
//!
//! It adds one function, `floe_row_hash(a, b, ...)`: silver's row fingerprint on this engine, the
//! XXH3-128 (lowercase hex, 32 characters, like the MD5 it replaced) of the row's values in a
//! binary form: per value a type tag and its bytes (text with its length, whole numbers as 64-bit,
//! floating point as 64-bit with one NaN, decimals with their scale, dates as days, timestamps as
//! microseconds), `N` for NULL. No value is formatted as text, which was half of its cost (the
//! other half was MD5): profiled here on a 1M-row extract's apply (perf), the fingerprint went
//! from 36% of the stage's CPU samples to 6%. Hashes are compared only within one engine (Athena
//! keeps its SQL MD5), and
//! a table built under the previous fingerprint is rebuilt once: the fingerprint's name is part
//! of the history rules (`floe_pipeline::standardise::history_rules`).
//!
//! And one change from DataFusion's defaults: window functions over many small partitions (SCD2's
//! `PARTITION BY <key>`, one partition per business key) run in `WindowAggExec` rather than
//! `BoundedWindowAggExec`. The bounded operator keeps a hash map of per-partition buffers keyed
//! by `ScalarValue`s and re-slices them on every input batch; with a partition per row it spends
//! its time in the allocator (measured here: ~5 s of a 100k-row history, most of the run).
//! `WindowAggExec` sorts once, finds the partition ranges and evaluates each range, which is what
//! a batch job over a whole table wants. It buffers its input partition, so it is only used where
//! the window has a `PARTITION BY` and the bounded operator's input is already fully sorted on the
//! partition and order keys (its `Sorted` mode), exactly the input `WindowAggExec` requires. An
//! unpartitioned window keeps the bounded operator, which streams.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast_with_options;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::format::DEFAULT_CAST_OPTIONS;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::InputOrderMode;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};

/// A fresh session with floe's settings.
pub(crate) fn session() -> SessionContext {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(WholePartitionWindows))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_udf(ScalarUDF::new_from_impl(RowHash::new()));
    ctx
}

/// `floe_row_hash` (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowHash {
    signature: Signature,
}

impl RowHash {
    fn new() -> Self {
        RowHash {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RowHash {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &str {
        "floe_row_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let columns = arrays
            .iter()
            .map(Column::of)
            .collect::<Result<Vec<Column>>>()?;
        let mut out = StringBuilder::with_capacity(rows, rows * 32);
        let mut line: Vec<u8> = Vec::with_capacity(256);
        let mut hex = [0u8; 32];
        for row in 0..rows {
            line.clear();
            for c in &columns {
                c.encode(row, &mut line);
            }
            let hash = twox_hash::XxHash3_128::oneshot(&line).to_be_bytes();
            for (i, b) in hash.iter().enumerate() {
                hex[2 * i] = HEX[usize::from(b >> 4)];
                hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
            }
            out.append_value(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// One argument of `floe_row_hash`, in the form its values are encoded from.
enum Column {
    Text(StringArray),
    Int(Int64Array),
    Float(Float64Array),
    Decimal(Decimal128Array, i8),
    Bool(BooleanArray),
    Date(Date32Array),
    /// In microseconds, whatever the unit the query typed it in.
    Timestamp(TimestampMicrosecondArray),
}

impl Column {
    fn of(array: &ArrayRef) -> Result<Column> {
        let cast = |to: &DataType| cast_with_options(array, to, &DEFAULT_CAST_OPTIONS);
        Ok(match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Column::Int(cast(&DataType::Int64)?.as_primitive().clone()),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                Column::Float(cast(&DataType::Float64)?.as_primitive().clone())
            }
            DataType::Decimal128(_, scale) => Column::Decimal(array.as_primitive().clone(), *scale),
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            DataType::Date32 | DataType::Date64 => {
                Column::Date(cast(&DataType::Date32)?.as_primitive().clone())
            }
            DataType::Timestamp(_, zone) => Column::Timestamp(
                cast(&DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))?
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone(),
            ),
            // Text, and anything else as the text `CAST(x AS VARCHAR)` gives.
            DataType::Utf8 => Column::Text(array.as_string::<i32>().clone()),
            _ => Column::Text(cast(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    /// Appends row `row`'s value: a tag, then its bytes (little-endian).
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        let null = match self {
            Column::Text(a) => a.is_null(row),
            Column::Int(a) => a.is_null(row),
            Column::Float(a) => a.is_null(row),
            Column::Decimal(a, _) => a.is_null(row),
            Column::Bool(a) => a.is_null(row),
            Column::Date(a) => a.is_null(row),
            Column::Timestamp(a) => a.is_null(row),
        };
        if null {
            out.push(b'N');
            return;
        }
        match self {
            Column::Text(a) => {
                let v = a.value(row).as_bytes();
                out.push(b'S');
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                out.extend_from_slice(v);
            }
            Column::Int(a) => {
                out.push(b'I');
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
            Column::Float(a) => {
                let v = a.value(row);
                let v = if v.is_nan() { f64::NAN } else { v };
                out.push(b'F');
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Column::Decimal(a, scale) => {
                out.push(b'D');
                out.push(*scale as u8);
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
            Column::Bool(a) => {
                out.push(b'B');
                out.push(u8::from(a.value(row)));
            }
            Column::Date(a) => {
                out.push(b'd');
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
            Column::Timestamp(a) => {
                out.push(b'T');
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
        }
    }
}

/// Replaces `BoundedWindowAggExec` in `Sorted` mode with `WindowAggExec` (see the module docs).
#[derive(Debug)]
struct WholePartitionWindows;

impl PhysicalOptimizerRule for WholePartitionWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(bounded) = node.as_any().downcast_ref::<BoundedWindowAggExec>() else {
                return Ok(Transformed::no(node));
            };
            // Only windows partitioned by something: one unpartitioned window (an ordered
            // scan of a whole table) streams in the bounded operator, and the whole-partition
            // one would hold the entire table.
            let partitioned = bounded
                .window_expr()
                .first()
                .is_some_and(|w| !w.partition_by().is_empty());
            if bounded.input_order_mode != InputOrderMode::Sorted || !partitioned {
                return Ok(Transformed::no(node));
            }
            // The bounded operator reports partition keys only when it may be repartitioned.
            let can_repartition = !bounded.partition_keys().is_empty();
            let whole = WindowAggExec::try_new(
                bounded.window_expr().to_vec(),
                Arc::clone(bounded.input()),
                can_repartition,
            )?;
            Ok(Transformed::yes(Arc::new(whole) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "floe_whole_partition_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;

    /// `floe_row_hash` of each row of `rows` (a VALUES list of `cols`), as text.
    async fn hashes(ctx: &SessionContext, rows: &str, cols: &str) -> Vec<String> {
        let sql = format!("SELECT floe_row_hash({cols}) AS h FROM ({rows}) r");
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_string::<i32>().clone();
                (0..a.len()).map(move |r| a.value(r).to_owned())
            })
            .collect()
    }

    #[tokio::test]
    async fn row_hash_tells_every_value_of_every_type_apart() {
        // Text (a multi-byte character, an empty string, separators inside values), whole
        // numbers, decimals, doubles, booleans, dates, timestamps with and without a zone, NULLs:
        // every row differs from every other in one value, and each must hash apart.
        let ctx = session();
        let base = "'Zoë', CAST(1 AS BIGINT), CAST(12.50 AS DECIMAL(5,2)), CAST(1.5 AS DOUBLE), TRUE, \
                    DATE '1985-12-10', arrow_cast('2026-11-02T06:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))'), \
                    TIMESTAMP '2026-11-02 06:00:00.123456'";
        let variants = [
            base.to_owned(),
            base.replace("'Zoë'", "'Zoe'"),
            base.replace("'Zoë'", "''"),
            base.replace("'Zoë'", "NULL"),
            base.replace("CAST(1 AS BIGINT)", "CAST(2 AS BIGINT)"),
            base.replace("CAST(1 AS BIGINT)", "NULL"),
            base.replace("12.50 AS DECIMAL(5,2)", "12.51 AS DECIMAL(5,2)"),
            base.replace("CAST(1.5 AS DOUBLE)", "CAST(-1.5 AS DOUBLE)"),
            base.replace("TRUE", "FALSE"),
            base.replace("TRUE", "NULL"),
            base.replace("1985-12-10", "1985-12-11"),
            base.replace("06:00:00Z", "06:00:01Z"),
            base.replace("06:00:00.123456", "06:00:00.123457"),
        ];
        let rows = format!(
            "SELECT * FROM (VALUES ({})) AS t(s, i, d, f, b, dt, tz, ts)",
            variants.join("), (")
        );
        let all = hashes(&ctx, &rows, "s, i, d, f, b, dt, tz, ts").await;
        assert_eq!(all.len(), variants.len());
        let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        assert!(
            all.iter()
                .all(|h| h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit()))
        );
        // The same values hash the same, whatever the batch.
        assert_eq!(hashes(&ctx, &rows, "s, i, d, f, b, dt, tz, ts").await, all);
    }

    #[tokio::test]
    async fn row_hash_keeps_values_in_their_columns() {
        // Moving text across a column boundary, or a NULL from one column to the next, changes
        // the hash; an empty string is not a NULL.
        let ctx = session();
        let rows = "SELECT * FROM (VALUES ('ab', 'c'), ('a', 'bc'), ('', NULL), (NULL, ''), \
                    ('a|b', 'c'), ('a', 'b|c')) AS t(x, y)";
        let all = hashes(&ctx, rows, "x, y").await;
        let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), 6, "{all:?}");
    }

    #[tokio::test]
    async fn row_hash_reads_a_value_the_same_in_any_width_or_unit() {
        // Silver stores a tinyint as int and a timestamp in microseconds while a query may type
        // the same value narrower or in nanoseconds: one value, one hash.
        let ctx = session();
        let a = hashes(
            &ctx,
            "SELECT CAST(7 AS TINYINT) AS i, arrow_cast(TIMESTAMP '2026-11-02 06:00:00.5', 'Timestamp(Nanosecond, None)') AS t",
            "i, t",
        )
        .await;
        let b = hashes(
            &ctx,
            "SELECT CAST(7 AS BIGINT) AS i, arrow_cast(TIMESTAMP '2026-11-02 06:00:00.5', 'Timestamp(Microsecond, None)') AS t",
            "i, t",
        )
        .await;
        assert_eq!(a, b);
    }

    /// The physical plan of `sql` in `ctx`, as text.
    async fn plan_text(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        displayable(plan.as_ref()).indent(true).to_string()
    }

    /// The rows of `sql` in `ctx`, as a text table.
    async fn rows_text(ctx: &SessionContext, sql: &str) -> String {
        let rows = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&rows)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn sorted_windows_run_whole_partitions_and_give_the_same_rows() {
        let sql = "SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS n, \
                   LAG(v) OVER (PARTITION BY k ORDER BY v) AS prev, \
                   SUM(v) OVER (PARTITION BY k ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running \
                   FROM (VALUES (1, 10), (2, 5), (1, 7), (2, 1), (3, 4), (1, 8)) AS t(k, v) ORDER BY k, v";
        let ours = session();
        let stock = SessionContext::new();
        let shown = plan_text(&ours, sql).await;
        assert!(shown.contains("WindowAggExec"), "{shown}");
        assert!(!shown.contains("BoundedWindowAggExec"), "{shown}");
        assert!(
            plan_text(&stock, sql)
                .await
                .contains("BoundedWindowAggExec"),
            "DataFusion's default plan changed: is this rule still needed?"
        );
        assert_eq!(rows_text(&ours, sql).await, rows_text(&stock, sql).await);

        let unpartitioned = "SELECT k, LEAD(v) OVER (ORDER BY k, v) AS next FROM (VALUES (1, 10), (2, 5)) AS t(k, v)";
        assert!(
            plan_text(&ours, unpartitioned)
                .await
                .contains("BoundedWindowAggExec"),
            "an unpartitioned window keeps streaming"
        );
    }
}
