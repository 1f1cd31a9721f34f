//! Tests of the real-receiver harness itself (tests/support/receivers.rs), independent of this
//! crate's API: raw StatsD lines go to Etsy statsd and collectd over plain sockets and are read
//! back through the harness. Receivers are installed by `scripts/install-receivers.sh`; without
//! them these tests are skipped locally and fail under CI.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "the receivers' values here are exact: small integers and binary fractions"
)]

#[path = "support/receivers.rs"]
mod receivers;

use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use receivers::{Collectd, EtsyStatsd, send_tcp, send_udp};

/// Upper bound for any wait; only reached when something is wrong.
const WAIT: Duration = Duration::from_secs(10);

#[allow(
    clippy::expect_used,
    reason = "test helper: a failure here fails the test"
)]
fn start_statsd() -> Option<EtsyStatsd> {
    if !receivers::require_etsy_statsd() {
        return None;
    }
    Some(EtsyStatsd::start().expect("Etsy statsd starts"))
}

#[allow(
    clippy::expect_used,
    reason = "test helper: a failure here fails the test"
)]
fn start_collectd() -> Option<Collectd> {
    if !receivers::require_collectd() {
        return None;
    }
    Some(Collectd::start().expect("collectd starts"))
}

#[allow(
    clippy::expect_used,
    reason = "test helper: a failure here fails the test"
)]
/// Sends `lines` to statsd as one datagram each and waits for the flush that includes them.
fn send_and_flush(statsd: &EtsyStatsd, datagrams: &[&str], lines: &[&str]) {
    send_udp(statsd.udp_addr(), datagrams).expect("send to statsd");
    assert!(
        statsd.wait_for_lines_flushed(lines, WAIT),
        "statsd did not receive and flush {lines:?}\n{}",
        statsd.log()
    );
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str, log: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: expected {expected} ± {tolerance}, got {actual}\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Etsy statsd

#[test]
fn etsy_statsd_sums_counters_sent_over_udp() {
    let Some(statsd) = start_statsd() else { return };
    let lines = ["h.udp.sum:1|c", "h.udp.sum:2|c"];
    send_and_flush(&statsd, &lines, &lines);
    assert_eq!(
        statsd.received_lines(),
        lines,
        "received lines are exact and in order\n{}",
        statsd.log()
    );
    assert_eq!(statsd.counter_total("h.udp.sum"), 3.0, "{}", statsd.log());
    assert!(statsd.bad_lines().is_empty(), "{}", statsd.log());
}

#[test]
fn etsy_statsd_scales_counters_by_their_sample_rate() {
    let Some(statsd) = start_statsd() else { return };
    let lines = ["h.rate.c:1|c|@0.5", "h.rate.c:3|c|@0.25"];
    send_and_flush(&statsd, &lines, &lines);
    assert_eq!(
        statsd.counter_total("h.rate.c"),
        2.0 + 12.0,
        "{}",
        statsd.log()
    );
}

#[test]
fn etsy_statsd_keeps_the_last_gauge_and_applies_signed_values_as_deltas() {
    let Some(statsd) = start_statsd() else { return };
    send_and_flush(
        &statsd,
        &[
            "h.gauge.neg:0|g\nh.gauge.neg:-5|g",
            "h.gauge.delta:42|g\nh.gauge.delta:+3|g",
        ],
        &[
            "h.gauge.neg:0|g",
            "h.gauge.neg:-5|g",
            "h.gauge.delta:42|g",
            "h.gauge.delta:+3|g",
        ],
    );
    assert_eq!(statsd.gauge("h.gauge.neg"), Some(-5.0), "{}", statsd.log());
    assert_eq!(
        statsd.gauge("h.gauge.delta"),
        Some(45.0),
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.gauge("h.gauge.never.sent"), None);
}

#[test]
fn etsy_statsd_records_timer_values_and_counts_sampled_timers() {
    let Some(statsd) = start_statsd() else { return };
    let lines = ["h.timer:12.5|ms", "h.timer:10|ms|@0.25"];
    send_and_flush(&statsd, &lines, &lines);
    assert_eq!(
        statsd.timer_values("h.timer"),
        [10.0, 12.5],
        "{}",
        statsd.log()
    );
    assert_eq!(
        statsd.timer_count_total("h.timer"),
        1.0 + 4.0,
        "{}",
        statsd.log()
    );
}

#[test]
fn etsy_statsd_reads_back_more_than_a_hundred_timer_values() {
    // The console backend's dump shows at most 100 array items; the harness must not.
    let Some(statsd) = start_statsd() else { return };
    let lines: Vec<String> = (0..150).map(|i| format!("h.many:{i}|ms")).collect();
    let batch = lines.join("\n");
    let wanted: Vec<&str> = lines.iter().map(String::as_str).collect();
    send_and_flush(&statsd, &[&batch], &wanted);
    let mut values = statsd.timer_values("h.many");
    values.sort_by(f64::total_cmp);
    let expected: Vec<f64> = (0..150).map(f64::from).collect();
    assert_eq!(values, expected, "{}", statsd.log());
}

#[test]
fn etsy_statsd_accepts_newline_terminated_lines_over_tcp() {
    let Some(statsd) = start_statsd() else { return };
    // The last line has no '\n': statsd's TCP server keeps it buffered and drops it on close.
    send_tcp(
        statsd.tcp_addr(),
        "h.tcp.count:1|c\nh.tcp.count:2|c\nh.tcp.gauge:7|g\nh.tcp.count:100|c",
    )
    .expect("send to statsd over TCP");
    let lines = ["h.tcp.count:1|c", "h.tcp.count:2|c", "h.tcp.gauge:7|g"];
    assert!(
        statsd.wait_for_lines_flushed(&lines, WAIT),
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.received_lines(), lines, "{}", statsd.log());
    assert_eq!(statsd.counter_total("h.tcp.count"), 3.0, "{}", statsd.log());
    assert_eq!(statsd.gauge("h.tcp.gauge"), Some(7.0), "{}", statsd.log());
}

#[test]
fn etsy_statsd_reports_bad_lines_and_keeps_good_ones_of_the_same_datagram() {
    let Some(statsd) = start_statsd() else { return };
    send_and_flush(
        &statsd,
        &["h.bad:abc|c\nh.good:1|c"],
        &["h.bad:abc|c", "h.good:1|c"],
    );
    assert_eq!(
        statsd.bad_lines(),
        [r#"Bad line: abc,c in msg "h.bad:abc|c""#],
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.counter_total("h.good"), 1.0, "{}", statsd.log());
    assert_eq!(statsd.counter_total("h.bad"), 0.0, "{}", statsd.log());
    assert_eq!(
        statsd.counter_total("statsd.bad_lines_seen"),
        1.0,
        "{}",
        statsd.log()
    );
}

#[test]
fn etsy_statsd_turns_dogstatsd_tags_into_graphite_style_keys() {
    let Some(statsd) = start_statsd() else { return };
    let lines = [
        "h.tagged:1|c|#env:prod,host:a",
        "h.set:alice|s",
        "h.set:bob|s",
        "h.set:alice|s",
    ];
    send_and_flush(&statsd, &lines, &lines);
    assert_eq!(
        statsd.counter_total("h.tagged;env=prod;host=a"),
        1.0,
        "{}",
        statsd.log()
    );
    assert!(
        statsd.flushed_keys().contains("h.tagged;env=prod;host=a"),
        "{:?}",
        statsd.flushed_keys()
    );
    let members: Vec<String> = statsd.set_members("h.set").into_iter().collect();
    assert_eq!(members, ["alice", "bob"], "{}", statsd.log());
}

#[test]
fn etsy_statsd_wait_for_returns_the_lines_when_the_predicate_holds_or_times_out() {
    let Some(statsd) = start_statsd() else { return };
    send_udp(statsd.udp_addr(), &["h.wait:1|c"]).expect("send");
    let lines = statsd.wait_for(WAIT, |l| l.iter().any(|x| x == "h.wait:1|c"));
    assert_eq!(lines, ["h.wait:1|c"], "{}", statsd.log());
    let lines = statsd.wait_for(Duration::from_millis(200), |l| l.len() > 1);
    assert_eq!(lines, ["h.wait:1|c"], "timed out with what was there");
    let reply = statsd
        .mgmt_command("health")
        .expect("management port answers");
    assert!(reply.contains("health: up"), "{reply}");
}

#[test]
fn etsy_statsd_counts_newline_terminated_lines_sent_over_its_unix_stream_socket() {
    let Some(statsd) = start_statsd() else { return };
    let path = statsd.unix_stream_path();
    assert!(path.starts_with(statsd.dir()), "{}", path.display());
    let mut stream = UnixStream::connect(&path).expect("connect to statsd's unix stream socket");
    // Two writes, the second completing a line split across them; the unterminated last line
    // is dropped on close, as over TCP.
    stream.write_all(b"h.ux.count:1|c\nh.ux.co").expect("write");
    stream
        .write_all(b"unt:2|c\nh.ux.gauge:7|g\nh.ux.count:100|c")
        .expect("write");
    drop(stream);
    let lines = ["h.ux.count:1|c", "h.ux.count:2|c", "h.ux.gauge:7|g"];
    assert!(
        statsd.wait_for_lines_flushed(&lines, WAIT),
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.received_lines(), lines, "{}", statsd.log());
    assert_eq!(statsd.counter_total("h.ux.count"), 3.0, "{}", statsd.log());
    assert_eq!(statsd.gauge("h.ux.gauge"), Some(7.0), "{}", statsd.log());
}

#[test]
fn a_multi_line_datagram_through_the_unixgram_bridge_arrives_whole_and_separate_from_the_next() {
    let Some(statsd) = start_statsd() else { return };
    let path = statsd.unix_datagram_path();
    assert!(path.starts_with(statsd.dir()), "{}", path.display());
    let socket = UnixDatagram::unbound().expect("unbound unix datagram socket");
    // A datagram larger than socat's default 8 KiB buffer, then one that does not end in '\n':
    // if the bridge merged or split datagrams, "h.dg.last" would run into the line before it
    // or a line would be cut.
    let big: Vec<String> = (0..600).map(|i| format!("h.dg.big.{i:04}:1|c")).collect();
    let big_datagram = big.join("\n");
    assert!(big_datagram.len() > 8192, "{}", big_datagram.len());
    let datagrams = [
        "h.dg.a:1|c\nh.dg.b:2|c|#via:uds\nh.dg.c:3|ms",
        big_datagram.as_str(),
        "h.dg.last:4|c",
    ];
    for d in datagrams {
        let sent = socket
            .send_to(d.as_bytes(), &path)
            .expect("send to the bridge");
        assert_eq!(sent, d.len());
    }
    let mut lines = vec!["h.dg.a:1|c", "h.dg.b:2|c|#via:uds", "h.dg.c:3|ms"];
    lines.extend(big.iter().map(String::as_str));
    lines.push("h.dg.last:4|c");
    assert!(
        statsd.wait_for_lines_flushed(&lines, WAIT),
        "{}\n--- socat ---\n{}",
        statsd.log(),
        statsd.bridge_log()
    );
    assert_eq!(statsd.received_lines(), lines, "{}", statsd.log());
    assert!(statsd.bad_lines().is_empty(), "{}", statsd.log());
    assert_eq!(statsd.counter_total("h.dg.a"), 1.0, "{}", statsd.log());
    assert_eq!(
        statsd.counter_total("h.dg.b;via=uds"),
        2.0,
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.timer_values("h.dg.c"), [3.0], "{}", statsd.log());
    assert_eq!(
        statsd.counter_total("h.dg.big.0599"),
        1.0,
        "{}",
        statsd.log()
    );
    assert_eq!(statsd.counter_total("h.dg.last"), 4.0, "{}", statsd.log());
}

#[test]
fn after_a_restart_the_same_ports_and_socket_paths_work_and_totals_span_both_processes() {
    let Some(mut statsd) = start_statsd() else {
        return;
    };
    let (udp, tcp, mgmt) = (statsd.udp_addr(), statsd.tcp_addr(), statsd.mgmt_addr());
    let (stream_path, datagram_path) = (statsd.unix_stream_path(), statsd.unix_datagram_path());
    let (old_pid, old_bridge) = (statsd.pid(), statsd.bridge_pid());
    let dgram = UnixDatagram::unbound().expect("unbound unix datagram socket");

    // Before: one line by each transport. Only wait until received: statsd's final flush on
    // SIGTERM must carry them into the totals.
    send_udp(udp, &["h.rs.total:1|c"]).expect("udp");
    send_tcp(tcp, "h.rs.total:2|c\n").expect("tcp");
    UnixStream::connect(&stream_path)
        .and_then(|mut s| s.write_all(b"h.rs.total:4|c\n"))
        .expect("unix stream");
    dgram
        .send_to(b"h.rs.total:8|c", &datagram_path)
        .expect("unixgram");
    let before = [
        "h.rs.total:1|c",
        "h.rs.total:2|c",
        "h.rs.total:4|c",
        "h.rs.total:8|c",
    ];
    let got = statsd.wait_for(WAIT, |l| l.len() >= before.len());
    assert_eq!(got.len(), before.len(), "{}", statsd.log());

    let began = Instant::now();
    statsd.restart().expect("statsd restarts");
    let took = began.elapsed();
    assert!(took < WAIT, "restart took {took:?}");
    assert_ne!(statsd.pid(), old_pid, "a new statsd process");
    assert_ne!(statsd.bridge_pid(), old_bridge, "a new socat process");
    for pid in [old_pid, old_bridge] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "old process {pid} still exists"
        );
    }
    assert_eq!(
        (statsd.udp_addr(), statsd.tcp_addr(), statsd.mgmt_addr()),
        (udp, tcp, mgmt)
    );
    assert_eq!(
        (statsd.unix_stream_path(), statsd.unix_datagram_path()),
        (stream_path.clone(), datagram_path.clone())
    );

    // After: the same addresses again, through the same (unconnected) datagram socket.
    send_udp(udp, &["h.rs.total:16|c"]).expect("udp after restart");
    send_tcp(tcp, "h.rs.total:32|c\n").expect("tcp after restart");
    UnixStream::connect(&stream_path)
        .and_then(|mut s| s.write_all(b"h.rs.total:64|c\n"))
        .expect("unix stream after restart");
    dgram
        .send_to(b"h.rs.total:128|c", &datagram_path)
        .expect("unixgram after restart");
    let mut all = before.to_vec();
    all.extend([
        "h.rs.total:16|c",
        "h.rs.total:32|c",
        "h.rs.total:64|c",
        "h.rs.total:128|c",
    ]);
    assert!(
        statsd.wait_for_lines_flushed(&all, WAIT),
        "{}",
        statsd.log()
    );
    assert_eq!(
        statsd.counter_total("h.rs.total"),
        255.0,
        "{}",
        statsd.log()
    );
    let reply = statsd
        .mgmt_command("health")
        .expect("management port answers");
    assert!(reply.contains("health: up"), "{reply}");
    // The log still starts with the first process's start-up.
    assert_eq!(
        statsd.log().matches("server is up").count(),
        2,
        "{}",
        statsd.log()
    );
}

#[test]
fn dropping_etsy_statsd_stops_its_process_and_bridge_and_removes_its_temp_dir() {
    let Some(statsd) = start_statsd() else { return };
    let pids = [statsd.pid(), statsd.bridge_pid()];
    let dir = statsd.dir().to_owned();
    for pid in pids {
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }
    drop(statsd);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} (statsd or socat) still exists after drop"
        );
    }
    assert!(!dir.exists(), "temp dir {} was not removed", dir.display());
}

// ---------------------------------------------------------------------------------------------
// collectd

#[test]
fn collectd_sums_counters_sent_over_udp() {
    let Some(collectd) = start_collectd() else {
        return;
    };
    send_udp(
        collectd.udp_addr(),
        &["h.cd.count:1|c", "h.cd.count:2|c", "h.cd.count:1|c|@0.5"],
    )
    .expect("send to collectd");
    // derive-NAME is a running total: wait for it to reach the sum, then check it.
    collectd.wait_until(WAIT, |c| {
        c.counter_values("h.cd.count").last() == Some(&5.0)
    });
    assert_eq!(
        collectd.counter_values("h.cd.count").last(),
        Some(&5.0),
        "{}",
        collectd.log()
    );
    assert!(collectd.parse_errors().is_empty(), "{}", collectd.log());
}

#[test]
fn collectd_stores_gauges_and_signed_gauges_as_deltas() {
    let Some(collectd) = start_collectd() else {
        return;
    };
    send_udp(
        collectd.udp_addr(),
        &[
            "h.cd.gauge:42|g\nh.cd.gauge:+3|g",
            "h.cd.neg:0|g\nh.cd.neg:-5|g",
        ],
    )
    .expect("send to collectd");
    collectd.wait_until(WAIT, |c| {
        !c.gauge_values("h.cd.gauge").is_empty() && !c.gauge_values("h.cd.neg").is_empty()
    });
    assert_eq!(
        collectd.gauge_values("h.cd.gauge").last(),
        Some(&45.0),
        "{}",
        collectd.log()
    );
    assert_eq!(
        collectd.gauge_values("h.cd.neg").last(),
        Some(&-5.0),
        "{}",
        collectd.log()
    );
}

#[test]
fn collectd_stores_timers_in_seconds() {
    let Some(collectd) = start_collectd() else {
        return;
    };
    send_udp(
        collectd.udp_addr(),
        &["h.cd.slow:250|ms", "h.cd.fast:12.5|ms"],
    )
    .expect("send to collectd");
    let slow = collectd.wait_for_csv("latency-h.cd.slow-average", WAIT);
    let fast = collectd.wait_for_csv("latency-h.cd.fast-average", WAIT);
    let log = collectd.log();
    assert_close(
        slow.first().copied().unwrap_or(f64::NAN),
        0.25,
        1e-6,
        "slow average",
        &log,
    );
    // collectd keeps timers at 1 ms resolution: 12.5 ms is stored as 0.012 s.
    assert_close(
        fast.first().copied().unwrap_or(f64::NAN),
        0.0125,
        0.0011,
        "fast average",
        &log,
    );
    let upper = collectd.timer_values("h.cd.slow", "upper");
    assert_close(
        upper.first().copied().unwrap_or(f64::NAN),
        0.25,
        1e-6,
        "slow upper",
        &log,
    );
    assert_eq!(
        collectd.timer_count_values("h.cd.slow").first(),
        Some(&1.0),
        "{log}"
    );
}

#[test]
fn collectd_reports_dogstatsd_tags_as_parse_errors() {
    let Some(collectd) = start_collectd() else {
        return;
    };
    send_udp(
        collectd.udp_addr(),
        &["h.cd.tagged:1|c|#env:prod\nh.cd.plain:1|c"],
    )
    .expect("send to collectd");
    collectd.wait_until(WAIT, |c| {
        !c.parse_errors().is_empty() && !c.counter_values("h.cd.plain").is_empty()
    });
    let errors = collectd.parse_errors();
    assert_eq!(errors.len(), 1, "{}", collectd.log());
    assert!(
        errors[0].contains(r#"Unable to parse line: "h.cd.tagged:1|c|#env:prod""#),
        "{errors:?}"
    );
    assert_eq!(collectd.unparsed_lines(), ["h.cd.tagged:1|c|#env:prod"]);
    assert_eq!(collectd.counter_values("h.cd.plain").last(), Some(&1.0));
    assert!(
        !collectd.series().iter().any(|s| s.contains("tagged")),
        "{:?}",
        collectd.series()
    );
}

#[test]
fn dropping_collectd_stops_its_process_and_removes_its_temp_dir() {
    let Some(collectd) = start_collectd() else {
        return;
    };
    let pid = collectd.pid();
    let dir = collectd.dir().to_owned();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(collectd);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "collectd (pid {pid}) still exists after drop"
    );
    assert!(!dir.exists(), "temp dir {} was not removed", dir.display());
}

// ---------------------------------------------------------------------------------------------
// Parsing, without receivers

#[test]
fn statsd_log_lines_are_told_apart_from_console_dumps() {
    use receivers::debug_payload;
    assert_eq!(
        debug_payload("22 Nov 00:08:34 - DEBUG: x:1|c"),
        Some("x:1|c")
    );
    assert_eq!(
        debug_payload("2 Nov 00:08:34 - DEBUG: a - b:1|c\r"),
        Some("a - b:1|c\r")
    );
    assert_eq!(debug_payload("22 Nov 00:08:34 - server is up INFO"), None);
    assert_eq!(
        debug_payload("  sets: { s: [ '1 Nov 00:00:00 - DEBUG: x' ] },"),
        None
    );
    assert_eq!(
        debug_payload("Flushing stats at  Sun Nov 22 2026 00:08:35 GMT+0000"),
        None
    );
}

#[test]
fn statsd_flush_blocks_are_parsed_and_an_unfinished_one_is_ignored() {
    let log = "STATSD_HARNESS_FLUSH 100\n\
               STATSD_HARNESS counter a%3Bk%3Dv 1.5\n\
               STATSD_HARNESS gauge g -Infinity\n\
               STATSD_HARNESS timer t 1,2.5,1e+21\n\
               STATSD_HARNESS timer_count t 5\n\
               STATSD_HARNESS set s x,y%20z%C3%A9\n\
               STATSD_HARNESS timer empty \n\
               STATSD_HARNESS_END 100\n\
               STATSD_HARNESS_FLUSH 101\n\
               STATSD_HARNESS counter a 1\n";
    let flushes = receivers::parse_flushes(log);
    assert_eq!(flushes.len(), 1, "{flushes:?}");
    let f = &flushes[0];
    assert_eq!(f.timestamp, 100);
    assert_eq!(f.counters.get("a;k=v"), Some(&1.5));
    assert_eq!(f.gauges.get("g"), Some(&f64::NEG_INFINITY));
    assert_eq!(f.timers.get("t"), Some(&vec![1.0, 2.5, 1e21]));
    assert_eq!(f.timers.get("empty"), Some(&vec![]));
    assert_eq!(f.timer_counts.get("t"), Some(&5.0));
    assert_eq!(
        f.sets.get("s"),
        Some(&vec!["x".to_owned(), "y zé".to_owned()])
    );
}
