//! One StatsD or DogStatsD metric line from explicit parts: the public, pure line encoder
//! ([`MetricLine`]), and the writer the [`StatsdClient`](crate::StatsdClient) shares with it.
//!
//! It checks and refuses; it never fixes: a part that would break the line, move a field or
//! change the metric's type is an [`EncodeError`], and `out` is left as it was. (The client
//! sanitises names and tags before they get here, as the recorder does.) No I/O, no clock.

use super::cardinality::Cardinality;
use super::number::{is_sendable, wire_rate, write_f64, write_rate, write_u64};
use crate::error::EncodeError;

/// Which StatsD wire a line is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// Plain (Etsy) StatsD: no distributions, timestamps or DogStatsD fields; a negative
    /// absolute gauge is sent as the pair `name:0|g` + `name:-5|g`; tags, when given, as
    /// DogStatsD-style `|#k:v` (which Etsy statsd 0.9 reads as carbon tags).
    Statsd,
    /// DogStatsD, as the Datadog Agent reads it.
    DogStatsd,
}

/// A StatsD metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricType {
    /// `|c`.
    Counter,
    /// `|g`.
    Gauge,
    /// `|ms`, in milliseconds; never negative (Etsy statsd rejects negative timers).
    Timer,
    /// `|h`.
    Histogram,
    /// `|d`, DogStatsD only (Etsy statsd reads `|d` as a counter).
    Distribution,
    /// `|s`: counts distinct members.
    Set,
}

impl MetricType {
    fn suffix(self) -> &'static [u8] {
        match self {
            Self::Counter => b"|c",
            Self::Gauge => b"|g",
            Self::Timer => b"|ms",
            Self::Histogram => b"|h",
            Self::Distribution => b"|d",
            Self::Set => b"|s",
        }
    }
}

/// A metric's value.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MetricValue<'a> {
    /// An integer.
    Integer(i64),
    /// A finite float, in its shortest exact form (`12.5`, `5`).
    Float(f64),
    /// An Etsy gauge delta, always signed (`+3`, `-5`, `+0`): plain StatsD gauges only.
    GaugeDelta(f64),
    /// Text sent as it is: a set member, or for the other types a number as you formatted it
    /// (it must parse as a finite number; a sign on an Etsy gauge makes it a delta).
    Text(&'a str),
}

/// One metric line, borrowed, written by [`encode`](Self::encode):
/// `name:value|type[|@rate][|#tags][|c:id][|e:data][|card:level][|T<secs>]` and a newline.
///
/// ```
/// use metrics_exporter_statsd_graphite::{Cardinality, Dialect, MetricLine, MetricType, MetricValue};
///
/// let mut out = Vec::new();
/// MetricLine::new("jobs", MetricValue::Integer(-3), MetricType::Counter)
///     .sample_rate(0.25)
///     .tags(&[("queue", "mail"), ("urgent", "")])
///     .cardinality(Cardinality::Low)
///     .encode(Dialect::DogStatsd, &mut out)?;
/// assert_eq!(out, b"jobs:-3|c|@0.25|#queue:mail,urgent|card:low\n");
///
/// // Plain StatsD: a negative gauge is reset to 0 first, in the same call.
/// out.clear();
/// MetricLine::new("temp", MetricValue::Float(-2.5), MetricType::Gauge)
///     .encode(Dialect::Statsd, &mut out)?;
/// assert_eq!(out, b"temp:0|g\ntemp:-2.5|g\n");
///
/// // What would break the line is refused, not repaired.
/// let bad = MetricLine::new("a|b", MetricValue::Integer(1), MetricType::Counter);
/// assert!(bad.encode(Dialect::Statsd, &mut out).is_err());
/// # Ok::<(), metrics_exporter_statsd_graphite::EncodeError>(())
/// ```
///
/// Checks, each an [`EncodeError`]:
/// - the name is not empty and holds no `:`, `|` or control character (DogStatsD: nor starts
///   with `_e{` or `_sc`, which the Agent reads as an event or a service check);
/// - numbers are finite; a timer is not negative; text is not empty and holds no `:`, `|` or
///   control character, and for a type other than a set parses as a finite number;
/// - a tag key is not empty and holds no `:`, a value does not end with one; keys and values
///   hold no `,`, `|` or control character (an empty value is the bare tag `key`);
/// - the sample rate, rounded to 9 decimal places, is in (0, 1]; below 1 it is written so,
///   in plain decimals, as the recorder writes rates (`@0.000000001` at the smallest);
/// - DogStatsD only: `Distribution`, the container id, external data, cardinality and the
///   timestamp; the timestamp only on counters and gauges, positive and at most `i64::MAX` (the Agent
///   reads it as an `i64`); the
///   container id and external data not empty, without `|` or control characters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricLine<'a> {
    name: &'a str,
    value: MetricValue<'a>,
    kind: MetricType,
    rate: f64,
    tags: &'a [(&'a str, &'a str)],
    container_id: Option<&'a str>,
    external_data: Option<&'a str>,
    cardinality: Option<Cardinality>,
    timestamp: Option<u64>,
}

impl<'a> MetricLine<'a> {
    /// A line with no rate (1), tags or DogStatsD fields.
    pub const fn new(name: &'a str, value: MetricValue<'a>, kind: MetricType) -> Self {
        Self {
            name,
            value,
            kind,
            rate: 1.0,
            tags: &[],
            container_id: None,
            external_data: None,
            cardinality: None,
            timestamp: None,
        }
    }

    /// `|@rate`: the fraction of events this one stands for (the receiver scales counts by
    /// its inverse). It does no sampling itself.
    #[must_use]
    pub const fn sample_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// `|#k:v,...`, in the order given.
    #[must_use]
    pub const fn tags(mut self, tags: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = tags;
        self
    }

    /// `|c:<id>`.
    #[must_use]
    pub const fn container_id(mut self, id: &'a str) -> Self {
        self.container_id = Some(id);
        self
    }

    /// `|e:<data>`.
    #[must_use]
    pub const fn external_data(mut self, data: &'a str) -> Self {
        self.external_data = Some(data);
        self
    }

    /// `|card:<level>`.
    #[must_use]
    pub const fn cardinality(mut self, level: Cardinality) -> Self {
        self.cardinality = Some(level);
        self
    }

    /// `|T<unix seconds>` (counters and gauges).
    #[must_use]
    pub const fn timestamp(mut self, unix_secs: u64) -> Self {
        self.timestamp = Some(unix_secs);
        self
    }

    /// Appends the line (two for a plain-StatsD negative gauge), each ending with a newline.
    ///
    /// # Errors
    /// What the type docs list; `out` is then unchanged.
    pub fn encode(&self, dialect: Dialect, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        check_name(dialect, self.name)?;
        for (k, v) in self.tags {
            // A value ending in `:` is what the Agent's tag rules forbid (see `sanitize`).
            if k.is_empty()
                || k.contains(':')
                || v.ends_with(':')
                || !tag_text_ok(k)
                || !tag_text_ok(v)
            {
                return Err(EncodeError::InvalidTag);
            }
        }
        let fields = [
            (self.container_id, "a container id"),
            (self.external_data, "external data"),
        ];
        for (field, what) in fields {
            match field {
                Some(_) if dialect == Dialect::Statsd => {
                    return Err(EncodeError::Unsupported { what });
                }
                Some(text) if !field_ok(text) => return Err(EncodeError::InvalidField),
                _ => {}
            }
        }
        if self.cardinality.is_some() && dialect == Dialect::Statsd {
            return Err(EncodeError::Unsupported {
                what: "tag cardinality",
            });
        }
        let mut tail = Vec::new();
        for (i, (k, v)) in self.tags.iter().enumerate() {
            tail.extend_from_slice(if i == 0 { b"|#" } else { b"," });
            tail.extend_from_slice(k.as_bytes());
            if !v.is_empty() {
                tail.push(b':');
                tail.extend_from_slice(v.as_bytes());
            }
        }
        for (prefix, field) in [(b"|c:", self.container_id), (b"|e:", self.external_data)] {
            if let Some(text) = field {
                tail.extend_from_slice(prefix);
                tail.extend_from_slice(text.as_bytes());
            }
        }
        let parts = Parts {
            dialect,
            name: self.name.as_bytes(),
            kind: self.kind,
            rate: wire_rate(self.rate),
            tail: &tail,
            cardinality: self.cardinality,
            timestamp: self.timestamp,
        };
        parts.write(self.value, out).map(|_| ())
    }
}

/// Whether `name` can be a metric name on `dialect`'s wire unchanged.
pub(crate) fn check_name(dialect: Dialect, name: &str) -> Result<(), EncodeError> {
    let breaks = |c: char| c == ':' || c == '|' || c.is_control();
    if name.is_empty()
        || name.contains(breaks)
        || (dialect == Dialect::DogStatsd && (name.starts_with("_e{") || name.starts_with("_sc")))
    {
        return Err(EncodeError::InvalidName);
    }
    Ok(())
}

fn tag_text_ok(text: &str) -> bool {
    !text.contains(|c: char| c == ',' || c == '|' || c.is_control())
}

fn field_ok(text: &str) -> bool {
    !text.is_empty() && !text.contains(|c: char| c == '|' || c.is_control())
}

/// A line's parts once its name and tags are wire-ready (checked by [`MetricLine::encode`],
/// or sanitised by the client's render): everything but the value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) dialect: Dialect,
    pub(crate) name: &'a [u8],
    pub(crate) kind: MetricType,
    pub(crate) rate: f64,
    /// `|#tags|c:..|e:..`, already rendered (may be empty).
    pub(crate) tail: &'a [u8],
    pub(crate) cardinality: Option<Cardinality>,
    pub(crate) timestamp: Option<u64>,
}

impl Parts<'_> {
    /// Checks the value, the type and the per-line fields, then appends the line; returns
    /// how many lines were written (2 for the Etsy negative-gauge pair). On an error nothing
    /// is appended.
    pub(crate) fn write(
        &self,
        value: MetricValue<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, EncodeError> {
        self.check(value)?;
        let negative = match value {
            MetricValue::Integer(v) => v < 0,
            MetricValue::Float(v) => v < 0.0,
            MetricValue::GaugeDelta(_) | MetricValue::Text(_) => false,
        };
        let negative_gauge =
            negative && self.dialect == Dialect::Statsd && self.kind == MetricType::Gauge;
        let mut lines = 1;
        if negative_gauge {
            // Etsy reads a signed value as a delta: reset to 0 first, in the same chunk.
            self.write_line(out, |out| out.push(b'0'));
            lines = 2;
        }
        self.write_line(out, |out| match value {
            MetricValue::Integer(v) => {
                let mut buf = itoa::Buffer::new();
                out.extend_from_slice(buf.format(v).as_bytes());
            }
            MetricValue::Float(v) => write_f64(out, v),
            MetricValue::GaugeDelta(v) => {
                if v >= 0.0 {
                    out.push(b'+');
                }
                write_f64(out, v);
            }
            MetricValue::Text(text) => out.extend_from_slice(text.as_bytes()),
        });
        Ok(lines)
    }

    fn write_line(&self, out: &mut Vec<u8>, value: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(self.name);
        out.push(b':');
        value(out);
        out.extend_from_slice(self.kind.suffix());
        if self.rate < 1.0 {
            out.extend_from_slice(b"|@");
            write_rate(out, self.rate);
        }
        out.extend_from_slice(self.tail);
        if let Some(card) = self.cardinality {
            out.extend_from_slice(b"|card:");
            out.extend_from_slice(card.as_str().as_bytes());
        }
        if let Some(ts) = self.timestamp {
            out.extend_from_slice(b"|T");
            write_u64(out, ts);
        }
        out.push(b'\n');
    }

    pub(crate) fn check(&self, value: MetricValue<'_>) -> Result<(), EncodeError> {
        let dogstatsd = self.dialect == Dialect::DogStatsd;
        if !(self.rate > 0.0 && self.rate <= 1.0) {
            return Err(EncodeError::InvalidSampleRate);
        }
        if self.kind == MetricType::Distribution && !dogstatsd {
            return Err(EncodeError::Unsupported {
                what: "distributions (Etsy statsd reads `|d` as a counter)",
            });
        }
        if let Some(ts) = self.timestamp {
            if !dogstatsd {
                return Err(EncodeError::Unsupported {
                    what: "timestamps (plain StatsD stamps values on arrival)",
                });
            }
            if !matches!(self.kind, MetricType::Counter | MetricType::Gauge) {
                return Err(EncodeError::Unsupported {
                    what: "timestamps on types other than counters and gauges",
                });
            }
            // The Agent reads `|T` as an i64 and drops the line when that fails.
            if ts == 0 || i64::try_from(ts).is_err() {
                return Err(EncodeError::InvalidTimestamp);
            }
        }
        let number = match value {
            MetricValue::Integer(v) => {
                #[allow(clippy::cast_precision_loss, reason = "only the sign is looked at")]
                let v = v as f64;
                v
            }
            MetricValue::Float(v) => v,
            MetricValue::GaugeDelta(v) => {
                if dogstatsd || self.kind != MetricType::Gauge {
                    return Err(EncodeError::Unsupported {
                        what: "gauge deltas (plain StatsD gauges only; the Agent has none)",
                    });
                }
                v
            }
            MetricValue::Text(text) => {
                if text.is_empty()
                    || text.contains(|c: char| c == ':' || c == '|' || c.is_control())
                {
                    return Err(EncodeError::InvalidValue);
                }
                if self.kind == MetricType::Set {
                    return Ok(());
                }
                text.parse::<f64>().map_err(|_| EncodeError::InvalidValue)?
            }
        };
        if !is_sendable(number) || (self.kind == MetricType::Timer && number < 0.0) {
            return Err(EncodeError::InvalidValue);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "line_tests.rs"]
mod tests;
