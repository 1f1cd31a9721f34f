//! Sets through the flusher on tokio's paused clock: idle intervals, Graphite zeros, expiry.

use std::time::Duration;

use metrics::Key;
use tokio::sync::mpsc;

use super::WallClock;
use crate::ExporterBuilder;
use crate::aggregate::SetHandle;

async fn udp_receiver() -> (tokio::net::UdpSocket, String) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    (socket, endpoint)
}

#[tokio::test(start_paused = true)]
async fn an_idle_graphite_set_sends_zero_from_its_first_member_until_it_expires() {
    let (socket, endpoint) = udp_receiver().await;
    let (_recorder, exporter) = ExporterBuilder::graphite(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let start = tokio::time::Instant::now();
    let clock = WallClock::Anchored {
        unix: Duration::from_secs(1_700_000_000),
        at: start,
    };
    let flusher = exporter.into_flusher().with_clock(clock);
    let set = |name| SetHandle::new(flusher.aggregate().admit_set(&Key::from_static_name(name)));
    let users = set("users");
    let never = set("never");
    let (commands, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(flusher.run(rx));
    let mut buf = [0u8; 128];

    users.insert("a");
    users.insert("b");
    users.insert("a");
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(
        &buf[..n],
        b"users 2 1700000010",
        "a set never used sends no 0"
    );
    drop((users, never));
    // Idle: a 0 at each tick, from the last member (at 10 s) until it expires (30 s later,
    // at the scan of the 40 s tick).
    for ts in [20, 30] {
        let n = socket.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], format!("users 0 17000000{ts}").as_bytes());
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let s = stats.snapshot();
    assert_eq!((s.series, s.series_expired), (0, 2));
    drop(commands);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_statsd_set_sends_nothing_and_members_of_the_next_interval_go_out() {
    let (socket, endpoint) = udp_receiver().await;
    let (_recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .with_counter_zeros(true)
        .build()
        .unwrap();
    let flusher = exporter.into_flusher();
    let users = SetHandle::new(flusher.aggregate().admit_set(&Key::from_static_name("u")));
    let (commands, rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(flusher.run(rx));
    let mut buf = [0u8; 128];

    users.insert("x");
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"u:x|s");
    // Quiet at 20 s and 30 s; the next member goes out at 40 s.
    tokio::time::sleep(Duration::from_secs(25)).await;
    users.insert("y");
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"u:y|s");
    assert_eq!(start.elapsed(), Duration::from_secs(40));
    drop(commands);
    task.await.unwrap();
}
