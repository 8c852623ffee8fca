//! Row-level expectations: checks of a file's rows beyond their types, each with what to do
//! with a row that fails it.

use serde_json::Value;

use crate::ColumnType;

/// What landing does with the rows that fail an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFail {
    /// The default: the whole file is refused (quarantined with a report naming each row), as
    /// for a value of the wrong type.
    #[default]
    QuarantineFile,
    /// The rows are left out of bronze and written, with the expectation they failed, to
    /// `floe_audit.dropped_rows`; the rest of the file lands.
    Drop,
    /// The rows land; how many failed is recorded.
    Warn,
}

impl OnFail {
    /// The name in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFail::QuarantineFile => "quarantine_file",
            OnFail::Drop => "drop",
            OnFail::Warn => "warn",
        }
    }

    /// The policy a name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        [OnFail::QuarantineFile, OnFail::Drop, OnFail::Warn]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The column holds a value.
    NotNull,
    /// The column's value lies within `[min, max]` (either may be open); NULL passes.
    Range {
        /// The smallest allowed value.
        min: Option<Value>,
        /// The largest allowed value.
        max: Option<Value>,
    },
    /// The column's text matches the regular expression somewhere (anchor it with `^...$`);
    /// NULL passes.
    Regex(String),
    /// The column's value is one of these; NULL passes.
    AcceptedValues(Vec<Value>),
    /// A SQL condition over the row's columns (typed), true for a good row; a row for which it
    /// is false or NULL fails.
    Sql(String),
}

/// One expectation of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Its name (`<column>_<check>` for a column's, or the given name).
    pub name: String,
    /// The column it checks, for a column's expectation.
    pub column: Option<String>,
    /// The check.
    pub check: Check,
    /// What to do with a failing row.
    pub on_fail: OnFail,
}

impl Expectation {
    /// The check in words, for reports.
    pub fn describe(&self) -> String {
        let v = |v: &Value| match v {
            Value::String(s) => format!("'{s}'"),
            v => v.to_string(),
        };
        match &self.check {
            Check::NotNull => "not null".into(),
            Check::Range { min, max } => format!(
                "between {} and {}",
                min.as_ref().map_or("-inf".into(), v),
                max.as_ref().map_or("+inf".into(), v)
            ),
            Check::Regex(r) => format!("matches /{r}/"),
            Check::AcceptedValues(values) => format!(
                "one of {}",
                values.iter().map(v).collect::<Vec<_>>().join(", ")
            ),
            Check::Sql(s) => s.clone(),
        }
    }
}

/// Why a literal of an expectation does not suit a column of type `ty`, if it does not.
pub(crate) fn literal_problem(ty: ColumnType, value: &Value) -> Option<String> {
    use ColumnType as T;
    match (ty, value) {
        (
            T::Tinyint | T::Smallint | T::Int | T::Bigint | T::Float | T::Double | T::Decimal(..),
            Value::Number(_),
        ) => None,
        (T::String, Value::String(_)) | (T::Boolean, Value::Bool(_)) => None,
        (T::Date | T::Timestamp, Value::String(_)) => None,
        (ty, v) => Some(format!("{v} is not a {ty} value")),
    }
}
