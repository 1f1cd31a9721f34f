//! Sets from `ExporterHandle::set` as real receivers store them: Etsy statsd 0.9.0 (its flushed
//! output, read back through the harness's line-printing backend), collectd 5.12's statsd
//! plugin (its CSV files, series `objects-NAME`) and, for Graphite's distinct count, carbon
//! (its whisper files, over plaintext and pickle). Each must store exactly the distinct members
//! we recorded, once sanitised, hostile ones included (`:` and `|`, which would split the
//! value or start a field, newlines, Unicode, a long member, members equal once sanitised),
//! and reject no line. An empty member is refused by the exporter (counted), and a member too
//! long for one datagram is dropped and counted: neither reaches a receiver.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "collectd's counts are small integers, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::print_stderr,
    reason = "the stored-vs-recorded figures are printed for the report"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeSet;
use std::time::Duration;

use carbon::{Carbon, require_carbon};
use metrics::{Key, Label};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterStats, LabelHandling};
use receivers::{Collectd, EtsyStatsd, require_collectd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// A protocol's builder constructor.
type Protocol = fn(String) -> ExporterBuilder;

/// What we record (with repeats), and the distinct members a receiver must store: written out
/// by hand, not computed by the exporter's sanitiser.
fn corpus() -> (Vec<String>, BTreeSet<String>) {
    let long = "L".repeat(1000);
    let too_long = "T".repeat(2000);
    let recorded: Vec<String> = [
        "alice",
        "bob",
        "alice",
        "a:b",
        "a|b",
        "a\nb",
        "a_b",
        "",
        "\u{e9}t\u{e9} \u{1f600}",
        "#tag,@rate",
        "x:1|c",
        long.as_str(),
        long.as_str(),
        too_long.as_str(),
    ]
    .map(str::to_owned)
    .into();
    let stored: BTreeSet<String> = [
        "alice",
        "bob",
        "a_b",
        "\u{e9}t\u{e9} \u{1f600}",
        "#tag,@rate",
        "x_1_c",
        long.as_str(),
    ]
    .map(str::to_owned)
    .into();
    (recorded, stored)
}

/// Records the corpus into set `key` through a plain StatsD exporter to `endpoint`, flushes
/// once and shuts down; returns the exporter's statistics.
fn send(endpoint: String, labels: LabelHandling, key: Key) -> ExporterStats {
    let (_recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_label_handling(labels)
        .build()
        .expect("exporter builds");
    let guard = exporter.start().expect("exporter starts");
    let set = guard.handle().set(key);
    for member in corpus().0 {
        set.insert(&member);
    }
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(stats.values_dropped_invalid, 1, "the empty member");
    assert_eq!(stats.lines_dropped_too_long, 1, "the 2000-byte member");
    stats
}

#[test]
fn etsy_statsd_stores_exactly_the_distinct_sanitised_members_we_recorded() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    let endpoint = format!("udp://{}", statsd.udp_addr());
    let stored = corpus().1;
    let stats = send(
        endpoint.clone(),
        LabelHandling::FoldIntoName,
        Key::from_static_name("sets.users"),
    );
    // And with DogStatsD-style tags, which Etsy makes part of the key.
    send(
        endpoint,
        LabelHandling::DogStatsd,
        Key::from_parts("sets.tagged", vec![Label::new("region", "eu")]),
    );
    let done = statsd.wait_until(WAIT, |s| {
        s.set_members("sets.users").len() >= stored.len()
            && s.set_members("sets.tagged;region=eu").len() >= stored.len()
    });
    assert!(done, "{}", statsd.log());
    assert!(statsd.wait_for_next_flush(WAIT), "{}", statsd.log());
    assert_eq!(statsd.set_members("sets.users"), stored, "{}", statsd.log());
    assert_eq!(statsd.set_members("sets.tagged;region=eu"), stored);
    assert!(statsd.bad_lines().is_empty(), "{:?}", statsd.bad_lines());
    eprintln!(
        "etsy: {} distinct members stored of {} recorded distinct ({} lines sent)",
        stored.len(),
        corpus().0.iter().collect::<BTreeSet<_>>().len(),
        stats.lines_sent
    );
}

#[test]
fn collectd_counts_exactly_the_distinct_sanitised_members_we_recorded() {
    if !require_collectd() {
        return;
    }
    let collectd = Collectd::start().expect("collectd starts");
    let expected = f64::from(u32::try_from(corpus().1.len()).expect("a few members"));
    send(
        format!("udp://{}", collectd.udp_addr()),
        LabelHandling::FoldIntoName,
        Key::from_static_name("sets.users"),
    );
    // collectd counts each interval's distinct members (0 when idle). We send each member
    // once, so the counts add up to the distinct members, however its intervals fall.
    let total = |c: &Collectd| c.csv_values("objects-sets.users").iter().sum::<f64>();
    collectd.wait_until(WAIT, |c| total(c) >= expected);
    assert_eq!(total(&collectd), expected, "{}", collectd.log());
    assert!(collectd.parse_errors().is_empty(), "{}", collectd.log());
    eprintln!(
        "collectd: objects-sets.users rows {:?}",
        collectd.csv_values("objects-sets.users")
    );
}

#[test]
fn carbon_stores_the_distinct_count_of_a_set_over_plaintext_and_pickle() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    // Graphite sends no member lines, so the too-long member counts too; the empty one not.
    let expected = f64::from(u32::try_from(corpus().1.len() + 1).expect("a few members"));
    let protocols: [(&str, Protocol, String); 2] = [
        (
            "plain",
            ExporterBuilder::graphite,
            format!("tcp://{}", carbon.line_addr()),
        ),
        (
            "pickle",
            ExporterBuilder::graphite_pickle,
            carbon.pickle_addr().to_string(),
        ),
    ];
    for (name, protocol, endpoint) in protocols {
        let (_recorder, exporter) = protocol(endpoint)
            .with_flush_interval(Duration::from_secs(3600))
            .build()
            .expect("exporter builds");
        let guard = exporter.start().expect("exporter starts");
        let tags = vec![Label::new("proto", name)];
        let set = guard.handle().set(Key::from_parts("sets.users", tags));
        for member in corpus().0 {
            set.insert(&member);
        }
        guard.handle().flush().expect("flush");
        let stats = guard.shutdown().expect("shutdown");
        assert_eq!(stats.values_dropped_invalid, 1, "the empty member");
        let series = format!("sets.users;proto={name}");
        let points = carbon.wait_for_points(&series, WAIT, |p| !p.is_empty());
        assert_eq!(points.len(), 1, "{series}: {points:?}\n{}", carbon.log());
        assert_eq!(points[0].1, expected, "{series}");
        eprintln!("carbon: {series} stored {points:?}");
    }
    assert!(carbon.log_errors().is_empty(), "{:?}", carbon.log_errors());
}
