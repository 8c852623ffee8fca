//! Exponential backoff with a cap and optional jitter: the one schedule every retry loop in floe
//! waits by (queue redeliveries, statement retries, commit retries, Athena polling).

use std::time::Duration;

/// A retry schedule: `first * 2^(attempt-1)`, capped at `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Whether waits are spread (a random point in the upper half of each wait), so writers
    /// that failed together do not retry together.
    pub jitter: bool,
}

impl Backoff {
    /// A schedule from `first`, doubling up to `cap`, without jitter.
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap,
            jitter: false,
        }
    }

    /// The same schedule with jitter.
    pub const fn with_jitter(self) -> Self {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let wait = self
            .first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.cap);
        if !self.jitter {
            return wait;
        }
        let spread = u32::from(uuid::Uuid::new_v4().as_bytes()[0]);
        wait / 2 + wait / 2 * spread / 255
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_wait() {
        let b = Backoff::new(Duration::from_millis(400), Duration::from_secs(10)).with_jitter();
        for attempt in 1..=5 {
            let full = Backoff { jitter: false, ..b }.delay(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(
                    d >= full / 2 && d <= full,
                    "{d:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }
}
