//! `build_capture`, `build_statsd_client_capture` and `build_client_capture`: the exporter and
//! the direct clients over memory instead of a socket, for the user's tests.

use super::ExporterBuilder;
use crate::capture::{Capture, ClientCapture, Wire};
use crate::client::{GraphiteClient, StatsdClient};
use crate::error::BuildError;
use crate::protocol::Protocol;
use crate::recorder::ExporterRecorder;
use crate::transport::MemorySink;

impl ExporterBuilder {
    /// Checks the settings as [`build`](Self::build) does and returns the recorder with a
    /// [`Capture`]: the exporter's real flusher, encoders and delivery, sending into memory
    /// instead of a socket, flushed only when the test says so. No socket is opened and the
    /// host is not looked up (so a name that does not resolve is fine); payloads are framed
    /// and sized as the configured endpoint's socket would send them. The crate docs'
    /// [Testing your metrics](crate#testing-your-metrics) section shows it in use.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_capture(self) -> Result<(ExporterRecorder, Capture), BuildError> {
        let config = self.config()?;
        let parts = self.assemble(config)?;
        let pickle = self.protocol == Protocol::GraphitePickle;
        let capture = Capture::new(parts.flusher, parts.aggregate, parts.stats, pickle);
        Ok((parts.recorder, capture))
    }

    /// The [`StatsdClient`] of [`build_statsd_client`](Self::build_statsd_client), sending
    /// into the returned [`ClientCapture`] instead of a socket; the host is not looked up.
    ///
    /// # Errors
    /// As [`build_statsd_client`](Self::build_statsd_client).
    pub fn build_statsd_client_capture(self) -> Result<(StatsdClient, ClientCapture), BuildError> {
        let client = self.statsd_client_over(true, Self::config)?;
        let config = self.config()?;
        let sink = MemorySink::default();
        let capture = ClientCapture::new(sink.clone(), Wire::of(&config, false));
        Ok((client.capturing(sink), capture))
    }

    /// The [`GraphiteClient`] of [`build_client`](Self::build_client), sending into the
    /// returned [`ClientCapture`] instead of a socket; the host is not looked up.
    ///
    /// # Errors
    /// As [`build_client`](Self::build_client).
    pub fn build_client_capture(self) -> Result<(GraphiteClient, ClientCapture), BuildError> {
        self.check_graphite_client()?;
        let config = self.config()?;
        let wire = Wire::of(&config, self.protocol == Protocol::GraphitePickle);
        let client = self.graphite_client(config)?;
        let sink = MemorySink::default();
        Ok((
            client.capturing(sink.clone()),
            ClientCapture::new(sink, wire),
        ))
    }
}
