//! The least a Graphite encoder can do per line over TCP, in plaintext and in pickle, for
//! `benches/pickle`: whether "pickle ≤ plaintext" is out of reach of any design that pickles
//! with serde-pickle, or only of ours.
//!
//! Four loops over the paths ours sent (captured from one plaintext flush), each value 1 (a
//! counter) and one timestamp, run on the bench thread (CPU from its schedstat, the kernel's
//! TCP send included) and cut into payloads as ours cuts plaintext ones over TCP (a pickle
//! frame holds the points of one plaintext payload, as ours does):
//! - `plain`: `path 1 timestamp\n`, the timestamp's digits formatted once, as ours does;
//! - `serde`: the points as `(path, (timestamp, 1.0))` tuples through `serde_pickle::to_writer`,
//!   protocol 2, from a borrowing view (no allocation), as ours writes them;
//! - `own`: the same points in pickle written by hand, `TUPLE2` in place of `MARK … TUPLE`:
//!   what a pickle writer of our own would do;
//! - `compact`: as `own`, with the timestamp memoised and the value a one-byte integer, which a
//!   writer could do for any flush (one timestamp, small counts): 11 bytes a point besides
//!   the path, against the text's 14. (Memoising the whole `(timestamp, value)` pair would
//!   take 8, but only points with equal values share it.)
//!
//! Each loop runs twice a round: sending, and only writing (no send), so the report separates
//! the encoding from the kernel's TCP path, whose cost here grows with the bytes.
//!
//! A design pays the same walk and bookkeeping whichever format it writes. So if `serde`
//! costs more than `plain` here, no design that pickles through serde-pickle meets the target.

use std::io::Write;
use std::net::TcpStream;
use std::ops::Range;

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_pickle::SerOptions;

/// A 10-digit Unix time, below 2^31 (`BININT`), as ours sends.
const TIMESTAMP: u64 = 1_764_806_400;

/// The four loops' input and their connection.
pub(crate) struct Ideal {
    paths: Vec<String>,
    digits: String,
    /// The paths of each payload of at most `limit` plaintext bytes.
    payloads: Vec<Range<usize>>,
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame's points as serde-pickle sees them: a borrowing view, serialised as a list of
/// `(path, (timestamp, value))` tuples without building the list.
struct Frame<'a>(&'a [String]);

impl Serialize for Frame<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&(p.as_str(), (TIMESTAMP, 1.0f64)))?;
        }
        seq.end()
    }
}

/// `paths` as one frame's pickle, through serde-pickle.
fn write_serde(out: &mut Vec<u8>, paths: &[String]) {
    serde_pickle::to_writer(out, &Frame(paths), SerOptions::new().proto_v2()).expect("pickles");
}

/// `paths` as one frame's pickle, written by hand: `PROTO 2`, `EMPTY_LIST`, `MARK`, per point
/// `BINUNICODE` path, `BININT` timestamp, `BINFLOAT` value, `TUPLE2` twice, then `APPENDS`,
/// `STOP` (one `APPENDS` holds any number of points).
fn write_own(out: &mut Vec<u8>, paths: &[String]) {
    let ts = i32::try_from(TIMESTAMP).expect("below 2^31").to_le_bytes();
    out.extend_from_slice(&[0x80, 2, b']', b'(']);
    for p in paths {
        out.push(b'X');
        out.extend_from_slice(&u32::try_from(p.len()).expect("a path").to_le_bytes());
        out.extend_from_slice(p.as_bytes());
        out.push(b'J');
        out.extend_from_slice(&ts);
        out.push(b'G');
        out.extend_from_slice(&1.0f64.to_be_bytes());
        out.extend_from_slice(&[0x86, 0x86]);
    }
    out.extend_from_slice(b"e.");
}

/// `paths` as a compact pickle written by hand: as [`write_own`], but the timestamp is
/// pickled once per frame and recalled from the memo (`BINPUT` / `BINGET`, 2 bytes a point)
/// and the value, an integer below 256, is a `BININT1` (2 bytes; carbon applies `float()` to
/// both fields).
fn write_compact(out: &mut Vec<u8>, paths: &[String]) {
    let ts = i32::try_from(TIMESTAMP).expect("below 2^31").to_le_bytes();
    out.extend_from_slice(&[0x80, 2, b']', b'(']);
    for (i, p) in paths.iter().enumerate() {
        out.push(b'X');
        out.extend_from_slice(&u32::try_from(p.len()).expect("a path").to_le_bytes());
        out.extend_from_slice(p.as_bytes());
        if i == 0 {
            out.push(b'J');
            out.extend_from_slice(&ts);
            out.extend_from_slice(&[b'q', 1]);
        } else {
            out.extend_from_slice(&[b'h', 1]);
        }
        out.extend_from_slice(&[b'K', 1, 0x86, 0x86]);
    }
    out.extend_from_slice(b"e.");
}

/// What an ideal loop writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Plain,
    Serde,
    Own,
    Compact,
}

impl Format {
    pub(crate) const ALL: [Self; 4] = [Self::Plain, Self::Serde, Self::Own, Self::Compact];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "plaintext",
            Self::Serde => "serde-pickle",
            Self::Own => "own pickle",
            Self::Compact => "compact pickle",
        }
    }
}

impl Ideal {
    /// The loops over the paths of `text` (plaintext lines, `path value timestamp`), sending
    /// to `sink` (`tcp://host:port`) in payloads of at most `limit` plaintext bytes.
    pub(crate) fn new(text: &[u8], sink: &str, limit: usize) -> Self {
        let paths: Vec<String> = String::from_utf8_lossy(text)
            .lines()
            .filter_map(|l| Some(l.split(' ').next()?.to_owned()))
            .filter(|p| !p.is_empty())
            .collect();
        let digits = TIMESTAMP.to_string();
        let (mut payloads, mut start, mut used) = (Vec::new(), 0, 0);
        for (i, p) in paths.iter().enumerate() {
            // Over TCP a payload's last newline counts against the limit.
            let line = p.len() + 3 + digits.len() + 1;
            if used + line > limit {
                payloads.push(start..i);
                (start, used) = (i, 0);
            }
            used += line;
        }
        payloads.push(start..paths.len());
        let stream = TcpStream::connect(sink.trim_start_matches("tcp://")).expect("connect");
        Self {
            paths,
            digits,
            payloads,
            stream,
            buf: Vec::with_capacity(2 * limit + 1024),
        }
    }

    /// Lines (points) each loop sends.
    pub(crate) fn lines(&self) -> usize {
        self.paths.len()
    }

    /// Writes every payload in `format` (pickle after a 4-byte length) and sends it, or with
    /// `send` false only writes it; returns the bytes written.
    pub(crate) fn run(&mut self, format: Format, send: bool) -> usize {
        let mut written = 0;
        for range in self.payloads.clone() {
            let paths = &self.paths[range];
            if format == Format::Plain {
                for p in paths {
                    self.buf.extend_from_slice(p.as_bytes());
                    self.buf.extend_from_slice(b" 1 ");
                    self.buf.extend_from_slice(self.digits.as_bytes());
                    self.buf.push(b'\n');
                }
            } else {
                self.buf.extend_from_slice(&[0; 4]);
                match format {
                    Format::Serde => write_serde(&mut self.buf, paths),
                    Format::Own => write_own(&mut self.buf, paths),
                    _ => write_compact(&mut self.buf, paths),
                }
                let len = u32::try_from(self.buf.len() - 4).expect("a frame");
                self.buf[..4].copy_from_slice(&len.to_be_bytes());
            }
            if send {
                self.stream.write_all(&self.buf).expect("send");
            } else {
                std::hint::black_box(&self.buf);
            }
            written += self.buf.len();
            self.buf.clear();
        }
        written
    }

    /// Whether each hand-written pickle of the first payload reads back as serde-pickle's, as
    /// carbon reads it (`float()` of both fields).
    pub(crate) fn hand_written_reads_as_serde(&self) -> bool {
        let first = &self.paths[self.payloads[0].clone()];
        let read = |write: fn(&mut Vec<u8>, &[String])| {
            let mut bytes = Vec::new();
            write(&mut bytes, first);
            let value = serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new())
                .expect("reads");
            as_carbon(&value)
        };
        let serde = read(write_serde);
        serde.len() == first.len() && read(write_own) == serde && read(write_compact) == serde
    }
}

/// A pickled list of `(path, (timestamp, value))` as carbon takes it: numbers as `float`.
fn as_carbon(value: &serde_pickle::Value) -> Vec<(String, f64, f64)> {
    use serde_pickle::Value;
    let number = |v: &Value| match v {
        Value::I64(i) => Some(*i as f64),
        Value::F64(f) => Some(*f),
        _ => None,
    };
    let Value::List(points) = value else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|p| match p {
            Value::Tuple(pair) => match pair.as_slice() {
                [Value::String(path), Value::Tuple(tv)] => match tv.as_slice() {
                    [t, v] => Some((path.clone(), number(t)?, number(v)?)),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .collect()
}
