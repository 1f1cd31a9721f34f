//! [`Registry`]: the series of each kind, by key, in sharded hash tables.
//!
//! Why our own (issue 15): the `metrics-util` registry stores every key as a `metrics::Key`,
//! so a key built at run time was cloned with its label list and strings, and each table
//! slot held the whole 56-byte `Key`. Here a slot is a [`StoredKey`] (16 bytes, packed when
//! the key owns its text) and the cell's `Arc`.
//!
//! The locking is the same as before: a lookup takes its shard's read lock, probes, and
//! clones the cell's `Arc`; creating a series and removing series take the shard's write
//! lock. So while [`Table::retain`] runs, no lookup can hand the cell out (expiry relies on
//! it: see [`Aggregate::retire`](super::Aggregate::retire)). A shard is picked by bits of
//! the key's hash that the table itself does not use for the slot, and shards sit on cache
//! lines of their own, so threads recording into series of different shards share no
//! line.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;
use metrics::Key;

use super::stored::StoredKey;
use super::{CounterCell, GaugeCell, HistogramCell};

/// The counters, gauges and histograms (sets live apart: see the module docs of
/// [`aggregate`](super)).
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) counters: Table<CounterCell>,
    pub(crate) gauges: Table<GaugeCell>,
    pub(crate) histograms: Table<HistogramCell>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        // Four shards per CPU, as a power of two: threads on different CPUs recording into
        // series looked up by the macros rarely meet on one lock.
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let shards = cpus.saturating_mul(4).next_power_of_two();
        Self {
            counters: Table::new(shards),
            gauges: Table::new(shards),
            histograms: Table::new(shards),
        }
    }
}

/// One slot: the key and its series' cell.
#[derive(Debug)]
struct Entry<C> {
    key: StoredKey,
    cell: Arc<C>,
}

/// A shard on a cache line of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard<C>(RwLock<HashTable<Entry<C>>>);

/// The series of one kind. See the module docs.
#[derive(Debug)]
pub(crate) struct Table<C> {
    shards: Box<[Shard<C>]>,
    /// `shards.len() - 1`, a power of two less one.
    mask: usize,
}

impl<C> Table<C> {
    fn new(shards: usize) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Self {
            shards: (0..shards)
                .map(|_| Shard(RwLock::new(HashTable::new())))
                .collect(),
            mask: shards - 1,
        }
    }

    /// The shard of `hash`: its upper half, since the table takes the slot from the low bits
    /// and its tags from the top seven.
    fn shard(&self, hash: u64) -> &RwLock<HashTable<Entry<C>>> {
        // Lossless on 64-bit targets; elsewhere the low bits of the upper half.
        #[allow(clippy::cast_possible_truncation, reason = "a shard index, masked")]
        let at = (hash >> 32) as usize & self.mask;
        &self.shards[at].0
    }

    /// The cell of `key`'s series, if it exists: the shard's read lock and one probe.
    #[inline]
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<C>> {
        let hash = key.get_hash();
        let shard = read(self.shard(hash));
        shard
            .find(hash, |e| e.key.matches(key))
            .map(|e| Arc::clone(&e.cell))
    }

    /// The cell of `key`'s series, made by `create` (under the shard's write lock) if there
    /// is none yet; threads asking for the same new key at once get the same cell.
    pub(crate) fn get_or_create(&self, key: &Key, create: impl FnOnce(&Key) -> Arc<C>) -> Arc<C> {
        let hash = key.get_hash();
        let mut shard = write(self.shard(hash));
        if let Some(e) = shard.find(hash, |e| e.key.matches(key)) {
            return Arc::clone(&e.cell);
        }
        let cell = create(key);
        let entry = Entry {
            key: StoredKey::new(key),
            cell: Arc::clone(&cell),
        };
        shard.insert_unique(hash, entry, |e| e.key.hash());
        cell
    }

    /// Keeps the series for which `keep` holds, each shard under its write lock.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&StoredKey, &Arc<C>) -> bool) {
        for shard in &self.shards {
            write(&shard.0).retain(|e| keep(&e.key, &e.cell));
        }
    }

    /// Calls `f` with every series, each shard under its read lock.
    pub(crate) fn visit(&self, mut f: impl FnMut(&StoredKey, &Arc<C>)) {
        for shard in &self.shards {
            for e in read(&shard.0).iter() {
                f(&e.key, &e.cell);
            }
        }
    }

    /// Series in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(&s.0).len()).sum()
    }
}

/// A lock's guard, whether or not a thread panicked while holding it: the tables hold no
/// invariant a panic could break halfway (an insert or a removal is one table call).
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test")]

    use std::sync::Barrier;

    use metrics::Label;

    use super::*;

    fn key(i: usize) -> Key {
        Key::from_parts("x", vec![Label::new("i", (i % 500).to_string())])
    }

    #[test]
    fn threads_creating_the_same_keys_at_once_share_one_cell_per_key_across_every_shard() {
        let table = Table::<CounterCell>::new(8);
        let made = std::sync::atomic::AtomicUsize::new(0);
        let barrier = Barrier::new(4);
        let cells: Vec<Vec<usize>> = std::thread::scope(|s| {
            let run = || {
                barrier.wait();
                (0..2000)
                    .map(|i| {
                        let cell = table.get_or_create(&key(i), |_| {
                            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Arc::default()
                        });
                        Arc::as_ptr(&cell).addr()
                    })
                    .collect()
            };
            let threads: Vec<_> = (0..4).map(|_| s.spawn(run)).collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(table.len(), 500);
        assert_eq!(made.into_inner(), 500, "each key created once");
        for thread in &cells[1..] {
            assert_eq!(thread, &cells[0], "every thread got the same cells");
        }
        for (i, &cell) in cells[0].iter().enumerate().take(500) {
            let found = table.get(&key(i)).unwrap();
            assert_eq!(Arc::as_ptr(&found).addr(), cell);
        }
        assert!(table.get(&Key::from_name("y")).is_none());
        let used = table
            .shards
            .iter()
            .filter(|s| !read(&s.0).is_empty())
            .count();
        assert_eq!(used, 8, "the keys spread over every shard");
        // Retaining half leaves the other half findable.
        table.retain(|key, _| key.labels().any(|(_, v)| v.ends_with(b"0")));
        assert_eq!(table.len(), 50);
        assert!(table.get(&key(10)).is_some() && table.get(&key(11)).is_none());
    }
}
