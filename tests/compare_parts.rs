//! The measuring parts of `benches/compare` that its numbers rest on, checked against real
//! sockets: the pickle frame receiver (and the fill it computes), the send/sendmmsg/GSO floor,
//! and the thread CPU clock. The bench's files are included by path, as
//! `examples/loadgen.rs` includes `sys.rs`.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "bench modules included by path; this test uses part of them"
)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "test: a failed setup must fail loudly"
)]

#[path = "../benches/support/cpu.rs"]
mod cpu;
#[path = "../benches/compare/floor.rs"]
mod floor;
#[path = "../benches/compare/frames.rs"]
mod frames;
#[path = "../benches/compare/stats.rs"]
mod stats;
#[path = "../benches/compare/sys.rs"]
mod sys;

use std::time::{Duration, Instant};

use cpu::own_cpu_ns;
use floor::{DATAGRAM, Floor, Method, SEGMENTS};
use frames::{FrameTally, PICKLE_FRAME_CAP, Parser, pickle_sink};
use metrics::{counter, with_local_recorder};
use metrics_exporter_statsd_graphite::ExporterBuilder;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn frames_fed_one_byte_at_a_time_are_each_tallied_once_with_their_length() {
    let mut stream = frame(b"\x80\x02]q\x00.");
    stream.extend(frame(
        &[b'x'; 300]
            .iter()
            .copied()
            .chain([b'.'])
            .collect::<Vec<_>>(),
    ));
    stream.extend(frame(b"not a pickle"));
    let tally = FrameTally::default();
    let mut parser = Parser::default();
    for b in &stream {
        parser.feed(std::slice::from_ref(b), &tally);
    }
    assert_eq!(tally.read(), [3, 6 + 301 + 12, 301, 1]);
    // The same stream in pieces of any size, or whole, gives the same tally.
    for size in (2..=9).chain([stream.len()]) {
        let pieces = FrameTally::default();
        let mut parser = Parser::default();
        for piece in stream.chunks(size) {
            parser.feed(piece, &pieces);
        }
        assert_eq!(pieces.read(), tally.read(), "pieces of {size} bytes");
    }
}

#[test]
fn the_fill_is_against_the_payload_limit_when_frames_keep_within_it_else_the_frame_cap() {
    let tally = FrameTally::default();
    Parser::default().feed(&frame(&[b'.'; 500]), &tally);
    let within = tally.fill_since([0; 4], 1000);
    assert_eq!(
        (within.limit, within.frames, within.largest),
        (1000, 1, 500)
    );
    assert!((within.percent - 50.0).abs() < 1e-9, "{within:?}");
    let over = tally.fill_since([0; 4], 400);
    assert_eq!(over.limit, PICKLE_FRAME_CAP);
    assert!((over.percent - 0.05).abs() < 1e-9, "{over:?}");
}

#[test]
fn frames_from_our_pickle_exporter_arrive_whole_and_their_fill_stays_under_100_percent() {
    let (addr, tally) = pickle_sink();
    let (recorder, exporter) = ExporterBuilder::graphite_pickle(format!("tcp://{addr}"))
        .with_flush_interval(Duration::from_secs(3600))
        .with_maximum_payload_length(65_536)
        .with_max_series_per_metric(10_000)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    with_local_recorder(&recorder, || {
        for i in 0..5000 {
            counter!("bench.requests", "route" => format!("/api/{i}")).increment(1);
        }
    });
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tally.read()[1] + 4 * tally.read()[0] < stats.bytes_sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let [frames, bytes, _, malformed] = tally.read();
    assert!(
        frames >= 2,
        "5000 points in 64 KiB payloads: {frames} frames"
    );
    assert_eq!(malformed, 0);
    assert_eq!(bytes + 4 * frames, stats.bytes_sent, "{stats:?}");
    let fill = tally.fill_since([0; 4], 65_536);
    assert!(
        fill.percent > 0.0 && fill.percent <= 100.0,
        "fill {fill:?} of {frames} frames"
    );
}

#[test]
fn every_floor_method_delivers_its_batches_as_1432_byte_datagrams() {
    let mut floor = Floor::new();
    std::thread::sleep(Duration::from_millis(100)); // the GSO probe arrives
    for method in Method::ALL {
        let before = floor.tally_read()[0];
        let ns = floor.measure(method, 2);
        if method == Method::Gso && floor.gso_refused().is_some() {
            eprintln!("GSO refused here: {:?}", floor.gso_refused());
            assert!(ns.is_none());
            continue;
        }
        assert!(ns.is_some_and(|ns| ns > 0.0), "{method:?}: {ns:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while floor.tally_read()[0] < before + 2 * SEGMENTS as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20)); // and nothing more
        assert_eq!(
            floor.tally_read()[0] - before,
            2 * SEGMENTS as u64,
            "{method:?}"
        );
        let [payloads, bytes, lines] = floor.tally_read();
        assert_eq!(bytes, payloads * DATAGRAM as u64, "{method:?}");
        assert_eq!(lines, payloads, "one line per datagram ({method:?})");
    }
}

#[test]
fn the_thread_cpu_clock_counts_work_and_not_sleep() {
    let t0 = own_cpu_ns();
    std::thread::sleep(Duration::from_millis(50));
    let slept = own_cpu_ns() - t0;
    assert!(slept < 10_000_000, "a 50 ms sleep cost {slept} ns of CPU");
    let (t1, wall) = (own_cpu_ns(), Instant::now());
    let mut x = 0u64;
    while wall.elapsed() < Duration::from_millis(30) {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    let (spun, wall) = (own_cpu_ns() - t1, wall.elapsed());
    let wall = u64::try_from(wall.as_nanos()).unwrap();
    assert!(spun > 1_000_000, "30 ms of spinning counted {spun} ns");
    assert!(spun <= wall + 2_000_000, "{spun} ns of CPU in {wall} ns");
}

#[test]
fn the_thread_cpu_clock_resolves_half_a_millisecond_of_work() {
    // Read while running, schedstat lags by up to a scheduler tick (1-4 ms): a 0.5 ms spin
    // would then read as 0 or as a whole tick. Medians over trials, so preemption by the
    // machine's other load shows as less CPU, never as a tick's jump.
    let mut ratios = Vec::new();
    for _ in 0..21 {
        let (t0, wall) = (own_cpu_ns(), Instant::now());
        let mut x = 0u64;
        while wall.elapsed() < Duration::from_micros(500) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (spun, wall) = (own_cpu_ns() - t0, wall.elapsed());
        ratios.push(spun as f64 / wall.as_nanos() as f64);
    }
    let median = stats::median(ratios.clone()).unwrap();
    assert!(
        (0.3..=1.1).contains(&median),
        "CPU / wall over 0.5 ms spins: median {median:.2}, all {ratios:.2?}"
    );
}
