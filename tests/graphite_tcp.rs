//! Graphite over real TCP on loopback: exact plaintext lines, and pickle frames decoded back
//! with serde-pickle into the exact tuples.

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::TcpReceiver;
use metrics_exporter_statsd_graphite::{ExporterBuilder, GraphiteTags};

const MAX: Duration = Duration::from_secs(10);

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
    assert_eq!(lines, ["requests._a 3", "temperature.caf_ 21.5"]);
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
    let start = std::time::Instant::now();
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
    assert!(client.send("jobs.imported;source=csv", 1250.0, 1_700_000_000));
    assert!(
        !client.send("jobs.bad", f64::NAN, 1_700_000_000),
        "NaN is refused"
    );
    assert!(
        !client.send("...", 1.0, 1_700_000_000),
        "nothing usable left"
    );
    assert_eq!(
        client.send_many([
            ("a b/c", 1.5, 1_700_000_060),
            ("x;k=v w", 2.0, 1_700_000_120)
        ]),
        2
    );
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
    assert!(client.send("late", 7.0, 1_700_000_180));
    assert_eq!(
        client.flush().await,
        Err(metrics_exporter_statsd_graphite::FlushError::Unreachable)
    );
    rx.restart();
    let start = std::time::Instant::now();
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
