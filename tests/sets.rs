//! Sets end to end over loopback sockets: `ExporterHandle::set` -> flusher -> exact lines (or
//! pickle points) received.

#[path = "support/graphite_parser.rs"]
mod graphite_parser;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/pickle_parser.rs"]
mod pickle_parser;

use std::time::{Duration, Instant};

use loopback::{TcpReceiver, UdpReceiver};
use metrics::{Key, Label};
use metrics_exporter_statsd_graphite::ExporterBuilder;

const QUIET: Duration = Duration::from_millis(300);
const MAX: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
    Key::from_parts(name, labels)
}

#[test]
fn a_set_sends_each_distinct_sanitised_member_once_per_interval_with_prefix_and_labels() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(HOUR)
        .with_prefix("app")
        .with_global_labels([("region", "eu")])
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let users = handle.set("users");
    let again = handle.set("users");
    for member in [
        "alice",
        "bob",
        "alice",
        "a:b",
        "a|b",
        "a\nb",
        "",
        "\u{e9}t\u{e9}",
    ] {
        users.insert(member);
    }
    again.insert("bob");
    let clone = users.clone();
    std::thread::spawn(move || clone.insert("carol"))
        .join()
        .unwrap();
    handle.flush().unwrap();
    let mut lines = rx.wait_for(MAX, |l| l.len() == 5);
    lines.sort();
    assert_eq!(
        lines,
        [
            "app.eu.users:a_b|s",
            "app.eu.users:alice|s",
            "app.eu.users:bob|s",
            "app.eu.users:carol|s",
            "app.eu.users:\u{e9}t\u{e9}|s",
        ]
    );
    let stats = handle.stats();
    assert_eq!(stats.values_dropped_invalid, 1, "the empty member");
    assert_eq!(stats.set_members_dropped, 0);
    // The next interval sends only what it records; an idle set sends nothing.
    users.insert("bob");
    handle.flush().unwrap();
    handle.flush().unwrap();
    let all = rx.drain(QUIET, MAX);
    assert_eq!(all[5..], ["app.eu.users:bob|s"], "{all:?}");
    drop(recorder);
}

#[test]
fn sets_rendering_alike_send_the_union_and_the_cap_refuses_and_counts() {
    let mut rx = UdpReceiver::new();
    let (_recorder, exporter) = ExporterBuilder::dogstatsd(rx.endpoint())
        .with_flush_interval(HOUR)
        .with_set_max_members(3)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    // Two keys whose tags sanitise alike: one wire identity, so one set.
    let a = handle.set(key("logins", &[("dc", "a b")]));
    let b = handle.set(key("logins", &[("dc", "a_b")]));
    a.insert("u1");
    b.insert("u1");
    b.insert("u2");
    let capped = handle.set("capped");
    for m in ["m1", "m2", "m3", "m4", "m5", "m4"] {
        capped.insert(m);
    }
    handle.flush().unwrap();
    let mut lines = rx.wait_for(MAX, |l| l.len() == 5);
    lines.sort();
    assert_eq!(
        lines,
        [
            "capped:m1|s",
            "capped:m2|s",
            "capped:m3|s",
            "logins:u1|s|#dc:a_b",
            "logins:u2|s|#dc:a_b",
        ]
    );
    let stats = handle.stats();
    assert_eq!(stats.set_members_dropped, 2, "m4 and m5, each once");
    assert_eq!(stats.series_merged, 1);
}

#[test]
fn a_set_and_a_gauge_of_one_datadog_context_clash_and_the_second_is_counted() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::dogstatsd(rx.endpoint())
        .with_flush_interval(HOUR)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || metrics::gauge!("active").set(3.0));
    handle.flush().unwrap();
    let active = handle.set("active");
    active.insert("a");
    active.insert("b");
    metrics::with_local_recorder(&recorder, || metrics::gauge!("active").set(4.0));
    handle.flush().unwrap();
    assert_eq!(rx.drain(QUIET, MAX), ["active:3|g", "active:4|g"]);
    assert_eq!(handle.stats().values_dropped_collision, 2);
}

#[test]
fn graphite_sends_the_distinct_count_as_a_gauge_in_plaintext_and_pickle() {
    let mut rx = UdpReceiver::new();
    let (_recorder, exporter) = ExporterBuilder::graphite(rx.endpoint())
        .with_flush_interval(HOUR)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let users = handle.set(key("users", &[("dc", "x")]));
    for m in ["a", "b", "a", "c:d", "c|d"] {
        users.insert(m);
    }
    handle.flush().unwrap();
    let lines = rx.wait_for(MAX, |l| !l.is_empty());
    assert_eq!(lines.len(), 1);
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[..2], ["users;dc=x", "3"]);

    let tcp = TcpReceiver::new();
    let (_recorder, exporter) = ExporterBuilder::graphite_pickle(tcp.endpoint())
        .with_flush_interval(HOUR)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let users = guard.handle().set("users");
    users.insert("a");
    users.insert("b");
    guard.handle().flush().unwrap();
    let start = Instant::now();
    let points = loop {
        let raw = tcp.raw();
        if let Ok(frames) = pickle_parser::split_frames(&raw) {
            let points: Vec<pickle_parser::Point> = frames
                .iter()
                .flat_map(|f| pickle_parser::parse_frame(f).unwrap())
                .collect();
            if !points.is_empty() {
                break points;
            }
        }
        assert!(start.elapsed() < MAX, "no pickle frame arrived");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].path.as_str(), points[0].value), ("users", 2.0));
}
