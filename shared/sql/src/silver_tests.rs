//! The tests a staged silver snapshot passes before it is published: its history is well formed
//! (one current row per key, intervals neither inverted nor overlapping) and, for the extract
//! that made it, reconciles with what landed.
//!
//! Each test is a query returning the failing rows (at most 20, as examples for the report).

use chrono::{DateTime, Utc};
use floe_config::{DeletesPolicy, LoadKind, TableConfig};

use crate::bronze::{BATCH_ID, EXTRACT_TS, LANDED_AT};
use crate::scd2::{IS_CURRENT, IS_DELETED, ROW_HASH, VALID_FROM, VALID_TO, latest_per_key};
use crate::{Dialect, literal, quote, row_fingerprint, standardised, timestamp_literal};

/// One test: its name in reports, and the query returning its failing rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilverTest {
    /// What holds when no row is returned.
    pub name: &'static str,
    /// The query.
    pub sql: String,
}

/// The name of the test that reconciles a full extract with the history.
pub const RECONCILES: &str = "the landed extract reconciles with the history";

/// The extract a staged snapshot applied, to reconcile it with the history.
#[derive(Debug, Clone, Copy)]
pub struct Extract<'a> {
    /// The bronze table (or relation) holding the landed rows.
    pub bronze: &'a str,
    /// The batch that landed them.
    pub batch: &'a str,
    /// The extract's time.
    pub extract_ts: DateTime<Utc>,
}

fn keys(t: &TableConfig) -> String {
    t.primary_key
        .iter()
        .map(|k| quote(k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tests of `silver` (a table or relation holding `t`'s history); with `extract`, also the
/// reconciliation of that extract with the history.
pub fn tests(
    dialect: Dialect,
    t: &TableConfig,
    silver: &str,
    extract: Option<&Extract<'_>>,
) -> Vec<SilverTest> {
    let pk = keys(t);
    let mut tests = vec![
        SilverTest {
            name: "one current row per key",
            sql: format!(
                "SELECT {pk}, COUNT(*) AS _current_rows FROM {silver} WHERE {IS_CURRENT} GROUP BY {pk} HAVING COUNT(*) > 1 LIMIT 20"
            ),
        },
        SilverTest {
            name: "validity intervals are not inverted",
            sql: format!(
                "SELECT {pk}, {VALID_FROM}, {VALID_TO} FROM {silver} WHERE {VALID_TO} IS NOT NULL AND {VALID_TO} <= {VALID_FROM} LIMIT 20"
            ),
        },
        SilverTest {
            name: "validity intervals do not overlap",
            sql: overlaps(dialect, t, silver),
        },
    ];
    if let Some(extract) = extract {
        tests.push(match t.load {
            LoadKind::Full => reconciles(dialect, t, silver, extract),
            LoadKind::Cdc => keys_present(dialect, t, silver, extract),
        });
    }
    tests
}

/// The versions of `silver` valid at or after `since` (current, or closed at or after it), as a
/// relation: what an applied or late extract can have changed, so what its tests read.
pub fn valid_since(dialect: Dialect, silver: &str, since: DateTime<Utc>) -> String {
    format!(
        "(SELECT * FROM {silver} WHERE {VALID_TO} IS NULL OR {VALID_TO} >= {}) recent",
        timestamp_literal(dialect, Some(since))
    )
}

/// The [`crate::scd2::TALLY`] of every version of `silver` valid at `at` (a deleted version
/// under `new_record` is not one): summed, what the extract applied at `at` summed to when
/// standardise computed its versions ([`crate::scd2::extract_versions_sql`]). Only meaningful
/// where a full extract defines every live key: not under `deletes: ignore`, where keys missing
/// from the extract stay current.
pub fn tally_at(dialect: Dialect, t: &TableConfig, silver: &str, at: DateTime<Utc>) -> String {
    let ts = timestamp_literal(dialect, Some(at));
    let mut columns: Vec<&str> = t.primary_key.iter().map(String::as_str).collect();
    columns.push(ROW_HASH);
    let not_deleted = if t.deletes == DeletesPolicy::NewRecord {
        format!(" AND NOT {IS_DELETED}")
    } else {
        String::new()
    };
    format!(
        "SELECT {tally} AS {TALLY} FROM {silver} WHERE {VALID_FROM} <= {ts} AND ({VALID_TO} IS NULL OR {VALID_TO} > {ts}){not_deleted}",
        tally = row_fingerprint(dialect, &columns),
        TALLY = crate::scd2::TALLY,
    )
}

/// The versions whose validity runs into the next version of their key. Athena compares
/// within a window partition per key (spread over its workers); the embedded engine orders
/// the whole table by key and start once and compares each row with the next, because a
/// window partition per key is its slowest plan (a self-join would grow with the square of
/// a key's versions).
fn overlaps(dialect: Dialect, t: &TableConfig, silver: &str) -> String {
    let pk = keys(t);
    let (window, next_keys, same_key) = match dialect {
        Dialect::Trino => (
            format!("PARTITION BY {pk} ORDER BY {VALID_FROM}"),
            String::new(),
            "_next_from IS NOT NULL".to_owned(),
        ),
        Dialect::DataFusion => {
            let window = format!("ORDER BY {pk}, {VALID_FROM}");
            let next_keys = t
                .primary_key
                .iter()
                .enumerate()
                .map(|(i, k)| format!(", LEAD({}) OVER ({window}) AS _next_key{i}", quote(k)))
                .collect::<String>();
            let same_key = t
                .primary_key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("_next_key{i} = {}", quote(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            (window, next_keys, same_key)
        }
    };
    format!(
        "SELECT {pk}, {VALID_FROM}, {VALID_TO}, _next_from FROM (
           SELECT {pk}, {VALID_FROM}, {VALID_TO}{next_keys},
             LEAD({VALID_FROM}) OVER ({window}) AS _next_from
           FROM {silver}) v
         WHERE {same_key} AND ({VALID_TO} IS NULL OR {VALID_TO} > _next_from) LIMIT 20"
    )
}

/// `b.k = s.k AND ...` over the primary key.
fn on_keys(t: &TableConfig) -> String {
    t.primary_key
        .iter()
        .map(|k| format!("b.{q} = s.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A full extract: every key it holds is in the history's version valid at the extract's time,
/// with the same fingerprint.
fn reconciles(dialect: Dialect, t: &TableConfig, silver: &str, e: &Extract<'_>) -> SilverTest {
    let values: Vec<&str> = t
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| !t.primary_key.iter().any(|k| k == c))
        // Silver's fingerprint covers the tracked columns (`track_history`): the others of a
        // version are the last extract's of its span, not this one's.
        .filter(|c| t.tracks(c))
        .collect();
    let cols: Vec<String> = t.columns.iter().map(|c| standardised(dialect, c)).collect();
    // A literal both engines read as this instant (Trino refuses `T` and `Z`).
    let ts = timestamp_literal(dialect, Some(e.extract_ts));
    let not_deleted = if t.deletes == DeletesPolicy::NewRecord {
        format!(" AND NOT {IS_DELETED}")
    } else {
        String::new()
    };
    let first_key = quote(&t.primary_key[0]);
    // Only the extract's latest landed file defines it: an older file of the same extract time,
    // replaced since, is not reconciled.
    SilverTest {
        name: RECONCILES,
        sql: format!(
            "WITH latest AS (
               SELECT {BATCH_ID} FROM {bronze} WHERE {EXTRACT_TS} = {ts}
               ORDER BY {LANDED_AT} DESC, {BATCH_ID} DESC LIMIT 1),
             typed AS (SELECT {cols}, _row_number FROM {bronze} WHERE {BATCH_ID} = {batch} AND {EXTRACT_TS} = {ts} AND {BATCH_ID} IN (SELECT {BATCH_ID} FROM latest)),
             {one_per_key},
             b AS (SELECT one_per_key.*, {fp} AS _h FROM one_per_key),
             s AS (SELECT * FROM {silver} WHERE {VALID_FROM} <= {ts} AND ({VALID_TO} IS NULL OR {VALID_TO} > {ts}){not_deleted})
             SELECT b.*, s.{ROW_HASH} AS silver_hash FROM b LEFT JOIN s ON {on}
             WHERE s.{first_key} IS NULL OR s.{ROW_HASH} <> b._h LIMIT 20",
            bronze = e.bronze,
            batch = literal(e.batch),
            cols = cols.join(", "),
            one_per_key = latest_per_key(t, "typed", "one_per_key"),
            fp = row_fingerprint(dialect, &values),
            on = on_keys(t),
        ),
    }
}

/// A change batch: every key it inserts or updates is in the history (a `D` for a key never
/// seen changes nothing).
fn keys_present(dialect: Dialect, t: &TableConfig, silver: &str, e: &Extract<'_>) -> SilverTest {
    let cdc = t.cdc.as_ref().expect("cdc tables have change columns");
    let pk = keys(t);
    let op = quote(&cdc.operation_column);
    let not_truncate = cdc
        .truncate
        .as_ref()
        .map(|v| format!(" AND UPPER(TRIM({op})) <> {}", literal(v)))
        .unwrap_or_default();
    let key_cols: Vec<String> = t
        .primary_key
        .iter()
        .map(|k| standardised(dialect, t.column(k).expect("declared")))
        .collect();
    let first_key = quote(&t.primary_key[0]);
    SilverTest {
        name: "every key of the batch is in the history",
        sql: format!(
            "WITH b AS (SELECT DISTINCT {key_cols} FROM {bronze} WHERE {BATCH_ID} = {batch} AND UPPER(TRIM({op})) <> 'D'{not_truncate})
             SELECT b.* FROM b LEFT JOIN (SELECT DISTINCT {pk} FROM {silver}) s ON {on} WHERE s.{first_key} IS NULL LIMIT 20",
            key_cols = key_cols.join(", "),
            bronze = e.bronze,
            batch = literal(e.batch),
            on = on_keys(t),
        ),
    }
}
