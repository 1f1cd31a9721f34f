//! [`ExporterBuilder`]: settings that never fail, checked once in `build`/`install`.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Label, SharedString, Unit};
use tokio::sync::mpsc;

use crate::aggregate::Aggregate;
use crate::config::{Config, DEFAULT_STATSD_PORT, Endpoint};
use crate::encode::{Encoder, HistogramKind, LabelHandling, SampleUnit, StatsdEncoder};
use crate::error::BuildError;
use crate::flush::{Flusher, spawn};
use crate::handle::{ExporterGuard, ExporterHandle};
use crate::recorder::ExporterRecorder;
use crate::stats::StatsCells;

/// Largest per-interval sample cap: 1 MiB of slots per histogram at most.
const MAX_HISTOGRAM_SAMPLES: usize = 65_536;

/// The wire protocol the exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain (Etsy) StatsD: `name:value|type[|@rate]`, no tags.
    Statsd,
}

/// Configures and starts an exporter.
///
/// Setters never fail; [`build`](Self::build) and [`install`](Self::install) check everything
/// at once and say exactly what is wrong.
///
/// | setting | default |
/// |---|---|
/// | flush interval | 10 s |
/// | maximum payload length | 1432 bytes (UDP), 65536 bytes (TCP batches) |
/// | prefix | none |
/// | global labels | none |
/// | labels | folded into the name |
/// | histograms | `\|ms` timers |
/// | unit of undescribed histograms | seconds |
/// | samples kept per histogram per interval | 1024 |
/// | shutdown timeout | 5 s |
/// | write timeout | 1 s |
/// | connect timeout | 1 s |
/// | DNS re-resolution | every 60 s, and on every reconnect |
/// | stream backlog | 8 MiB |
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// let exporter = ExporterBuilder::statsd("udp://127.0.0.1:8125")
///     .with_prefix("myapp")
///     .with_flush_interval(Duration::from_secs(10))
///     .with_global_labels([("region", "eu")])
///     .install()?;
/// metrics::counter!("requests", "route" => "/a").increment(1);
/// exporter.shutdown()?; // final flush
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` or `install`"]
pub struct ExporterBuilder {
    protocol: Protocol,
    endpoint: String,
    prefix: Option<String>,
    flush_interval: Duration,
    global_labels: Vec<Label>,
    max_payload_len: Option<usize>,
    labels: LabelHandling,
    histograms: HistogramKind,
    default_histogram_unit: Unit,
    histogram_capacity: usize,
    shutdown_timeout: Duration,
    write_timeout: Duration,
    connect_timeout: Duration,
    resolve_interval: Duration,
    max_backlog_bytes: usize,
}

impl ExporterBuilder {
    /// Plain StatsD to `endpoint`: `udp://host:port`, `tcp://host:port`, or `host:port`
    /// (UDP). IPv6 hosts go in brackets: `udp://[::1]:8125`. The port defaults to 8125.
    pub fn statsd(endpoint: impl Into<String>) -> Self {
        Self {
            protocol: Protocol::Statsd,
            endpoint: endpoint.into(),
            prefix: None,
            flush_interval: Duration::from_secs(10),
            global_labels: Vec::new(),
            max_payload_len: None,
            labels: LabelHandling::default(),
            histograms: HistogramKind::default(),
            default_histogram_unit: Unit::Seconds,
            histogram_capacity: 1024,
            shutdown_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(60),
            max_backlog_bytes: 8 * 1024 * 1024,
        }
    }

    /// Replaces the endpoint (same forms as [`statsd`](Self::statsd)).
    pub fn with_remote_address(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Prepends `prefix` (sanitised, as dot-separated segments) to every metric name.
    /// Defaults to none.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How often the aggregate is sent. Defaults to 10 seconds (Etsy statsd's own interval).
    /// Must not be zero.
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Adds labels to every metric. A metric's own label with the same key wins; for a key
    /// given twice here, the later value wins. Defaults to none.
    pub fn with_global_labels<K, V>(mut self, labels: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<SharedString>,
        V: Into<SharedString>,
    {
        self.global_labels
            .extend(labels.into_iter().map(|(k, v)| Label::new(k, v)));
        self
    }

    /// Largest payload: one datagram for UDP, one write batch for TCP. Lines are never split;
    /// a single line longer than this is dropped and counted. Defaults to 1432 for UDP (fits
    /// an Ethernet MTU) and 65536 for TCP; must be within 64..=65507 (UDP) or
    /// 64..=16 MiB (TCP).
    pub fn with_maximum_payload_length(mut self, len: usize) -> Self {
        self.max_payload_len = Some(len);
        self
    }

    /// What plain StatsD does with labels. Defaults to [`LabelHandling::FoldIntoName`].
    pub fn with_label_handling(mut self, labels: LabelHandling) -> Self {
        self.labels = labels;
        self
    }

    /// Which type histograms are sent as. Defaults to [`HistogramKind::Timer`] (`|ms`).
    pub fn with_histogram_kind(mut self, kind: HistogramKind) -> Self {
        self.histograms = kind;
        self
    }

    /// The unit assumed for histograms that no `describe_histogram!` gave a unit, when
    /// converting to milliseconds for timers. Defaults to [`Unit::Seconds`], because `metrics`
    /// records a `Duration` as seconds. A non-time unit sends values as recorded.
    ///
    /// With the default, an undescribed histogram of something that is not a time (bytes,
    /// items) is multiplied by 1000 and sent as a timer: describe such histograms with their
    /// unit (`describe_histogram!("size", Unit::Bytes, "...")`), or send histograms as `|h`
    /// with [`with_histogram_kind`](Self::with_histogram_kind).
    pub fn with_default_histogram_unit(mut self, unit: Unit) -> Self {
        self.default_histogram_unit = unit;
        self
    }

    /// Samples each histogram keeps per flush interval; beyond that a uniform random sample of
    /// this size is kept and sent with `|@rate`, so the server still counts every sample.
    /// Bounds memory at 16 bytes per sample per histogram. Defaults to 1024; must be within
    /// 1..=65536.
    pub fn with_histogram_max_samples(mut self, samples: usize) -> Self {
        self.histogram_capacity = samples;
        self
    }

    /// How long the final flush may take at shutdown. Defaults to 5 seconds.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long one payload write may take before it is abandoned. Defaults to 1 second;
    /// must not be zero.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long one connection attempt (and one DNS lookup) may take. Defaults to 1 second;
    /// must not be zero.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often the destination is re-resolved for UDP (stream transports also re-resolve
    /// on every reconnect). Defaults to 60 seconds.
    pub fn with_resolve_interval(mut self, interval: Duration) -> Self {
        self.resolve_interval = interval;
        self
    }

    /// Bytes of unsent lines kept for a stream transport whose connection broke mid-flush;
    /// beyond it the oldest lines are dropped and counted. Defaults to 8 MiB.
    pub fn with_max_backlog_bytes(mut self, bytes: usize) -> Self {
        self.max_backlog_bytes = bytes;
        self
    }

    fn config(&self) -> Result<Config, BuildError> {
        let endpoint = Endpoint::parse(&self.endpoint, DEFAULT_STATSD_PORT)?;
        let max_payload_len = endpoint.payload_len(self.max_payload_len)?;
        if self.flush_interval.is_zero() {
            return Err(BuildError::ZeroFlushInterval);
        }
        let nonzero = |setting, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(BuildError::InvalidSetting {
                    setting,
                    reason: "must not be zero",
                })
            }
        };
        if !(1..=MAX_HISTOGRAM_SAMPLES).contains(&self.histogram_capacity) {
            return Err(BuildError::InvalidSetting {
                setting: "with_histogram_max_samples",
                reason: "must be within 1..=65536",
            });
        }
        nonzero("with_write_timeout", !self.write_timeout.is_zero())?;
        nonzero("with_connect_timeout", !self.connect_timeout.is_zero())?;
        let addrs = endpoint.resolve()?;
        Ok(Config {
            endpoint,
            addrs,
            flush_interval: self.flush_interval,
            max_payload_len,
            prefix: self.prefix.clone(),
            global_labels: self.global_labels.clone(),
            labels: self.labels,
            histograms: self.histograms,
            default_histogram_unit: SampleUnit::from_unit(self.default_histogram_unit),
            histogram_capacity: self.histogram_capacity,
            shutdown_timeout: self.shutdown_timeout,
            write_timeout: self.write_timeout,
            connect_timeout: self.connect_timeout,
            resolve_interval: self.resolve_interval,
            max_backlog_bytes: self.max_backlog_bytes,
        })
    }

    /// Checks the settings and returns the recorder and the (not yet started) exporter, so the
    /// recorder can be wrapped in `metrics-util` layers before it is installed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    /// use metrics_util::layers::{Layer, PrefixLayer};
    ///
    /// let (recorder, exporter) = ExporterBuilder::statsd("127.0.0.1:8125").build()?;
    /// let guard = exporter.start()?;
    /// metrics::set_global_recorder(PrefixLayer::new("svc").layer(recorder))?;
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`BuildError`] naming the first invalid setting, or an unresolvable host.
    pub fn build(self) -> Result<(ExporterRecorder, Exporter), BuildError> {
        let config = self.config()?;
        let aggregate = Arc::new(Aggregate::new(
            config.default_histogram_unit,
            config.histogram_capacity,
        ));
        let encoder = match self.protocol {
            Protocol::Statsd => Encoder::Statsd(StatsdEncoder::new(
                config.prefix.as_deref(),
                config.labels,
                config.global_labels.clone(),
                config.histograms,
            )),
        };
        let stats = Arc::new(StatsCells::default());
        let shutdown_timeout = config.shutdown_timeout;
        let flusher = Flusher::new(Arc::clone(&aggregate), Arc::clone(&stats), config, encoder);
        tracing::debug!(protocol = ?self.protocol, endpoint = %self.endpoint, "metrics exporter built");
        Ok((
            ExporterRecorder::new(aggregate),
            Exporter {
                flusher,
                stats,
                shutdown_timeout,
            },
        ))
    }

    /// Builds the exporter, installs its recorder as the global `metrics` recorder and starts
    /// the flusher: on the current tokio runtime if called inside one, otherwise on a
    /// dedicated thread. Keep the returned guard alive; dropping it flushes and stops.
    ///
    /// # Errors
    /// As [`build`](Self::build), plus [`BuildError::RecorderAlreadyInstalled`] and
    /// [`BuildError::Spawn`].
    pub fn install(self) -> Result<ExporterGuard, BuildError> {
        let (recorder, exporter) = self.build()?;
        metrics::set_global_recorder(recorder).map_err(|_| BuildError::RecorderAlreadyInstalled)?;
        exporter.start()
    }
}

/// The flusher side of a built exporter, not yet running. See [`ExporterBuilder::build`].
#[derive(Debug)]
#[must_use = "an exporter sends nothing until started"]
pub struct Exporter {
    flusher: Flusher,
    stats: Arc<StatsCells>,
    shutdown_timeout: Duration,
}

impl Exporter {
    /// The flusher itself, for tests that drive it on a runtime of their own (paused clock).
    #[cfg(test)]
    pub(crate) fn into_flusher(self) -> Flusher {
        self.flusher
    }

    /// Starts the flusher: on the current tokio runtime if called inside one, otherwise on a
    /// dedicated thread.
    ///
    /// # Errors
    /// [`BuildError::Spawn`] if the thread or its runtime cannot be created.
    pub fn start(self) -> Result<ExporterGuard, BuildError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let running = spawn(self.flusher, rx).map_err(BuildError::Spawn)?;
        let handle = ExporterHandle::new(
            tx,
            self.stats,
            self.shutdown_timeout + Duration::from_millis(250),
        );
        Ok(ExporterGuard::new(handle, running, self.shutdown_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: ExporterBuilder) -> String {
        match b.build() {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_invalid_setting_is_reported_by_build_with_what_is_wrong() {
        let b = || ExporterBuilder::statsd("127.0.0.1:8125");
        let table = [
            (
                ExporterBuilder::statsd("gopher://x:1"),
                "invalid endpoint \"gopher://x:1\": the scheme must be udp:// or tcp://",
            ),
            (
                ExporterBuilder::statsd("no-such-host.invalid:8125"),
                "cannot resolve \"no-such-host.invalid\"",
            ),
            (
                b().with_flush_interval(Duration::ZERO),
                "the flush interval must be greater than zero",
            ),
            (
                b().with_maximum_payload_length(65_508),
                "maximum payload length 65508 is outside 64..=65507 for this transport",
            ),
            (
                b().with_histogram_max_samples(0),
                "invalid setting with_histogram_max_samples: must be within 1..=65536",
            ),
            (
                b().with_histogram_max_samples(65_537),
                "invalid setting with_histogram_max_samples: must be within 1..=65536",
            ),
            (
                b().with_write_timeout(Duration::ZERO),
                "invalid setting with_write_timeout: must not be zero",
            ),
        ];
        for (builder, want) in table {
            assert_eq!(err(builder), want);
        }
    }

    #[test]
    fn setters_can_come_in_any_order() {
        // The payload limit is checked against the transport chosen last, in build.
        let a = ExporterBuilder::statsd("127.0.0.1:1")
            .with_maximum_payload_length(100_000)
            .with_remote_address("tcp://127.0.0.1:1");
        assert!(a.build().is_ok());
        let b = ExporterBuilder::statsd("tcp://127.0.0.1:1")
            .with_maximum_payload_length(100_000)
            .with_remote_address("127.0.0.1:1");
        assert!(b.build().is_err());
    }

    #[test]
    fn an_unresolvable_host_keeps_the_resolver_error_as_its_source() {
        let e = ExporterBuilder::statsd("no-such-host.invalid:1")
            .build()
            .err()
            .unwrap();
        assert!(std::error::Error::source(&e).is_some());
    }
}
