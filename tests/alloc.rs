//! Allocation counts: zero per update once a series exists (for a set: once the member is in
//! the interval's set), zero per warm flush.
//!
//! A counting global allocator tallies allocations globally and per thread. Everything runs in
//! one test so no other test thread allocates concurrently; the flusher's own allocations are
//! the global count minus the test thread's.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc impl is unsafe by definition; the library itself forbids unsafe"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helper: a failed setup must fail the test loudly"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle};

struct Counting;

static ALL: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to `System` unchanged; the counters do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALL.fetch_add(1, Ordering::Relaxed);
        let _ = MINE.try_with(|m| m.set(m.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALL.fetch_add(1, Ordering::Relaxed);
        let _ = MINE.try_with(|m| m.set(m.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations on this thread, allocations on other threads) while running `f`.
fn count<T>(f: impl FnOnce() -> T) -> (u64, u64, T) {
    let (all0, mine0) = (ALL.load(Ordering::SeqCst), MINE.with(Cell::get));
    let out = f();
    let (all1, mine1) = (ALL.load(Ordering::SeqCst), MINE.with(Cell::get));
    let mine = mine1 - mine0;
    (mine, (all1 - all0) - mine, out)
}

/// Asking for a flush allocates nothing, however often (a reply channel per call, and the
/// command queue's blocks, used to cost about 3 per call), blocking or async.
fn explicit_flushes_allocate_nothing(handle: &ExporterHandle) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm-up: the flusher's runtime grows its list of deferred wakers (tokio's cooperative
    // budget) once, at some point in the first few hundred back-to-back requests.
    for _ in 0..400 {
        handle.flush().unwrap();
        runtime.block_on(handle.flush_async()).unwrap();
    }
    let (mine, flusher, ()) = count(|| {
        for _ in 0..200 {
            handle.flush().unwrap();
            runtime.block_on(handle.flush_async()).unwrap();
        }
    });
    assert_eq!(
        (mine, flusher),
        (0, 0),
        "allocations by 400 explicit flushes (caller, flusher)"
    );
}

#[test]
fn updates_and_warm_flushes_allocate_nothing_in_every_protocol() {
    // One test, run in turn for each protocol, so no other test thread allocates meanwhile.
    // Four flushes carried 10000 increments each (warm-up rounds 2 and 3, the measured
    // recording round, and the measured flush).
    let four = |line: &'static str| {
        move |received: &[String]| received.iter().filter(|l| *l == line).count() == 4
    };
    check(ExporterBuilder::statsd, &four("alloc.counter.a:10000|c"));
    check(
        ExporterBuilder::dogstatsd,
        &four("alloc.counter:10000|c|#route:/a"),
    );
    // Graphite plaintext over UDP (summaries sort the samples in place). Every flush here lands
    // in one carbon slot, so each counter line carries the slot's total so far: the last one
    // says 1 + 5 x 10000.
    check(ExporterBuilder::graphite, &|received: &[String]| {
        received
            .iter()
            .rfind(|l| l.starts_with("alloc.counter;route=/a "))
            .is_some_and(|l| l.starts_with("alloc.counter;route=/a 50001 "))
    });
    check_pickle();
    check_disabled();
}

/// Graphite pickle over TCP: a warm flush (transcoding lines into pickle frames) allocates
/// nothing. The connection is read on this thread between measured regions, into the kernel's
/// buffers meanwhile (a reader thread would allocate).
fn check_pickle() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
    let (recorder, exporter) = ExporterBuilder::graphite_pickle(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let mut bytes = 0;
    let mut buf = vec![0u8; 1 << 20];
    metrics::with_local_recorder(&recorder, || {
        let many: Vec<_> = (0..400)
            .map(|i| metrics::counter!("pickle.many", "i" => format!("{i:04}")))
            .collect();
        let gauge = metrics::gauge!("pickle.gauge");
        let record_all = |i: u32| {
            for c in &many {
                c.increment(1);
            }
            gauge.set(f64::from(i) * 0.5);
        };
        record_all(0);
        handle.flush().unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut drain = |bytes: &mut usize| {
            while let Ok(n @ 1..) = std::io::Read::read(&mut conn, &mut buf) {
                *bytes += n;
            }
        };
        // Warm-up: besides the frame buffers, delivery's list of stream pieces awaiting the
        // connection's verdict grows to its working size over the first flushes.
        for i in 1..20 {
            record_all(i);
            handle.flush().unwrap();
            drain(&mut bytes);
        }
        for i in 20..30 {
            record_all(i);
            let (mine, flusher, result) = count(|| handle.flush());
            result.unwrap();
            assert_eq!(
                (mine, flusher),
                (0, 0),
                "allocations by warm pickle flush {i} (caller, flusher)"
            );
            drain(&mut bytes);
        }
    });
    let stats = guard.shutdown().unwrap();
    assert_eq!(stats.lines_sent, 30 * 401, "{stats:?}");
    assert!(bytes > 30 * 401 * 20, "{bytes} bytes of pickle frames read");
}

/// Switched off (`with_enabled(false)`), registering and recording allocate nothing at all,
/// not even the first time (no series is created), and nothing runs on another thread.
fn check_disabled() {
    let (recorder, exporter) = ExporterBuilder::statsd("127.0.0.1:1")
        .with_enabled(false)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let (mine, others, ()) = count(|| {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..1000_u32 {
                metrics::counter!("off.counter", "route" => "/a").increment(1);
                metrics::gauge!("off.gauge").set(f64::from(i));
                metrics::histogram!("off.histogram").record(0.5);
            }
        });
    });
    assert_eq!(
        (mine, others),
        (0, 0),
        "a disabled recorder allocates nothing"
    );
    guard.shutdown().unwrap();
}

fn check(protocol: fn(String) -> ExporterBuilder, sent: &dyn Fn(&[String]) -> bool) {
    // Read only between measured regions, on this thread: a reader thread would allocate.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut drain = |received: &mut Vec<String>| {
        while let Ok(n) = rx.recv(&mut buf) {
            received.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    };
    let (recorder, exporter) = protocol(format!("udp://{}", rx.local_addr().unwrap()))
        .with_flush_interval(Duration::from_secs(3600))
        // The exporter's own metrics go out after every flush, and must not allocate either.
        .with_telemetry(true)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();

    // Sets are registered on the handle (registration may allocate, once per set).
    let users = handle.set("alloc.set");
    metrics::with_local_recorder(&recorder, || {
        let counter = metrics::counter!("alloc.counter", "route" => "/a");
        let gauge = metrics::gauge!("alloc.gauge");
        let histogram = metrics::histogram!("alloc.histogram");
        // Series enough for several datagrams of one length: over UDP on Linux they go out as
        // runs (segmentation offload), which must not allocate either.
        let many: Vec<_> = (0..400)
            .map(|i| metrics::counter!("alloc.many", "i" => format!("{i:04}")))
            .collect();
        let record_all = |i: u32| {
            counter.increment(1);
            for c in &many {
                c.increment(1);
            }
            gauge.set(f64::from(i));
            gauge.increment(1.0);
            histogram.record(f64::from(i) * 1e-3);
            // The macro path with a static key and static labels, no cached handle.
            metrics::counter!("alloc.macro", "k" => "v").increment(1);
            metrics::histogram!("alloc.macro_h", "k" => "v").record(0.5);
        };

        // Warm-up: create every series and let both histogram buffers grow to their working
        // size. Sample slots come in 64-sample chunks allocated on first use, so an idle
        // histogram stays small; growth is bounded by the per-interval cap (1024 samples =
        // 16 chunks per buffer, 2 buffers) over the histogram's whole life.
        record_all(0); // creates the series: registration may allocate, once per series
        let mut growth = 0;
        for _ in 0..3 {
            let (mine, _, ()) = count(|| (0..10_000).for_each(record_all));
            growth += mine;
            users.insert("alice");
            users.insert("bob");
            handle.flush().unwrap();
            drain(&mut received);
        }
        assert!(
            growth <= 2 * 2 * 16,
            "{growth} allocations while two histograms grew"
        );

        let (mine, _, ()) = count(|| (0..10_000).for_each(record_all));
        assert_eq!(mine, 0, "allocations on the recording path");
        // A member new in this interval costs its one `String`; a repeated one nothing.
        let (mine, _, ()) = count(|| users.insert("alice"));
        assert_eq!(mine, 1, "allocations for a member new in the interval");
        users.insert("bob");
        let (mine, _, ()) = count(|| {
            for _ in 0..10_000 {
                users.insert("alice");
                users.insert("bob");
            }
        });
        assert_eq!(mine, 0, "allocations inserting members the set already has");
        handle.flush().unwrap();
        drain(&mut received);

        (0..10_000).for_each(record_all);
        users.insert("alice");
        users.insert("bob");
        let (mine, flusher, result) = count(|| handle.flush());
        result.unwrap();
        assert_eq!(flusher, 0, "allocations by the flusher during a warm flush");
        assert_eq!(mine, 0, "allocations by `handle.flush()` itself");

        explicit_flushes_allocate_nothing(&handle);
        drain(&mut received);
    });

    guard.shutdown().unwrap();
    drain(&mut received);
    assert!(
        received
            .iter()
            .any(|l| l.starts_with("metrics_exporter.lines_sent")),
        "the exporter's own metrics were sent too"
    );
    assert!(
        sent(&received),
        "the measured updates were sent: {:?}",
        &received[..received.len().min(8)]
    );
}
