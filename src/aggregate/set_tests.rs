use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::thread;

use proptest::prelude::*;

use super::*;

/// One interval's members, deduped as the flusher does it.
fn drain(cell: &SetCell) -> (BTreeSet<String>, SetDrain) {
    let mut out = Vec::new();
    let drained = cell.drain_into(&mut out);
    (out.into_iter().collect(), drained)
}

#[test]
fn members_inserted_from_several_threads_come_out_once_each() {
    let cell = Arc::new(SetCell::new(1024));
    thread::scope(|s| {
        for t in 0..4 {
            let cell = &cell;
            // Overlapping ranges, each member inserted many times.
            s.spawn(move || {
                for round in 0..20 {
                    for m in (t * 100)..(t * 100 + 300) {
                        cell.insert(&format!("m{}", (m + round) % 600));
                    }
                }
            });
        }
    });
    let mut raw = Vec::new();
    let drained = cell.drain_into(&mut raw);
    assert_eq!(raw.len(), 600, "the filter queues each member once");
    let distinct: BTreeSet<String> = raw.into_iter().collect();
    let want: BTreeSet<String> = (0..600).map(|m| format!("m{m}")).collect();
    assert_eq!(distinct, want);
    assert_eq!((drained.refused, drained.empty), (0, 0));
    assert_eq!(drain(&cell).0.len(), 0, "the next interval starts empty");
}

#[test]
fn past_the_cap_new_members_are_refused_and_each_counted_once() {
    let cell = SetCell::new(4);
    for _ in 0..3 {
        for m in ["a", "b", "c", "d", "e", "f", "g"] {
            cell.insert(m);
        }
    }
    cell.insert("");
    let (got, drained) = drain(&cell);
    assert_eq!(got, ["a", "b", "c", "d"].map(String::from).into());
    assert_eq!((drained.refused, drained.empty), (3, 1));
    assert!(cell.is_idle());
    cell.insert("z");
    assert!(!cell.is_idle());
    let (got, drained) = drain(&cell);
    assert_eq!(
        got,
        ["z"].map(String::from).into(),
        "the cap is per interval"
    );
    assert_eq!(drained.refused, 0);
}

#[test]
fn a_storm_of_new_members_is_refused_exactly_and_never_scans_the_whole_filter() {
    // Cap 1024: a filter of 2048 slots. 100 000 distinct members each inserted once: the
    // first 1024 are kept, every other one is refused and counted, whether it still found
    // a free slot (counted once) or gave up after `MAX_PROBES`.
    let cell = SetCell::new(1024);
    for m in 0..100_000 {
        cell.insert(&format!("m{m}"));
    }
    let (got, drained) = drain(&cell);
    assert_eq!(got.len(), 1024);
    assert_eq!(drained.refused, 100_000 - 1024);
    // A member kept this interval is still found (it sits within its probe bound).
    for m in got.iter().take(100) {
        cell.insert(m);
    }
    assert_eq!(drain(&cell).0.len(), 100, "the next interval starts empty");
}

#[test]
fn a_member_longer_than_the_payload_limit_is_refused_before_it_is_stored() {
    let cell = SetCell::new(16).with_max_member_len(8);
    cell.insert("12345678");
    cell.insert("123456789");
    cell.insert(&"x".repeat(1 << 20));
    assert!(!cell.is_idle());
    let (got, drained) = drain(&cell);
    assert_eq!(got, ["12345678"].map(String::from).into());
    assert_eq!((drained.too_long, drained.refused), (2, 0));
    assert!(cell.is_idle());
}

#[test]
fn members_are_sanitised_once_and_those_that_become_equal_are_one_member() {
    let cell = SetCell::new(16);
    for m in ["a:b", "a|b", "a\nb", "a_b", "\u{e9}"] {
        cell.insert(m);
    }
    let (got, _) = drain(&cell);
    assert_eq!(got, ["a_b", "\u{e9}"].map(String::from).into());
}

#[test]
fn no_insert_is_lost_or_doubled_across_flushes_racing_it() {
    // Each insert notes how many drains had begun and ended around it; the member must come
    // out of a drain it could belong to, and every member a drain gives was inserted in it.
    let cell = SetCell::new(4096);
    let begun = AtomicUsize::new(0);
    let ended = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut outputs: Vec<BTreeSet<String>> = Vec::new();
    let logs: Vec<Vec<(String, usize, usize)>> = thread::scope(|s| {
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let (cell, begun, ended) = (&cell, &begun, &ended);
                s.spawn(move || {
                    let mut log = Vec::new();
                    // At least three drains race the inserts, however the threads are
                    // scheduled (on a loaded 2-core machine the flusher can start late).
                    let mut i = 0_u64;
                    while i < 20_000 || ended.load(Ordering::SeqCst) < 3 {
                        i += 1;
                        let member = format!("{t}-{}", crate::random::random_below(50 + i % 7));
                        let lo = ended.load(Ordering::SeqCst);
                        cell.insert(&member);
                        let hi = begun.load(Ordering::SeqCst);
                        log.push((member, lo, hi));
                    }
                    log
                })
            })
            .collect();
        let flusher = s.spawn(|| {
            let mut outs = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                begun.fetch_add(1, Ordering::SeqCst);
                outs.push(drain(&cell).0);
                ended.fetch_add(1, Ordering::SeqCst);
                thread::yield_now();
            }
            outs
        });
        let logs = writers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, Ordering::SeqCst);
        outputs = flusher.join().unwrap();
        logs
    });
    outputs.push(drain(&cell).0);
    // Drain `k` (0-based) closes interval `k`: an insert after `lo` drains ended and before
    // `hi` began lands in one of drains `lo..=hi`.
    let mut possible: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (member, lo, hi) in logs.iter().flatten() {
        let found = (*lo..=*hi).any(|k| outputs[k].contains(member));
        assert!(found, "{member} inserted in drains {lo}..={hi} was lost");
        possible.entry(member).or_default().push((*lo, *hi));
    }
    for (k, out) in outputs.iter().enumerate() {
        for member in out {
            let ranges = &possible[member.as_str()];
            assert!(
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&k)),
                "{member} came out of drain {k} without an insert there"
            );
        }
    }
    assert!(outputs.len() > 2, "the flusher raced the writers");
}

proptest! {
    /// One thread, random inserts and flushes: per interval, what is sent plus what the cap
    /// refused is exactly the distinct members recorded, and what is sent is the first ones
    /// (up to 16 distinct members: the smallest filter holds that many, see the module docs).
    #[test]
    fn per_interval_sent_and_refused_add_up_to_the_distinct_members_recorded(
        steps in proptest::collection::vec(prop_oneof![9 => (0..16_u8).prop_map(Some), 1 => Just(None)], 0..400),
        cap in 1..12_usize,
    ) {
        let cell = SetCell::new(cap);
        let mut order: Vec<String> = Vec::new();
        let check = |order: &mut Vec<String>| -> Result<(), TestCaseError> {
            let (got, drained) = drain(&cell);
            let kept: BTreeSet<String> = order.iter().take(cap).cloned().collect();
            prop_assert_eq!(got, kept);
            prop_assert_eq!(drained.refused, order.len().saturating_sub(cap) as u64);
            order.clear();
            Ok(())
        };
        for step in steps {
            match step {
                Some(m) => {
                    let m = format!("m{m}");
                    cell.insert(&m);
                    if !order.contains(&m) {
                        order.push(m);
                    }
                }
                None => check(&mut order)?,
            }
        }
        check(&mut order)?;
    }
}
