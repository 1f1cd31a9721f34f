//! Number formatting into caller-owned buffers.
//!
//! Integers go through `itoa` and floats through `ryu`, so formatting a value never allocates.
//! Integral floats are written without a fractional part (`5`, not `5.0`) because every
//! receiver we target parses both and the short form saves bytes.

/// Largest magnitude below which an integral `f64` is written as an integer. Beyond 2^53 not
/// every integer is representable, so we leave those to `ryu`, which round-trips exactly.
const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Appends `v` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// One number's decimal text, formatted once: a flush stamps every Graphite line (and every
/// timestamped DogStatsD line) with the same time, so each line copies the digits instead of
/// formatting them (callgrind, `benches/dense`: 79 of a Graphite counter line's 456
/// instructions went to `itoa`; with the copy the line took 398, issue 15).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Digits {
    value: u64,
    /// 0: nothing cached (every value is formatted).
    len: u8,
    text: [u8; 20],
}

impl Digits {
    /// Nothing cached.
    #[cfg(test)]
    pub(crate) const NONE: Self = Self {
        value: 0,
        len: 0,
        text: [0; 20],
    };

    /// The cached value, if any.
    pub(crate) fn cached(&self) -> Option<u64> {
        (self.len > 0).then_some(self.value)
    }

    /// `value`'s text, cached.
    pub(crate) fn of(value: u64) -> Self {
        let mut buf = itoa::Buffer::new();
        let formatted = buf.format(value).as_bytes();
        let mut text = [0; 20];
        text[..formatted.len()].copy_from_slice(formatted);
        Self {
            value,
            // At most 20 digits.
            len: u8::try_from(formatted.len()).unwrap_or(0),
            text,
        }
    }

    /// Appends `v` in decimal: the cached text when `v` is the cached value.
    #[inline]
    pub(crate) fn write(&self, out: &mut Vec<u8>, v: u64) {
        if self.len > 0 && self.value == v {
            // All 20 bytes, then back to the digits: a fixed-size copy is two moves, where
            // one of the text's length is a call to `memcpy`.
            let end = out.len() + usize::from(self.len);
            out.extend_from_slice(&self.text);
            out.truncate(end);
        } else {
            write_u64(out, v);
        }
    }
}

/// Appends a finite `v` in the shortest form that parses back to the same value.
///
/// Callers must reject NaN and infinities first (see [`is_sendable`]); we never write them.
/// Negative zero is written as `0`, because a leading `-` means "delta" to an Etsy gauge.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    debug_assert!(v.is_finite());
    if v.fract() == 0.0 && v.abs() < EXACT_INT_LIMIT {
        // The range check above makes the cast exact.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "integral and below 2^53, checked above"
        )]
        let i = v as i64;
        let mut buf = itoa::Buffer::new();
        out.extend_from_slice(buf.format(i).as_bytes());
    } else {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(v).as_bytes());
    }
}

/// Smallest sample rate we write: `@0.000000001`. A rate this small needs a billion samples
/// per interval for every one kept.
const MIN_RATE: f64 = 1e-9;

/// A caller's sample rate as it goes on the wire: rounded to the 9 decimals [`write_rate`]
/// writes (so below 0.5e-9 it is 0, which callers refuse). Sampling with this rate, not the
/// one asked for, makes the receiver's scaling exact.
pub(crate) fn wire_rate(rate: f64) -> f64 {
    (rate * 1e9).round() / 1e9
}

/// Appends a sample rate in `(0, 1)` in plain fixed notation, at most 9 decimals, trailing
/// zeros trimmed (`0.25`, `0.000007`). Never exponent notation: Etsy statsd reads the rate with
/// `/^@([\d\.]+)/`, so `6.7e-6` would be taken as 6.7 and the count shrunk a millionfold.
pub(crate) fn write_rate(out: &mut Vec<u8>, rate: f64) {
    use std::io::Write as _;
    let rate = rate.clamp(MIN_RATE, 1.0);
    let start = out.len();
    // Writing to a Vec cannot fail; the capacity is reused across flushes.
    let _ = write!(out, "{rate:.9}");
    while out.len() > start + 1 && out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
}

/// Whether a value may go on the wire: NaN and infinities never do.
pub(crate) fn is_sendable(v: f64) -> bool {
    v.is_finite()
}

/// A Graphite line's value: written as text, and recorded as the number carbon reads back
/// from it (for pickle: `encode::buffer::Point`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineValue {
    /// A count, written in full.
    Count(u64),
    /// A finite number, written by [`write_f64`].
    Real(f64),
}

impl LineValue {
    #[inline]
    pub(crate) fn write(self, buf: &mut Vec<u8>) {
        match self {
            Self::Count(n) => write_u64(buf, n),
            Self::Real(v) => write_f64(buf, v),
        }
    }

    /// The `f64` that parsing the written text gives: a count rounded to the nearest `f64`
    /// (as `"…".parse::<f64>()` rounds its digits), and `-0` as `0` (written `0`).
    #[allow(
        clippy::cast_precision_loss,
        reason = "carbon stores doubles: this is the rounding it applies to the text"
    )]
    pub(crate) fn as_read(self) -> f64 {
        match self {
            Self::Count(n) => n as f64,
            // Matches -0 too (float patterns compare with `==`).
            Self::Real(0.0) => 0.0,
            Self::Real(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cached_digits_write_their_value_and_any_other_value_is_formatted() {
        for cached in [0, 7, 1_700_000_000, u64::MAX] {
            let digits = Digits::of(cached);
            for v in [cached, 0, 9, 1_700_000_060, u64::MAX] {
                let mut out = b"x".to_vec();
                digits.write(&mut out, v);
                assert_eq!(out, format!("x{v}").into_bytes(), "cached {cached}");
            }
        }
        let mut out = Vec::new();
        Digits::default().write(&mut out, 0);
        assert_eq!(out, b"0", "nothing cached");
    }

    #[test]
    fn floats_are_written_in_their_shortest_round_trip_form() {
        let table: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (5.0, "5"),
            (-5.0, "-5"),
            (12.5, "12.5"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (1.5e300, "1.5e300"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992.0"),
            (-123_456.789, "-123456.789"),
        ];
        for (v, want) in table {
            assert_eq!(f(*v), *want, "formatting {v:e}");
        }
    }

    #[test]
    fn every_written_float_parses_back_to_the_same_value() {
        for v in [
            0.1,
            1.0 / 3.0,
            2.0f64.powi(60),
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(f(v).parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn sample_rates_are_plain_decimals_never_exponents() {
        let rate = |r: f64| {
            let mut out = Vec::new();
            write_rate(&mut out, r);
            String::from_utf8(out).unwrap()
        };
        let table: &[(f64, &str)] = &[
            (0.25, "0.25"),
            (0.5, "0.5"),
            (2.0 / 300_000.0, "0.000006667"),
            (1e-7, "0.0000001"),
            (1e-12, "0.000000001"),
            (0.999_999_999_9, "1"),
        ];
        for (r, want) in table {
            assert_eq!(rate(*r), *want, "rate {r:e}");
        }
    }

    #[test]
    fn unsigned_integers_are_plain_decimal() {
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"18446744073709551615");
    }

    #[test]
    fn nan_and_infinities_are_not_sendable() {
        assert!(!is_sendable(f64::NAN));
        assert!(!is_sendable(f64::INFINITY));
        assert!(!is_sendable(f64::NEG_INFINITY));
        assert!(is_sendable(-1.0));
    }
}
