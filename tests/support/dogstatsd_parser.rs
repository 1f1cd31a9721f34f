//! A strict, test-only DogStatsD datagram parser, written from the protocol description
//! (Datadog docs `developers/dogstatsd/datagram_shell` and the Agent's field rules), not from
//! this crate's encoder, so that the tests check the encoder against an independent reading
//! of the wire format.
//!
//! Wire format of one line:
//!
//! ```text
//! <name>:<value>[:<value>...]|<type>[|@<rate>][|#<tag>,<tag>...][|c:<container>][|e:<external>][|T<unix-secs>][|card:<level>]
//! ```
//!
//! A set (`|s`) carries one member as its value: any non-empty text without `:` (which would
//! pack a second member), `|` or control characters. `|e:` external data is non-empty
//! printable text; `|card:` is `none`, `low`, `orchestrator` or `high`.
//!
//! Lines are separated by `\n` inside one datagram. The Agent matches the fields after the
//! type by prefix, in any order, and ignores unknown ones; this parser accepts any order too,
//! but is deliberately stricter than the Agent everywhere else (unknown, duplicate and empty
//! fields are errors) so that it catches encoder bugs instead of silently tolerating them.
//!
//! Include with `#[path = "support/dogstatsd_parser.rs"] mod dogstatsd_parser;` from an
//! integration test, or with a `#[path]` from a `#[cfg(test)]` module in `src/`. Call
//! [`self_check`] from one test to check the parser itself.
#![allow(dead_code, reason = "each includer uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::fmt;

/// The metric types this parser accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricType {
    /// `c`
    Count,
    /// `g`
    Gauge,
    /// `ms`
    Timer,
    /// `h`
    Histogram,
    /// `s`: the member is [`Metric::member`], `values` is empty.
    Set,
    /// `d`
    Distribution,
}

/// One parsed DogStatsD line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    pub(crate) name: String,
    /// One or more values (protocol v1.1 packs several values of one metric into one line).
    pub(crate) values: Vec<f64>,
    pub(crate) kind: MetricType,
    /// Present only if `|@` was given; always in (0, 1].
    pub(crate) rate: Option<f64>,
    /// In wire order; key is the text before the first `:`, value the rest (may contain `:`);
    /// a bare tag has value `None`.
    pub(crate) tags: Vec<(String, Option<String>)>,
    /// The `|c:` field.
    pub(crate) container: Option<String>,
    /// The `|T` field (Unix seconds).
    pub(crate) timestamp: Option<u64>,
    /// A set's member (`None` for every other type).
    pub(crate) member: Option<String>,
    /// The `|e:` field (external data).
    pub(crate) external: Option<String>,
    /// The `|card:` field (tag cardinality).
    pub(crate) cardinality: Option<String>,
}

/// Why a line (or a datagram, or a stream) was rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    /// The offending line (for datagram/stream level errors: a description of the input).
    pub(crate) line: String,
    pub(crate) reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in DogStatsD line {:?}", self.reason, self.line)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(line: &str, reason: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line: line.to_owned(),
        reason: reason.into(),
    })
}

/// Parses one line (no newline inside).
pub(crate) fn parse_line(line: &str) -> Result<Metric, ParseError> {
    // A newline would end the line early on the Agent side; callers split datagrams first.
    if line.contains('\n') {
        return err(line, "line contains a newline");
    }
    let mut fields = line.split('|');
    // `split` always yields at least one item.
    let head = fields.next().unwrap_or_default();
    let Some((name, values_text)) = head.split_once(':') else {
        return err(line, "missing ':' between name and value");
    };
    check_name(line, name)?;
    let Some(type_text) = fields.next() else {
        return err(line, "missing '|<type>'");
    };
    let (values, member) = if type_text == "s" {
        check_member(line, values_text)?;
        (Vec::new(), Some(values_text.to_owned()))
    } else {
        (parse_values(line, values_text)?, None)
    };
    let kind = match type_text {
        "c" => MetricType::Count,
        "g" => MetricType::Gauge,
        "ms" => MetricType::Timer,
        "h" => MetricType::Histogram,
        "d" => MetricType::Distribution,
        "s" => MetricType::Set,
        "" => return err(line, "empty type"),
        other => return err(line, format!("unknown type {other:?}")),
    };
    // Protocol v1.1 allows packing for every type but `s`; in practice (and in our exporter)
    // only timers, histograms and distributions are packed: several values of a count or a
    // gauge in one line would mean the encoder failed to aggregate.
    if values.len() > 1
        && !matches!(
            kind,
            MetricType::Timer | MetricType::Histogram | MetricType::Distribution
        )
    {
        return err(
            line,
            format!("packed values are only expected for ms, h and d, not {type_text:?}"),
        );
    }

    let mut metric = Metric {
        name: name.to_owned(),
        values,
        kind,
        rate: None,
        tags: Vec::new(),
        container: None,
        timestamp: None,
        member,
        external: None,
        cardinality: None,
    };
    for field in fields {
        parse_field(line, field, &mut metric)?;
    }
    // Protocol v1.3: the Agent honours `|T` only on gauges and counts; on any other type it is
    // a sign the encoder attached a timestamp where it has no meaning.
    if metric.timestamp.is_some() && !matches!(metric.kind, MetricType::Count | MetricType::Gauge) {
        return err(
            line,
            "timestamp '|T' is only meaningful on counts and gauges",
        );
    }
    Ok(metric)
}

/// Parses one optional field after the type; fields may come in any order (the Agent matches
/// them by prefix), but each at most once.
fn parse_field(line: &str, field: &str, metric: &mut Metric) -> Result<(), ParseError> {
    // An empty field (`||`, or a trailing `|`) means the encoder wrote a separator for a field
    // it then left out; the Agent ignores it but it is never intended.
    if field.is_empty() {
        return err(line, "empty field between '|'");
    }
    if let Some(rate_text) = field.strip_prefix('@') {
        // Duplicate fields: the Agent keeps one of them silently, so the other is lost.
        if metric.rate.is_some() {
            return err(line, "duplicate '|@' rate field");
        }
        metric.rate = Some(parse_rate(line, rate_text)?);
    } else if let Some(tags_text) = field.strip_prefix('#') {
        if !metric.tags.is_empty() {
            return err(line, "duplicate '|#' tags field");
        }
        metric.tags = parse_tags(line, tags_text)?;
    } else if let Some(container) = field.strip_prefix("c:") {
        if metric.container.is_some() {
            return err(line, "duplicate '|c:' container field");
        }
        check_container(line, container)?;
        metric.container = Some(container.to_owned());
    } else if let Some(ts_text) = field.strip_prefix('T') {
        if metric.timestamp.is_some() {
            return err(line, "duplicate '|T' timestamp field");
        }
        metric.timestamp = Some(parse_timestamp(line, ts_text)?);
    } else if let Some(external) = field.strip_prefix("e:") {
        if metric.external.is_some() {
            return err(line, "duplicate '|e:' external data field");
        }
        if external.is_empty() || external.chars().any(char::is_control) {
            return err(
                line,
                format!("external data {external:?} is empty or not printable"),
            );
        }
        metric.external = Some(external.to_owned());
    } else if let Some(card) = field.strip_prefix("card:") {
        if metric.cardinality.is_some() {
            return err(line, "duplicate '|card:' cardinality field");
        }
        if !matches!(card, "none" | "low" | "orchestrator" | "high") {
            return err(line, format!("unknown cardinality {card:?}"));
        }
        metric.cardinality = Some(card.to_owned());
    } else {
        // The Agent ignores unknown fields; strictly, an unknown field is an encoder bug.
        return err(line, format!("unknown field {field:?}"));
    }
    Ok(())
}

/// Names: non-empty; ASCII alphanumerics, `_` and `.` only (the Agent maps anything else to `_`,
/// so another character means the encoder forgot to sanitise); no empty dot-segments (a
/// leading, trailing or doubled `.` yields an empty path component in Datadog's namespace).
fn check_name(line: &str, name: &str) -> Result<(), ParseError> {
    if name.is_empty() {
        return err(line, "empty metric name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return err(
            line,
            format!("metric name contains {c:?} (only ASCII alphanumerics, '_' and '.' allowed)"),
        );
    }
    if name.split('.').any(str::is_empty) {
        return err(
            line,
            "metric name has an empty '.'-segment (leading, trailing or double '.')",
        );
    }
    Ok(())
}

/// A set member: non-empty; no control characters (`|` already ended it; a `:` would be a
/// second packed member, which sets cannot have).
fn check_member(line: &str, member: &str) -> Result<(), ParseError> {
    if member.is_empty() {
        return err(line, "empty set member");
    }
    if let Some(c) = member.chars().find(|&c| c == ':' || c.is_control()) {
        return err(line, format!("set member {member:?} contains {c:?}"));
    }
    Ok(())
}

/// Values: one or more, `:`-separated; each a finite number in plain decimal or exponent form.
fn parse_values(line: &str, text: &str) -> Result<Vec<f64>, ParseError> {
    text.split(':')
        .map(|v| {
            // The Agent skips empty packed values (`1::2`); an encoder never means to write one.
            if v.is_empty() {
                return err(line, "empty value");
            }
            // Only `-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?`: rejects `nan`, `inf`, `infinity`,
            // a leading `+`, hex and whitespace, which Rust's `f64::from_str` (and some
            // receivers) would otherwise accept or misread.
            if !is_decimal_number(v) {
                return err(
                    line,
                    format!("value {v:?} is not a plain decimal/exponent number"),
                );
            }
            let x: f64 = v.parse().map_err(|e| ParseError {
                line: line.to_owned(),
                reason: format!("value {v:?}: {e}"),
            })?;
            // An overflowing exponent (`1e400`) parses to infinity; receivers cannot use it.
            if !x.is_finite() {
                return err(line, format!("value {v:?} is not finite"));
            }
            Ok(x)
        })
        .collect()
}

/// Matches `-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?`.
fn is_decimal_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

/// Rate: plain decimal `\d*\.?\d+` (no exponent, no sign: Etsy statsd reads rates with
/// `/^@([\d\.]+)/`, so `@1e-3` would be read as `1`), and in (0, 1] (0 would make receivers
/// divide by zero when scaling counts; above 1 is meaningless).
fn parse_rate(line: &str, text: &str) -> Result<f64, ParseError> {
    let (int, frac) = text.split_once('.').unwrap_or(("", text));
    let plain = !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !plain {
        return err(
            line,
            format!("rate {text:?} is not a plain decimal (digits, optional '.')"),
        );
    }
    let rate: f64 = text.parse().map_err(|e| ParseError {
        line: line.to_owned(),
        reason: format!("rate {text:?}: {e}"),
    })?;
    if !(rate > 0.0 && rate <= 1.0) {
        return err(line, format!("rate {text:?} is not in (0, 1]"));
    }
    Ok(rate)
}

/// Tags: a non-empty, `,`-separated list; see the comments for each rule.
fn parse_tags(line: &str, text: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    // `|#` with nothing after it: the encoder wrote the prefix for an empty tag set.
    if text.is_empty() {
        return err(line, "empty tag list after '|#'");
    }
    let mut tags: Vec<(String, Option<String>)> = Vec::new();
    for tag in text.split(',') {
        // `a,,b` or a trailing `,`: an empty tag is a joining bug.
        if tag.is_empty() {
            return err(line, "empty tag");
        }
        // `|` splits the line into fields, `,` the tag list; `#` would start a tags field if it
        // came after a `|`; newlines split the datagram; other control characters and
        // whitespace are not valid in Datadog tags and show the encoder did not sanitise.
        if let Some(c) = tag
            .chars()
            .find(|c| matches!(c, '|' | ',' | '#') || c.is_control() || c.is_whitespace())
        {
            return err(
                line,
                format!("tag {tag:?} contains forbidden character {c:?}"),
            );
        }
        let (key, value) = match tag.split_once(':') {
            Some((k, v)) => (k, Some(v)),
            None => (tag, None),
        };
        // `:value` has no key: the Agent would index it under an empty tag name.
        if key.is_empty() {
            return err(line, format!("tag {tag:?} has an empty key"));
        }
        // Datadog tags must not end with ':'; an empty value must be sent as a bare tag.
        if value == Some("") {
            return err(
                line,
                format!("tag {tag:?} ends with ':' (send an empty value as a bare tag)"),
            );
        }
        // Two tags with one key (`env:a,env:b`, or `env,env:a`) mean the encoder did not
        // de-duplicate labels; keys are compared exactly (no case folding).
        if tags.iter().any(|(k, _)| k == key) {
            return err(line, format!("duplicate tag key {key:?}"));
        }
        tags.push((key.to_owned(), value.map(str::to_owned)));
    }
    Ok(tags)
}

/// Container id: non-empty; `[A-Za-z0-9_.:-]` and `,` (the Agent accepts
/// `ci-<id>,in-<inode>`); anything else would corrupt the line or is not an id.
fn check_container(line: &str, container: &str) -> Result<(), ParseError> {
    if container.is_empty() {
        return err(line, "empty container id after '|c:'");
    }
    if let Some(c) = container
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | ',')))
    {
        return err(line, format!("container id {container:?} contains {c:?}"));
    }
    Ok(())
}

/// Timestamp: a positive integer of Unix seconds, digits only, no leading zero (the Agent
/// drops non-positive timestamps; a sign, a fraction or padding is an encoder bug).
fn parse_timestamp(line: &str, text: &str) -> Result<u64, ParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return err(
            line,
            format!("timestamp {text:?} is not a positive integer"),
        );
    }
    if text.starts_with('0') {
        return err(
            line,
            format!("timestamp {text:?} is zero or has a leading zero"),
        );
    }
    text.parse().map_err(|e| ParseError {
        line: line.to_owned(),
        reason: format!("timestamp {text:?}: {e}"),
    })
}

/// Parses a whole datagram/frame body: lines separated by `\n`. An empty line anywhere,
/// including after a trailing newline, is an error (our exporter never sends one); so is
/// invalid UTF-8 (DogStatsD datagrams are UTF-8) and an empty payload.
pub(crate) fn parse_datagram(payload: &[u8]) -> Result<Vec<Metric>, ParseError> {
    let text = std::str::from_utf8(payload).map_err(|e| ParseError {
        line: String::from_utf8_lossy(payload).into_owned(),
        reason: format!("datagram is not valid UTF-8: {e}"),
    })?;
    text.split('\n')
        .map(|line| {
            if line.is_empty() {
                return err(text, "empty line in datagram (leading, trailing or double newline, or empty payload)");
            }
            parse_line(line)
        })
        .collect()
}

/// Decodes a Unix-stream byte sequence made of frames (4-byte little-endian length, then that
/// many bytes of body, as datadog-go and the Agent's `unixstream` listener use) and returns the
/// bodies. A truncated header or body is an error; so is a zero-length frame (our exporter
/// never sends one; the Agent would read an empty payload). Empty input yields no frames.
pub(crate) fn split_length_prefixed(bytes: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    let mut offset = 0usize;
    while !rest.is_empty() {
        let Some((header, after)) = rest.split_first_chunk::<4>() else {
            return err(
                &format!("<stream of {} bytes>", bytes.len()),
                format!(
                    "truncated length prefix at offset {offset}: {} of 4 bytes",
                    rest.len()
                ),
            );
        };
        let len = usize::try_from(u32::from_le_bytes(*header)).expect("u32 fits in usize");
        if len == 0 {
            return err(
                &format!("<stream of {} bytes>", bytes.len()),
                format!("zero-length frame at offset {offset}"),
            );
        }
        if after.len() < len {
            return err(
                &format!("<stream of {} bytes>", bytes.len()),
                format!(
                    "truncated frame at offset {offset}: length {len}, {} bytes left",
                    after.len()
                ),
            );
        }
        let (body, next) = after.split_at(len);
        frames.push(body);
        rest = next;
        offset += 4 + len;
    }
    Ok(frames)
}

/// Asserts the parser's behaviour on a table of accepted and rejected inputs. Call it from
/// exactly one test.
pub(crate) fn self_check() {
    check_accepted();
    check_rejected();
    check_datagrams();
    check_length_prefixed();
}

fn metric(name: &str, values: &[f64], kind: MetricType) -> Metric {
    Metric {
        name: name.to_owned(),
        values: values.to_vec(),
        kind,
        rate: None,
        tags: Vec::new(),
        container: None,
        timestamp: None,
        member: None,
        external: None,
        cardinality: None,
    }
}

fn tags(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect()
}

fn check_accepted() {
    let accepted = accepted_values()
        .into_iter()
        .chain(accepted_fields())
        .chain(accepted_sets_and_origin());
    for (line, expected) in accepted {
        match parse_line(line) {
            Ok(got) => assert_eq!(got, expected, "parse_line({line:?})"),
            Err(e) => panic!("parse_line({line:?}) should succeed, got: {e}"),
        }
    }
}

/// Accepted lines: names, values, types, packing.
fn accepted_values() -> Vec<(&'static str, Metric)> {
    vec![
        ("a:1|c", metric("a", &[1.0], MetricType::Count)),
        (
            "a.b_c.D9:-5|g",
            metric("a.b_c.D9", &[-5.0], MetricType::Gauge),
        ),
        ("t:12.5|ms", metric("t", &[12.5], MetricType::Timer)),
        ("h:1e30|h", metric("h", &[1e30], MetricType::Histogram)),
        ("h:1.5E-7|h", metric("h", &[1.5e-7], MetricType::Histogram)),
        (
            "a:1:2.5:3|d",
            metric("a", &[1.0, 2.5, 3.0], MetricType::Distribution),
        ),
        ("a:1:2|ms", metric("a", &[1.0, 2.0], MetricType::Timer)),
    ]
}

/// Accepted lines: a set's member, and the origin fields.
fn accepted_sets_and_origin() -> Vec<(&'static str, Metric)> {
    vec![
        (
            "u:caf\u{e9} #1,x|s|#k:v",
            Metric {
                member: Some("caf\u{e9} #1,x".into()),
                tags: tags(&[("k", Some("v"))]),
                ..metric("u", &[], MetricType::Set)
            },
        ),
        (
            "a:1|c|c:abc|e:it-false,cn-x|T17|card:orchestrator",
            Metric {
                container: Some("abc".into()),
                external: Some("it-false,cn-x".into()),
                timestamp: Some(17),
                cardinality: Some("orchestrator".into()),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
    ]
}

/// Accepted lines: optional fields (rate, tags, container, timestamp) in any order.
fn accepted_fields() -> Vec<(&'static str, Metric)> {
    vec![
        (
            "a:1|c|@0.25",
            Metric {
                rate: Some(0.25),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:1|c|@1",
            Metric {
                rate: Some(1.0),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:1|h|@.5",
            Metric {
                rate: Some(0.5),
                ..metric("a", &[1.0], MetricType::Histogram)
            },
        ),
        (
            "a:1|c|#z:1,a:2,m",
            Metric {
                tags: tags(&[("z", Some("1")), ("a", Some("2")), ("m", None)]),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:1|g|#url:http://x,env:staging:east",
            Metric {
                tags: tags(&[("url", Some("http://x")), ("env", Some("staging:east"))]),
                ..metric("a", &[1.0], MetricType::Gauge)
            },
        ),
        (
            "a:1|g|#bare",
            Metric {
                tags: tags(&[("bare", None)]),
                ..metric("a", &[1.0], MetricType::Gauge)
            },
        ),
        (
            "a:1|g|T1700000000",
            Metric {
                timestamp: Some(1_700_000_000),
                ..metric("a", &[1.0], MetricType::Gauge)
            },
        ),
        (
            "a:1|c|c:abc123",
            Metric {
                container: Some("abc123".into()),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:1|c|c:ci-abc_1.2,in-42",
            Metric {
                container: Some("ci-abc_1.2,in-42".into()),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:1|c|#a:b|@0.5",
            Metric {
                rate: Some(0.5),
                tags: tags(&[("a", Some("b"))]),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
        (
            "a:2:3|d|@0.5|#k:v|c:abc",
            Metric {
                rate: Some(0.5),
                tags: tags(&[("k", Some("v"))]),
                container: Some("abc".into()),
                ..metric("a", &[2.0, 3.0], MetricType::Distribution)
            },
        ),
        (
            "a:1|c|T17|c:x|#k|@0.1",
            Metric {
                rate: Some(0.1),
                tags: tags(&[("k", None)]),
                container: Some("x".into()),
                timestamp: Some(17),
                ..metric("a", &[1.0], MetricType::Count)
            },
        ),
    ]
}

fn check_rejected() {
    // (line, substring of the expected reason)
    let cases: &[(&str, &str)] = &[
        ("", "missing ':'"),
        ("a|c", "missing ':'"),
        (":1|c", "empty metric name"),
        ("a-b:1|c", "metric name contains"),
        ("a b:1|c", "metric name contains"),
        (".a:1|c", "empty '.'-segment"),
        ("a.:1|c", "empty '.'-segment"),
        ("a..b:1|c", "empty '.'-segment"),
        ("a:1", "missing '|<type>'"),
        ("a:|c", "empty value"),
        ("a:1::2|d", "empty value"),
        ("a:1:|d", "empty value"),
        ("a:NaN|g", "not a plain"),
        ("a:inf|g", "not a plain"),
        ("a:+1|g", "not a plain"),
        ("a:1e|g", "not a plain"),
        ("a:1e400|g", "not finite"),
        ("a:1|", "empty type"),
        ("a:|s", "empty set member"),
        ("a:b:c|s", "set member"),
        ("a:b\u{1}|s", "set member"),
        ("a:b|s|T1700000000", "only meaningful on counts and gauges"),
        ("a:1|x", "unknown type"),
        ("a:1:2|c", "packed values"),
        ("a:1:2|g", "packed values"),
        ("a:1|c|@1e-3", "not a plain decimal"),
        ("a:1|c|@-0.5", "not a plain decimal"),
        ("a:1|c|@0", "not in (0, 1]"),
        ("a:1|c|@1.5", "not in (0, 1]"),
        ("a:1|c|@0.5|@0.5", "duplicate '|@'"),
        ("a:1|c|#", "empty tag list"),
        ("a:1|c|#a,,b", "empty tag"),
        ("a:1|c|#a,", "empty tag"),
        ("a:1|c|#a b", "forbidden character"),
        ("a:1|c|#a\tb", "forbidden character"),
        ("a:1|c|#a#b", "forbidden character"),
        ("a:1|c|#:v", "empty key"),
        ("a:1|c|#k:", "ends with ':'"),
        ("a:1|c|#env:a,env:b", "duplicate tag key"),
        ("a:1|c|#env,env:a", "duplicate tag key"),
        ("a:1|c|#a:1|#b:2", "duplicate '|#'"),
        ("a:1|c|c:", "empty container"),
        ("a:1|c|c:a/b", "container id"),
        ("a:1|c|c:a|c:b", "duplicate '|c:'"),
        ("a:1|g|T", "not a positive integer"),
        ("a:1|g|T0", "leading zero"),
        ("a:1|g|T-5", "not a positive integer"),
        ("a:1|g|T1.5", "not a positive integer"),
        ("a:1|g|T1|T2", "duplicate '|T'"),
        ("a:1|d|T1700000000", "only meaningful on counts and gauges"),
        ("a:1|c|e:", "external data"),
        ("a:1|c|e:a|e:b", "duplicate '|e:'"),
        ("a:1|c|card:mid", "unknown cardinality"),
        ("a:1|c|card:", "unknown cardinality"),
        ("a:1|c|card:low|card:low", "duplicate '|card:'"),
        ("a:1|c|x:y", "unknown field"),
        ("a:1|c||#a", "empty field"),
        ("a:1|c|", "empty field"),
        ("a:1|c\nb:1|c", "newline"),
    ];
    for (line, reason) in cases {
        match parse_line(line) {
            Ok(m) => panic!("parse_line({line:?}) should fail ({reason}), got {m:?}"),
            Err(e) => assert!(
                e.reason.contains(reason),
                "parse_line({line:?}): expected reason containing {reason:?}, got {e}"
            ),
        }
    }
}

fn check_datagrams() {
    let got = parse_datagram(b"a:1|c\nb:2:3|h|#k:v").expect("two-line datagram");
    assert_eq!(
        got,
        vec![
            metric("a", &[1.0], MetricType::Count),
            Metric {
                tags: tags(&[("k", Some("v"))]),
                ..metric("b", &[2.0, 3.0], MetricType::Histogram)
            },
        ]
    );
    for bad in [&b"a:1|c\n"[..], b"\na:1|c", b"a:1|c\n\nb:1|c", b""] {
        let e = parse_datagram(bad).expect_err("empty line must be rejected");
        assert!(e.reason.contains("empty line"), "{bad:?}: {e}");
    }
    let e = parse_datagram(b"a:1|c|#k:\xff").expect_err("invalid UTF-8 must be rejected");
    assert!(e.reason.contains("UTF-8"), "{e}");
    let e = parse_datagram(b"a:1|c\nb:1|x").expect_err("a bad second line must be rejected");
    assert_eq!(e.line, "b:1|x");
}

fn check_length_prefixed() {
    let mut stream = Vec::new();
    for body in [&b"a:1|c"[..], b"b:2|g\nc:3|d"] {
        stream.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        stream.extend_from_slice(body);
    }
    let frames = split_length_prefixed(&stream).expect("two frames");
    assert_eq!(frames, vec![&b"a:1|c"[..], b"b:2|g\nc:3|d"]);
    assert_eq!(parse_datagram(frames[1]).expect("second frame").len(), 2);
    assert_eq!(
        split_length_prefixed(b"").expect("empty stream"),
        Vec::<&[u8]>::new()
    );

    // Body cut short.
    let e = split_length_prefixed(&stream[..stream.len() - 1]).expect_err("truncated body");
    assert!(e.reason.contains("truncated frame"), "{e}");
    // Length prefix cut short (after one whole frame).
    let e = split_length_prefixed(&stream[..4 + 5 + 2]).expect_err("truncated header");
    assert!(e.reason.contains("truncated length prefix"), "{e}");
    // Zero-length frame.
    let e = split_length_prefixed(&[0, 0, 0, 0]).expect_err("zero-length frame");
    assert!(e.reason.contains("zero-length"), "{e}");
}
