//! The off switch: [`with_enabled`](ExporterBuilder::with_enabled) and `STATSD_ENABLED`, and
//! the exporter a disabled builder builds (no flusher, no socket, no lookup, no aggregate).

use super::ExporterBuilder;
use super::build::Exporter;
use crate::error::BuildError;
use crate::recorder::ExporterRecorder;

impl ExporterBuilder {
    /// Turns the exporter on or off; on by default, and after
    /// [`from_env`](Self::from_env) or [`dogstatsd_from_env`](Self::dogstatsd_from_env)
    /// what `STATSD_ENABLED` says (see the
    /// [Configuration reference](crate#configuration-reference)), which this setter
    /// replaces, a malformed value included.
    ///
    /// Off, [`install`](Self::install) installs a recorder that records nothing (every
    /// handle is a no-op) and starts nothing: no flusher thread or task, no socket, no name
    /// lookup. The guard and handle work as usual: `flush` and `shutdown` return `Ok` at once,
    /// sets record nothing, and the statistics stay zero. One info line says the exporter is
    /// off and what turned it off. Only the environment variables are checked (a malformed
    /// one still fails); the endpoint and other settings are not.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let guard = ExporterBuilder::statsd("statsd.invalid:8125")
    ///     .with_enabled(false)
    ///     .install()?; // no lookup of statsd.invalid, nothing started
    /// metrics::counter!("requests").increment(1); // dropped
    /// guard.handle().flush()?;
    /// assert_eq!(guard.shutdown()?.lines_sent, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.switch = Some((enabled, "with_enabled"));
        self.env_errors
            .retain(|e| e.variable != crate::env::ENABLED);
        self
    }

    /// Whether the exporter is on, and what said so (`None`: the default, on).
    pub(super) fn enabled(&self) -> (bool, Option<&'static str>) {
        self.switch
            .map_or((true, None), |(enabled, by)| (enabled, Some(by)))
    }

    /// The recorder and exporter of a disabled builder: after the environment is checked,
    /// a recorder that records nothing and an exporter that starts nothing.
    pub(super) fn build_disabled(
        &self,
        by: &'static str,
    ) -> Result<(ExporterRecorder, Exporter), BuildError> {
        self.check_environment()?;
        tracing::info!(
            by,
            "metrics exporter disabled: recording and sending nothing"
        );
        Ok((
            ExporterRecorder::disabled(),
            Exporter::disabled(self.shutdown_timeout),
        ))
    }
}
