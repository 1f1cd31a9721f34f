//! Line parsers for StatsD (Etsy), DogStatsD and Graphite plaintext.
//!
//! Written from the protocol facts (`protocols.md` A1–A3: Etsy's `stats.js`, the Agent's
//! `parse.go`, carbon's `protocols.py` and `tags.rst`), never from this crate's encoders, so the
//! tap can catch an encoder bug instead of agreeing with it. A line is flagged when a receiver
//! would reject it, drop it, or silently rewrite it into something else; each flag says why.

use std::fmt;

/// Which receiver's rules a line is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Statsd,
    Dogstatsd,
    Graphite,
}

/// The kind of a parsed line, for the per-type counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Timer,
    Histogram,
    Distribution,
    Set,
    Event,
    ServiceCheck,
    /// A Graphite `path value timestamp` point.
    Point,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Timer => "timer",
            Self::Histogram => "histogram",
            Self::Distribution => "distribution",
            Self::Set => "set",
            Self::Event => "event",
            Self::ServiceCheck => "service check",
            Self::Point => "point",
        })
    }
}

/// A line that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) kind: Kind,
    /// What makes the series distinct: name, type and the sorted tags.
    pub(crate) series: String,
    /// How many values the line carries (DogStatsD packs several: `name:1:2:3|d`).
    pub(crate) values: usize,
}

/// Why a line was flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bad {
    NotUtf8,
    TooLong {
        len: usize,
        max: usize,
    },
    /// The stream ended in the middle of a line (stream receivers only act on `\n`).
    Unterminated,
    /// A length-prefixed frame that cannot be read (the Agent drops the connection).
    Frame(String),
    MissingName,
    MissingValue,
    MissingType,
    UnknownType(String),
    Value {
        value: String,
        why: &'static str,
    },
    Rate(String),
    Tag {
        tag: String,
        why: &'static str,
    },
    Timestamp {
        value: String,
        why: &'static str,
    },
    UnknownField(String),
    WhitespaceInName,
    /// A Graphite line that does not split into exactly three fields.
    WhitespaceInPath {
        fields: usize,
    },
    Event(&'static str),
    ServiceCheck(&'static str),
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not UTF-8"),
            Self::TooLong { len, max } => {
                write!(f, "line of {len} bytes, over the {max}-byte limit")
            }
            Self::Unterminated => f.write_str("stream ended inside a line (no trailing \\n)"),
            Self::Frame(why) => write!(f, "bad frame: {why}"),
            Self::MissingName => f.write_str("missing name"),
            Self::MissingValue => f.write_str("missing value (no `:value`)"),
            Self::MissingType => f.write_str("missing type (no `|type` after the value)"),
            Self::UnknownType(t) => write!(f, "unknown type `{t}`"),
            Self::Value { value, why } => write!(f, "bad value `{value}`: {why}"),
            Self::Rate(r) => write!(f, "bad sample rate `{r}`: want @ and a number in (0, 1]"),
            Self::Tag { tag, why } => write!(f, "bad tag `{tag}`: {why}"),
            Self::Timestamp { value, why } => write!(f, "bad timestamp `{value}`: {why}"),
            Self::UnknownField(field) => write!(f, "unknown field `|{field}`"),
            Self::WhitespaceInName => f.write_str("whitespace or control character in the name"),
            Self::WhitespaceInPath { fields } => write!(
                f,
                "{fields} fields, want `path value timestamp` (whitespace in the Graphite path?)"
            ),
            Self::Event(why) => write!(f, "bad event: {why}"),
            Self::ServiceCheck(why) => write!(f, "bad service check: {why}"),
        }
    }
}

/// Carbon's line receiver (Twisted `LineOnlyReceiver.MAX_LENGTH`) drops the connection past
/// this.
pub(crate) const GRAPHITE_MAX_LINE: usize = 16_384;

/// Parses one line (without its `\n`) by the rules of `dialect`.
pub(crate) fn parse_line(dialect: Dialect, line: &[u8]) -> Result<Parsed, Bad> {
    if dialect == Dialect::Graphite && line.len() > GRAPHITE_MAX_LINE {
        return Err(Bad::TooLong {
            len: line.len(),
            max: GRAPHITE_MAX_LINE,
        });
    }
    let line = std::str::from_utf8(line).map_err(|_| Bad::NotUtf8)?;
    match dialect {
        Dialect::Statsd => statsd(line),
        Dialect::Dogstatsd if line.starts_with("_e{") => crate::events::event(line),
        Dialect::Dogstatsd if line.starts_with("_sc|") => crate::events::service_check(line),
        Dialect::Dogstatsd => dogstatsd(line),
        Dialect::Graphite => graphite(line),
    }
}

/// A finite number as the receivers read one (no NaN, no infinities).
fn number(text: &str) -> Result<f64, Bad> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(bad_value(text, "not finite")),
        Err(_) => Err(bad_value(text, "not a number")),
    }
}

fn bad_value(value: &str, why: &'static str) -> Bad {
    Bad::Value {
        value: value.into(),
        why,
    }
}

fn name_of(line: &str) -> Result<(&str, &str), Bad> {
    let (name, rest) = line.split_once(':').ok_or(Bad::MissingValue)?;
    if name.is_empty() {
        return Err(Bad::MissingName);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Bad::WhitespaceInName);
    }
    Ok((name, rest))
}

fn rate(field: &str) -> Result<(), Bad> {
    match field[1..].parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(()),
        _ => Err(Bad::Rate(field.into())),
    }
}

/// DogStatsD tags (`#a:b,c`), also accepted by Etsy statsd. Returns them sorted.
pub(crate) fn tags(field: &str) -> Result<Vec<&str>, Bad> {
    let list = &field[1..];
    if list.is_empty() {
        return Err(Bad::Tag {
            tag: String::new(),
            why: "empty tag list",
        });
    }
    let mut tags = Vec::new();
    for tag in list.split(',') {
        let why = if tag.is_empty() {
            Some("empty tag (stray comma)")
        } else if tag.starts_with(':') {
            Some("empty key")
        } else if tag.ends_with(':') {
            Some("ends with `:` (a tag without a value is the bare key)")
        } else if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("whitespace or control character")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Bad::Tag {
                tag: tag.into(),
                why,
            });
        }
        tags.push(tag);
    }
    tags.sort_unstable();
    Ok(tags)
}

pub(crate) fn series(name: &str, kind: &str, tags: &[&str]) -> String {
    if tags.is_empty() {
        format!("{name}|{kind}")
    } else {
        format!("{name}|{kind}|#{}", tags.join(","))
    }
}

/// Etsy statsd: `name:value|type[|@rate][|#tags]`, and several samples on one line
/// (`name:1|c:2|c`) when there are no tags (tags hold `:` themselves).
fn statsd(line: &str) -> Result<Parsed, Bad> {
    let (name, rest) = name_of(line)?;
    let samples: Vec<&str> = if rest.contains("|#") {
        vec![rest]
    } else {
        rest.split(':').collect()
    };
    let mut first = None;
    for sample in &samples {
        let mut fields = sample.split('|');
        let value = fields.next().unwrap_or_default();
        let kind = fields.next().ok_or(Bad::MissingType)?;
        let parsed_kind = match kind {
            // Etsy counts an empty counter value as 1.
            "c" if value.is_empty() => Kind::Counter,
            "c" => number(value).map(|_| Kind::Counter)?,
            "g" => number(value).map(|_| Kind::Gauge)?,
            "ms" | "h" => {
                if number(value)? < 0.0 {
                    return Err(bad_value(value, "negative timer (Etsy drops it)"));
                }
                if kind == "ms" {
                    Kind::Timer
                } else {
                    Kind::Histogram
                }
            }
            "s" if value.is_empty() => return Err(bad_value(value, "empty set member")),
            "s" => Kind::Set,
            "" => return Err(Bad::MissingType),
            other => return Err(Bad::UnknownType(other.into())),
        };
        let mut sorted = Vec::new();
        for field in fields {
            match field.as_bytes().first() {
                Some(b'@') => rate(field)?,
                Some(b'#') => sorted = tags(field)?,
                _ => return Err(Bad::UnknownField(field.into())),
            }
        }
        first.get_or_insert((parsed_kind, series(name, kind, &sorted)));
    }
    let (kind, series) = first.ok_or(Bad::MissingValue)?;
    Ok(Parsed {
        kind,
        series,
        values: samples.len(),
    })
}

/// DogStatsD: `name:v[:v...]|type[|@rate][|#tags][|c:..][|e:..][|T<secs>][|card:..]`, the
/// fields after the type in any order (as the Agent's parser matches them by prefix).
fn dogstatsd(line: &str) -> Result<Parsed, Bad> {
    let (name, rest) = name_of(line)?;
    let mut fields = rest.split('|');
    let values = fields.next().unwrap_or_default();
    let kind_text = fields.next().ok_or(Bad::MissingType)?;
    let kind = match kind_text {
        "c" => Kind::Counter,
        "g" => Kind::Gauge,
        "ms" => Kind::Timer,
        "h" => Kind::Histogram,
        "d" => Kind::Distribution,
        "s" => Kind::Set,
        "" => return Err(Bad::MissingType),
        other => return Err(Bad::UnknownType(other.into())),
    };
    // v1.1 packing; the Agent skips empty values (`1::2`).
    let values: Vec<&str> = values.split(':').filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(bad_value("", "empty value"));
    }
    if kind == Kind::Set {
        if values.len() > 1 {
            return Err(bad_value(rest, "a set cannot pack several values"));
        }
    } else {
        for value in &values {
            number(value)?;
        }
    }
    let mut sorted = Vec::new();
    for field in fields {
        if field.starts_with('@') {
            rate(field)?;
        } else if field.starts_with('#') {
            sorted = tags(field)?;
        } else if let Some(ts) = field.strip_prefix('T') {
            timestamp_field(ts, kind)?;
        } else if let Some(value) = field
            .strip_prefix("card:")
            .or_else(|| field.strip_prefix("c:"))
            .or_else(|| field.strip_prefix("e:"))
        {
            if value.is_empty() {
                return Err(Bad::UnknownField(field.into()));
            }
        } else {
            return Err(Bad::UnknownField(field.into()));
        }
    }
    Ok(Parsed {
        kind,
        series: series(name, kind_text, &sorted),
        values: values.len(),
    })
}

/// `|T<unix seconds>` (protocol v1.3): a positive integer, on counts and gauges only.
fn timestamp_field(ts: &str, kind: Kind) -> Result<(), Bad> {
    let why = if !matches!(kind, Kind::Counter | Kind::Gauge) {
        Some("only counts and gauges carry one")
    } else if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        Some("want whole unix seconds")
    } else if ts.parse::<u64>().map_or(true, |t| t == 0) {
        Some("must be positive")
    } else {
        None
    };
    match why {
        Some(why) => Err(Bad::Timestamp {
            value: ts.into(),
            why,
        }),
        None => Ok(()),
    }
}

/// Graphite plaintext: carbon strips the line, splits on whitespace, wants exactly
/// `path value timestamp` and `float()`s the last two. Tagged paths (Graphite 1.1) are
/// `name;k=v;...` with the rules of `tags.rst`.
fn graphite(line: &str) -> Result<Parsed, Bad> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [path, value, ts] = fields[..] else {
        return Err(match fields.len() {
            0 | 1 => Bad::MissingValue,
            2 => Bad::Timestamp {
                value: String::new(),
                why: "missing",
            },
            n => Bad::WhitespaceInPath { fields: n },
        });
    };
    number(value)?;
    match ts.parse::<f64>() {
        // -1 means "now" to carbon.
        Ok(-1.0) => {}
        Ok(t) if !t.is_finite() => return Err(graphite_ts(ts, "not finite")),
        Ok(t) if t < 0.0 => return Err(graphite_ts(ts, "negative")),
        // go-carbon keeps timestamps within [0, 2^32].
        Ok(t) if t > 4_294_967_296.0 => return Err(graphite_ts(ts, "past 2106 (milliseconds?)")),
        Ok(_) => {}
        Err(_) => return Err(graphite_ts(ts, "not a number")),
    }
    let series = match path.split_once(';') {
        None => path.to_owned(),
        Some((name, tag_text)) => {
            if name.is_empty() {
                return Err(Bad::MissingName);
            }
            let mut tags = Vec::new();
            for tag in tag_text.split(';') {
                graphite_tag(tag)?;
                tags.push(tag);
            }
            tags.sort_unstable();
            format!("{name};{}", tags.join(";"))
        }
    };
    Ok(Parsed {
        kind: Kind::Point,
        series,
        values: 1,
    })
}

fn graphite_ts(value: &str, why: &'static str) -> Bad {
    Bad::Timestamp {
        value: value.into(),
        why,
    }
}

/// A Graphite 1.1 tag `key=value`: the key non-empty without `; ! ^ =`, the value non-empty,
/// not starting with `~` (and neither holds `;` or whitespace, already excluded by the split).
fn graphite_tag(tag: &str) -> Result<(), Bad> {
    let bad = |why| {
        Err(Bad::Tag {
            tag: tag.into(),
            why,
        })
    };
    let Some((key, value)) = tag.split_once('=') else {
        return bad("want key=value");
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.contains(['!', '^']) {
        return bad("key holds `!` or `^`");
    }
    if value.is_empty() {
        return bad("empty value");
    }
    if value.starts_with('~') {
        return bad("value starts with `~`");
    }
    Ok(())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
