//! Admission: per-metric limits, overflow series, their bound, retirement and races.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, Label};
use proptest::prelude::*;

use super::super::{
    Aggregate, ByKind, CounterCell, GaugeCell, HistogramCell, NewSeries, cell_address,
};
use super::*;
use crate::encode::SampleUnit;
use crate::stats::StatsCells;

fn aggregate(
    max_series: usize,
    per_metric: usize,
    max_overflow: usize,
) -> (Aggregate, Arc<StatsCells>) {
    let stats = Arc::new(StatsCells::default());
    let limits = Limits {
        max_series,
        per_metric,
        max_overflow,
    };
    let a = Aggregate::new(SampleUnit::Seconds, 16, limits, Arc::clone(&stats));
    (a, stats)
}

fn key(name: &'static str, id: usize) -> Key {
    Key::from_parts(name, vec![Label::new("id", id.to_string())])
}

fn counter(a: &Aggregate, name: &'static str, id: usize) -> Option<Arc<CounterCell>> {
    a.admit::<CounterCell>(&key(name, id))
}

/// The flusher's view: every series created since the last call, as (key, counter cell).
fn new_counters(a: &Aggregate) -> Vec<(Key, Arc<CounterCell>)> {
    std::iter::from_fn(|| a.storage().pop_new())
        .map(|n| match n {
            NewSeries::Counter(k, c) => (k, c),
            other => panic!("not a counter: {other:?}"),
        })
        .collect()
}

/// Retires every series in `tracked` that can go (as the flusher's expiry would) and drops
/// them from `tracked`.
fn retire_all(a: &Aggregate, tracked: &mut Vec<(Key, Arc<CounterCell>)>) {
    let mut candidates = ByKind {
        counters: tracked.iter().map(|t| cell_address(&t.1)).collect(),
        ..ByKind::default()
    };
    candidates.counters.sort_unstable();
    let mut removed = ByKind::default();
    a.retire(&candidates, &mut removed);
    removed.counters.sort_unstable();
    tracked.retain(|t| removed.counters.binary_search(&cell_address(&t.1)).is_err());
}

fn census_of(a: &Aggregate, name: &str) -> usize {
    a.storage().census().of(Kind::Counter, name)
}

#[test]
fn a_metric_past_its_limit_records_into_one_overflow_series_whose_sum_is_exact() {
    let (a, stats) = aggregate(100, 3, 2);
    let mut overflow: Option<Arc<CounterCell>> = None;
    for id in 0..10 {
        let c = counter(&a, "a", id).unwrap();
        c.increment(id as u64 + 1);
        if id >= 3 {
            let o = overflow.get_or_insert_with(|| Arc::clone(&c));
            assert!(Arc::ptr_eq(o, &c), "one overflow series per metric");
        }
    }
    assert_eq!(overflow.unwrap().peek(), (4..=10).sum::<u64>());
    let s = stats.snapshot();
    assert_eq!((s.series_overflowed, s.series_dropped), (7, 0));
    let created = new_counters(&a);
    assert_eq!(
        created.len(),
        4,
        "three series of its own and the overflow one"
    );
    let o = created.iter().find(|(k, _)| is_overflow(k)).unwrap();
    assert_eq!(o.0, Key::from_parts("a", vec![OVERFLOW_LABEL]));
    let total: u64 = created.iter().map(|(_, c)| c.peek()).sum();
    assert_eq!(total, (1..=10).sum::<u64>());
    assert_eq!(census_of(&a, "a"), 3);
    assert_eq!(a.storage().census().totals(), (3, 1));
}

#[test]
fn an_existing_series_is_found_again_whatever_the_limits() {
    let (a, stats) = aggregate(2, 1, 1);
    let first = counter(&a, "a", 0).unwrap();
    let redirected = counter(&a, "a", 1).unwrap();
    for _ in 0..3 {
        assert!(Arc::ptr_eq(&first, &counter(&a, "a", 0).unwrap()));
    }
    assert!(Arc::ptr_eq(&redirected, &counter(&a, "a", 1).unwrap()));
    assert_eq!(
        stats.snapshot().series_overflowed,
        2,
        "each redirect counts"
    );
}

#[test]
fn a_storm_larger_than_the_total_never_refuses_a_new_series_of_another_metric() {
    let (a, stats) = aggregate(1_000, 50, 10);
    for id in 0..20_000 {
        counter(&a, "storm", id).unwrap().increment(1);
        // Steady metrics keep arriving during the storm: 10 names, 45 series each.
        if id % 40 == 0 && id / 40 < 450 {
            let n = id / 40;
            let name = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"][n % 10];
            let c = counter(&a, name, n).unwrap();
            c.increment(1);
        }
    }
    let created = new_counters(&a);
    let steady: Vec<_> = created
        .iter()
        .filter(|(k, _)| k.name() != "storm")
        .collect();
    assert_eq!(steady.len(), 450);
    assert!(steady.iter().all(|(k, c)| !is_overflow(k) && c.peek() == 1));
    assert_eq!(census_of(&a, "storm"), 50);
    let storm: u64 = created
        .iter()
        .filter(|(k, _)| k.name() == "storm")
        .map(|(_, c)| c.peek())
        .sum();
    assert_eq!(
        storm, 20_000,
        "the storm's own series and its overflow sum exactly"
    );
    let s = stats.snapshot();
    assert_eq!((s.series_overflowed, s.series_dropped), (20_000 - 50, 0));
}

#[test]
fn retiring_a_metrics_series_gives_it_its_room_back() {
    let (a, _) = aggregate(100, 2, 1);
    drop(counter(&a, "a", 0));
    drop(counter(&a, "a", 1));
    let held = counter(&a, "a", 2).unwrap();
    let mut tracked = new_counters(&a);
    assert!(is_overflow(&tracked[2].0));
    // The flusher finds all three idle; a handle still holds the overflow series.
    retire_all(&a, &mut tracked);
    assert_eq!(tracked.len(), 1, "only the held overflow series stays");
    assert_eq!(census_of(&a, "a"), 0);
    assert_eq!(a.storage().census().totals(), (0, 1));
    let fresh = counter(&a, "a", 3).unwrap();
    assert!(
        !Arc::ptr_eq(&fresh, &held),
        "room again for a series of its own"
    );
    tracked.extend(new_counters(&a));
    drop((held, fresh));
    retire_all(&a, &mut tracked);
    assert!(tracked.is_empty());
    assert_eq!(
        a.storage().census().totals(),
        (0, 0),
        "the overflow series went too"
    );
    assert!(
        a.storage().census().map(Kind::Counter).is_empty(),
        "no entry left behind"
    );
}

#[test]
fn overflow_series_are_bounded_and_past_the_bound_a_new_series_is_dropped() {
    let (a, stats) = aggregate(2, 1, 2);
    let a0 = counter(&a, "a", 0).unwrap();
    let a1 = counter(&a, "a", 1).unwrap(); // a's overflow
    let b0 = counter(&a, "b", 0).unwrap(); // the total is full now
    let b1 = counter(&a, "b", 1).unwrap(); // b's overflow: the bound is reached
    assert!(
        counter(&a, "c", 0).is_none(),
        "no room for c's overflow series"
    );
    assert!(
        Arc::ptr_eq(&a1, &counter(&a, "a", 7).unwrap()),
        "a's overflow still takes more"
    );
    let s = stats.snapshot();
    assert_eq!((s.series_overflowed, s.series_dropped), (3, 1));
    assert_eq!(a.storage().census().totals(), (2, 2));
    drop((a0, b0, b1));
}

#[test]
fn the_total_cap_sends_a_metric_under_its_own_limit_to_its_overflow_series() {
    let (a, _) = aggregate(3, 3, 5);
    let _own: Vec<_> = (0..3).map(|i| counter(&a, "x", i)).collect();
    let _y = counter(&a, "y", 0).unwrap();
    let created = new_counters(&a);
    let last = &created.last().unwrap().0;
    assert_eq!(last, &Key::from_parts("y", vec![OVERFLOW_LABEL]));
}

#[test]
fn gauges_and_histograms_overflow_by_kind_last_write_winning_for_a_gauge() {
    let (a, _) = aggregate(100, 1, 5);
    let g = |id| a.admit::<GaugeCell>(&key("m", id)).unwrap();
    let h = |id| a.admit::<HistogramCell>(&key("m", id)).unwrap();
    // A counter named `m` does not take the gauge's or the histogram's room.
    let c = counter(&a, "m", 0).unwrap();
    let (own, first, second) = (g(0), g(1), g(2));
    assert!(Arc::ptr_eq(&first, &second));
    own.set(1.0);
    first.set(5.0);
    second.set(7.0);
    second.increment(1.0);
    assert_eq!(first.take(), Some(8.0));
    let own_h = h(0);
    for id in 1..5 {
        h(id).record(0.5);
    }
    own_h.record(1.0);
    assert_eq!(h(9).peek_recorded(), 4);
    let census = a.storage().census();
    assert_eq!(
        [Kind::Counter, Kind::Gauge, Kind::Histogram].map(|k| census.of(k, "m")),
        [1, 1, 1]
    );
    assert_eq!(census.totals(), (3, 2));
    drop(c);
}

#[test]
fn a_key_that_is_the_overflow_key_itself_shares_the_overflow_series() {
    let (a, _) = aggregate(100, 1, 5);
    let direct = a
        .admit::<CounterCell>(&Key::from_parts("a", vec![OVERFLOW_LABEL]))
        .unwrap();
    let _ = counter(&a, "a", 0).unwrap();
    let redirected = counter(&a, "a", 1).unwrap();
    assert!(Arc::ptr_eq(&direct, &redirected));
    assert_eq!(a.storage().census().totals(), (1, 1));
    let more = Key::from_parts("a", vec![OVERFLOW_LABEL, Label::new("x", "y")]);
    assert!(
        !is_overflow(&more),
        "only the overflow label alone marks the overflow series"
    );
}

#[test]
fn threads_registering_the_same_new_keys_pass_the_limit_by_at_most_their_number() {
    // Each thread registers the same 2 000 keys, in its own order, and adds 1 through each
    // handle: whatever the interleaving, a metric gets at most `limit + threads` series of its
    // own, and every increment lands in exactly one cell.
    const THREADS: usize = 8;
    const KEYS: usize = 2_000;
    const LIMIT: usize = 100;
    for _ in 0..20 {
        let (a, stats) = aggregate(10_000, LIMIT, 10);
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (a, barrier) = (&a, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..KEYS {
                        counter(a, "m", (i * 7 + t * 251) % KEYS)
                            .unwrap()
                            .increment(1);
                    }
                });
            }
        });
        let created = new_counters(&a);
        let own = census_of(&a, "m");
        assert!(
            (LIMIT..=LIMIT + THREADS).contains(&own),
            "{own} series of its own"
        );
        assert_eq!(created.len(), own + 1, "plus one overflow series");
        let total: u64 = created.iter().map(|(_, c)| c.peek()).sum();
        assert_eq!(total, (THREADS * KEYS) as u64);
        let s = stats.snapshot();
        assert_eq!(s.series_dropped, 0);
        assert!(
            s.series_overflowed >= ((KEYS - own - THREADS) * THREADS) as u64,
            "{s:?}"
        );
    }
}

/// One step of the model: register `(name, id)` and add `amount`, or run an expiry pass over
/// everything idle (each cell's sum taken first, as a flush does).
#[derive(Debug, Clone)]
enum Step {
    Record { name: usize, id: usize, amount: u64 },
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..4usize, 0..12usize, 1..5u64)
            .prop_map(|(name, id, amount)| Step::Record { name, id, amount }),
        1 => Just(Step::Flush),
    ]
}

/// The model's state: the flusher's list of series and the tallies to check them against.
struct Model {
    a: Aggregate,
    stats: Arc<StatsCells>,
    limits: Limits,
    tracked: Vec<(Key, Arc<CounterCell>)>,
    recorded: u64,
    flushed: u64,
    redirected: u64,
    refused: u64,
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

impl Model {
    fn new(limits: Limits) -> Self {
        let (a, stats) = aggregate(limits.max_series, limits.per_metric, limits.max_overflow);
        Self {
            a,
            stats,
            limits,
            tracked: Vec::new(),
            recorded: 0,
            flushed: 0,
            redirected: 0,
            refused: 0,
        }
    }

    fn overflow_of(&self, name: &str) -> Option<&Arc<CounterCell>> {
        self.tracked
            .iter()
            .find(|(k, _)| k.name() == name && is_overflow(k))
            .map(|(_, c)| c)
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::Record { name, id, amount } => {
                let name = NAMES[name];
                let (ordinary, overflow) = self.a.storage().census().totals();
                let own = self.a.storage().census().of(Kind::Counter, name);
                let had_overflow = self.overflow_of(name).is_some();
                let known = self.tracked.iter().any(|(k, _)| *k == key(name, id));
                let got = counter(&self.a, name, id);
                self.tracked.extend(new_counters(&self.a));
                if let Some(c) = got {
                    c.increment(amount);
                    self.recorded += amount;
                    if self.overflow_of(name).is_some_and(|o| Arc::ptr_eq(o, &c)) {
                        self.redirected += 1;
                        // Redirected only when a limit was reached.
                        prop_assert!(!known);
                        prop_assert!(
                            ordinary == self.limits.max_series || own == self.limits.per_metric
                        );
                    }
                } else {
                    self.refused += 1;
                    // Refused only when nothing could take it.
                    prop_assert!(!known && !had_overflow);
                    prop_assert_eq!(overflow, self.limits.max_overflow);
                }
            }
            Step::Flush => {
                let overflows = AtomicU64::new(0);
                self.flushed += self
                    .tracked
                    .iter()
                    .map(|(_, c)| c.take(&overflows))
                    .sum::<u64>();
                retire_all(&self.a, &mut self.tracked);
            }
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let pending: u64 = self.tracked.iter().map(|(_, c)| c.peek()).sum();
        prop_assert_eq!(self.flushed + pending, self.recorded);
        let census = self.a.storage().census();
        let (ordinary, overflow) = census.totals();
        prop_assert!(ordinary <= self.limits.max_series);
        prop_assert!(overflow <= self.limits.max_overflow);
        prop_assert_eq!(ordinary + overflow, self.tracked.len());
        for name in NAMES {
            let of = |spill: bool| {
                self.tracked
                    .iter()
                    .filter(|(k, _)| k.name() == name && is_overflow(k) == spill)
                    .count()
            };
            prop_assert!(of(false) <= self.limits.per_metric && of(true) <= 1);
            prop_assert_eq!(census.of(Kind::Counter, name), of(false));
        }
        let s = self.stats.snapshot();
        prop_assert_eq!(s.series_dropped, self.refused);
        prop_assert_eq!(s.series_overflowed, self.redirected);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_recorded_amount_is_in_exactly_one_series_and_the_live_series_stay_bounded(
        max_series in 1..12usize,
        per_metric in 1..12usize,
        max_overflow in 1..4usize,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut model = Model::new(Limits {
            max_series,
            per_metric: per_metric.min(max_series),
            max_overflow,
        });
        for step in &steps {
            model.run(step)?;
        }
    }
}

#[test]
fn a_storm_of_distinct_names_fills_the_total_then_the_overflow_room_then_is_dropped() {
    // Every name under its own limit: the total cap is what applies.
    let (a, stats) = aggregate(100, 10, 3);
    let names: Vec<&'static str> = (0..200)
        .map(|i| &*Box::leak(format!("n{i}").into_boxed_str()))
        .collect();
    let got: Vec<_> = names.iter().map(|n| counter(&a, n, 0)).collect();
    assert!(
        got[..100].iter().all(Option::is_some),
        "the first 100 get their own"
    );
    assert!(
        got[100..103].iter().all(Option::is_some),
        "three get an overflow series"
    );
    assert!(
        got[103..].iter().all(Option::is_none),
        "the rest are dropped"
    );
    let s = stats.snapshot();
    assert_eq!((s.series_overflowed, s.series_dropped), (3, 97));
    assert_eq!(a.storage().census().totals(), (100, 3));
}

#[test]
fn sets_count_against_the_limits_overflow_like_other_series_and_retire_when_unheld() {
    let (a, stats) = aggregate(2, 1, 1);
    let set = |id| a.admit_set(&key("users", id));
    let first = set(0).unwrap();
    assert!(Arc::ptr_eq(&first, &set(0).unwrap()), "one key, one set");
    let overflow = set(1).expect("past the per-metric limit: the overflow set");
    assert!(Arc::ptr_eq(&overflow, &set(2).unwrap()));
    assert!(a.admit_set(&key("other", 0)).is_some());
    assert!(a.admit_set(&key("third", 0)).is_none(), "no room left");
    let s = stats.snapshot();
    assert_eq!((s.series_overflowed, s.series_dropped), (2, 1));
    let created: Vec<NewSeries> = std::iter::from_fn(|| a.storage().pop_new()).collect();
    assert_eq!(created.len(), 3);
    // Retiring (the flusher holds `created`): unheld idle sets go, a held one stays.
    drop(overflow);
    first.insert("x");
    let address = |n: &NewSeries| match n {
        NewSeries::Set(_, c) => cell_address(c),
        _ => unreachable!(),
    };
    let mut candidates = ByKind {
        sets: created.iter().map(address).collect(),
        ..ByKind::default()
    };
    candidates.sets.sort_unstable();
    let mut removed = ByKind::default();
    a.retire(&candidates, &mut removed);
    let mut want = vec![address(&created[1]), address(&created[2])];
    want.sort_unstable();
    removed.sets.sort_unstable();
    assert_eq!(removed.sets, want);
    assert!(Arc::ptr_eq(&first, &set(0).unwrap()), "the held set stays");
    assert!(
        a.admit_set(&key("third", 0)).is_some(),
        "its room is reused"
    );
}

#[test]
fn a_stored_key_is_an_overflow_key_exactly_when_the_key_it_was_made_from_is() {
    let overflow = Label::new("cardinality", "overflow");
    let other = Label::new("route", String::from("/a"));
    for key in [
        overflow_key(&Key::from_name("requests")),
        Key::from_parts(String::from("requests"), vec![overflow.clone()]),
        Key::from_parts("requests", vec![overflow.clone(), other.clone()]),
        Key::from_parts("requests", vec![other.clone(), overflow.clone()]),
        Key::from_parts("requests", vec![Label::new("cardinality", "other")]),
        Key::from_parts("requests", vec![other]),
        Key::from_name("requests"),
    ] {
        let stored = StoredKey::new(&key);
        assert_eq!(is_overflow_stored(&stored), is_overflow(&key), "{key:?}");
    }
}
