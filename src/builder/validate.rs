//! Validation: every setting checked once, in `build`, into a `Config` and an `Encoder`.

use std::time::Duration;

use metrics::Label;

use super::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SERIES_PER_METRIC, Expiry, ExporterBuilder,
    MAX_HISTOGRAM_SAMPLES, MAX_PICKLE_PAYLOAD,
};
use crate::config::{
    Config, DEFAULT_GRAPHITE_PORT, DEFAULT_PICKLE_PORT, DEFAULT_STATSD_PORT, Endpoint, Scheme,
    UNIX_SOCKETS,
};
use crate::encode::{
    DogStatsdEncoder, Encoder, GraphiteEncoder, HistogramKind, HistogramRules, SampleUnit,
    StatsdEncoder,
};
use crate::error::BuildError;
use crate::protocol::Protocol;

impl ExporterBuilder {
    /// Every setting checked, with no DNS lookup: a host name is looked up by the transport
    /// (`transport::resolve`), so a capture, which never opens a socket, uses it as it is.
    pub(crate) fn config(&self) -> Result<Config, BuildError> {
        self.check_environment()?;
        let (port, scheme) = match self.protocol {
            Protocol::Statsd | Protocol::DogStatsd => (DEFAULT_STATSD_PORT, Scheme::Udp),
            Protocol::Graphite => (DEFAULT_GRAPHITE_PORT, Scheme::Tcp),
            Protocol::GraphitePickle => (DEFAULT_PICKLE_PORT, Scheme::Tcp),
        };
        let endpoint = Endpoint::parse_with(&self.endpoint, port, scheme)
            .and_then(|e| e.available(&self.endpoint, UNIX_SOCKETS))
            .map_err(|e| match (&self.endpoint_source, e) {
                (Some((variable, value)), BuildError::InvalidEndpoint { reason, .. }) => {
                    BuildError::InvalidEnvironment {
                        variable,
                        value: value.clone(),
                        reason,
                    }
                }
                (_, e) => e,
            })?;
        let dogstatsd = self.protocol == Protocol::DogStatsd;
        if self.protocol == Protocol::GraphitePickle && endpoint.scheme != Scheme::Tcp {
            return Err(BuildError::InvalidSetting {
                setting: "endpoint",
                reason: "carbon's pickle receiver is TCP only; use tcp://host:port",
            });
        }
        if self.protocol == Protocol::Graphite && endpoint.scheme == Scheme::Unixgram {
            return Err(BuildError::InvalidSetting {
                setting: "endpoint",
                reason: "Graphite receivers have no Unix datagram listener; use tcp://, udp:// or unix://",
            });
        }
        let max_payload_len = endpoint.payload_len(self.max_payload_len, dogstatsd)?;
        if self.protocol == Protocol::GraphitePickle && max_payload_len > MAX_PICKLE_PAYLOAD {
            return Err(BuildError::PayloadLength {
                len: max_payload_len,
                min: crate::config::MIN_PAYLOAD,
                max: MAX_PICKLE_PAYLOAD,
            });
        }
        if self.flush_interval.is_zero() {
            return Err(BuildError::ZeroFlushInterval);
        }
        self.check_ranges()?;
        let invalid = |setting, reason| Err(BuildError::InvalidSetting { setting, reason });
        let idle_timeout = match self.idle_timeout {
            Expiry::Default => {
                Some(DEFAULT_IDLE_TIMEOUT.max(self.flush_interval.saturating_mul(2)))
            }
            Expiry::Set(timeout) => timeout,
        };
        if idle_timeout.is_some_and(|t| t < self.flush_interval) {
            return invalid("with_idle_timeout", "must be at least the flush interval");
        }
        if self
            .telemetry
            .as_deref()
            .is_some_and(|prefix| prefix.split('.').all(str::is_empty))
        {
            // Bare `flushes`, `series`... would mix with the application's own metrics.
            return invalid("with_telemetry_prefix", "must contain a name");
        }
        let send_delay = self.send_delay()?;
        Ok(Config {
            framing: endpoint.scheme.framing(dogstatsd),
            addrs: endpoint.literal_addrs(),
            endpoint,
            endpoint_source: self.endpoint_source.as_ref().map(|(variable, _)| *variable),
            flush_interval: self.flush_interval,
            max_payload_len,
            default_histogram_unit: SampleUnit::from_unit(self.default_histogram_unit),
            histogram_capacity: self.histogram_capacity,
            set_capacity: self.set_capacity,
            shutdown_timeout: self.shutdown_timeout,
            write_timeout: self.write_timeout,
            connect_timeout: self.connect_timeout,
            resolve_interval: self.resolve_interval,
            reconnect_delay: self.reconnect_delay,
            max_reconnect_delay: self.max_reconnect_delay,
            max_backlog_bytes: self.max_backlog_bytes,
            max_series: self.max_series,
            max_series_per_metric: self
                .max_series_per_metric
                .unwrap_or_else(|| DEFAULT_MAX_SERIES_PER_METRIC.min((self.max_series / 2).max(1))),
            idle_timeout,
            gauge_resend: self.continuity.gauge_resend,
            counter_zeros: self.continuity.counter_zeros.unwrap_or(matches!(
                self.protocol,
                Protocol::Graphite | Protocol::GraphitePickle
            )),
            telemetry: self.telemetry.clone(),
            send_delay,
        })
    }

    /// The first environment variable that is set but unusable, if any.
    pub(super) fn check_environment(&self) -> Result<(), BuildError> {
        match self.env_errors.first() {
            Some(e) => Err(BuildError::InvalidEnvironment {
                variable: e.variable,
                value: e.value.clone(),
                reason: e.reason,
            }),
            None => Ok(()),
        }
    }

    /// The settings checked on their own (or against one other setting): each one's range.
    fn check_ranges(&self) -> Result<(), BuildError> {
        let invalid = |setting, reason| Err(BuildError::InvalidSetting { setting, reason });
        if !(1..=MAX_HISTOGRAM_SAMPLES).contains(&self.histogram_capacity) {
            return invalid("with_histogram_max_samples", "must be within 1..=65536");
        }
        if !(1..=MAX_HISTOGRAM_SAMPLES).contains(&self.set_capacity) {
            return invalid("with_set_max_members", "must be within 1..=65536");
        }
        if self.write_timeout.is_zero() {
            return invalid("with_write_timeout", "must not be zero");
        }
        if self.connect_timeout.is_zero() {
            return invalid("with_connect_timeout", "must not be zero");
        }
        if self.reconnect_delay.is_zero() {
            return invalid("with_reconnect_delay", "must not be zero");
        }
        if self.max_reconnect_delay < self.reconnect_delay {
            return invalid(
                "with_max_reconnect_delay",
                "must be at least the reconnect delay (with_reconnect_delay)",
            );
        }
        if self.max_series == 0 {
            return invalid("with_max_series", "must not be zero");
        }
        match self.max_series_per_metric {
            Some(0) => return invalid("with_max_series_per_metric", "must not be zero"),
            Some(n) if n > self.max_series => {
                return invalid(
                    "with_max_series_per_metric",
                    "must not be more than the total (with_max_series)",
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// The protocol's encoder, refusing settings the protocol cannot honour.
    pub(crate) fn encoder(&self) -> Result<Encoder, BuildError> {
        let histograms = HistogramRules {
            default: self.histogram_default.unwrap_or(match self.protocol {
                Protocol::Statsd | Protocol::Graphite | Protocol::GraphitePickle => {
                    HistogramKind::Timer
                }
                Protocol::DogStatsd => HistogramKind::Distribution,
            }),
            by_prefix: self.histogram_by_prefix.clone(),
        };
        // Environment labels first, so explicit ones with the same key win.
        let labels: Vec<Label> = self
            .env_labels
            .iter()
            .chain(&self.global_labels)
            .cloned()
            .collect();
        let graphite_only = |setting| {
            Err(BuildError::InvalidSetting {
                setting,
                reason: "Graphite only",
            })
        };
        if !matches!(self.protocol, Protocol::Graphite | Protocol::GraphitePickle) {
            if self.graphite_tags.is_some() {
                return graphite_only("with_graphite_tags");
            }
            if self.counter_mode.is_some() {
                return graphite_only("with_counter_mode");
            }
            if self.aligned_timestamps.is_some() {
                return graphite_only("with_aligned_timestamps");
            }
            // Etsy statsd hands DogStatsD-style tags to carbon as tagged names.
            let etsy_tags = self.protocol == Protocol::Statsd
                && self.labels == Some(crate::LabelHandling::DogStatsd);
            if self.tag_hash_filenames.is_some() && !etsy_tags {
                return Err(BuildError::InvalidSetting {
                    setting: "with_graphite_tag_hash_filenames",
                    reason: "Graphite, or plain StatsD with LabelHandling::DogStatsd tags only",
                });
            }
            if self.percentiles.is_some() {
                return graphite_only("with_percentiles");
            }
        }
        match self.protocol {
            Protocol::Statsd => {
                self.refuse_dogstatsd_fields(&histograms)?;
                let handling = self.labels.unwrap_or_default();
                Ok(Encoder::Statsd(
                    StatsdEncoder::new(self.prefix.as_deref(), handling, labels, histograms)
                        .with_type_prefixes(self.type_prefixes)
                        .with_tag_hash_filenames(self.tag_hash_filenames.unwrap_or(true)),
                ))
            }
            Protocol::DogStatsd | Protocol::Graphite | Protocol::GraphitePickle
                if self.type_prefixes =>
            {
                Err(BuildError::InvalidSetting {
                    setting: "with_type_prefixes",
                    reason: "plain StatsD only; DogStatsD and Graphite keep metric names as given",
                })
            }
            Protocol::DogStatsd => {
                if self.labels.is_some() {
                    return Err(BuildError::InvalidSetting {
                        setting: "with_label_handling",
                        reason: "plain StatsD only; DogStatsD always sends labels as tags",
                    });
                }
                let container = self.container()?;
                let external = self.external_data()?;
                Ok(Encoder::DogStatsd(
                    DogStatsdEncoder::new(
                        self.prefix.as_deref(),
                        labels,
                        histograms,
                        container.as_deref(),
                        self.timestamps,
                    )
                    .with_origin_fields(external.as_deref(), self.cardinality),
                ))
            }
            Protocol::Graphite | Protocol::GraphitePickle => self.graphite_encoder(labels),
        }
    }

    /// Plain StatsD: refuses the settings only DogStatsD has a field for.
    fn refuse_dogstatsd_fields(&self, histograms: &HistogramRules) -> Result<(), BuildError> {
        let dogstatsd_only = |setting| {
            Err(BuildError::InvalidSetting {
                setting,
                reason: "DogStatsD only; plain StatsD has no such field",
            })
        };
        if histograms.kinds().any(|k| k == HistogramKind::Distribution) {
            return dogstatsd_only("with_histogram_kind (Distribution)");
        }
        if self.container_id.is_some() || self.origin_detection {
            return dogstatsd_only("with_container_id / with_origin_detection");
        }
        if self.timestamps {
            return dogstatsd_only("with_timestamps");
        }
        if self.external_data.is_some() {
            return dogstatsd_only("with_external_data");
        }
        if self.cardinality.is_some() {
            return dogstatsd_only("with_cardinality");
        }
        Ok(())
    }

    /// The DogStatsD container id: the one set (never empty), or with origin detection the
    /// one found in `/proc/self/cgroup` or `/proc/self/mountinfo`.
    fn container(&self) -> Result<Option<String>, BuildError> {
        if let Some(id) = &self.container_id {
            if id.trim().is_empty() {
                return Err(BuildError::InvalidSetting {
                    setting: "with_container_id",
                    reason: "must not be empty",
                });
            }
            return Ok(Some(id.clone()));
        }
        if !self.origin_detection {
            return Ok(None);
        }
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        let id = crate::env::container_id_from_cgroup(&read("/proc/self/cgroup"))
            .or_else(|| crate::env::container_id_from_mountinfo(&read("/proc/self/mountinfo")));
        tracing::debug!(container_id = ?id, "origin detection");
        Ok(id)
    }

    /// DogStatsD external data: the one set, or with origin detection `DD_EXTERNAL_ENV`;
    /// sanitised, and refused when nothing is left.
    fn external_data(&self) -> Result<Option<String>, BuildError> {
        if let Some(data) = &self.external_data {
            if crate::encode::sanitize_external(data).is_empty() {
                return Err(BuildError::InvalidSetting {
                    setting: "with_external_data",
                    reason: "has no printable character other than `|`",
                });
            }
            return Ok(Some(data.clone()));
        }
        if !self.origin_detection {
            return Ok(None);
        }
        crate::env::external_data(super::constructors::env_var).map_err(|e| {
            BuildError::InvalidEnvironment {
                variable: e.variable,
                value: e.value,
                reason: e.reason,
            }
        })
    }

    fn graphite_encoder(&self, labels: Vec<Label>) -> Result<Encoder, BuildError> {
        let invalid = |setting, reason| Err(BuildError::InvalidSetting { setting, reason });
        if self.labels.is_some() {
            return invalid(
                "with_label_handling",
                "plain StatsD only; for Graphite use with_graphite_tags",
            );
        }
        if self.histogram_default.is_some() || !self.histogram_by_prefix.is_empty() {
            return invalid(
                "with_histogram_kind",
                "Graphite summarises histograms (count, sum, min, max, mean, percentiles); see with_percentiles",
            );
        }
        if self.container_id.is_some() || self.origin_detection || self.timestamps {
            return invalid(
                "with_container_id / with_origin_detection / with_timestamps",
                "DogStatsD only",
            );
        }
        if self.external_data.is_some() || self.cardinality.is_some() {
            return invalid("with_external_data / with_cardinality", "DogStatsD only");
        }
        let mut percentiles = self
            .percentiles
            .clone()
            .unwrap_or_else(|| vec![0.5, 0.9, 0.99, 0.999]);
        if percentiles.iter().any(|q| !(*q > 0.0 && *q <= 1.0)) {
            return invalid("with_percentiles", "quantiles must be within (0, 1]");
        }
        percentiles.sort_by(f64::total_cmp);
        percentiles.dedup();
        let mut suffixes: Vec<String> = percentiles
            .iter()
            .map(|q| crate::encode::percentile_suffix(*q))
            .collect();
        suffixes.sort();
        if suffixes.windows(2).any(|w| w[0] == w[1]) {
            return invalid(
                "with_percentiles",
                "two quantiles give the same suffix (such as 0.125 and 0.0125, both .p125)",
            );
        }
        if self.flush_interval < Duration::from_secs(1) {
            return invalid(
                "with_flush_interval",
                "Graphite needs at least 1 s: carbon stores at most one point per second, so faster flushes overwrite each other",
            );
        }
        let align = if self.aligned_timestamps.unwrap_or(true) {
            self.flush_interval.as_secs()
        } else {
            0
        };
        Ok(Encoder::Graphite(GraphiteEncoder::new(
            self.prefix.as_deref(),
            labels,
            self.graphite_tags.unwrap_or_default(),
            self.counter_mode.unwrap_or_default(),
            align,
            &percentiles,
            self.tag_hash_filenames.unwrap_or(true),
        )))
    }
}
