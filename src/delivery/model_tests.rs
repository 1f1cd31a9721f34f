//! The model-based test of delivery: random sequences of records, flushes and receiver faults,
//! against every transport and protocol, driving a [`Flusher`] and its [`Transport`] step by
//! step (no background task), and checking after every step that each recorded amount is
//! accounted for: received, counted as dropped, counted as possibly lost, or still waiting
//! (in the cells or the backlog).
//!
//! The [`Ledger`](super::Ledger) tells which lines each counter stands for; its line counts
//! must equal the counters. Amounts: a counter's is the sum of its increments, a histogram's
//! its number of samples (one per Etsy line, several per packed DogStatsD line, Graphite's
//! `.count`). Gauges are last-value: a received value must be one that was set.
//!
//! `mc0.` and `mh0.` render exactly like `mc0` and `mh0` (empty segments vanish), so their
//! amounts count as those series': the flusher must merge them into one line, and the
//! accounting holds for the merged lines too.
//!
//! In flight: the lines a transport accepted without a verdict yet are not held against the
//! exporter at an intermediate step, and while the receiver stalls, what sits in kernel
//! buffers cannot be seen, so only the lower bound (nothing received twice or invented) is
//! checked then. The end of every case is exact: the receiver is healthy, the exporter
//! catches up and shuts down, and every amount is received or counted.
//!
//! Network endpoints name the receiver `receiver.invalid`, which a scripted resolver (no DNS)
//! answers with the receiver's loopback address, except while DNS is down: then a name that
//! never resolved leaves the destination unreachable (DNS not ready when the process starts),
//! and one that resolved before keeps its addresses.
//!
//! Left out, because nothing can count it: a UDP receiver that stalls (its kernel drops
//! datagrams silently), and a stream receiver killed while stalled (the exporter took the
//! connection's being open at a flush as delivery, but the bytes were still unread). What the
//! exporter's *own* reset destroys is counted: giving a stalled connection up discards our
//! send queue, so the lines that may still have been in it are counted as possibly lost (this
//! test found that gap: confirmed lines, unread and then discarded, counted nowhere).

#![allow(clippy::unwrap_used, clippy::panic, reason = "a test")]

#[path = "../../tests/support/faulty.rs"]
mod faulty;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use faulty::{Connection, DatagramReceiver, StreamReceiver};

use crate::ExporterBuilder;
use crate::aggregate::{CounterCell, HistogramCell};
use crate::flush::{Flusher, Trigger, WallClock};
use crate::stats::StatsCells;
use crate::transport::{Resolver, SEND_BUFFER_FOR_TESTS, Script, Step, Transport};

/// Three counters, a gauge and two histograms: the amounts are per series, in this order.
const SERIES: [&str; 6] = ["mc0", "mc1", "mc2", "mg", "mh0", "mh1"];
const GAUGE: usize = 3;
const FIRST_HISTOGRAM: usize = 4;
/// The `Op::Count` series that records into `mc0.` (and `FIRST_HISTOGRAM + 2` into `mh0.`),
/// whose amounts are `mc0`'s (and `mh0`'s).
const ALIAS: usize = 3;
const MAX_BACKLOG: usize = 2048;
const FLUSH_INTERVAL: u64 = 10;
/// Graphite: every flush stamps its own slot, so no two flushes merge (see `Op::Flush`).
const BASE_SECS: u64 = 1_700_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Udp,
    Tcp,
    Unixgram,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Statsd,
    Dogstatsd,
    Graphite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Count {
        series: usize,
        amount: u64,
    },
    Gauge,
    Samples {
        series: usize,
        n: u32,
        value: u32,
    },
    Flush,
    Stall,
    Resume,
    /// Streams: stop listening (open connections stay); datagrams: the socket goes away.
    Refuse,
    /// Streams: FIN to every connection, then drain; datagrams: the socket goes away.
    CloseGracefully,
    /// Streams: `kill -9` (RST, unread bytes discarded); datagrams: the socket goes away.
    Reset,
    /// Comes back on the same port or path (a Unix socket with a new inode).
    Reopen,
    /// The receiver's name stops resolving (before the first flush: it never resolved yet).
    DnsDown,
    /// The receiver's name resolves again.
    DnsUp,
}

/// The answer for `receiver.invalid` while DNS is up.
fn loopback() -> Step {
    Step::Resolve(vec![std::net::Ipv4Addr::LOCALHOST.into()])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // `series` ALIAS is `mc0.`, which renders as `mc0`.
        4 => (0..=ALIAS, 1..=9u64).prop_map(|(series, amount)| Op::Count { series, amount }),
        1 => Just(Op::Gauge),
        // `FIRST_HISTOGRAM + 2` is `mh0.`, which renders as `mh0`.
        3 => (0..3usize, prop_oneof![1..=5u32, 50..=300u32, 600..=1200u32], 1..=99u32)
            .prop_map(|(s, n, value)| Op::Samples { series: FIRST_HISTOGRAM + s, n, value }),
        5 => Just(Op::Flush),
        2 => Just(Op::Stall),
        1 => Just(Op::Resume),
        1 => Just(Op::Refuse),
        1 => Just(Op::CloseGracefully),
        1 => Just(Op::Reset),
        2 => Just(Op::Reopen),
        1 => Just(Op::DnsDown),
        1 => Just(Op::DnsUp),
    ]
}

/// The receiver and what the model knows of its state.
struct Receiver {
    socket: Socket,
    listening: bool,
    stalled: bool,
}

enum Socket {
    Stream {
        r: StreamReceiver,
        length_prefixed: bool,
    },
    Datagram {
        r: DatagramReceiver,
        udp: bool,
    },
}

impl Receiver {
    /// Applies a fault if it makes sense now (else nothing): returns whether it did.
    fn apply(&mut self, op: &Op) -> bool {
        match (&self.socket, op) {
            (_, Op::Stall) if self.listening && !self.stalled => match &self.socket {
                Socket::Datagram { udp: true, .. } => return false,
                Socket::Stream { r, .. } => r.stall(),
                Socket::Datagram { r, .. } => r.stall(),
            },
            (Socket::Stream { r, .. }, Op::Resume) if self.stalled => r.resume(),
            (Socket::Datagram { r, .. }, Op::Resume) if self.stalled => r.resume(),
            (Socket::Stream { r, .. }, Op::Refuse) if self.listening => {
                r.refuse();
                self.listening = false;
            }
            (Socket::Stream { r, .. }, Op::CloseGracefully) if self.listening => {
                r.close_gracefully();
                self.listening = false;
            }
            (Socket::Stream { r, .. }, Op::Reset) if !self.stalled => {
                r.reset();
                self.listening = false;
            }
            (Socket::Datagram { r, .. }, Op::Refuse | Op::CloseGracefully | Op::Reset)
                if self.listening =>
            {
                // Reads what is queued first (so it is not stalled any more).
                r.close();
                self.listening = false;
                self.stalled = false;
                return true;
            }
            (Socket::Stream { r, .. }, Op::Reopen) if !self.listening => {
                r.reopen();
                self.listening = true;
                self.stalled = false;
                return true;
            }
            (Socket::Datagram { r, .. }, Op::Reopen) if !self.listening => {
                r.reopen();
                self.listening = true;
                self.stalled = false;
                return true;
            }
            _ => return false,
        }
        match op {
            Op::Stall => self.stalled = true,
            Op::Resume => self.stalled = false,
            _ => {}
        }
        true
    }

    fn endpoint(&self) -> String {
        match &self.socket {
            Socket::Stream { r, .. } => r.endpoint(),
            Socket::Datagram { r, .. } => r.endpoint(),
        }
    }

    /// Every complete line received so far.
    fn lines(&self) -> Vec<String> {
        match &self.socket {
            Socket::Stream {
                r,
                length_prefixed: false,
            } => r
                .connections()
                .iter()
                .flat_map(Connection::complete_lines)
                .collect(),
            Socket::Stream {
                r,
                length_prefixed: true,
            } => r
                .connections()
                .iter()
                .flat_map(Connection::complete_frames)
                .flat_map(|f| split_body(&f))
                .collect(),
            Socket::Datagram { r, .. } => {
                r.datagrams().iter().flat_map(|d| split_body(d)).collect()
            }
        }
    }
}

/// The lines of a datagram or frame body (no final newline).
fn split_body(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// The lines of newline-terminated bytes.
fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(bytes)
        .split('\n')
        .map(str::to_owned)
        .collect();
    lines.pop();
    lines
}

/// One parsed line: which series, what amount (or gauge value).
#[derive(Debug)]
struct Parsed {
    series: usize,
    amount: u64,
}

fn whole(v: &str) -> Option<u64> {
    let f: f64 = v.parse().ok()?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked: a whole non-negative number"
    )]
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0).then_some(f as u64)
}

/// Parses one line strictly; anything not exactly what our series produce is malformed.
fn parse(proto: Proto, line: &str) -> Result<Parsed, String> {
    let bad = || format!("malformed {proto:?} line: {line:?}");
    let series_of = |name: &str| SERIES.iter().position(|s| *s == name).ok_or_else(bad);
    if proto == Proto::Graphite {
        let fields: Vec<&str> = line.split(' ').collect();
        let [path, value, ts] = fields[..] else {
            return Err(bad());
        };
        let ts = ts.parse::<u64>().map_err(|_| bad())?;
        if ts < BASE_SECS || ts % FLUSH_INTERVAL != 0 {
            return Err(bad());
        }
        let value_f: f64 = value.parse().map_err(|_| bad())?;
        if !value_f.is_finite() {
            return Err(bad());
        }
        if let Some((name, suffix)) = path.split_once('.') {
            let series = series_of(name)?;
            let known = [
                "count", "sum", "min", "max", "mean", "p50", "p90", "p99", "p999",
            ];
            if series < FIRST_HISTOGRAM || !known.contains(&suffix) {
                return Err(bad());
            }
            let amount = if suffix == "count" {
                whole(value).ok_or_else(bad)?
            } else {
                0
            };
            return Ok(Parsed { series, amount });
        }
        let series = series_of(path)?;
        if series >= FIRST_HISTOGRAM {
            return Err(bad());
        }
        let amount = whole(value).ok_or_else(bad)?;
        return Ok(Parsed { series, amount });
    }
    let mut fields = line.split('|');
    let (name, values) = fields
        .next()
        .and_then(|f| f.split_once(':'))
        .ok_or_else(bad)?;
    let kind = fields.next().ok_or_else(bad)?;
    if fields.next().is_some() {
        return Err(bad());
    }
    let series = series_of(name)?;
    let values: Vec<&str> = values.split(':').collect();
    let expected = match series {
        s if s < GAUGE => "c",
        GAUGE => "g",
        _ if proto == Proto::Dogstatsd => "d",
        _ => "ms",
    };
    if kind != expected || (values.len() > 1 && !(proto == Proto::Dogstatsd && kind == "d")) {
        return Err(bad());
    }
    let mut amount = 0;
    for v in &values {
        let n = whole(v).ok_or_else(bad)?;
        amount = if series >= FIRST_HISTOGRAM {
            amount + 1
        } else {
            n
        };
    }
    Ok(Parsed { series, amount })
}

/// Amounts per series (gauges: the values seen, in order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    amounts: [u64; 6],
    gauges: Vec<u64>,
    lines: usize,
}

impl std::ops::Add for &Tally {
    type Output = [u64; 6];
    fn add(self, other: &Tally) -> [u64; 6] {
        std::array::from_fn(|i| self.amounts[i] + other.amounts[i])
    }
}

fn tally(proto: Proto, lines: &[String]) -> Result<Tally, String> {
    let mut t = Tally::default();
    for line in lines {
        let p = parse(proto, line)?;
        if p.series == GAUGE {
            t.gauges.push(p.amount);
        } else {
            t.amounts[p.series] += p.amount;
        }
        t.lines += 1;
    }
    Ok(t)
}

/// What the exporter recorded, according to the model.
#[derive(Debug, Default)]
struct Recorded {
    amounts: [u64; 6],
    gauges: HashSet<u64>,
    last_gauge: Option<u64>,
}

/// Everything observed at one instant.
struct Seen {
    received: Tally,
    received_lines: Vec<String>,
    sent: Tally,
    sent_lines: Vec<String>,
    dropped: Tally,
    dropped_lines: Vec<String>,
    possibly_lost_lines: Vec<String>,
    unconfirmed_lines: Vec<String>,
    waiting: [u64; 6],
}

/// `lines` as a multiset.
fn multiset(lines: &[String]) -> HashMap<&str, i64> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.as_str()).or_default() += 1;
    }
    m
}

struct Case {
    proto: Proto,
    rx: Receiver,
    flusher: Flusher,
    transport: Transport,
    stats: Arc<StatsCells>,
    counters: Vec<Arc<CounterCell>>,
    histograms: Vec<Arc<HistogramCell>>,
    /// The cells of `mc0.` and `mh0.`.
    alias_cells: (Arc<CounterCell>, Arc<HistogramCell>),
    handles: Handles,
    /// The resolver's answers for `receiver.invalid`.
    dns: Script,
    recorded: Recorded,
    flushes: u64,
    next_gauge: u64,
}

struct Handles {
    counters: Vec<metrics::Counter>,
    gauge: metrics::Gauge,
    histograms: Vec<metrics::Histogram>,
    /// `mc0.` and `mh0.`.
    aliases: (metrics::Counter, metrics::Histogram),
}

impl Case {
    /// `part_bytes`: regular flushes send each part collected as soon as the writer holds
    /// that many bytes (see `Flusher::with_part_bytes`).
    fn new(kind: Kind, proto: Proto, part_bytes: usize) -> Self {
        let length_prefixed = kind == Kind::Unix && proto == Proto::Dogstatsd;
        let socket = match kind {
            Kind::Tcp => Socket::Stream {
                r: StreamReceiver::tcp_with_receive_buffer(4096),
                length_prefixed,
            },
            Kind::Unix => Socket::Stream {
                r: StreamReceiver::unix("model.sock"),
                length_prefixed,
            },
            Kind::Udp => Socket::Datagram {
                r: DatagramReceiver::udp(),
                udp: true,
            },
            Kind::Unixgram => Socket::Datagram {
                r: DatagramReceiver::unixgram("model.sock"),
                udp: false,
            },
        };
        let rx = Receiver {
            socket,
            listening: true,
            stalled: false,
        };
        // A name, not the address: the transport looks it up.
        let endpoint = rx.endpoint().replace("127.0.0.1", "receiver.invalid");
        let builder = match proto {
            Proto::Statsd => ExporterBuilder::statsd(endpoint),
            Proto::Dogstatsd => ExporterBuilder::dogstatsd(endpoint),
            Proto::Graphite => ExporterBuilder::graphite(endpoint),
        };
        let (recorder, exporter) = builder
            .with_flush_interval(Duration::from_secs(FLUSH_INTERVAL))
            .with_max_backlog_bytes(MAX_BACKLOG)
            .with_maximum_payload_length(200)
            .with_write_timeout(Duration::from_millis(50))
            .with_connect_timeout(Duration::from_millis(200))
            .with_reconnect_delay(Duration::from_millis(1))
            .with_max_reconnect_delay(Duration::from_millis(1))
            .with_histogram_max_samples(16_384)
            .build()
            .unwrap();
        let stats = exporter.stats_cells();
        let flusher = exporter.into_flusher().with_part_bytes(part_bytes);
        let handles = metrics::with_local_recorder(&recorder, || Handles {
            counters: SERIES[..GAUGE]
                .iter()
                .map(|n| metrics::counter!(*n))
                .collect(),
            gauge: metrics::gauge!(SERIES[GAUGE]),
            histograms: SERIES[FIRST_HISTOGRAM..]
                .iter()
                .map(|n| metrics::histogram!(*n))
                .collect(),
            aliases: (metrics::counter!("mc0."), metrics::histogram!("mh0.")),
        });
        let registry = flusher.aggregate().registry();
        let key = |n: &'static str| metrics::Key::from_static_name(n);
        let counters = SERIES[..GAUGE]
            .iter()
            .map(|n| registry.counters.get(&key(n)).unwrap())
            .collect();
        let histograms = SERIES[FIRST_HISTOGRAM..]
            .iter()
            .map(|n| registry.histograms.get(&key(n)).unwrap())
            .collect();
        let alias_cells = (
            registry.counters.get(&key("mc0.")).unwrap(),
            registry.histograms.get(&key("mh0.")).unwrap(),
        );
        let dns = Script::new([], loopback());
        let transport = Transport::new(flusher.config(), Instant::now())
            .with_resolver(Resolver::Scripted(dns.clone()));
        Self {
            proto,
            rx,
            flusher,
            transport,
            stats,
            counters,
            histograms,
            alias_cells,
            handles,
            dns,
            recorded: Recorded::default(),
            flushes: 0,
            next_gauge: 1000,
        }
    }

    fn record(&mut self, op: &Op) {
        match *op {
            Op::Count { series, amount } => {
                if series == ALIAS {
                    self.handles.aliases.0.increment(amount);
                    self.recorded.amounts[0] += amount;
                } else {
                    self.handles.counters[series].increment(amount);
                    self.recorded.amounts[series] += amount;
                }
            }
            Op::Gauge => {
                self.next_gauge += 1;
                #[allow(clippy::cast_precision_loss, reason = "small")]
                self.handles.gauge.set(self.next_gauge as f64);
                self.recorded.gauges.insert(self.next_gauge);
                self.recorded.last_gauge = Some(self.next_gauge);
            }
            Op::Samples { series, n, value } => {
                let (handle, series) = match self.handles.histograms.get(series - FIRST_HISTOGRAM) {
                    Some(h) => (h, series),
                    None => (&self.handles.aliases.1, FIRST_HISTOGRAM),
                };
                for _ in 0..n {
                    handle.record(f64::from(value));
                }
                self.recorded.amounts[series] += u64::from(n);
            }
            _ => {}
        }
    }

    /// Graphite: a slot of its own per flush, so a slot's counter is never a merged value
    /// (nor restated by a later flush into the same slot).
    fn next_slot(&mut self) {
        self.flushes += 1;
        self.flusher.set_clock(WallClock::Anchored {
            unix: Duration::from_secs(BASE_SECS + self.flushes * FLUSH_INTERVAL),
            at: Instant::now(),
        });
    }

    async fn flush(&mut self) {
        self.next_slot();
        self.flusher.flush(&mut self.transport, Trigger::Tick).await;
        assert_eq!(
            self.flusher.delivery().unsent_lines(),
            0,
            "a flush hands over its batch"
        );
        // Whatever the outcome, each interval's histograms leave the cells at its flush (to
        // be sent, or kept in the backlog): intervals never merge.
        let alias = (&self.alias_cells.1, &"mh0.");
        for (h, name) in self
            .histograms
            .iter()
            .zip(&SERIES[FIRST_HISTOGRAM..])
            .chain([alias])
        {
            assert_eq!(
                h.peek_recorded(),
                0,
                "{name}: this interval's samples stayed in the cell"
            );
        }
    }

    fn seen(&self) -> Seen {
        let p = self.proto;
        let ledger = self.flusher.delivery().ledger();
        let must = |t: Result<Tally, String>| t.unwrap_or_else(|e| panic!("{e}"));
        let received_lines = self.rx.lines();
        let mut dropped_bytes = ledger.dropped_send.clone();
        dropped_bytes.extend_from_slice(&ledger.dropped_shutdown);
        let dropped_lines = split_lines(&dropped_bytes);
        let backlog = must(tally(
            p,
            &split_lines(self.flusher.delivery().backlog_bytes()),
        ));
        let mut waiting = backlog.amounts;
        for (i, c) in self.counters.iter().enumerate() {
            waiting[i] += c.peek();
        }
        for (i, h) in self.histograms.iter().enumerate() {
            waiting[FIRST_HISTOGRAM + i] += h.peek_recorded();
        }
        waiting[0] += self.alias_cells.0.peek();
        waiting[FIRST_HISTOGRAM] += self.alias_cells.1.peek_recorded();
        let seen = Seen {
            received: must(tally(p, &received_lines)),
            dropped: must(tally(p, &dropped_lines)),
            sent: must(tally(p, &split_lines(&ledger.sent))),
            sent_lines: split_lines(&ledger.sent),
            possibly_lost_lines: split_lines(&ledger.possibly_lost),
            unconfirmed_lines: split_lines(&ledger.unconfirmed),
            received_lines,
            dropped_lines,
            waiting,
        };
        // The ledger holds exactly the lines the counters count.
        let s = self.stats.snapshot();
        let lines = |b: &[u8]| split_lines(b).len() as u64;
        assert_eq!(
            lines(&ledger.dropped_send),
            s.lines_dropped_send,
            "dropped (send): ledger vs count"
        );
        assert_eq!(
            lines(&ledger.dropped_shutdown),
            s.lines_dropped_shutdown,
            "dropped (shutdown): ledger vs count"
        );
        assert_eq!(lines(&ledger.sent), s.lines_sent, "sent: ledger vs count");
        assert_eq!(
            lines(&ledger.possibly_lost),
            s.lines_possibly_lost,
            "possibly lost: ledger vs count"
        );
        seen
    }

    /// What must hold at every instant: nothing received twice or invented, nothing counted
    /// as dropped that arrived, the backlog within its bound.
    fn check_lower(&self, seen: &Seen) {
        let r = &self.recorded.amounts;
        let accounted = &(&seen.received + &seen.dropped);
        let encoded = &(&seen.sent + &seen.dropped);
        for i in (0..SERIES.len()).filter(|&i| i != GAUGE) {
            // Every recorded amount is in exactly one place on the exporter's side.
            assert_eq!(
                encoded[i] + seen.waiting[i],
                r[i],
                "{}: sent {} + dropped {} + waiting {} != recorded",
                SERIES[i],
                seen.sent.amounts[i],
                seen.dropped.amounts[i],
                seen.waiting[i]
            );
            assert!(
                accounted[i] + seen.waiting[i] <= r[i],
                "{}: received {} + dropped {} + waiting {} > recorded {}",
                SERIES[i],
                seen.received.amounts[i],
                seen.dropped.amounts[i],
                seen.waiting[i],
                r[i]
            );
        }
        // Nothing arrives that was not sent, or more often than it was sent.
        let sent = multiset(&seen.sent_lines);
        for (line, n) in multiset(&seen.received_lines) {
            let s = sent.get(line).copied().unwrap_or(0);
            assert!(n <= s, "received {n} times but sent {s}: {line:?}");
        }
        for g in &seen.received.gauges {
            assert!(
                self.recorded.gauges.contains(g),
                "gauge value {g} was never set"
            );
        }
        assert!(
            self.flusher.delivery().backlog_bytes().len() <= MAX_BACKLOG,
            "the backlog exceeds its bound"
        );
        if self.proto == Proto::Graphite {
            // Every Graphite line is unique (series, suffix, slot): identify them. Carbon
            // keeps one point per path and slot, so two lines for one would lose one (series
            // that render alike must have been merged).
            let mut unique = HashSet::new();
            let mut points = HashSet::new();
            for line in &seen.received_lines {
                assert!(unique.insert(line), "received twice: {line:?}");
                let fields: Vec<&str> = line.split(' ').collect();
                let point = (fields[0], fields[fields.len() - 1]);
                assert!(
                    points.insert(point),
                    "two lines for one path and slot: {line:?}"
                );
            }
            for line in &seen.dropped_lines {
                assert!(
                    !unique.contains(line),
                    "counted as dropped but received: {line:?}"
                );
            }
        }
    }

    /// Whether every line sent and confirmed (neither possibly lost nor, with `in_flight`,
    /// awaiting its verdict) was received (by content: a line sent twice must arrive twice).
    fn upper_holds(seen: &Seen, in_flight: bool) -> Result<(), String> {
        let mut owed = multiset(&seen.sent_lines);
        let excused = seen
            .possibly_lost_lines
            .iter()
            .chain(seen.unconfirmed_lines.iter().filter(|_| in_flight));
        for line in excused {
            *owed.entry(line.as_str()).or_default() -= 1;
        }
        let received = multiset(&seen.received_lines);
        for (line, n) in owed {
            let got = received.get(line).copied().unwrap_or(0);
            if got < n {
                return Err(format!(
                    "sent and confirmed {n} times, received {got}: {line:?}"
                ));
            }
        }
        Ok(())
    }

    /// Checks the lower bound now and, unless the receiver stalls, polls (bounded) until the
    /// upper bound holds: the receiver may not have read what the kernel accepted yet.
    async fn check(&self, in_flight: bool, max: Duration) {
        let deadline = Instant::now() + max;
        loop {
            let seen = self.seen();
            self.check_lower(&seen);
            if self.rx.stalled {
                return;
            }
            match Self::upper_holds(&seen, in_flight) {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("{e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(3)).await,
            }
        }
    }

    async fn step(&mut self, op: &Op) {
        match op {
            Op::Count { .. } | Op::Gauge | Op::Samples { .. } => self.record(op),
            Op::Flush => self.flush().await,
            Op::DnsDown | Op::DnsUp => {
                self.dns.then(if *op == Op::DnsUp {
                    loopback()
                } else {
                    Step::Fail
                });
                // Past the reconnect backoff (1 ms), so the next flush looks the name up.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            _ => {
                self.rx.apply(op);
            }
        }
        self.check(true, Duration::from_secs(3)).await;
    }

    /// The receiver healthy, the exporter catches up and shuts down; then every amount is
    /// received or counted.
    async fn settle(&mut self) {
        self.dns.then(loopback());
        self.rx.apply(&Op::Resume);
        self.rx.apply(&Op::Reopen);
        // Something to send, so a UDP refusal of the last datagram is learnt.
        self.record(&Op::Count {
            series: 0,
            amount: 1,
        });
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.flush().await;
            if self.flusher.delivery().caught_up() {
                break;
            }
        }
        assert!(
            self.flusher.delivery().caught_up(),
            "never caught up with a healthy receiver"
        );
        self.record(&Op::Count {
            series: 0,
            amount: 1,
        });
        self.flush().await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let before = self.stats.snapshot().lines_dropped_shutdown;
        self.next_slot();
        // A burst can still fill a Unix datagram queue: what it cannot send is counted.
        if let Err(crate::error::FlushError::Dropped { lines }) = self
            .flusher
            .final_flush(&mut self.transport, deadline)
            .await
        {
            assert_eq!(lines, self.stats.snapshot().lines_dropped_shutdown - before);
        }
        self.check(false, Duration::from_secs(3)).await;
        let seen = self.seen();
        assert_eq!(seen.waiting, [0; 6], "nothing waits after shutdown");
        let gauge_lost = seen
            .dropped_lines
            .iter()
            .chain(&split_lines(
                &self.flusher.delivery().ledger().possibly_lost,
            ))
            .any(|l| l.starts_with(SERIES[GAUGE]));
        if !gauge_lost && self.recorded.last_gauge.is_some() {
            assert_eq!(
                seen.received.gauges.last().copied(),
                self.recorded.last_gauge,
                "the last gauge value"
            );
        }
    }
}

/// Runs `ops` then settles; returns the statistics at the end. With `in_parts`, every
/// regular flush sends each payload as soon as the collect has finished it, so a fault can
/// strike between two parts of one interval.
fn run(kind: Kind, proto: Proto, ops: &[Op], in_parts: bool) -> crate::ExporterStats {
    SEND_BUFFER_FOR_TESTS.with(|b| b.set(Some(4096)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut case = Case::new(kind, proto, if in_parts { 1 } else { usize::MAX });
        for op in ops {
            case.step(op).await;
        }
        case.settle().await;
        case.stats.snapshot()
    })
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    ProptestConfig {
        cases,
        max_shrink_iters: std::env::var("PROPTEST_MAX_SHRINK_ITERS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

macro_rules! model {
    ($($name:ident: $kind:ident, $proto:ident;)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(ops in proptest::collection::vec(op(), 10..30), in_parts in any::<bool>()) {
                    run(Kind::$kind, Proto::$proto, &ops, in_parts);
                }
            )*
        }
    };
}

model! {
    every_statsd_amount_over_udp_is_received_or_counted_whatever_the_faults: Udp, Statsd;
    every_statsd_amount_over_tcp_is_received_or_counted_whatever_the_faults: Tcp, Statsd;
    every_statsd_amount_over_unixgram_is_received_or_counted_whatever_the_faults: Unixgram, Statsd;
    every_statsd_amount_over_a_unix_stream_is_received_or_counted_whatever_the_faults: Unix, Statsd;
    every_dogstatsd_amount_over_udp_is_received_or_counted_whatever_the_faults: Udp, Dogstatsd;
    every_dogstatsd_amount_over_tcp_is_received_or_counted_whatever_the_faults: Tcp, Dogstatsd;
    every_dogstatsd_amount_over_unixgram_is_received_or_counted_whatever_the_faults: Unixgram, Dogstatsd;
    every_dogstatsd_amount_over_a_unix_stream_is_received_or_counted_whatever_the_faults: Unix, Dogstatsd;
    every_graphite_amount_over_udp_is_received_or_counted_whatever_the_faults: Udp, Graphite;
    every_graphite_amount_over_tcp_is_received_or_counted_whatever_the_faults: Tcp, Graphite;
}

/// A receiver that closes gracefully (FIN) and then dies (RST) before reading our last
/// lines: the exporter must not take the FIN for a clean close.
#[test]
fn a_receiver_that_closes_gracefully_then_dies_unread_leaves_no_line_unaccounted() {
    let ops = [
        Op::Count {
            series: 2,
            amount: 1,
        },
        Op::Flush,
        Op::CloseGracefully,
        Op::Reset,
    ];
    for in_parts in [false, true] {
        run(Kind::Tcp, Proto::Statsd, &ops, in_parts);
    }
}

/// DNS not ready when the process starts: flushes find no address, so counters stay in the
/// cells and each interval's histograms wait in the backlog, until the name resolves.
#[test]
fn a_name_that_resolves_only_after_some_flushes_leaves_no_amount_unaccounted() {
    let ops = [
        Op::DnsDown,
        Op::Count {
            series: 0,
            amount: 3,
        },
        Op::Samples {
            series: FIRST_HISTOGRAM,
            n: 2,
            value: 7,
        },
        Op::Flush,
        Op::Gauge,
        Op::Flush,
        Op::Count {
            series: 1,
            amount: 4,
        },
        Op::DnsUp,
        Op::Flush,
        Op::DnsDown,
        Op::Reset,
        Op::Reopen,
        Op::Count {
            series: 0,
            amount: 1,
        },
        Op::Flush,
    ];
    for (kind, proto) in [
        (Kind::Udp, Proto::Statsd),
        (Kind::Tcp, Proto::Dogstatsd),
        (Kind::Tcp, Proto::Graphite),
    ] {
        let stats = run(kind, proto, &ops, true);
        // The first flush found no address (and, over TCP, so did the reconnect's lookup
        // while DNS was down again).
        let least = if kind == Kind::Tcp { 2 } else { 1 };
        assert!(stats.resolve_failures >= least, "{kind:?}: {stats:?}");
    }
}
