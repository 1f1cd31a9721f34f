//! The send spread: how far into each aligned Graphite slot this host sends, so a fleet's
//! flushes reach a central carbon or relay over part of the interval instead of in one burst.
//!
//! Pure arithmetic: the builder reads the host's identity once, and the flusher only shifts
//! its ticks by the result. The setter
//! ([`with_send_spread`](crate::ExporterBuilder::with_send_spread)) documents the behaviour.

use std::time::Duration;

/// FNV-1a (64-bit) offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a (64-bit) prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The seed of a host identity (its hostname): FNV-1a 64 of its bytes.
pub(crate) fn identity_seed(identity: &[u8]) -> u64 {
    identity.iter().fold(FNV_OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The delay after each slot start for `seed`: `SplitMix64`'s finaliser of the seed, scaled
/// into `[0, spread)` by its high bits. Zero when `spread` is zero.
pub(crate) fn send_delay(seed: u64, spread: Duration) -> Duration {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // The spread is at most half a flush interval, far below u64::MAX nanoseconds; a larger
    // one saturates, and the product's high half stays below it.
    let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
    let scaled = (u128::from(z) * u128::from(nanos)) >> 64;
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(0))
}
