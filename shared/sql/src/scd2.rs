//! Silver history (SCD2) as one query over bronze ([`history_sql`]), and the incremental step
//! for an extract newer than the history ([`apply_extract_sql`]), which gives the same result.
//!
//! One file (over 700 lines) because the rebuild, the apply and the late splice are three
//! renderings of one history rule and share its pieces; the property tests hold them equal.
//!
//! Silver is a function of bronze: the rebuild query recomputes a table's whole history from every
//! extract bronze holds, ordered by extract time (full loads) or change time (cdc loads). So a
//! late, out-of-order or repeated delivery gives exactly the history of delivering every extract
//! once, in order, and an identical re-delivery changes nothing. The query is plain SQL with
//! window functions, rendered per [`Dialect`]: DataFusion locally, Trino for Athena (where
//! [`apply_extract_merge`] renders a MERGE for the in-order incremental case).
//!
//! Full loads, one extract at a time T (see DESIGN.md): a new key opens a version from T; a
//! changed row (any non-key column, NULL-safe) closes the current version at T and opens one; an
//! unchanged row does nothing; a missing key follows `deletes` (ignore: nothing; invalidate: close
//! at T; new_record: close at T and open a deleted version from T); a key that reappears opens a
//! new version. Two files with the same extract time: the one landed last is that extract.
//!
//! Cdc loads: each change row (`I`, `U`, `D`) is an event at its change time, in order. Several
//! changes of one key at the same instant: the last one (by extract time, then position in the
//! file) is the key's state at that instant. `I`/`U` open a version unless nothing changed; `D`
//! closes the current version (and under `new_record` opens a deleted version with the last
//! values). Identical change rows delivered twice count once.
//!
//! History on a column subset (`track_history` / `ignore_changes`): only a change of a tracked
//! column opens a version; a change confined to the others updates the current version in place.
//! So a version is a run of extracts (or changes) of one key with the same tracked values, and its
//! untracked values are those of the run's last extract (change); `_row_hash` fingerprints the
//! tracked columns only. Rebuilding and applying give the same result, as without it.

use chrono::{DateTime, Utc};
use floe_config::{DeletesPolicy, LoadKind, TableConfig};

use crate::bronze::{BATCH_ID, EXTRACT_TS, LANDED_AT, ROW_NUMBER};
use crate::{Dialect, quote, row_fingerprint, standardised, timestamp_literal};

/// Silver's history columns, after the source columns.
pub const VALID_FROM: &str = "valid_from";
/// End of a version's validity (exclusive); NULL while current.
pub const VALID_TO: &str = "valid_to";
/// True for the version valid now.
pub const IS_CURRENT: &str = "is_current";
/// True for a version that records a deletion (`deletes: new_record`).
pub const IS_DELETED: &str = "is_deleted";
/// Fingerprint of the non-key values, for change detection.
pub const ROW_HASH: &str = "_row_hash";

fn list(cols: &[&str], prefix: &str) -> String {
    cols.iter()
        .map(|c| format!("{prefix}{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_eq(keys: &[&str], a: &str, b: &str) -> String {
    keys.iter()
        .map(|k| format!("{a}.{q} = {b}.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The value columns whose changes open a version, and those updated in place in the current
/// version (`track_history` / `ignore_changes`; the second list is empty by default).
fn split_tracked<'a>(table: &TableConfig, values: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    values.iter().copied().partition(|c| table.tracks(c))
}

/// The query computing `table`'s full silver history from its bronze table `bronze`.
pub fn history_sql(dialect: Dialect, table: &TableConfig, bronze: &str) -> String {
    match table.load {
        LoadKind::Full => full_load(dialect, table, bronze),
        LoadKind::Cdc => cdc_load(dialect, table, bronze),
    }
}

/// Bronze's text columns standardised and typed, with the batch metadata.
pub fn typed(dialect: Dialect, table: &TableConfig, bronze: &str) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| standardised(dialect, c))
        .collect();
    format!(
        "SELECT {}, {BATCH_ID}, {EXTRACT_TS}, {LANDED_AT}, {ROW_NUMBER} FROM {bronze}",
        cols.join(", ")
    )
}

fn full_load(dialect: Dialect, table: &TableConfig, bronze: &str) -> String {
    let keys: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
    let all: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let values: Vec<&str> = all.iter().copied().filter(|c| !keys.contains(c)).collect();
    let (tracked, untracked) = split_tracked(table, &values);
    let pk = list(&keys, "");
    let deletes = table.deletes;
    let tracks_deletes = deletes != DeletesPolicy::Ignore;
    let dedupe = table
        .dedupe_by
        .as_ref()
        .map(|d| format!("{} DESC NULLS LAST, ", quote(d)))
        .unwrap_or_default();
    let gap = if tracks_deletes {
        " OR _prev_n < _n - 1"
    } else {
        ""
    };
    let gone = if tracks_deletes {
        "CASE WHEN _next_n IS NULL AND _n < _max_n THEN _n + 1 \
         WHEN _next_n > _n + 1 THEN _n + 1 END"
    } else {
        "CAST(NULL AS BIGINT)"
    };
    // Untracked columns (`track_history`) take the values of the last extract of the version,
    // as in-place updates of the current version leave them.
    let out_cols = all
        .iter()
        .map(|c| {
            if untracked.contains(c) {
                format!("la.{}", quote(c))
            } else {
                format!("sp.{}", quote(c))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (lasts, join_lasts) = if untracked.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!(
                "lasts AS (
  SELECT {pk}, _version, {cols} FROM (
    SELECT v.*, ROW_NUMBER() OVER (PARTITION BY {pk}, _version ORDER BY _n DESC) AS _last FROM versioned v
  ) x WHERE _last = 1
),
",
                cols = list(&untracked, "")
            ),
            format!(
                "\nJOIN lasts la ON {} AND la._version = sp._version",
                key_eq(&keys, "sp", "la")
            ),
        )
    };
    let is_deleted = |v: &str| {
        if deletes == DeletesPolicy::NewRecord {
            format!(", {v} AS {IS_DELETED}")
        } else {
            String::new()
        }
    };
    let mut sql = format!(
        "WITH typed AS ({typed}),
batches AS (
  SELECT {EXTRACT_TS}, {BATCH_ID}, MAX({LANDED_AT}) AS _landed FROM typed GROUP BY {EXTRACT_TS}, {BATCH_ID}
),
extracts AS (
  SELECT {EXTRACT_TS}, {BATCH_ID}, ROW_NUMBER() OVER (ORDER BY {EXTRACT_TS}) AS _n FROM (
    SELECT {EXTRACT_TS}, {BATCH_ID},
      ROW_NUMBER() OVER (PARTITION BY {EXTRACT_TS} ORDER BY _landed DESC, {BATCH_ID} DESC) AS _latest
    FROM batches
  ) b WHERE _latest = 1
),
last_extract AS (SELECT MAX(_n) AS _max_n FROM extracts),
rows_in AS (
  SELECT t.*, e._n FROM typed t
  JOIN extracts e ON t.{BATCH_ID} = e.{BATCH_ID} AND t.{EXTRACT_TS} = e.{EXTRACT_TS}
),
deduped AS (
  SELECT * FROM (
    SELECT r.*, ROW_NUMBER() OVER (PARTITION BY {pk}, _n ORDER BY {dedupe}{ROW_NUMBER} DESC) AS _dup
    FROM rows_in r
  ) d WHERE _dup = 1
),
hashed AS (SELECT d.*, {fingerprint} AS {ROW_HASH} FROM deduped d),
seq AS (
  SELECT h.*,
    LAG(_n) OVER (PARTITION BY {pk} ORDER BY _n) AS _prev_n,
    LAG({ROW_HASH}) OVER (PARTITION BY {pk} ORDER BY _n) AS _prev_hash,
    LEAD(_n) OVER (PARTITION BY {pk} ORDER BY _n) AS _next_n
  FROM hashed h
),
marked AS (
  SELECT s.*,
    CASE WHEN _prev_n IS NULL{gap} OR _prev_hash <> {ROW_HASH} THEN 1 ELSE 0 END AS _starts,
    {gone} AS _gone_n
  FROM seq s CROSS JOIN last_extract
),
versioned AS (
  SELECT m.*, SUM(_starts) OVER (PARTITION BY {pk} ORDER BY _n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _version
  FROM marked m
),
{lasts}ends AS (SELECT {pk}, _version, MAX(_gone_n) AS _gone_n FROM versioned GROUP BY {pk}, _version),
starts AS (
  SELECT v.*, LEAD(_n) OVER (PARTITION BY {pk} ORDER BY _n) AS _next_start_n
  FROM versioned v WHERE _starts = 1
),
spans AS (
  SELECT s.*, g._gone_n AS _end_n FROM starts s
  JOIN ends g ON {join} AND s._version = g._version
)
SELECT {out_cols}, ef.{EXTRACT_TS} AS {VALID_FROM}, COALESCE(eg.{EXTRACT_TS}, en.{EXTRACT_TS}) AS {VALID_TO},
  (sp._end_n IS NULL AND sp._next_start_n IS NULL) AS {IS_CURRENT}{live_flag},
  sp.{ROW_HASH}, sp.{BATCH_ID}
FROM spans sp{join_lasts}
JOIN extracts ef ON ef._n = sp._n
LEFT JOIN extracts eg ON eg._n = sp._end_n
LEFT JOIN extracts en ON en._n = sp._next_start_n",
        typed = typed(dialect, table, bronze),
        fingerprint = row_fingerprint(dialect, &tracked),
        join = key_eq(&keys, "s", "g"),
        live_flag = is_deleted("FALSE"),
    );
    if deletes == DeletesPolicy::NewRecord {
        sql.push_str(&format!(
            "
UNION ALL
SELECT {out_cols}, eg.{EXTRACT_TS} AS {VALID_FROM}, en.{EXTRACT_TS} AS {VALID_TO},
  (sp._next_start_n IS NULL) AS {IS_CURRENT}, TRUE AS {IS_DELETED},
  sp.{ROW_HASH}, eg.{BATCH_ID}
FROM spans sp{join_lasts}
JOIN extracts eg ON eg._n = sp._end_n
LEFT JOIN extracts en ON en._n = sp._next_start_n"
        ));
    }
    sql
}

fn cdc_load(dialect: Dialect, table: &TableConfig, bronze: &str) -> String {
    let cdc = table
        .cdc
        .as_ref()
        .expect("a cdc table has its change columns (checked by config)");
    let keys: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
    let all: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let ts = quote(&cdc.timestamp_column);
    let values: Vec<&str> = all
        .iter()
        .copied()
        .filter(|c| !keys.contains(c) && *c != cdc.operation_column && *c != cdc.timestamp_column)
        .collect();
    let (tracked, untracked) = split_tracked(table, &values);
    let pk = list(&keys, "");
    let window = format!("PARTITION BY {pk} ORDER BY _i");
    let new_record = table.deletes == DeletesPolicy::NewRecord;
    // With untracked columns, a version's values of those columns are the last change's before
    // the next event: `_fin_<c>`; the version's fingerprint is over the tracked columns only.
    let value_of = |c: &str| {
        if untracked.contains(&c) {
            quote(&format!("_fin_{c}"))
        } else {
            quote(c)
        }
    };
    let h = if untracked.is_empty() {
        ROW_HASH
    } else {
        "_track_hash"
    };
    let lags: String = values
        .iter()
        .map(|c| {
            format!(
                ", LAG({q}) OVER ({window}) AS {l}",
                q = value_of(c),
                l = quote(&format!("_last_{c}"))
            )
        })
        .collect();
    let is_event = format!(
        "(_op <> 'D' AND (_prev_op IS NULL OR _prev_op = 'D' OR _prev_hash <> {h})) \
         OR (_op = 'D' AND _prev_op IS NOT NULL AND _prev_op <> 'D')"
    );
    let events = if untracked.is_empty() {
        format!(
            "seq AS (
  SELECT o.*, LAG(_op) OVER ({window}) AS _prev_op, LAG({ROW_HASH}) OVER ({window}) AS _prev_hash FROM ordered o
),
events AS (SELECT * FROM seq WHERE {is_event})"
        )
    } else {
        // Each event starts a group with the changes up to the next event (changes of untracked
        // columns only); the group's last change gives the version its untracked values.
        let fins: Vec<String> = untracked
            .iter()
            .map(|c| format!("{} AS {}", quote(c), quote(&format!("_fin_{c}"))))
            .collect();
        let f_fins: Vec<String> = untracked
            .iter()
            .map(|c| format!("f.{}", quote(&format!("_fin_{c}"))))
            .collect();
        format!(
            "retracked AS (SELECT o.*, {tfp} AS _track_hash FROM ordered o),
seq AS (
  SELECT o.*, LAG(_op) OVER ({window}) AS _prev_op, LAG(_track_hash) OVER ({window}) AS _prev_hash FROM retracked o
),
flagged AS (SELECT s.*, CASE WHEN {is_event} THEN 1 ELSE 0 END AS _ev FROM seq s),
grouped AS (
  SELECT f.*, SUM(_ev) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _grp FROM flagged f
),
finals AS (
  SELECT {pk}, _grp AS _fgrp, {fins} FROM (
    SELECT g.*, ROW_NUMBER() OVER (PARTITION BY {pk}, _grp ORDER BY _i DESC) AS _rl FROM grouped g
  ) x WHERE _rl = 1
),
events AS (
  SELECT g.*, {f_fins} FROM grouped g JOIN finals f ON {gf} AND g._grp = f._fgrp WHERE g._ev = 1
)",
            tfp = row_fingerprint(dialect, &tracked),
            fins = fins.join(", "),
            f_fins = f_fins.join(", "),
            gf = key_eq(&keys, "g", "f"),
        )
    };
    let out_cols = all
        .iter()
        .map(|c| {
            if untracked.contains(c) {
                format!("{} AS {}", value_of(c), quote(c))
            } else {
                quote(c)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "WITH typed AS ({typed}),
{hashed},
uniq AS (
  SELECT * FROM (
    SELECT h.*, ROW_NUMBER() OVER (PARTITION BY {pk}, {ts}, _op, {ROW_HASH} ORDER BY {LANDED_AT}, {BATCH_ID}, {ROW_NUMBER}) AS _dup
    FROM hashed h
  ) x WHERE _dup = 1
),
last_per_instant AS (
  SELECT * FROM (
    SELECT u.*, ROW_NUMBER() OVER (PARTITION BY {pk}, {ts} ORDER BY {EXTRACT_TS} DESC, {ROW_NUMBER} DESC, {BATCH_ID} DESC) AS _last
    FROM uniq u
  ) l WHERE _last = 1
),
{ordered},
{events},
spans AS (
  SELECT e.*, LEAD(CAST({ts} AS TIMESTAMP)) OVER ({window}) AS _next_ts{lags} FROM events e
)
SELECT {out_cols}, CAST({ts} AS TIMESTAMP) AS {VALID_FROM}, _next_ts AS {VALID_TO},
  (_next_ts IS NULL) AS {IS_CURRENT}{live_flag}, {h} AS {ROW_HASH}, {BATCH_ID}
FROM spans WHERE _op <> 'D'",
        typed = typed(dialect, table, bronze),
        live_flag = if new_record { format!(", FALSE AS {IS_DELETED}") } else { String::new() },
        ordered = ordered_changes(dialect, table, &keys, &values),
        hashed = hashed_changes(dialect, table, &keys, &values),
    );
    if new_record {
        let deleted_cols: Vec<String> = all
            .iter()
            .map(|c| {
                if values.contains(c) {
                    format!("{} AS {}", quote(&format!("_last_{c}")), quote(c))
                } else {
                    quote(c)
                }
            })
            .collect();
        sql.push_str(&format!(
            "
UNION ALL
SELECT {}, CAST({ts} AS TIMESTAMP) AS {VALID_FROM}, _next_ts AS {VALID_TO},
  (_next_ts IS NULL) AS {IS_CURRENT}, TRUE AS {IS_DELETED}, {h} AS {ROW_HASH}, {BATCH_ID}
FROM spans WHERE _op = 'D'",
            deleted_cols.join(", ")
        ));
    }
    sql
}

/// The `hashed` CTE of a cdc history: the typed changes with their operation (`_op`) and
/// fingerprint. With a truncate marker (`cdc.truncate_value`), each marker becomes a `D` of every
/// key the table has seen, at the marker's time (a key with no current version then is not
/// affected, as for any `D`), and the markers themselves are left out.
fn hashed_changes(dialect: Dialect, table: &TableConfig, keys: &[&str], values: &[&str]) -> String {
    let cdc = table
        .cdc
        .as_ref()
        .expect("a cdc table has its change columns");
    let op = quote(&cdc.operation_column);
    let base = format!(
        "SELECT t.*, UPPER(TRIM(CAST({op} AS VARCHAR))) AS _op, {} AS {ROW_HASH} FROM typed t",
        row_fingerprint(dialect, values)
    );
    let Some(marker) = &cdc.truncate else {
        return format!("hashed AS ({base})");
    };
    let marker = crate::literal(marker);
    let pk = list(keys, "");
    let columns: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let synthetic: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let q = quote(&c.name);
            if keys.contains(&c.name.as_str()) {
                format!("k.{q}")
            } else if c.name == cdc.timestamp_column {
                format!("m._t_ts AS {q}")
            } else if c.name == cdc.operation_column {
                format!("CAST({marker} AS {}) AS {q}", crate::sql_type(c.ty))
            } else {
                format!("CAST(NULL AS {}) AS {q}", crate::sql_type(c.ty))
            }
        })
        .collect();
    format!(
        "marked AS ({base}),
marks AS (
  SELECT DISTINCT {ts} AS _t_ts, {BATCH_ID} AS _t_b, {EXTRACT_TS} AS _t_ex, {LANDED_AT} AS _t_la, {ROW_NUMBER} AS _t_rn
  FROM marked WHERE _op = {marker}
),
seen AS (SELECT DISTINCT {pk} FROM marked WHERE _op <> {marker}),
hashed AS (
  SELECT {cols}, {BATCH_ID}, {EXTRACT_TS}, {LANDED_AT}, {ROW_NUMBER}, _op, {ROW_HASH} FROM marked WHERE _op <> {marker}
  UNION ALL
  SELECT {synthetic}, m._t_b AS {BATCH_ID}, m._t_ex AS {EXTRACT_TS}, m._t_la AS {LANDED_AT}, m._t_rn AS {ROW_NUMBER},
    'D' AS _op, '' AS {ROW_HASH}
  FROM seen k CROSS JOIN marks m
)",
        ts = quote(&cdc.timestamp_column),
        cols = columns.join(", "),
        synthetic = synthetic.join(", "),
    )
}

/// The `ordered` CTE of a cdc history: each key's changes numbered in time (`_i`). With
/// `ignore_null_updates`, a NULL in a change keeps the key's last value of that column since its
/// last delete (`LAST_VALUE ... IGNORE NULLS` over the key's life), and the row's fingerprint is
/// taken again over the values as filled.
fn ordered_changes(
    dialect: Dialect,
    table: &TableConfig,
    keys: &[&str],
    values: &[&str],
) -> String {
    let pk = list(keys, "");
    let cdc = table
        .cdc
        .as_ref()
        .expect("a cdc table has its change columns");
    let ts = quote(&cdc.timestamp_column);
    let numbered = format!(
        "SELECT u.*, ROW_NUMBER() OVER (PARTITION BY {pk} ORDER BY {ts}) AS _i FROM last_per_instant u"
    );
    if !table.ignore_null_updates || values.is_empty() {
        return format!("ordered AS ({numbered})");
    }
    // A delete ends a life: the changes after it start from nothing.
    let life = format!(
        "COALESCE(SUM(CASE WHEN _op = 'D' THEN 1 ELSE 0 END) OVER (PARTITION BY {pk} ORDER BY _i \
         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)"
    );
    let filled: Vec<String> = values
        .iter()
        .map(|c| {
            format!(
                "LAST_VALUE({q}) IGNORE NULLS OVER (PARTITION BY {pk}, _life ORDER BY _i \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {q}",
                q = quote(c)
            )
        })
        .collect();
    let kept: Vec<String> = keys
        .iter()
        .copied()
        .chain([cdc.operation_column.as_str(), cdc.timestamp_column.as_str()])
        .map(quote)
        .chain(
            [BATCH_ID, EXTRACT_TS, LANDED_AT, ROW_NUMBER, "_op", "_i"]
                .iter()
                .map(|c| c.to_string()),
        )
        .collect();
    format!(
        "numbered AS ({numbered}),
lives AS (SELECT n.*, {life} AS _life FROM numbered n),
filled AS (SELECT {kept}, {filled} FROM lives),
ordered AS (SELECT f.*, {fingerprint} AS {ROW_HASH} FROM filled f)",
        kept = kept.join(", "),
        filled = filled.join(", "),
        fingerprint = row_fingerprint(dialect, values),
    )
}

/// CTEs (to follow a `WITH`) that define `name` as the rows of the CTE `rows` (one extract,
/// with `_row_number`) keeping the latest row per key: with `dedupe_by`, the highest value
/// (NULLs last), then the last in the file. Without `dedupe_by` landing has refused any file
/// with a key twice, so every row is kept.
///
/// Aggregates and joins rather than `ROW_NUMBER() OVER (PARTITION BY <key>)`: a window
/// partition per key is the slowest way to do this on the embedded engine.
pub fn latest_per_key(table: &TableConfig, rows: &str, name: &str) -> String {
    let keys: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
    let pk = list(&keys, "");
    match &table.dedupe_by {
        None => format!("{name} AS (SELECT * FROM {rows})"),
        Some(d) => {
            let d = quote(d);
            format!(
                "{name}_best AS (SELECT {pk}, MAX({d}) AS _best FROM {rows} GROUP BY {pk}),
{name}_last AS (
  SELECT {tpk}, MAX(t.{ROW_NUMBER}) AS _rn FROM {rows} t JOIN {name}_best b ON {tb}
  WHERE t.{d} = b._best OR b._best IS NULL GROUP BY {tpk}
),
{name} AS (SELECT t.* FROM {rows} t JOIN {name}_last l ON {tl} AND t.{ROW_NUMBER} = l._rn)",
                tpk = list(&keys, "t."),
                tb = key_eq(&keys, "t", "b"),
                tl = key_eq(&keys, "t", "l"),
            )
        }
    }
}

/// What both forms of the incremental step ([`apply_extract_sql`], [`apply_extract_merge`])
/// start from.
struct ApplyParts<'a> {
    keys: Vec<&'a str>,
    all: Vec<&'a str>,
    tracked: Vec<&'a str>,
    untracked: Vec<&'a str>,
    new_record: bool,
    /// The extract time, and no end, as literals.
    t: String,
    no_end: String,
    /// The batch id as a literal.
    batch: String,
    /// The extract's rows: the batch, and its extract time too, since bronze is partitioned by
    /// its day and only that day is read.
    extract: String,
    /// CTEs keeping the latest row per key of `typed` as `src`.
    latest: String,
}

impl<'a> ApplyParts<'a> {
    fn of(
        dialect: Dialect,
        table: &'a TableConfig,
        bronze: &str,
        batch_id: &str,
        extract_ts: DateTime<Utc>,
    ) -> Self {
        let keys: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
        let all: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let values: Vec<&str> = all.iter().copied().filter(|c| !keys.contains(c)).collect();
        let (tracked, untracked) = split_tracked(table, &values);
        let t = timestamp_literal(dialect, Some(extract_ts));
        let batch = crate::literal(batch_id);
        ApplyParts {
            extract: format!(
                "(SELECT * FROM {bronze} WHERE {BATCH_ID} = {batch} AND {EXTRACT_TS} = {t}) AS this_extract"
            ),
            keys,
            all,
            tracked,
            untracked,
            new_record: table.deletes == DeletesPolicy::NewRecord,
            no_end: timestamp_literal(dialect, None),
            latest: latest_per_key(table, "typed", "src"),
            t,
            batch,
        }
    }
}

/// The incremental step of a full load: silver's whole new contents after one extract (batch
/// `batch_id` of `bronze`, extract time `extract_ts`) that is newer than every extract silver
/// already holds. `silver` is the table as it was before the extract.
///
/// It gives exactly what [`history_sql`] gives over all of bronze in that case (a test checks it
/// against the reference model), but reads only silver and the one extract, and joins on the key
/// instead of ordering every version of every key:
/// - every version of silver is kept; a current version closes at `extract_ts` when its key
///   changed or, under `invalidate` / `new_record`, is missing from the extract (a deleted version
///   closes when its key comes back);
/// - a key of the extract opens a version from `extract_ts` when it has no current version, its
///   values changed, or its current version records a deletion;
/// - under `new_record`, a live key missing from the extract opens a deleted version with its
///   last values.
///
/// Rows with the same key in one extract are refused at landing unless the table sets
/// `dedupe_by`; then the latest row per key is kept (the highest `dedupe_by`, NULLs last, then
/// the last in the file), as [`history_sql`] does.
pub fn apply_extract_sql(
    dialect: Dialect,
    table: &TableConfig,
    bronze: &str,
    silver: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> String {
    apply_with(
        dialect,
        table,
        ExtractRows::Bronze(bronze),
        silver,
        batch_id,
        extract_ts,
        false,
    )
}

/// The name [`apply_extract_over`] reads the extract's versions under.
pub const EXTRACT_VERSIONS: &str = "floe_extract_versions";
/// The column of [`extract_versions_sql`] that the audit's tally sums: a fingerprint of the key
/// and the row's fingerprint.
pub const TALLY: &str = "_tally";

/// The versions one extract would open: its rows typed and standardised, the latest per key,
/// each with its fingerprint (`_row_hash`) and a [`TALLY`] of key and fingerprint. What
/// [`apply_extract_sql`] computes first and reads twice; the embedded engine computes it once,
/// holds it in memory and runs [`apply_extract_over`] on it, and the audit reconciles the history
/// with the extract by summing the same tally over the versions valid at the extract time
/// ([`crate::silver_tests::tally_at`]).
pub fn extract_versions_sql(
    dialect: Dialect,
    table: &TableConfig,
    bronze: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> String {
    let ApplyParts {
        keys,
        all,
        tracked,
        extract,
        latest,
        ..
    } = ApplyParts::of(dialect, table, bronze, batch_id, extract_ts);
    let mut tally: Vec<&str> = keys.clone();
    tally.push(ROW_HASH);
    format!(
        "WITH typed AS ({typed}),
{latest},
n AS (SELECT {src_cols}, {fingerprint} AS {ROW_HASH} FROM src)
SELECT n.*, {tally} AS {TALLY} FROM n",
        typed = typed(dialect, table, &extract),
        src_cols = list(&all, ""),
        fingerprint = row_fingerprint(dialect, &tracked),
        tally = row_fingerprint(dialect, &tally),
    )
}

/// [`apply_extract_sql`] reading the extract's versions from [`EXTRACT_VERSIONS`], the rows of
/// [`extract_versions_sql`] (held in memory by the engine), instead of computing them from
/// bronze.
pub fn apply_extract_over(
    dialect: Dialect,
    table: &TableConfig,
    silver: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> String {
    apply_with(
        dialect,
        table,
        ExtractRows::Held,
        silver,
        batch_id,
        extract_ts,
        false,
    )
}

/// The column of [`apply_extract_delta`]'s rows that says a row replaces the current version
/// with the same key and `valid_from`.
pub const REPLACES: &str = "_replaces";

/// The columns that name the version a row of [`apply_extract_delta`] replaces: the key and
/// `valid_from`.
pub fn delta_match_columns(table: &TableConfig) -> Vec<String> {
    let mut on: Vec<String> = table.primary_key.clone();
    on.push(VALID_FROM.to_owned());
    on
}

/// [`apply_extract_over`] as changes only (merge-on-read): the current versions this extract
/// changes, as they become (closed, or their untracked values taken in place), each marked
/// [`REPLACES`] (the stored version is to be replaced, matched on [`delta_match_columns`]), and
/// the versions it opens. Every version it leaves alone is left out, so the write costs the
/// changed rows instead of the whole history; applied over silver, the result is the same table
/// [`apply_extract_over`] writes.
pub fn apply_extract_delta(
    dialect: Dialect,
    table: &TableConfig,
    silver: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> String {
    apply_with(
        dialect,
        table,
        ExtractRows::Held,
        silver,
        batch_id,
        extract_ts,
        true,
    )
}

/// Where the incremental step reads the extract's versions from.
enum ExtractRows<'a> {
    /// Computed from this bronze relation.
    Bronze(&'a str),
    /// Read from [`EXTRACT_VERSIONS`].
    Held,
}

/// `delta`: the changed and new versions only, marked [`REPLACES`] or not (see
/// [`apply_extract_delta`]); otherwise the whole new table.
fn apply_with(
    dialect: Dialect,
    table: &TableConfig,
    rows: ExtractRows<'_>,
    silver: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
    delta: bool,
) -> String {
    debug_assert_eq!(table.load, LoadKind::Full, "cdc tables are rebuilt");
    let bronze = match rows {
        ExtractRows::Bronze(b) => b,
        ExtractRows::Held => EXTRACT_VERSIONS,
    };
    let ApplyParts {
        keys,
        all,
        tracked,
        untracked,
        new_record,
        t,
        no_end,
        batch,
        extract,
        latest,
    } = ApplyParts::of(dialect, table, bronze, batch_id, extract_ts);
    let pk = list(&keys, "");
    let is_deleted = |v: &str| {
        if new_record {
            format!(", {v} AS {IS_DELETED}")
        } else {
            String::new()
        }
    };
    // Whether the current version `s` ends at this extract, given the extract's hash `k`
    // (NULL: the key is missing).
    let changed = format!("k._new_hash <> s.{ROW_HASH}");
    let closes = match table.deletes {
        DeletesPolicy::Ignore => {
            format!("s.{IS_CURRENT} AND k._new_hash IS NOT NULL AND {changed}")
        }
        DeletesPolicy::Invalidate => {
            format!("s.{IS_CURRENT} AND (k._new_hash IS NULL OR {changed})")
        }
        DeletesPolicy::NewRecord => format!(
            "s.{IS_CURRENT} AND CASE WHEN s.{IS_DELETED} THEN k._new_hash IS NOT NULL \
             ELSE (k._new_hash IS NULL OR {changed}) END"
        ),
    };
    // `cur`'s columns are named apart from `n`'s on purpose: with both called `_row_hash`,
    // DataFusion 53 pushed `c._row_hash IS NULL OR ...` below the right join as a filter on
    // `n`'s own hash and returned no new versions at all.
    let reopens = if new_record {
        " OR c._cur_deleted".to_owned()
    } else {
        String::new()
    };
    // An untracked column of a current version that stays current takes the extract's value
    // (an update in place); every other version keeps its values.
    let stays = format!(
        "s.{IS_CURRENT} AND k._new_hash = s.{ROW_HASH}{}",
        if new_record {
            format!(" AND NOT s.{IS_DELETED}")
        } else {
            String::new()
        }
    );
    let kept_or_updated = all
        .iter()
        .map(|c| {
            let q = quote(c);
            if untracked.contains(c) {
                format!(
                    "CASE WHEN {stays} THEN k.{} ELSE s.{q} END AS {q}",
                    quote(&format!("_new_{c}"))
                )
            } else {
                format!("s.{q}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let n = match rows {
        ExtractRows::Bronze(_) => format!(
            "WITH typed AS ({typed}),
{latest},
n AS (SELECT {src_cols}, {fingerprint} AS {ROW_HASH} FROM src)",
            typed = typed(dialect, table, &extract),
            src_cols = list(&all, ""),
            fingerprint = row_fingerprint(dialect, &tracked),
        ),
        ExtractRows::Held => format!("WITH n AS (SELECT * FROM {EXTRACT_VERSIONS})"),
    };
    // As changes only: the current versions that end or take new untracked values, marked as
    // replacing the stored ones; every other column marks its rows as new.
    let (replacing, adding, changes_only) = if delta {
        let untracked_changed: String = untracked
            .iter()
            .map(|c| {
                format!(
                    " OR ({stays} AND k.{} IS DISTINCT FROM s.{})",
                    quote(&format!("_new_{c}")),
                    quote(c)
                )
            })
            .collect();
        (
            format!(", TRUE AS {REPLACES}"),
            format!(", FALSE AS {REPLACES}"),
            format!("\nWHERE s.{IS_CURRENT} AND (({closes}){untracked_changed})"),
        )
    } else {
        Default::default()
    };
    let mut sql = format!(
        "{n},
nk AS (SELECT {pk}, {ROW_HASH} AS _new_hash{nk_untracked} FROM n),
cur AS (SELECT {pk}, {ROW_HASH} AS _cur_hash{cur_deleted} FROM {silver} WHERE {IS_CURRENT})
SELECT {s_cols}, s.{VALID_FROM},
  CASE WHEN {closes} THEN {t} ELSE s.{VALID_TO} END AS {VALID_TO},
  CASE WHEN {closes} THEN FALSE ELSE s.{IS_CURRENT} END AS {IS_CURRENT}{s_deleted},
  s.{ROW_HASH}, s.{BATCH_ID}{replacing}
FROM nk k RIGHT JOIN {silver} s ON {ks} AND s.{IS_CURRENT}{changes_only}
UNION ALL
SELECT {n_cols}, {t} AS {VALID_FROM}, {no_end} AS {VALID_TO}, TRUE AS {IS_CURRENT}{live},
  n.{ROW_HASH}, {batch} AS {BATCH_ID}{adding}
FROM cur c RIGHT JOIN n ON {cn}
WHERE c._cur_hash IS NULL OR c._cur_hash <> n.{ROW_HASH}{reopens}",
        cur_deleted = if new_record {
            format!(", {IS_DELETED} AS _cur_deleted")
        } else {
            String::new()
        },
        nk_untracked = untracked
            .iter()
            .map(|c| format!(", {} AS {}", quote(c), quote(&format!("_new_{c}"))))
            .collect::<String>(),
        s_cols = kept_or_updated,
        s_deleted = if new_record {
            format!(", s.{IS_DELETED}")
        } else {
            String::new()
        },
        ks = key_eq(&keys, "k", "s"),
        n_cols = list(&all, "n."),
        live = is_deleted("FALSE"),
        cn = key_eq(&keys, "c", "n"),
    );
    if new_record {
        sql.push_str(&format!(
            "
UNION ALL
SELECT {s_cols}, {t} AS {VALID_FROM}, {no_end} AS {VALID_TO}, TRUE AS {IS_CURRENT}, TRUE AS {IS_DELETED},
  s.{ROW_HASH}, {batch} AS {BATCH_ID}{adding}
FROM nk k RIGHT JOIN {silver} s ON {ks} AND s.{IS_CURRENT}
WHERE s.{IS_CURRENT} AND NOT s.{IS_DELETED} AND k._new_hash IS NULL",
            s_cols = list(&all, "s."),
            ks = key_eq(&keys, "k", "s"),
        ));
    }
    sql
}

/// The incremental step of a full load as one `MERGE` into `target` (Athena: silver's Iceberg
/// table, read as `silver` at its published version): only the versions that change are
/// written, so a day's extract costs the current versions and the extract, not the history.
///
/// The same rules as [`apply_extract_sql`], expressed as changes: a current version that ends at
/// this extract is updated in place (`valid_to`, `is_current`), one whose key's untracked values
/// changed (`track_history` / `ignore_changes`) takes them in place, and the versions this
/// extract opens (new, changed or reappearing keys; deleted versions under `new_record`) are
/// inserted. Target rows are matched on key + `valid_from` among the current versions
/// (`valid_to IS NULL`, the same as `is_current`), which the table's layout ([`partitioning`])
/// keeps in their own partition, so the merge reads the current versions only.
pub fn apply_extract_merge(
    table: &TableConfig,
    bronze: &str,
    silver: &str,
    target: &str,
    batch_id: &str,
    extract_ts: DateTime<Utc>,
) -> String {
    debug_assert_eq!(table.load, LoadKind::Full, "cdc tables are rebuilt");
    let dialect = Dialect::Trino;
    let ApplyParts {
        keys,
        all,
        tracked,
        untracked,
        new_record,
        t,
        no_end,
        batch,
        extract,
        latest,
    } = ApplyParts::of(dialect, table, bronze, batch_id, extract_ts);
    // `s`: a current version; `k`: the extract's row of its key (all NULL when missing).
    let changed = format!("k.{ROW_HASH} <> s.{ROW_HASH}");
    let closes = match table.deletes {
        DeletesPolicy::Ignore => format!("(k.{ROW_HASH} IS NOT NULL AND {changed})"),
        DeletesPolicy::Invalidate => format!("(k.{ROW_HASH} IS NULL OR {changed})"),
        DeletesPolicy::NewRecord => format!(
            "(CASE WHEN s.{IS_DELETED} THEN k.{ROW_HASH} IS NOT NULL \
             ELSE (k.{ROW_HASH} IS NULL OR {changed}) END)"
        ),
    };
    let stays = format!(
        "(k.{ROW_HASH} = s.{ROW_HASH}{})",
        if new_record {
            format!(" AND NOT s.{IS_DELETED}")
        } else {
            String::new()
        }
    );
    let untracked_changed = untracked
        .iter()
        .map(|c| format!("k.{q} IS DISTINCT FROM s.{q}", q = quote(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let updates_in_place = if untracked.is_empty() {
        String::new()
    } else {
        format!(" OR ({stays} AND ({untracked_changed}))")
    };
    // An ended version is matched and updated in place: only what the update sets is carried
    // (the rest is NULL), so the current versions' other columns are read once, by the merge's
    // own scan of the target, not again here.
    let ended_cols = all
        .iter()
        .map(|c| {
            let q = quote(c);
            if untracked.contains(c) {
                format!("CASE WHEN {stays} THEN k.{q} ELSE s.{q} END AS {q}")
            } else {
                format!("NULL AS {q}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let match_keys: Vec<String> = (0..keys.len()).map(|i| format!("_m{i}")).collect();
    let keys_as_match = |alias: &str| {
        keys.iter()
            .zip(&match_keys)
            .map(|(k, m)| format!("{alias}.{} AS {m}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let no_match = match_keys
        .iter()
        .map(|m| format!("NULL AS {m}"))
        .collect::<Vec<_>>()
        .join(", ");
    let deleted = |v: &str| {
        if new_record {
            format!(", {v} AS {IS_DELETED}")
        } else {
            String::new()
        }
    };
    let mut sql = format!(
        "MERGE INTO {target} AS t
USING (
  WITH typed AS ({typed}),
  {latest},
  k AS (SELECT {src_cols}, {fingerprint} AS {ROW_HASH} FROM src),
  cur AS (SELECT * FROM {silver} WHERE {VALID_TO} IS NULL),
  ended AS (
    SELECT {s_match}, s.{VALID_FROM} AS _m_from, {ended_cols}, NULL AS {VALID_FROM},
      CASE WHEN {closes} THEN {t} ELSE {no_end} END AS {VALID_TO},
      NOT {closes} AS {IS_CURRENT}{s_deleted}, NULL AS {ROW_HASH}, NULL AS {BATCH_ID}
    FROM cur s LEFT JOIN k ON {ks}
    WHERE {closes}{updates_in_place}
  ),
  opened AS (
    SELECT {no_match}, {no_end} AS _m_from, {k_cols}, {t} AS {VALID_FROM}, {no_end} AS {VALID_TO},
      TRUE AS {IS_CURRENT}{live}, k.{ROW_HASH}, {batch} AS {BATCH_ID}
    FROM k LEFT JOIN cur s ON {ks}
    WHERE s.{ROW_HASH} IS NULL OR s.{ROW_HASH} <> k.{ROW_HASH}{reopens}
  )",
        typed = typed(dialect, table, &extract),
        src_cols = list(&all, ""),
        fingerprint = row_fingerprint(dialect, &tracked),
        s_match = keys_as_match("s"),
        s_deleted = if new_record {
            format!(", s.{IS_DELETED}")
        } else {
            String::new()
        },
        ks = key_eq(&keys, "k", "s"),
        k_cols = list(&all, "k."),
        live = deleted("FALSE"),
        reopens = if new_record {
            format!(" OR s.{IS_DELETED}")
        } else {
            String::new()
        },
    );
    let mut changes = "SELECT * FROM ended UNION ALL SELECT * FROM opened".to_owned();
    if new_record {
        // A live key missing from the extract: its deletion, a version with its last values.
        sql.push_str(&format!(
            ",
  gone AS (
    SELECT {no_match}, {no_end} AS _m_from, {s_cols}, {t} AS {VALID_FROM}, {no_end} AS {VALID_TO},
      TRUE AS {IS_CURRENT}, TRUE AS {IS_DELETED}, s.{ROW_HASH}, {batch} AS {BATCH_ID}
    FROM cur s LEFT JOIN k ON {ks}
    WHERE k.{ROW_HASH} IS NULL AND NOT s.{IS_DELETED}
  )",
            s_cols = list(&all, "s."),
            ks = key_eq(&keys, "k", "s"),
        ));
        changes.push_str(" UNION ALL SELECT * FROM gone");
    }
    let on = keys
        .iter()
        .zip(&match_keys)
        .map(|(k, m)| format!("t.{} = u.{m}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut set = vec![
        format!("{VALID_TO} = u.{VALID_TO}"),
        format!("{IS_CURRENT} = u.{IS_CURRENT}"),
    ];
    set.extend(
        untracked
            .iter()
            .map(|c| format!("{q} = u.{q}", q = quote(c))),
    );
    let mut insert: Vec<String> = all.iter().map(|c| quote(c)).collect();
    insert.extend([VALID_FROM, VALID_TO, IS_CURRENT].map(String::from));
    if new_record {
        insert.push(IS_DELETED.into());
    }
    insert.extend([ROW_HASH, BATCH_ID].map(String::from));
    sql.push_str(&format!(
        "
  {changes}
) AS u
ON t.{VALID_TO} IS NULL AND {on} AND t.{VALID_FROM} = u._m_from
WHEN MATCHED THEN UPDATE SET {set}
WHEN NOT MATCHED AND u._m_from IS NULL THEN INSERT ({cols}) VALUES ({vals})",
        set = set.join(", "),
        cols = insert.join(", "),
        vals = insert
            .iter()
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    sql
}

/// The extract that follows a late one: its time and the batch that holds it (landed last at
/// that time).
#[derive(Debug, Clone, Copy)]
pub struct NextExtract<'a> {
    /// Its extract time.
    pub extract_ts: DateTime<Utc>,
    /// Its batch.
    pub batch_id: &'a str,
}

/// A late full extract to splice into a table's history ([`late_extract_sql`],
/// [`late_extract_merge`]).
#[derive(Debug, Clone, Copy)]
pub struct LateExtract<'a> {
    /// The table (its effective config).
    pub table: &'a TableConfig,
    /// Bronze, as the statement reads it.
    pub bronze: &'a str,
    /// Silver before the extract, as the statement reads it.
    pub silver: &'a str,
    /// The late batch.
    pub batch_id: &'a str,
    /// Its extract time (T), between two extracts silver holds.
    pub extract_ts: DateTime<Utc>,
    /// The extract after it (N).
    pub next: NextExtract<'a>,
    /// Batches left out of the history (rejected by their audit): under `deletes: ignore`
    /// bronze is read after T, without them.
    pub rejected: &'a [String],
}

/// Whether a late full extract can be spliced into `table`'s history rather than rebuilt from
/// bronze: every value column tracked (a version keeps only its last extract's untracked values,
/// so `track_history` / `ignore_changes` rebuild). Under `invalidate` and `new_record` silver
/// records every key's state at every extract; under `ignore` it does not record whether a key
/// was there between two versions, which the splice reads from bronze's extracts after T.
pub fn splices_late_extracts(table: &TableConfig) -> bool {
    let keys = &table.primary_key;
    table.load == LoadKind::Full
        && table
            .columns
            .iter()
            .all(|c| keys.contains(&c.name) || table.tracks(&c.name))
}

/// A late extract's changes to silver, as CTEs to follow a `WITH`, ending with `changes`: one
/// row per version it removes (`_ins` false; the key as `_m0..` and `valid_from` as `_m_from`)
/// or inserts (`_ins` true; silver's columns).
///
/// The late extract at T changes only the keys whose state at T differs from the version valid
/// at T, and only from T to the key's next observation after T, call it Q: under `invalidate` /
/// `new_record`, where silver records a key's state at every extract (a version's values over
/// its span, absent or deleted between versions), Q is the next extract N for every key; under
/// `ignore`, where absence changes nothing (a key missing at T is not affected, and versions run
/// from one observation of the key to the next change), Q is the first extract after T that
/// holds the key, read from bronze (its key columns in the partitions after T). For those keys:
/// - the version valid at T (if any) ends at T; when it also held at Q, it resumes from Q (Q's
///   batch), with its end and currency;
/// - the late state (the key's values; under `new_record`, a missing key's deleted version with
///   its last values) holds from T to Q (or on, current, when the key has no observation after
///   T), or, when the version valid at Q has that same state, continues as that version (which
///   it replaces) to its end;
/// - under `new_record`, a deletion right after the late values holds them (a deleted version
///   keeps the last values seen): the one from N, or the part from N of a deleted version the
///   late extract interrupts; a key first seen in the late extract and missing at N is deleted
///   from N to its next version.
///
/// Every other key, and every version outside [T, Q), is left as it is. Each input is read once
/// (engines inline a CTE at every use, so the changes are made from one row per affected key,
/// fanned out by kind): the late extract, silver's versions valid at T and at Q (its current
/// versions and those closed after T), and under `ignore` bronze's keys after T.
fn late_changes(dialect: Dialect, late: &LateExtract<'_>) -> String {
    let LateExtract {
        table,
        bronze,
        silver,
        batch_id,
        extract_ts,
        next,
        rejected,
    } = *late;
    debug_assert!(splices_late_extracts(table), "{} is rebuilt", table.name);
    let ApplyParts {
        keys,
        all,
        tracked,
        new_record,
        t,
        batch,
        extract,
        latest,
        ..
    } = ApplyParts::of(dialect, table, bronze, batch_id, extract_ts);
    let tracks_deletes = table.deletes != DeletesPolicy::Ignore;
    let n = timestamp_literal(dialect, Some(next.extract_ts));
    let next_batch = crate::literal(next.batch_id);
    let values: Vec<&str> = all.iter().copied().filter(|c| !keys.contains(c)).collect();
    let late_col = |c: &str| quote(&format!("_l_{c}"));
    let was = |c: &str| quote(&format!("_v_{c}"));
    let covering = |at: &str| {
        format!(
            "SELECT * FROM {silver} WHERE {VALID_FROM} <= {at} AND ({VALID_TO} IS NULL OR {VALID_TO} > {at})"
        )
    };
    // The version valid at T is live (not a deletion).
    let live = if new_record {
        "p._v_from IS NOT NULL AND NOT p._v_del".to_owned()
    } else {
        "p._v_from IS NOT NULL".to_owned()
    };
    // Affected: a late row unlike the live version at T; where absence counts, a live version
    // missing from the late extract.
    let missing = if tracks_deletes {
        format!("\n     OR (p._l_hash IS NULL AND {live})")
    } else {
        String::new()
    };
    // Q for each affected key, with its batch: N, or under `ignore` the key's first observation
    // after T in bronze (the accepted batches; one batch per extract time after T, which the
    // plan checks).
    let (observed, q, q_batch, w) = if tracks_deletes {
        (
            String::new(),
            n.clone(),
            next_batch.clone(),
            format!("w AS ({})", covering(&n)),
        )
    } else {
        let key_cols: Vec<String> = keys
            .iter()
            .map(|k| {
                standardised(
                    dialect,
                    table.column(k).expect("a key is a declared column"),
                )
            })
            .collect();
        let not_rejected = if rejected.is_empty() {
            String::new()
        } else {
            format!(
                " AND {BATCH_ID} NOT IN ({})",
                rejected
                    .iter()
                    .map(|b| crate::literal(b))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let first_batch = match dialect {
            Dialect::Trino => format!("min_by({BATCH_ID}, {EXTRACT_TS})"),
            Dialect::DataFusion => format!("first_value({BATCH_ID} ORDER BY {EXTRACT_TS})"),
        };
        (
            format!(
                "seen AS (
  SELECT {pk}, MIN({EXTRACT_TS}) AS _q, {first_batch} AS _q_batch FROM (
    SELECT {key_cols}, {EXTRACT_TS}, {BATCH_ID} FROM {bronze} WHERE {EXTRACT_TS} > {t}{not_rejected}
  ) b GROUP BY {pk}
),
",
                pk = list(&keys, ""),
                key_cols = key_cols.join(", "),
            ),
            "o._q".to_owned(),
            "o._q_batch".to_owned(),
            format!("w AS (SELECT * FROM {silver} WHERE {VALID_TO} IS NULL OR {VALID_TO} > {t})"),
        )
    };
    let (seen_join, w_at_q) = if tracks_deletes {
        (String::new(), String::new())
    } else {
        (
            format!(" LEFT JOIN seen o ON {}", key_eq(&keys, "h", "o")),
            format!(
                " AND w.{VALID_FROM} <= o._q AND (w.{VALID_TO} IS NULL OR w.{VALID_TO} > o._q)"
            ),
        )
    };
    // The version valid at Q has the late state: the late row's values, or (missing under
    // `new_record`) a deletion, whose values are those of the version valid at T.
    let same_as_late = if new_record {
        format!(
            "CASE WHEN h._l_hash IS NOT NULL THEN w.{IS_DELETED} = FALSE AND w.{ROW_HASH} = h._l_hash \
             ELSE w.{IS_DELETED} END"
        )
    } else {
        format!("w.{ROW_HASH} = h._l_hash")
    };
    // Under `new_record`, a deletion right after the late version holds its values (the last
    // ones seen before it): the deleted version at N.
    let retag = if new_record {
        format!(
            "COALESCE(h._l_hash IS NOT NULL AND w.{IS_DELETED} AND w.{VALID_FROM} = {n}, FALSE)"
        )
    } else {
        "FALSE".into()
    };
    let pair_cols: Vec<String> = keys
        .iter()
        .map(|c| format!("COALESCE(k.{q}, v.{q}) AS {q}", q = quote(c)))
        .chain(
            values
                .iter()
                .map(|c| format!("k.{} AS {}", quote(c), late_col(c))),
        )
        .chain(
            values
                .iter()
                .map(|c| format!("v.{} AS {}", quote(c), was(c))),
        )
        .chain([
            format!("k.{ROW_HASH} AS _l_hash"),
            format!("v.{ROW_HASH} AS _v_hash"),
            format!("v.{VALID_FROM} AS _v_from"),
            format!("v.{VALID_TO} AS _v_to"),
            format!("v.{IS_CURRENT} AS _v_cur"),
            format!("v.{BATCH_ID} AS _v_batch"),
        ])
        .chain(new_record.then(|| format!("v.{IS_DELETED} AS _v_del")))
        .collect();
    // Kinds of change: 1 the version valid at T goes, 2 the one valid at Q goes (the late
    // version continues it, or, `new_record`, a deletion after it takes its values); 3 the one
    // valid at T, ended at T; 4 its part from Q; 5 the late version; `new_record`: 6 a deletion
    // from T, 7 a deletion from N (a key first seen at T), 8 the deletion at N with the late
    // values.
    let kinds = if new_record { 8 } else { 5 };
    // The part from N of an interrupted deletion takes the late values (`new_record`).
    let rest_is_late = if new_record {
        "(d._v_del AND d._l_hash IS NOT NULL)"
    } else {
        "FALSE"
    };
    let value = |c: &str| {
        if keys.contains(&c) {
            format!("d.{}", quote(c))
        } else {
            format!(
                "CASE WHEN x._kind IN (5, 7, 8) OR (x._kind = 4 AND {rest_is_late}) THEN d.{} ELSE d.{} END",
                late_col(c),
                was(c)
            )
        }
    };
    let late_end = "CASE WHEN d._merge THEN d._w_to ELSE d._q END";
    let late_cur = "CASE WHEN d._merge THEN d._w_cur ELSE d._q IS NULL END";
    let mut out_cols: Vec<String> = all
        .iter()
        .map(|c| format!("{} AS {}", value(c), quote(c)))
        .collect();
    out_cols.push(format!(
        "CASE x._kind WHEN 3 THEN d._v_from WHEN 4 THEN d._q WHEN 5 THEN {t} WHEN 6 THEN {t} ELSE d._q END AS {VALID_FROM}"
    ));
    out_cols.push(format!(
        "CASE x._kind WHEN 3 THEN {t} WHEN 4 THEN d._v_to WHEN 7 THEN d._first_after WHEN 8 THEN d._w_to \
         ELSE {late_end} END AS {VALID_TO}"
    ));
    out_cols.push(format!(
        "CASE x._kind WHEN 3 THEN FALSE WHEN 4 THEN d._v_cur WHEN 7 THEN d._first_after IS NULL \
         WHEN 8 THEN d._w_cur ELSE {late_cur} END AS {IS_CURRENT}"
    ));
    if new_record {
        out_cols.push(format!(
            "CASE x._kind WHEN 3 THEN d._v_del WHEN 4 THEN d._v_del WHEN 5 THEN FALSE ELSE TRUE END AS {IS_DELETED}"
        ));
    }
    out_cols.push(format!(
        "CASE WHEN x._kind IN (5, 7, 8) OR (x._kind = 4 AND {rest_is_late}) THEN d._l_hash \
         ELSE d._v_hash END AS {ROW_HASH}"
    ));
    out_cols.push(format!(
        "CASE x._kind WHEN 3 THEN d._v_batch WHEN 5 THEN {batch} WHEN 6 THEN {batch} ELSE d._q_batch END AS {BATCH_ID}"
    ));
    let match_cols: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("CASE WHEN x._kind <= 2 THEN d.{} END AS _m{i}", quote(k)))
        .collect();
    let when = [
        "WHEN 1 THEN d._v_from IS NOT NULL".to_owned(),
        "WHEN 2 THEN d._merge OR d._retag".to_owned(),
        "WHEN 3 THEN d._v_from IS NOT NULL".to_owned(),
        "WHEN 4 THEN d._v_from IS NOT NULL AND d._q IS NOT NULL AND (d._v_to IS NULL OR d._v_to > d._q)"
            .to_owned(),
        "WHEN 5 THEN d._l_hash IS NOT NULL".to_owned(),
        "WHEN 6 THEN d._l_hash IS NULL".to_owned(),
        "WHEN 7 THEN d._l_hash IS NOT NULL AND d._w_from IS NULL".to_owned(),
        "WHEN 8 THEN d._retag".to_owned(),
    ];
    format!(
        "typed AS ({typed}),
{latest},
k AS (SELECT {src_cols}, {fingerprint} AS {ROW_HASH} FROM src),
v AS ({at_t}),
{w},
{observed}pair AS (SELECT {pair_cols} FROM k FULL OUTER JOIN v ON {kv}),
hit AS (
  SELECT p.* FROM pair p
  WHERE (p._l_hash IS NOT NULL AND NOT ({live} AND p._l_hash = p._v_hash)){missing}
),
wide AS (
  SELECT h.*, {q} AS _q, {q_batch} AS _q_batch, w.{VALID_FROM} AS _w_from, w.{VALID_TO} AS _w_to,
    w.{IS_CURRENT} AS _w_cur, COALESCE({same_as_late}, FALSE) AS _merge, {retag} AS _retag{first_after}
  FROM hit h{seen_join} LEFT JOIN w ON {hw}{w_at_q}{later}
),
kinds AS (SELECT * FROM (VALUES {kinds_values}) AS kinds(_kind)),
changes AS (
  SELECT {match_cols}, CASE x._kind WHEN 1 THEN d._v_from WHEN 2 THEN d._w_from END AS _m_from,
    x._kind >= 3 AS _ins, {out_cols}
  FROM wide d CROSS JOIN kinds x
  WHERE CASE x._kind {when} END
)",
        typed = typed(dialect, table, &extract),
        src_cols = list(&all, ""),
        fingerprint = row_fingerprint(dialect, &tracked),
        at_t = covering(&t),
        pair_cols = pair_cols.join(", "),
        kv = key_eq(&keys, "k", "v"),
        hw = key_eq(&keys, "h", "w"),
        // (Kind 7 only: otherwise the column is there, always NULL.)
        first_after = if new_record {
            ", f._first_after".to_owned()
        } else {
            format!(", {} AS _first_after", timestamp_literal(dialect, None))
        },
        later = if new_record {
            format!(
                "\n  LEFT JOIN (SELECT {pk}, MIN({VALID_FROM}) AS _first_after FROM {silver} WHERE {VALID_FROM} > {n} GROUP BY {pk}) f ON {hf}",
                pk = list(&keys, ""),
                hf = key_eq(&keys, "h", "f"),
            )
        } else {
            String::new()
        },
        kinds_values = (1..=kinds)
            .map(|k| format!("({k})"))
            .collect::<Vec<_>>()
            .join(", "),
        match_cols = match_cols.join(", "),
        out_cols = out_cols.join(",\n    "),
        when = when[..kinds].join(" "),
    )
}

/// A late full extract spliced into the history: silver's whole new contents, for an engine
/// that replaces the table (the embedded one). The same as [`history_sql`] over all of bronze
/// (a property test checks it), reading silver and the one extract (and under `deletes:
/// ignore` bronze's keys after it); see [`late_changes`] for what changes. Only for tables
/// where [`splices_late_extracts`] holds.
pub fn late_extract_sql(dialect: Dialect, late: &LateExtract<'_>) -> String {
    let keys: Vec<&str> = late.table.primary_key.iter().map(String::as_str).collect();
    let mut columns: Vec<&str> = late.table.columns.iter().map(|c| c.name.as_str()).collect();
    columns.extend(history_columns(late.table));
    let on = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("s.{} = r._m{i}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let removed: Vec<String> = (0..keys.len()).map(|i| format!("_m{i}")).collect();
    format!(
        "WITH {changes},
gone AS (SELECT {removed}, _m_from, TRUE AS _gone FROM changes WHERE NOT _ins)
SELECT {s_cols} FROM {silver} s
LEFT JOIN gone r ON {on} AND s.{VALID_FROM} = r._m_from
WHERE r._gone IS NULL
UNION ALL
SELECT {cols} FROM changes WHERE _ins",
        changes = late_changes(dialect, late),
        removed = removed.join(", "),
        silver = late.silver,
        s_cols = list(&columns, "s."),
        cols = list(&columns, ""),
    )
}

/// A late full extract spliced into the history as one `MERGE` into `target` (Athena: silver's
/// Iceberg table, read as `late.silver` at its published version): the versions it replaces
/// are deleted and their replacements inserted, so it costs the late extract and silver's
/// versions valid at or after its time (each read once; under `deletes: ignore` also bronze's
/// keys after it), not bronze's history. Same changes as [`late_extract_sql`].
pub fn late_extract_merge(late: &LateExtract<'_>, target: &str) -> String {
    let dialect = Dialect::Trino;
    let keys: Vec<&str> = late.table.primary_key.iter().map(String::as_str).collect();
    let mut columns: Vec<&str> = late.table.columns.iter().map(|c| c.name.as_str()).collect();
    columns.extend(history_columns(late.table));
    let t = timestamp_literal(dialect, Some(late.extract_ts));
    let on = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("t.{} = u._m{i}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let cols = columns.iter().map(|c| quote(c)).collect::<Vec<_>>();
    format!(
        "MERGE INTO {target} AS t
USING (
  WITH {changes}
  SELECT * FROM changes
) AS u
ON (t.{VALID_TO} IS NULL OR t.{VALID_TO} > {t}) AND {on} AND t.{VALID_FROM} = u._m_from
WHEN MATCHED THEN DELETE
WHEN NOT MATCHED AND u._ins THEN INSERT ({cols}) VALUES ({vals})",
        changes = late_changes(dialect, late),
        cols = cols.join(", "),
        vals = cols
            .iter()
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Silver's history columns after the source columns, in order.
fn history_columns(table: &TableConfig) -> Vec<&'static str> {
    let mut cols = vec![VALID_FROM, VALID_TO, IS_CURRENT];
    if table.deletes == DeletesPolicy::NewRecord {
        cols.push(IS_DELETED);
    }
    cols.extend([ROW_HASH, BATCH_ID]);
    cols
}

/// Silver's layout on an engine that partitions (Athena): by the day a version closed
/// (`day(valid_to)`). The current versions (`valid_to` NULL) are one partition of their own, so
/// an extract's merge reads them without the closed history, and the audit of an applied
/// extract, which checks the versions current or closed since its extract time, reads that
/// partition and the day's.
pub fn partitioning() -> Vec<floe_core::PartitionField> {
    vec![floe_core::PartitionField::day(VALID_TO)]
}

/// The silver table's schema: the typed source columns, then the history columns.
pub fn silver_schema(table: &TableConfig) -> arrow_schema::SchemaRef {
    silver_schema_of(table, &crate::declared(table))
}

/// The silver schema of `table` with these source columns (the declared ones, or those and the
/// retired ones), then the history columns.
pub fn silver_schema_of(
    table: &TableConfig,
    columns: &[floe_config::ColumnConfig],
) -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.ty.arrow(), c.nullable))
        .collect();
    fields.push(Field::new(VALID_FROM, ts.clone(), false));
    fields.push(Field::new(VALID_TO, ts, true));
    fields.push(Field::new(IS_CURRENT, DataType::Boolean, false));
    if table.deletes == DeletesPolicy::NewRecord {
        fields.push(Field::new(IS_DELETED, DataType::Boolean, false));
    }
    fields.push(Field::new(ROW_HASH, DataType::Utf8, false));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, false));
    std::sync::Arc::new(Schema::new(fields))
}
