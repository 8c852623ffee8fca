//! Drill hooks: named points where a test (or an operator's drill) makes floe fail on purpose,
//! to prove that a crash or a lost write anywhere loses nothing. Every hook is read from the
//! environment here and nowhere else; in normal runs none is set and each check is one lookup.
//!
//! - `FLOE_CRASH_AT=<point>` stops the process at that point ([`crash_point`]). Points:
//!   `after_bronze_commit`, `before_publish`, `chunk:<model>:<n>` (after a chunk of an
//!   `insert_by_chunk` build), and `commit:<namespace.table>` (in the embedded lake, every file
//!   of a commit written and the pointer not swapped, e.g. `commit:silver_nomis.people` stops in
//!   the middle of an SCD2 write).
//! - `FLOE_SKIP_CHUNK=<model>:<n>` leaves the n-th chunk (1-based) of an `insert_by_chunk`
//!   build unwritten while reporting it done, so the completeness check can be seen catching a
//!   lost chunk ([`skip_chunk`]).
//! - `FLOE_REJECT_FILES=<text>[,<text>...]` makes the silver audit fail the batch of every
//!   landed file whose key contains one of the texts ([`reject_file`]), so the rejection path
//!   can be exercised with data that is otherwise good.

/// The exit code of a process stopped by [`crash_point`].
pub const CRASH_EXIT_CODE: i32 = 86;

/// Stops the process when `FLOE_CRASH_AT` names `point`.
pub fn crash_point(point: &str) {
    if std::env::var("FLOE_CRASH_AT").is_ok_and(|v| v == point) {
        eprintln!("FLOE_CRASH_AT={point}: stopping the process here");
        std::process::exit(CRASH_EXIT_CODE);
    }
}

/// Whether `FLOE_SKIP_CHUNK` asks to leave chunk `n` (1-based) of `model` unwritten.
pub fn skip_chunk(model: &str, n: usize) -> bool {
    std::env::var("FLOE_SKIP_CHUNK").is_ok_and(|v| v == format!("{model}:{n}"))
}

/// Whether `FLOE_REJECT_FILES` asks the audit to reject the batch of the landed file `key`.
pub fn reject_file(key: &str) -> bool {
    std::env::var("FLOE_REJECT_FILES").is_ok_and(|v| {
        v.split(',')
            .any(|t| !t.trim().is_empty() && key.contains(t.trim()))
    })
}
