//! The send spread: the documented hash, its bounds, and the ticks it shifts on tokio's paused
//! clock (explicit and final flushes are not shifted).

use std::time::Duration;

use tokio::sync::mpsc;

use super::WallClock;
use super::spread::{identity_seed, send_delay};
use crate::ExporterBuilder;

const SPREAD: Duration = Duration::from_secs(5);

#[test]
fn the_same_seed_always_gives_the_same_delay_and_other_seeds_other_ones() {
    let delays: Vec<Duration> = (0..100).map(|seed| send_delay(seed, SPREAD)).collect();
    let again: Vec<Duration> = (0..100).map(|seed| send_delay(seed, SPREAD)).collect();
    assert_eq!(delays, again);
    let mut distinct = delays.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 100, "{delays:?}");
}

#[test]
fn every_delay_stays_below_its_spread_and_the_seeds_fill_it_evenly() {
    for spread in [
        Duration::from_nanos(1),
        Duration::from_millis(1),
        SPREAD,
        Duration::from_secs(86_400),
    ] {
        let mut buckets = [0u32; 10];
        for seed in 0..10_000u64 {
            let delay = send_delay(seed.wrapping_mul(0x1234_5678_9abc_def1), spread);
            assert!(delay < spread, "{delay:?} for a spread of {spread:?}");
            let tenth = delay.as_nanos() * 10 / spread.as_nanos();
            buckets[usize::try_from(tenth).unwrap()] += 1;
        }
        if spread >= Duration::from_millis(1) {
            // 1 000 expected per tenth; a fair hash stays well within ±20%.
            assert!(
                buckets.iter().all(|&n| (800..=1200).contains(&n)),
                "{spread:?}: {buckets:?}"
            );
        }
    }
    assert_eq!(send_delay(42, Duration::ZERO), Duration::ZERO);
}

#[test]
fn hostnames_that_differ_in_one_character_get_delays_all_over_the_spread() {
    let mut buckets = [0u32; 10];
    for host in 1..=200 {
        let seed = identity_seed(format!("web-{host:03}.example").as_bytes());
        let delay = send_delay(seed, SPREAD);
        buckets[usize::try_from(delay.as_nanos() * 10 / SPREAD.as_nanos()).unwrap()] += 1;
    }
    // 20 expected per tenth.
    assert!(
        buckets.iter().all(|&n| (8..=32).contains(&n)),
        "{buckets:?}"
    );
}

#[test]
fn the_documented_hash_is_fnv_1a_then_splitmix64_scaled_by_its_high_bits() {
    // FNV-1a 64 test vectors.
    assert_eq!(identity_seed(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(identity_seed(b"a"), 0xaf63_dc4c_8601_ec8c);
    // SplitMix64's first output from state 0 is 0xe220a8397b1dcdaf: its high bits scale.
    assert_eq!(
        send_delay(0, Duration::from_secs(5)),
        Duration::from_nanos(4_416_554_041)
    );
    assert_eq!(
        send_delay(identity_seed(b"web-01"), Duration::from_secs(1)),
        Duration::from_nanos(758_193_359)
    );
}

/// A UDP socket on a free loopback port, and the endpoint that sends to it.
async fn udp_receiver() -> (tokio::net::UdpSocket, String) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    (socket, endpoint)
}

#[tokio::test(start_paused = true)]
async fn with_a_spread_ticks_send_the_hosts_delay_into_the_slot_and_stamp_the_slot_start() {
    let (socket, endpoint) = udp_receiver().await;
    // Seed 0's delay in a 5 s spread: 4.416554041 s (pinned above).
    let (recorder, exporter) = ExporterBuilder::graphite(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .with_send_spread(SPREAD)
        .with_send_spread_seed(0)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let clock = WallClock::Anchored {
        unix: Duration::from_secs(1_700_000_003),
        at: start,
    };
    let flusher = exporter.into_flusher().with_clock(clock);
    assert_eq!(flusher.config().send_delay, send_delay(0, SPREAD));
    let (commands, rx) = mpsc::unbounded_channel();
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("spread"));
    let mut buf = [0u8; 128];

    counter.increment(1);
    // 3 s into the slot and the delay is 4.42 s: this slot's send is still ahead, at its
    // start + 4.422 s (the delay to the millisecond above, and the aligned tick's 5 ms).
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"spread 1 1700000000");
    assert_eq!(start.elapsed(), Duration::from_millis(1_422));
    counter.increment(2);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"spread 2 1700000010");
    assert_eq!(start.elapsed(), Duration::from_millis(11_422));

    // An explicit flush is not delayed: it goes out at once, 5 s into the slot (the next tick
    // is at 21.422 s).
    tokio::time::sleep(Duration::from_millis(3_578)).await;
    counter.increment(5);
    demand.flush_async(Duration::from_secs(60)).await.unwrap();
    let n = socket.recv(&mut buf).await.unwrap();
    // The slot's cumulative delta (carbon keeps the last write per slot).
    assert_eq!(&buf[..n], b"spread 7 1700000010");
    assert_eq!(start.elapsed(), Duration::from_secs(15));

    // Nor is the final flush, 1 s later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    counter.increment(3);
    let done = super::command::queue_shutdown(&commands, Duration::from_secs(5));
    done.await.unwrap().unwrap();
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"spread 10 1700000010");
    assert_eq!(start.elapsed(), Duration::from_secs(16));
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delay_already_passed_in_this_slot_waits_for_the_next_slot() {
    let (socket, endpoint) = udp_receiver().await;
    // Seed 3's delay in a 5 s spread: 0.567251710 s, passed 3 s into the slot.
    let (recorder, exporter) = ExporterBuilder::graphite(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .with_send_spread(SPREAD)
        .with_send_spread_seed(3)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let clock = WallClock::Anchored {
        unix: Duration::from_secs(1_700_000_003),
        at: start,
    };
    let (commands, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(exporter.into_flusher().with_clock(clock).run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("late"));
    let mut buf = [0u8; 128];

    counter.increment(1);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"late 1 1700000010");
    // 7 s to the next slot, its 0.568 s of delay, and the aligned tick's 5 ms.
    assert_eq!(start.elapsed(), Duration::from_millis(7_573));
    drop(commands);
    task.await.unwrap();
}
