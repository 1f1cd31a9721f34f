//! [`ExporterHandle`] (flush now, read stats, register sets) and [`ExporterGuard`] (flush on
//! drop, explicit shutdown; its docs describe the exporter's lifecycle).

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::aggregate::{Aggregate, SetHandle};
use crate::error::FlushError;
use crate::flush::{Command, Demand, Reply, Running};
use crate::stats::{ExporterStats, StatsCells};

/// A cheap, cloneable handle to a running exporter.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// let guard = ExporterBuilder::statsd("udp://127.0.0.1:8125").install()?;
/// let handle = guard.handle();
/// metrics::counter!("jobs_done").increment(1);
/// handle.flush()?; // sent now, not at the next tick
/// println!("{} lines sent so far", handle.stats().lines_sent);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ExporterHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// Explicit flushes: numbered requests, no channel per call.
    demand: Arc<Demand>,
    /// `None`: a disabled exporter ([`with_enabled`](crate::ExporterBuilder::with_enabled)),
    /// whose flushes do nothing and whose sets record nothing.
    aggregate: Option<Arc<Aggregate>>,
    stats: Arc<StatsCells>,
    wait: Duration,
}

impl ExporterHandle {
    pub(crate) fn new(
        commands: mpsc::UnboundedSender<Command>,
        demand: Arc<Demand>,
        aggregate: Arc<Aggregate>,
        stats: Arc<StatsCells>,
        wait: Duration,
    ) -> Self {
        Self {
            commands,
            demand,
            aggregate: Some(aggregate),
            stats,
            wait,
        }
    }

    /// The handle of a disabled exporter: no flusher listens.
    pub(crate) fn disabled(stats: Arc<StatsCells>) -> Self {
        Self {
            commands: mpsc::unbounded_channel().0,
            demand: Arc::default(),
            aggregate: None,
            stats,
            wait: Duration::ZERO,
        }
    }

    /// Flushes everything recorded so far and waits (up to the shutdown timeout) until it has
    /// been handed to the transport.
    ///
    /// # Errors
    /// [`FlushError::NotRunning`] after shutdown, [`FlushError::Timeout`] when the flusher
    /// did not finish in time.
    ///
    /// `Ok` means the flusher ran a flush, not that a receiver got it: while a TCP
    /// destination is unreachable, the flush keeps the aggregate for later and sends nothing.
    /// [`stats`](Self::stats) tells what was sent and dropped.
    ///
    /// Calls from many threads at once may share one flush (each waits for a flush that
    /// started after its call). A call allocates nothing.
    pub fn flush(&self) -> Result<(), FlushError> {
        if self.aggregate.is_none() {
            return Ok(());
        }
        Self::blocking(|| self.demand.flush_blocking(self.wait))
    }

    /// Async version of [`flush`](Self::flush), for use inside a tokio runtime.
    ///
    /// # Errors
    /// As [`flush`](Self::flush), except that it never blocks the runtime.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        if self.aggregate.is_none() {
            return Ok(());
        }
        self.demand.flush_async(self.wait).await
    }

    /// Stops the exporter from any handle: the final flush (bounded by the shutdown
    /// timeout), then the flusher stops and every later flush returns
    /// [`FlushError::NotRunning`]. For an exporter whose guard is gone (`install()?;` as a
    /// statement); with the guard at hand, [`ExporterGuard::shutdown`] does the same and
    /// also waits for the flusher's thread. Returns the final statistics.
    ///
    /// # Errors
    /// As [`ExporterGuard::shutdown`]; [`FlushError::NotRunning`] if it was stopped already.
    pub fn shutdown(&self) -> Result<ExporterStats, FlushError> {
        if self.aggregate.is_none() {
            return Ok(self.stats());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        Self::blocking(|| {
            self.request_shutdown(Reply::Sync(tx))?;
            wait_sync(&rx, self.wait)
        })?;
        Ok(self.stats())
    }

    /// Async version of [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown), except that it never blocks the runtime.
    pub async fn shutdown_async(&self) -> Result<ExporterStats, FlushError> {
        if self.aggregate.is_none() {
            return Ok(self.stats());
        }
        let (tx, rx) = oneshot::channel();
        self.request_shutdown(Reply::Async(tx))?;
        wait_async(rx, self.wait).await?;
        Ok(self.stats())
    }

    /// Asks for the final flush, due within the shutdown timeout (`wait` less the grace the
    /// reply gets).
    fn request_shutdown(&self, reply: Reply) -> Result<(), FlushError> {
        let deadline = Instant::now() + self.wait.saturating_sub(GRACE);
        self.commands
            .send(Command::Shutdown { deadline, reply })
            .map_err(|_| FlushError::NotRunning)
    }

    /// The set series for `key` (a name, or [`Key::from_parts`](metrics::Key::from_parts)
    /// for labels), created on first use; every call with the same key returns a handle to
    /// the same set. The `metrics` facade has no sets, so they are registered here. A set
    /// counts against the series limits like any series (past them it is its metric's
    /// overflow set, or a handle that records nothing). See [`SetHandle`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let guard = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125").install()?;
    /// let users = guard.handle().set("users.unique");
    /// users.insert("alice");
    /// # Ok(())
    /// # }
    /// ```
    pub fn set(&self, key: impl Into<metrics::Key>) -> SetHandle {
        SetHandle::new(
            self.aggregate
                .as_ref()
                .and_then(|a| a.admit_set(&key.into())),
        )
    }

    /// A snapshot of the exporter's statistics.
    pub fn stats(&self) -> ExporterStats {
        self.stats.snapshot()
    }

    /// Runs a blocking wait: on a multi-thread runtime through `block_in_place` (so the
    /// runtime's other tasks, the flusher among them, keep running), elsewhere directly. On a
    /// current-thread runtime the flusher has its own thread, so waiting only stalls the
    /// caller's runtime, for at most the timeout.
    fn blocking<T>(f: impl FnOnce() -> T) -> T {
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
            _ => f(),
        }
    }
}

fn wait_sync(
    rx: &std::sync::mpsc::Receiver<Result<(), FlushError>>,
    wait: Duration,
) -> Result<(), FlushError> {
    match rx.recv_timeout(wait) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(FlushError::NotRunning),
    }
}

async fn wait_async(
    rx: oneshot::Receiver<Result<(), FlushError>>,
    wait: Duration,
) -> Result<(), FlushError> {
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(FlushError::NotRunning),
        Err(_) => Err(FlushError::Timeout),
    }
}

/// What [`install`](crate::ExporterBuilder::install) and
/// [`Exporter::start`](crate::Exporter::start) return: the exporter's final flush at exit and
/// its explicit stop. This is the one description of the exporter's lifecycle:
///
/// - **Build** ([`build`](crate::ExporterBuilder::build)): checks the settings; nothing runs
///   and nothing is sent yet.
/// - **Start** (`install`, or `start` after `build`): the flusher runs, sending what was
///   recorded every flush interval, on a task of your multi-thread tokio runtime or on its
///   own thread (see `install`).
/// - **Guard dropped**: a flush of everything recorded so far, trying the destination at once
///   even during a reconnect backoff, waited for up to the shutdown timeout; it is logged at
///   debug level. The exporter **keeps running**: `install()?;` written as a statement still
///   exports, and `let _guard = builder.install()?;` at the top of `main` still gets its
///   flush at the end of `main`. What the destination does not take then stays queued for
///   the next flush, as during any outage.
/// - **[`shutdown`](Self::shutdown)**: the final flush (bounded by the shutdown timeout;
///   what it cannot deliver is counted in `lines_dropped_shutdown`), then the flusher stops:
///   nothing more is sent, and every handle's [`flush`](ExporterHandle::flush) returns
///   [`FlushError::NotRunning`]. [`ExporterHandle::shutdown`] does the same from any handle,
///   for an exporter whose guard is gone.
/// - **Everything gone**: once the recorder, the guard and every handle are dropped (only
///   possible with a recorder from `build` that was not installed globally), nothing can
///   record any more and the flusher makes its final flush and stops.
/// - **Process exit**: the flusher never keeps the process alive (its thread is not joined;
///   a task ends with its runtime). What was recorded after the last flush is lost, so keep
///   the guard until the end of `main`, or call `shutdown`.
///
/// When the flusher is a task on your multi-thread runtime, drop (or shut down) the guard
/// before that runtime shuts down: a runtime that is gone cannot run the flush.
#[derive(Debug)]
#[must_use = "dropping the guard flushes at once but does not stop the exporter; keep it (`let _guard = ...`) to flush again when it drops, or call `shutdown()`"]
pub struct ExporterGuard {
    handle: ExporterHandle,
    running: Option<Running>,
    shutdown_timeout: Duration,
}

impl ExporterGuard {
    pub(crate) fn new(
        handle: ExporterHandle,
        running: Running,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            handle,
            running: Some(running),
            shutdown_timeout,
        }
    }

    /// The guard of a disabled exporter: nothing to stop.
    pub(crate) fn disabled(handle: ExporterHandle) -> Self {
        Self {
            handle,
            running: None,
            shutdown_timeout: Duration::ZERO,
        }
    }

    /// A handle for flushing and reading statistics, which can outlive the guard.
    pub fn handle(&self) -> ExporterHandle {
        self.handle.clone()
    }

    /// Flushes everything recorded so far, waits for it (up to the shutdown timeout), and
    /// stops the flusher. Returns the final statistics.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] if the final flush did not finish in time, and
    /// [`FlushError::Dropped`] if it finished but the destination could not take everything
    /// (what it could not send is counted in `lines_dropped_shutdown` either way; read it
    /// from a [`handle`](Self::handle) kept beforehand); [`FlushError::NotRunning`] if the
    /// flusher already stopped (its runtime shut down).
    pub fn shutdown(mut self) -> Result<ExporterStats, FlushError> {
        self.shutdown_blocking()
    }

    /// Async version of [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub async fn shutdown_async(mut self) -> Result<ExporterStats, FlushError> {
        if self.handle.aggregate.is_none() {
            return Ok(self.handle.stats());
        }
        let running = self.running.take();
        let (tx, rx) = oneshot::channel();
        self.request_shutdown(Reply::Async(tx))?;
        let result = wait_async(rx, self.shutdown_timeout + GRACE).await;
        if let Some(Running::Task(task)) = running {
            // Unless the flusher failed to answer, it has replied and is returning.
            if result != Err(FlushError::Timeout) {
                drop(task.await);
            }
        }
        result.map(|()| self.handle.stats())
    }

    fn request_shutdown(&self, reply: Reply) -> Result<(), FlushError> {
        self.handle.request_shutdown(reply)
    }

    fn shutdown_blocking(&mut self) -> Result<ExporterStats, FlushError> {
        if self.handle.aggregate.is_none() {
            return Ok(self.handle.stats());
        }
        let Some(running) = self.running.take() else {
            return Err(FlushError::NotRunning);
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wait = self.shutdown_timeout + GRACE;
        let request = || {
            self.request_shutdown(Reply::Sync(tx))?;
            wait_sync(&rx, wait)
        };
        let result = ExporterHandle::blocking(request);
        if result != Err(FlushError::Timeout) {
            if let Running::Thread(thread) = running {
                // The flusher replied just before returning, and its runtime shuts down
                // without waiting for stray blocking work: this join is immediate.
                drop(ExporterHandle::blocking(|| thread.join()));
            }
        }
        result.map(|()| self.handle.stats())
    }
}

/// Extra wait beyond the shutdown timeout, for the flusher to report back.
const GRACE: Duration = Duration::from_millis(250);

impl Drop for ExporterGuard {
    fn drop(&mut self) {
        if self.running.take().is_none() {
            // Shut down already.
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wait = self.shutdown_timeout + GRACE;
        let result = ExporterHandle::blocking(|| {
            self.handle
                .commands
                .send(Command::Release(Reply::Sync(tx)))
                .map_err(|_| FlushError::NotRunning)?;
            wait_sync(&rx, wait)
        });
        match result {
            Ok(()) => tracing::debug!(
                "exporter guard dropped: flushed; the exporter keeps running until its recorder is gone or the process exits (ExporterHandle::shutdown stops it)"
            ),
            Err(error) => tracing::debug!(
                %error,
                "exporter guard dropped without a confirmed flush; the exporter keeps running if it can"
            ),
        }
    }
}
