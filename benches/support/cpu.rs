//! CPU time of this process's threads, from procfs schedstat (nanoseconds on a CPU, user and
//! system, so a thread's kernel work is in), for `benches/compare` and `benches/pickle`.

use std::time::Duration;

/// Nanoseconds thread `tid` of this process has run, if readable.
pub(crate) fn thread_cpu_ns(tid: u32) -> Option<u64> {
    schedstat_ns(&format!("/proc/self/task/{tid}/schedstat"))
}

/// CPU nanoseconds this thread has run (0 if unreadable). A short sleep first: the scheduler
/// brings the thread's runtime up to date when it deschedules it, whereas schedstat read
/// while running lags by up to a scheduler tick.
pub(crate) fn own_cpu_ns() -> u64 {
    std::thread::sleep(Duration::from_micros(1));
    schedstat_ns("/proc/thread-self/schedstat").unwrap_or(0)
}

fn schedstat_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
