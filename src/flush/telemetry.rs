//! Self-telemetry: the exporter's own statistics, sent as metrics after each flush.
//!
//! The report is encoded by the configured encoder (so names, tags, prefix and global labels
//! follow the same rules as every other metric) into a payload writer of its own, and goes
//! out after the user's payloads as separate payloads. So its lines never mix with the user's
//! and never enter the statistics they report on: they are counted only in
//! `telemetry_lines_sent` / `telemetry_lines_dropped`, which are not reported. Counters carry
//! the change since the last report the transport accepted; a stat whose line it did not
//! accept is reported again, with what it gained meanwhile, next time. Like the user's lines,
//! a report the transport accepted is not re-sent if it is lost later (a refused datagram,
//! a connection reset before the receiver read it).

use metrics::{Key, Label};

use crate::config::Config;
use crate::encode::{
    CounterMode, EncodeTally, Encoder, FlushContext, PayloadWriter, Rendered, SeriesKind, SlotCarry,
};
use crate::stats::ExporterStats;

/// One reported statistic: its name after the telemetry prefix, an optional `reason` label,
/// its kind, and where its value is in the snapshot.
struct Stat {
    name: &'static str,
    reason: Option<&'static str>,
    kind: SeriesKind,
    value: fn(&ExporterStats) -> u64,
}

/// How many statistics [`STATS`] reports. A constant of its own: array types sized by
/// `STATS.len()` made rustc's optimised builds (`--release` tests) report a query cycle.
const STAT_COUNT: usize = 24;

/// Every statistic reported, in the order sent. `telemetry_lines_*` are left out on purpose
/// (the report would count itself), and so is `lines_dropped_shutdown` (nothing is sent
/// after the final flush).
const STATS: [Stat; STAT_COUNT] = [
    counter("flushes", None, |s| s.flushes),
    counter("lines_sent", None, |s| s.lines_sent),
    counter("payloads_sent", None, |s| s.payloads_sent),
    counter("bytes_sent", None, |s| s.bytes_sent),
    counter("payloads_dropped", None, |s| s.payloads_dropped),
    counter("lines_dropped", Some("send"), |s| s.lines_dropped_send),
    counter("lines_dropped", Some("too_long"), |s| {
        s.lines_dropped_too_long
    }),
    counter("values_dropped", Some("invalid"), |s| {
        s.values_dropped_invalid
    }),
    counter("values_dropped", Some("unnamed"), |s| {
        s.values_dropped_unnamed
    }),
    counter("values_dropped", Some("collision"), |s| {
        s.values_dropped_collision
    }),
    counter("samples_sampled_out", None, |s| s.samples_sampled_out),
    counter("send_errors", None, |s| s.send_errors),
    counter("connects", None, |s| s.connects),
    counter("resolve_failures", None, |s| s.resolve_failures),
    counter("lines_possibly_lost", None, |s| s.lines_possibly_lost),
    counter("flush_panics", None, |s| s.flush_panics),
    counter("series_dropped", None, |s| s.series_dropped),
    counter("series_expired", None, |s| s.series_expired),
    counter("counter_overflows", None, |s| s.counter_overflows),
    counter("series_merged", None, |s| s.series_merged),
    counter("series_overflowed", None, |s| s.series_overflowed),
    counter("names_shortened", None, |s| s.names_shortened),
    counter("set_members_dropped", None, |s| s.set_members_dropped),
    Stat {
        name: "series",
        reason: None,
        kind: SeriesKind::Gauge,
        value: |s| s.series,
    },
];

const fn counter(
    name: &'static str,
    reason: Option<&'static str>,
    value: fn(&ExporterStats) -> u64,
) -> Stat {
    Stat {
        name,
        reason,
        kind: SeriesKind::Counter,
        value,
    }
}

/// The telemetry state the flusher keeps. See the module docs.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// Each stat's wire name and tags, rendered once.
    rendered: Vec<Rendered>,
    /// Graphite: what each stat already sent for the current carbon slot.
    carry: Vec<SlotCarry>,
    /// Each stat's carry before the report being sent, restored for lines that did not get
    /// through (or a later flush into the same slot would add what never arrived).
    carry_before: Vec<SlotCarry>,
    /// Each stat's value as of the last report that got through.
    reported: [u64; STAT_COUNT],
    /// Each stat's value in the report being sent.
    pending: [u64; STAT_COUNT],
    /// Which stat each line of the report being sent carries, in order.
    lines: Vec<usize>,
    writer: PayloadWriter,
    /// Whether a counter that did not move sends 0 once it has moved (the user's
    /// `with_counter_zeros`, so the exporter's own graphs have no holes either).
    zeros: bool,
}

impl Telemetry {
    /// Renders every stat under `prefix` with `encoder`, once.
    pub(crate) fn new(prefix: &str, encoder: &Encoder, config: &Config) -> Self {
        let rendered = STATS
            .iter()
            .map(|stat| {
                let labels: Vec<Label> = stat
                    .reason
                    .map(|r| Label::new("reason", r))
                    .into_iter()
                    .collect();
                let key = Key::from_parts(format!("{prefix}.{}", stat.name), labels);
                let mut out = Rendered::default();
                encoder.render_series(stat.kind, &key, &mut out);
                out
            })
            .collect();
        Self {
            rendered,
            carry: vec![SlotCarry::default(); STATS.len()],
            carry_before: vec![SlotCarry::default(); STATS.len()],
            reported: [0; STAT_COUNT],
            zeros: config.counter_zeros,
            pending: [0; STAT_COUNT],
            lines: Vec::with_capacity(STATS.len()),
            writer: PayloadWriter::new(config.max_payload_len, config.framing),
        }
    }

    /// Encodes a report of `now` (gauges as they are; counters as the change since the last
    /// report that got through, or as totals for Graphite's total mode) into the writer.
    pub(crate) fn encode(&mut self, now: &ExporterStats, encoder: &Encoder, cx: &FlushContext) {
        self.writer.clear();
        self.lines.clear();
        let totals = encoder.counter_mode() == CounterMode::Total;
        let mut tally = EncodeTally::default();
        for (i, stat) in STATS.iter().enumerate() {
            let rendered = &self.rendered[i];
            let value = (stat.value)(now);
            self.pending[i] = value;
            if !rendered.sendable() {
                continue;
            }
            let before = tally.lines;
            match stat.kind {
                SeriesKind::Counter => {
                    let delta = value.saturating_sub(self.reported[i]);
                    if delta == 0 && !totals && !(self.zeros && self.reported[i] > 0) {
                        continue;
                    }
                    let sent = if totals { value } else { delta };
                    // Counters carry no samples, so this copies a few numbers.
                    self.carry_before[i].clone_from(&self.carry[i]);
                    let carry = &mut self.carry[i];
                    encoder.counter(rendered, sent, carry, cx, &mut self.writer, &mut tally);
                }
                SeriesKind::Gauge | SeriesKind::Histogram | SeriesKind::Set => {
                    #[allow(
                        clippy::cast_precision_loss,
                        reason = "a series count is far below 2^53"
                    )]
                    let value = value as f64;
                    encoder.gauge(rendered, value, cx, &mut self.writer, &mut tally);
                }
            }
            // A gauge is one line here (never negative, so no Etsy `0|g` preamble).
            if tally.lines > before {
                self.lines.push(i);
            }
        }
        self.writer.finish();
    }

    /// The report's payloads.
    pub(crate) fn writer(&self) -> &PayloadWriter {
        &self.writer
    }

    /// Records that the first `accepted` lines of the report got through: their stats are
    /// reported up to the values sent; the others will be sent again with what they gain, and
    /// their Graphite slot carry goes back to what it was, since those values never arrived.
    pub(crate) fn confirm(&mut self, accepted: u64) {
        let accepted = usize::try_from(accepted).unwrap_or(usize::MAX);
        for (n, &i) in self.lines.iter().enumerate() {
            if n < accepted {
                self.reported[i] = self.pending[i];
            } else {
                self.carry[i].clone_from(&self.carry_before[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExporterBuilder;

    fn telemetry(builder: &ExporterBuilder) -> (Telemetry, Encoder) {
        let config = builder.config().unwrap();
        let encoder = builder.encoder().unwrap();
        let prefix = config.telemetry.clone().unwrap();
        (Telemetry::new(&prefix, &encoder, &config), encoder)
    }

    /// Encodes a report of `stats` and returns its payloads as text.
    fn report(t: &mut Telemetry, e: &Encoder, stats: &ExporterStats) -> Vec<String> {
        let cx = FlushContext::at(1_700_000_000);
        t.encode(stats, e, &cx);
        let w = t.writer();
        (0..w.len())
            .map(|i| String::from_utf8(w.payload(i).unwrap().0.to_vec()).unwrap())
            .collect()
    }

    fn stats(flushes: u64, lines_sent: u64, series: u64) -> ExporterStats {
        ExporterStats {
            flushes,
            lines_sent,
            series,
            ..ExporterStats::default()
        }
    }

    #[test]
    fn a_report_sends_what_changed_since_the_last_one_and_the_series_gauge() {
        let b = ExporterBuilder::statsd("127.0.0.1:8125").with_telemetry_prefix("t");
        let (mut t, e) = telemetry(&b);
        assert_eq!(
            report(&mut t, &e, &stats(1, 3, 2)),
            ["t.flushes:1|c\nt.lines_sent:3|c\nt.series:2|g"]
        );
        t.confirm(3);
        // Unchanged counters are left out, like any counter.
        assert_eq!(
            report(&mut t, &e, &stats(2, 3, 2)),
            ["t.flushes:1|c\nt.series:2|g"]
        );
    }

    #[test]
    fn failed_host_lookups_are_reported_with_the_other_transport_stats() {
        let b = ExporterBuilder::statsd("127.0.0.1:8125").with_telemetry_prefix("t");
        let (mut t, e) = telemetry(&b);
        let s = ExporterStats {
            send_errors: 1,
            connects: 2,
            resolve_failures: 3,
            lines_possibly_lost: 4,
            ..ExporterStats::default()
        };
        assert_eq!(
            report(&mut t, &e, &s),
            [
                "t.send_errors:1|c\nt.connects:2|c\nt.resolve_failures:3|c\nt.lines_possibly_lost:4|c\nt.series:0|g"
            ]
        );
    }

    #[test]
    fn graphite_reports_zero_for_a_stat_that_moved_before_and_not_since() {
        let b = ExporterBuilder::graphite("127.0.0.1:2003")
            .with_telemetry_prefix("t")
            .with_aligned_timestamps(false);
        let (mut t, e) = telemetry(&b);
        let ts = 1_700_000_000;
        assert_eq!(
            report(&mut t, &e, &stats(1, 0, 2)),
            [format!("t.flushes 1 {ts}\nt.series 2 {ts}\n")]
        );
        t.confirm(2);
        // Same slot: the slot's total again for `flushes`; `lines_sent` never moved.
        assert_eq!(
            report(&mut t, &e, &stats(1, 0, 2)),
            [format!("t.flushes 1 {ts}\nt.series 2 {ts}\n")]
        );
    }

    #[test]
    fn a_stat_whose_line_did_not_get_through_is_reported_again_with_what_it_gained() {
        let b = ExporterBuilder::statsd("127.0.0.1:8125").with_telemetry_prefix("t");
        let (mut t, e) = telemetry(&b);
        report(&mut t, &e, &stats(1, 3, 2));
        t.confirm(1); // only `t.flushes` got through
        assert_eq!(
            report(&mut t, &e, &stats(2, 5, 2)),
            ["t.flushes:1|c\nt.lines_sent:5|c\nt.series:2|g"]
        );
        t.confirm(0); // nothing did
        assert_eq!(
            report(&mut t, &e, &stats(3, 6, 2)),
            ["t.flushes:2|c\nt.lines_sent:6|c\nt.series:2|g"]
        );
    }

    #[test]
    fn reasons_become_tags_or_name_segments_and_the_users_prefix_and_labels_apply() {
        let dropped = ExporterStats {
            lines_dropped_send: 4,
            ..ExporterStats::default()
        };
        let cases = [
            (
                ExporterBuilder::statsd("127.0.0.1:8125"),
                "app.eu.metrics_exporter.lines_dropped.send:4|c",
            ),
            (
                ExporterBuilder::dogstatsd("127.0.0.1:8125"),
                "app.metrics_exporter.lines_dropped:4|c|#reason:send,region:eu",
            ),
            (
                ExporterBuilder::graphite("127.0.0.1:2003"),
                "app.metrics_exporter.lines_dropped;reason=send;region=eu 4 1700000000",
            ),
        ];
        for (builder, want) in cases {
            let b = builder
                .with_prefix("app")
                .with_global_labels([("region", "eu")])
                .with_telemetry(true);
            let (mut t, e) = telemetry(&b);
            let got = report(&mut t, &e, &dropped);
            assert!(
                got.iter().any(|p| p.lines().any(|l| l == want)),
                "{want:?} in {got:?}"
            );
        }
    }

    #[test]
    fn a_graphite_report_that_did_not_get_through_leaves_no_trace_in_its_slot() {
        let b = ExporterBuilder::graphite("127.0.0.1:2003").with_telemetry_prefix("t");
        let (mut t, e) = telemetry(&b);
        // A tick's report (lines_sent +100) fails; a flush into the same slot then reports
        // +250 since the last report that got through: carbon must get 250, not 100 + 250.
        report(&mut t, &e, &stats(1, 100, 0));
        t.confirm(0);
        let got = report(&mut t, &e, &stats(2, 250, 0)).concat();
        assert!(got.contains("t.lines_sent 250 1700000000\n"), "{got}");
        // That one gets through; a third flush into the slot adds its own 50 to the slot.
        t.confirm(u64::MAX);
        let got = report(&mut t, &e, &stats(3, 300, 0)).concat();
        assert!(got.contains("t.lines_sent 300 1700000000\n"), "{got}");
        assert!(got.contains("t.flushes 3 1700000000\n"), "{got}");
    }

    #[test]
    fn graphite_total_mode_reports_running_totals_every_time() {
        let b = ExporterBuilder::graphite("127.0.0.1:2003")
            .with_counter_mode(CounterMode::Total)
            .with_aligned_timestamps(false)
            .with_telemetry_prefix("t");
        let (mut t, e) = telemetry(&b);
        report(&mut t, &e, &stats(1, 3, 0));
        t.confirm(u64::MAX);
        let got = report(&mut t, &e, &stats(2, 3, 0)).concat();
        assert!(got.contains("t.flushes 2 1700000000\n"), "{got}");
        assert!(got.contains("t.lines_sent 3 1700000000\n"), "{got}");
        assert!(got.contains("t.bytes_sent 0 1700000000\n"), "{got}");
    }

    #[test]
    fn every_reported_stat_is_a_distinct_series_and_telemetry_tallies_are_not_reported() {
        for builder in [
            ExporterBuilder::statsd("127.0.0.1:8125"),
            ExporterBuilder::dogstatsd("127.0.0.1:8125"),
            ExporterBuilder::graphite("127.0.0.1:2003"),
        ] {
            let (t, _) = telemetry(&builder.with_telemetry(true));
            let mut series: Vec<_> = t.rendered.iter().map(|r| (r.name(), r.tail())).collect();
            series.sort();
            series.dedup();
            assert_eq!(series.len(), STATS.len());
        }
        assert!(STATS.iter().all(|s| !s.name.starts_with("telemetry")));
    }

    #[test]
    fn with_telemetry_false_turns_it_off_and_true_keeps_a_chosen_prefix() {
        let b = ExporterBuilder::statsd("127.0.0.1:8125");
        assert_eq!(b.config().unwrap().telemetry, None);
        let on = b.with_telemetry_prefix("x").with_telemetry(true);
        assert_eq!(on.config().unwrap().telemetry.as_deref(), Some("x"));
        assert_eq!(on.with_telemetry(false).config().unwrap().telemetry, None);
    }
}
