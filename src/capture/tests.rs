//! Captures over the real flusher: the framing of each transport, the decoding of each wire
//! form, sets, telemetry and statistics. tests/capture.rs compares captures with what real
//! sockets deliver.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::ExporterBuilder;
use crate::encode::PickleWire;

fn lines(flushed: &Flushed) -> Vec<&str> {
    flushed.lines().iter().map(String::as_str).collect()
}

#[test]
fn datagram_and_stream_payloads_decode_to_their_lines() {
    let datagram = Flushed::new(
        vec![b"a:1|c\nb:2|g".to_vec(), b"c:3|c".to_vec()],
        Wire::Datagram,
    );
    assert_eq!(lines(&datagram), ["a:1|c", "b:2|g", "c:3|c"]);
    let stream = Flushed::new(vec![b"a 1 10\nb 2 10\n".to_vec()], Wire::Stream);
    assert_eq!(lines(&stream), ["a 1 10", "b 2 10"]);
    assert!(Flushed::new(Vec::new(), Wire::Stream).is_empty());
}

#[test]
fn length_prefixed_frames_decode_to_their_lines() {
    let mut payload = Vec::new();
    for body in [&b"a:1|c\nb:2|c"[..], b"c:3|g"] {
        payload.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        payload.extend_from_slice(body);
    }
    let flushed = Flushed::new(vec![payload], Wire::LengthPrefixed);
    assert_eq!(lines(&flushed), ["a:1|c", "b:2|c", "c:3|g"]);
}

#[test]
fn pickle_frames_decode_to_the_plaintext_lines_they_were_made_from() {
    let plaintext =
        "app.jobs 3 1700000000\napp.latency 0.25 1700000000\napp.big 1e300 4000000000\n";
    let mut wire = PickleWire::new(64);
    let frames = wire.encode(plaintext.as_bytes()).to_vec();
    // Small frames: the three points need more than one.
    assert!(frames.len() > 64 + 4);
    let flushed = Flushed::new(vec![frames], Wire::Pickle);
    assert_eq!(
        lines(&flushed),
        [
            "app.jobs 3 1700000000",
            "app.latency 0.25 1700000000",
            "app.big 1e300 4000000000"
        ]
    );
}

#[test]
fn a_frame_that_is_not_a_list_of_points_says_so() {
    let mut payload = 3u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"xyz");
    let flushed = Flushed::new(vec![payload], Wire::Pickle);
    assert_eq!(lines(&flushed), ["<not a pickle list of points>"]);
}

#[test]
fn a_dogstatsd_capture_over_a_unix_stream_frames_each_payload_with_its_length() {
    let (recorder, mut capture) = ExporterBuilder::dogstatsd("unix:///nonexistent/dsd.socket")
        .build_capture()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("hits").increment(4);
        metrics::gauge!("temp").set(21.5);
    });
    let flushed = capture.flush();
    let body = b"hits:4|c\ntemp:21.5|g";
    let mut expected = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    expected.extend_from_slice(body);
    assert_eq!(flushed.payloads(), [expected]);
    assert_eq!(lines(&flushed), ["hits:4|c", "temp:21.5|g"]);
}

#[test]
fn a_graphite_tcp_capture_keeps_each_line_s_newline_on_the_wire() {
    let (recorder, mut capture) = ExporterBuilder::graphite("tcp://graphite.invalid:2003")
        .build_capture()
        .unwrap();
    metrics::with_local_recorder(&recorder, || metrics::gauge!("g").set(2.0));
    let flushed = capture.flush_at(UNIX_EPOCH + Duration::from_secs(1_000));
    assert_eq!(flushed.payloads(), [b"g 2 1000\n".to_vec()]);
}

#[test]
fn a_set_registered_on_the_capture_sends_its_members_once_per_interval() {
    let (_recorder, mut capture) = ExporterBuilder::statsd("127.0.0.1:8125")
        .build_capture()
        .unwrap();
    let users = capture.set("users");
    users.insert("alice");
    users.insert("alice");
    users.insert("bob");
    let mut first = lines(&capture.flush())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    first.sort();
    assert_eq!(first, ["users:alice|s", "users:bob|s"]);
    assert!(
        capture.flush().is_empty(),
        "a set sends only its interval's members"
    );
}

#[test]
fn telemetry_follows_the_user_s_lines_and_stats_count_what_was_captured() {
    let (recorder, mut capture) = ExporterBuilder::statsd("127.0.0.1:8125")
        .with_telemetry(true)
        .build_capture()
        .unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("jobs").increment(1));
    let flushed = capture.flush();
    assert_eq!(flushed.lines()[0], "jobs:1|c");
    assert!(
        flushed.lines()[1..]
            .iter()
            .all(|l| l.starts_with("metrics_exporter.")),
        "{:?}",
        flushed.lines()
    );
    assert!(flushed.lines().len() > 1);
    let stats = capture.stats();
    assert_eq!(stats.lines_sent, 1);
    assert_eq!(stats.flushes, 1);
    assert_eq!(
        stats.telemetry_lines_sent,
        (flushed.lines().len() - 1) as u64
    );
}

#[test]
fn a_capture_flushes_inside_a_tokio_runtime_too() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (recorder, mut capture) = ExporterBuilder::statsd("127.0.0.1:8125")
        .build_capture()
        .unwrap();
    runtime.block_on(async {
        metrics::with_local_recorder(&recorder, || metrics::counter!("in_rt").increment(2));
        assert_eq!(lines(&capture.flush()), ["in_rt:2|c"]);
    });
}

#[test]
fn bytes_sent_counts_the_captured_bytes_for_every_framing() {
    let builders = [
        ExporterBuilder::statsd("udp://statsd.invalid:8125"),
        ExporterBuilder::statsd("tcp://statsd.invalid:8125"),
        ExporterBuilder::dogstatsd("unix:///nonexistent/dsd.socket"),
        ExporterBuilder::graphite_pickle("graphite.invalid:2004"),
    ];
    for builder in builders {
        let (recorder, mut capture) = builder.build_capture().unwrap();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("a").increment(1);
            metrics::gauge!("b").set(2.0);
        });
        let flushed = capture.flush();
        let on_wire: usize = flushed.payloads().iter().map(Vec::len).sum();
        assert_eq!(capture.stats().bytes_sent, on_wire as u64);
        assert_eq!(flushed.lines().len(), 2);
    }
}

#[test]
fn a_stream_capture_keeps_nothing_unconfirmed_across_flushes() {
    let (recorder, mut capture) = ExporterBuilder::graphite("tcp://graphite.invalid:2003")
        .build_capture()
        .unwrap();
    let gauge = metrics::with_local_recorder(&recorder, || metrics::gauge!("g"));
    gauge.set(1.0);
    let mut last = 0;
    for _ in 0..50 {
        last = capture.flush().payloads()[0].len();
    }
    let ledger = capture.stepped().flusher().delivery().ledger();
    // At most the last payload awaits its verdict; earlier ones were delivered.
    assert!(
        ledger.queued.len() <= last,
        "{} queued bytes",
        ledger.queued.len()
    );
    assert_eq!(capture.stats().lines_possibly_lost, 0);
}

#[test]
fn flush_at_stamps_dogstatsd_timestamps_too() {
    let (recorder, mut capture) = ExporterBuilder::dogstatsd("dsd.invalid:8125")
        .with_timestamps(true)
        .build_capture()
        .unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("c").increment(1));
    let flushed = capture.flush_at(UNIX_EPOCH + Duration::from_secs(1_700_000_123));
    assert_eq!(lines(&flushed), ["c:1|c|T1700000123"]);
}
