//! The ratio tables printed at the end of a run.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::hot::Rounds;
use crate::stats::median;

/// Where criterion writes its reports, found as criterion finds it, short of running
/// `cargo metadata` (the bench binary is `<target>/<profile>/deps/compare-<hash>`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time per iteration (ns) of `group/bench`, if criterion wrote it in this run.
fn criterion_median(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None; // left over from an earlier run (filtered out of this one)
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// A workload's row: its title and the targets for ours/dsd and ours/atomic.
struct Row {
    group: &'static str,
    title: &'static str,
    max_vs_dsd: Option<f64>,
    max_vs_atomic: Option<f64>,
}

const fn row(
    group: &'static str,
    title: &'static str,
    max_vs_dsd: Option<f64>,
    max_vs_atomic: Option<f64>,
) -> Row {
    Row {
        group,
        title,
        max_vs_dsd,
        max_vs_atomic,
    }
}

const ROWS: [Row; 9] = [
    row(
        "cmp_counter_increment",
        "cached Counter::increment",
        Some(0.5),
        Some(2.0),
    ),
    row("cmp_gauge_set", "cached Gauge::set", Some(1.0), None),
    row("cmp_gauge_increment", "cached Gauge::increment", None, None),
    row(
        "cmp_histogram_record",
        "cached Histogram::record",
        Some(0.5),
        None,
    ),
    row(
        "cmp_counter_macro_static_labels",
        "counter!(k=>v).increment",
        Some(0.5),
        None,
    ),
    row(
        "cmp_counter_macro_dynamic_label",
        "counter!(k=>String).increment",
        Some(0.45),
        None,
    ),
    row(
        "cmp_histogram_macro_static_labels",
        "histogram!(k=>v).record",
        None,
        None,
    ),
    row(
        "cmp_two_threads_same_counter",
        "2 threads, same counter",
        Some(1.0),
        None,
    ),
    row(
        "cmp_two_threads_distinct_counters",
        "2 threads, distinct counters",
        None,
        None,
    ),
];

/// Every update at least 50x cheaper than metrics-exporter-statsd.
const MAX_VS_MES: f64 = 0.02;

fn verdict(ratio: Option<f64>, max: Option<f64>) -> String {
    match (ratio, max) {
        (Some(r), Some(m)) if r <= m => format!("{r:.3} met"),
        (Some(r), Some(_)) => format!("{r:.3} NOT met"),
        (Some(r), None) => format!("{r:.3}"),
        (None, _) => "-".into(),
    }
}

fn ns(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// mes's `Gauge::increment` does nothing at all, so no ratio against it means anything.
fn mes_target(group: &str) -> Option<f64> {
    (group != "cmp_gauge_increment").then_some(MAX_VS_MES)
}

/// Criterion's medians: each contender measured in its own stretch of time.
pub(crate) fn criterion_table(since: SystemTime) {
    eprintln!("\nCriterion medians, ns per iteration (two-thread rows: one op on each thread)");
    eprintln!(
        "{:<30} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "workload",
        "atomic",
        "noop",
        "least",
        "fenced",
        "ours",
        "dsd",
        "mes",
        "cadence",
        "client",
        "ours/dsd",
        "ours/atm",
        "ours/mes",
        "ours/cad",
        "lst/dsd",
        "fnc/dsd"
    );
    for r in ROWS {
        let [atomic, noop, least, fenced, ours, dsd, mes, cadence, client] = [
            "atomic", "noop", "least", "fenced", "ours", "dsd", "mes", "cadence", "client",
        ]
        .map(|bench| criterion_median(r.group, bench, since));
        let ratio = |other: Option<f64>| ns(ours.zip(other).map(|(o, x)| o / x));
        eprintln!(
            "{:<30} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.title,
            ns(atomic),
            ns(noop),
            ns(least),
            ns(fenced),
            ns(ours),
            ns(dsd),
            ns(mes),
            ns(cadence),
            ns(client),
            ratio(dsd),
            ratio(atomic),
            ratio(mes),
            ratio(cadence),
            ns(least.zip(dsd).map(|(l, d)| l / d)),
            ns(fenced.zip(dsd).map(|(l, d)| l / d)),
        );
    }
}

/// The interleaved runner's results: medians per contender, and the median over rounds of
/// each round's ratio (paired, so load that varies between rounds cancels out).
pub(crate) fn interleaved_table(rounds: &[Rounds]) {
    if rounds.is_empty() {
        return;
    }
    eprintln!(
        "\nInterleaved, {} rounds: median ns per iteration, and the median of per-round ratios \
         with the issue's targets",
        rounds[0].contenders.first().map_or(0, |c| c.1.len())
    );
    eprintln!(
        "{:<30} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} | {:<14} {:<14} {:<14} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "workload",
        "atomic",
        "least",
        "fenced",
        "ours",
        "dsd",
        "mes",
        "cadence",
        "client",
        "ours/dsd",
        "ours/atomic",
        "ours/mes",
        "atm/dsd",
        "ours/cad",
        "cli/cad",
        "lst/dsd",
        "fnc/dsd"
    );
    for r in ROWS {
        let Some(w) = rounds.iter().find(|w| w.group == r.group) else {
            continue;
        };
        let times = |name: &str| w.contenders.iter().find(|c| c.0 == name).map(|c| &c.1);
        let paired = |a: &str, b: &str| {
            let (a, b) = (times(a)?, times(b)?);
            median(a.iter().zip(b).map(|(x, y)| x / y).collect())
        };
        let med = |name: &str| median(times(name)?.clone());
        eprintln!(
            "{:<30} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} | {:<14} {:<14} {:<14} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.title,
            ns(med("atomic")),
            ns(med("least")),
            ns(med("fenced")),
            ns(med("ours")),
            ns(med("dsd")),
            ns(med("mes")),
            ns(med("cadence")),
            ns(med("client")),
            verdict(paired("ours", "dsd"), r.max_vs_dsd),
            verdict(paired("ours", "atomic"), r.max_vs_atomic),
            verdict(paired("ours", "mes"), mes_target(r.group)),
            ns(paired("atomic", "dsd")),
            ns(paired("ours", "cadence")),
            ns(paired("client", "cadence")),
            ns(paired("least", "dsd")),
            ns(paired("fenced", "dsd")),
        );
    }
    eprintln!(
        "(atm/dsd: the hand-written floor against dsd, the best ours/dsd any design can reach; \
         cadence: its calling thread only, its worker sends; client: our direct StatsdClient, \
         sending included; least, macro rows only: the least any recorder can do, an Arc clone, \
         the update and the Arc drop, and lst/dsd the best ours/dsd any lookup can reach; fenced: the \
         same with one SeqCst fence, an estimate of the least a lookup without a lock costs)"
    );
}
