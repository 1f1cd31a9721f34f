//! [`ExporterBuilder`]: settings that never fail, checked once in `build`/`install`.
//!
//! This file holds the builder and its defaults. The
//! setters live in one file per concern (`constructors`, `names`, `format`, `delivery`,
//! `limits`, `spread`, `telemetry`); `validate` checks them all into a `Config` and an `Encoder`, and
//! `build` starts the exporter.

use std::time::Duration;

use metrics::{Label, Unit};

use crate::encode::{Cardinality, CounterMode, GraphiteTags, HistogramKind, LabelHandling};
use crate::env::EnvError;
use crate::env_origin::EnvOrigin;
use crate::protocol::Protocol;

/// Largest plaintext payload turned into one pickle frame: its pickle stays well under
/// carbon's 1 MiB frame limit (`PICKLE_RECEIVER_MAX_LENGTH`).
const MAX_PICKLE_PAYLOAD: usize = 512 * 1024;

/// Largest per-interval sample cap: 1 MiB of slots per histogram at most.
const MAX_HISTOGRAM_SAMPLES: usize = 65_536;
/// Default cap on live series: generous for one process, yet bounded (about 50 MB).
const DEFAULT_MAX_SERIES: usize = 100_000;
/// Default cap on the live series of one metric: OpenTelemetry SDKs' default cardinality
/// limit per instrument, and 2% of the default total, so a storm on one metric leaves 98% of
/// the total to the others. Never more than half of `max_series` unless set.
const DEFAULT_MAX_SERIES_PER_METRIC: usize = 2_000;
/// The prefix of the exporter's own metrics unless `with_telemetry_prefix` says otherwise.
const DEFAULT_TELEMETRY_PREFIX: &str = "metrics_exporter";
/// Default idle time after which a series no handle holds is removed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default wait before the first reconnect attempt.
const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Default cap on the wait between reconnect attempts.
const DEFAULT_MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

/// Configures and starts an exporter.
///
/// Setters never fail; [`build`](Self::build) and [`install`](Self::install) check everything
/// at once and say exactly what is wrong.
///
/// Every constructor, setter and environment variable, with its default, is listed once in the
/// crate docs' [Configuration reference](crate#configuration-reference).
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
    /// The environment variable the endpoint came from and its raw value, to name them in an
    /// error.
    endpoint_source: Option<(&'static str, String)>,
    /// Every environment variable set but unusable; `build` reports the first.
    env_errors: Vec<EnvError>,
    /// What a from-env constructor chose, logged once by `build`.
    env_origin: Option<EnvOrigin>,
    /// On or off, and what said so (`STATSD_ENABLED` or `with_enabled`); `None`: on.
    switch: Option<(bool, &'static str)>,
    prefix: Option<String>,
    flush_interval: Duration,
    /// Labels from the environment; explicit global labels win over them.
    env_labels: Vec<Label>,
    global_labels: Vec<Label>,
    max_payload_len: Option<usize>,
    labels: Option<LabelHandling>,
    histogram_default: Option<HistogramKind>,
    histogram_by_prefix: Vec<(String, HistogramKind)>,
    container_id: Option<String>,
    origin_detection: bool,
    external_data: Option<String>,
    cardinality: Option<Cardinality>,
    timestamps: bool,
    graphite_tags: Option<GraphiteTags>,
    counter_mode: Option<CounterMode>,
    aligned_timestamps: Option<bool>,
    tag_hash_filenames: Option<bool>,
    percentiles: Option<Vec<f64>>,
    default_histogram_unit: Unit,
    histogram_capacity: usize,
    set_capacity: usize,
    shutdown_timeout: Duration,
    write_timeout: Duration,
    connect_timeout: Duration,
    resolve_interval: Duration,
    reconnect_delay: Duration,
    max_reconnect_delay: Duration,
    max_backlog_bytes: usize,
    max_series: usize,
    /// `None`: [`DEFAULT_MAX_SERIES_PER_METRIC`], or half of `max_series` if that is less.
    max_series_per_metric: Option<usize>,
    idle_timeout: Expiry,
    continuity: Continuity,
    type_prefixes: bool,
    /// The prefix of the exporter's own metrics; `None`: not sent.
    telemetry: Option<String>,
    /// The span of aligned Graphite sends' delays; zero: off.
    send_spread: Duration,
    /// Replaces the hostname as the source of this host's delay.
    send_spread_seed: Option<u64>,
}

/// What idle series send, as configured (see `continuity`).
#[derive(Debug, Clone, Copy)]
struct Continuity {
    gauge_resend: bool,
    /// `None`: the protocol's default (see `with_counter_zeros`).
    counter_zeros: Option<bool>,
}

/// Idle expiry as configured: the default adapts to the flush interval, a setting does not.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Default,
    Set(Option<Duration>),
}

impl ExporterBuilder {
    fn new(protocol: Protocol, endpoint: String) -> Self {
        Self {
            protocol,
            endpoint,
            endpoint_source: None,
            env_errors: Vec::new(),
            env_origin: None,
            switch: None,
            prefix: None,
            flush_interval: Duration::from_secs(10),
            env_labels: Vec::new(),
            global_labels: Vec::new(),
            max_payload_len: None,
            labels: None,
            histogram_default: None,
            histogram_by_prefix: Vec::new(),
            container_id: None,
            origin_detection: false,
            external_data: None,
            cardinality: None,
            timestamps: false,
            graphite_tags: None,
            counter_mode: None,
            aligned_timestamps: None,
            tag_hash_filenames: None,
            percentiles: None,
            default_histogram_unit: Unit::Seconds,
            histogram_capacity: 1024,
            set_capacity: crate::aggregate::DEFAULT_SET_CAPACITY,
            shutdown_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(60),
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            max_reconnect_delay: DEFAULT_MAX_RECONNECT_DELAY,
            max_backlog_bytes: 8 * 1024 * 1024,
            max_series: DEFAULT_MAX_SERIES,
            max_series_per_metric: None,
            idle_timeout: Expiry::Default,
            continuity: Continuity {
                gauge_resend: true,
                counter_zeros: None,
            },
            type_prefixes: false,
            telemetry: None,
            send_spread: Duration::ZERO,
            send_spread_seed: None,
        }
    }
}

mod build;
mod capture;
mod constructors;
mod continuity;
mod delivery;
mod disabled;
mod format;
mod limits;
mod names;
mod spread;
mod telemetry;
mod validate;

pub use build::Exporter;
pub use names::IntoGlobalLabel;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod env_tests;
