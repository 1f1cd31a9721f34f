//! [`Protocol`]: which wire format a builder was made for.
//!
//! Its own module because both the environment reader (`env`, which picks a protocol from the
//! variables set) and the builder use it: the builder depends on `env`, and neither depends
//! back. Crate-private: users choose a protocol by its constructor (`ExporterBuilder::statsd`
//! and friends), and no public item takes or returns one.

/// The wire protocol the exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Plain (Etsy) StatsD: `name:value|type[|@rate]`, no tags.
    Statsd,
    /// DogStatsD: StatsD plus `|#tags`, distributions, packed values, Unix sockets.
    DogStatsd,
    /// Graphite (carbon) plaintext: `path value timestamp`.
    Graphite,
    /// Graphite (carbon) pickle: length-prefixed pickled batches of `(path, (timestamp, value))`.
    GraphitePickle,
}
