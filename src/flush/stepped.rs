//! [`Stepped`]: the flusher driven one tick at a time, without a timer or a runtime, over a
//! memory transport. What [`Capture`](crate::Capture) runs on.
//!
//! Each [`tick`](Stepped::tick) is the very step [`Flusher::run`] takes when its interval
//! timer fires (`isolated_flush` with [`Trigger::Tick`]): the same collect, encoders,
//! delivery and telemetry report, only the wall-clock time is the caller's and the socket is
//! memory.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{Flusher, Trigger, WallClock};
use crate::config::Config;
use crate::transport::{MemorySink, Transport};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Stepped {
    flusher: Flusher,
    transport: Transport,
}

impl Stepped {
    /// Drives `flusher`, recording what it sends into `sink`.
    pub(crate) fn new(flusher: Flusher, sink: MemorySink) -> Self {
        let transport = Transport::memory(&flusher.config, sink);
        Self { flusher, transport }
    }

    /// The configuration the flusher runs with.
    pub(crate) fn config(&self) -> &Config {
        &self.flusher.config
    }

    /// Tests: the flusher.
    #[cfg(test)]
    pub(crate) fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    /// One periodic flush, stamped with `clock`'s time. Returns `false` if it did not
    /// complete at once (it always does: nothing on a memory transport waits).
    pub(crate) fn tick(&mut self, clock: WallClock) -> bool {
        self.flusher.clock = clock;
        let Self { flusher, transport } = self;
        let done = complete(flusher.isolated_flush(transport, Trigger::Tick));
        if !done {
            tracing::error!("a captured flush did not complete at once (please report this bug)");
        }
        done
    }
}

/// Polls `future` once, with a waker that does nothing: whether it finished. A flush over a
/// memory transport never waits, so it finishes on its first poll, on any thread, inside a
/// runtime or not.
fn complete(future: impl Future<Output = ()>) -> bool {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(future.as_mut().poll(&mut cx), Poll::Ready(()))
}
