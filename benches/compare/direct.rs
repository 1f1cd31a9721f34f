//! The direct clients in the hot-path rows they can express (counter increment, gauge set,
//! histogram record): no `metrics` facade, one call per operation.
//!
//! - `cadence`: cadence 1.8's `StatsdClient` on a `BufferedUdpMetricSink` wrapped in a
//!   `QueuingMetricSink`, which cadence's crate docs call "the preferred way to use Cadence in
//!   production" (the calling thread formats the line and queues it; a worker thread buffers
//!   it into 512-byte datagrams and sends them). The queue is bounded at 512 Ki entries, the
//!   size of cadence's own `with_capacity` example (its `from` is unbounded, which the
//!   criterion rows could grow by gigabytes). After each timed batch we wait (untimed) until
//!   the worker has drained the queue, so it never competes with the next contender. A thin
//!   `Arc` wrapper keeps the queue readable; it adds one pointer hop per call.
//! - `client`: our `StatsdClient` (`ExporterBuilder::build_statsd_client`, DogStatsD), which
//!   packs lines into payloads until `flush`. The batch flushes every 1024 calls and at its
//!   end, all timed, on the calling thread: its number is the whole cost, sending included
//!   (cadence's sending happens on its worker thread, outside the timing).

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cadence::{
    BufferedUdpMetricSink, Counted, Gauged, Histogrammed, MetricSink, QueuingMetricSink, SinkStats,
};
use metrics_exporter_statsd_graphite::{CallOpts, ExporterBuilder, StatsdClient};

use crate::hot::Batch;
use crate::sys::udp_sink;

/// The operations both clients can express.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Counter,
    GaugeSet,
    Histogram,
}

/// Our calls between two flushes of the direct client (about 30 KB of lines).
const FLUSH_EVERY: u64 = 1024;

/// cadence's queue, shared so the bench can read how much is still queued.
struct Shared(Arc<QueuingMetricSink>);

impl MetricSink for Shared {
    fn emit(&self, metric: &str) -> io::Result<usize> {
        self.0.emit(metric)
    }

    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }

    fn stats(&self) -> SinkStats {
        self.0.stats()
    }
}

/// Both direct clients, each sending to its own drained UDP socket.
pub(crate) struct Direct {
    cadence: cadence::StatsdClient,
    queue: Arc<QueuingMetricSink>,
    /// cadence calls refused (its queue full).
    refused: Cell<u64>,
    client: RefCell<StatsdClient>,
    runtime: tokio::runtime::Runtime,
}

impl Direct {
    pub(crate) fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let buffered = BufferedUdpMetricSink::from(udp_sink().0, socket).expect("cadence sink");
        let queue = Arc::new(QueuingMetricSink::with_capacity(buffered, 512 * 1024));
        let cadence = cadence::StatsdClient::from_sink("", Shared(Arc::clone(&queue)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = ExporterBuilder::dogstatsd(format!("udp://{}", udp_sink().0))
            .build_statsd_client()
            .expect("client");
        Self {
            cadence,
            queue,
            refused: Cell::new(0),
            client: RefCell::new(client),
            runtime,
        }
    }

    /// Waits (up to 2 s) until cadence's worker has taken everything off its queue.
    fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.queue.queued() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn cadence_op(&self, op: Op) {
        // A refused line (full queue) is cadence's drop path; counted for the summary.
        let sent = match op {
            Op::Counter => self.cadence.count("requests", black_box(1i64)).map(drop),
            Op::GaugeSet => self.cadence.gauge("in_flight", black_box(2.0f64)).map(drop),
            Op::Histogram => self
                .cadence
                .histogram("latency", black_box(0.012f64))
                .map(drop),
        };
        if sent.is_err() {
            self.refused.set(self.refused.get() + 1);
        }
    }

    fn client_op(client: &mut StatsdClient, op: Op) {
        let none = CallOpts::default();
        match op {
            Op::Counter => client.incr("requests", none),
            Op::GaugeSet => client.gauge("in_flight", black_box(2.0), none),
            Op::Histogram => client.histogram("latency", black_box(0.012), none),
        };
    }

    /// The two contenders of `op`'s row.
    pub(crate) fn row(&self, op: Op) -> [(&'static str, Batch<'_>); 2] {
        let cadence: Batch<'_> = Box::new(move |n| {
            let start = Instant::now();
            for _ in 0..n {
                self.cadence_op(op);
            }
            let t = start.elapsed();
            self.drain();
            t
        });
        let client: Batch<'_> = Box::new(move |n| {
            let mut client = self.client.borrow_mut();
            let start = Instant::now();
            for i in 1..=n {
                Self::client_op(&mut client, op);
                if i % FLUSH_EVERY == 0 {
                    drop(self.runtime.block_on(client.flush()));
                }
            }
            drop(self.runtime.block_on(client.flush()));
            start.elapsed()
        });
        [("cadence", cadence), ("client", client)]
    }

    /// Calls cadence refused (full queue) and lines our client dropped (full backlog).
    pub(crate) fn drops(&self) -> (u64, u64) {
        let ours = self.client.borrow().stats().lines_dropped_send;
        (self.refused.get(), ours)
    }
}
