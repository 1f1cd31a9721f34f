//! The wall clock the flusher stamps points with and aligns its ticks to.

#[cfg(test)]
use tokio::time::Instant;

/// Where the flusher reads the wall-clock time it stamps on points (and aligns ticks to).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WallClock {
    /// The system clock.
    System,
    /// A fixed time since the Unix epoch: what a [`Capture`](crate::Capture) flush is told.
    Fixed(std::time::Duration),
    /// `unix` at the tokio instant `at`, advancing with tokio's clock: lets tests drive
    /// timestamps with tokio's paused clock.
    #[cfg(test)]
    Anchored {
        unix: std::time::Duration,
        at: Instant,
    },
}

impl WallClock {
    /// Time since the Unix epoch.
    pub(super) fn now(self) -> std::time::Duration {
        match self {
            Self::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
            Self::Fixed(unix) => unix,
            #[cfg(test)]
            Self::Anchored { unix, at } => unix + at.elapsed(),
        }
    }
}

/// Time until the wall clock next reaches a multiple of `interval` (plus a few milliseconds,
/// so the tick's aligned timestamp is that multiple and not the one before).
pub(super) fn until_next_multiple(
    since_epoch: std::time::Duration,
    interval: std::time::Duration,
) -> std::time::Duration {
    let period = interval.as_millis().max(1);
    let into = since_epoch.as_millis() % period;
    let wait = u64::try_from(period - into).unwrap_or(0);
    std::time::Duration::from_millis(wait + 5)
}
