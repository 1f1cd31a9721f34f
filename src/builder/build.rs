//! `build`, `install` and `build_client`; the [`Exporter`] they return.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::ExporterBuilder;
use crate::aggregate::{Aggregate, Limits};
use crate::client::{ClientEncoder, GraphiteClient, StatsdClient};
use crate::config::Config;
use crate::encode::{Encoder, MAX_PICKLE_FRAME, PickleWire};
use crate::error::BuildError;
use crate::flush::{Command, Flusher, spawn};
use crate::handle::{ExporterGuard, ExporterHandle};
use crate::protocol::Protocol;
use crate::recorder::ExporterRecorder;
use crate::stats::StatsCells;

impl ExporterBuilder {
    /// Checks the settings and returns the recorder and the (not yet started) exporter, so the
    /// recorder can be wrapped in `metrics-util` layers before it is installed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    /// use metrics_util::layers::{Layer, PrefixLayer};
    ///
    /// let (recorder, exporter) = ExporterBuilder::statsd("127.0.0.1:8125").build()?;
    /// let guard = exporter.start()?;
    /// metrics::set_global_recorder(PrefixLayer::new("svc").layer(recorder))?;
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`BuildError`] naming the first invalid setting. A host name is not looked up here:
    /// one that does not resolve yet builds, and the transport resolves it later.
    pub fn build(self) -> Result<(ExporterRecorder, Exporter), BuildError> {
        if let (false, Some(by)) = self.enabled() {
            return self.build_disabled(by);
        }
        let config = self.config()?;
        let parts = self.assemble(config)?;
        if let Some(origin) = &self.env_origin {
            origin.log();
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        Ok((
            parts.recorder.keeping_alive(commands.clone()),
            Exporter {
                running: Some(Startable {
                    flusher: parts.flusher,
                    commands,
                    receiver,
                    aggregate: parts.aggregate,
                }),
                stats: parts.stats,
                shutdown_timeout: parts.shutdown_timeout,
            },
        ))
    }

    /// The recorder and the (enabled) flusher over a checked `config`.
    pub(super) fn assemble(&self, config: Config) -> Result<Assembled, BuildError> {
        let encoder = self.encoder()?;
        let stats = Arc::new(StatsCells::default());
        let aggregate = Arc::new(
            Aggregate::new(
                config.default_histogram_unit,
                config.histogram_capacity,
                Limits::new(config.max_series, config.max_series_per_metric),
                Arc::clone(&stats),
            )
            .with_set_capacity(config.set_capacity, config.max_payload_len),
        );
        let shutdown_timeout = config.shutdown_timeout;
        tracing::debug!(protocol = ?self.protocol, endpoint = %config.endpoint, "metrics exporter built");
        let wire =
            (self.protocol == Protocol::GraphitePickle).then(|| PickleWire::new(MAX_PICKLE_FRAME));
        let flusher = Flusher::new(
            Arc::clone(&aggregate),
            Arc::clone(&stats),
            config,
            encoder,
            wire,
        );
        Ok(Assembled {
            recorder: ExporterRecorder::new(Arc::clone(&aggregate)),
            flusher,
            aggregate,
            stats,
            shutdown_timeout,
        })
    }

    /// A [`GraphiteClient`] for sending explicit points (backfills, batch jobs) with this
    /// builder's endpoint, format, prefix, global labels, tag style, timeouts, payload size
    /// and backlog bound. Use it inside a tokio runtime.
    ///
    /// # Errors
    /// As [`build`](Self::build), and [`BuildError::InvalidSetting`] for protocols other than
    /// Graphite plaintext and pickle.
    pub fn build_client(self) -> Result<GraphiteClient, BuildError> {
        self.check_graphite_client()?;
        let config = self.config()?;
        self.graphite_client(config)
    }

    /// Refuses the protocols the Graphite client does not speak.
    pub(super) fn check_graphite_client(&self) -> Result<(), BuildError> {
        if !matches!(self.protocol, Protocol::Graphite | Protocol::GraphitePickle) {
            return Err(BuildError::InvalidSetting {
                setting: "build_client",
                reason: "the direct client sends Graphite points; use graphite() or graphite_pickle()",
            });
        }
        Ok(())
    }

    /// The Graphite client over a checked `config`.
    pub(super) fn graphite_client(&self, config: Config) -> Result<GraphiteClient, BuildError> {
        let Encoder::Graphite(encoder) = self.encoder()? else {
            return Err(BuildError::InvalidSetting {
                setting: "build_client",
                reason: "not a Graphite protocol",
            });
        };
        let wire =
            (self.protocol == Protocol::GraphitePickle).then(|| PickleWire::new(MAX_PICKLE_FRAME));
        Ok(GraphiteClient::new(encoder, config, wire))
    }

    /// A [`StatsdClient`] for sending explicit StatsD or DogStatsD lines, events and service
    /// checks, with this builder's endpoint, prefix, global labels, label handling, DogStatsD
    /// fields, timeouts, payload size and backlog bound. Use it inside a tokio runtime.
    ///
    /// # Errors
    /// As [`build`](Self::build), and [`BuildError::InvalidSetting`] naming
    /// `build_statsd_client` for the Graphite protocols.
    pub fn build_statsd_client(self) -> Result<StatsdClient, BuildError> {
        self.statsd_client(true)
    }

    /// The same [`StatsdClient`] as [`build_statsd_client`](Self::build_statsd_client), with
    /// every check, sample and count, but it never opens a socket: each flush drops what is
    /// queued (`lines_sent` stays 0; drops by reason are counted as usual). For code that
    /// keeps its metric calls while metrics are off, or in tests, as sprockets-statsd's
    /// `AbstractConnector`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::{CallOpts, ExporterBuilder};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut client = ExporterBuilder::statsd("127.0.0.1:8125").build_disabled_statsd_client()?;
    /// assert!(client.incr("jobs", CallOpts::default()));
    /// assert!(!client.timing_ms("db", f64::NAN, CallOpts::default())); // refused as ever
    /// client.flush().await?; // nothing sent
    /// assert_eq!(client.stats().lines_sent, 0);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`build_statsd_client`](Self::build_statsd_client).
    pub fn build_disabled_statsd_client(self) -> Result<StatsdClient, BuildError> {
        self.statsd_client(false)
    }

    fn statsd_client(self, send: bool) -> Result<StatsdClient, BuildError> {
        self.statsd_client_over(send, Self::config)
    }

    /// The StatsD client over the configuration `config` checks (after the protocol).
    pub(super) fn statsd_client_over(
        &self,
        send: bool,
        config: fn(&Self) -> Result<Config, BuildError>,
    ) -> Result<StatsdClient, BuildError> {
        let refused = BuildError::InvalidSetting {
            setting: "build_statsd_client",
            reason: "the StatsD client sends StatsD or DogStatsD lines; use statsd() or dogstatsd() (build_client for Graphite)",
        };
        if !matches!(self.protocol, Protocol::Statsd | Protocol::DogStatsd) {
            return Err(refused);
        }
        let config = config(self)?;
        let encoder = match self.encoder()? {
            Encoder::Statsd(e) => ClientEncoder::Statsd(e),
            Encoder::DogStatsd(e) => ClientEncoder::DogStatsd(e),
            Encoder::Graphite(_) => return Err(refused),
        };
        Ok(StatsdClient::new(encoder, config, send))
    }

    /// Builds the exporter, installs its recorder as the global `metrics` recorder and starts
    /// the flusher: spawned onto the current tokio runtime if called inside a multi-thread
    /// one, otherwise (no runtime, or a current-thread runtime, which would only run it while
    /// its own thread polls) on a dedicated thread with its own runtime. Dropping the returned
    /// guard flushes but does not stop the exporter; [`ExporterGuard`] describes the lifecycle.
    ///
    /// # Errors
    /// As [`build`](Self::build), plus [`BuildError::RecorderAlreadyInstalled`] and
    /// [`BuildError::Spawn`].
    pub fn install(self) -> Result<ExporterGuard, BuildError> {
        let (recorder, exporter) = self.build()?;
        metrics::set_global_recorder(recorder).map_err(|_| BuildError::RecorderAlreadyInstalled)?;
        exporter.start()
    }
}
/// What [`ExporterBuilder::assemble`] makes: the recorder, the flusher, the cells (for sets)
/// and the statistics, for [`Exporter`] or a flush driver of its own (`build_capture`).
pub(super) struct Assembled {
    pub(super) recorder: ExporterRecorder,
    pub(super) flusher: Flusher,
    pub(super) aggregate: Arc<Aggregate>,
    pub(super) stats: Arc<StatsCells>,
    pub(super) shutdown_timeout: Duration,
}

/// An enabled exporter's parts, before `start`.
#[derive(Debug)]
struct Startable {
    flusher: Flusher,
    /// The flusher's command channel; the recorder holds a sender too (see
    /// [`ExporterGuard`]).
    commands: mpsc::UnboundedSender<Command>,
    receiver: mpsc::UnboundedReceiver<Command>,
    /// For the handle's sets.
    aggregate: Arc<Aggregate>,
}

/// The flusher side of a built exporter, not yet running. See [`ExporterBuilder::build`].
#[derive(Debug)]
#[must_use = "an exporter sends nothing until started"]
pub struct Exporter {
    /// What `start` runs; `None`: disabled ([`ExporterBuilder::with_enabled`]).
    running: Option<Startable>,
    stats: Arc<StatsCells>,
    shutdown_timeout: Duration,
}

impl Exporter {
    /// The exporter of a disabled builder: `start` starts nothing.
    pub(super) fn disabled(shutdown_timeout: Duration) -> Self {
        Self {
            running: None,
            stats: Arc::default(),
            shutdown_timeout,
        }
    }

    /// The statistics cells, for tests that drive the flusher themselves.
    #[cfg(test)]
    pub(crate) fn stats_cells(&self) -> Arc<StatsCells> {
        Arc::clone(&self.stats)
    }

    /// The flusher itself, for tests that drive it on a runtime of their own (paused clock).
    #[cfg(test)]
    pub(crate) fn into_flusher(self) -> Flusher {
        self.running.expect("an enabled exporter").flusher
    }

    /// Starts the flusher: spawned onto the current tokio runtime if called inside a
    /// multi-thread one, otherwise (no runtime, or a current-thread one) on a dedicated
    /// thread, `metrics-exporter-flusher`, with its own current-thread runtime.
    ///
    /// Disabled ([`ExporterBuilder::with_enabled`]), it starts nothing and returns a guard
    /// whose flushes and shutdown return `Ok` at once.
    ///
    /// # Errors
    /// [`BuildError::Spawn`] if the thread or its runtime cannot be created.
    pub fn start(self) -> Result<ExporterGuard, BuildError> {
        let Some(parts) = self.running else {
            return Ok(ExporterGuard::disabled(ExporterHandle::disabled(
                self.stats,
            )));
        };
        let demand = parts.flusher.demand();
        let running = spawn(parts.flusher, parts.receiver).map_err(BuildError::Spawn)?;
        let handle = ExporterHandle::new(
            parts.commands,
            demand,
            parts.aggregate,
            self.stats,
            self.shutdown_timeout + Duration::from_millis(250),
        );
        Ok(ExporterGuard::new(handle, running, self.shutdown_timeout))
    }
}
