//! How each exporter is built for the comparison, in one place so the hot path and the flush
//! measurements configure them identically.

use std::time::Duration;

use metrics::Recorder;
use metrics_exporter_dogstatsd::{DogStatsDBuilder, DogStatsDRecorder};
use metrics_exporter_statsd::{StatsdBuilder, StatsdRecorder};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};

use crate::sys::udp_sink;

/// A flush interval long enough that no timer flush happens during the hot-path rows.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// Ours, DogStatsD over UDP to `endpoint` (`host:port`), started. The flush rows label one
/// metric 100 000 ways, and the peers have no per-metric limit, so neither do we here.
pub(crate) fn ours(endpoint: &str, interval: Duration) -> (ExporterRecorder, ExporterGuard) {
    ours_sized(endpoint, interval, 100_000)
}

/// [`ours`] with room for `series` series of one metric (the scaling rows go to 1M).
pub(crate) fn ours_sized(
    endpoint: &str,
    interval: Duration,
    series: usize,
) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("udp://{endpoint}"))
        .with_flush_interval(interval)
        .with_max_series(series.max(100_000))
        .with_max_series_per_metric(series.max(100_000))
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

/// metrics-exporter-dogstatsd with its defaults (raw histograms), telemetry off. Its
/// forwarder thread starts here and never stops.
pub(crate) fn dsd(endpoint: &str, interval: Duration) -> DogStatsDRecorder {
    DogStatsDBuilder::default()
        .with_remote_address(endpoint)
        .expect("address")
        .with_flush_interval(interval)
        .with_telemetry(false)
        .build()
        .expect("builds")
}

/// metrics-exporter-statsd with its documented defaults. Its cadence worker thread starts
/// here.
pub(crate) fn mes(endpoint: &str) -> StatsdRecorder {
    let (host, port) = endpoint.rsplit_once(':').expect("host:port");
    StatsdBuilder::from(host, port.parse().expect("port"))
        // `from` leaves the queue at 256 entries (a known slip); 5000 is its documented default.
        .with_queue_size(5000)
        .build(None)
        .expect("builds")
}

/// The three recorders of the hot-path rows, each sending to its own drained UDP socket.
pub(crate) struct Contenders {
    ours: ExporterRecorder,
    _guard: ExporterGuard,
    dsd: DogStatsDRecorder,
    mes: StatsdRecorder,
}

impl Contenders {
    pub(crate) fn new() -> Self {
        let (ours, guard) = ours(&udp_sink().0, HOUR);
        Self {
            ours,
            _guard: guard,
            dsd: dsd(&udp_sink().0, HOUR),
            mes: mes(&udp_sink().0),
        }
    }

    /// Each recorder by the name its bench gets. mes goes last in every group, so its worker
    /// thread (busy while its queue drains) never competes with the others.
    pub(crate) fn each(&self) -> [(&'static str, &dyn Recorder); 3] {
        [("ours", &self.ours), ("dsd", &self.dsd), ("mes", &self.mes)]
    }
}
