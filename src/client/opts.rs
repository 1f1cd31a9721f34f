//! [`CallOpts`]: the per-call options of a [`StatsdClient`](super::StatsdClient) call.

use crate::encode::Cardinality;

/// Options for one [`StatsdClient`](super::StatsdClient) call: tags, a sample rate, a
/// timestamp and a tag cardinality. Borrowed and `Copy`; building one allocates nothing.
///
/// ```
/// use metrics_exporter_statsd_graphite::{CallOpts, Cardinality};
///
/// const SAMPLED: CallOpts<'static> = CallOpts::new().sample_rate(0.1);
/// let opts = CallOpts::default()
///     .tags(&[("route", "/a"), ("method", "GET")])
///     .sample_rate(0.5)
///     .cardinality(Cardinality::Low);
/// # let _ = (SAMPLED, opts);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallOpts<'a> {
    pub(crate) tags: &'a [(&'a str, &'a str)],
    pub(crate) sample_rate: f64,
    pub(crate) timestamp: Option<u64>,
    pub(crate) cardinality: Option<Cardinality>,
}

impl Default for CallOpts<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> CallOpts<'a> {
    /// No tags, rate 1 (every call sent), no timestamp, the builder's cardinality.
    pub const fn new() -> Self {
        Self {
            tags: &[],
            sample_rate: 1.0,
            timestamp: None,
            cardinality: None,
        }
    }

    /// The call's tags (labels), sanitised and merged with the builder's global labels as
    /// the recorder's are.
    #[must_use]
    pub const fn tags(mut self, tags: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = tags;
        self
    }

    /// Samples the call: it is sent with probability `rate`, carrying `|@rate`. Must be in
    /// (0, 1]; see the client's rules.
    #[must_use]
    pub const fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }

    /// `|T<unix seconds>`: DogStatsD counters and gauges only.
    #[must_use]
    pub const fn timestamp(mut self, unix_secs: u64) -> Self {
        self.timestamp = Some(unix_secs);
        self
    }

    /// `|card:<level>` for this call instead of the builder's
    /// ([`with_cardinality`](crate::ExporterBuilder::with_cardinality)). DogStatsD only;
    /// plain StatsD ignores it.
    #[must_use]
    pub const fn cardinality(mut self, level: Cardinality) -> Self {
        self.cardinality = Some(level);
        self
    }
}
