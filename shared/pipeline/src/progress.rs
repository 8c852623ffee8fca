//! How far the long work of this process has got (a file copied or read, a stage's message, a
//! build of models), as a few shared values a front end samples: the CLI draws them as a bar
//! on a terminal and as an occasional plain line otherwise; nothing else reads them. Recording
//! is an atomic add or a short lock, cheap enough for the read loops to call every few thousand
//! rows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a step counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of a file (copied, or read and checked).
    Bytes,
    /// Models built.
    Models,
}

/// The step in progress, as sampled.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What is being done ("landing landing/shop/orders/...").
    pub step: String,
    /// What `done` counts, when the step counts anything.
    pub unit: Option<Unit>,
    /// How much is done.
    pub done: u64,
    /// How much there is, when known.
    pub total: Option<u64>,
    /// When the step (or its count) began.
    pub since: Instant,
    /// Rows read so far in this step (0 when it reads none).
    pub rows: u64,
}

struct State {
    step: String,
    phase: String,
    unit: Option<Unit>,
    total: Option<u64>,
    since: Option<Instant>,
}

static STATE: Mutex<State> = Mutex::new(State {
    step: String::new(),
    phase: String::new(),
    unit: None,
    total: None,
    since: None,
});
static DONE: AtomicU64 = AtomicU64::new(0);
static ROWS: AtomicU64 = AtomicU64::new(0);

fn state() -> std::sync::MutexGuard<'static, State> {
    // A panic while the lock was held leaves nothing half-written worth refusing.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a step that counts nothing (yet).
pub fn step(name: impl Into<String>) {
    let mut s = state();
    s.step = name.into();
    s.phase.clear();
    s.unit = None;
    s.total = None;
    s.since = Some(Instant::now());
    DONE.store(0, Ordering::Relaxed);
    ROWS.store(0, Ordering::Relaxed);
}

/// Within the current step, names what it does now ("checking values"), counting nothing.
pub fn phase(name: &str) {
    let mut s = state();
    s.phase = name.to_owned();
    s.unit = None;
    s.total = None;
    s.since = Some(Instant::now());
    DONE.store(0, Ordering::Relaxed);
}

/// Within the current step, starts counting `unit` from zero, out of `total` when known.
pub fn measure(unit: Unit, total: Option<u64>) {
    let mut s = state();
    s.unit = Some(unit);
    s.total = total;
    s.since = Some(Instant::now());
    DONE.store(0, Ordering::Relaxed);
}

/// Sets how much of the count is done.
pub fn set(done: u64) {
    DONE.store(done, Ordering::Relaxed);
}

/// Sets how many rows the step has read (kept through its phases).
pub fn rows(n: u64) {
    ROWS.store(n, Ordering::Relaxed);
}

/// Adds to the count.
pub fn add(n: u64) {
    DONE.fetch_add(n, Ordering::Relaxed);
}

/// Nothing in progress.
pub fn idle() {
    let mut s = state();
    s.step.clear();
    s.phase.clear();
    s.unit = None;
    s.total = None;
    s.since = None;
}

/// The step in progress, if any.
pub fn snapshot() -> Option<Snapshot> {
    let s = state();
    Some(Snapshot {
        step: if s.phase.is_empty() {
            s.step.clone()
        } else {
            format!("{} ({})", s.step, s.phase)
        },
        unit: s.unit,
        done: DONE.load(Ordering::Relaxed),
        total: s.total,
        since: s.since?,
        rows: ROWS.load(Ordering::Relaxed),
    })
}

/// A short name for a stage's message, for the step shown while it is handled: the object or
/// table it is about.
pub fn describe(stage: &str, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return stage.to_owned();
    };
    let table = |t: &serde_json::Value| {
        Some(format!(
            "{}.{}",
            t.get("namespace")?.as_str()?,
            t.get("name")?.as_str()?
        ))
    };
    let about = ["/detail/object/key", "/object/key", "/trigger"]
        .iter()
        .find_map(|p| v.pointer(p).and_then(|x| x.as_str()).map(str::to_owned))
        .or_else(|| v.get("table").and_then(table));
    match about {
        Some(a) => format!("{stage} {a}"),
        None => stage.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_counts_from_zero_and_describes_its_message() {
        step("landing x");
        measure(Unit::Bytes, Some(10));
        add(4);
        add(3);
        let s = snapshot().expect("a step is in progress");
        assert_eq!(
            (s.step.as_str(), s.done, s.total),
            ("landing x", 7, Some(10))
        );
        rows(5);
        phase("checking");
        let s = snapshot().unwrap();
        assert_eq!(s.rows, 5, "rows are kept through the step's phases");
        assert_eq!(
            (s.step.as_str(), s.done, s.unit),
            ("landing x (checking)", 0, None)
        );
        measure(Unit::Models, None);
        assert_eq!(snapshot().unwrap().done, 0);
        idle();
        assert!(snapshot().is_none());
        assert_eq!(
            describe(
                "standardise",
                r#"{"stage":"standardise","object":{"key":"landing/a.csv"}}"#
            ),
            "standardise landing/a.csv"
        );
        assert_eq!(
            describe(
                "audit",
                r#"{"stage":"audit","table":{"namespace":"silver_s","name":"t"}}"#
            ),
            "audit silver_s.t"
        );
        assert_eq!(describe("audit", "not json"), "audit");
    }
}
