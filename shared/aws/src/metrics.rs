//! CloudWatch Embedded Metric Format: one JSON line on stdout per measurement, which CloudWatch
//! Logs turns into metrics with no API call (and so no latency or cost on the hot path).
//!
//! Every line carries the stage and, when known, the table as dimensions, so a dashboard can
//! show use per table and per stage; batch and run ids ride along as properties for log search.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The CloudWatch namespace of floe's metrics.
pub const NAMESPACE: &str = "floe";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Bytes.
    Bytes,
    /// No unit (money, ratios).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One EMF record: dimensions, metrics and properties.
#[derive(Debug, Clone, Default)]
pub struct Record {
    dimensions: BTreeMap<String, String>,
    metrics: Vec<(String, Unit, f64)>,
    properties: BTreeMap<String, Value>,
}

impl Record {
    /// A record for `stage`.
    pub fn new(stage: &str) -> Self {
        let mut r = Record::default();
        r.dimensions.insert("Stage".into(), stage.into());
        r
    }

    /// Adds a dimension (e.g. `Table`).
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.insert(name.into(), value.into());
        self
    }

    /// Adds a metric.
    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name.into(), unit, value));
        self
    }

    /// Adds a searchable property that is not a dimension (batch id, run id, error).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The record as one EMF JSON line, stamped `at`.
    pub fn to_line(&self, at: DateTime<Utc>) -> String {
        let mut root = serde_json::Map::new();
        for (k, v) in &self.properties {
            root.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), json!(v));
        }
        for (name, _, value) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [self.dimensions.keys().collect::<Vec<_>>()],
                    "Metrics": self.metrics.iter()
                        .map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()}))
                        .collect::<Vec<_>>(),
                }]
            }),
        );
        Value::Object(root).to_string()
    }

    /// Writes the record to stdout (where Lambda's log capture picks it up).
    /// Writes the record: to stdout in Lambda, where CloudWatch turns the line into metrics;
    /// elsewhere (the CLI running the services, tests) as a debug log line, out of the way.
    pub fn emit(&self) {
        let line = self.to_line(Utc::now());
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            println!("{line}");
        } else {
            tracing::debug!(target: "floe::metrics", "{line}");
        }
    }
}

/// Athena's cost of a query that scanned `bytes`, at `price_per_tb_usd` per terabyte, with
/// Athena's 10 MB minimum per query.
pub fn athena_cost_usd(bytes: u64, price_per_tb_usd: f64) -> f64 {
    const MIN_BILLED: u64 = 10 * 1024 * 1024;
    const TB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
    bytes.max(MIN_BILLED) as f64 / TB * price_per_tb_usd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_valid_emf() {
        let line = Record::new("landing")
            .dimension("Table", "nomis.people")
            .metric("RowsOut", Unit::Count, 42.0)
            .metric("Duration", Unit::Milliseconds, 7.5)
            .property("batch_id", "b123")
            .to_line(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["RowsOut"], 42.0);
        assert_eq!(v["Stage"], "landing");
        assert_eq!(v["Table"], "nomis.people");
        assert_eq!(v["batch_id"], "b123");
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(m["Namespace"], "floe");
        assert_eq!(m["Dimensions"][0], json!(["Stage", "Table"]));
        assert_eq!(
            m["Metrics"][1],
            json!({"Name": "Duration", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn athena_bills_at_least_ten_megabytes() {
        let tb = 1024u64.pow(4);
        assert!((athena_cost_usd(tb, 5.0) - 5.0).abs() < 1e-9);
        assert_eq!(
            athena_cost_usd(0, 5.0),
            athena_cost_usd(10 * 1024 * 1024, 5.0)
        );
    }
}
