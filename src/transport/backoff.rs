//! Reconnect backoff: capped exponential with jitter, as a pure function.

use std::time::Duration;

/// First retry delay.
pub(crate) const BASE: Duration = Duration::from_millis(100);
/// Longest delay between connection attempts.
pub(crate) const CAP: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (0 for the first retry), given `jitter` in
/// `[0, 1)`: "equal jitter", half the exponential step plus a random half, so clients that lost
/// the same server at the same moment spread out, yet no delay is ever below half the step.
pub(crate) fn delay(attempt: u32, jitter: f64) -> Duration {
    let step = BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(CAP);
    let half = step / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_until_the_cap_and_jitter_stays_within_the_step() {
        assert_eq!(delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(delay(0, 0.999_999), Duration::from_nanos(99_999_950));
        assert_eq!(delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(delay(3, 0.5), Duration::from_millis(600));
        assert_eq!(delay(20, 0.0), Duration::from_secs(15));
        assert_eq!(delay(u32::MAX, 1.0), CAP);
    }
}
