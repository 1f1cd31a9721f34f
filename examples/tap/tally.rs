//! The tap's shared state: what has been received, per interval and in total, and where each
//! line is printed. Every receive thread feeds the same [`Tap`]; one lock keeps the printed
//! lines and the counts in step.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use crate::frame::FrameError;
use crate::parse::{Bad, Dialect, Kind, parse_line};

/// Counts over some span of time.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
    pub(crate) bad: u64,
    pub(crate) series: HashSet<String>,
    pub(crate) kinds: BTreeMap<Kind, u64>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines, {} bytes, {} bad, {} series",
            self.lines,
            self.bytes,
            self.bad,
            self.series.len()
        )?;
        let mut sep = " |";
        for (kind, n) in &self.kinds {
            write!(f, "{sep} {kind} {n}")?;
            sep = ",";
        }
        Ok(())
    }
}

/// How much of each line to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    /// Every line, good or bad.
    All,
    /// Only the bad lines (and the summaries).
    Bad,
}

struct Inner {
    interval: Tally,
    total: Tally,
    out: Box<dyn Write + Send>,
}

/// What the receive threads share.
#[derive(Debug)]
pub(crate) struct Tap {
    dialect: Dialect,
    echo: Echo,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("interval", &self.interval)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Tap {
    pub(crate) fn new(dialect: Dialect, echo: Echo, out: Box<dyn Write + Send>) -> Self {
        Self {
            dialect,
            echo,
            inner: Mutex::new(Inner {
                interval: Tally::default(),
                total: Tally::default(),
                out,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while printing leaves the counts consistent enough to keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes as read from the socket, framing included.
    pub(crate) fn bytes(&self, n: usize) {
        let mut inner = self.lock();
        inner.interval.bytes += n as u64;
        inner.total.bytes += n as u64;
    }

    /// A datagram or a length-prefixed payload: `\n`-separated lines, the last `\n` optional.
    pub(crate) fn payload(&self, payload: &[u8]) {
        let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
        for line in payload.split(|&b| b == b'\n') {
            self.line(line);
        }
    }

    /// One line, without its `\n`. Empty lines are skipped, as every receiver does.
    pub(crate) fn line(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let parsed = parse_line(self.dialect, line);
        let mut inner = self.lock();
        let Inner {
            interval,
            total,
            out,
        } = &mut *inner;
        for tally in [&mut *interval, &mut *total] {
            tally.lines += 1;
            match &parsed {
                Ok(p) => {
                    *tally.kinds.entry(p.kind).or_default() += 1;
                    if !tally.series.contains(&p.series) {
                        tally.series.insert(p.series.clone());
                    }
                }
                Err(_) => tally.bad += 1,
            }
        }
        let text = String::from_utf8_lossy(line);
        // Output errors (a closed pipe) must not stop the receiver.
        let _ = match (&parsed, self.echo) {
            (Ok(_), Echo::All) => writeln!(out, "ok   {text}"),
            (Ok(_), Echo::Bad) => Ok(()),
            (Err(bad), _) => writeln!(out, "BAD  {text}\n     ^ {bad}"),
        };
    }

    /// Something that is not a line: a frame that cannot be read, a truncated tail.
    pub(crate) fn flag(&self, what: &[u8], bad: &Bad) {
        let mut inner = self.lock();
        inner.interval.bad += 1;
        inner.total.bad += 1;
        let text = String::from_utf8_lossy(what);
        let _ = writeln!(inner.out, "BAD  {text}\n     ^ {bad}");
    }

    /// A framing error on a length-prefixed stream.
    pub(crate) fn frame_error(&self, error: &FrameError) {
        self.flag(b"<frame>", &Bad::Frame(error.to_string()));
    }

    /// Prints `heading: <interval counts>` and starts a new interval.
    pub(crate) fn summary(&self, heading: &str) {
        let mut inner = self.lock();
        let interval = std::mem::take(&mut inner.interval);
        let _ = writeln!(inner.out, "-- {heading}: {interval}");
        let _ = inner.out.flush();
    }

    /// Prints `heading: <total counts>`.
    pub(crate) fn total_summary(&self, heading: &str) {
        let total = self.total();
        let mut inner = self.lock();
        let _ = writeln!(inner.out, "== {heading}: {total}");
        let _ = inner.out.flush();
    }

    /// A copy of the totals so far.
    pub(crate) fn total(&self) -> Tally {
        self.lock().total.clone()
    }
}
