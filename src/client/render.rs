//! How a [`StatsdClient`](super::StatsdClient) call's name and tags become wire bytes: with
//! the recorder's own encoders, so they are sanitised exactly as the recorder's are.

use metrics::{Key, Label};

use super::opts::CallOpts;
use crate::encode::{
    Dialect, DogStatsdEncoder, HistogramKind, MetricType, Rendered, SeriesKind, StatsdEncoder,
    never_continues, statsd_continues_chunk,
};
use crate::lines::ChunkRule;

/// The recorder's encoder a client renders names and tags with.
#[derive(Debug)]
pub(crate) enum ClientEncoder {
    Statsd(StatsdEncoder),
    DogStatsd(DogStatsdEncoder),
}

impl ClientEncoder {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Statsd(_) => Dialect::Statsd,
            Self::DogStatsd(_) => Dialect::DogStatsd,
        }
    }

    /// Which lines travel together: the Etsy negative-gauge pair, in plain StatsD.
    pub(crate) fn continues(&self) -> ChunkRule {
        match self {
            Self::Statsd(_) => statsd_continues_chunk,
            Self::DogStatsd(_) => never_continues,
        }
    }

    /// The global labels, then `tags` (which win, being later), for an event's or a service
    /// check's tags.
    pub(crate) fn with_global_labels(&self, tags: &[Label]) -> Vec<Label> {
        let global = match self {
            Self::Statsd(_) => &[][..],
            Self::DogStatsd(e) => e.global_labels(),
        };
        global.iter().chain(tags).cloned().collect()
    }

    /// Renders a call's name and tags into `out` as the recorder would (the builder's prefix,
    /// global labels, label handling, type prefixes; DogStatsD's `|c:`, `|e:`, and `|card:`
    /// from `opts` or the builder). A `raw` call's name is the prefix and `raw` as given.
    /// Returns whether a usable name is left.
    pub(crate) fn render(
        &self,
        raw: Option<&str>,
        name: &str,
        kind: MetricType,
        opts: &CallOpts<'_>,
        out: &mut Rendered,
    ) -> bool {
        let labels: Vec<Label> = opts
            .tags
            .iter()
            .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
            .collect();
        // A raw line's name is the caller's: a stand-in renders the tag section only.
        let key = Key::from_parts(raw.map_or(name, |_| "raw").to_owned(), labels);
        let series = match kind {
            MetricType::Counter => Some(SeriesKind::Counter),
            MetricType::Gauge => Some(SeriesKind::Gauge),
            MetricType::Timer | MetricType::Histogram => Some(SeriesKind::Histogram),
            MetricType::Set => Some(SeriesKind::Set),
            MetricType::Distribution => None,
        };
        let prefix = match self {
            Self::Statsd(e) => {
                let histogram = if kind == MetricType::Timer {
                    HistogramKind::Timer
                } else {
                    HistogramKind::Histogram
                };
                e.render_typed(series, histogram, &key, out);
                e.prefix()
            }
            Self::DogStatsd(e) => {
                e.render_with(&key, opts.cardinality.or(e.cardinality()), out);
                e.prefix()
            }
        };
        if let Some(raw) = raw {
            out.clear();
            out.name_buf().extend_from_slice(prefix);
            if !prefix.is_empty() {
                out.name_buf().push(b'.');
            }
            out.name_buf().extend_from_slice(raw.as_bytes());
            out.shortened = false;
        }
        out.sendable()
    }
}
