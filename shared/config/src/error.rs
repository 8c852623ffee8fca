//! Configuration errors that point at the file, line, column and field to fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in the project's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, relative to the project root where possible.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field's path, for example `tables.people.primary_key[0]`.
    pub field: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl ConfigError {
    /// An error at a place in a file.
    pub fn at(
        file: &Path,
        loc: Option<(u64, u64)>,
        field: Option<String>,
        message: String,
    ) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: loc.map(|l| l.0),
            column: loc.map(|l| l.1),
            field,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a project, so a user fixes them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} configuration error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for floe_core::Error {
    fn from(e: ConfigErrors) -> Self {
        floe_core::Error::Config(e.to_string().trim_end().to_owned())
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean 'x'?)`, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            suggest("primay_key", ["primary_key", "load"]),
            Some("primary_key")
        );
        assert_eq!(suggest("zzz", ["primary_key", "load"]), None);
        let e = ConfigError::at(
            Path::new("tables/a.yaml"),
            Some((3, 5)),
            Some("tables.x.load".into()),
            "bad".into(),
        );
        assert_eq!(
            e.to_string(),
            "tables/a.yaml:3:5: field `tables.x.load`: bad"
        );
    }
}
