//! Character rules for metric names and label text.
//!
//! Plain StatsD has no escaping: a `:` ends the name, `|` starts a field, `@` a rate, `#` tags,
//! `,` separates tags and a newline ends the line. Receivers also disagree on anything beyond
//! ASCII letters and digits (Etsy statsd drops non-ASCII, collectd keeps bytes, Graphite turns
//! `/` into directories). So a name we emit is made only of path segments of
//! `[A-Za-z0-9_-]`, joined by single dots:
//!
//! - every other character (including each non-ASCII character, whitespace and control
//!   characters) becomes one `_`;
//! - empty segments vanish, so `a..b`, `.a` and `a.` all become `a`/`a.b`;
//! - a folded label value is one segment: a `.` inside it becomes `_` so it cannot add levels.
//!
//! DogStatsD names follow Datadog's rule instead: segments of `[A-Za-z0-9_]` (a `-` becomes
//! `_` too). DogStatsD tags (`key:value`) may carry any printable text, Unicode included,
//! except what would split the datagram or the tag list:
//!
//! - `|`, `,`, `#`, whitespace and control characters become `_`, in keys and values;
//! - a key never contains `:` (it becomes `_`): the Agent splits a tag at its first `:`;
//! - a value may contain `:`, but never ends with one (the last becomes `_`), since Datadog
//!   rejects tags ending in `:`.
//!
//! Set members (`name:member|s`) are text of their own: every receiver takes the member up to
//! the `|` that starts the type, Etsy statsd also splits the value at each `:` (`stats.js`),
//! and a newline or carriage return ends the line. So in a member `|`, `:` and every control
//! character become `_`; everything else (spaces, `#`, `@`, `,`, Unicode) is kept, as no
//! receiver treats it specially there.
//!
//! These functions only append to caller-owned buffers; they never allocate on their own,
//! except [`sanitized_member`], which builds the one `String` a new set member costs.

/// Whether `c` may appear inside a path segment unchanged.
fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `c` may appear inside a DogStatsD name segment unchanged.
fn is_dd_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `c` may appear in a DogStatsD tag unchanged (`:` is decided by the caller).
fn is_tag_char(c: char) -> bool {
    !(c.is_control() || c.is_whitespace() || matches!(c, '|' | ',' | '#' | ':'))
}

/// Appends `text` as one or more dot-separated segments, each preceded by a `.` when `out`
/// already holds something. Returns whether anything was appended.
pub(crate) fn push_path(out: &mut Vec<u8>, text: &str) -> bool {
    let mut any = false;
    for segment in text.split('.') {
        any |= push_segment_with(out, segment, is_segment_char);
    }
    any
}

/// As [`push_path`], with DogStatsD's name characters.
pub(crate) fn push_dd_path(out: &mut Vec<u8>, text: &str) -> bool {
    let mut any = false;
    for segment in text.split('.') {
        any |= push_segment_with(out, segment, is_dd_name_char);
    }
    any
}

/// Appends a DogStatsD tag key (no `:` in it).
pub(crate) fn push_tag_key(out: &mut Vec<u8>, text: &str) {
    push_replacing(out, text, is_tag_char);
}

/// Appends a DogStatsD tag value (`:` allowed, but not last).
pub(crate) fn push_tag_value(out: &mut Vec<u8>, text: &str) {
    push_replacing(out, text, |c| c == ':' || is_tag_char(c));
    if out.last() == Some(&b':') {
        out.pop();
        out.push(b'_');
    }
}

/// Appends a tag key for plain StatsD's DogStatsD style, which Etsy statsd forwards to carbon
/// (rules in [`LabelHandling::DogStatsd`](super::statsd::LabelHandling::DogStatsd)): ASCII
/// letters, digits, `_`, `-` and `.` stay, `/` becomes `-`, anything else `_`; `name` is sent
/// as `name_`.
pub(crate) fn push_etsy_tag_key(out: &mut Vec<u8>, text: &str) {
    let text = if text == "name" { "name_" } else { text };
    push_etsy(out, text, false);
}

/// Appends a tag value for plain StatsD's DogStatsD style: as a key, and `=` stays too.
pub(crate) fn push_etsy_tag_value(out: &mut Vec<u8>, text: &str) {
    push_etsy(out, text, true);
}

/// Etsy's key sanitiser keeps `[A-Za-z0-9_.;=-]` and turns `/` into `-` (`stats.js`,
/// `sanitizeKeyName`); carbon refuses `;` in tags and `=` in keys. What we append passes both
/// unchanged.
fn push_etsy(out: &mut Vec<u8>, text: &str, equals: bool) {
    for c in text.chars() {
        out.push(match c {
            '/' => b'-',
            '=' if equals => b'=',
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => {
                #[allow(clippy::cast_possible_truncation, reason = "ASCII checked above")]
                let b = c as u8;
                b
            }
            _ => b'_',
        });
    }
}

/// Whether `c` may appear in a tag key or value embedded in a plain StatsD name (InfluxDB,
/// Librato, SignalFx and Graphite styles) unchanged: letters and digits (any script), `_`,
/// `-`, `.` and `/`. Everything else, every style's separators among them (`,` `=` `#` `[`
/// `]` `;` `:` `|` `@`, whitespace, controls), becomes `_`.
fn is_embedded_tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// Appends a tag key or value for a tag embedded in a plain StatsD name.
pub(crate) fn push_embedded_tag(out: &mut Vec<u8>, text: &str) {
    push_replacing(out, text, is_embedded_tag_char);
}

/// Appends `text`, each character failing `keep` replaced by `_`.
fn push_replacing(out: &mut Vec<u8>, text: &str, keep: impl Fn(char) -> bool) {
    for c in text.chars() {
        let c = if keep(c) { c } else { '_' };
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
}

/// A set member as it goes on the wire (see the module docs), in one allocation.
pub(crate) fn sanitized_member(member: &str) -> String {
    // Never longer than the member: each replaced character took at least one byte.
    let mut out = String::with_capacity(member.len());
    push_member(&mut out, member);
    out
}

/// Appends `member` as it goes on the wire: control characters, `|` and `:` (which would end
/// the value or split it into several) become `_`; everything else is kept.
pub(crate) fn push_member(out: &mut String, member: &str) {
    out.extend(member.chars().map(|c| {
        if c.is_control() || c == '|' || c == ':' {
            '_'
        } else {
            c
        }
    }));
}

/// Appends `text` as exactly one segment (dots included in the replacement), preceded by a `.`
/// when `out` already holds something. Empty text appends nothing and returns `false`.
///
/// This is how a folded label value (or key) becomes a path segment, so replacements at its
/// edges are trimmed: `/home` is `home`, `/api/items/` is `api_items`, not `_home`. A `_` the
/// caller wrote is kept (`_private`), and text made only of replaced characters (`/`, `😀`)
/// is one `_`, so the label still takes its place in the path.
pub(crate) fn push_segment(out: &mut Vec<u8>, text: &str) -> bool {
    let start = text.find(is_segment_char);
    let kept = match start {
        Some(start) => {
            // `rfind` finds a match, since `find` did; its end is one ASCII byte further.
            let end = text.rfind(is_segment_char).map_or(text.len(), |e| e + 1);
            &text[start..end]
        }
        None if text.is_empty() => "",
        None => "_",
    };
    push_segment_with(out, kept, is_segment_char)
}

fn push_segment_with(out: &mut Vec<u8>, text: &str, allowed: fn(char) -> bool) -> bool {
    if text.is_empty() {
        return false;
    }
    if !out.is_empty() {
        out.push(b'.');
    }
    for c in text.chars() {
        if allowed(c) {
            // ASCII by the check above, so one byte.
            #[allow(clippy::cast_possible_truncation, reason = "ASCII checked above")]
            out.push(c as u8);
        } else {
            out.push(b'_');
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(parts: &[&str]) -> String {
        let mut out = Vec::new();
        for p in parts {
            push_path(&mut out, p);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn names_are_reduced_to_safe_dotted_segments() {
        let table: &[(&str, &str)] = &[
            ("requests", "requests"),
            ("http.requests", "http.requests"),
            ("a..b", "a.b"),
            (".a.", "a"),
            ("with space", "with_space"),
            ("a:b|c@d#e,f", "a_b_c_d_e_f"),
            ("line\nbreak", "line_break"),
            ("tab\there", "tab_here"),
            ("caf\u{e9}", "caf_"),
            ("\u{1F600}", "_"),
            ("a/b\\c", "a_b_c"),
            ("semi;colon=eq", "semi_colon_eq"),
            ("dash-under_score", "dash-under_score"),
            ("", ""),
            ("...", ""),
        ];
        for (input, want) in table {
            assert_eq!(path(&[input]), *want, "sanitising {input:?}");
        }
    }

    #[test]
    fn dogstatsd_names_use_datadogs_characters() {
        let mut out = Vec::new();
        push_dd_path(&mut out, "http-server..requests/sec");
        assert_eq!(out, b"http_server.requests_sec");
    }

    #[test]
    fn tag_text_can_never_split_a_datagram_or_the_tag_list() {
        let table: &[(&str, &str, &str)] = &[
            ("env", "prod", "env:prod"),
            ("url", "http://x:8080/a", "url:http://x:8080/a"),
            ("a:b", "c", "a_b:c"),
            ("k", "a|b,c#d", "k:a_b_c_d"),
            ("k", "line\nbreak\ttab sp", "k:line_break_tab_sp"),
            ("k", "trailing:", "k:trailing_"),
            ("r\u{e9}gion", "\u{e9}t\u{e9}", "r\u{e9}gion:\u{e9}t\u{e9}"),
            ("k", "\u{7f}\u{0}", "k:__"),
        ];
        for (key, value, want) in table {
            let mut out = Vec::new();
            push_tag_key(&mut out, key);
            out.push(b':');
            push_tag_value(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "{key:?}={value:?}");
        }
    }

    #[test]
    fn a_label_value_stays_one_segment() {
        let mut out = b"name".to_vec();
        assert!(push_segment(&mut out, "api/v1.2"));
        assert_eq!(out, b"name.api_v1_2");
    }

    #[test]
    fn folded_segments_trim_replacements_at_their_edges() {
        let table: &[(&str, &str)] = &[
            ("/home", "home"),
            ("/api/items/", "api_items"),
            ("/", "_"),
            ("//", "_"),
            ("\u{1F600}", "_"),
            ("caf\u{e9}", "caf"),
            ("\u{e9}t\u{e9}", "t"),
            ("_private_", "_private_"),
            ("-x-", "-x-"),
            (" spaced out ", "spaced_out"),
            ("v1.2", "v1_2"),
            (".hidden", "hidden"),
            ("a", "a"),
        ];
        for (input, want) in table {
            let mut out = b"name".to_vec();
            assert!(push_segment(&mut out, input), "{input:?}");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("name.{want}"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn an_empty_label_value_adds_no_segment() {
        let mut out = b"name".to_vec();
        assert!(!push_segment(&mut out, ""));
        assert_eq!(out, b"name");
    }

    #[test]
    fn set_members_lose_only_what_would_split_a_line_or_a_value() {
        let table = [
            ("alice", "alice"),
            ("a:b|c\nd\re\tf", "a_b_c_d_e_f"),
            ("#tag @rate, comma", "#tag @rate, comma"),
            ("\u{e9}t\u{e9} \u{1f600}", "\u{e9}t\u{e9} \u{1f600}"),
            ("\u{0}\u{7f}\u{85}", "___"),
        ];
        for (member, want) in table {
            assert_eq!(sanitized_member(member), want, "{member:?}");
        }
    }

    proptest! {
        #[test]
        fn sanitised_paths_contain_only_safe_bytes_and_no_empty_segment(parts in proptest::collection::vec(any::<String>(), 0..4)) {
            let mut out = Vec::new();
            for p in &parts {
                push_path(&mut out, p);
            }
            prop_assert!(out.iter().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(b)));
            if !out.is_empty() {
                let s = String::from_utf8(out).unwrap();
                prop_assert!(s.split('.').all(|seg| !seg.is_empty()));
            }
        }
    }
}
