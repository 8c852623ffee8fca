//! Landing keys: where a landed file belongs, read from its key
//! (`landing/<source>/<table>/<extract_ts>/<file>`), and the extract times floe accepts.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Where a landed file belongs, from its key: `landing/<source>/<table>/<extract_ts>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandingKey {
    /// The source system.
    pub source: String,
    /// The table.
    pub table: String,
    /// The instant the extract describes.
    pub extract_ts: DateTime<Utc>,
    /// The file name.
    pub file: String,
}

/// The prefix every landed key starts with.
pub const LANDING_PREFIX: &str = "landing/";
/// The prefix of quarantined files and their reports.
pub const QUARANTINE_PREFIX: &str = "quarantine/";

/// Parses an extract time as landing keys carry it: RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC),
/// the compact `YYYYMMDDTHHMMSSZ`, or a date (midnight UTC).
pub fn parse_extract_ts(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%dT%H%M%SZ",
        "%Y-%m-%dT%H%M%SZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The instants floe stores, as text for messages: what Arrow's nanosecond timestamps hold (the
/// embedded engine and the audit compute in them), cut to whole days. An extract time or a
/// timestamp value outside is refused before anything is written.
pub const INSTANT_RANGE: &str = "1677-09-22 to 2262-04-10";

/// Whether `t` is inside [`INSTANT_RANGE`].
pub fn instant_in_range(t: DateTime<Utc>) -> bool {
    let day = t.date_naive();
    let first = NaiveDate::from_ymd_opt(1677, 9, 22).expect("a valid date");
    let last = NaiveDate::from_ymd_opt(2262, 4, 10).expect("a valid date");
    (first..=last).contains(&day)
}

/// The landing key of a file of `source.table` extracted at `ts`.
pub fn landing_key(source: &str, table: &str, ts: DateTime<Utc>, file: &str) -> String {
    format!(
        "{LANDING_PREFIX}{source}/{table}/{}/{file}",
        ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Why a key is not a landing key; each says what a good one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `landing/<source>/<table>/<extract_ts>/<file>`.
    #[error(
        "'{key}' is not a landing key: landing keys look like \
         landing/<source>/<table>/<extract_ts>/<file>, e.g. \
         landing/nomis/people/2026-11-01T06:00:00Z/people.csv"
    )]
    Layout {
        /// The key.
        key: String,
    },
    /// The extract-time part does not parse.
    #[error(
        "'{ts}' in '{key}' is not an extract time: use RFC 3339 (2026-11-01T06:00:00Z), \
         20261101T060000Z or 2026-11-01"
    )]
    ExtractTime {
        /// The key.
        key: String,
        /// Its extract-time part.
        ts: String,
    },
    /// The extract time is outside what floe stores.
    #[error(
        "extract time '{ts}' in '{key}' is outside the instants floe stores ({INSTANT_RANGE}): \
         land the file again under the time it was extracted"
    )]
    OutOfRange {
        /// The key.
        key: String,
        /// Its extract-time part.
        ts: String,
    },
}

/// Reads a landing key, or says why it is not one.
pub fn parse_key(key: &str) -> Result<LandingKey, KeyError> {
    let layout = || KeyError::Layout {
        key: key.to_owned(),
    };
    let parts: Vec<&str> = key.split('/').collect();
    let [prefix, source, table, ts, file] = parts[..] else {
        return Err(layout());
    };
    if format!("{prefix}/") != LANDING_PREFIX
        || source.is_empty()
        || table.is_empty()
        || file.is_empty()
    {
        return Err(layout());
    }
    let extract_ts = parse_extract_ts(ts).ok_or_else(|| KeyError::ExtractTime {
        key: key.to_owned(),
        ts: ts.to_owned(),
    })?;
    if !instant_in_range(extract_ts) {
        return Err(KeyError::OutOfRange {
            key: key.to_owned(),
            ts: ts.to_owned(),
        });
    }
    Ok(LandingKey {
        source: source.into(),
        table: table.into(),
        extract_ts,
        file: file.into(),
    })
}
