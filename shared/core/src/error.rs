//! One error type for the domain, with a retryable/permanent classification.
//!
//! Adapters map their SDK or library errors into these variants at the edge, so a handler decides
//! "retry with backoff" or "report, quarantine, dead-letter" without knowing which backend failed.
//!
//! The cause's text goes into the message ("reading a manifest: <iceberg's message>"), and the
//! library's error value does not travel on (no `#[source]` here): a floe error is acted on by
//! its kind, and it leaves the process as text (the `floe.failed` event, a dead-letter record,
//! the CLI's output), so a chain of values would be flattened at every one of those edges
//! anyway. Inside a crate, a module's own failures are typed values a caller can match
//! (`keys::KeyError`, `DagError`, `ResolveError`, `TypeError`), turned into this type where they
//! leave it.

use std::fmt;

/// `Result` with floe's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in floe's domain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project configuration is wrong; the message names file, line and field.
    #[error("{0}")]
    Config(String),
    /// Input data is invalid (bad format, schema or values); the message names the file and the
    /// place; the input is quarantined, never retried.
    #[error("invalid data in {file}: {detail}")]
    InvalidData {
        /// The file or object holding the bad data.
        file: String,
        /// What is wrong and where (line, column).
        detail: String,
    },
    /// A message on a queue could not be understood (malformed JSON, missing field).
    #[error("malformed message: {0}")]
    MalformedMessage(String),
    /// A message was written by a newer (or unknown) floe; it is dead-lettered, not guessed at.
    #[error(
        "message schema_version {found} is not supported (this floe reads version {supported}); \
         upgrade the consumer or replay the message with a matching floe"
    )]
    UnsupportedSchemaVersion {
        /// The version found in the message.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A table, namespace, snapshot or object does not exist; the message says which and what to
    /// do.
    #[error("{0}")]
    NotFound(String),
    /// Something to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An optimistic commit lost a race and gave up after its retries; running again is safe.
    #[error("commit conflict on {table}: {detail}")]
    CommitConflict {
        /// The table whose pointer moved.
        table: String,
        /// What moved, and what to do.
        detail: String,
    },
    /// SQL that cannot run: syntax, unknown column, type error. Permanent.
    #[error("SQL error: {0}")]
    Sql(String),
    /// A storage, network or engine failure that may pass (timeouts, throttling, I/O hiccups).
    #[error("transient failure: {0}")]
    Transient(String),
    /// A bug or a broken invariant (corrupt metadata, impossible state). Permanent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether running the same operation again may succeed (with backoff).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::CommitConflict { .. } | Error::Transient(_))
    }

    /// The stable kind name used in logs, metrics and failure events.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::InvalidData { .. } => ErrorKind::InvalidData,
            Error::MalformedMessage(_) | Error::UnsupportedSchemaVersion { .. } => {
                ErrorKind::BadMessage
            }
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::CommitConflict { .. } => ErrorKind::Conflict,
            Error::Sql(_) => ErrorKind::Sql,
            Error::Transient(_) => ErrorKind::Transient,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A short, stable name for each class of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// See [`Error::Config`].
    Config,
    /// See [`Error::InvalidData`].
    InvalidData,
    /// See [`Error::MalformedMessage`] and [`Error::UnsupportedSchemaVersion`].
    BadMessage,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::CommitConflict`].
    Conflict,
    /// See [`Error::Sql`].
    Sql,
    /// See [`Error::Transient`].
    Transient,
    /// See [`Error::Internal`].
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conflicts_and_transient_failures_are_retryable() {
        let conflict = Error::CommitConflict {
            table: "silver_a.b".into(),
            detail: "moved".into(),
        };
        assert!(conflict.is_retryable());
        assert!(Error::Transient("timeout".into()).is_retryable());
        assert!(!Error::Sql("syntax".into()).is_retryable());
        assert!(
            !Error::InvalidData {
                file: "f.csv".into(),
                detail: "line 3".into()
            }
            .is_retryable()
        );
        assert_eq!(conflict.kind().to_string(), "conflict");
    }
}
