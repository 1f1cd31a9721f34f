//! [`ExporterBuilder`]: settings that never fail, checked once in `build`/`install`.

use std::time::Duration;

use metrics::{Label, SharedString, Unit};

use crate::encode::{CounterMode, GraphiteTags, HistogramKind, LabelHandling};
use crate::env::EnvError;

/// Anything [`ExporterBuilder::with_global_labels`] accepts as one label: a
/// [`metrics::Label`], or a `(key, value)` pair of strings.
pub trait IntoGlobalLabel {
    /// The label.
    fn into_global_label(self) -> Label;
}

impl IntoGlobalLabel for Label {
    fn into_global_label(self) -> Label {
        self
    }
}

impl<K: Into<SharedString>, V: Into<SharedString>> IntoGlobalLabel for (K, V) {
    fn into_global_label(self) -> Label {
        Label::new(self.0, self.1)
    }
}

/// Largest plaintext payload turned into one pickle frame: its pickle stays well under
/// carbon's 1 MiB frame limit (`PICKLE_RECEIVER_MAX_LENGTH`).
const MAX_PICKLE_PAYLOAD: usize = 512 * 1024;
/// Largest pickle frame we write.
const MAX_PICKLE_FRAME: usize = 1_000_000;

/// Largest per-interval sample cap: 1 MiB of slots per histogram at most.
const MAX_HISTOGRAM_SAMPLES: usize = 65_536;
/// Default cap on live series: generous for one process, yet bounded (about 50 MB).
const DEFAULT_MAX_SERIES: usize = 100_000;
/// The prefix of the exporter's own metrics unless `with_telemetry_prefix` says otherwise.
const DEFAULT_TELEMETRY_PREFIX: &str = "metrics_exporter";
/// Default idle time after which a series no handle holds is removed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The wire protocol the exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain (Etsy) StatsD: `name:value|type[|@rate]`, no tags.
    Statsd,
    /// DogStatsD: StatsD plus `|#tags`, distributions, packed values, Unix sockets.
    DogStatsd,
    /// Graphite (carbon) plaintext: `path value timestamp`.
    Graphite,
    /// Graphite (carbon) pickle: length-prefixed pickled batches of `(path, (timestamp, value))`.
    GraphitePickle,
}

/// Configures and starts an exporter.
///
/// Setters never fail; [`build`](Self::build) and [`install`](Self::install) check everything
/// at once and say exactly what is wrong.
///
/// | setting | default |
/// |---|---|
/// | flush interval | 10 s |
/// | maximum payload length | 1432 bytes (UDP), 65536 bytes (TCP and plain-StatsD Unix stream batches), 8192 bytes (Unix datagrams; DogStatsD Unix streams) |
/// | prefix | none |
/// | global labels | none |
/// | labels | folded into the name |
/// | histograms | `\|ms` timers (StatsD, Graphite summaries), `\|d` distributions (DogStatsD) |
/// | unit of undescribed histograms | seconds |
/// | samples kept per histogram per interval | 1024 |
/// | shutdown timeout | 5 s |
/// | write timeout | 1 s |
/// | connect timeout | 1 s |
/// | DNS re-resolution | every 60 s, and on every reconnect |
/// | stream backlog | 8 MiB |
/// | live series | 100 000 |
/// | idle series expiry | 10 min (or two flush intervals) |
/// | self-telemetry | off |
///
/// The crate docs' "Configuration reference" lists every setter and environment variable.
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
    /// The environment variable the endpoint came from, to name it in an error.
    endpoint_source: Option<&'static str>,
    env_error: Option<EnvError>,
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
    timestamps: bool,
    graphite_tags: Option<GraphiteTags>,
    counter_mode: Option<CounterMode>,
    aligned_timestamps: Option<bool>,
    percentiles: Option<Vec<f64>>,
    default_histogram_unit: Unit,
    histogram_capacity: usize,
    shutdown_timeout: Duration,
    write_timeout: Duration,
    connect_timeout: Duration,
    resolve_interval: Duration,
    max_backlog_bytes: usize,
    max_series: usize,
    idle_timeout: Expiry,
    type_prefixes: bool,
    /// The prefix of the exporter's own metrics; `None`: not sent.
    telemetry: Option<String>,
}

/// Idle expiry as configured: the default adapts to the flush interval, a setting does not.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Default,
    Set(Option<Duration>),
}

impl ExporterBuilder {
    /// Plain StatsD to `endpoint`: `udp://host:port`, `tcp://host:port`, `host:port` (UDP),
    /// `unix:///path` (a Unix stream socket, newline-terminated lines, as Etsy statsd's
    /// `socket` server reads them) or `unixgram:///path` (a Unix datagram socket). IPv6 hosts go in brackets: `udp://[::1]:8125`. The port
    /// defaults to 8125.
    pub fn statsd(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::Statsd, endpoint.into())
    }

    /// DogStatsD to `endpoint`: `udp://host:port` or `host:port`, `unix:///path` (a Unix
    /// stream socket; each payload framed with a 4-byte little-endian length, as the Datadog
    /// Agent reads it) or `unixgram:///path` (a Unix datagram socket).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let guard = ExporterBuilder::dogstatsd("unixgram:///var/run/datadog/dsd.socket")
    ///     .with_global_labels([("env", "prod")])
    ///     .install()?;
    /// metrics::histogram!("request.latency", "route" => "/a").record(0.012);
    /// // sends `request.latency:0.012|d|#env:prod,route:/a`
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dogstatsd(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::DogStatsd, endpoint.into())
    }

    /// DogStatsD configured from the environment as the official Datadog clients do: the
    /// endpoint from `DD_DOGSTATSD_URL`, else `DD_AGENT_HOST` and `DD_DOGSTATSD_PORT`, else
    /// `udp://127.0.0.1:8125`; global tags `env`, `service`, `version` from `DD_ENV`,
    /// `DD_SERVICE`, `DD_VERSION`, and `dd.internal.entity_id` from `DD_ENTITY_ID`.
    ///
    /// Setters called afterwards win over the environment (`with_remote_address` replaces
    /// the endpoint; a global label with the same key replaces the environment's). A malformed
    /// variable is reported by `build`, naming the variable and its value.
    pub fn dogstatsd_from_env() -> Self {
        Self::from_settings(crate::env::dogstatsd(env_var).into())
    }

    /// Any protocol, configured from the environment as the clients our users come from read
    /// it. The protocol is DogStatsD when `DD_DOGSTATSD_URL` or `DD_AGENT_HOST` is set (see
    /// [`dogstatsd_from_env`](Self::dogstatsd_from_env)), else Graphite when `GRAPHITE_URL`
    /// or `GRAPHITE_HOST` is, else plain StatsD:
    ///
    /// | variable | effect |
    /// |---|---|
    /// | `STATSD_URL` | the endpoint (`udp://`, `tcp://`, `unix://`); wins over the next three |
    /// | `STATSD_HOST`, `STATSD_PORT` | host (default `127.0.0.1`) and port (default 8125) |
    /// | `STATSD_PROTOCOL` | `udp` (default) or `tcp`, as sprockets-statsd reads it |
    /// | `STATSD_PREFIX` | [`with_prefix`](Self::with_prefix) |
    /// | `GRAPHITE_URL` | the endpoint (`tcp://`, `udp://`, `unix://`); wins over the next three |
    /// | `GRAPHITE_HOST`, `GRAPHITE_PORT` | host and port (default 2003; 2004 for pickle) |
    /// | `GRAPHITE_PROTOCOL` | `tcp` (plaintext, default), `udp` (plaintext) or `pickle` |
    /// | `GRAPHITE_PREFIX` | [`with_prefix`](Self::with_prefix) |
    ///
    /// Precedence: setters called afterwards > the environment > defaults. Empty values count
    /// as unset; a malformed one (a port of `99999`, `STATSD_PROTOCOL=http`) makes `build`
    /// fail with [`BuildError::InvalidEnvironment`](crate::BuildError::InvalidEnvironment)
    /// naming the variable and its value, never a silent default.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // STATSD_HOST=statsd.internal STATSD_PREFIX=myapp ./app
    /// let guard = ExporterBuilder::from_env()
    ///     .with_flush_interval(Duration::from_secs(5))
    ///     .install()?;
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Self {
        Self::from_settings(crate::env::detect(env_var))
    }

    fn from_settings(env: crate::env::EnvSettings) -> Self {
        let mut builder = Self::new(env.protocol, env.endpoint.0);
        builder.endpoint_source = env.endpoint.1;
        builder.env_labels = env.labels;
        builder.env_error = env.error;
        builder.prefix = env.prefix;
        builder
    }

    /// Graphite plaintext (`path value timestamp`) to `endpoint`: `tcp://host:port` or a bare
    /// `host:port` (TCP), `udp://host:port` (carbon's UDP listener, off by default in
    /// carbon), or `unix:///path` (a stream socket, as carbon-c-relay offers). The port
    /// defaults to 2003.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let guard = ExporterBuilder::graphite("carbon.internal:2003").with_prefix("myapp").install()?;
    /// metrics::counter!("requests", "route" => "/a").increment(1);
    /// // sends `myapp.requests;route=/a 1 1700000010` at the next flush
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn graphite(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::Graphite, endpoint.into())
    }

    /// Graphite pickle batches to carbon's pickle receiver: `tcp://host:port` or a bare
    /// `host:port`, port 2004 by default. Each payload (64 KiB of points by default, at most
    /// 512 KiB) goes out as one frame (or more, should its pickle pass 1 000 000 bytes): a 4-byte big-endian length and a protocol-2 pickle of
    /// `[(path, (timestamp, value)), ...]` with unicode paths, integer timestamps and float
    /// values, which both carbon and go-carbon accept. Everything else is as
    /// [`graphite`](Self::graphite).
    pub fn graphite_pickle(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::GraphitePickle, endpoint.into())
    }

    fn new(protocol: Protocol, endpoint: String) -> Self {
        Self {
            protocol,
            endpoint,
            endpoint_source: None,
            env_error: None,
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
            timestamps: false,
            graphite_tags: None,
            counter_mode: None,
            aligned_timestamps: None,
            percentiles: None,
            default_histogram_unit: Unit::Seconds,
            histogram_capacity: 1024,
            shutdown_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(60),
            max_backlog_bytes: 8 * 1024 * 1024,
            max_series: DEFAULT_MAX_SERIES,
            idle_timeout: Expiry::Default,
            type_prefixes: false,
            telemetry: None,
        }
    }

    /// Replaces the endpoint (same forms as [`statsd`](Self::statsd) and
    /// [`dogstatsd`](Self::dogstatsd)). After [`from_env`](Self::from_env), it also sets
    /// aside a malformed host, port or URL variable, which it replaces; a malformed
    /// `STATSD_PROTOCOL` / `GRAPHITE_PROTOCOL` still fails the build, since it chose the
    /// format.
    pub fn with_remote_address(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self.endpoint_source = None;
        if self
            .env_error
            .as_ref()
            .is_some_and(|e| !e.variable.ends_with("_PROTOCOL"))
        {
            self.env_error = None;
        }
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

    /// Adds labels to every metric: `[("region", "eu")]`, or a `Vec<metrics::Label>` as
    /// `metrics-exporter-dogstatsd` takes them. A metric's own label with the same key wins;
    /// for a key given twice here, the later value wins. Defaults to none.
    pub fn with_global_labels<L: IntoGlobalLabel>(
        mut self,
        labels: impl IntoIterator<Item = L>,
    ) -> Self {
        self.global_labels
            .extend(labels.into_iter().map(IntoGlobalLabel::into_global_label));
        self
    }

    /// Largest payload: one datagram for UDP, one write batch for TCP. Lines are never split;
    /// a single line longer than this is dropped and counted. Defaults to 1432 for UDP (fits
    /// an Ethernet MTU), 65536 for TCP and plain StatsD over Unix streams, and 8192 for Unix
    /// datagram sockets and DogStatsD over Unix streams (the Agent's
    /// `dogstatsd_buffer_size`); must be within
    /// 64..=65507 (UDP), 64..=65536 (Unix datagrams) or 64..=16 MiB (streams). For DogStatsD
    /// never set it above the Agent's buffer: the Agent cuts longer datagrams and drops the
    /// connection on longer stream frames.
    pub fn with_maximum_payload_length(mut self, len: usize) -> Self {
        self.max_payload_len = Some(len);
        self
    }

    /// Puts each series' kind in its name, after the prefix, as sprockets-statsd and Etsy
    /// statsd's Graphite backend lay names out: `app.counters.requests`, `app.gauges.queue`,
    /// `app.timers.latency` (`app.histograms.size` for `|h`). Plain StatsD only; defaults to
    /// off.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125")
    ///     .with_prefix("app")
    ///     .with_type_prefixes(true);
    /// # drop(builder);
    /// ```
    pub fn with_type_prefixes(mut self, enabled: bool) -> Self {
        self.type_prefixes = enabled;
        self
    }

    /// What plain StatsD does with labels: fold them into the name (the default,
    /// [`LabelHandling::FoldIntoName`]), drop them, or send them in one of the tag styles
    /// StatsD servers parse (DogStatsD, InfluxDB, Librato, SignalFx, Graphite; see
    /// [`LabelHandling`]). Plain StatsD only: DogStatsD always sends labels as tags.
    pub fn with_label_handling(mut self, labels: LabelHandling) -> Self {
        self.labels = Some(labels);
        self
    }

    /// Which type histograms are sent as. Defaults to [`HistogramKind::Timer`] (`|ms`) for
    /// StatsD and [`HistogramKind::Distribution`] (`|d`) for DogStatsD.
    pub fn with_histogram_kind(mut self, kind: HistogramKind) -> Self {
        self.histogram_default = Some(kind);
        self
    }

    /// The histogram kind for metrics whose name starts with `prefix` (before any global
    /// prefix is added); the longest matching prefix wins. Defaults to none.
    pub fn with_histogram_kind_for(
        mut self,
        prefix: impl Into<String>,
        kind: HistogramKind,
    ) -> Self {
        self.histogram_by_prefix.push((prefix.into(), kind));
        self
    }

    /// DogStatsD: `true` sends histograms as distributions (`|d`, the default), `false` as
    /// histograms (`|h`). The same as [`with_histogram_kind`](Self::with_histogram_kind); named
    /// as in `metrics-exporter-dogstatsd` so migrating is a rename.
    pub fn send_histograms_as_distributions(self, distributions: bool) -> Self {
        self.with_histogram_kind(if distributions {
            HistogramKind::Distribution
        } else {
            HistogramKind::Histogram
        })
    }

    /// DogStatsD: sends `|c:<id>` on every line, for the Agent's origin detection (honoured
    /// when the Agent has `dogstatsd_origin_detection_client` on). Defaults to none.
    pub fn with_container_id(mut self, id: impl Into<String>) -> Self {
        self.container_id = Some(id.into());
        self
    }

    /// DogStatsD: finds this process's container id (in `/proc/self/cgroup`, or for cgroup v2
    /// with a private namespace in `/proc/self/mountinfo`) at build time and
    /// sends it as `|c:<id>` (an explicit [`with_container_id`](Self::with_container_id) wins).
    /// Off by default: `statsd_exporter` drops lines with fields it does not know.
    pub fn with_origin_detection(mut self, enabled: bool) -> Self {
        self.origin_detection = enabled;
        self
    }

    /// DogStatsD: stamps counters and gauges with `|T<unix seconds>` of the flush (protocol
    /// v1.3, Agent 7.40+), so the Agent skips its own aggregation for them. Off by default:
    /// only safe when a single process sends each series, and `statsd_exporter` drops such lines.
    pub fn with_timestamps(mut self, enabled: bool) -> Self {
        self.timestamps = enabled;
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

    /// Graphite: how labels appear in paths. Defaults to [`GraphiteTags::Tagged`]
    /// (Graphite 1.1 `name;k=v`).
    pub fn with_graphite_tags(mut self, tags: GraphiteTags) -> Self {
        self.graphite_tags = Some(tags);
        self
    }

    /// Graphite: counters as interval deltas or running totals. Defaults to
    /// [`CounterMode::Delta`].
    pub fn with_counter_mode(mut self, mode: CounterMode) -> Self {
        self.counter_mode = Some(mode);
        self
    }

    /// Graphite: stamp points with the flush time aligned down to the flush interval, so
    /// points from many hosts land in the same carbon slot. Defaults to `true`.
    pub fn with_aligned_timestamps(mut self, aligned: bool) -> Self {
        self.aligned_timestamps = Some(aligned);
        self
    }

    /// Graphite: the percentiles each histogram summary reports, as quantiles in `(0, 1]`
    /// (`0.99` is sent as `.p99`). Defaults to 0.5, 0.9, 0.99 and 0.999.
    pub fn with_percentiles(mut self, quantiles: impl IntoIterator<Item = f64>) -> Self {
        self.percentiles = Some(quantiles.into_iter().collect());
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

    /// How often a network destination's host name is re-resolved: UDP sends move to the new
    /// address at the next flush, and a TCP connection to an address the name no longer
    /// gives is replaced; TCP also re-resolves on every reconnect. Defaults to 60 seconds.
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

    /// The most series (distinct name and label sets, all kinds together) kept at once.
    /// Past it, a *new* series gets a no-op handle and is counted in
    /// [`ExporterStats::series_dropped`](crate::ExporterStats::series_dropped) (and logged
    /// once); existing series keep working, and room freed by idle expiry is reused.
    /// Defaults to 100 000; must not be zero. A runaway label (a user id, a URL with ids in it)
    /// then costs a bounded amount of memory instead of all of it.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_max_series(10_000);
    /// # drop(builder);
    /// ```
    pub fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }

    /// Removes series that recorded nothing for `timeout` (found by a scan every quarter
    /// timeout, so within 1.25 × `timeout`), returning their memory; `None` keeps every
    /// series forever. Defaults to 10 minutes (or two flush intervals, if longer);
    /// must be at least the flush interval.
    ///
    /// Expiry never loses an update: a series is removed only while no handle to it exists
    /// (a cached `Counter` keeps its series alive however idle) and it holds nothing unsent;
    /// a later update simply creates it again. Nothing changes on the wire either, since idle
    /// series send nothing, except for Graphite counters in
    /// [`CounterMode::Total`](crate::CounterMode::Total), which are never expired because
    /// their running total would restart.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = Expiry::Set(timeout);
        self
    }

    /// Sends the exporter's own statistics as metrics, after each flush, under the prefix
    /// `metrics_exporter` (change it with
    /// [`with_telemetry_prefix`](Self::with_telemetry_prefix)). Defaults to off.
    ///
    /// The metrics are [`ExporterStats`](crate::ExporterStats) as counters (what changed since
    /// the last report, so a dashboard sums them like any counter) and the live-series count
    /// as a gauge, named and tagged like every other metric (your prefix and global labels
    /// apply). They never count themselves: they travel in their own payloads, after yours,
    /// and are tallied only in `telemetry_lines_sent` / `telemetry_lines_dropped`, which are
    /// not reported, so your statistics are the same with telemetry on or off. A report the
    /// transport does not accept is carried into the next one; none is sent while a stream
    /// destination is down or after a failed send. The crate docs' "Self-telemetry" section lists every
    /// name.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // Sends e.g. `metrics_exporter.lines_sent:42|c` and `metrics_exporter.series:7|g`.
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_telemetry(true);
    /// # drop(builder);
    /// ```
    pub fn with_telemetry(mut self, enabled: bool) -> Self {
        let prefix = self.telemetry.take();
        self.telemetry =
            enabled.then(|| prefix.unwrap_or_else(|| DEFAULT_TELEMETRY_PREFIX.to_owned()));
        self
    }

    /// Sends the exporter's own statistics (see [`with_telemetry`](Self::with_telemetry))
    /// under `prefix`, sanitised like any name; calling it turns telemetry on. A prefix with no
    /// name in it (`""`, `"."`) fails the build, so the stats never go out bare.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // `myapp.statsd_client.lines_dropped.send:3|c`
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125")
    ///     .with_prefix("myapp")
    ///     .with_telemetry_prefix("statsd_client");
    /// # drop(builder);
    /// ```
    pub fn with_telemetry_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.telemetry = Some(prefix.into());
        self
    }
}

/// A variable of the process environment. A value that is not UTF-8 is passed on lossily,
/// never taken as unset: a port or protocol then fails to parse and is reported, a host fails
/// to resolve, and a prefix or tag carries `_` where the bad bytes were.
fn env_var(name: &str) -> Option<String> {
    env_value(std::env::var(name))
}

fn env_value(read: Result<String, std::env::VarError>) -> Option<String> {
    match read {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(raw)) => Some(raw.to_string_lossy().into_owned()),
    }
}

mod build;
mod validate;

pub use build::Exporter;

#[cfg(test)]
mod tests;
