//! Progress while floe works (`land`, `up`, `run`, `migrate`, `demo`): on a terminal, a line on
//! stderr redrawn ten times a second with the step (the file or table being handled), a bar
//! when its size is known, how much is done, the rate and the time; when stderr is not a
//! terminal, a plain line on stderr every `FLOE_PROGRESS_SECS` seconds (10 by default, 0 for
//! none) for a step that has run that long. What floe prints meanwhile goes through [`say`], so
//! a line is never torn by the bar.
//!
//! The pipeline records where it is in `floe_pipeline::progress`; this module only draws it.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use floe_pipeline::progress::{Snapshot, Unit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn bar() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    BAR.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prints a line on stdout, above the progress line if one is drawn.
pub fn say(line: &str) {
    match bar().as_ref() {
        Some(b) => b.suspend(|| println!("{line}")),
        None => println!("{line}"),
    }
}

/// Shows progress until dropped.
pub struct Watch {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(b) = bar().take() {
            b.finish_and_clear();
        }
        floe_pipeline::progress::idle();
    }
}

/// Starts showing progress (a bar on a terminal, plain lines otherwise).
pub fn watch() -> Watch {
    let task = if std::io::stderr().is_terminal() {
        // Nothing is drawn until a step has run a moment (see `draw`).
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10))
            .with_style(ProgressStyle::with_template("").expect("a valid template"));
        *bar() = Some(b.clone());
        tokio::spawn(draw(b))
    } else {
        let every = std::env::var("FLOE_PROGRESS_SECS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(10.0);
        if every <= 0.0 || !every.is_finite() {
            return Watch { task: None };
        }
        tokio::spawn(lines(Duration::from_secs_f64(every)))
    };
    Watch { task: Some(task) }
}

async fn draw(b: ProgressBar) {
    let spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    let with_bar =
        ProgressStyle::with_template("{spinner:.cyan} {prefix} {wide_bar:.cyan/blue} {msg}")
            .expect("a valid template")
            .tick_strings(&spinner)
            .progress_chars("=> ");
    let without = ProgressStyle::with_template("{spinner:.cyan} {prefix} {msg}")
        .expect("a valid template")
        .tick_strings(&spinner);
    let mut shown_bar = None;
    loop {
        match floe_pipeline::progress::snapshot() {
            Some(s) if s.since.elapsed() >= Duration::from_millis(200) => {
                let fraction = s.total.filter(|t| *t > 0).map(|t| (s.done.min(t), t));
                let wants_bar = fraction.is_some();
                if shown_bar != Some(wants_bar) {
                    b.set_style(if wants_bar {
                        with_bar.clone()
                    } else {
                        without.clone()
                    });
                    shown_bar = Some(wants_bar);
                }
                if let Some((done, total)) = fraction {
                    b.set_length(total);
                    b.set_position(done);
                }
                b.set_prefix(shorten(&s.step, 60));
                b.set_message(counts(&s));
                b.tick();
            }
            _ => {
                if shown_bar.is_some() {
                    b.set_style(ProgressStyle::with_template("").expect("a valid template"));
                    b.set_prefix("");
                    b.set_message("");
                    shown_bar = None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lines(every: Duration) {
    let mut last_said = Instant::now();
    loop {
        tokio::time::sleep(every.min(Duration::from_secs(1))).await;
        if let Some(s) = floe_pipeline::progress::snapshot()
            && s.since.elapsed() >= every
            && last_said.elapsed() >= every
        {
            eprintln!("  ... {}: {}", s.step, counts(&s));
            last_said = Instant::now();
        }
    }
}

/// "1200000 rows, 512.0 MiB of 1.6 GiB, 85.3 MiB/s, 6s" / "3 of 12 models, 40s" / "12s".
fn counts(s: &Snapshot) -> String {
    let secs = s.since.elapsed().as_secs_f64();
    let time = format!("{secs:.0}s");
    let rows = if s.rows > 0 {
        format!("{} rows, ", s.rows)
    } else {
        String::new()
    };
    format!("{rows}{}", measured(s, secs, time))
}

fn measured(s: &Snapshot, secs: f64, time: String) -> String {
    match s.unit {
        Some(Unit::Bytes) => {
            let rate = if secs > 0.0 {
                format!(", {}/s", size(s.done as f64 / secs))
            } else {
                String::new()
            };
            match s.total {
                Some(t) => format!(
                    "{} of {}{rate}, {time}",
                    size(s.done as f64),
                    size(t as f64)
                ),
                None => format!("{}{rate}, {time}", size(s.done as f64)),
            }
        }
        Some(Unit::Models) => match s.total {
            Some(t) => format!("{} of {t} models, {time}", s.done),
            None => format!("{} models, {time}", s.done),
        },
        None => time,
    }
}

fn size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A long step in `max` characters: its first word (the stage) and the end of the rest (the
/// file name, the table).
fn shorten(step: &str, max: usize) -> String {
    let n = step.chars().count();
    if n <= max {
        return step.to_owned();
    }
    let (head, rest) = step.split_once(' ').unwrap_or(("", step));
    let keep = max.saturating_sub(head.chars().count() + 4).max(8);
    let tail: String = rest
        .chars()
        .skip(rest.chars().count().saturating_sub(keep))
        .collect();
    format!("{head} ...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_steps_read_well() {
        assert_eq!(size(512.0), "512 B");
        assert_eq!(size(1536.0), "1.5 KiB");
        assert_eq!(size(1.6 * 1024.0 * 1024.0 * 1024.0), "1.6 GiB");
        assert_eq!(shorten("abcdef", 10), "abcdef");
        assert_eq!(
            shorten(
                "standardise landing/shop/orders/2026-11-01T06:00:00Z/x.csv",
                32
            ),
            "standardise ...1T06:00:00Z/x.csv"
        );
    }
}
