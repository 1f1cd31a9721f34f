//! The receiver side of the direct StatsD client's real-receiver tests (issue 13, "Tests:
//! Real receivers"): what Etsy statsd 0.9.0 (its graphite backend into a real carbon-cache,
//! read back from the whisper files) and collectd 5.12's statsd plugin (read back from its
//! CSV files) STORE for the client's calls: sets, signed counters, gauge deltas and
//! client-side sampling.
//!
//! Every test describes the client calls it makes as a list of [`Call`]s and hands them to
//! [`send`], the one place that sends: a `StatsdClient` over UDP, flushed once, so the calls
//! are packed into full datagrams as the client packs them, and the client's own sampling
//! decides what is kept (its `samples_sampled_out` is what the sampling tests scale by).
//!
//! What the receivers do on their own, so that their loss or quirk is never counted as ours:
//! - Etsy statsd drops its current interval on SIGTERM (it does not flush on exit): every
//!   test reads back while it runs and stops it only afterwards.
//! - Etsy flushes every second and stamps a flush with its rounded wall-clock second, so two
//!   flushes can get the same stamp, and carbon keeps the last write per (path, second): the
//!   sum in carbon is then short, through no fault of ours. So each Etsy test checks two
//!   things: Etsy's own flushed aggregates (printed by the harness backend) against what the
//!   calls mean, and carbon's whisper points against Etsy's flushes, last per second.
//! - Etsy (with this harness's `deleteIdleStats`, hence `gaugesMaxTTL` 1) deletes a gauge
//!   right after the flush it was set in, and treats `+3|g` on a gauge it does not hold, or
//!   holds at exactly 0 (`if (gauges[key] && ...)`), as the absolute value 3. The
//!   client flushes a gauge and its deltas in one datagram, handled whole between two Etsy
//!   flushes; deltas sent in a later interval than their base are Etsy's to misread.
//! - collectd writes every interval (`Interval 1`), six decimals; counters are a running
//!   total (`derive-NAME`) of deltas rounded to integers with the residual carried
//!   (`nearbyint`), gauges keep their last value and are written every interval, a set is
//!   its distinct members per interval (`objects-NAME`, `DeleteSets true`). Its parser takes
//!   a leading `+`/`-` on a gauge as a delta always (even at 0), and reads a counter's value
//!   with `strtod`, so `-3|c` is a counter delta of -3 (checked below).
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer or a binary fraction, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]
#![allow(
    clippy::print_stderr,
    reason = "the stored-vs-sent figures are printed for the report"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;
#[path = "fidelity_support/whisper.rs"]
mod whisper;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon};
use receivers::{Collectd, EtsyStatsd, StatsdFlush, require_collectd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// One call on the `StatsdClient`, every one with `CallOpts::default()` except for
/// the sample rate given.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `client.count(name, n, ..)`: `name:n|c`.
    Count(&'static str, i64),
    /// `client.incr(name, ..)`: `name:1|c`.
    Incr(&'static str),
    /// `client.decr(name, ..)`: `name:-1|c`.
    Decr(&'static str),
    /// `client.count(name, n, CallOpts::default().sample_rate(rate))`: sampled client-side,
    /// each kept call sent as `name:n|c|@rate`.
    CountSampled(&'static str, i64, f64),
    /// `client.gauge(name, v, ..)`: `name:v|g`; a negative value as Etsy's pair `name:0|g`,
    /// `name:v|g`, in that order, in one datagram.
    Gauge(&'static str, f64),
    /// `client.gauge_delta(name, d, ..)`: `name:+d|g` or `name:-d|g`.
    GaugeDelta(&'static str, f64),
    /// `client.timing_ms(name, ms, CallOpts::default().sample_rate(rate))`: sampled
    /// client-side, each kept call sent as `name:ms|ms|@rate` (no `|@` at rate 1).
    TimingMs(&'static str, f64, f64),
    /// `client.set(name, member, ..)`: `name:member|s`.
    Set(&'static str, &'static str),
}

/// What a send reports back: how many calls client-side sampling left out.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    sampled_out: u64,
}

/// The one place that sends: the calls on a `StatsdClient` built for `addr`, flushed and
/// closed; returns what the client sampled out.
fn send(addr: SocketAddr, calls: &[Call]) -> Sent {
    use metrics_exporter_statsd_graphite::{CallOpts, ExporterBuilder};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = ExporterBuilder::statsd(format!("udp://{addr}"))
            .build_statsd_client()
            .expect("builds");
        let rated = |rate: f64| CallOpts::default().sample_rate(rate);
        for call in calls {
            let _ = match *call {
                Call::Count(name, n) => client.count(name, n, CallOpts::default()),
                Call::Incr(name) => client.incr(name, CallOpts::default()),
                Call::Decr(name) => client.decr(name, CallOpts::default()),
                Call::CountSampled(name, n, rate) => client.count(name, n, rated(rate)),
                Call::Gauge(name, v) => client.gauge(name, v, CallOpts::default()),
                Call::GaugeDelta(name, d) => client.gauge_delta(name, d, CallOpts::default()),
                Call::TimingMs(name, ms, rate) => client.timing_ms(name, ms, rated(rate)),
                Call::Set(name, member) => client.set(name, member, CallOpts::default()),
            };
        }
        client.flush().await.expect("flush");
        let stats = client.close().await.expect("close");
        Sent {
            sampled_out: stats.samples_sampled_out,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Etsy statsd -> carbon

/// Etsy statsd with its graphite backend into a fresh carbon, or `None` (test skipped) when
/// either is missing locally.
fn etsy_into_carbon() -> Option<(Carbon, EtsyStatsd)> {
    let have_statsd = require_etsy_statsd();
    let have_carbon = require_carbon();
    if !(have_statsd && have_carbon) {
        return None;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    Some((carbon, statsd))
}

/// One statistic Etsy flushes and carbon stores: how to read it from a flush, its carbon
/// series, and what the calls mean it must total (or, for a gauge, be).
struct Stat {
    series: String,
    read: fn(&StatsdFlush, &str) -> Option<f64>,
    key: &'static str,
    want: f64,
    /// Summed over flushes (counters, timer counts, set sizes) or the last value (gauges).
    summed: bool,
}

fn counter(key: &'static str, want: f64) -> Stat {
    Stat {
        series: format!("statsd.counters.{key}.count"),
        read: |f, k| f.counters.get(k).copied(),
        key,
        want,
        summed: true,
    }
}

fn gauge(key: &'static str, want: f64) -> Stat {
    Stat {
        series: format!("statsd.gauges.{key}"),
        read: |f, k| f.gauges.get(k).copied(),
        key,
        want,
        summed: false,
    }
}

fn set_size(key: &'static str, want: f64) -> Stat {
    Stat {
        series: format!("statsd.sets.{key}.count"),
        #[allow(clippy::cast_precision_loss, reason = "a small member count")]
        read: |f, k| f.sets.get(k).map(|m| m.len() as f64),
        key,
        want,
        summed: true,
    }
}

fn timer_count(key: &'static str, want: f64) -> Stat {
    Stat {
        series: format!("statsd.timers.{key}.count"),
        read: |f, k| f.timer_counts.get(k).copied(),
        key,
        want,
        summed: true,
    }
}

impl Stat {
    /// Etsy's flushes of this statistic, as carbon should hold them: `(stamp, value)`, the
    /// last flush per stamp.
    fn flushed(&self, statsd: &EtsyStatsd) -> BTreeMap<u64, f64> {
        statsd
            .flushes()
            .iter()
            .filter_map(|f| Some((f.timestamp, (self.read)(f, self.key)?)))
            .collect()
    }

    /// What Etsy made of the calls: the sum over its flushes, or the last value.
    fn etsy_value(&self, statsd: &EtsyStatsd) -> Option<f64> {
        let values: Vec<f64> = statsd
            .flushes()
            .iter()
            .filter_map(|f| (self.read)(f, self.key))
            .collect();
        if self.summed {
            (!values.is_empty()).then(|| values.iter().sum())
        } else {
            values.last().copied()
        }
    }

    fn stored(&self, carbon: &Carbon) -> BTreeMap<u64, f64> {
        whisper::points(&carbon.wsp_path(&self.series))
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    fn settled(&self, carbon: &Carbon, statsd: &EtsyStatsd) -> bool {
        self.etsy_value(statsd) == Some(self.want) && self.stored(carbon) == self.flushed(statsd)
    }
}

/// Waits until every statistic is settled (then one more Etsy flush and carbon write, so
/// anything late shows), and checks: Etsy's aggregate is what the calls mean, carbon stores
/// exactly Etsy's flushes, Etsy and carbon rejected nothing. Prints the figures under `what`.
fn check_etsy(carbon: &Carbon, statsd: &EtsyStatsd, stats: &[Stat], what: &str) {
    let deadline = Instant::now() + WAIT;
    while !stats.iter().all(|s| s.settled(carbon, statsd)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let context = || {
        format!(
            "Etsy received {:#?}\ncarbon series {:#?}",
            statsd.received_lines(),
            carbon.series()
        )
    };
    for s in stats {
        let stored = s.stored(carbon);
        eprintln!(
            "FIGURES direct-client {what} Etsy->carbon: {}: want {}, Etsy {:?}, carbon {:?} (sum {})",
            s.series,
            s.want,
            s.etsy_value(statsd),
            stored,
            stored.values().sum::<f64>()
        );
        assert_eq!(
            s.etsy_value(statsd),
            Some(s.want),
            "{}: Etsy's aggregate; {}",
            s.series,
            context()
        );
        assert_eq!(
            stored,
            s.flushed(statsd),
            "{}: carbon holds Etsy's flushes; {}",
            s.series,
            context()
        );
    }
    assert_eq!(statsd.bad_lines(), Vec::<String>::new(), "{}", context());
    assert_eq!(carbon.log_errors(), Vec::<String>::new(), "{}", context());
}

#[test]
fn etsy_stores_a_sets_distinct_member_count_in_carbon() {
    let Some((carbon, statsd)) = etsy_into_carbon() else {
        return;
    };
    let calls = [
        Call::Set("dc.users", "alice"),
        Call::Set("dc.users", "bob"),
        Call::Set("dc.users", "alice"),
        Call::Set("dc.users", "carol"),
        Call::Set("dc.users", "bob"),
        Call::Set("dc.one", "x"),
    ];
    send(statsd.udp_addr(), &calls);
    check_etsy(
        &carbon,
        &statsd,
        &[set_size("dc.users", 3.0), set_size("dc.one", 1.0)],
        "sets",
    );
}

#[test]
fn etsy_stores_the_sum_of_signed_counter_deltas_in_carbon() {
    let Some((carbon, statsd)) = etsy_into_carbon() else {
        return;
    };
    let calls = [
        Call::Count("dc.jobs", -3),
        Call::Incr("dc.jobs"),
        Call::Incr("dc.jobs"),
        Call::Decr("dc.jobs"),
        Call::Count("dc.jobs", 10),
        Call::Count("dc.debt", -5),
        Call::Decr("dc.debt"),
        Call::Count("dc.debt", -1),
    ];
    send(statsd.udp_addr(), &calls);
    check_etsy(
        &carbon,
        &statsd,
        &[counter("dc.jobs", 8.0), counter("dc.debt", -7.0)],
        "signed counters",
    );
}

#[test]
fn etsy_applies_gauge_deltas_to_the_absolute_value_and_stores_the_result_in_carbon() {
    let Some((carbon, statsd)) = etsy_into_carbon() else {
        return;
    };
    let calls = [
        Call::Gauge("dc.queue", 12.0),
        Call::GaugeDelta("dc.queue", 3.0),
        Call::GaugeDelta("dc.queue", -5.0),
        // A negative absolute value over a positive one: Etsy's pair `0|g` then `-4|g` (a
        // lone `-4|g` would be a delta: 2 - 4).
        Call::Gauge("dc.temp", 2.0),
        Call::Gauge("dc.temp", -4.0),
        // Deltas on a negative gauge (non-zero, so Etsy applies them).
        Call::GaugeDelta("dc.temp", -1.5),
        Call::GaugeDelta("dc.temp", 0.25),
    ];
    send(statsd.udp_addr(), &calls);
    check_etsy(
        &carbon,
        &statsd,
        &[gauge("dc.queue", 10.0), gauge("dc.temp", -5.25)],
        "gauge deltas",
    );
}

/// Calls per sampled metric, and the sample rate.
const SAMPLED_CALLS: u32 = 2000;
const RATE: f64 = 0.25;

/// Six standard deviations of the estimate `kept / rate` of `n` calls each kept with
/// probability `rate` (binomial): a correct client fails this about once in 10^9 runs.
fn binomial_bound(n: f64, rate: f64) -> f64 {
    6.0 * (n * (1.0 - rate) / rate).sqrt()
}

#[test]
fn etsy_scales_client_side_sampled_counts_back_to_the_number_of_calls() {
    let Some((carbon, statsd)) = etsy_into_carbon() else {
        return;
    };
    let timings: Vec<Call> = (0..SAMPLED_CALLS)
        .map(|_| Call::TimingMs("dc.db", 12.5, RATE))
        .collect();
    let counts: Vec<Call> = (0..SAMPLED_CALLS)
        .map(|_| Call::CountSampled("dc.hits", 1, RATE))
        .collect();
    let timing = send(statsd.udp_addr(), &timings);
    let count = send(statsd.udp_addr(), &counts);
    let n = f64::from(SAMPLED_CALLS);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let kept = |s: Sent| n - s.sampled_out as f64;
    let (timing_kept, count_kept) = (kept(timing), kept(count));
    let bound = binomial_bound(n, RATE);
    for (name, k) in [("timer", timing_kept), ("counter", count_kept)] {
        eprintln!(
            "FIGURES direct-client sampling: {name}: {SAMPLED_CALLS} calls at @{RATE}: {k} sent, Etsy's estimate {} (bound ±{bound:.0})",
            k / RATE
        );
        assert!(
            (k / RATE - n).abs() <= bound,
            "{name}: {k} of {n} kept at rate {RATE}: outside the binomial bound ±{bound}"
        );
    }
    // Exactly kept / rate: every sent line arrived and was scaled by 1 / 0.25 = 4, exactly.
    check_etsy(
        &carbon,
        &statsd,
        &[
            timer_count("dc.db", timing_kept / RATE),
            counter("dc.hits", count_kept / RATE),
        ],
        "sampling",
    );
    let samples = statsd.timer_values("dc.db");
    #[allow(clippy::cast_precision_loss, reason = "a small count")]
    let received = samples.len() as f64;
    assert_eq!(received, timing_kept, "every kept timing arrived once");
    assert!(samples.iter().all(|v| *v == 12.5), "{samples:?}");
}

// ---------------------------------------------------------------------------------------------
// collectd

fn collectd() -> Option<Collectd> {
    require_collectd().then(|| Collectd::start().expect("collectd starts"))
}

/// Polls until `done` holds on collectd's CSV files, then two more intervals so a late or
/// second value shows; asserts collectd parsed every line.
fn settle_collectd(collectd: &Collectd, done: impl Fn(&Collectd) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(collectd) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        collectd.unparsed_lines(),
        Vec::<String>::new(),
        "{}",
        collectd.log()
    );
    assert_eq!(
        collectd.parse_errors(),
        Vec::<String>::new(),
        "{}",
        collectd.log()
    );
}

#[test]
fn collectd_stores_a_sets_distinct_member_count() {
    let Some(collectd) = collectd() else { return };
    send(
        collectd.udp_addr(),
        &[
            Call::Set("dc.users", "alice"),
            Call::Set("dc.users", "bob"),
            Call::Set("dc.users", "alice"),
            Call::Set("dc.users", "carol"),
        ],
    );
    settle_collectd(&collectd, |c| !c.set_values("dc.users").is_empty());
    let values = collectd.set_values("dc.users");
    eprintln!("FIGURES direct-client collectd set dc.users: {values:?}");
    // One datagram, one interval: 3 distinct members; later intervals (DeleteSets) none,
    // or 0 for the interval right after.
    assert_eq!(
        values.iter().copied().fold(0.0, f64::max),
        3.0,
        "{values:?}"
    );
    assert!(values.iter().all(|v| *v == 3.0 || *v == 0.0), "{values:?}");
    assert_eq!(
        values.iter().filter(|v| **v == 3.0).count(),
        1,
        "{values:?}"
    );
}

#[test]
fn collectd_applies_gauge_deltas_to_the_absolute_value() {
    let Some(collectd) = collectd() else { return };
    send(
        collectd.udp_addr(),
        &[
            Call::Gauge("dc.queue", 12.0),
            Call::GaugeDelta("dc.queue", 3.0),
            Call::GaugeDelta("dc.queue", -5.0),
            Call::Gauge("dc.temp", 2.0),
            Call::Gauge("dc.temp", -4.0),
            Call::GaugeDelta("dc.temp", -1.5),
            Call::GaugeDelta("dc.temp", 0.25),
        ],
    );
    settle_collectd(&collectd, |c| {
        !c.gauge_values("dc.queue").is_empty() && !c.gauge_values("dc.temp").is_empty()
    });
    for (name, want) in [("dc.queue", 10.0), ("dc.temp", -5.25)] {
        let values = collectd.gauge_values(name);
        eprintln!("FIGURES direct-client collectd gauge {name}: {values:?}");
        // Every interval writes the gauge's value: only ever the final one.
        assert!(
            !values.is_empty() && values.iter().all(|v| *v == want),
            "{name}: {values:?}"
        );
    }
}

#[test]
fn collectd_reads_a_negative_counter_as_a_negative_delta_of_its_running_total() {
    let Some(collectd) = collectd() else { return };
    send(
        collectd.udp_addr(),
        &[
            Call::Count("dc.jobs", -3),
            Call::Incr("dc.jobs"),
            Call::Incr("dc.jobs"),
            Call::Decr("dc.jobs"),
            Call::Count("dc.jobs", 10),
            Call::Count("dc.debt", -5),
            Call::Decr("dc.debt"),
            Call::Count("dc.debt", -1),
        ],
    );
    settle_collectd(&collectd, |c| {
        !c.counter_values("dc.jobs").is_empty() && !c.counter_values("dc.debt").is_empty()
    });
    for (name, want) in [("dc.jobs", 8.0), ("dc.debt", -7.0)] {
        let values = collectd.counter_values(name);
        eprintln!("FIGURES direct-client collectd counter {name}: {values:?}");
        // A running total: one datagram, so every interval writes the final total.
        assert!(
            !values.is_empty() && values.iter().all(|v| *v == want),
            "{name}: {values:?}"
        );
    }
}
