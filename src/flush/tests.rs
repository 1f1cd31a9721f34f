//! The flusher's timing on tokio's paused clock: the flusher future runs on the test's own
//! (paused) runtime, so every tick lands at an exact instant.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::ExporterBuilder;

/// A UDP socket on a free loopback port, and the endpoint that sends to it.
async fn udp_receiver() -> (tokio::net::UdpSocket, String) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    (socket, endpoint)
}

#[tokio::test(start_paused = true)]
async fn ticks_happen_exactly_at_each_interval_and_skip_quiet_intervals() {
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let (commands, rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let flusher = exporter.into_flusher();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("paused"));
    let mut buf = [0u8; 64];

    counter.increment(1);
    // Nothing before the first interval ends...
    assert!(
        tokio::time::timeout(Duration::from_millis(9_999), socket.recv(&mut buf))
            .await
            .is_err()
    );
    // ...then the tick, at exactly 10 s.
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"paused:1|c");
    assert_eq!(start.elapsed(), Duration::from_secs(10));

    // A quiet interval (20 s) sends nothing; the next change goes out at 30 s.
    tokio::time::sleep(Duration::from_secs(15)).await;
    counter.increment(4);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"paused:4|c");
    assert_eq!(start.elapsed(), Duration::from_secs(30));

    // Shutdown flushes at once, without waiting for the next tick.
    counter.increment(2);
    let done = super::command::queue_shutdown(&commands, Duration::from_secs(5));
    done.await.unwrap().unwrap();
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"paused:2|c");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn graphite_ticks_land_on_interval_boundaries_and_stamp_the_aligned_time() {
    use super::WallClock;
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::graphite(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    // The wall clock reads 1_700_000_003 s now and advances with tokio's paused clock.
    let start = tokio::time::Instant::now();
    let clock = WallClock::Anchored {
        unix: Duration::from_secs(1_700_000_003),
        at: start,
    };
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher().with_clock(clock);
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("aligned"));
    let mut buf = [0u8; 128];

    counter.increment(1);
    // The first tick waits for the wall clock's next multiple of 10 s: 7 s (and 5 ms) away.
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"aligned 1 1700000010");
    assert_eq!(start.elapsed(), Duration::from_millis(7_005));
    counter.increment(2);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"aligned 2 1700000020");
    assert_eq!(start.elapsed(), Duration::from_millis(17_005));

    // An explicit flush 3 s later lands in the same slot: it carries the slot's total.
    tokio::time::sleep(Duration::from_secs(3)).await;
    counter.increment(5);
    flush_now(&demand).await;
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"aligned 7 1700000020");
    drop(commands);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_series_that_no_handle_holds_expire_and_return_when_updated_again() {
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let task = tokio::spawn(flusher.run(rx));
    let held = metrics::with_local_recorder(&recorder, || metrics::counter!("held"));
    let bump =
        |n| metrics::with_local_recorder(&recorder, || metrics::counter!("passing").increment(n));
    let mut buf = [0u8; 128];

    held.increment(1);
    bump(1);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"held:1|c\npassing:1|c");
    assert_eq!(stats.snapshot().series, 2);

    // Last active at 10 s; the tick at 40 s finds `passing` idle for 30 s and unheld.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(stats.snapshot().series_expired, 0, "not before the timeout");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = stats.snapshot();
    assert_eq!(
        (s.series, s.series_expired),
        (1, 1),
        "the cached handle keeps `held`"
    );

    bump(2);
    held.increment(3);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"held:3|c\npassing:2|c");
    assert_eq!(stats.snapshot().series, 2);
    drop(commands);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_graphite_running_total_saturates_at_u64_max_and_counts_each_flush_past_it() {
    use crate::CounterMode;
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::graphite(endpoint)
        .with_counter_mode(CounterMode::Total)
        .with_flush_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("total"));
    let mut buf = [0u8; 128];
    let mut next = async || {
        let n = socket.recv(&mut buf).await.unwrap();
        let line = String::from_utf8(buf[..n].to_vec()).unwrap();
        let value = line.split(' ').nth(1).unwrap().to_owned();
        (value, stats.snapshot().counter_overflows)
    };

    counter.increment(u64::MAX - 1);
    assert_eq!(next().await, ("18446744073709551614".into(), 0));
    counter.increment(5); // wrapped, the total was sent as 3
    assert_eq!(next().await, ("18446744073709551615".into(), 1));
    // It stays there; a flush that adds nothing loses nothing, one that adds does.
    assert_eq!(next().await, ("18446744073709551615".into(), 1));
    counter.increment(1);
    assert_eq!(next().await, ("18446744073709551615".into(), 2));
    drop(commands);
    task.await.unwrap();
}

/// Flushes as `ExporterHandle::flush_async` does, and waits until it is done.
async fn flush_now(demand: &super::Demand) {
    demand.flush_async(Duration::from_secs(60)).await.unwrap();
}

#[tokio::test]
async fn lines_on_a_connection_that_is_reset_count_as_possibly_lost_and_a_clean_close_does_not() {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        // Each flush's lines are counted below: the gauge is sent once.
        .with_gauge_resend(false)
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("c"));
    let gauge = metrics::with_local_recorder(&recorder, || metrics::gauge!("g"));
    let accept = |expect: &'static [u8]| {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = vec![0u8; expect.len()];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, expect);
        conn
    };

    // Two lines go out; the receiver then dies with them unread as far as we can tell (RST).
    counter.increment(5);
    gauge.set(1.0);
    flush_now(&demand).await;
    let conn = accept(b"c:5|c\ng:1|g\n");
    socket2::SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(50)).await;
    counter.increment(2);
    flush_now(&demand).await;
    let conn = accept(b"c:2|c\n");
    assert_eq!(stats.snapshot().lines_possibly_lost, 2);

    // A clean close (FIN) after reading confirms what was sent: nothing more is suspect.
    drop(conn);
    tokio::time::sleep(Duration::from_millis(50)).await;
    counter.increment(1);
    flush_now(&demand).await;
    let _conn = accept(b"c:1|c\n");
    let s = stats.snapshot();
    assert_eq!((s.lines_possibly_lost, s.lines_sent, s.connects), (2, 4, 3));
    drop(commands);
    task.await.unwrap();
}

#[tokio::test]
async fn during_an_outage_each_intervals_histograms_wait_in_the_backlog_and_counters_in_the_cells()
{
    use std::io::Read as _;
    // The destination is down from the start.
    let addr = super::test_support::closed_port();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{addr}"))
        .with_flush_interval(Duration::from_secs(3600))
        .with_histogram_max_samples(2)
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    let (counter, histogram) = metrics::with_local_recorder(&recorder, || {
        (metrics::counter!("c"), metrics::histogram!("h"))
    });

    // Three intervals while down: two samples each (the reservoir's whole capacity).
    for interval in 0..3u32 {
        counter.increment(1);
        histogram.record(f64::from(interval * 10 + 1) / 1000.0);
        histogram.record(f64::from(interval * 10 + 2) / 1000.0);
        flush_now(&demand).await;
    }
    assert_eq!(stats.snapshot().lines_sent, 0);
    assert_eq!(
        stats.snapshot().samples_sampled_out,
        0,
        "no interval overflowed"
    );

    let listener = std::net::TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut received = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let expected = b"h:1|ms\nh:2|ms\nh:11|ms\nh:12|ms\nh:21|ms\nh:22|ms\nc:3|c\n";
    let mut conn = None;
    while received.len() < expected.len() && std::time::Instant::now() < deadline {
        // Past the reconnect backoff, a flush reconnects and sends the backlog first.
        flush_now(&demand).await;
        if conn.is_none() {
            conn = listener.accept().ok().map(|(c, _)| c);
        }
        if let Some(c) = &mut conn {
            c.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut buf = [0u8; 256];
            if let Ok(n) = c.read(&mut buf) {
                received.extend_from_slice(&buf[..n]);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(expected)
    );
    drop(commands);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panic_inside_a_flush_is_counted_and_the_next_flush_works() {
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let flusher = exporter.into_flusher();
    let inject = std::sync::Arc::clone(&flusher.inject_panic);
    let (commands, rx) = mpsc::unbounded_channel();
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("c"));
    let mut buf = [0u8; 64];

    inject.store(true, std::sync::atomic::Ordering::Relaxed);
    counter.increment(1);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(stats.snapshot().flush_panics, 1);
    // The panic struck before the cells were drained: the count is still there.
    counter.increment(1);
    let n = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buf))
        .await
        .expect("the flusher is still running")
        .unwrap();
    assert_eq!(&buf[..n], b"c:2|c");
    flush_now(&demand).await;
    drop(commands);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn telemetry_follows_the_users_datagram_in_its_own_and_never_counts_itself() {
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_telemetry_prefix("t")
        // So that the second flush has nothing of the user's to send.
        .with_gauge_resend(false)
        .build()
        .unwrap();
    let stats = exporter.stats_cells();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let demand = flusher.demand();
    let task = tokio::spawn(flusher.run(rx));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("c").increment(5);
        metrics::gauge!("g").set(1.0);
    });
    let mut buf = [0u8; 1500];
    let mut recv = async || {
        let n = socket.recv(&mut buf).await.unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };

    flush_now(&demand).await;
    assert_eq!(recv().await, "c:5|c\ng:1|g");
    assert_eq!(
        recv().await,
        "t.flushes:1|c\nt.lines_sent:2|c\nt.payloads_sent:1|c\nt.bytes_sent:11|c\nt.series:2|g"
    );
    let after = stats.snapshot();
    assert_eq!(
        (after.lines_sent, after.payloads_sent, after.bytes_sent),
        (2, 1, 11),
        "the report is not in the user's tallies"
    );
    assert_eq!(after.telemetry_lines_sent, 5);

    // A flush with nothing of the user's: the report alone, and it reports no lines sent,
    // since the previous report's own lines are not counted.
    flush_now(&demand).await;
    assert_eq!(recv().await, "t.flushes:1|c\nt.series:2|g");
    assert_eq!(stats.snapshot().lines_sent, 2);
    assert_eq!(stats.snapshot().telemetry_lines_sent, 7);
    drop(commands);
    task.await.unwrap();
}

/// Starts an exporter from `builder`, records `c{k=v}` += 5 and `g` = 1.5, shuts it down
/// (the final flush sends both) and returns its statistics.
async fn send_a_counter_and_a_gauge(builder: ExporterBuilder) -> crate::ExporterStats {
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("c", "k" => "v").increment(5);
        metrics::gauge!("g").set(1.5);
    });
    guard.shutdown_async().await.unwrap()
}

/// Reads what one connection delivers until the sender closes it.
#[cfg(unix)]
fn read_all(mut conn: impl std::io::Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    bytes
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_counts_what_went_on_the_wire_for_framed_transports() {
    let dir = tempfile::tempdir().unwrap();
    let unix = |name: &str| {
        let path = dir.path().join(name);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let reader = std::thread::spawn(move || read_all(listener.accept().unwrap().0));
        (format!("unix://{}", path.display()), reader)
    };
    let tcp = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
        let reader = std::thread::spawn(move || read_all(listener.accept().unwrap().0));
        (endpoint, reader)
    };
    let cases = [
        // DogStatsD over a Unix stream: a 4-byte length per frame, no final newline.
        (
            ExporterBuilder::dogstatsd as fn(String) -> ExporterBuilder,
            unix("d.sock"),
        ),
        // Graphite pickle: the frames, not the plaintext they were made from.
        (ExporterBuilder::graphite_pickle, tcp()),
        // Plain StatsD over a Unix stream: the lines as they are.
        (ExporterBuilder::statsd, unix("s.sock")),
    ];
    for (protocol, (endpoint, reader)) in cases {
        let stats = send_a_counter_and_a_gauge(protocol(endpoint.clone())).await;
        let received = reader.join().unwrap();
        assert!(stats.lines_sent >= 2, "{endpoint}: {stats:?}");
        assert_eq!(
            stats.bytes_sent,
            received.len() as u64,
            "{endpoint}: {stats:?}"
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_follows_a_unix_endpoint_that_turns_out_to_be_a_datagram_socket() {
    // `unix://` at the Agent's datagram socket (as Datadog's admission controller sets it):
    // the exporter switches to datagrams, which carry neither a length nor a final newline.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.socket");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let stats = send_a_counter_and_a_gauge(ExporterBuilder::dogstatsd(format!(
        "unix://{}",
        path.display()
    )))
    .await;
    let mut buf = [0u8; 8192];
    let mut received = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(received, b"c:5|c|#k:v\ng:1.5|g");
    assert_eq!(stats.bytes_sent, received.len() as u64, "{stats:?}");
}

/// One round: a flush is asked for, then a shutdown is queued, before the flusher first
/// runs. The flusher's `select!` picks either first, so a round passes for either order.
async fn a_flush_queued_before_a_shutdown(round: u32) {
    let (socket, endpoint) = udp_receiver().await;
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (commands, rx) = mpsc::unbounded_channel();
    let flusher = exporter.into_flusher();
    let demand = flusher.demand();
    metrics::with_local_recorder(&recorder, || metrics::counter!("queued").increment(3));

    let asker = tokio::spawn(async move { demand.flush_async(Duration::from_secs(60)).await });
    // The asker takes its ticket before the shutdown is queued and the flusher starts.
    tokio::task::yield_now().await;
    let done = super::command::queue_shutdown(&commands, Duration::from_secs(5));
    let task = tokio::spawn(flusher.run(rx));

    assert_eq!(asker.await.unwrap(), Ok(()), "round {round}");
    done.await.unwrap().unwrap();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"queued:3|c", "round {round}");
    task.await.unwrap();
}

#[tokio::test]
async fn a_flush_asked_for_just_before_a_shutdown_is_answered_ok_by_whichever_flush_runs_first() {
    // Twenty rounds: if the final flush forgot to answer the pending ticket, the rounds in
    // which the shutdown is picked first would fail (each order comes up half the time).
    for round in 0..20 {
        a_flush_queued_before_a_shutdown(round).await;
    }
}
