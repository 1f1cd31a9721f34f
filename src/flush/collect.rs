//! The collect step of a flush: drains every cell and encodes the interval into the payload
//! writer. Synchronous and without I/O; the only outside input is the wall-clock time, read
//! here for encoders that stamp it.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::cells::Cells;
use super::list::List;
use super::tracked::{Kept, LastGauge, Stamp, Tracked};
use super::{Flusher, Trigger, What};
use crate::aggregate::{CounterCell, GaugeCell, HistogramCell, SetCell, distinct_members};
use crate::encode::{
    CounterMode, EncodeTally, Encoder, FlushContext, PayloadWriter, Rendered, SeriesValue,
    SlotCarry, encode_series,
};
use crate::stats::{StatsCells, add};

impl Flusher {
    /// Drains every cell and encodes what changed into the payload writer, as a flush on
    /// demand does.
    pub(crate) fn collect(&mut self) {
        self.collect_interval(What::All(Trigger::Demand));
    }

    /// The whole interval at once into the writer.
    pub(super) fn collect_interval(&mut self, what: What) {
        let mut walk = self.begin_walk(what);
        self.walk_on(&mut walk, usize::MAX);
        self.end_walk(walk);
    }

    /// Starts a collect: takes in the series created since the last one and stamps the
    /// interval. [`walk_on`](Self::walk_on) then drains and encodes the series, and
    /// [`end_walk`](Self::end_walk) closes the interval.
    pub(super) fn begin_walk(&mut self, what: What) -> Walk {
        let cx = self.encoder.context(self.clock.now().as_secs());
        self.begin_walk_at(cx, Instant::now(), what)
    }

    fn begin_walk_at(&mut self, cx: FlushContext, now: Instant, what: What) -> Walk {
        #[cfg(test)]
        #[allow(
            clippy::panic,
            clippy::manual_assert,
            reason = "fault injection for the panic-isolation test"
        )]
        if self.inject_panic.swap(false, Ordering::Relaxed) {
            panic!("injected fault");
        }
        self.delivery.start();
        let absorbed = self
            .series
            .absorb(self.aggregate.storage(), now, &self.encoder);
        add(&self.stats.series_merged, absorbed.merged);
        add(&self.stats.names_shortened, absorbed.shortened);
        let all = what != What::Histograms;
        Walk {
            cx,
            now,
            stamp: self.series.stamp(now),
            what,
            stage: if all {
                Stage::Counters
            } else {
                Stage::Histograms
            },
            next: 0,
            tally: EncodeTally::default(),
            unnamed: 0,
            collided: 0,
            sampled_out: 0,
        }
    }

    /// Drains and encodes the walk's next series until the writer holds `budget` bytes or
    /// more (checked after each counter that wrote something, and after every other
    /// series) or every series is done.
    /// Returns whether every series is done. Between two calls the caller may send what the
    /// writer holds and [`release`](crate::delivery::Delivery::release_sent) it: a series is
    /// drained exactly once per walk whatever the budget, so the lines are the same.
    pub(super) fn walk_on(&mut self, w: &mut Walk, budget: usize) -> bool {
        let Self {
            stats,
            config,
            encoder,
            series,
            samples,
            spans,
            members,
            delivery,
            ..
        } = self;
        let mut pass = Pass {
            encoder,
            cx: &w.cx,
            writer: delivery.writer(),
            tally: w.tally,
            unnamed: w.unnamed,
            collided: w.collided,
            scratch: SlotCarry::default(),
        };
        let totals = encoder.counter_mode() == CounterMode::Total;
        // Re-sent gauges and counters' zeros fill each interval: a tick's job only.
        let tick = w.what == What::All(Trigger::Tick);
        let stamp = w.stamp;
        let next = &mut w.next;
        let stopped = 'walk: {
            if w.stage == Stage::Counters {
                let zeros = config.counter_zeros && tick;
                if walk_list(&mut series.counters, next, |c, t| {
                    pass.counter(c, t, stats, stamp, totals, zeros) && pass.full(budget)
                }) {
                    break 'walk true;
                }
                w.stage = Stage::Gauges;
            }
            if w.stage == Stage::Gauges {
                let resend = config.gauge_resend && tick;
                if walk_list(&mut series.gauges, next, |g, t| {
                    pass.gauge(g, t, stamp, resend);
                    pass.full(budget)
                }) {
                    break 'walk true;
                }
                w.stage = Stage::Histograms;
            }
            if w.stage == Stage::Histograms {
                if walk_list(&mut series.histograms, next, |h, t| {
                    w.sampled_out += pass.histogram(h, t, samples, spans, stamp);
                    pass.full(budget)
                }) {
                    break 'walk true;
                }
                w.stage = Stage::Sets;
            }
            if w.stage == Stage::Sets {
                // Like histograms, sets are per-interval data: drained at every collect, into
                // the backlog when the destination is down. Zeros as for counters (Graphite
                // only).
                let zeros = config.counter_zeros && tick;
                if walk_list(&mut series.sets, next, |s, t| {
                    pass.set(s, t, members, stats, stamp, zeros);
                    pass.full(budget)
                }) {
                    break 'walk true;
                }
                w.stage = Stage::Done;
            }
            false
        };
        (w.tally, w.unnamed, w.collided) = (pass.tally, pass.unnamed, pass.collided);
        !stopped
    }

    /// Closes a collect whose series are all done: the last payload, expiry, the tallies.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "ending a walk consumes it: nothing can walk on after its end"
    )]
    pub(super) fn end_walk(&mut self, w: Walk) {
        debug_assert_eq!(w.stage, Stage::Done, "a walk ended before its series were");
        let Self {
            aggregate,
            stats,
            config,
            encoder,
            series,
            delivery,
            ..
        } = self;
        delivery.writer().finish();
        let totals = encoder.counter_mode() == CounterMode::Total;
        if let Some(idle) = config.idle_timeout.filter(|_| w.what != What::Histograms) {
            let merged = series.expire(aggregate, w.now, idle, totals, encoder);
            add(&stats.series_merged, merged);
        }
        stats.series.store(series.len() as u64, Ordering::Relaxed);
        add(&stats.values_dropped_invalid, w.tally.invalid_values);
        add(&stats.lines_dropped_too_long, w.tally.too_long);
        add(&stats.values_dropped_unnamed, w.unnamed);
        add(&stats.values_dropped_collision, w.collided);
        add(&stats.samples_sampled_out, w.sampled_out);
    }
}

/// Walks `list` from `*next` until `stop` says so after an identity: then `*next` is the
/// identity after it and the result is true. Otherwise `*next` is 0 (for the next list) and
/// the result false. An iterator, not indexing, so an idle series costs no more than in a
/// plain `for` loop, and an idle counter's or gauge's [`Tracked`] is not read (see [`List`]).
#[inline]
fn walk_list<C: Kept>(
    list: &mut List<C>,
    next: &mut usize,
    mut stop: impl FnMut(&Cells<C>, &mut Tracked<C>) -> bool,
) -> bool {
    let len = list.len();
    let mut rest = list.walk_from(*next);
    while let Some((cells, t)) = rest.next() {
        if stop(cells, t) {
            *next = len - rest.len();
            return true;
        }
    }
    *next = 0;
    false
}

/// A collect in progress (see [`Flusher::begin_walk`]): the interval's inputs, where the
/// walk over the series is, and its tallies so far.
#[derive(Debug)]
pub(super) struct Walk {
    cx: FlushContext,
    now: Instant,
    stamp: Stamp,
    what: What,
    stage: Stage,
    /// The next series of `stage`'s list.
    next: usize,
    tally: EncodeTally,
    unnamed: u64,
    collided: u64,
    sampled_out: u64,
}

/// Which list a walk is in: they are walked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Counters,
    Gauges,
    Histograms,
    Sets,
    Done,
}

/// One collect's encoding state and tallies.
struct Pass<'a> {
    encoder: &'a Encoder,
    cx: &'a FlushContext,
    writer: &'a mut PayloadWriter,
    tally: EncodeTally,
    /// Values of series whose name has nothing usable left.
    unnamed: u64,
    /// Values of series not sent because another kind owns their name.
    collided: u64,
    /// The carry of series that keep none (every protocol but Graphite, whose encoders
    /// never touch it).
    scratch: SlotCarry,
}

impl Pass<'_> {
    /// Whether the writer holds `budget` bytes or more.
    #[inline]
    fn full(&self, budget: usize) -> bool {
        self.writer.buffered_len() >= budget
    }

    fn encode(&mut self, r: &Rendered, value: SeriesValue<'_>, carry: &mut Option<Box<SlotCarry>>) {
        let (e, cx) = (self.encoder, self.cx);
        let carry = carry.as_deref_mut().unwrap_or(&mut self.scratch);
        self.unnamed += encode_series(e, r, value, carry, cx, self.writer, &mut self.tally);
    }

    /// A counter's interval: its delta (or running total with `totals`), and with `zeros` a
    /// 0 once it counted anything. Inlined into the walk over every counter: an idle one
    /// (nothing counted, nothing to send) returns after its cell's plain load. Returns
    /// whether it went on to encode, so the walk checks its budget only then.
    #[inline]
    fn counter(
        &mut self,
        cells: &Cells<CounterCell>,
        c: &mut Tracked<CounterCell>,
        stats: &StatsCells,
        now: Stamp,
        totals: bool,
        zeros: bool,
    ) -> bool {
        let delta = cells.take_counter(&stats.counter_overflows);
        if delta == 0 && !totals && !(zeros && c.kept > 0) {
            return false;
        }
        self.counter_changed(c, delta, stats, now, totals);
        true
    }

    /// The rest of [`counter`](Self::counter), for a counter that counted or has something
    /// to send, kept out of line so the walk over idle ones stays short.
    #[inline(never)]
    fn counter_changed(
        &mut self,
        c: &mut Tracked<CounterCell>,
        delta: u64,
        stats: &StatsCells,
        now: Stamp,
        totals: bool,
    ) {
        if delta != 0 {
            c.last_active = now;
        }
        c.add_to_total(delta, totals, &stats.counter_overflows);
        if c.rendered.clash {
            self.collided += u64::from(delta != 0);
            return;
        }
        // Deltas are sent when non-zero, or as 0 once the counter counted anything (with
        // `zeros`, checked by `counter`); running totals every flush once the counter exists.
        let value = SeriesValue::Counter(if totals { c.kept } else { delta });
        self.encode(&c.rendered, value, &mut c.carry);
    }

    /// A gauge's interval: the value set in it, or with `resend` the last value sent.
    fn gauge(
        &mut self,
        cells: &Cells<GaugeCell>,
        g: &mut Tracked<GaugeCell>,
        now: Stamp,
        resend: bool,
    ) {
        let value = match cells.take_gauge() {
            Some(set) => {
                g.last_active = now;
                // A value that cannot be sent is counted once, by the encoder, and leaves a
                // gap until the gauge is set again: re-sending the previous one would lie.
                g.kept = LastGauge(if set.is_finite() { set } else { f64::NAN });
                self.collided += u64::from(g.rendered.clash);
                set
            }
            None if resend && !g.kept.0.is_nan() => g.kept.0,
            None => return,
        };
        if !g.rendered.clash {
            self.encode(&g.rendered, SeriesValue::Gauge(value), &mut g.carry);
        }
    }

    /// A set's interval: the union of its cells' members, deduped exactly (members that
    /// sanitise alike count once); with `zeros` a Graphite 0 once it had a member.
    fn set(
        &mut self,
        cells: &Cells<SetCell>,
        s: &mut Tracked<SetCell>,
        members: &mut Vec<String>,
        stats: &StatsCells,
        now: Stamp,
        zeros: bool,
    ) {
        members.clear();
        let (mut refused, mut empty, mut too_long) = (0, 0, 0);
        for cell in cells.iter() {
            let drained = cell.drain_into(members);
            refused += drained.refused;
            empty += drained.empty;
            too_long += drained.too_long;
        }
        add(&stats.set_members_dropped, refused);
        self.tally.invalid_values += empty;
        self.tally.too_long += too_long;
        distinct_members(members);
        if !members.is_empty() || refused > 0 || empty > 0 || too_long > 0 {
            s.last_active = now;
        }
        if !members.is_empty() {
            // Whether it ever had a member (for zeros).
            s.kept = true;
        }
        if s.rendered.clash {
            self.collided += members.len() as u64;
            return;
        }
        if members.is_empty() && !(zeros && s.kept) {
            return;
        }
        self.encode(&s.rendered, SeriesValue::Set(members), &mut s.carry);
    }

    /// A histogram's interval samples; returns how many were sampled out.
    fn histogram(
        &mut self,
        cells: &Cells<HistogramCell>,
        h: &mut Tracked<HistogramCell>,
        samples: &mut Vec<f64>,
        spans: &mut Vec<(usize, u64)>,
        now: Stamp,
    ) -> u64 {
        samples.clear();
        let recorded = cells.drain_histogram(samples, spans);
        if recorded == 0 {
            return 0;
        }
        h.last_active = now;
        let kept = samples.len() as u64;
        if h.rendered.clash {
            self.collided += kept;
        } else {
            let value = SeriesValue::Histogram {
                samples,
                recorded,
                unit: cells.first.unit(),
            };
            self.encode(&h.rendered, value, &mut h.carry);
        }
        recorded.saturating_sub(kept)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use crate::{CounterMode, ExporterBuilder};

    #[tokio::test(start_paused = true)]
    async fn in_total_mode_an_idle_counter_sends_its_running_total_at_every_tick_even_without_zeros()
     {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("udp://{}", socket.local_addr().unwrap());
        let (recorder, exporter) = ExporterBuilder::graphite(endpoint)
            .with_counter_mode(CounterMode::Total)
            .with_counter_zeros(false)
            .with_flush_interval(Duration::from_secs(10))
            .build()
            .unwrap();
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(exporter.into_flusher().run(rx));
        let (made, once) = metrics::with_local_recorder(&recorder, || {
            (metrics::counter!("made"), metrics::counter!("once"))
        });
        once.increment(3);
        let mut buf = [0u8; 256];
        for tick in 0..3 {
            let n = socket.recv(&mut buf).await.unwrap();
            let mut got: Vec<String> = String::from_utf8(buf[..n].to_vec())
                .unwrap()
                .lines()
                .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
                .collect();
            got.sort();
            assert_eq!(got, ["made 0", "once 3"], "tick {tick}");
        }
        drop((made, once, commands));
        task.await.unwrap();
    }
}
