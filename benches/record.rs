//! The recording hot path, against baselines measured in the same run: a bare
//! `AtomicU64::fetch_add` (the physical floor of an update) and the `metrics` no-op recorder
//! (the cost of the facade alone). Report ratios, not absolute times: the machine is noisy.
#![allow(missing_docs, reason = "criterion generates the entry point")]
#![allow(
    clippy::expect_used,
    reason = "a bench that cannot set up must stop loudly"
)]
#![allow(
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "benches report ratios on stderr"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics::{NoopRecorder, counter, gauge, histogram, with_local_recorder};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterRecorder};

fn recorder() -> ExporterRecorder {
    // Built but never started: nothing drains the cells, which is fine for a hot-path bench
    // (histogram reservoirs fill to their cap and then keep sampling, as under real load).
    let (recorder, _exporter) = ExporterBuilder::statsd("127.0.0.1:8125")
        .build()
        .expect("builds");
    recorder
}

fn baselines(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1));
    let atomic = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::Relaxed));
    });
    with_local_recorder(&NoopRecorder, || {
        g.bench_function("noop_counter_macro_2_labels", |b| {
            b.iter(|| counter!("requests", "route" => "/a", "status" => "200").increment(1));
        });
    });
    g.finish();
}

fn cached(c: &mut Criterion) {
    let r = recorder();
    let mut g = c.benchmark_group("cached");
    g.throughput(Throughput::Elements(1));
    with_local_recorder(&r, || {
        let counter = counter!("requests");
        let gauge = gauge!("in_flight");
        let histogram = histogram!("latency");
        g.bench_function("counter_increment", |b| {
            b.iter(|| counter.increment(black_box(1)));
        });
        g.bench_function("gauge_set", |b| b.iter(|| gauge.set(black_box(2.0))));
        g.bench_function("gauge_increment", |b| {
            b.iter(|| gauge.increment(black_box(1.0)));
        });
        g.bench_function("histogram_record", |b| {
            b.iter(|| histogram.record(black_box(0.012)));
        });
    });
    g.finish();
}

fn macros(c: &mut Criterion) {
    let r = recorder();
    let mut g = c.benchmark_group("macro");
    g.throughput(Throughput::Elements(1));
    with_local_recorder(&r, || {
        g.bench_function("counter_no_labels", |b| {
            b.iter(|| counter!("requests").increment(1));
        });
        g.bench_function("counter_2_static_labels", |b| {
            b.iter(|| counter!("requests", "route" => "/a", "status" => "200").increment(1));
        });
        g.bench_function("histogram_2_static_labels", |b| {
            b.iter(|| histogram!("latency", "route" => "/a", "status" => "200").record(0.012));
        });
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let r = recorder();
    let mut g = c.benchmark_group("two_threads");
    g.throughput(Throughput::Elements(2));
    let counter = with_local_recorder(&r, || counter!("shared"));
    let other = with_local_recorder(&r, || counter!("other"));
    let atomic = Arc::new(AtomicU64::new(0));
    // Each iteration: this thread and a helper thread each do `n` updates concurrently.
    let mut pair =
        |name: &str, mine: Arc<dyn Fn() + Send + Sync>, theirs: Arc<dyn Fn() + Send + Sync>| {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let t = Arc::clone(&theirs);
                    let helper = std::thread::spawn(move || (0..iters).for_each(|_| t()));
                    let start = std::time::Instant::now();
                    (0..iters).for_each(|_| mine());
                    helper.join().expect("helper");
                    start.elapsed()
                });
            });
        };
    let (a1, a2) = (Arc::clone(&atomic), Arc::clone(&atomic));
    pair(
        "atomic_same",
        Arc::new(move || {
            a1.fetch_add(1, Ordering::Relaxed);
        }),
        Arc::new(move || {
            a2.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let (c1, c2) = (counter.clone(), counter.clone());
    pair(
        "counter_same_series",
        Arc::new(move || c1.increment(1)),
        Arc::new(move || c2.increment(1)),
    );
    let (c1, o1) = (counter.clone(), other.clone());
    pair(
        "counter_distinct_series",
        Arc::new(move || c1.increment(1)),
        Arc::new(move || o1.increment(1)),
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = baselines, cached, macros, contended
}
criterion_main!(benches);
