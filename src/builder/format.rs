//! Setters for protocol-specific formatting: histogram kinds and units, DogStatsD fields,
//! Graphite options.

use metrics::Unit;

use super::ExporterBuilder;
use crate::encode::{Cardinality, CounterMode, GraphiteTags, HistogramKind};

impl ExporterBuilder {
    /// Which type histograms are sent as. Defaults to [`HistogramKind::Timer`] (`|ms`) for
    /// StatsD and [`HistogramKind::Distribution`] (`|d`) for DogStatsD. The kind decides the
    /// unit on the wire: [histogram units](crate#histogram-units).
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

    /// The unit assumed for histograms that no `describe_histogram!` gave a unit, when
    /// converting to milliseconds for `|ms` timers (no other line is converted:
    /// [histogram units](crate#histogram-units)). Defaults to [`Unit::Seconds`], because
    /// `metrics` records a `Duration` as seconds. A non-time unit sends values as recorded.
    ///
    /// With the default, an undescribed histogram of something that is not a time (bytes,
    /// items) is multiplied by 1000 and sent as a timer: describe such histograms with their
    /// unit (`describe_histogram!("size", Unit::Bytes, "...")`), or send histograms as `|h`
    /// with [`with_histogram_kind`](Self::with_histogram_kind).
    pub fn with_default_histogram_unit(mut self, unit: Unit) -> Self {
        self.default_histogram_unit = unit;
        self
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

    /// DogStatsD: sends external data `|e:<data>` on every line (see the crate docs'
    /// [DogStatsD](crate#dogstatsd) section for the protocol and Agent versions), which the
    /// Agent uses with the container id for origin detection. Defaults to none, or with
    /// [`with_origin_detection`](Self::with_origin_detection) to `DD_EXTERNAL_ENV` (this
    /// setter wins). Sanitised as the official clients do: `|` and every character that is
    /// not printable are removed; `build` refuses a value with nothing left.
    pub fn with_external_data(mut self, data: impl Into<String>) -> Self {
        self.external_data = Some(data.into());
        self
    }

    /// DogStatsD: sends `|card:<level>` on every line ([DogStatsD](crate#dogstatsd)), asking the Agent for
    /// that tag cardinality of the tags it adds by origin detection. Defaults to none (the
    /// Agent's own setting), or to `DD_CARDINALITY` (else `DATADOG_CARDINALITY`) with
    /// [`dogstatsd_from_env`](Self::dogstatsd_from_env) and [`from_env`](Self::from_env).
    /// A [`StatsdClient`](crate::StatsdClient) call can ask for another
    /// ([`CallOpts::cardinality`](crate::CallOpts::cardinality)).
    pub fn with_cardinality(mut self, cardinality: Cardinality) -> Self {
        self.cardinality = Some(cardinality);
        self
    }

    /// DogStatsD: stamps counters and gauges with `|T<unix seconds>` of the flush (protocol
    /// v1.3, Agent 7.40+), so the Agent skips its own aggregation for them. Off by default:
    /// only safe when a single process sends each series, and `statsd_exporter` drops such lines.
    pub fn with_timestamps(mut self, enabled: bool) -> Self {
        self.timestamps = enabled;
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

    /// Graphite, and plain StatsD with [`LabelHandling::DogStatsd`](crate::LabelHandling::DogStatsd)
    /// (Etsy statsd makes those tags carbon tags): whether the carbon you send to names a tagged series' whisper file after a
    /// hash of its name (`true`, carbon's default `TAG_HASH_FILENAMES = True`) or after the
    /// name itself (`false`), which then must fit a 255-byte file name. Defaults to `true`.
    /// Set it as in your `carbon.conf`: it decides how far tagged names are shortened (see
    /// [Long names](crate#long-names)).
    pub fn with_graphite_tag_hash_filenames(mut self, hashed: bool) -> Self {
        self.tag_hash_filenames = Some(hashed);
        self
    }

    /// Graphite: the percentiles each histogram summary reports, as quantiles in `(0, 1]`
    /// (`0.99` is sent as `.p99`), in the unit the histogram was recorded in
    /// ([histogram units](crate#histogram-units)). Defaults to 0.5, 0.9, 0.99 and 0.999.
    pub fn with_percentiles(mut self, quantiles: impl IntoIterator<Item = f64>) -> Self {
        self.percentiles = Some(quantiles.into_iter().collect());
        self
    }
}
