//! A [`metrics`] recorder that aggregates in process and sends to StatsD, DogStatsD and
//! Graphite (carbon).
//!
//! Install it once; every `counter!`, `gauge!` and `histogram!` in your program and its
//! libraries then updates an atomic cell (no lock, no allocation, no I/O), and a background
//! flusher sends the aggregate every interval, packed into as few payloads as fit.
//!
//! # Quick start
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use metrics_exporter_statsd_graphite::ExporterBuilder;
//!
//! let exporter = ExporterBuilder::statsd("udp://127.0.0.1:8125") // or "tcp://host:port", "host:port"
//!     .with_prefix("myapp")
//!     .with_flush_interval(Duration::from_secs(10))
//!     .with_global_labels([("region", "eu")])
//!     .install()?; // sets the global recorder, starts the flusher
//!
//! metrics::counter!("requests", "route" => "/a").increment(1);
//! // sends `myapp.eu.requests.a:1|c` at the next flush
//!
//! exporter.shutdown()?; // final flush of everything recorded so far, bounded by a timeout
//! # Ok(())
//! # }
//! ```
//!
//! Dropping the guard flushes too, but does not stop the exporter: `install()?;` written as
//! a statement keeps exporting, and `let _guard = ... .install()?;` at the top of `main`
//! flushes again at the end of `main`. [`ExporterGuard`] describes the whole lifecycle: what
//! is flushed when, and what stops the exporter.
//!
//! Complete production set-ups (Kubernetes with the Datadog Agent's socket, carbon-c-relay in
//! front of carbon-cache, systemd), with the statistics and logs to expect: [`production`].
//!
//! `install` works from a plain synchronous `main` and from inside a tokio runtime. Inside a
//! multi-thread runtime the flusher is spawned onto it; otherwise (no runtime, or a
//! current-thread one, which only runs tasks while its own thread polls it) the flusher gets
//! its own thread, named `metrics-exporter-flusher`, running a current-thread runtime, so the
//! flush on drop always happens. The blocking [`ExporterHandle::flush`] and
//! [`ExporterGuard::shutdown`] work everywhere (through `block_in_place` on a multi-thread
//! runtime); async code can use [`ExporterHandle::flush_async`] and
//! [`ExporterGuard::shutdown_async`].
//!
//! # DogStatsD
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_statsd_graphite::ExporterBuilder;
//!
//! // Or ExporterBuilder::dogstatsd("unixgram:///var/run/datadog/dsd.socket"), or "unix://..."
//! // for the Agent's stream socket, or dogstatsd_from_env() to read DD_AGENT_HOST & co.
//! let exporter = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125")
//!     .with_global_labels([("env", "prod")])
//!     .install()?;
//! metrics::counter!("requests", "route" => "/a").increment(1); // requests:1|c|#env:prod,route:/a
//! metrics::histogram!("latency").record(0.012);                 // latency:0.012|d|#env:prod
//! exporter.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! - Labels are tags `key:value` (an empty value is the bare tag `key`), merged with the global
//!   labels (a metric's label wins over a global one with the same key; no key is ever sent
//!   twice), ordered by key.
//! - Tag text is sanitised so it can never split a datagram or add a tag: `|`, `,`, `#`,
//!   whitespace and control characters become `_`; a key never contains `:` (the Agent splits
//!   at the first one) and a value never ends with one. Unicode is kept. Names keep ASCII
//!   letters, digits and `_` in dot-separated segments; a name starting with `_sc`, which the
//!   Agent would read as a service check, loses its first `_` (`_scale` is sent as `scale`).
//! - Gauges are absolute (`-5|g` is -5: DogStatsD has no deltas).
//! - Histograms are distributions (`|d`) by default, or `|h`/`|ms`, globally
//!   ([`ExporterBuilder::with_histogram_kind`],
//!   [`ExporterBuilder::send_histograms_as_distributions`]) or per metric-name prefix
//!   ([`ExporterBuilder::with_histogram_kind_for`]). The samples of one flush are packed into
//!   multi-value lines (`latency:1.5:2:3.25|d`, protocol v1.1), never past the payload limit.
//! - Optional, off by default because a receiver that does not know a field
//!   (`statsd_exporter`, older Agents) drops the line:
//!   - a container id `|c:` (protocol v1.2, Agent 7.35+; [`ExporterBuilder::with_container_id`],
//!     [`ExporterBuilder::with_origin_detection`]);
//!   - external data `|e:` (protocol v1.5; [`ExporterBuilder::with_external_data`], or with
//!     origin detection on, `DD_EXTERNAL_ENV`, which the Datadog admission controller sets),
//!     which the Agent joins with the container id for origin detection;
//!   - tag cardinality `|card:none|low|orchestrator|high` (protocol v1.6;
//!     [`ExporterBuilder::with_cardinality`], or `DD_CARDINALITY`), the level of the tags the
//!     Agent adds by origin detection;
//!   - `|T` timestamps on counters and gauges (protocol v1.3, Agent 7.40+;
//!     [`ExporterBuilder::with_timestamps`]).
//!
//!   We write them in this order after the tags: `|#tags|c:..|e:..|card:..|T..`. The Agent
//!   reads the fields after the type in any order (datadog-go writes `|T` before `|card:`,
//!   java-dogstatsd-client `|card:` first); each is counted in the payload limit. The Agent
//!   honours `|c:`, `|e:` and `|card:` only with `dogstatsd_origin_detection_client` on.
//! - Transports: UDP (1432-byte datagrams by default), Unix datagram `unixgram://` and Unix
//!   stream `unix://` (8192 bytes by default, the Agent's buffer; on the stream each payload
//!   is framed with a 4-byte little-endian length). A missing socket, or one we may not write
//!   to, is logged once with the path and the fix, counted, and retried with backoff while the
//!   aggregate is kept; when the socket (re)appears, sending resumes. A full Unix datagram
//!   queue never blocks: what it does not take waits in the backlog.
//!
//! # Sending StatsD lines yourself
//!
//! For what the `metrics` facade has no call for (signed counter deltas, Etsy gauge deltas,
//! sets, client-side sampled calls, per-call timestamps and cardinality, DogStatsD events and
//! service checks), [`ExporterBuilder::build_statsd_client`] makes a [`StatsdClient`] from a
//! StatsD or DogStatsD builder: the recorder's sanitising, payload packing, transports and
//! backlog, with its rules stated once on [`StatsdClient`]. [`MetricLine`] writes one line
//! into your buffer without sending it, refusing what would break it.
//!
//! # Graphite
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_statsd_graphite::ExporterBuilder;
//!
//! // Plaintext to carbon's line receiver (tcp:// by default, port 2003; udp:// works too),
//! // or ExporterBuilder::graphite_pickle("carbon:2004") for pickle batches.
//! let exporter = ExporterBuilder::graphite("carbon.internal:2003").with_prefix("myapp").install()?;
//! metrics::counter!("requests", "route" => "/a").increment(1); // myapp.requests;route=/a 1 <ts>
//! metrics::histogram!("latency").record(0.012); // myapp.latency.count, .sum, .min, .max, .mean, .p50 ...
//! exporter.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! - Plaintext (`path value timestamp`, over TCP, UDP or a Unix stream) or pickle (a 4-byte
//!   big-endian length and a protocol-2 pickle of `[(path, (timestamp, value)), ...]`, unicode
//!   paths, integer timestamps, float values, which carbon and go-carbon both accept; frames
//!   of at most 1 000 000 bytes, under carbon's 1 MiB limit, many per connection).
//! - Labels are Graphite 1.1 tags (`name;k=v`, sorted) or folded into the path
//!   ([`GraphiteTags`]). Paths keep `[A-Za-z0-9_-]` segments; tag keys `[A-Za-z0-9_.:-]`; tag
//!   values printable ASCII without `;` or a leading `~`; empty-valued tags are left out.
//! - Every point carries the flush time aligned down to the flush interval (so points from
//!   many hosts land in one carbon slot), or the raw time
//!   ([`ExporterBuilder::with_aligned_timestamps`]). Ticks start on wall-clock multiples of the
//!   interval (or a stable per-host delay after them:
//!   [`ExporterBuilder::with_send_spread`]), and a second flush into a slot sends the slot's cumulative counter delta and a
//!   histogram summary over all of the slot's samples (percentiles included), since carbon
//!   keeps the last write per slot. For that, each histogram keeps its last flush's samples
//!   (at most the per-interval cap) until its next flush.
//! - Counters are interval deltas or running totals ([`CounterMode`]); gauges their value.
//! - Histograms are summarised each interval into `.count .sum .min .max .mean` and
//!   percentiles (`.p50 .p90 .p99 .p999` by default, [`ExporterBuilder::with_percentiles`];
//!   with tags the suffix goes on the name: `latency.p99;route=/a`). Exact up to the
//!   per-interval sample cap; beyond it `count` is the number recorded (estimated only when
//!   NaN or infinite values were recorded too) and the rest comes from a uniform
//!   sample of the cap, so a percentile's true rank is within ±2·sqrt(q(1−q)/cap) of q with
//!   95% probability (±0.6% for p99 at the default cap of 1024).
//! - [`GraphiteClient`] sends explicit points (backfills) with the same transports,
//!   reconnects, backlog and sanitising; [`GraphitePoints`] writes the plaintext or pickle
//!   bytes of such points without sending them, for a socket of your own;
//!   [`encode_segment`]/[`decode_segment`] put arbitrary text into one path segment
//!   reversibly, and [`join_path`] cleans and joins parts.
//!
//! # Layers, and installing the recorder yourself
//!
//! [`ExporterBuilder::build`] returns the recorder and the exporter separately, so the
//! recorder can be wrapped in `metrics-util` layers (prefix, filter, router, fanout):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_statsd_graphite::ExporterBuilder;
//! use metrics_util::layers::{Layer, PrefixLayer};
//!
//! let (recorder, exporter) = ExporterBuilder::statsd("127.0.0.1:8125").build()?;
//! let guard = exporter.start()?;
//! metrics::set_global_recorder(PrefixLayer::new("svc").layer(recorder))?;
//! // ...
//! guard.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Timing code, HTTP requests, and seeing what is sent
//!
//! - [`Timer`] records the time until it is dropped (every return path, `?` included) into a
//!   histogram, and [`timed`] does it for a future, as aiostatsd's `timeit` and
//!   sprockets-statsd's `execution_timer` do:
//!
//!   ```
//!   # async fn demo() {
//!   use metrics_exporter_statsd_graphite::{Timer, timed};
//!
//!   let _t = Timer::start(metrics::histogram!("job.duration", "job" => "import"));
//!   let rows = timed(metrics::histogram!("db.query"), async { 42 }).await;
//!   # let _ = rows;
//!   # }
//!   # drop(demo());
//!   ```
//! - With the `tower` feature, `RequestMetricsLayer` counts and times every HTTP request by
//!   method, matched route and status (`examples/axum_app.rs`), as the Tornado and `FastAPI`
//!   middlewares of sprockets-statsd and aiostatsd do.
//! - `examples/tap` is a receiver for debugging: it listens on UDP, TCP or a Unix socket for
//!   StatsD, DogStatsD or Graphite plaintext, prints every line it gets, flags the ones it
//!   cannot parse, and prints a summary per interval
//!   (`cargo run --example tap -- --protocol dogstatsd --listen udp://127.0.0.1:8125`; see
//!   the README).
//!
//! # Testing your metrics
//!
//! [`ExporterBuilder::build_capture`] returns the recorder and a [`Capture`] instead of an
//! exporter: the same recorder, aggregation, flusher, encoders and payload packing, with the
//! socket replaced by memory and the flush timer by [`Capture::flush`]. Each flush returns a
//! [`Flushed`]: the payloads exactly as they would have gone on the wire, and their lines.
//! No socket is opened and the host is never looked up. Record through
//! [`metrics::with_local_recorder`], so tests running in parallel do not share the global
//! recorder:
//!
//! ```
//! use metrics_exporter_statsd_graphite::ExporterBuilder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (recorder, mut capture) = ExporterBuilder::statsd("statsd.example.invalid:8125")
//!     .with_prefix("shop")
//!     .build_capture()?;
//! let checkout = || {
//!     metrics::counter!("orders", "region" => "eu").increment(2);
//!     metrics::gauge!("basket.items").set(3.0);
//! };
//! metrics::with_local_recorder(&recorder, checkout);
//! let sent = capture.flush(); // one flush interval
//! assert_eq!(sent.lines(), ["shop.orders.eu:2|c", "shop.basket.items:3|g"]);
//! assert_eq!(sent.payloads(), [b"shop.orders.eu:2|c\nshop.basket.items:3|g".to_vec()]);
//! // The next interval sends the unchanged gauge again, and no counter.
//! assert_eq!(capture.flush().lines(), ["shop.basket.items:3|g"]);
//! # Ok(())
//! # }
//! ```
//!
//! [`Capture::flush_at`] stamps Graphite points with a chosen time, [`Capture::set`]
//! registers sets and [`Capture::stats`] reads the statistics. For the direct clients,
//! [`ExporterBuilder::build_statsd_client_capture`] and
//! [`ExporterBuilder::build_client_capture`] return the real client and a [`ClientCapture`]
//! that its `flush` sends into.
//!
//! # Support matrix
//!
//! | protocol | UDP | TCP | Unix stream | Unix datagram | counter | gauge | histogram |
//! |---|---|---|---|---|---|---|---|
//! | StatsD ([`ExporterBuilder::statsd`]) | ✔ | ✔ | ✔ (lines) | ✔ | `\|c` delta | `\|g` (Etsy negative pair) | `\|ms` timer or `\|h` |
//! | DogStatsD ([`ExporterBuilder::dogstatsd`]) | ✔ | ~ (lines; the Agent has no TCP listener) | ✔ (4-byte LE length) | ✔ | `\|c` | `\|g` absolute | `\|d` (packed), `\|h` or `\|ms` |
//! | Graphite plaintext ([`ExporterBuilder::graphite`]) | ✔ | ✔ | ✔ | ✘ | delta or running total | value | summary: count, sum, min, max, mean, percentiles |
//! | Graphite pickle ([`ExporterBuilder::graphite_pickle`]) | ✘ | ✔ | ✘ | ✘ | as plaintext | as plaintext | as plaintext |
//!
//! Unix stream and datagram sockets exist on Unix platforms only. Elsewhere (Windows) a
//! `unix://` or `unixgram://` endpoint is refused by `build` with
//! [`BuildError::InvalidEndpoint`] naming it ("Unix sockets are not available on this
//! platform"; [`BuildError::InvalidEnvironment`] when it came from an environment variable).
//!
//! # Aggregation semantics
//!
//! | metric | what is kept between flushes | what each flush sends |
//! |---|---|---|
//! | counter `increment(n)` | the sum of increments | `name:<sum>\|c` if the sum is not 0; Graphite also sends 0 once the counter counted anything (see below) |
//! | counter `absolute(v)` | converted to the increase since the previous reading (the first reading counts in full; a lower reading is a reset and counts in full) | as above |
//! | gauge `set`/`increment`/`decrement` | the current value | `name:<value>\|g` from its first set at every periodic flush until the series expires, set or not (see below) |
//! | histogram `record(v)` | up to 1024 samples per interval (configurable); beyond that a uniform random sample of 1024 | one `name:<v>\|ms` line per kept sample (or `\|h`), with `\|@<rate>` when sampled |
//! | set `insert(member)` ([`ExporterHandle::set`]) | the distinct members of the interval, up to 1024 (configurable) | one `name:<member>\|s` line per distinct member (StatsD, DogStatsD); the number of distinct members as a gauge for Graphite |
//!
//! - **Counters are exact.** An increment is one atomic add and a flush takes the sum with one
//!   atomic swap, so every increment is in exactly one flush, whatever the threads.
//! - **Counter sums saturate.** An interval whose increments (or `absolute` deltas) sum past
//!   `u64::MAX` sends `u64::MAX` (`name:18446744073709551615|c`), never the wrapped
//!   remainder, and so does a Graphite [`CounterMode::Total`] running total past it, which then
//!   stays there; each is counted in [`ExporterStats::counter_overflows`]. The add that wraps
//!   flags its interval right after the add, so in one race (the flusher takes the sum between
//!   the two) the interval goes out wrapped and the next one is sent as `u64::MAX` instead.
//! - **Negative gauges.** In Etsy StatsD a signed value is a *delta*, so a gauge at -5 is sent
//!   as `name:0|g` followed by `name:-5|g`, always in the same payload and in that order.
//! - <a id="histogram-units"></a>**Histogram units.** A value is sent in the unit it was
//!   recorded in, except on a `|ms` line, which carries milliseconds. So a `Duration` of
//!   250 ms (recorded by `metrics` as `0.25` seconds) goes out as `0.25` on a DogStatsD `|d`
//!   or `|h` line, a StatsD `|h` line and in every Graphite summary value (`.sum`, `.mean`,
//!   `.min`, `.max`, percentiles; plaintext and pickle alike), and as `250` on a StatsD or
//!   DogStatsD `|ms` line. For `|ms`, a histogram described with a time unit
//!   (`describe_histogram!("latency", Unit::Seconds, "...")`) is converted from that unit; an
//!   undescribed one is taken to be in seconds, because `metrics` records a `Duration` as
//!   seconds ([`ExporterBuilder::with_default_histogram_unit`] changes that; describe
//!   histograms that are not times with their unit, or they are multiplied by 1000); a unit
//!   that is not a time is sent as recorded. Conversion keeps fractions: 12.5 ms is sent as
//!   `12.5`, never truncated. Negative `|ms` values are dropped (Etsy statsd rejects them)
//!   and counted.
//! - **Sampling.** When a histogram records more samples in one interval than it keeps, the
//!   kept ones carry `|@rate` (kept / recorded), so the server scales its count back to the
//!   number recorded. Memory per histogram is bounded: 16 bytes per kept sample, allocated in
//!   64-sample chunks as the histogram first needs them.
//! - **Labels.** Plain StatsD has no tags: label values are folded into the name as extra
//!   segments, ordered by label key (`name.value1.value2`), dropped, or written in a tag style
//!   StatsD servers parse (DogStatsD, InfluxDB, Librato, SignalFx, Graphite; see
//!   [`LabelHandling`]). Global labels merge with a metric's labels; the metric's label wins
//!   for the same key.
//! - **Descriptions** (`describe_counter!` and friends) carry no weight on these wires: none
//!   of StatsD, DogStatsD or Graphite has a field for them. Their *units* are used (time units
//!   convert `|ms` timers to milliseconds: [histogram units](#histogram-units)), and through a `metrics-util` fanout the descriptions
//!   still reach an exporter that can show them, such as Prometheus (`examples/fanout_prometheus.rs`).
//! - **NaN and infinities** are never sent; they are dropped and counted in
//!   [`ExporterStats::values_dropped_invalid`]. A gauge whose last value in an interval is
//!   NaN or infinite leaves a gap (it is not re-sent) until it is set to a finite value.
//! - **Gauges are re-sent** at every periodic flush until their series expires, so a gauge
//!   set once stays on the dashboard ([`with_gauge_resend`](ExporterBuilder::with_gauge_resend) says
//!   exactly when one stops, and turns it off).
//! - **Idle counters send 0 to Graphite**, so a rate graph shows 0 rather than holes, from
//!   the counter's first increment until its series expires. StatsD and DogStatsD servers
//!   report 0 for a counter they know themselves, so nothing is sent there by default
//!   ([`with_counter_zeros`](ExporterBuilder::with_counter_zeros) gives the reasons and
//!   turns it on or off). Re-sent gauges and zeros come with the flush interval's ticks
//!   only: an explicit `flush()` and the final flush send what changed.
//! - **Sets** come from [`ExporterHandle::set`] (the `metrics` facade has none) and go through
//!   the same path as every series: prefix, global labels, name sanitising and shortening,
//!   limits, merging and expiry. In a member, `|`, `:` and control characters (newlines
//!   included) become `_`, since every receiver ends the member at `|` and Etsy statsd also
//!   splits it at `:`; everything else is kept. Members that become equal so are one member
//!   (`a:b` and `a|b` count once). An empty member is refused and counted in
//!   [`ExporterStats::values_dropped_invalid`]. Past the cap
//!   ([`with_set_max_members`](ExporterBuilder::with_set_max_members)) a new member is refused
//!   and counted in [`ExporterStats::set_members_dropped`], once per member and interval
//!   (every insert once a storm of new members has filled the set's filter, at most twice
//!   the cap and at least 16 slots, so that no insert probes more than 64 of them). A member
//!   longer than the payload limit is refused at insert, before anything is allocated for
//!   it, and counted in [`ExporterStats::lines_dropped_too_long`] (no line could carry it;
//!   Graphite does not count it either); a member whose line with the name is too long is
//!   dropped at encoding and counted there too (Graphite still counts it). So a set's member
//!   text takes at most twice the cap times the payload limit. A set
//!   with no member in an interval sends nothing to StatsD or DogStatsD servers, which
//!   report 0 for a set they know themselves (Etsy unless `deleteSets`), and, like an idle
//!   counter, 0 to Graphite from its first member until it expires (with
//!   [`with_counter_zeros`](ExporterBuilder::with_counter_zeros), at ticks). Graphite, like a
//!   gauge, keeps the last count of a carbon slot: an explicit `flush()` mid-slot sends
//!   the members counted since the one before. A set's receiver namespace is its own at Etsy
//!   (`stats.sets.`) and collectd (`objects-`), while in a DogStatsD context or a Graphite
//!   path it meets counters and gauges (the clash rule below; a set's values there are its
//!   members). Inserting a member already in the interval's set is a few atomics, with no
//!   lock and no allocation; the first insert of a member in an interval allocates its text.
//! - **Series that render alike are one series.** When sanitising makes two series send the
//!   same name and tags (`x` and `x{route=""}`, `a b` and `a_b`), the receiver would keep
//!   only the last line (carbon) or mix them in one context: instead their values go out as
//!   one line. Counters are summed; histogram samples merged (converted to the first series'
//!   unit); gauges send the largest value set in the interval (their order is unknown; the
//!   largest is the same whatever it was), and the last value sent when none was set. Each
//!   merged series is counted in [`ExporterStats::series_merged`]. Series of *different*
//!   kinds are kept apart where the receiver keeps them apart (Etsy statsd and collectd
//!   store `|c`, `|g` and `|ms` separately); where it stores them in one place (a counter
//!   and a gauge of one Graphite path or DogStatsD context; a counter and an `|h` histogram
//!   of one name at Etsy, which reads `|h` as a counter; a counter `x.count` and a histogram
//!   `x` whose summary writes `x.count`: ours in Graphite, the Datadog Agent's for `|h` and
//!   `|ms` in DogStatsD), the first series seen keeps the name and the other's values are
//!   dropped, counted in [`ExporterStats::values_dropped_collision`] and logged (at warn
//!   once). When the series that kept the name expires, the other takes it. A merged line
//!   expires when every series in it is idle and unheld.
//!
//! # Names: what is sanitised, and how
//!
//! A name can never produce a second line, an extra field or an empty segment. Every name,
//! prefix and folded label value is reduced to dot-separated segments of `[A-Za-z0-9_-]`:
//!
//! - any other character (`:` `|` `@` `#` `,` whitespace, newlines, control characters, `/`,
//!   and each non-ASCII character) becomes `_`;
//! - empty segments are removed (`a..b` → `a.b`, leading and trailing dots vanish);
//! - a folded label value (or key) is one segment: its dots become `_`, and what was replaced
//!   at either end of it is trimmed, so a route `/home` folds to `home`, `/api/items/` to
//!   `api_items`; a `_` the label itself starts or ends with stays (`_private`), and a value
//!   made only of replaced characters (`/`) is `_`;
//! - a name with nothing left is not sent; its values are counted in
//!   [`ExporterStats::values_dropped_unnamed`];
//! - tags (DogStatsD, Graphite 1.1, and the plain StatsD tag styles of [`LabelHandling`]) are
//!   compared *after* sanitising: two labels whose keys clean up alike (`a b` and `a_b`)
//!   become one tag, never the same key twice. The later label wins: global labels (ordered
//!   by key) come before the metric's own, which come in the order given.
//!
//! Where folded labels land (`LabelHandling::FoldIntoName` and `FoldKeyValues`, and
//! `GraphiteTags::FoldValues` and `FoldKeyValues`): `prefix.globals.name.labels`. Global
//! labels, ordered by key, come right after the prefix (and before `with_type_prefixes`'
//! `counters.`), the series' own labels, ordered by key, after the name:
//! `myapp.eu.requests.home.200` for prefix `myapp`, global `region=eu` and
//! `requests{route="/home",status="200"}`. A global label has the same place in every path, so
//! `myapp.eu.*` (Graphite) or `stats.counters.myapp.eu.*` (behind Etsy statsd) selects one
//! region's whole tree, whatever labels each metric has. A series label with a global's key
//! gives its value, in the global's place. Of two labels of one series with the same key, the
//! later given wins. When different series end up with the same path (`/home` and `home/`
//! both fold to `home`), they are merged exactly as any other same-name series are
//! ("Aggregation semantics").
//!
//! # Long names
//!
//! Carbon stores an untagged path `a.b.c` as the file `a/b/c.wsp`, so a component over 255
//! bytes fails with `File name too long` and the point is lost. So, once per series, when it
//! is first rendered (never on a flush), Graphite paths and plain StatsD names (which Etsy
//! statsd's Graphite backend stores as carbon paths) are shortened; DogStatsD names are not
//! (the Agent has no such limit). Each series shortened counts once in
//! [`ExporterStats::names_shortened`] (each call, for the direct clients). The rules:
//!
//! - **The form.** An element too long is cut (at a UTF-8 character boundary) and gets `-`
//!   and 16 lowercase hex digits, the FNV-1a 64-bit hash of the *whole* element before the
//!   cut: `<cut>-<hash>`. So distinct long names stay distinct, and the same name shortens to
//!   the same bytes in every process and version. `-` and hex survive every sanitiser and
//!   carbon's tag rules (a tag value never *starts* with the suffix, and never gets a `;`).
//! - **Components.** Every dot-separated component longer than 251 bytes (255 less `.wsp`,
//!   for directories too, so a component shortens the same way whether it ends up a directory
//!   or the leaf) is cut to 234 bytes plus the suffix: 251 bytes. This covers the prefix, the
//!   name, plain StatsD's kind segment and folded label values. A histogram summary's leaf
//!   (`.count`, `.p99`) is a component of its own after the name, and always short.
//! - **The whole name.** A path longer than 2048 bytes (Linux allows 4096 for the whole file
//!   path, carbon's storage directory included) is cut to 2048 less the hash, the cut moved
//!   back so the component the suffix joins stays within 251 bytes. Graphite keeps 10 more
//!   bytes free in every name, the longest summary suffix (`.count`, stored `_DOT_count` in
//!   readable tagged file names; more for a longer percentile suffix), whatever the series'
//!   kind, so a name shortens the same way for a counter and a histogram. Etsy's Graphite
//!   backend adds its own segments (`stats.counters.`, `.count`, `.upper_90`): a few dozen
//!   bytes, in components of their own, well within the room left.
//! - **Tagged names** (`name;k=v`). How carbon names their file is its `TAG_HASH_FILENAMES`;
//!   tell us yours with [`with_graphite_tag_hash_filenames`](ExporterBuilder::with_graphite_tag_hash_filenames).
//!   With `true` (carbon's default and ours) the file is `_tagged/<h>/<h>/<sha256>.wsp`, so
//!   only the whole tagged name is bounded, at 2048 bytes less the 10 reserved. With `false`
//!   the file is the normalised name (tags sorted by key) with every `.` written `_DOT_`, so
//!   that stored form must fit 251 bytes, less the 10 reserved. Either way, while it is too
//!   long, the longest tag value (first in key order on a tie) is cut just enough, but to no
//!   less than one byte plus the suffix; then the next longest value; then the keys the same
//!   way; then the name. Each is cut at most once. A tagged name that cannot fit even then
//!   (with `false`: more than about six tags whose keys and values both pass 18 bytes) is not
//!   sent, and its values count in [`ExporterStats::values_dropped_unnamed`]. The name part of
//!   a tagged series is not split into components: carbon does not make directories of it.
//!   Plain StatsD's `DogStatsd`-style tags (which Etsy statsd stores as carbon tags) are
//!   bounded the same way, with the room [`LabelHandling::DogStatsd`] states kept for Etsy.
//! - Tags of plain StatsD's tag styles are not shortened.
//!
//! Every encoder is checked against independent spec parsers by property tests and by
//! `cargo fuzz` targets (`fuzz/`, run for a bounded time in CI by `scripts/fuzz.sh`) over
//! hostile names, labels and values: every line parses as exactly one metric of its series,
//! nothing is injected, and every value is either sent or counted.
//!
//! # Payloads and transports
//!
//! Lines are packed into payloads of at most the maximum payload length (default 1432 bytes
//! for UDP, which fits an Ethernet MTU; TCP writes newline-terminated lines in batches of up to
//! 64 KiB). A line is never split across payloads, and a single line longer than the limit is
//! dropped and counted ([`ExporterStats::lines_dropped_too_long`]).
//!
//! - **UDP** (and Unix datagram): one `send` per payload, fire and forget. IPv4 and IPv6 destinations both work;
//!   the destination is re-resolved every 60 s.
//! - **TCP** (and Unix stream): one connection, re-resolved and re-established with capped exponential backoff
//!   and jitter when it breaks. Before each flush we check whether the receiver closed the
//!   connection, so a receiver that restarts gracefully loses nothing.
//! - **Host names** are looked up by the transport, never by `build` or an application
//!   thread: on tokio's blocking pool, one lookup at a time, each within the connect timeout.
//!   A name that does not resolve yet (DNS not ready when a pod starts) builds; until it
//!   resolves the destination is unreachable, the metrics are kept as for any unreachable
//!   destination, and the name is looked up again with the reconnect backoff. One warning
//!   names the host (and the environment variable it came from), one info line says when it
//!   resolves; each failed lookup counts in [`ExporterStats::resolve_failures`]
//!   (`a_host_that_cannot_resolve_builds_and_counts_failed_lookups_without_blocking_the_app`).
//!
//! # Delivery guarantees
//!
//! What the exporter promises, each with the tests (named in brackets) that pin it down.
//! Over all of them, a model-based test (`every_<protocol>_amount_over_<transport>_is_received_or_counted_whatever_the_faults`,
//! StatsD and DogStatsD over UDP, TCP, Unix datagram and Unix stream sockets, Graphite over
//! UDP and TCP) drives random records, flushes and receiver faults (refuse, graceful close,
//! reset, stall, a socket removed and recreated) and checks after every step that each
//! series' recorded amount is received, counted as dropped, counted as possibly lost, or
//! still waiting, that no line is malformed or received twice, and, at the end, that nothing
//! is left unaccounted.
//!
//! - **Recording never blocks** and never does I/O or takes a lock once a series exists:
//!   sending happens on the flusher only. A stalled receiver stalls the flusher's writes
//!   (each bounded by the write timeout), never a recording thread
//!   (`a_stalled_reader_never_blocks_recording_bounds_the_backlog_and_recovers`).
//! - **Counters are exact.** An increment is one atomic add and a flush takes the delta with
//!   one atomic swap, so every increment is in exactly one flush, under any number of
//!   threads (`counters_from_several_threads_arrive_exactly_across_many_flushes`).
//! - **Outages lose nothing that fits the bounds, on every transport.** While the destination
//!   cannot take lines (a TCP or Unix-stream destination down, a Unix socket missing, a Unix
//!   datagram queue full, a send error), counters keep summing in their cells and gauges keep
//!   their last value; each missed interval's histogram samples (Graphite: summaries, with
//!   their own timestamps) wait in the backlog, also when it is sending the backlog that
//!   fails. When the destination is back, the backlog goes first, then the aggregate of the
//!   outage
//!   (`during_an_outage_each_intervals_histograms_wait_in_the_backlog_and_counters_in_the_cells`,
//!   `an_interval_whose_backlog_send_fails_still_keeps_its_own_histogram_line`,
//!   `a_full_datagram_queue_never_blocks_and_loses_nothing_once_the_receiver_reads`).
//! - **Every transport gets whole lines, framed its own way.** One send loop serves every
//!   transport, and a payload is whole newline-terminated lines until the transport frames it:
//!   a datagram never ends with a newline nor glues two lines, a stream batch always ends with
//!   one, a length-prefixed frame is sent whole. Lines that waited in the backlog are framed
//!   by the socket they finally go out on
//!   (`a_unix_datagram_outage_keeps_each_intervals_histogram_line_whole_for_dogstatsd`,
//!   `datagrams_parked_while_the_socket_is_missing_go_out_as_the_same_datagrams`,
//!   `a_frame_cut_by_a_stalled_reader_is_resent_whole_and_never_counted_as_sent`).
//! - **A broken write resends exactly the rest.** The lines the kernel took whole count as
//!   sent; everything from the first chunk it did not take whole waits in the backlog
//!   (`a_stream_write_that_stops_mid_payload_keeps_exactly_the_rest_in_the_backlog`). A
//!   datagram the socket refuses for its size would fail again, so it alone is dropped and
//!   counted ([`ExporterStats::payloads_dropped`];
//!   `a_datagram_too_large_for_the_socket_is_dropped_and_counted_and_the_rest_goes_out`).
//! - **Memory stays bounded however long the outage.** The backlog holds at most
//!   [`with_max_backlog_bytes`](ExporterBuilder::with_max_backlog_bytes) (8 MiB by default);
//!   beyond it the oldest lines are dropped first and counted in
//!   [`ExporterStats::lines_dropped_send`]. A line is never split, nor is the Etsy
//!   negative-gauge pair (`0|g` then `-5|g`)
//!   (`a_cardinality_storm_and_a_long_outage_stay_within_the_stated_memory_bound`,
//!   `dropping_the_oldest_never_keeps_half_a_negative_gauge_pair`). A regular flush to a
//!   destination that takes it sends as it collects (`PART_BYTES` in `flush`), so it never
//!   holds an interval's worth of encoded lines
//!   (`an_interval_sent_in_parts_puts_exactly_the_datagrams_of_one_sent_whole_on_the_wire`).
//!   An interval whose send fails part-way, an interval while the destination is down, and
//!   the final flush are encoded whole; the next healthy flush gives that memory back.
//! - **A graceful receiver restart loses nothing.** Before each flush the exporter checks
//!   whether the receiver closed the connection (reading the socket directly, not a cached
//!   readiness), reconnects, and resends from the first line the kernel did not fully accept
//!   (`a_peer_that_just_closed_is_seen_before_the_runtime_polls_again`,
//!   `ten_graceful_restarts_under_constant_load_lose_and_duplicate_nothing`).
//! - **An abrupt death (kill -9) loses at most what the kernel had accepted**, and says so:
//!   lines sent on a connection that then ends in a reset, or under a failed write, are
//!   counted in [`ExporterStats::lines_possibly_lost`] (they are also in `lines_sent`). A
//!   connection still open at the next flush, or closed cleanly, confirms them
//!   (`lines_on_a_connection_that_is_reset_count_as_possibly_lost_and_a_clean_close_does_not`).
//! - **A receiver that stops reading cannot pin kernel memory.** Each stream connection asks
//!   for a 256 KiB send buffer (Linux doubles it: at most 512 KiB held per connection, where
//!   autotuning allows 4 MiB), and a connection given up after a failed or timed-out write
//!   is closed with a reset, so the kernel discards what it held at once instead of keeping
//!   an orphaned socket; those lines, and the lines of earlier flushes that may still have
//!   been in our send queue (its last 512 KiB), are counted as possibly lost
//!   (`an_abandoned_connection_is_reset_so_the_kernel_frees_what_it_held_at_once`). A Unix
//!   stream socket has the same send-buffer bound, but its bytes sit in the receiver's queue,
//!   which the kernel frees only when the receiver reads or closes it.
//! - **Reconnects back off, and shutdown does not wait for them.** After a failure, the next
//!   attempt waits between half and all of min(first delay × 2^n, cap), 100 ms doubling to
//!   10 s by default ([`with_reconnect_delay`](ExporterBuilder::with_reconnect_delay),
//!   [`with_max_reconnect_delay`](ExporterBuilder::with_max_reconnect_delay)); attempts happen
//!   at flush ticks. The final flush at shutdown tries at once
//!   (`a_reconnect_waits_out_the_configured_backoff_and_not_a_moment_more`,
//!   `the_final_flush_tries_at_once_instead_of_waiting_out_the_reconnect_backoff`).
//! - **Cardinality is capped, and a storm on one metric spares the others.** At most
//!   [`with_max_series_per_metric`](ExporterBuilder::with_max_series_per_metric) series of
//!   one metric (2 000 by default) and [`with_max_series`](ExporterBuilder::with_max_series)
//!   in all (100 000). A new series past either records into its metric's one overflow series
//!   (label `cardinality="overflow"`), so totals stay exact, and is counted in
//!   [`ExporterStats::series_overflowed`]; only when no overflow series can take it either
//!   does it get a no-op handle, counted in [`ExporterStats::series_dropped`]. Existing
//!   series keep working
//!   (`a_storm_on_one_metric_leaves_every_steady_series_exact_and_its_own_total_exact`,
//!   `a_storm_larger_than_the_total_never_refuses_a_new_series_of_another_metric`,
//!   `every_recorded_amount_is_in_exactly_one_series_and_the_live_series_stay_bounded`,
//!   `a_cardinality_storm_is_capped_and_the_series_beyond_the_cap_are_counted`).
//! - **Idle series return their memory.** A series that recorded nothing for
//!   [`with_idle_timeout`](ExporterBuilder::with_idle_timeout) (10 minutes by default) and
//!   that no cached handle holds is removed ([`ExporterStats::series_expired`]); updating it
//!   again creates it afresh. Removal happens under the registry's write lock and only for a
//!   cell nobody else holds, so no update can be lost to it
//!   (`idle_series_that_no_handle_holds_expire_and_return_when_updated_again`).
//! - **Shutdown is bounded.** The final flush has the shutdown timeout (5 s by default). What
//!   it cannot deliver in that time is counted in [`ExporterStats::lines_dropped_shutdown`];
//!   the guard never hangs
//!   (`shutdown_while_connects_hang_returns_after_its_timeout_with_every_line_counted`).
//! - **No panic stops the exporter.** Encoders refuse what they cannot write (NaN, infinities,
//!   names with nothing usable left) and count it; a panic inside a flush (a bug) is caught,
//!   logged and counted in [`ExporterStats::flush_panics`], and the next flush proceeds. A
//!   user's layer that panics costs only its own thread
//!   (`a_panic_inside_a_flush_is_counted_and_the_next_flush_works`,
//!   `a_panic_in_a_users_layer_stops_neither_recording_nor_the_flusher`).
//! - UDP cannot report loss. What the socket does report is counted: a refusal (nobody
//!   listening) makes the previous datagram possibly lost, and a send error keeps the lines
//!   in the backlog like any other transport
//!   (`udp_datagrams_refused_during_a_receiver_gap_are_counted`).
//!
//! [`ExporterHandle::stats`] reports all of this; logs go through `tracing`, one line per
//! change of state (unreachable, reachable again), never one per packet.
//!
//! # DogStatsD events and service checks
//!
//! [`StatsdClient::event`] and [`StatsdClient::service_check`] send them, batched with the
//! client's metrics; [`Event::encode`] and [`ServiceCheck::encode`] write the lines, without
//! sending them (write them to the Agent's socket yourself, one per datagram or
//! newline-separated). The forms, as the Datadog Agent's parser reads
//! them (`parse_events.go` and `parse_service_checks.go` in `comp/dogstatsd/server/impl`):
//!
//! - an event is `_e{<title bytes>,<text bytes>}:<title>|<text>` and then, each only when
//!   set, `|d:<timestamp>|h:<hostname>|k:<aggregation key>|p:<priority>|s:<source type>|t:<alert
//!   type>|#<tags>`. The Agent cuts the title and the text by the two byte lengths, so both may
//!   hold `|`, and it turns each two-character `\n` in them back into a newline: a newline is
//!   sent as `\n` (a datagram line cannot hold one; a `\n` typed as two characters reads
//!   back as a newline too, as with every client), and the lengths count what is sent. An
//!   empty title makes the Agent drop the event, so it is refused
//!   ([`EncodeError::EmptyTitle`]);
//! - a service check is `_sc|<name>|<status 0..3>` and then `|d:<timestamp>|h:<hostname>|#<tags>`
//!   and the message `|m:<message>` last. The Agent splits a service check at every `|` and
//!   unescapes nothing, so a message keeps a newline as the two characters `\n` (as Datadog's
//!   own clients send it) and a `|` as `¦` (U+00A6), where it would otherwise cut the message
//!   short. The name follows DogStatsD's metric-name rules; one with nothing left is refused
//!   ([`EncodeError::EmptyName`]);
//! - every other field (hostname, aggregation key, source type) is cut by the Agent at `|`:
//!   `|` and control characters become `_` in them, and an empty field (a message too) is
//!   not sent. Tags
//!   follow DogStatsD's tag rules (as metrics' tags do, sorted and one per key).
//!
//! Sizes: the Agent bounds neither title nor text, but the whole line must fit its datagram
//! buffer (`dogstatsd_buffer_size`, 8192 bytes by default; the Agent cuts a longer datagram
//! and what is cut off is lost), and Datadog's intake keeps the first 4000 characters of an
//! event's text. The client never cuts a line: one longer than its payload limit is dropped
//! and counted in [`ExporterStats::lines_dropped_too_long`]. Over UDP that limit is 1432
//! bytes by default (one Ethernet frame); for longer events over loopback or a Unix socket,
//! raise it with [`with_maximum_payload_length`](ExporterBuilder::with_maximum_payload_length)
//! (up to the Agent's 8192, the default on Unix sockets).
//!
//! # Self-telemetry
//!
//! Off by default. [`with_telemetry(true)`](ExporterBuilder::with_telemetry) (or
//! [`with_telemetry_prefix`](ExporterBuilder::with_telemetry_prefix)) sends the exporter's
//! own statistics after each flush, so the dashboards that show your metrics also show
//! whether any were lost. Under the prefix (`metrics_exporter` by default; your
//! [`with_prefix`](ExporterBuilder::with_prefix) and global labels apply as to any metric):
//!
//! | name | kind | from [`ExporterStats`] |
//! |---|---|---|
//! | `flushes`, `lines_sent`, `payloads_sent`, `bytes_sent`, `payloads_dropped` | counter | the field of that name |
//! | `lines_dropped` with label `reason` = `send` / `too_long` | counter | `lines_dropped_send` / `lines_dropped_too_long` |
//! | `values_dropped` with label `reason` = `invalid` / `unnamed` / `collision` | counter | `values_dropped_invalid` / `values_dropped_unnamed` / `values_dropped_collision` |
//! | `samples_sampled_out`, `send_errors`, `connects`, `resolve_failures`, `lines_possibly_lost`, `flush_panics`, `series_dropped`, `series_expired`, `counter_overflows`, `series_merged`, `series_overflowed`, `names_shortened` | counter | the field of that name |
//! | `series` | gauge | `series` |
//!
//! Counters carry the change since the last report the transport accepted (a zero change is
//! sent as 0 for a statistic that moved before when counters' zeros are on, as for any
//! counter: Graphite by default; Graphite's [`CounterMode::Total`] sends the totals), so
//! summing them over a period gives the statistics' change over it
//! (`telemetry_reports_an_outage_once_it_is_over_and_adds_up_to_the_final_stats`), less any
//! report lost after the transport took it (a refused datagram, a connection reset before the
//! receiver read it), which, like your own lines, is not re-sent. Reports **never count
//! themselves**: they go in their own payloads after yours, enter no delivery verdict, and
//! are tallied only in [`ExporterStats::telemetry_lines_sent`] and
//! [`telemetry_lines_dropped`](ExporterStats::telemetry_lines_dropped), which are not
//! reported, so your statistics are the same with telemetry on or off and the report after
//! a flush with nothing of yours says `lines_sent` did not move
//! (`telemetry_follows_the_users_datagram_in_its_own_and_never_counts_itself`). Socket errors
//! are counted in `send_errors` whichever payload met them. No report is sent while a stream
//! destination is down or after a failed send; what changes meanwhile goes in the next report
//! that gets out. `lines_dropped{reason=too_long}` counts values, as
//! [`ExporterStats::lines_dropped_too_long`] does.
//! A report costs one small extra payload per flush and allocates nothing once warm.
//!
//! # Configuration reference
//!
//! Every setting, its default, and where it applies. Setters never fail; `build` / `install`
//! check them all at once and return a [`BuildError`] naming the setting.
//!
//! | constructor | endpoint default | protocol |
//! |---|---|---|
//! | [`ExporterBuilder::statsd`] | UDP, port 8125 (`tcp://`, `unix://`, `unixgram://` too) | plain StatsD |
//! | [`ExporterBuilder::dogstatsd`] | UDP, port 8125 (`unix://`, `unixgram://` too) | DogStatsD |
//! | [`ExporterBuilder::graphite`] | TCP, port 2003 (`udp://`, `unix://` too) | Graphite plaintext |
//! | [`ExporterBuilder::graphite_pickle`] | TCP, port 2004 | Graphite pickle |
//! | [`ExporterBuilder::from_env`], [`ExporterBuilder::dogstatsd_from_env`] | from the variables below | from the variables below |
//!
//! [`ExporterBuilder::build_client`] makes a [`GraphiteClient`] (explicit points, no
//! recorder) from a Graphite builder; [`ExporterBuilder::build_statsd_client`] makes a
//! [`StatsdClient`] from a StatsD or DogStatsD one
//! ([`ExporterBuilder::build_disabled_statsd_client`]: one that sends nothing). Both use the
//! settings below as the recorder does (flush interval, telemetry, series and histogram
//! settings aside).
//!
//! | setter | default | applies to |
//! |---|---|---|
//! | [`with_remote_address`](ExporterBuilder::with_remote_address) | the constructor's endpoint | all |
//! | [`with_enabled`](ExporterBuilder::with_enabled) | on, or `STATSD_ENABLED` | all |
//! | [`with_flush_interval`](ExporterBuilder::with_flush_interval) | 10 s (Graphite: at least 1 s) | all |
//! | [`with_prefix`](ExporterBuilder::with_prefix) | none | all |
//! | [`with_global_labels`](ExporterBuilder::with_global_labels) | none | all |
//! | [`with_maximum_payload_length`](ExporterBuilder::with_maximum_payload_length) | 1432 (UDP), 65536 (TCP, plain-StatsD and Graphite Unix streams), 8192 (Unix datagrams, DogStatsD Unix streams) | all |
//! | [`with_label_handling`](ExporterBuilder::with_label_handling) | [`LabelHandling::FoldIntoName`] | StatsD |
//! | [`with_type_prefixes`](ExporterBuilder::with_type_prefixes) | off | StatsD |
//! | [`with_histogram_kind`](ExporterBuilder::with_histogram_kind), [`with_histogram_kind_for`](ExporterBuilder::with_histogram_kind_for), [`send_histograms_as_distributions`](ExporterBuilder::send_histograms_as_distributions) | `\|ms` (StatsD), `\|d` (DogStatsD) | StatsD, DogStatsD |
//! | [`with_container_id`](ExporterBuilder::with_container_id), [`with_origin_detection`](ExporterBuilder::with_origin_detection) | none, off | DogStatsD |
//! | [`with_external_data`](ExporterBuilder::with_external_data) | none (with origin detection: `DD_EXTERNAL_ENV`) | DogStatsD |
//! | [`with_cardinality`](ExporterBuilder::with_cardinality) | none (the Agent's setting), or `DD_CARDINALITY` | DogStatsD |
//! | [`with_timestamps`](ExporterBuilder::with_timestamps) | off | DogStatsD |
//! | [`with_graphite_tags`](ExporterBuilder::with_graphite_tags) | [`GraphiteTags::Tagged`] | Graphite |
//! | [`with_counter_mode`](ExporterBuilder::with_counter_mode) | [`CounterMode::Delta`] | Graphite |
//! | [`with_aligned_timestamps`](ExporterBuilder::with_aligned_timestamps) | on | Graphite |
//! | [`with_send_spread`](ExporterBuilder::with_send_spread), [`with_send_spread_seed`](ExporterBuilder::with_send_spread_seed) | off (at most half the flush interval), the hostname's hash | Graphite with aligned timestamps |
//! | [`with_graphite_tag_hash_filenames`](ExporterBuilder::with_graphite_tag_hash_filenames) | `true`, as carbon's `TAG_HASH_FILENAMES` (decides how far tagged names are shortened: [Long names](#long-names)) | Graphite; plain StatsD with `LabelHandling::DogStatsd` |
//! | [`with_percentiles`](ExporterBuilder::with_percentiles) | 0.5, 0.9, 0.99, 0.999 | Graphite |
//! | [`with_default_histogram_unit`](ExporterBuilder::with_default_histogram_unit) | `Unit::Seconds` (so `Duration`s become milliseconds on `\|ms` lines; every other wire sends the recorded value: [histogram units](#histogram-units)) | all |
//! | [`with_histogram_max_samples`](ExporterBuilder::with_histogram_max_samples) | 1024 per interval (1..=65536) | all |
//! | [`with_shutdown_timeout`](ExporterBuilder::with_shutdown_timeout) | 5 s | all |
//! | [`with_write_timeout`](ExporterBuilder::with_write_timeout), [`with_connect_timeout`](ExporterBuilder::with_connect_timeout) | 1 s each | all |
//! | [`with_resolve_interval`](ExporterBuilder::with_resolve_interval) | 60 s (and on every reconnect) | network endpoints |
//! | [`with_reconnect_delay`](ExporterBuilder::with_reconnect_delay), [`with_max_reconnect_delay`](ExporterBuilder::with_max_reconnect_delay) | 100 ms, capped at 10 s (equal-jitter exponential backoff, retried at flush ticks) | stream transports, Unix datagram sockets |
//! | [`with_max_backlog_bytes`](ExporterBuilder::with_max_backlog_bytes) | 8 MiB | all transports |
//! | [`with_max_series`](ExporterBuilder::with_max_series) | 100 000 | all |
//! | [`with_max_series_per_metric`](ExporterBuilder::with_max_series_per_metric) | 2 000 (at most half of `max_series`); past it, or past `max_series`, a new series records into the metric's overflow series `cardinality="overflow"` | all |
//! | [`with_idle_timeout`](ExporterBuilder::with_idle_timeout) | 10 min (or two flush intervals) | all |
//! | [`with_gauge_resend`](ExporterBuilder::with_gauge_resend) | on | all |
//! | [`with_counter_zeros`](ExporterBuilder::with_counter_zeros) | on for Graphite, off for StatsD and DogStatsD | all |
//! | [`with_telemetry`](ExporterBuilder::with_telemetry), [`with_telemetry_prefix`](ExporterBuilder::with_telemetry_prefix) | off, `metrics_exporter` | all |
//!
//! Environment variables, read by [`ExporterBuilder::from_env`] (which picks the protocol:
//! DogStatsD if `DD_DOGSTATSD_URL` or `DD_AGENT_HOST` is set, else Graphite if
//! `GRAPHITE_URL` or `GRAPHITE_HOST` is, else StatsD) and, for the `DD_*` ones, by
//! [`ExporterBuilder::dogstatsd_from_env`]. Precedence: setters called afterwards > the
//! environment > defaults ([`with_remote_address`](ExporterBuilder::with_remote_address)
//! replaces the endpoint; a global label with the same key replaces the environment's). An
//! empty value counts as unset; a malformed one (a port of `99999`, `STATSD_PROTOCOL=http`)
//! fails `build` with [`BuildError::InvalidEnvironment`] naming the variable and its value as
//! set, never a silent default; `with_remote_address` sets aside only a malformed URL, host
//! or port variable, [`with_enabled`](ExporterBuilder::with_enabled) only a malformed
//! `STATSD_ENABLED`. Once built, a from-env exporter logs one info line: the protocol, the
//! endpoint, the variables they came from, and those set but ignored, such as
//! `STATSD_HOST (DD_AGENT_HOST wins)` where Datadog APM sets `DD_AGENT_HOST` in every pod.
//!
//! | variable | effect | default |
//! |---|---|---|
//! | `STATSD_ENABLED` | [`with_enabled`](ExporterBuilder::with_enabled) (what "off" means is there), read by both constructors whatever the protocol: `false`, `0`, `no` or `off` turn the exporter off, `true`, `1`, `yes` or `on` keep it on, in any case | on |
//! | `STATSD_URL` | the StatsD endpoint (`udp://`, `tcp://`, `unix://`); wins over the next three | — |
//! | `STATSD_HOST`, `STATSD_PORT` | host (or `host:port`, whose port wins) and port | `127.0.0.1`, 8125 |
//! | `STATSD_PROTOCOL` | `udp` or `tcp`, as sprockets-statsd reads it | `udp` |
//! | `STATSD_PREFIX` | [`with_prefix`](ExporterBuilder::with_prefix) | none |
//! | `GRAPHITE_URL` | the Graphite endpoint (`tcp://`, `udp://`, `unix://`); wins over the next three | — |
//! | `GRAPHITE_HOST`, `GRAPHITE_PORT` | host (or `host:port`, whose port wins) and port | —, 2003 (2004 for pickle) |
//! | `GRAPHITE_PROTOCOL` | `tcp` (plaintext), `udp` (plaintext) or `pickle` | `tcp` |
//! | `GRAPHITE_PREFIX` | [`with_prefix`](ExporterBuilder::with_prefix) | none |
//! | `DD_DOGSTATSD_URL` | the DogStatsD endpoint (`udp://`, `unix://`, `unixgram://`); wins over the next two | — |
//! | `DD_AGENT_HOST`, `DD_DOGSTATSD_PORT` | host (or `host:port`, or a `unix://` URL) and port | `127.0.0.1`, 8125 |
//! | `DD_ENV`, `DD_SERVICE`, `DD_VERSION` | global tags `env:`, `service:`, `version:` (each wins over the same key in `DD_TAGS`) | none |
//! | `DD_TAGS`, else `DATADOG_TAGS` | global tags, as Datadog's clients read them: separated by commas if there are any, else by whitespace; `key:value` or a bare `tag` | none |
//! | `DD_CARDINALITY`, else `DATADOG_CARDINALITY` | [`with_cardinality`](ExporterBuilder::with_cardinality): `none`, `low`, `orchestrator` or `high`, in any case (datadog-go ignores an invalid value; we refuse it) | none |
//! | `DD_EXTERNAL_ENV` | read by `build` only with [`with_origin_detection`](ExporterBuilder::with_origin_detection), whichever constructor: [`with_external_data`](ExporterBuilder::with_external_data), sanitised as datadog-go does (printable characters other than `\|`; refused if nothing is left); the setter wins | none |
//! | `DD_ENTITY_ID` | global tag `dd.internal.entity_id:`, as the official clients send it (set by the Datadog admission controller, for the Agent's origin detection; the `\|c:` field comes from [`with_container_id`](ExporterBuilder::with_container_id) or [`with_origin_detection`](ExporterBuilder::with_origin_detection)) | none |
//!
//! # Feature flags
//!
//! - `tower` (off by default): `RequestMetricsLayer` (documented when the feature is on, as
//!   on docs.rs), a `tower` layer that counts and times
//!   every HTTP request (`http.requests`, `http.request.duration`) by method, matched route
//!   and status. It adds `http`, `tower-layer`, `tower-service` and `pin-project-lite`; the
//!   route comes from a
//!   closure you give it (axum's `MatchedPath`, for one), so no web framework is a dependency.
//! - `fuzzing` (off, hidden): entry points for the `cargo fuzz` targets in `fuzz/`; not a
//!   public API.
//!
//! # Minimum supported Rust version
//!
//! 1.85.

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod aggregate;
mod builder;
mod capture;
mod client;
mod config;
mod delivery;
mod encode;
mod env;
mod env_origin;
mod error;
mod flush;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod lines;
#[cfg(feature = "tower")]
mod middleware;
#[doc = include_str!("../docs/production.md")]
pub mod production {}
mod protocol;
mod random;
mod recorder;
mod stats;
mod timer;
mod transport;

pub use aggregate::SetHandle;
pub use builder::{Exporter, ExporterBuilder, IntoGlobalLabel};
pub use capture::{Capture, ClientCapture, Flushed};
pub use client::{CallOpts, GraphiteClient, StatsdClient};
pub use encode::segment::{decode_segment, encode_segment, join_path};
pub use encode::{
    AlertType, Cardinality, CounterMode, Dialect, Event, EventPriority, GraphitePoints,
    GraphiteTags, HistogramKind, LabelHandling, MetricLine, MetricType, MetricValue, ServiceCheck,
    ServiceCheckStatus,
};
pub use error::{BuildError, EncodeError, FlushError};
pub use handle::{ExporterGuard, ExporterHandle};
#[cfg(feature = "tower")]
pub use middleware::{
    NoRoute, RequestMetrics, RequestMetricsFuture, RequestMetricsLayer, RouteSource,
};
pub use recorder::ExporterRecorder;
pub use stats::ExporterStats;
pub use timer::{Timer, timed};
