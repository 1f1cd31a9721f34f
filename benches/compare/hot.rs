//! The hot-path workloads. Each is one operation run by every contender; a contender is a
//! [`Batch`]: "run the operation `n` times and say how long it took", with a monomorphised
//! inner loop, so neither criterion nor the interleaved runner adds a dynamic call per
//! operation.
//!
//! Every batch runs twice over: under criterion (one group per workload, contenders one after
//! the other), and in [`interleave`], which times short batches of all contenders in rotation,
//! many rounds, so that load from other processes (this machine is shared) hits all of them
//! alike. Its per-round ratios are what the verdicts use.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use metrics::{Recorder, counter, gauge, histogram, with_local_recorder};

use crate::contenders::Contenders;
use crate::direct::{Direct, Op};

/// Runs `n` operations, returns the time they took.
pub(crate) type Batch<'a> = Box<dyn Fn(u64) -> Duration + 'a>;

/// One operation, each contender's way.
pub(crate) struct Workload<'a> {
    pub(crate) group: &'static str,
    /// Operations per iteration (2 for the two-thread rows: one on each thread).
    elements: u64,
    pub(crate) contenders: Vec<(&'static str, Batch<'a>)>,
}

/// An atomic alone on its cache line (and the adjacent one, which the prefetcher pairs), so
/// two of them never share one.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded(AtomicU64);

/// The atomics the hand-written baselines update.
#[derive(Default)]
pub(crate) struct Floor {
    a: Padded,
    b: Padded,
}

fn batch<'a>(op: impl Fn() + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            op();
        }
        start.elapsed()
    })
}

/// A batch run with `recorder` as the thread's local recorder, set once per batch.
fn in_recorder<'a>(recorder: &'a dyn Recorder, op: impl Fn() + 'a) -> Batch<'a> {
    Box::new(move |n| {
        with_local_recorder(recorder, || {
            let start = Instant::now();
            for _ in 0..n {
                op();
            }
            start.elapsed()
        })
    })
}

/// `n` calls of `mine` on this thread and `n` of `theirs` on a helper thread, released
/// together by a barrier; the time is until both are done.
fn two_threads<'a>(mine: impl Fn() + Sync + 'a, theirs: impl Fn() + Sync + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let start_line = Barrier::new(2);
        std::thread::scope(|s| {
            let helper = s.spawn(|| {
                start_line.wait();
                for _ in 0..n {
                    theirs();
                }
            });
            start_line.wait();
            let start = Instant::now();
            for _ in 0..n {
                mine();
            }
            helper.join().expect("helper");
            start.elapsed()
        })
    })
}

fn fetch_add(a: &Padded) {
    black_box(a).0.fetch_add(black_box(1), Ordering::Relaxed);
}

fn workload<'a>(
    group: &'static str,
    atomic: Batch<'a>,
    rest: impl IntoIterator<Item = (&'static str, Batch<'a>)>,
) -> Workload<'a> {
    let mut contenders = vec![("atomic", atomic)];
    contenders.extend(rest);
    let elements = if group.starts_with("cmp_two_threads") {
        2
    } else {
        1
    };
    Workload {
        group,
        elements,
        contenders,
    }
}

/// Every workload, in table order.
pub(crate) fn workloads<'a>(
    who: &'a Contenders,
    direct: &'a Direct,
    floor: &'a Floor,
    floors: [(&'static str, &'a dyn Recorder); 3],
) -> Vec<Workload<'a>> {
    let mut all = cached(who, direct, &floor.a);
    all.extend(macros(who, &floor.a, floors));
    all.extend(contended(who, floor));
    all
}

fn cached<'a>(who: &'a Contenders, direct: &'a Direct, a: &'a Padded) -> Vec<Workload<'a>> {
    let each = who.each();
    vec![
        workload(
            "cmp_counter_increment",
            batch(move || fetch_add(a)),
            each.map(|(name, r)| {
                let h = with_local_recorder(r, || counter!("requests"));
                (name, batch(move || h.increment(black_box(1))))
            })
            .into_iter()
            .chain(direct.row(Op::Counter)),
        ),
        workload(
            "cmp_gauge_set",
            batch(move || {
                let bits = black_box(2.0f64).to_bits();
                black_box(a).0.store(bits, Ordering::Relaxed);
            }),
            each.map(|(name, r)| {
                let h = with_local_recorder(r, || gauge!("in_flight"));
                (name, batch(move || h.set(black_box(2.0))))
            })
            .into_iter()
            .chain(direct.row(Op::GaugeSet)),
        ),
        workload(
            "cmp_gauge_increment",
            batch(move || {
                let add = |v| Some((f64::from_bits(v) + black_box(1.0)).to_bits());
                let _ = black_box(a)
                    .0
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add);
            }),
            each.map(|(name, r)| {
                let h = with_local_recorder(r, || gauge!("queue_depth"));
                (name, batch(move || h.increment(black_box(1.0))))
            }),
        ),
        workload(
            "cmp_histogram_record",
            batch(move || fetch_add(a)),
            each.map(|(name, r)| {
                let h = with_local_recorder(r, || histogram!("latency"));
                (name, batch(move || h.record(black_box(0.012))))
            })
            .into_iter()
            .chain(direct.row(Op::Histogram)),
        ),
    ]
}

/// `floors`: the `NoopRecorder`, [`Least`](crate::least::Least) and its fenced variant, by
/// name.
fn macros<'a>(
    who: &'a Contenders,
    a: &'a Padded,
    floors: [(&'static str, &'a dyn Recorder); 3],
) -> Vec<Workload<'a>> {
    let mut each: Vec<(&'static str, &dyn Recorder)> = floors.to_vec();
    each.extend(who.each());
    vec![
        workload(
            "cmp_counter_macro_static_labels",
            batch(move || fetch_add(a)),
            each.iter().map(|&(name, r)| {
                let op = || counter!("requests", "route" => "/a", "status" => "200").increment(1);
                (name, in_recorder(r, op))
            }),
        ),
        // A label value only known at run time: an owned `String` per call, as
        // `counter!("requests", "route" => route.clone())` in a handler.
        workload(
            "cmp_counter_macro_dynamic_label",
            batch(move || fetch_add(a)),
            each.iter().map(|&(name, r)| {
                let route = String::from("/api/users");
                let op = move || counter!("requests", "route" => route.clone()).increment(1);
                (name, in_recorder(r, op))
            }),
        ),
        workload(
            "cmp_histogram_macro_static_labels",
            batch(move || fetch_add(a)),
            each.iter().map(|&(name, r)| {
                let op = || {
                    histogram!("latency", "route" => "/a", "status" => "200").record(0.012);
                };
                (name, in_recorder(r, op))
            }),
        ),
    ]
}

fn contended<'a>(who: &'a Contenders, floor: &'a Floor) -> Vec<Workload<'a>> {
    let (a, b) = (&floor.a, &floor.b);
    let each = who.each();
    vec![
        workload(
            "cmp_two_threads_same_counter",
            two_threads(move || fetch_add(a), move || fetch_add(a)),
            each.map(|(name, r)| {
                let h = with_local_recorder(r, || counter!("shared"));
                let inc = move || h.increment(1);
                (name, two_threads(inc.clone(), inc))
            }),
        ),
        workload(
            "cmp_two_threads_distinct_counters",
            two_threads(move || fetch_add(a), move || fetch_add(b)),
            each.map(|(name, r)| {
                // Registered one after the other, as a program's series usually are.
                let (h1, h2) = with_local_recorder(r, || (counter!("one"), counter!("two")));
                let run = two_threads(move || h1.increment(1), move || h2.increment(1));
                (name, run)
            }),
        ),
    ]
}

/// One criterion group per workload.
pub(crate) fn criterion(c: &mut Criterion, workloads: &[Workload<'_>]) {
    for w in workloads {
        let mut g = c.benchmark_group(w.group);
        g.throughput(Throughput::Elements(w.elements));
        for (name, run) in &w.contenders {
            g.bench_function(*name, |b| b.iter_custom(run));
        }
        g.finish();
    }
}

/// Rounds of the interleaved runner, and the length of each batch in it.
const ROUNDS: usize = 41;
const BATCH: Duration = Duration::from_millis(2);

/// Nanoseconds per iteration, one value per round, for each contender of a workload.
pub(crate) struct Rounds {
    pub(crate) group: &'static str,
    pub(crate) contenders: Vec<(&'static str, Vec<f64>)>,
}

/// Iterations that take about `BATCH`.
fn calibrate(run: &Batch<'_>) -> u64 {
    let mut n = 16;
    loop {
        let t = run(n);
        if t >= BATCH / 4 || n >= 1 << 30 {
            let per_iter = t.as_secs_f64() / n as f64;
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive count well below 2^53"
            )]
            return ((BATCH.as_secs_f64() / per_iter) as u64).max(1);
        }
        n *= 4;
    }
}

/// Runs every contender of every workload whose group contains `filter` in rotation, `ROUNDS`
/// times, each time in a different order.
pub(crate) fn interleave(workloads: &[Workload<'_>], filter: Option<&str>) -> Vec<Rounds> {
    let mut out = Vec::new();
    for w in workloads {
        if filter.is_some_and(|f| !w.group.contains(f)) {
            continue;
        }
        let sizes: Vec<u64> = w.contenders.iter().map(|(_, run)| calibrate(run)).collect();
        let mut times = vec![Vec::with_capacity(ROUNDS); w.contenders.len()];
        for round in 0..ROUNDS {
            for k in 0..w.contenders.len() {
                let i = (k + round) % w.contenders.len();
                let (name, run) = &w.contenders[i];
                let t = run(sizes[i]);
                times[i].push(t.as_nanos() as f64 / sizes[i] as f64);
                if *name == "mes" {
                    // Let its worker thread drain the queue before anyone else is timed.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        out.push(Rounds {
            group: w.group,
            contenders: w.contenders.iter().map(|(n, _)| *n).zip(times).collect(),
        });
    }
    out
}
