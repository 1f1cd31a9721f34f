//! Graphite over real TCP (and UDP, for the direct client) on loopback: exact plaintext
//! lines, and pickle frames decoded back with serde-pickle into the exact tuples.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: anything unexpected must fail the test loudly"
)]

#[path = "support/graphite_parser.rs"]
mod graphite_parser;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/pickle_parser.rs"]
mod pickle_parser;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loopback::{TcpReceiver, UdpReceiver};
use metrics_exporter_statsd_graphite::{ExporterBuilder, GraphiteTags};

const MAX: Duration = Duration::from_secs(10);

/// Wall-clock seconds since the Unix epoch, as the exporter reads them.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls the wall clock until its second is 1 to 4 past a multiple of `interval` (at most
/// 4 s of polling for a 7 s interval), so a flush starting now ends, unless it takes 3 s or
/// more, before the next multiple: the aligned and the raw stamp of its second then differ.
fn wait_for_early_unaligned_second(interval: u64) {
    let start = Instant::now();
    while !(1..=4).contains(&(unix_now() % interval)) {
        assert!(start.elapsed() < MAX, "the clock does not move");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every complete pickle frame received so far, each decoded (with the strict test reader)
/// into `(path, (timestamp, value))` points, once the bytes hold exactly `points` points in
/// whole frames; fails after [`MAX`].
fn wait_for_pickled(rx: &TcpReceiver, points: usize) -> Vec<Vec<(String, (u64, f64))>> {
    let start = Instant::now();
    loop {
        let raw = rx.raw();
        if let Ok(frames) = pickle_parser::split_frames(&raw) {
            let decoded: Vec<Vec<(String, (u64, f64))>> = frames
                .iter()
                .map(|f| {
                    pickle_parser::parse_frame(f)
                        .unwrap_or_else(|e| panic!("frame does not decode: {e}"))
                        .into_iter()
                        .map(|p| (p.path, (p.timestamp, p.value)))
                        .collect()
                })
                .collect();
            let got: usize = decoded.iter().map(Vec::len).sum();
            assert!(
                got <= points,
                "{got} points, expected {points}: {decoded:?}"
            );
            if got == points {
                return decoded;
            }
        }
        assert!(
            start.elapsed() < MAX,
            "{} bytes after {MAX:?}, not {points} points in whole frames",
            raw.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn record(recorder: &metrics_exporter_statsd_graphite::ExporterRecorder) {
    metrics::with_local_recorder(recorder, || {
        metrics::counter!("requests", "route" => "/a").increment(3);
        metrics::gauge!("temperature", "room" => "caf\u{e9}").set(21.5);
    });
}

#[test]
fn plaintext_lines_arrive_exactly_with_one_aligned_timestamp() {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::graphite(rx.endpoint())
        .with_prefix("app")
        .with_flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    record(&recorder);
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 2);
    guard.shutdown().unwrap();
    let ts: Vec<u64> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(ts.iter().all(|t| *t == ts[0] && t % 60 == 0), "{lines:?}");
    let mut without_ts: Vec<String> = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    without_ts.sort();
    assert_eq!(
        without_ts,
        ["app.requests;route=/a 3", "app.temperature;room=caf_ 21.5"]
    );
}

#[test]
fn folded_paths_replace_tags_when_configured() {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::graphite(rx.endpoint())
        .with_graphite_tags(GraphiteTags::FoldValues)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    record(&recorder);
    guard.handle().flush().unwrap();
    let mut lines: Vec<String> = rx
        .wait_for(MAX, |l| l.len() == 2)
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    guard.shutdown().unwrap();
    lines.sort();
    assert_eq!(lines, ["requests.a 3", "temperature.caf 21.5"]);
}

#[test]
fn pickle_frames_decode_to_the_exact_points() {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::graphite_pickle(rx.endpoint())
        .with_prefix("app")
        .with_flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    record(&recorder);
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    // Wait until a whole frame is there: its 4-byte header says how long it is.
    let start = Instant::now();
    let whole = |b: &[u8]| {
        b.len() >= 4 && b.len() >= 4 + u32::from_be_bytes(b[..4].try_into().unwrap()) as usize
    };
    while !whole(&rx.raw()) && start.elapsed() < MAX {
        std::thread::sleep(Duration::from_millis(10));
    }
    let bytes = rx.raw();
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 4 + len, "one big-endian length-prefixed frame");
    let mut points: Vec<(String, (u64, f64))> =
        serde_pickle::from_slice(&bytes[4..], serde_pickle::DeOptions::new()).unwrap();
    points.sort_by(|a, b| a.0.cmp(&b.0));
    let ts = points[0].1.0;
    assert_eq!(ts % 60, 0);
    assert_eq!(
        points,
        [
            ("app.requests;route=/a".to_owned(), (ts, 3.0)),
            ("app.temperature;room=caf_".to_owned(), (ts, 21.5))
        ]
    );
    assert_eq!(stats.lines_sent, 2);
}

#[test]
fn pickle_refuses_anything_but_tcp() {
    let e = ExporterBuilder::graphite_pickle("udp://127.0.0.1:2004")
        .build()
        .err()
        .unwrap();
    assert!(e.to_string().contains("pickle receiver is TCP only"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_client_sends_explicit_points_and_keeps_them_while_carbon_is_down() {
    let rx = TcpReceiver::new();
    let mut client = ExporterBuilder::graphite(rx.endpoint())
        .with_prefix("backfill")
        .with_global_labels([("env", "prod")])
        .build_client()
        .unwrap();
    assert!(client.send_at("jobs.imported;source=csv", 1250.0, 1_700_000_000));
    assert!(
        !client.send_at("jobs.bad", f64::NAN, 1_700_000_000),
        "NaN is refused"
    );
    assert!(
        !client.send_at("...", 1.0, 1_700_000_000),
        "nothing usable left"
    );
    assert!(client.send_at("a b/c", 1.5, 1_700_000_060));
    assert_eq!(client.send_many_at([("x;k=v w", 2.0)], 1_700_000_120), 1);
    client.flush().await.unwrap();
    let (mut rx, lines) = tokio::task::spawn_blocking(move || {
        let lines = rx.wait_for(MAX, |l| l.len() == 3);
        (rx, lines)
    })
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            "backfill.jobs.imported;env=prod;source=csv 1250 1700000000",
            "backfill.a_b_c;env=prod 1.5 1700000060",
            "backfill.x;env=prod;k=v_w 2 1700000120",
        ]
    );

    // Carbon goes away: the points stay queued, and go out once it is back.
    rx.stop();
    assert!(client.send_at("late", 7.0, 1_700_000_180));
    assert_eq!(
        client.flush().await,
        Err(metrics_exporter_statsd_graphite::FlushError::Unreachable)
    );
    rx.restart();
    let start = Instant::now();
    while client.flush().await.is_err() && start.elapsed() < MAX {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rx, lines) = tokio::task::spawn_blocking(move || {
        let lines = rx.wait_for(MAX, |l| l.len() == 4);
        (rx, lines)
    })
    .await
    .unwrap();
    assert_eq!(lines[3], "backfill.late;env=prod 7 1700000180");
    let stats = client.close().await.unwrap();
    drop(rx);
    assert_eq!(stats.values_dropped_invalid, 1);
    assert_eq!(stats.values_dropped_unnamed, 1);
    assert_eq!(stats.lines_sent, 4);
}

#[test]
fn the_direct_client_is_for_graphite_only() {
    let e = ExporterBuilder::statsd("127.0.0.1:8125")
        .build_client()
        .err()
        .unwrap();
    assert!(e.to_string().contains("build_client"), "{e}");
}

/// The paths `app.s10` .. `app.s49`: 40 series whose lines are all 23 bytes long
/// (`app.s10 110 1700000000\n`), so a 256-byte payload holds exactly 11 of them.
fn many_series() -> impl Iterator<Item = u32> {
    10..50
}

#[test]
fn two_flushes_of_many_pickle_frames_share_one_connection_and_decode_to_exactly_the_points() {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::graphite_pickle(rx.endpoint())
        .with_prefix("app")
        .with_maximum_payload_length(256)
        // Unaligned, the first tick is an hour away: only the explicit flushes send.
        .with_aligned_timestamps(false)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let mut frames_so_far = 0;
    for round in 1..=2u32 {
        metrics::with_local_recorder(&recorder, || {
            for i in many_series() {
                metrics::gauge!(format!("s{i}")).set(f64::from(round * 100 + i));
            }
        });
        let before = unix_now();
        guard.handle().flush().unwrap();
        let after = unix_now();
        let frames = wait_for_pickled(&rx, 40 * round as usize);
        let new = &frames[frames_so_far..];
        frames_so_far = frames.len();
        // 40 lines of 23 bytes in payloads of at most 256: 11 + 11 + 11 + 7, one frame each.
        let sizes: Vec<usize> = new.iter().map(Vec::len).collect();
        assert_eq!(sizes, [11, 11, 11, 7], "round {round}");
        let mut points: Vec<(String, (u64, f64))> = new.concat();
        let ts = points[0].1.0;
        assert!(
            (before..=after).contains(&ts),
            "round {round}: {ts} outside {before}..={after}"
        );
        points.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<(String, (u64, f64))> = many_series()
            .map(|i| (format!("app.s{i}"), (ts, f64::from(round * 100 + i))))
            .collect();
        assert_eq!(points, expected, "round {round}");
    }
    assert_eq!(
        *rx.accepted.lock().unwrap(),
        1,
        "both flushes' frames on one connection"
    );
    let stats = guard.shutdown().unwrap();
    assert_eq!(stats.lines_sent, 80);
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(
        pickle_parser::split_frames(&rx.raw()).unwrap().len(),
        8,
        "shutdown had nothing new to send"
    );
}

/// Reads every line's timestamp, checking all lines of the flush share it.
fn one_timestamp(lines: &[String]) -> u64 {
    let ts: Vec<u64> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(ts.iter().all(|t| *t == ts[0]), "{lines:?}");
    ts[0]
}

#[test]
fn without_aligned_timestamps_points_carry_the_raw_flush_second_and_with_them_a_multiple() {
    // A 7 s interval, and a flush that starts 1 to 4 s past a multiple of 7 and ends before
    // the next one: the aligned stamp is below the whole [before, after] window, so the two
    // settings cannot give the same timestamp. With 7 s, neither setting's ticks fire first
    // often, and when an aligned tick does take the gauge, it stamps the same multiple.
    const INTERVAL: u64 = 7;
    for aligned in [false, true] {
        let rx = TcpReceiver::new();
        let (recorder, exporter) = ExporterBuilder::graphite(rx.endpoint())
            .with_flush_interval(Duration::from_secs(INTERVAL))
            .with_aligned_timestamps(aligned)
            .build()
            .unwrap();
        let guard = exporter.start().unwrap();
        wait_for_early_unaligned_second(INTERVAL);
        let before = unix_now();
        metrics::with_local_recorder(&recorder, || metrics::gauge!("g").set(1.0));
        guard.handle().flush().unwrap();
        let after = unix_now();
        let multiple = before - before % INTERVAL;
        assert!(
            after < multiple + INTERVAL,
            "the flush took from {before} to {after}, past the next multiple of {INTERVAL}"
        );
        let lines = rx.wait_for(MAX, |l| !l.is_empty());
        guard.shutdown().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let ts = one_timestamp(&lines);
        assert_eq!(lines[0], format!("g 1 {ts}"));
        if aligned {
            assert_eq!(ts, multiple, "aligned, flushed in {before}..={after}");
        } else {
            assert!(
                (before..=after).contains(&ts),
                "raw: {ts} outside {before}..={after} (the aligned stamp would be {multiple})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_client_over_udp_sends_exactly_the_queued_lines_at_flush() {
    let mut rx = UdpReceiver::new();
    let mut client = ExporterBuilder::graphite(rx.endpoint())
        .with_prefix("bf")
        .build_client()
        .unwrap();
    assert!(client.send_at("jobs.done;queue=fast", 12.0, 1_700_000_000));
    assert_eq!(
        client.send_many_at(
            [("jobs.done;queue=fast", 13.0), ("load", -0.25)],
            1_700_000_060
        ),
        2
    );
    assert!(client.send_at("x y", 1e21, 1_700_000_120));
    // Nothing goes out before the flush.
    let early = rx.drain(Duration::from_millis(100), MAX);
    assert_eq!(early, Vec::<String>::new());
    client.flush().await.unwrap();
    let (mut rx, lines) = tokio::task::spawn_blocking(move || {
        let lines = rx.wait_for(MAX, |l| l.len() >= 4);
        (rx, lines)
    })
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            "bf.jobs.done;queue=fast 12 1700000000",
            "bf.jobs.done;queue=fast 13 1700000060",
            "bf.load -0.25 1700000060",
            "bf.x_y 1e21 1700000120",
        ]
    );
    // One datagram, without a trailing newline (carbon would log an empty line as invalid).
    assert_eq!(rx.datagrams.len(), 1, "{:?}", rx.datagrams);
    assert!(!rx.datagrams[0].ends_with(b"\n"));
    // A second flush has nothing left to send.
    client.flush().await.unwrap();
    let stats = client.close().await.unwrap();
    let lines = tokio::task::spawn_blocking(move || rx.drain(Duration::from_millis(200), MAX))
        .await
        .unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(stats.lines_sent, 4);
    assert_eq!(stats.values_dropped_invalid, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_sent_without_a_timestamp_are_stamped_now_and_a_batch_shares_one_stamp() {
    let mut rx = UdpReceiver::new();
    let mut client = ExporterBuilder::graphite(rx.endpoint())
        .build_client()
        .unwrap();
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    assert!(client.send("one", 1.0));
    assert_eq!(
        client.send_many([("a", 2.0), ("b", 3.0), ("c", f64::NAN)]),
        2
    );
    let after = now();
    client.flush().await.unwrap();
    let lines = tokio::task::spawn_blocking(move || rx.wait_for(MAX, |l| l.len() >= 3))
        .await
        .unwrap();
    let stamps: Vec<u64> = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(stamps.len(), 3, "{lines:?}");
    assert!(
        stamps.iter().all(|t| (before..=after).contains(t)),
        "{lines:?}"
    );
    assert_eq!(stamps[1], stamps[2], "one timestamp for the batch");
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["one", "a", "b"]);
}
