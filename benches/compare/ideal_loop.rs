//! The ideal flusher's loops and layouts, for `ideal` (see there): the least a flusher that
//! writes StatsD counter lines can do per series.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};

use crate::capture::capture;
use crate::contenders::HOUR;
use crate::floor::DATAGRAM;
use crate::flush::{bump, labelled_counters};

/// What the ideal loop fills before it drops the bytes: the part our flusher sends at once.
const PART: usize = 128 << 10;

/// One series' line as ours sent it: the name, and what follows `|c`.
pub(crate) type Line = (Vec<u8>, Vec<u8>);

/// A series of the scattered layout: its own cell, and its name and tail in one allocation
/// of their own (as ours keeps them).
pub(crate) struct Scattered {
    pub(crate) cell: Arc<AtomicU64>,
    pub(crate) parts: Box<[u8]>,
    pub(crate) name_len: usize,
}

/// The slab layout: the cells in one array, every name and tail back to back in another, in
/// walk order.
pub(crate) struct Slab {
    pub(crate) cells: Vec<AtomicU64>,
    pub(crate) bytes: Vec<u8>,
    /// Per series: where its name ends and where its tail ends in `bytes`.
    pub(crate) ends: Vec<(usize, usize)>,
}

/// The ideal loop's output: one part of lines, and where each datagram in it starts.
pub(crate) struct Out {
    buf: Vec<u8>,
    starts: Vec<usize>,
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

impl Out {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(PART + 64 * 1024),
            starts: Vec::with_capacity(PART / 64),
            lines: 0,
            bytes: 0,
        }
    }

    /// Hands the part over (to nothing) and starts the next.
    pub(crate) fn send_part(&mut self) {
        black_box((&self.buf, &self.starts));
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        self.starts.clear();
    }
}

/// The ideal active flush: every cell swapped, every non-zero one written as a StatsD line.
pub(crate) fn ideal_active<'a>(
    cells: impl Iterator<Item = (&'a AtomicU64, &'a [u8], &'a [u8])>,
    out: &mut Out,
) {
    let mut datagram = 0;
    for (cell, name, tail) in cells {
        let value = cell.swap(0, Ordering::Relaxed);
        if value == 0 {
            continue;
        }
        let start = out.buf.len();
        out.buf.extend_from_slice(name);
        out.buf.push(b':');
        out.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.buf.extend_from_slice(b"|c");
        out.buf.extend_from_slice(tail);
        out.buf.push(b'\n');
        out.lines += 1;
        // A datagram is whole lines, at most DATAGRAM bytes without its last newline.
        if out.buf.len() - datagram > DATAGRAM + 1 {
            out.starts.push(start);
            datagram = start;
        }
        if out.buf.len() >= PART {
            out.send_part();
            datagram = 0;
        }
    }
    out.send_part();
}

/// The ideal idle flush: a load per cell, a swap only where something was counted.
pub(crate) fn ideal_idle<'a>(cells: impl Iterator<Item = &'a AtomicU64>) -> u64 {
    let mut taken = 0;
    for cell in cells {
        if cell.load(Ordering::Relaxed) != 0 {
            taken += cell.swap(0, Ordering::Relaxed);
        }
    }
    black_box(taken)
}

/// The lines ours sent for `labelled_counters(n)`, each counted once, as StatsD over TCP,
/// and the exporter that sent them.
pub(crate) struct Captured {
    pub(crate) lines: Vec<Line>,
    /// Kept until the measurement ends: freed, its million small chunks would be where the
    /// measured cells are allocated next, spread at random over its memory.
    _exporter: (ExporterGuard, ExporterRecorder, Vec<Counter>),
}

pub(crate) fn lines_ours_sends(n: usize) -> Captured {
    let (addr, reader) = capture(n);
    let (recorder, exporter) = ExporterBuilder::statsd(addr)
        .with_flush_interval(HOUR)
        .with_max_series(n)
        .with_max_series_per_metric(n)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let counters = labelled_counters(&recorder, n);
    bump(&counters);
    guard.handle().flush().expect("flush");
    let text = reader.join().expect("the reader");
    Captured {
        lines: lines_of(&text),
        _exporter: (guard, recorder, counters),
    }
}

/// The constant parts of each StatsD counter line in `payloads` (`name:value|c<tail>`).
fn lines_of(payloads: &[u8]) -> Vec<Line> {
    payloads
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let colon = l.iter().position(|&b| b == b':').expect("a StatsD line");
            let rest = &l[colon..];
            let bar = rest.windows(2).position(|w| w == b"|c").expect("a counter");
            (l[..colon].to_vec(), rest[bar + 2..].to_vec())
        })
        .collect()
}

pub(crate) fn bump_cell(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

/// The slab layout of `lines`.
pub(crate) fn slab(lines: &[Line]) -> Slab {
    let mut bytes = Vec::with_capacity(lines.iter().map(|(n, t)| n.len() + t.len()).sum());
    let ends = lines
        .iter()
        .map(|(name, tail)| {
            bytes.extend_from_slice(name);
            let name_end = bytes.len();
            bytes.extend_from_slice(tail);
            (name_end, bytes.len())
        })
        .collect();
    Slab {
        cells: lines.iter().map(|_| AtomicU64::new(0)).collect(),
        bytes,
        ends,
    }
}
