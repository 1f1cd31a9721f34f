//! Error types. Every variant says what is wrong and keeps its source.

use std::io;

/// Why an exporter could not be built, started or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The endpoint string is not one of the accepted forms (`udp://host:port`,
    /// `tcp://host:port`, `host:port`, `unix:///path`, `unixgram:///path`).
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An environment variable is set but unusable.
    #[error("environment variable {variable}={value:?}: {reason}")]
    InvalidEnvironment {
        /// The variable's name.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The flush interval is zero.
    #[error("the flush interval must be greater than zero")]
    ZeroFlushInterval,
    /// The maximum payload length is outside what the transport can carry.
    #[error("maximum payload length {len} is outside {min}..={max} for this transport")]
    PayloadLength {
        /// The length asked for.
        len: usize,
        /// The smallest allowed.
        min: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The setter's name.
        setting: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The background flusher could not be started.
    #[error("cannot start the flusher")]
    Spawn(#[source] io::Error),
    /// A global recorder is already installed (by us or another crate).
    #[error("a global metrics recorder is already installed")]
    RecorderAlreadyInstalled,
}

/// Why a flush or a shutdown did not complete.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The flusher has stopped (shut down, or its runtime went away).
    #[error("the flusher is not running")]
    NotRunning,
    /// The destination cannot be reached now; nothing was sent and nothing was lost.
    #[error("the destination cannot be reached now; the points stay queued")]
    Unreachable,
    /// A connection broke mid-way; what was not sent stays queued.
    #[error("the connection broke mid-way; the unsent points stay queued")]
    Incomplete,
    /// The flusher did not answer in time. It keeps running; the flush may still happen.
    /// For a shutdown: the final flush was cut short by the shutdown timeout (what it could
    /// not send is counted in `lines_dropped_shutdown`).
    #[error("the flusher did not finish within the timeout")]
    Timeout,
    /// The final flush finished in time but could not deliver everything (the destination
    /// is down, or broke mid-way): these lines are lost, and counted in
    /// `lines_dropped_shutdown`.
    #[error("the final flush could not deliver {lines} lines; they are dropped")]
    Dropped {
        /// Lines dropped.
        lines: u64,
    },
}

/// Why a DogStatsD event or service check, a StatsD metric line
/// ([`MetricLine`](crate::MetricLine), [`StatsdClient`](crate::StatsdClient)) or a Graphite
/// point ([`GraphitePoints`](crate::GraphitePoints)) could not be encoded or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The event's title is empty: the Datadog Agent drops such an event.
    #[error("an event needs a title: the Datadog Agent drops an event whose title is empty")]
    EmptyTitle,
    /// The service check's name has nothing usable left once sanitised.
    #[error("a service check needs a name with letters or digits in it")]
    EmptyName,
    /// The Graphite point's value is NaN or infinite: carbon drops NaN and cannot read `inf`.
    #[error("a Graphite point needs a finite value: carbon drops NaN and cannot read infinities")]
    NotFinite,
    /// The Graphite path has nothing usable left once sanitised, or is a tagged name too long
    /// for carbon even shortened.
    #[error(
        "a Graphite path needs a name that is not empty or only dots, and a tagged one must fit carbon's file names"
    )]
    EmptyPath,
    /// The Graphite line is longer than carbon's 16384-byte line limit (carbon would drop the
    /// connection).
    #[error("the Graphite line is longer than carbon's 16384-byte limit")]
    LineTooLong,
    /// A metric name that is empty or would break the line (`:`, `|`, a control character;
    /// for DogStatsD also a leading `_e{` or `_sc`, which the Agent reads as an event or a
    /// service check).
    #[error("a metric name must not be empty nor hold `:`, `|` or control characters")]
    InvalidName,
    /// A value that cannot be sent: NaN or infinite, a negative timer, or text that is empty,
    /// would break the line, or (for a type other than a set) is not a finite number.
    #[error(
        "the value cannot be sent: not finite, a negative timer, or text that would break the line"
    )]
    InvalidValue,
    /// A tag whose key is empty or holds `:`, or whose key or value holds `,`, `|` or a
    /// control character.
    #[error(
        "a tag key must not be empty nor hold `:`; tags must not hold `,`, `|` or control characters"
    )]
    InvalidTag,
    /// A sample rate outside (0, 1], or NaN.
    #[error("a sample rate must be within (0, 1]")]
    InvalidSampleRate,
    /// A timestamp of 0 or past `i64::MAX` (the Agent needs a positive 64-bit signed one).
    #[error("a timestamp must be positive and at most i64::MAX")]
    InvalidTimestamp,
    /// A container id or external data that is empty or holds `|` or a control character.
    #[error("a container id or external data must not be empty nor hold `|` or control characters")]
    InvalidField,
    /// Something the dialect has no way to carry (a distribution, timestamp, gauge delta,
    /// event or service check where the receiver cannot read it).
    #[error("not supported by this dialect: {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// More than the builder's backlog bound is waiting to be sent: the line is dropped.
    #[error("more than the backlog bound is waiting to be sent; the line is dropped")]
    QueueFull,
    /// The line is longer than the maximum payload length on its own: dropped.
    #[error("the line is longer than the maximum payload length")]
    TooLong,
}
