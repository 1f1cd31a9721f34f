//! A tiny per-thread pseudo-random generator for reservoir sampling and backoff jitter.
//!
//! xorshift64* seeded once per thread from std's `RandomState`: no locks, no allocation, no
//! dependency. Statistical quality is ample for choosing reservoir slots and jitter; it is not
//! for anything secret.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

/// A uniform integer in `0..n` from a per-thread xorshift64* generator (no locks, no
/// allocation; statistical quality is ample for reservoir sampling).
pub(crate) fn random_below(n: u64) -> u64 {
    let r = RNG.with(|rng| {
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    });
    // Multiply-shift maps a 64-bit random to 0..n with negligible bias.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the high half of a 128-bit product of a u64 and n <= u64::MAX fits"
    )]
    let v = ((u128::from(r) * u128::from(n)) >> 64) as u64;
    v
}

/// A uniform float in `[0, 1)`.
pub(crate) fn random_unit() -> f64 {
    const SCALE: u64 = 1 << 53;
    #[allow(clippy::cast_precision_loss, reason = "below 2^53, exact")]
    let v = random_below(SCALE) as f64 / SCALE as f64;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_below_stays_in_range() {
        for n in [1, 2, 3, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(random_below(n) < n);
            }
        }
    }

    #[test]
    fn random_unit_stays_in_the_unit_interval() {
        for _ in 0..1000 {
            assert!((0.0..1.0).contains(&random_unit()));
        }
    }
}
