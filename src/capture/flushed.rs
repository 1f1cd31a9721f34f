//! [`Flushed`]: the payloads one captured flush sent, and their lines decoded.

use serde_pickle::{DeOptions, Value};

use crate::config::Config;
use crate::encode::{Framing, write_f64};

/// How the captured payloads are framed, to take the lines back out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// A datagram: lines separated by `\n`, none after the last.
    Datagram,
    /// A byte stream: every line ends with `\n`.
    Stream,
    /// Frames of a 4-byte little-endian length and lines without the final newline.
    LengthPrefixed,
    /// Carbon pickle frames: a 4-byte big-endian length and a pickled list of points.
    Pickle,
}

impl Wire {
    /// The framing `config`'s socket uses (`pickle`: Graphite pickle frames).
    pub(crate) fn of(config: &Config, pickle: bool) -> Self {
        match config.framing {
            _ if pickle => Self::Pickle,
            Framing::Datagram => Self::Datagram,
            Framing::Stream => Self::Stream,
            Framing::LengthPrefixed => Self::LengthPrefixed,
        }
    }
}

/// What one captured flush sent: each payload's bytes, exactly as the configured socket
/// would have put them on the wire, and the metric lines in them.
///
/// [`lines`](Self::lines) undoes the framing: a datagram's lines, a stream's lines without
/// their newlines, a length-prefixed frame's lines, and a Graphite pickle frame's points as
/// plaintext `path value timestamp` lines (the value written as the plaintext encoder writes
/// it, so the same points give the same lines in both Graphite formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    payloads: Vec<Vec<u8>>,
    lines: Vec<String>,
}

impl Flushed {
    pub(crate) fn new(payloads: Vec<Vec<u8>>, wire: Wire) -> Self {
        let mut lines = Vec::new();
        for payload in &payloads {
            decode(payload, wire, &mut lines);
        }
        Self { payloads, lines }
    }

    /// Each payload, in the order it was sent: one datagram, one write to the stream, or (for
    /// Graphite pickle) the frames of one payload.
    pub fn payloads(&self) -> &[Vec<u8>] {
        &self.payloads
    }

    /// Every metric line, in the order sent, without framing or newline.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Whether nothing was sent.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }
}

/// Appends the lines of one payload.
fn decode(payload: &[u8], wire: Wire, out: &mut Vec<String>) {
    match wire {
        Wire::Datagram | Wire::Stream => split(payload, out),
        Wire::LengthPrefixed | Wire::Pickle => {
            let mut rest = payload;
            while let Some((header, after)) = rest.split_first_chunk::<4>() {
                let len = if wire == Wire::Pickle {
                    u32::from_be_bytes(*header)
                } else {
                    u32::from_le_bytes(*header)
                };
                let len = usize::try_from(len).unwrap_or(usize::MAX).min(after.len());
                let (frame, next) = after.split_at(len);
                if wire == Wire::Pickle {
                    unpickle(frame, out);
                } else {
                    split(frame, out);
                }
                rest = next;
            }
        }
    }
}

/// The lines of newline-separated text, an empty last one (after the final newline) left out.
fn split(bytes: &[u8], out: &mut Vec<String>) {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return;
    }
    out.extend(
        bytes
            .split(|&b| b == b'\n')
            .map(|line| String::from_utf8_lossy(line).into_owned()),
    );
}

/// The points of one pickle frame as plaintext lines. A frame that is not the list of
/// `(path, (timestamp, value))` tuples we write gives a line saying so, never nothing.
fn unpickle(frame: &[u8], out: &mut Vec<String>) {
    let Ok(Value::List(points)) = serde_pickle::value_from_slice(frame, DeOptions::new()) else {
        out.push("<not a pickle list of points>".to_owned());
        return;
    };
    for point in points {
        match point_line(&point) {
            Some(line) => out.push(line),
            None => out.push(format!(
                "<not a (path, (timestamp, value)) point: {point:?}>"
            )),
        }
    }
}

fn point_line(point: &Value) -> Option<String> {
    let Value::Tuple(outer) = point else {
        return None;
    };
    let [Value::String(path), Value::Tuple(inner)] = outer.as_slice() else {
        return None;
    };
    let [timestamp, value] = inner.as_slice() else {
        return None;
    };
    let timestamp = match timestamp {
        Value::I64(t) => *t,
        _ => return None,
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "an integer value would come from another writer; shown as the float it reads as"
    )]
    let value = match value {
        Value::F64(v) if v.is_finite() => *v,
        Value::I64(v) => *v as f64,
        _ => return None,
    };
    let mut line = path.clone().into_bytes();
    line.push(b' ');
    write_f64(&mut line, value);
    line.push(b' ');
    line.extend_from_slice(timestamp.to_string().as_bytes());
    Some(String::from_utf8_lossy(&line).into_owned())
}
