//! Reconnect backoff: capped exponential with jitter, as a pure function.

use std::time::Duration;

/// The configured delays: `first` before the first retry, doubling up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) first: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), given `jitter` in
    /// `[0, 1)`: "equal jitter", half the exponential step plus a random half, so clients
    /// that lost the same server at the same moment spread out, yet no delay is ever below
    /// half the step.
    pub(crate) fn delay(self, attempt: u32, jitter: f64) -> Duration {
        let step = self
            .first
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.cap);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_until_the_cap_and_jitter_stays_within_the_step() {
        let b = Backoff {
            first: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(0, 0.999_999), Duration::from_nanos(99_999_950));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(600));
        assert_eq!(b.delay(20, 0.0), Duration::from_secs(15));
        assert_eq!(b.delay(u32::MAX, 1.0), b.cap);
    }

    #[test]
    fn the_configured_first_delay_and_cap_are_what_the_delays_follow() {
        let b = Backoff {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(5),
        };
        assert_eq!(b.delay(0, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(2, 1.0), Duration::from_secs(5));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(2_500));
        // A huge first delay saturates instead of overflowing.
        let huge = Backoff {
            first: Duration::MAX,
            cap: Duration::MAX,
        };
        assert_eq!(huge.delay(40, 1.0), Duration::MAX);
    }
}
