//! What the flusher sends between updates (gauges re-sent, counters' zeros) and for series
//! that render alike (merged, or not sent when another kind owns the name), on tokio's paused
//! clock so every flush lands at an exact instant and Graphite stamps a known slot.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Command, WallClock};
use crate::stats::StatsCells;
use crate::{ExporterBuilder, ExporterRecorder, ExporterStats};

/// The wall clock at the start of every test: a multiple of 10 s, so the first Graphite tick
/// is one interval later and stamps `T0 + 10`.
const T0: u64 = 1_700_000_000;

/// An exporter flushing every 10 s to a UDP socket of the test's, its flusher on the test's
/// paused runtime.
struct Run {
    socket: UdpSocket,
    recorder: ExporterRecorder,
    stats: std::sync::Arc<StatsCells>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    demand: std::sync::Arc<super::Demand>,
    task: tokio::task::JoinHandle<()>,
}

impl Run {
    /// `make` gets the endpoint and returns the builder (flush interval and idle timeout
    /// are set here: 10 s and 30 s).
    async fn start(make: impl FnOnce(String) -> ExporterBuilder) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("udp://{}", socket.local_addr().unwrap());
        let (recorder, exporter) = make(endpoint)
            .with_flush_interval(Duration::from_secs(10))
            .with_idle_timeout(Some(Duration::from_secs(30)))
            .build()
            .unwrap();
        let stats = exporter.stats_cells();
        let clock = WallClock::Anchored {
            unix: Duration::from_secs(T0),
            at: tokio::time::Instant::now(),
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let flusher = exporter.into_flusher().with_clock(clock);
        let demand = flusher.demand();
        let task = tokio::spawn(flusher.run(rx));
        Self {
            socket,
            recorder,
            stats,
            commands: Some(commands),
            demand,
            task,
        }
    }

    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The next flush's payload, as text (each test's flushes fit one datagram).
    async fn next(&self) -> String {
        let mut buf = [0u8; 1500];
        let n = self.socket.recv(&mut buf).await.unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// The payloads of the flushes of the next `ticks` ticks that sent anything (waiting
    /// half an interval past the last, so as not to race it).
    async fn ticks(&self, ticks: u32) -> Vec<String> {
        let mut got = Vec::new();
        let end =
            tokio::time::Instant::now() + Duration::from_secs(10) * ticks + Duration::from_secs(5);
        while let Ok(text) = tokio::time::timeout_at(end, self.next()).await {
            got.push(text);
        }
        got
    }

    /// An explicit flush, as `ExporterHandle::flush` sends it.
    async fn flush_now(&self) {
        self.demand
            .flush_async(Duration::from_secs(60))
            .await
            .unwrap();
    }

    fn stats(&self) -> ExporterStats {
        self.stats.snapshot()
    }

    async fn stop(mut self) {
        drop(self.commands.take());
        self.task.await.unwrap();
    }
}

/// Graphite timestamp of the `n`th tick.
fn slot(n: u64) -> u64 {
    T0 + 10 * n
}

#[tokio::test(start_paused = true)]
async fn a_gauge_set_once_is_sent_at_every_flush_until_its_series_expires() {
    let run = Run::start(ExporterBuilder::statsd).await;
    let held = run.record(|| metrics::gauge!("held"));
    held.set(2.0);
    run.record(|| metrics::gauge!("once").set(4.0));
    // Set at 0 s; sent at 10, 20, 30 and 40 s, when the idle scan retires it (30 s idle, no
    // handle): the flush that finds it idle still sends it.
    let got = run.ticks(4).await;
    assert_eq!(got, ["held:2|g\nonce:4|g"; 4]);
    assert_eq!(run.stats().series_expired, 1);
    // The held one goes on; the expired one is gone until set again.
    assert_eq!(run.ticks(2).await, ["held:2|g"; 2]);
    run.record(|| metrics::gauge!("once").set(5.0));
    assert_eq!(run.next().await, "held:2|g\nonce:5|g");
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_explicit_flush_sends_only_what_changed_and_the_next_tick_fills_its_interval() {
    let run = Run::start(ExporterBuilder::graphite).await;
    let g = run.record(|| metrics::gauge!("g"));
    let c = run.record(|| metrics::counter!("c"));
    g.set(1.0);
    c.increment(2);
    assert_eq!(run.next().await, format!("c 2 {0}\ng 1 {0}", slot(1)));
    c.increment(1);
    run.flush_now().await;
    // Still in the first slot: the slot's total, so carbon's last write is the whole count.
    assert_eq!(
        run.next().await,
        format!("c 3 {}", slot(1)),
        "no gauge re-sent"
    );
    assert_eq!(run.ticks(1).await, [format!("c 0 {0}\ng 1 {0}", slot(2))]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_gauge_set_to_nan_is_counted_once_and_leaves_a_gap_until_set_again() {
    let run = Run::start(ExporterBuilder::statsd).await;
    let g = run.record(|| metrics::gauge!("g"));
    let other = run.record(|| metrics::gauge!("other"));
    other.set(1.0);
    g.set(4.0);
    assert_eq!(run.next().await, "g:4|g\nother:1|g");
    g.set(f64::NAN);
    assert_eq!(run.ticks(3).await, ["other:1|g"; 3]);
    assert_eq!(run.stats().values_dropped_invalid, 1, "counted once");
    g.set(f64::INFINITY);
    g.set(5.0);
    assert_eq!(run.ticks(2).await, ["g:5|g\nother:1|g"; 2]);
    assert_eq!(
        run.stats().values_dropped_invalid,
        1,
        "only the last value counts"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn without_gauge_resend_a_gauge_is_sent_only_in_intervals_where_it_was_set() {
    let run = Run::start(|e| ExporterBuilder::statsd(e).with_gauge_resend(false)).await;
    let g = run.record(|| metrics::gauge!("g"));
    g.set(4.0);
    assert_eq!(run.ticks(3).await, ["g:4|g"]);
    g.increment(1.0);
    assert_eq!(run.next().await, "g:5|g");
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_graphite_counter_sends_zero_between_increments_until_its_series_expires() {
    let run = Run::start(ExporterBuilder::graphite).await;
    let _never = run.record(|| metrics::counter!("never"));
    run.record(|| metrics::counter!("c").increment(3));
    let got = run.ticks(6).await;
    let want: Vec<String> = [3, 0, 0, 0]
        .iter()
        .zip(1..)
        .map(|(v, n)| format!("c {v} {}", slot(n)))
        .collect();
    assert_eq!(got, want, "a counter never incremented sends nothing");
    assert_eq!(run.stats().series_expired, 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn statsd_counters_send_no_zeros_unless_asked_since_the_servers_report_them() {
    let run = Run::start(ExporterBuilder::statsd).await;
    run.record(|| metrics::counter!("c").increment(3));
    assert_eq!(run.ticks(3).await, ["c:3|c"]);
    run.stop().await;

    let run = Run::start(|e| ExporterBuilder::dogstatsd(e).with_counter_zeros(true)).await;
    let c = run.record(|| metrics::counter!("c"));
    assert_eq!(run.ticks(1).await, Vec::<String>::new());
    c.increment(3);
    assert_eq!(run.ticks(3).await, ["c:3|c", "c:0|c", "c:0|c"]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn graphite_series_that_render_alike_go_out_as_one_merged_line() {
    let run = Run::start(|e| ExporterBuilder::graphite(e).with_percentiles([])).await;
    run.record(|| {
        // An empty tag value is left out, so both are `x`; `a b` and `a_b` sanitise alike.
        metrics::counter!("x").increment(2);
        metrics::counter!("x", "route" => "").increment(3);
        metrics::gauge!("g.a b").set(1.0);
        metrics::gauge!("g.a_b").set(7.0);
        metrics::histogram!("h").record(1.0);
        metrics::histogram!("h", "route" => "").record(3.0);
    });
    let ts = slot(1);
    assert_eq!(
        run.next().await,
        format!(
            "x 5 {ts}\ng.a_b 7 {ts}\nh.count 2 {ts}\nh.sum 4 {ts}\nh.min 1 {ts}\nh.max 3 {ts}\nh.mean 2 {ts}"
        )
    );
    let s = run.stats();
    assert_eq!((s.series_merged, s.series), (3, 6));
    // Merged gauges keep being re-sent as one: the last value sent.
    run.record(|| metrics::gauge!("g.a b").set(2.0));
    let ts = slot(2);
    assert_eq!(run.next().await, format!("x 0 {ts}\ng.a_b 2 {ts}"));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn statsd_and_dogstatsd_series_that_render_alike_go_out_as_one_merged_line() {
    for make in [ExporterBuilder::statsd, ExporterBuilder::dogstatsd] {
        let run = Run::start(make).await;
        run.record(|| {
            metrics::counter!("a b").increment(2);
            metrics::counter!("a_b").increment(3);
            metrics::gauge!("g b").set(9.0);
            metrics::gauge!("g_b").set(-1.0);
            metrics::histogram!("t b").record(0.001);
            metrics::histogram!("t_b").record(0.002);
        });
        let got = run.next().await;
        let mut lines: Vec<&str> = got.lines().collect();
        lines.sort_unstable();
        let timer = if lines.iter().any(|l| l.ends_with("|d")) {
            "t_b:0.001:0.002|d"
        } else {
            "t_b:1|ms"
        };
        let mut want = vec!["a_b:5|c", "g_b:9|g", timer];
        if timer.ends_with("|ms") {
            want.push("t_b:2|ms");
        }
        want.sort_unstable();
        assert_eq!(lines, want, "{got}");
        assert_eq!(run.stats().series_merged, 3);
        run.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_series_of_another_kind_with_the_same_graphite_path_is_not_sent_and_is_counted() {
    let run = Run::start(|e| ExporterBuilder::graphite(e).with_percentiles([])).await;
    run.record(|| {
        metrics::counter!("p").increment(1);
        metrics::gauge!("p").set(2.0);
        metrics::histogram!("h").record(5.0);
        metrics::counter!("h.count").increment(4);
    });
    let ts = slot(1);
    assert_eq!(
        run.next().await,
        format!(
            "p 1 {ts}\nh.count 1 {ts}\nh.sum 5 {ts}\nh.min 5 {ts}\nh.max 5 {ts}\nh.mean 5 {ts}"
        )
    );
    let s = run.stats();
    assert_eq!((s.values_dropped_collision, s.series_merged), (2, 0));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn plain_statsd_keeps_a_counter_and_a_gauge_of_one_name_apart_as_etsy_does() {
    let run = Run::start(ExporterBuilder::statsd).await;
    run.record(|| {
        metrics::counter!("p").increment(1);
        metrics::gauge!("p").set(2.0);
    });
    assert_eq!(run.next().await, "p:1|c\np:2|g");
    assert_eq!(run.stats().values_dropped_collision, 0);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dogstatsd_sends_one_of_a_counter_and_a_gauge_the_agent_would_mix_up() {
    let run = Run::start(ExporterBuilder::dogstatsd).await;
    run.record(|| {
        metrics::counter!("p").increment(1);
        metrics::gauge!("p").set(2.0);
    });
    assert_eq!(run.next().await, "p:1|c");
    assert_eq!(run.stats().values_dropped_collision, 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_merged_line_expires_only_once_every_series_in_it_is_idle_and_unheld() {
    let run = Run::start(ExporterBuilder::statsd).await;
    run.record(|| metrics::counter!("a b").increment(1));
    let held = run.record(|| metrics::counter!("a_b"));
    held.increment(2);
    assert_eq!(run.next().await, "a_b:3|c");
    // Idle from 10 s, but `a_b` is held: nothing goes, and the line goes on as one.
    assert_eq!(run.ticks(4).await, Vec::<String>::new());
    assert_eq!(run.stats().series_expired, 0);
    held.increment(4);
    run.record(|| metrics::counter!("a b").increment(10));
    assert_eq!(run.next().await, "a_b:14|c");
    drop(held);
    // Idle from 60 s and unheld: both go at the scan at or after 90 s.
    let _ = run.ticks(5).await;
    let s = run.stats();
    assert_eq!((s.series_expired, s.series), (2, 0));
    run.record(|| {
        metrics::counter!("a_b").increment(1);
        metrics::counter!("a b").increment(1);
    });
    assert_eq!(run.next().await, "a_b:2|c");
    assert_eq!(
        run.stats().series_merged,
        2,
        "merged again once they came back"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn merged_timers_described_in_different_units_are_sent_in_one_unit() {
    use metrics::Unit;
    let run = Run::start(ExporterBuilder::statsd).await;
    run.record(|| {
        metrics::describe_histogram!("t b", Unit::Milliseconds, "");
        metrics::describe_histogram!("t_b", Unit::Microseconds, "");
        metrics::histogram!("t b").record(5.0);
        metrics::histogram!("t_b").record(2_500.0);
        metrics::histogram!("t.b").record(0.25);
    });
    // `t b` came first: `t_b`'s microseconds become its milliseconds; `t.b` renders apart.
    let got = run.next().await;
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["t.b:250|ms", "t_b:2.5|ms", "t_b:5|ms"]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_series_silenced_by_a_clash_takes_the_name_once_its_owner_expires() {
    let run = Run::start(|e| ExporterBuilder::graphite(e).with_counter_zeros(false)).await;
    run.record(|| metrics::counter!("q").increment(1));
    let (g1, g2) = run.record(|| (metrics::gauge!("q"), metrics::gauge!("q", "route" => "")));
    g1.set(2.0);
    g2.set(3.0);
    assert_eq!(run.next().await, format!("q 1 {}", slot(1)));
    assert_eq!(run.stats().values_dropped_collision, 2);
    // The counter, idle since 10 s and unheld, goes at the scan of 40 s: from then on the
    // gauges own `q`, as one merged line (the largest value set last: 3).
    let got = run.ticks(4).await;
    assert_eq!(got, [format!("q 3 {}", slot(5))]);
    let s = run.stats();
    assert_eq!((s.series_expired, s.series_merged), (1, 1), "{s:?}");
    g1.set(7.0);
    assert_eq!(run.next().await, format!("q 7 {}", slot(6)));
    // A counter `q` now comes second: it is the one not sent.
    run.record(|| metrics::counter!("q").increment(5));
    assert_eq!(run.next().await, format!("q 7 {}", slot(7)));
    assert_eq!(run.stats().values_dropped_collision, 3);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_finite_value_beats_an_infinite_one_when_merged_gauges_were_both_set() {
    let run = Run::start(ExporterBuilder::statsd).await;
    run.record(|| {
        metrics::gauge!("g a").set(f64::INFINITY);
        metrics::gauge!("g_a").set(5.0);
    });
    assert_eq!(run.next().await, "g_a:5|g");
    assert_eq!(run.stats().values_dropped_invalid, 0);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dogstatsd_keeps_a_counter_off_the_names_the_agent_gives_a_histograms_summary() {
    use crate::HistogramKind;
    let run = Run::start(|e| {
        ExporterBuilder::dogstatsd(e).with_histogram_kind_for("h.", HistogramKind::Histogram)
    })
    .await;
    run.record(|| {
        // `|h`: the Agent writes `h.x.count`, `h.x.avg`...; distributions stay sketches.
        metrics::histogram!("h.x").record(1.0);
        metrics::counter!("h.x.count").increment(1);
        metrics::histogram!("d").record(1.0);
        metrics::counter!("d.count").increment(1);
        metrics::counter!("e.count").increment(1);
        metrics::histogram!("e").record(1.0);
        // A histogram called `h.y.count` is a name of its own at the Agent, and so is a
        // counter `k.count` next to a counter `k`.
        metrics::histogram!("h.y.count").record(2.0);
        metrics::histogram!("h.y").record(1.0);
        metrics::counter!("k").increment(1);
        metrics::counter!("k.count").increment(2);
    });
    let got = run.next().await;
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "d.count:1|c",
            "d:1|d",
            "e.count:1|c",
            "e:1|d",
            "h.x:1|h",
            "h.y.count:2|h",
            "h.y:1|h",
            "k.count:2|c",
            "k:1|c"
        ]
    );
    assert_eq!(run.stats().values_dropped_collision, 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn plain_statsd_treats_an_h_histogram_and_a_counter_of_one_name_as_etsy_does() {
    use crate::HistogramKind;
    let run = Run::start(|e| {
        ExporterBuilder::statsd(e).with_histogram_kind_for("h", HistogramKind::Histogram)
    })
    .await;
    run.record(|| {
        // Etsy reads `|h` as a counter: `h` would be counted, not summarised.
        metrics::counter!("h").increment(1);
        metrics::histogram!("h").record(4.0);
        // Timers live apart from counters (`stats.timers.t`).
        metrics::counter!("t").increment(1);
        metrics::histogram!("t").record(0.004);
    });
    assert_eq!(run.next().await, "h:1|c\nt:1|c\nt:4|ms");
    assert_eq!(run.stats().values_dropped_collision, 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn merged_histograms_that_sampled_differently_are_thinned_to_one_rate() {
    let run = Run::start(|e| {
        ExporterBuilder::statsd(e)
            .with_histogram_max_samples(16)
            .with_default_histogram_unit(metrics::Unit::Milliseconds)
    })
    .await;
    run.record(|| {
        let sampled = metrics::histogram!("t a");
        for _ in 0..64 {
            sampled.record(1.0);
        }
        let whole = metrics::histogram!("t_a");
        for _ in 0..4 {
            whole.record(1000.0);
        }
    });
    let got = run.next().await;
    let lines: Vec<&str> = got.lines().collect();
    // 16 of 64 and 4 of 4 become 16 and 1: every kept sample stands for 4 recorded.
    assert_eq!(lines.len(), 17, "{got}");
    assert!(lines.iter().all(|l| l.ends_with("|ms|@0.25")), "{got}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("t_a:1000|")).count(),
        1
    );
    assert_eq!(run.stats().samples_sampled_out, 51);
    run.stop().await;
}
