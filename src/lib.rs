//! WIP docs
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod aggregate;
mod builder;
mod config;
mod encode;
mod error;
mod flush;
mod handle;
mod random;
mod recorder;
mod stats;
mod transport;

pub use builder::{Exporter, ExporterBuilder, Protocol};
pub use encode::{HistogramKind, LabelHandling};
pub use error::{BuildError, FlushError};
pub use handle::{ExporterGuard, ExporterHandle};
pub use recorder::ExporterRecorder;
pub use stats::ExporterStats;
