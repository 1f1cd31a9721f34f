//! Reversible encoding of arbitrary text into one Graphite path segment, and a lossy path
//! joiner.
//!
//! # Why only `[A-Za-z0-9-]` is kept as is
//!
//! A Graphite path is a list of nodes joined by `.`, and many characters are unsafe in a node:
//!
//! - `.` splits the path: carbon maps it to a directory separator, so a dot inside a node adds
//!   a level, and leading, trailing or doubled dots create odd files;
//! - whitespace breaks the plaintext protocol (`<path> <value> <timestamp>`: carbon splits the
//!   line on whitespace and drops it when there are not exactly three fields), and graphite-web
//!   mishandles spaces in queries;
//! - `;` starts tags and `=` separates a tag from its value (`name;tag=value`, Graphite 1.1+);
//! - `/` inside a node makes carbon create extra directories;
//! - graphite-web's query grammar treats `*` `?` `[` `]` `{` `}` as wildcards and needs
//!   `(` `)` `,` `'` `"` `\` `|` backslash-escaped, so series whose names contain them are
//!   stored but cannot be addressed by a plain query;
//! - control characters and non-ASCII text depend on the receiver and the file system.
//!
//! Rather than list every dangerous character, [`encode_segment`] keeps only the ASCII letters,
//! digits and `-`, which are safe everywhere, and escapes everything else.
//!
//! # The escape scheme
//!
//! The text is taken as its UTF-8 bytes. Each byte is written as follows:
//!
//! - a byte in `[A-Za-z0-9-]` is written unchanged;
//! - every other byte (including `_`, `.`, space and every byte of a non-ASCII character) is
//!   written as `_` followed by exactly two **uppercase** hexadecimal digits (`0-9A-F`) giving
//!   its value: `.` is `_2E`, `_` is `_5F`, `é` (`C3 A9`) is `_C3_A9`.
//!
//! The empty string, which would otherwise encode to an empty node, is written as a lone `_`.
//!
//! So an encoded segment matches `^[A-Za-z0-9_-]+$`, is never empty, and is at most three times
//! as long as the UTF-8 text (plus one byte for the empty string). Note that letter case is
//! kept, so `A` and `a` stay distinct segments: on a case-insensitive file system carbon may
//! still store them in the same whisper file.
//!
//! # Canonical form
//!
//! Each text has exactly one encoding, and [`decode_segment`] accepts exactly the strings that
//! [`encode_segment`] can produce, so `encode_segment(&decode_segment(s)?) == s` for every `s`
//! it accepts. It returns `None` for:
//!
//! - the empty string (the empty text is written `_`);
//! - any character outside `[A-Za-z0-9_-]`;
//! - a `_` not followed by two hexadecimal digits (a truncated escape, or a lone `_` anywhere
//!   but as the whole segment);
//! - lowercase hexadecimal digits (`_2e`);
//! - an escape of a byte that is written unchanged (`_41` for `A`, `_2D` for `-`);
//! - escaped bytes that are not valid UTF-8 (`_FF`, or `_C3` without its continuation byte).
//!
//! The scheme is unambiguous: `_` never appears unescaped inside a non-empty encoding, so every
//! `_` starts a three-byte escape, and the lone `_` cannot be confused with one.
//!
//! [`join_path`] is the lossy alternative for readable names: it replaces unsafe characters
//! with `_` and cannot be reversed.

/// The escape character.
const ESCAPE: u8 = b'_';

/// Uppercase hexadecimal digits, indexed by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// How the empty string is encoded.
const EMPTY: &str = "_";

/// Whether the byte `b` is written unchanged by [`encode_segment`].
fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Whether `c` is kept unchanged by [`join_path`].
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The value of one uppercase hexadecimal digit, or `None` for anything else (including
/// lowercase digits, which are not canonical).
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Encodes `text` as one Graphite path segment.
///
/// The result contains only `[A-Za-z0-9-]` and the escape character `_`, is never empty, and
/// [`decode_segment`] gives `text` back exactly. Every byte of the UTF-8 form outside
/// `[A-Za-z0-9-]` becomes `_` and two uppercase hexadecimal digits; the empty string becomes a
/// lone `_`. See the module documentation for the full scheme.
///
/// An escaped byte takes three characters, so the result can be up to three times as long as
/// `text`'s UTF-8 form. Carbon stores each segment as a directory or file name, which most
/// file systems limit to 255 bytes: the exporter shortens a longer segment (see
/// [Long names](crate#long-names)), which keeps it storable but no longer decodable, so keep
/// what you encode under about 80 bytes of escaped text (or 250 of `[A-Za-z0-9-]`).
///
/// # Examples
///
/// ```
/// use metrics_exporter_statsd_graphite::{decode_segment, encode_segment};
///
/// assert_eq!(encode_segment("web-01"), "web-01");
/// assert_eq!(encode_segment("cpu.load"), "cpu_2Eload");
/// assert_eq!(encode_segment("a_b c"), "a_5Fb_20c");
/// assert_eq!(encode_segment("caf\u{e9}"), "caf_C3_A9");
/// assert_eq!(encode_segment(""), "_");
///
/// let url = "https://example.com/a?b=c";
/// let segment = encode_segment(url);
/// assert!(segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
/// assert_eq!(decode_segment(&segment).as_deref(), Some(url));
/// ```
pub fn encode_segment(text: &str) -> String {
    if text.is_empty() {
        return String::from(EMPTY);
    }
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if is_literal(b) {
            out.push(char::from(b));
        } else {
            out.push(char::from(ESCAPE));
            out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// Decodes a segment written by [`encode_segment`], giving back the original text.
///
/// Returns `None` for any input that [`encode_segment`] cannot produce: an empty string, a
/// character outside `[A-Za-z0-9_-]`, a truncated or malformed escape, lowercase hexadecimal
/// digits, an escaped byte that would have been written unchanged, or bytes that are not
/// valid UTF-8 once unescaped. So whenever it returns `Some(text)`, `encode_segment(&text)`
/// is exactly the input.
///
/// # Examples
///
/// ```
/// use metrics_exporter_statsd_graphite::decode_segment;
///
/// assert_eq!(decode_segment("cpu_2Eload").as_deref(), Some("cpu.load"));
/// assert_eq!(decode_segment("caf_C3_A9").as_deref(), Some("caf\u{e9}"));
/// assert_eq!(decode_segment("_").as_deref(), Some(""));
///
/// assert_eq!(decode_segment("cpu_2eload"), None); // lowercase hex
/// assert_eq!(decode_segment("a_b"), None); // `_` must start an escape
/// assert_eq!(decode_segment("a_2"), None); // truncated escape
/// assert_eq!(decode_segment("_41"), None); // `A` is never escaped
/// assert_eq!(decode_segment("_FF"), None); // not UTF-8
/// assert_eq!(decode_segment("a.b"), None); // not a single segment
/// assert_eq!(decode_segment(""), None);
/// ```
pub fn decode_segment(segment: &str) -> Option<String> {
    if segment == EMPTY {
        return Some(String::new());
    }
    if segment.is_empty() {
        return None;
    }
    let mut bytes = Vec::with_capacity(segment.len());
    let mut input = segment.bytes();
    while let Some(b) = input.next() {
        if is_literal(b) {
            bytes.push(b);
        } else if b == ESCAPE {
            let high = hex_value(input.next()?)?;
            let low = hex_value(input.next()?)?;
            let byte = (high << 4) | low;
            if is_literal(byte) {
                return None;
            }
            bytes.push(byte);
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Joins `parts` into a Graphite path, cleaning each part so it stays one segment.
///
/// This is lossy and cannot be reversed (use [`encode_segment`] for that): in each part, every
/// character outside `[A-Za-z0-9_-]` (including `.`, whitespace and each non-ASCII character)
/// becomes one `_`, and runs of `_` are kept as they are. Empty parts are skipped, so the path
/// never has an empty segment; when every part is empty the result is an empty string.
///
/// # Examples
///
/// ```
/// use metrics_exporter_statsd_graphite::join_path;
///
/// assert_eq!(join_path(["servers", "web 01", "", "cpu.load"]), "servers.web_01.cpu_load");
/// assert_eq!(join_path(vec![String::from("a/b"), String::from("c  d")]), "a_b.c__d");
/// assert_eq!(join_path(["", ""]), "");
/// ```
pub fn join_path<I, S>(parts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for part in parts {
        let part = part.as_ref();
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(part.chars().map(|c| if is_path_char(c) { c } else { '_' }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact encodings, each checked in both directions.
    const TABLE: &[(&str, &str)] = &[
        ("", "_"),
        ("a", "a"),
        ("cpu", "cpu"),
        ("Web-01", "Web-01"),
        ("0123456789", "0123456789"),
        ("-", "-"),
        ("_", "_5F"),
        ("__", "_5F_5F"),
        ("a_b", "a_5Fb"),
        (".", "_2E"),
        ("cpu.load", "cpu_2Eload"),
        ("..", "_2E_2E"),
        (" ", "_20"),
        ("web 01", "web_2001"),
        ("a\tb\nc\r", "a_09b_0Ac_0D"),
        ("/", "_2F"),
        ("/api/v1", "_2Fapi_2Fv1"),
        (
            "https://example.com/a?b=c",
            "https_3A_2F_2Fexample_2Ecom_2Fa_3Fb_3Dc",
        ),
        ("name;tag=value", "name_3Btag_3Dvalue"),
        ("*?[]{}", "_2A_3F_5B_5D_7B_7D"),
        ("(),'\"\\|", "_28_29_2C_27_22_5C_7C"),
        ("~", "_7E"),
        ("\0", "_00"),
        ("\u{7f}", "_7F"),
        ("\u{1b}[0m", "_1B_5B0m"),
        ("caf\u{e9}", "caf_C3_A9"),
        ("\u{65e5}\u{672c}", "_E6_97_A5_E6_9C_AC"),
        ("\u{1f600}", "_F0_9F_98_80"),
        ("\u{feff}", "_EF_BB_BF"),
        ("\u{10ffff}", "_F4_8F_BF_BF"),
    ];

    #[test]
    fn every_table_entry_encodes_to_its_exact_segment() {
        for (text, segment) in TABLE {
            assert_eq!(encode_segment(text), *segment, "{text:?}");
        }
    }

    #[test]
    fn every_table_entry_decodes_back_to_its_text() {
        for (text, segment) in TABLE {
            assert_eq!(
                decode_segment(segment).as_deref(),
                Some(*text),
                "{segment:?}"
            );
        }
    }

    #[test]
    fn the_empty_string_encodes_as_a_lone_escape_character() {
        assert_eq!(encode_segment(""), "_");
        assert_eq!(decode_segment("_").as_deref(), Some(""));
    }

    #[test]
    fn decode_rejects_what_encode_cannot_produce() {
        let rejected = [
            "",             // the empty text is written `_`
            "a.b",          // `.` is never literal
            "a b",          // nor is a space
            "a/b",          // nor `/`
            "caf\u{e9}",    // nor non-ASCII
            "_2e",          // lowercase hex
            "_c3_a9",       // lowercase hex
            "_2",           // truncated escape
            "a_",           // truncated escape
            "ab_F",         // truncated escape
            "__",           // `_` followed by a non-digit
            "a_b",          // lone `_` in the middle
            "_a",           // lone `_` at the start of a longer segment
            "_G0",          // not a hex digit
            "_-1",          // not a hex digit
            "_41",          // `A` is written unchanged
            "_61",          // `a` is written unchanged
            "_30",          // `0` is written unchanged
            "_2D",          // `-` is written unchanged
            "_FF",          // not UTF-8
            "_C3",          // truncated UTF-8 sequence
            "_A9",          // lone continuation byte
            "_C0_AF",       // overlong UTF-8
            "_ED_A0_80",    // UTF-16 surrogate
            "_F4_90_80_80", // beyond U+10FFFF
        ];
        for segment in rejected {
            assert_eq!(decode_segment(segment), None, "{segment:?}");
        }
    }

    #[test]
    fn every_escape_decodes_exactly_when_it_is_canonical_and_valid_utf8() {
        for byte in 0..=u8::MAX {
            let escape = format!("_{byte:02X}");
            let want = (!is_literal(byte) && byte.is_ascii()).then(|| char::from(byte).to_string());
            assert_eq!(decode_segment(&escape), want, "{escape:?}");
            let lower = format!("_{byte:02x}");
            if lower != escape {
                assert_eq!(decode_segment(&lower), None, "{lower:?}");
            }
        }
    }

    #[test]
    fn every_ascii_character_round_trips_alone_and_inside_text() {
        for byte in 0..=0x7F_u8 {
            let text = format!("x{}y", char::from(byte));
            assert_eq!(decode_segment(&encode_segment(&text)), Some(text));
            let alone = char::from(byte).to_string();
            assert_eq!(decode_segment(&encode_segment(&alone)), Some(alone));
        }
    }

    #[test]
    fn join_path_cleans_each_part_and_skips_empty_ones() {
        assert_eq!(
            join_path(["servers", "web 01", "", "cpu.load"]),
            "servers.web_01.cpu_load"
        );
        assert_eq!(join_path(["a__b", "c  d"]), "a__b.c__d");
        assert_eq!(join_path(["/api/v1.2"]), "_api_v1_2");
        assert_eq!(join_path(["name;tag=value", "*?"]), "name_tag_value.__");
        assert_eq!(join_path(["caf\u{e9}", "\u{1f600}"]), "caf_._");
        assert_eq!(join_path([".", ".."]), "_.__");
        assert_eq!(join_path(["", "a", ""]), "a");
        assert_eq!(join_path(["Web-01_x"]), "Web-01_x");
    }

    #[test]
    fn join_path_returns_an_empty_string_when_every_part_is_empty() {
        assert_eq!(join_path(["", "", ""]), "");
        assert_eq!(join_path(Vec::<String>::new()), "");
    }

    /// Strings that often decode: encodings with one character replaced, mixes of literal
    /// bytes, canonical and non-canonical escapes, lone escape characters and stray characters.
    fn segment_like() -> impl Strategy<Value = String> {
        let mutated = (any::<String>(), any::<usize>(), "[A-Za-z0-9_.]").prop_map(
            |(text, at, replacement)| {
                // The encoding is ASCII, so every byte index is a char boundary.
                let mut segment = encode_segment(&text);
                let at = at % segment.len();
                segment.replace_range(at..=at, &replacement);
                segment
            },
        );
        prop_oneof![
            mutated,
            "(_[0-7][0-9A-F]|[A-Za-z0-9-])*",
            "(_[0-9A-F]{2}|[A-Za-z0-9-])*",
            "(_[0-9A-Fa-f]{2}|_[0-9A-F]?|[A-Za-z0-9_. -])*",
            "(_[8-9A-F][0-9A-F]|[a-z])*",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn decoding_an_encoded_string_gives_it_back(text in any::<String>()) {
            prop_assert_eq!(decode_segment(&encode_segment(&text)), Some(text));
        }

        #[test]
        fn an_encoded_string_is_a_non_empty_safe_segment(text in any::<String>()) {
            let segment = encode_segment(&text);
            prop_assert!(!segment.is_empty());
            prop_assert!(
                segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{:?}",
                segment
            );
        }

        #[test]
        fn encoding_a_decoded_segment_gives_it_back(segment in segment_like()) {
            if let Some(text) = decode_segment(&segment) {
                prop_assert_eq!(encode_segment(&text), segment);
            }
        }

        #[test]
        fn a_joined_path_has_only_safe_characters_and_no_empty_segment(
            parts in proptest::collection::vec(any::<String>(), 0..5),
        ) {
            let path = join_path(&parts);
            prop_assert!(
                path.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                "{:?}",
                path
            );
            if parts.iter().all(String::is_empty) {
                prop_assert_eq!(path, "");
            } else {
                prop_assert!(path.split('.').all(|s| !s.is_empty()), "{:?}", path);
                let kept = parts.iter().filter(|p| !p.is_empty()).count();
                prop_assert_eq!(path.split('.').count(), kept);
            }
        }
    }
}
