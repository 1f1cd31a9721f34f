//! [`Timer`] and [`timed`]: record how long a scope or a future took, into a histogram, as
//! aiostatsd's `timeit` and sprockets-statsd's `execution_timer` do for Python users.
//!
//! Durations are recorded in seconds (what `metrics` does with a `Duration`); with the
//! default histogram unit (seconds) the exporter sends them as milliseconds for `|ms` timers.
//! No clock is read but `Instant::now()` at start and stop; nothing allocates.

use std::future::Future;
use std::time::{Duration, Instant};

use metrics::Histogram;

/// Records the time from [`Timer::start`] until it is dropped (or [`stop`](Timer::stop)ped)
/// into a histogram. Early returns and `?` are timed too; [`cancel`](Timer::cancel) records
/// nothing.
///
/// ```
/// use metrics_exporter_statsd_graphite::Timer;
///
/// fn load() -> Result<u32, std::io::Error> {
///     let _timer = Timer::start(metrics::histogram!("db.load", "table" => "users"));
///     // ... every return path below is timed
///     Ok(42)
/// }
/// # load().unwrap();
/// ```
#[derive(Debug)]
#[must_use = "a timer records when dropped; binding it to `_` drops it at once"]
pub struct Timer {
    histogram: Histogram,
    start: Instant,
    armed: bool,
}

impl Timer {
    /// Starts timing now.
    pub fn start(histogram: Histogram) -> Self {
        Self {
            histogram,
            start: Instant::now(),
            armed: true,
        }
    }

    /// Time elapsed so far.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records the elapsed time now and returns it.
    pub fn stop(mut self) -> Duration {
        self.armed = false;
        let elapsed = self.start.elapsed();
        self.histogram.record(elapsed);
        elapsed
    }

    /// Stops without recording anything (e.g. for a path you do not want in the latency
    /// distribution).
    pub fn cancel(mut self) {
        self.armed = false;
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if self.armed {
            self.histogram.record(self.start.elapsed());
        }
    }
}

/// Runs `future` and records how long it took, from the first poll's creation of the timer
/// to completion, into `histogram`. A future dropped before completing (cancelled, timed
/// out) records its time too, as the scope guard does; use [`Timer`] directly for other
/// policies.
///
/// ```
/// use metrics_exporter_statsd_graphite::timed;
///
/// # async fn fetch() -> u32 { 7 }
/// # async fn run() {
/// let body = timed(metrics::histogram!("http.fetch"), fetch()).await;
/// # let _ = body;
/// # }
/// # drop(run());
/// ```
pub async fn timed<F: Future>(histogram: Histogram, future: F) -> F::Output {
    let _timer = Timer::start(histogram);
    future.await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use metrics::HistogramFn;

    use super::*;

    #[derive(Debug, Default)]
    struct Samples(Mutex<Vec<f64>>);

    impl HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().unwrap().push(value);
        }
    }

    fn histogram() -> (Histogram, Arc<Samples>) {
        let samples = Arc::new(Samples::default());
        (Histogram::from_arc(Arc::clone(&samples)), samples)
    }

    #[test]
    fn a_dropped_timer_records_the_scope_in_seconds_and_a_cancelled_one_nothing() {
        let (h, samples) = histogram();
        {
            let _t = Timer::start(h.clone());
            std::thread::sleep(Duration::from_millis(20));
        }
        Timer::start(h.clone()).cancel();
        let stopped = Timer::start(h).stop();
        let got = samples.0.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0] >= 0.020 && got[0] < 10.0, "seconds, not ms: {got:?}");
        assert!((got[1] - stopped.as_secs_f64()).abs() < 1e-12);
    }

    #[tokio::test]
    async fn timed_records_how_long_the_future_took_and_a_future_dropped_early_still_records() {
        let (h, samples) = histogram();
        let out = timed(h.clone(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            5
        })
        .await;
        assert_eq!(out, 5);
        // Cancelled mid-way (a timeout, a dropped request): the time until then is recorded.
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            timed(h, std::future::pending::<()>()),
        )
        .await;
        assert!(cancelled.is_err());
        let got = samples.0.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        // Lower bounds only: a busy machine may take longer, never less.
        assert!(
            got.iter().all(|&s| (0.020..10.0).contains(&s)),
            "seconds: {got:?}"
        );
    }
}
