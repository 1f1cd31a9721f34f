//! Where the flusher runs: on the caller's tokio runtime when there is one, otherwise on a
//! dedicated, named thread driving a current-thread runtime.

use std::io;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

use super::{Command, Flusher};

/// Name of the thread we start when there is no runtime to spawn on.
pub(crate) const THREAD_NAME: &str = "metrics-exporter-flusher";

/// The running flusher, as the guard needs it to wait for the end.
#[derive(Debug)]
pub(crate) enum Running {
    /// Our own thread; joined after the final flush.
    Thread(std::thread::JoinHandle<()>),
    /// A task on the caller's runtime, of the given flavour.
    Task(tokio::task::JoinHandle<()>, RuntimeFlavor),
}

/// Starts `flusher`, listening on `commands`.
pub(crate) fn spawn(
    flusher: Flusher,
    commands: mpsc::UnboundedReceiver<Command>,
) -> io::Result<Running> {
    if let Ok(handle) = Handle::try_current() {
        let flavor = handle.runtime_flavor();
        return Ok(Running::Task(handle.spawn(flusher.run(commands)), flavor));
    }
    // Build the runtime here so a failure is returned to the caller, not lost in a thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || runtime.block_on(flusher.run(commands)))?;
    Ok(Running::Thread(thread))
}
