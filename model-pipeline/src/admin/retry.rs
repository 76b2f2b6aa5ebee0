//! Bounded exponential backoff with jitter for answers that say "try again": HTTP 5xx, dropped
//! or timed-out connections, and THROTTLED answers that carry no throttle status.
//!
//! The delay before attempt `n` (1-based retries) is drawn uniformly from `[d/2, d]` with
//! `d = min(cap, base * 2^(n-1))` ("equal jitter"): half of it keeps a floor under the wait, the
//! other half spreads clients that failed together. The random source is seeded, so a test run
//! waits the same way every time.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, max_attempts: u32, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            max_attempts,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&mut self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        let ceiling = self.base.saturating_mul(doubling).min(self.cap);
        let half = ceiling / 2;
        let spread = ceiling.saturating_sub(half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            self.rng.random_range(0..=spread)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

impl Default for Backoff {
    /// 0.5 s doubling to 16 s, eight attempts: about a minute of retries at most, which rides out
    /// a short outage without hiding a long one.
    fn default() -> Backoff {
        Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(16),
            8,
            rand::random(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_the_jitter_band() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 8, 7);
        let expected_ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for (retry, ceiling) in (1..).zip(expected_ceilings) {
            let delay = backoff.delay(retry).as_millis() as u64;
            assert!(
                (ceiling / 2..=ceiling).contains(&delay),
                "retry {retry}: {delay} ms not in [{}, {ceiling}]",
                ceiling / 2
            );
        }
    }

    #[test]
    fn the_same_seed_waits_the_same_way_and_another_seed_does_not() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10), 8, seed);
            (1..8).map(|r| b.delay(r)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn attempts_are_bounded() {
        let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 3, 0);
        assert!(backoff.may_retry(1));
        assert!(backoff.may_retry(2));
        assert!(!backoff.may_retry(3));
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 8, 0);
        let delay = backoff.delay(u32::MAX);
        assert!(delay <= Duration::from_secs(30) && delay >= Duration::from_secs(15));
    }
}
