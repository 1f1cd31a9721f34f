//! What every recorded run carries at the top of its summary: the CPU model, the kernel, the
//! number of CPUs and the load, read from procfs.

/// `model name` of the first CPU in `/proc/cpuinfo`, or what it could not read.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no model name in /proc/cpuinfo)".into())
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("unknown (cannot read {path})"))
}

/// One line naming the machine and its state.
pub(crate) fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!(
        "CPU: {} ({cpus} CPUs) | kernel: {} | load average: {}",
        cpu_model(),
        first_line("/proc/sys/kernel/osrelease"),
        first_line("/proc/loadavg")
    )
}
