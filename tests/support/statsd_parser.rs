//! A strict, test-only plain (Etsy) StatsD parser, written from the protocol notes (Etsy
//! `docs/metric_types.md`, `stats.js`, `lib/helpers.js`, `b/statsd_spec`), not from this crate's
//! encoder, so the tests check the encoder against an independent reading of the wire format.
//!
//! One line is `<bucket>:<value>|<type>[|@<rate>]`. It is stricter than the Etsy server so that
//! it catches encoder bugs the server would silently tolerate or misread:
//!
//! - exactly one sample per line: Etsy splits the part after the first `:` on `:` and reads
//!   each piece as its own `value|type` sample, so a second `:` would inject a metric;
//! - the bucket must come through Etsy's `keyNameSanitize` unchanged (no whitespace, no `/`,
//!   only `[A-Za-z0-9_.\-;=]`), must not contain `;` or `=` (the Graphite backend would read
//!   them as tags) and has no empty `.`-segment (an empty Graphite path node);
//! - the value is a plain decimal number (`nan`, `inf`, hex, a leading `+` are refused); a
//!   counter's is a non-negative integer; a timer's is not negative (Etsy rejects it);
//! - a gauge value with a leading `-` is a *delta* to Etsy, so it must directly follow
//!   `<bucket>:0|g` in the same payload, which sets the gauge to 0 first;
//! - the rate is `@` and digits with an optional `.` (Etsy reads `/^@([\d\.]+)/`, so an
//!   exponent would be misread), in (0, 1].
//!
//! Include with `#[path = ".../statsd_parser.rs"] mod statsd_parser;`.
#![allow(dead_code, reason = "each includer uses a different subset")]

/// Line types the exporter may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms`
    Timer,
    /// `h` (not an Etsy type, but sent when configured; `b/statsd_spec`'s timer alias)
    Histogram,
    /// `s`: the member is `value_text` (non-empty, no control characters), `value` is NaN.
    Set,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) name: String,
    /// The value as written.
    pub(crate) value_text: String,
    pub(crate) value: f64,
    pub(crate) kind: Kind,
    pub(crate) rate: Option<f64>,
}

/// Parses one line (no newline inside).
pub(crate) fn parse_line(line: &str) -> Result<Line, String> {
    let bad = |why: &str| Err(format!("{why} in StatsD line {line:?}"));
    if line.contains(['\n', '\r']) {
        return bad("line break");
    }
    let Some((name, sample)) = line.split_once(':') else {
        return bad("no ':' after the bucket");
    };
    if sample.contains(':') {
        return bad("a second ':' (Etsy reads a second sample)");
    }
    check_bucket(name).map_err(|e| format!("{e} in StatsD line {line:?}"))?;
    let mut fields = sample.split('|');
    let value_text = fields.next().unwrap_or_default();
    let kind = match fields.next() {
        Some("c") => Kind::Counter,
        Some("g") => Kind::Gauge,
        Some("ms") => Kind::Timer,
        Some("h") => Kind::Histogram,
        Some("s") => Kind::Set,
        Some(other) => return bad(&format!("type {other:?}")),
        None => return bad("no '|type'"),
    };
    if kind == Kind::Set {
        if value_text.is_empty() || value_text.chars().any(char::is_control) {
            return bad("set member empty or with a control character");
        }
        if fields.next().is_some() {
            // A set is never sampled, and plain StatsD has no other field.
            return bad("a field after a set's type");
        }
        return Ok(Line {
            name: name.to_owned(),
            value_text: value_text.to_owned(),
            value: f64::NAN,
            kind,
            rate: None,
        });
    }
    if !is_plain_number(value_text) {
        return bad("value is not a plain decimal number");
    }
    let Ok(value) = value_text.parse::<f64>() else {
        return bad("value does not parse");
    };
    if !value.is_finite() {
        return bad("value overflows");
    }
    match kind {
        Kind::Counter if !value_text.bytes().all(|b| b.is_ascii_digit()) => {
            return bad("counter value is not a non-negative integer");
        }
        Kind::Timer if value_text.starts_with('-') => return bad("negative timer"),
        _ => {}
    }
    let rate = match fields.next() {
        None => None,
        Some(field) => Some(parse_rate(field).map_err(|e| format!("{e} in StatsD line {line:?}"))?),
    };
    if fields.next().is_some() {
        return bad("a field after the rate");
    }
    Ok(Line {
        name: name.to_owned(),
        value_text: value_text.to_owned(),
        value,
        kind,
        rate,
    })
}

/// Parses one payload. `stream`: every line ends with `\n` (TCP); otherwise lines are
/// separated by `\n` with none after the last (a datagram). Checks the negative-gauge rule.
pub(crate) fn parse_payload(payload: &[u8], stream: bool) -> Result<Vec<Line>, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("payload not UTF-8: {e}"))?;
    let body = if stream {
        text.strip_suffix('\n')
            .ok_or_else(|| format!("stream payload without a final newline: {text:?}"))?
    } else {
        text
    };
    let mut lines: Vec<Line> = Vec::new();
    for raw in body.split('\n') {
        if raw.is_empty() {
            return Err(format!("empty line in payload {text:?}"));
        }
        let line = parse_line(raw)?;
        if line.kind == Kind::Gauge && line.value_text.starts_with('-') {
            let reset = lines.last().is_some_and(|p| {
                p.kind == Kind::Gauge && p.name == line.name && p.value_text == "0"
            });
            if !reset {
                return Err(format!(
                    "negative gauge {raw:?} not directly after '{}:0|g' (Etsy adds it as a delta)",
                    line.name
                ));
            }
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The bucket rules listed in the module docs.
fn check_bucket(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty bucket".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "bucket character {c:?} (Etsy drops or rewrites it, or it is a Graphite tag)"
        ));
    }
    if name.split('.').any(str::is_empty) {
        return Err("empty '.'-segment in the bucket".into());
    }
    Ok(())
}

/// `-?\d+(\.\d+)?([eE][+-]?\d+)?`
pub(crate) fn is_plain_number(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

fn parse_rate(field: &str) -> Result<f64, String> {
    let Some(text) = field.strip_prefix('@') else {
        return Err(format!("field {field:?} is not a rate"));
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("rate {text:?} is not digits and '.'"));
    }
    let rate: f64 = text.parse().map_err(|e| format!("rate {text:?}: {e}"))?;
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(format!("rate {text:?} not in (0, 1]"));
    }
    Ok(rate)
}

/// Checks the parser on a table of accepted and rejected lines. Call it from one test.
pub(crate) fn self_check() {
    let accepted: &[(&str, &str, f64, Kind, Option<f64>)] = &[
        ("a:1|c", "a", 1.0, Kind::Counter, None),
        (
            "a.b-c_D:18446744073709551615|c",
            "a.b-c_D",
            2f64.powi(64),
            Kind::Counter,
            None,
        ),
        ("g:-5|g", "g", -5.0, Kind::Gauge, None),
        ("g:1.5e300|g", "g", 1.5e300, Kind::Gauge, None),
        ("t:12.5|ms|@0.25", "t", 12.5, Kind::Timer, Some(0.25)),
        ("t:0|ms|@1", "t", 0.0, Kind::Timer, Some(1.0)),
        (
            "h:-1e-7|h|@0.000000001",
            "h",
            -1e-7,
            Kind::Histogram,
            Some(1e-9),
        ),
    ];
    let set = parse_line("u:caf\u{e9} #1,x|s").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            set.name.as_str(),
            set.value_text.as_str(),
            set.kind,
            set.rate
        ),
        ("u", "caf\u{e9} #1,x", Kind::Set, None)
    );
    for (line, name, value, kind, rate) in accepted {
        let got = parse_line(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (got.name.as_str(), got.kind, got.rate),
            (*name, *kind, *rate),
            "{line}"
        );
        assert_eq!(got.value.to_bits(), value.to_bits(), "{line}");
    }
    for line in [
        "",
        "a",
        "a|c",
        ":1|c",
        "a b:1|c",
        "a/b:1|c",
        "a;k=v:1|c",
        "a..b:1|c",
        ".a:1|c",
        "a.:1|c",
        "caf\u{e9}:1|c",
        "a:1|c:2|c",
        "a:1",
        "a:|c",
        "a:1|x",
        "a:|s",
        "a:b\u{7f}|s",
        "a:b|s|@0.5",
        "a:NaN|g",
        "a:inf|g",
        "a:+1|g",
        "a:1e400|g",
        "a:-1|c",
        "a:1.5|c",
        "a:-1|ms",
        "a:1|ms|@1e-3",
        "a:1|ms|@0",
        "a:1|ms|@1.5",
        "a:1|ms|0.5",
        "a:1|ms|@0.5|@0.5",
        "a:1|c|#k:v",
        "a:1|c\r",
    ] {
        assert!(parse_line(line).is_err(), "{line:?} must be rejected");
    }
    let ok = parse_payload(b"a:0|g\na:-5|g\nb:1|c", false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.len(), 3);
    assert!(parse_payload(b"a:0|g\na:-5|g\n", true).is_ok());
    for bad in [
        &b"a:-5|g"[..],
        b"b:0|g\na:-5|g",
        b"a:0|g\nb:1|c\na:-5|g",
        b"a:1|c\n",
        b"a:1|c\n\nb:1|c",
        b"",
        b"a:1|c\xff",
    ] {
        assert!(
            parse_payload(bad, false).is_err(),
            "{bad:?} must be rejected"
        );
    }
    assert!(
        parse_payload(b"a:1|c", true).is_err(),
        "a stream line ends with \\n"
    );
}
