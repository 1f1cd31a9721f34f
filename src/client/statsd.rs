//! [`StatsdClient`]: explicit StatsD and DogStatsD lines without the recorder.

use std::time::Duration;

use super::Outbox;
use super::render::ClientEncoder;
use crate::config::Config;
use crate::encode::sanitize::push_member;
use crate::encode::wire_rate;
use crate::encode::{
    Dialect, Event, MetricType, MetricValue, Parts, Rendered, ServiceCheck, check_name,
};
use crate::error::{EncodeError, FlushError};
use crate::random::random_unit;
use crate::stats::{ExporterStats, add};
use crate::transport::MemorySink;

use super::opts::CallOpts;

/// Sends explicit StatsD or DogStatsD metrics, events and service checks, batched: what
/// aiostatsd, sprockets-statsd and Datadog's clients offer, for what the `metrics` facade
/// has no call for (signed counter deltas, gauge deltas, sets, sampled calls, events). Build
/// it with [`ExporterBuilder::build_statsd_client`](crate::ExporterBuilder::build_statsd_client).
///
/// Plain StatsD (Etsy statsd, collectd, `statsd_exporter`...):
///
/// ```no_run
/// use std::time::Duration;
/// use metrics_exporter_statsd_graphite::{CallOpts, ExporterBuilder, LabelHandling};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut client = ExporterBuilder::statsd("udp://127.0.0.1:8125")
///     .with_prefix("app")
///     .with_label_handling(LabelHandling::DogStatsd)
///     .build_statsd_client()?;
/// let none = CallOpts::default();
/// client.count("jobs", -3, none);                      // app.jobs:-3|c
/// client.incr("jobs", none);                           // app.jobs:1|c
/// client.gauge("queue", -2.0, none);                   // app.queue:0|g + app.queue:-2|g
/// client.gauge_delta("queue", 3.0, none);              // app.queue:+3|g
/// client.timing("db", Duration::from_micros(12_500), none); // app.db:12.5|ms
/// client.histogram("size", 512.0, none.tags(&[("kind", "png")])); // app.size:512|h|#kind:png
/// client.set("users", "alice", none);                  // app.users:alice|s
/// client.count("hits", 1, none.sample_rate(0.1));      // sent 1 time in 10: app.hits:1|c|@0.1
/// client.raw("legacy.requests,host=a", "1", metrics_exporter_statsd_graphite::MetricType::Counter, none)?;
/// client.flush().await?;
/// let stats = client.close().await?;
/// println!("{} lines sent", stats.lines_sent);
/// # Ok(())
/// # }
/// ```
///
/// DogStatsD (the Datadog Agent):
///
/// ```no_run
/// use metrics_exporter_statsd_graphite::{
///     AlertType, CallOpts, Cardinality, Event, ExporterBuilder, ServiceCheck, ServiceCheckStatus,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut client = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125")
///     .with_global_labels([("env", "prod")])
///     .build_statsd_client()?;
/// let opts = CallOpts::default().tags(&[("route", "/a")]);
/// client.count("requests", 2, opts);            // requests:2|c|#env:prod,route:/a
/// client.distribution("latency", 0.012, opts);  // latency:0.012|d|#env:prod,route:/a
/// client.gauge("backlog", 7.0, opts.timestamp(1_700_000_000)); // ...|#env:prod,route:/a|T1700000000
/// client.gauge("pods", 3.0, opts.cardinality(Cardinality::Orchestrator)); // ...|card:orchestrator
/// client.event(&Event::new("Deploy", "v1.2 is out").with_alert_type(AlertType::Success))?;
/// client.service_check(&ServiceCheck::new("db.reachable", ServiceCheckStatus::Ok))?;
/// client.flush().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Rules
///
/// - **Names and tags** are sanitised exactly as the recorder's are for the protocol (the
///   builder's prefix, global labels, plain StatsD's [`LabelHandling`](crate::LabelHandling)
///   and type prefixes apply, the call's type choosing `timers.` or `histograms.`, and sets
///   `sets.` as the recorder's do); a name with nothing usable left is dropped and counted in
///   [`values_dropped_unnamed`](ExporterStats::values_dropped_unnamed). A set member is
///   cleaned as the recorder's sets clean theirs (`:`, `|` and control characters become
///   `_`; rules in the crate docs' "Aggregation semantics").
///   [`raw`](Self::raw) is the exception: its name and value are checked, never changed.
/// - **Returns**: every metric call returns `true` when its line is queued or it was
///   deliberately sampled out, `false` when it is dropped, and every drop is counted: an
///   invalid value (NaN, infinite, a negative timer), a sample rate outside (0, 1], or a call
///   the dialect cannot carry in
///   [`values_dropped_invalid`](ExporterStats::values_dropped_invalid); a line longer than
///   the payload limit in [`lines_dropped_too_long`](ExporterStats::lines_dropped_too_long);
///   a call made while more than the backlog bound
///   ([`with_max_backlog_bytes`](crate::ExporterBuilder::with_max_backlog_bytes)) waits in
///   [`lines_dropped_send`](ExporterStats::lines_dropped_send). So after a successful
///   `close`, calls = `lines_sent` (less one per Etsy negative-gauge pair) +
///   `samples_sampled_out` + the drops.
/// - **Dialects**: [`distribution`](Self::distribution) is DogStatsD only (Etsy statsd reads
///   `|d` as a counter); [`gauge_delta`](Self::gauge_delta) is plain StatsD only (the Agent
///   has no deltas: `-5|g` sets -5); events and service checks are DogStatsD only (an
///   [`EncodeError::Unsupported`]). Each such refusal is counted, and logged once per client
///   at warn.
/// - **Gauges**: [`gauge`](Self::gauge) sets the value. In plain StatsD a negative one goes as
///   the pair `name:0|g` + `name:-5|g` in one payload, as the recorder sends it, since Etsy
///   reads a signed value as a delta.
/// - **Sampling**: [`CallOpts::sample_rate`], rounded to the 9 decimal places the wire
///   carries (one that rounds to 0, below 0.5e-9, is refused), must be in (0, 1]; the call is
///   then sent with that rounded probability (a fresh random draw per call) and the kept ones
///   carry it as `|@rate` (plain decimals, as the recorder writes rates), so receivers scale
///   counters, and
///   timers' counts, back up; sampled-out calls are counted in
///   [`samples_sampled_out`](ExporterStats::samples_sampled_out). Gauges and sets are sampled
///   too, as datadog-go does: the caller asked for less traffic, and a gauge's last kept
///   value still stands. But no receiver scales them (Etsy statsd and the Agent ignore the
///   rate on gauges and sets), so a sampled set undercounts its distinct members: sample
///   sets only when an estimate will do.
/// - **Timestamps** ([`CallOpts::timestamp`], `|T`): counters and gauges
///   only, as the Agent reads them. Refused (false, counted) for other types and for plain
///   StatsD, which stamps values on arrival: a backfilled value would land at the wrong time.
///   The builder's [`with_timestamps`](crate::ExporterBuilder::with_timestamps) is for the
///   recorder's flushes; the client stamps only the calls that ask.
/// - **Cardinality** ([`CallOpts::cardinality`]) overrides the builder's `|card:` for one
///   call; plain StatsD has no such field and ignores it.
/// - **Batching**: calls between flushes are packed into full payloads (never one datagram
///   per call), bounded by the backlog bound; events and service checks share the payloads,
///   and one longer than a payload is dropped and counted.
/// - **Flushing** is explicit: nothing is sent until [`flush`](Self::flush) or
///   [`close`](Self::close) (which flushes). Use the client inside a tokio runtime.
#[derive(Debug)]
pub struct StatsdClient {
    encoder: ClientEncoder,
    outbox: Outbox,
    scratch: Rendered,
    /// The cleaned set member, reused.
    member: String,
    /// What was refused for the dialect and already logged.
    warned: Vec<&'static str>,
}

impl StatsdClient {
    /// This client, sending into `sink` instead of a socket.
    pub(crate) fn capturing(mut self, sink: MemorySink) -> Self {
        self.outbox = self.outbox.capturing(sink);
        self
    }

    /// A client over `config`; with `send` false it sends nothing (see
    /// [`ExporterBuilder::build_disabled_statsd_client`](crate::ExporterBuilder::build_disabled_statsd_client)).
    pub(crate) fn new(encoder: ClientEncoder, config: Config, send: bool) -> Self {
        let outbox = Outbox::new(config, encoder.continues(), None);
        Self {
            outbox: if send { outbox } else { outbox.discarding() },
            encoder,
            scratch: Rendered::default(),
            member: String::new(),
            warned: Vec::new(),
        }
    }

    /// Adds the signed `delta` to a counter: `name:-3|c`.
    pub fn count(&mut self, name: &str, delta: i64, opts: CallOpts<'_>) -> bool {
        self.metric(name, MetricValue::Integer(delta), MetricType::Counter, opts)
    }

    /// Adds 1 to a counter.
    pub fn incr(&mut self, name: &str, opts: CallOpts<'_>) -> bool {
        self.count(name, 1, opts)
    }

    /// Subtracts 1 from a counter.
    pub fn decr(&mut self, name: &str, opts: CallOpts<'_>) -> bool {
        self.count(name, -1, opts)
    }

    /// Sets a gauge to `value` (plain StatsD: a negative value as the Etsy pair).
    pub fn gauge(&mut self, name: &str, value: f64, opts: CallOpts<'_>) -> bool {
        self.metric(name, MetricValue::Float(value), MetricType::Gauge, opts)
    }

    /// Moves a gauge by `delta`: `+3|g`, `-5|g`. Plain StatsD only: refused (false, counted)
    /// for DogStatsD, whose gauges have no deltas.
    pub fn gauge_delta(&mut self, name: &str, delta: f64, opts: CallOpts<'_>) -> bool {
        self.metric(
            name,
            MetricValue::GaugeDelta(delta),
            MetricType::Gauge,
            opts,
        )
    }

    /// Records a duration as a timer in milliseconds, fractions kept: 12.5 ms is `12.5|ms`.
    pub fn timing(&mut self, name: &str, duration: Duration, opts: CallOpts<'_>) -> bool {
        #[allow(
            clippy::cast_precision_loss,
            reason = "nanoseconds as f64: exact to 104 days"
        )]
        let millis = duration.as_nanos() as f64 / 1e6;
        self.timing_ms(name, millis, opts)
    }

    /// Records a timer value in milliseconds (`|ms`); a negative one is refused.
    pub fn timing_ms(&mut self, name: &str, millis: f64, opts: CallOpts<'_>) -> bool {
        self.metric(name, MetricValue::Float(millis), MetricType::Timer, opts)
    }

    /// Records a histogram value (`|h`).
    pub fn histogram(&mut self, name: &str, value: f64, opts: CallOpts<'_>) -> bool {
        self.metric(name, MetricValue::Float(value), MetricType::Histogram, opts)
    }

    /// Records a distribution value (`|d`). DogStatsD only: refused for plain StatsD.
    pub fn distribution(&mut self, name: &str, value: f64, opts: CallOpts<'_>) -> bool {
        self.metric(
            name,
            MetricValue::Float(value),
            MetricType::Distribution,
            opts,
        )
    }

    /// Adds `member` to a set (`|s`), cleaned so it cannot break the line (see the rules).
    pub fn set(&mut self, name: &str, member: &str, opts: CallOpts<'_>) -> bool {
        let mut clean = std::mem::take(&mut self.member);
        clean.clear();
        push_member(&mut clean, member);
        let sent = self.metric(name, MetricValue::Text(&clean), MetricType::Set, opts);
        self.member = clean;
        sent
    }

    /// Queues `name:value|type` with `name` and `value` exactly as given (sprockets-statsd's
    /// `inject_metric`): checked, never fixed, as [`MetricLine`](crate::MetricLine) checks
    /// them. The builder's prefix goes before the name; the tags and global labels are sent
    /// in the dialect's tag section (DogStatsD, and plain StatsD with
    /// [`LabelHandling::DogStatsd`](crate::LabelHandling::DogStatsd); the other label styles
    /// live in the name, which is yours here). Sampling and drops as for every call.
    ///
    /// # Errors
    /// Why the line was dropped (counted in the statistics), as an [`EncodeError`].
    pub fn raw(
        &mut self,
        name: &str,
        value: &str,
        kind: MetricType,
        opts: CallOpts<'_>,
    ) -> Result<(), EncodeError> {
        self.submit(Some(name), name, MetricValue::Text(value), kind, opts)
    }

    /// Queues a DogStatsD event (see [`Event`]), with the builder's global labels merged into
    /// its tags (the event's own win).
    ///
    /// # Errors
    /// [`EncodeError::Unsupported`] for plain StatsD, [`EncodeError::EmptyTitle`],
    /// [`EncodeError::TooLong`] for an event longer than a payload, and
    /// [`EncodeError::QueueFull`]; each counted.
    pub fn event(&mut self, event: &Event) -> Result<(), EncodeError> {
        let mut event = event.clone();
        event.tags = self.encoder.with_global_labels(&event.tags);
        self.queue_line("events", |out| event.encode(out))
    }

    /// Queues a DogStatsD service check (see [`ServiceCheck`]), with the builder's global
    /// labels merged into its tags.
    ///
    /// # Errors
    /// As [`event`](Self::event), with [`EncodeError::EmptyName`] for a nameless check.
    pub fn service_check(&mut self, check: &ServiceCheck) -> Result<(), EncodeError> {
        let mut check = check.clone();
        check.tags = self.encoder.with_global_labels(&check.tags);
        self.queue_line("service checks", |out| check.encode(out))
    }

    /// Sends everything queued (after anything a previous flush could not send).
    ///
    /// # Errors
    /// [`FlushError::Unreachable`] when the receiver cannot be reached now (nothing is lost:
    /// the lines stay queued for the next flush); [`FlushError::Incomplete`] when a connection
    /// broke mid-way (the unsent lines stay queued).
    pub async fn flush(&mut self) -> Result<(), FlushError> {
        self.outbox.flush().await
    }

    /// Flushes and closes the connection, returning the client's statistics.
    ///
    /// # Errors
    /// As [`flush`](Self::flush); the queued lines are then dropped, and counted.
    pub async fn close(self) -> Result<ExporterStats, FlushError> {
        self.outbox.close().await
    }

    /// What was sent, sampled out and dropped so far.
    pub fn stats(&self) -> ExporterStats {
        self.outbox.stats()
    }

    fn dialect(&self) -> Dialect {
        self.encoder.dialect()
    }

    fn metric(
        &mut self,
        name: &str,
        value: MetricValue<'_>,
        kind: MetricType,
        opts: CallOpts<'_>,
    ) -> bool {
        self.submit(None, name, value, kind, opts).is_ok()
    }

    /// The one path of every metric call: check, sample, render, write, count. `raw` holds
    /// the name to send as given (checked, not sanitised).
    fn submit(
        &mut self,
        raw: Option<&str>,
        name: &str,
        value: MetricValue<'_>,
        kind: MetricType,
        opts: CallOpts<'_>,
    ) -> Result<(), EncodeError> {
        let dialect = self.dialect();
        let mut parts = Parts {
            dialect,
            name: &[],
            kind,
            // Sampled with the rate as written, so the receiver's scaling is exact.
            rate: wire_rate(opts.sample_rate),
            tail: &[],
            cardinality: None,
            timestamp: opts.timestamp,
        };
        if let Err(e) = parts
            .check(value)
            .and_then(|()| raw.map_or(Ok(()), |n| check_name(dialect, n)))
        {
            self.refused(e);
            return Err(e);
        }
        if self.outbox.refuse_when_full() {
            return Err(EncodeError::QueueFull);
        }
        if parts.rate < 1.0 && random_unit() >= parts.rate {
            add(&self.outbox.stats.samples_sampled_out, 1);
            return Ok(());
        }
        if !self
            .encoder
            .render(raw, name, kind, &opts, &mut self.scratch)
        {
            add(&self.outbox.stats.values_dropped_unnamed, 1);
            return Err(EncodeError::InvalidName);
        }
        add(
            &self.outbox.stats.names_shortened,
            u64::from(self.scratch.shortened),
        );
        parts.name = self.scratch.name();
        parts.tail = self.scratch.tail();
        let writer = self.outbox.delivery.writer();
        // Checked above, so nothing is refused here.
        let lines = parts.write(value, writer.line_buf())?;
        if writer.commit(lines).is_err() {
            add(&self.outbox.stats.lines_dropped_too_long, 1);
            return Err(EncodeError::TooLong);
        }
        Ok(())
    }

    /// Counts (and, once per kind of refusal, logs) a call refused before it was written.
    fn refused(&mut self, e: EncodeError) {
        add(&self.outbox.stats.values_dropped_invalid, 1);
        if let EncodeError::Unsupported { what } = e {
            if !self.warned.contains(&what) {
                self.warned.push(what);
                tracing::warn!(dialect = ?self.dialect(), "StatsdClient: {what} are not supported by this dialect; such calls are dropped and counted");
            }
        }
    }

    /// Queues one event or service check line written by `encode` (no newline).
    fn queue_line(
        &mut self,
        what: &'static str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        if self.dialect() == Dialect::Statsd {
            let e = EncodeError::Unsupported { what };
            self.refused(e);
            return Err(e);
        }
        if self.outbox.refuse_when_full() {
            return Err(EncodeError::QueueFull);
        }
        let writer = self.outbox.delivery.writer();
        if let Err(e) = encode(writer.line_buf()) {
            add(&self.outbox.stats.values_dropped_invalid, 1);
            return Err(e);
        }
        writer.line_buf().push(b'\n');
        if writer.commit(1).is_err() {
            add(&self.outbox.stats.lines_dropped_too_long, 1);
            return Err(EncodeError::TooLong);
        }
        Ok(())
    }
}
