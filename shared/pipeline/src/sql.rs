//! SQL pieces shared by the stages. Everything floe generates quotes identifiers with double
//! quotes, which both DataFusion and Athena (Trino) accept.

use floe_config::{ColumnConfig, ColumnType};

/// A quoted identifier.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The SQL type of a column type.
pub fn sql_type(t: ColumnType) -> String {
    match t {
        ColumnType::String => "VARCHAR".into(),
        ColumnType::Tinyint => "TINYINT".into(),
        ColumnType::Smallint => "SMALLINT".into(),
        ColumnType::Int => "INT".into(),
        ColumnType::Bigint => "BIGINT".into(),
        ColumnType::Float => "REAL".into(),
        ColumnType::Double => "DOUBLE".into(),
        ColumnType::Decimal(p, s) => format!("DECIMAL({p},{s})"),
        ColumnType::Boolean => "BOOLEAN".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Timestamp => "TIMESTAMP".into(),
    }
}

/// The standardised value of a bronze text column: trimmed, empty as NULL, cast to its type.
pub fn standardised(c: &ColumnConfig) -> String {
    let q = quote(&c.name);
    let cleaned = format!("NULLIF(TRIM({q}), '')");
    match c.ty {
        ColumnType::String => format!("{cleaned} AS {q}"),
        // Booleans arrive as true/false, t/f, yes/no, y/n or 1/0 in the wild.
        ColumnType::Boolean => format!(
            "CASE WHEN LOWER({cleaned}) IN ('true','t','yes','y','1') THEN TRUE \
             WHEN LOWER({cleaned}) IN ('false','f','no','n','0') THEN FALSE END AS {q}"
        ),
        ty => format!("CAST({cleaned} AS {}) AS {q}", sql_type(ty)),
    }
}

/// A NULL-safe, unambiguous text form of a row's values, for change detection: each value is
/// length-prefixed so that ('a|b','c') and ('a','b|c') differ, and NULL differs from ''.
pub fn row_fingerprint(columns: &[&str]) -> String {
    if columns.is_empty() {
        return "''".into();
    }
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let v = format!("CAST({} AS VARCHAR)", quote(c));
            format!("COALESCE(CAST(CHARACTER_LENGTH({v}) AS VARCHAR) || ':' || {v}, '~')")
        })
        .collect();
    format!("MD5({})", parts.join(" || '|' || "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_standardising() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        let c = ColumnConfig {
            name: "score".into(),
            ty: ColumnType::Decimal(5, 2),
            nullable: true,
            description: None,
        };
        assert_eq!(
            standardised(&c),
            "CAST(NULLIF(TRIM(\"score\"), '') AS DECIMAL(5,2)) AS \"score\""
        );
    }
}
