//! Setters for what every metric is called and tagged with: prefix, global labels, label
//! handling and type prefixes.

use metrics::{Label, SharedString};

use super::ExporterBuilder;
use crate::encode::LabelHandling;

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

impl ExporterBuilder {
    /// Prepends `prefix` (sanitised, as dot-separated segments) to every metric name.
    /// Defaults to none.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
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

    /// Puts each series' kind in its name, after the prefix, as sprockets-statsd and Etsy
    /// statsd's Graphite backend lay names out: `app.counters.requests`, `app.gauges.queue`,
    /// `app.timers.latency` (`app.histograms.size` for `|h`), `app.sets.users`. Plain StatsD only; defaults to
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
}
