//! Where the flusher runs: on the caller's multi-thread tokio runtime when there is one,
//! otherwise on a dedicated, named thread driving its own current-thread runtime.
//!
//! A caller's *current-thread* runtime also gets the dedicated thread: a task there only runs
//! while the caller's thread polls the runtime, so a guard dropped while the runtime is busy,
//! blocked, or already torn down could never get its final flush.

use std::io;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

use super::{Command, Flusher};

/// Name of the thread we start when we do not spawn onto the caller's runtime.
pub(crate) const THREAD_NAME: &str = "metrics-exporter-flusher";

/// The running flusher, as the guard needs it to wait for the end.
#[derive(Debug)]
pub(crate) enum Running {
    /// Our own thread; joined after the final flush.
    Thread(std::thread::JoinHandle<()>),
    /// A task on the caller's multi-thread runtime.
    Task(tokio::task::JoinHandle<()>),
}

/// Starts `flusher`, listening on `commands`.
pub(crate) fn spawn(
    flusher: Flusher,
    commands: mpsc::UnboundedReceiver<Command>,
) -> io::Result<Running> {
    if let Ok(handle) = Handle::try_current() {
        if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            return Ok(Running::Task(handle.spawn(flusher.run(commands))));
        }
    }
    // Build the runtime here so a failure is returned to the caller, not lost in a thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            runtime.block_on(flusher.run(commands));
            // Don't wait for a DNS lookup that outlived its timeout in the blocking pool: the
            // final flush is done, and the guard is joining this thread.
            runtime.shutdown_background();
        })?;
    Ok(Running::Thread(thread))
}
