//! Column types a table config may declare, and their Arrow form.

use std::fmt;

use arrow_schema::{DataType, TimeUnit};

/// The column types floe understands, named as Athena (Trino) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// UTF-8 text (`string`, also accepted as `varchar`).
    String,
    /// 8-bit signed integer.
    Tinyint,
    /// 16-bit signed integer.
    Smallint,
    /// 32-bit signed integer (`int` or `integer`).
    Int,
    /// 64-bit signed integer.
    Bigint,
    /// 32-bit float (`float` or `real`).
    Float,
    /// 64-bit float.
    Double,
    /// `decimal(precision, scale)`, precision 1..=38.
    Decimal(u8, i8),
    /// true/false.
    Boolean,
    /// Calendar date.
    Date,
    /// Instant with microsecond precision, stored in UTC.
    Timestamp,
}

/// The names accepted in `type:`, for error messages and suggestions.
pub const TYPE_NAMES: &[&str] = &[
    "string",
    "varchar",
    "tinyint",
    "smallint",
    "int",
    "integer",
    "bigint",
    "float",
    "real",
    "double",
    "decimal(p,s)",
    "boolean",
    "date",
    "timestamp",
];

/// A type name floe does not know, or a decimal out of range; the message says what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// `decimal(p,s)` with a precision or scale out of range, or not two numbers.
    Decimal {
        /// The type as written.
        text: String,
    },
    /// No type of that name.
    Unknown {
        /// The type as written.
        text: String,
        /// " (did you mean '...'?)" when a known name is close, or empty.
        hint: String,
    },
}

impl std::fmt::Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeError::Decimal { text } => write!(
                f,
                "'{text}' is not a valid decimal: write decimal(precision, scale) with \
                 precision 1 to 38 and scale 0 to precision, for example decimal(12,2)"
            ),
            TypeError::Unknown { text, hint } => write!(
                f,
                "unknown type '{text}'{hint}; known types: {}",
                TYPE_NAMES.join(", ")
            ),
        }
    }
}

impl std::error::Error for TypeError {}

impl ColumnType {
    /// Parses a type name as written in a table config.
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let t = text.trim().to_ascii_lowercase();
        let simple = match t.as_str() {
            "string" | "varchar" | "text" => Some(ColumnType::String),
            "tinyint" => Some(ColumnType::Tinyint),
            "smallint" => Some(ColumnType::Smallint),
            "int" | "integer" => Some(ColumnType::Int),
            "bigint" | "long" => Some(ColumnType::Bigint),
            "float" | "real" => Some(ColumnType::Float),
            "double" => Some(ColumnType::Double),
            "boolean" | "bool" => Some(ColumnType::Boolean),
            "date" => Some(ColumnType::Date),
            "timestamp" => Some(ColumnType::Timestamp),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        if let Some(args) = t.strip_prefix("decimal") {
            return parse_decimal(args.trim()).ok_or_else(|| TypeError::Decimal {
                text: text.to_owned(),
            });
        }
        Err(TypeError::Unknown {
            text: text.to_owned(),
            hint: crate::error::did_you_mean(&t, TYPE_NAMES.iter().copied()),
        })
    }

    /// The Arrow type the embedded engine stores this column as.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Tinyint => DataType::Int8,
            ColumnType::Smallint => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::Bigint => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The column type a stored Arrow type reads back as (the lake's types, for a column the
    /// config no longer declares). Integers narrower than 32 bits are stored as int.
    pub fn from_arrow(t: &DataType) -> Option<Self> {
        Some(match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
            DataType::Int8 | DataType::Int16 | DataType::Int32 => ColumnType::Int,
            DataType::Int64 => ColumnType::Bigint,
            DataType::Float16 | DataType::Float32 => ColumnType::Float,
            DataType::Float64 => ColumnType::Double,
            DataType::Decimal128(p, s) => ColumnType::Decimal(*p, *s),
            DataType::Boolean => ColumnType::Boolean,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Timestamp(_, _) => ColumnType::Timestamp,
            _ => return None,
        })
    }

    /// The type as an Iceberg table stores it: tinyint and smallint are kept as int.
    pub fn stored(self) -> Self {
        match self {
            ColumnType::Tinyint | ColumnType::Smallint => ColumnType::Int,
            t => t,
        }
    }
}

fn parse_decimal(args: &str) -> Option<ColumnType> {
    let inner = args.strip_prefix('(')?.strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    let p: u8 = p.trim().parse().ok()?;
    let s: i8 = s.trim().parse().ok()?;
    ((1..=38).contains(&p) && s >= 0 && (s as u8) <= p).then_some(ColumnType::Decimal(p, s))
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::String => f.write_str("string"),
            ColumnType::Tinyint => f.write_str("tinyint"),
            ColumnType::Smallint => f.write_str("smallint"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::Bigint => f.write_str("bigint"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_decimals() {
        assert_eq!(ColumnType::parse("BIGINT").unwrap(), ColumnType::Bigint);
        assert_eq!(
            ColumnType::parse("decimal(12, 2)").unwrap(),
            ColumnType::Decimal(12, 2)
        );
        assert_eq!(ColumnType::Decimal(12, 2).to_string(), "decimal(12,2)");
        assert!(
            ColumnType::parse("decimal(40,2)")
                .unwrap_err()
                .to_string()
                .contains("precision 1 to 38")
        );
        let e = ColumnType::parse("bigit").unwrap_err().to_string();
        assert!(e.contains("did you mean 'bigint'"), "{e}");
    }
}
