//! Per-file results of unfiltered statistics and time series, kept in memory.
//!
//! Store files never change once written (compaction writes new ones and deletes the old),
//! so the statistic of a whole file is computed once and reused: a dashboard that refreshes
//! every few seconds only scans the files that arrived since, and the files its range cuts
//! through. Entries are bounded by the number of rows (keys) they hold, least recently used
//! first out, and dropped when their file leaves the store.

use crate::aggregate::{AggAcc, AggKey, AggOrder, rank};
use crate::engine::Counts;
use crate::stats::Sums;
use crate::stats::{StatAcc, StatKey};
use rustc_hash::{FxHashMap, FxHashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What is cached for one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    /// The statistic of `key` over every flow of the file.
    Stat(PathBuf, StatKey),
    /// Flows, packets, bytes per (bucket index, key value), buckets of the given width.
    Series(PathBuf, StatKey, u64),
    /// The first groups of an aggregation in one order.
    Agg(PathBuf, Vec<AggKey>, AggOrder),
    /// The earliest flow start times.
    Starts(PathBuf),
}

impl CacheKey {
    fn path(&self) -> &PathBuf {
        match self {
            CacheKey::Stat(p, _)
            | CacheKey::Series(p, _, _)
            | CacheKey::Agg(p, _, _)
            | CacheKey::Starts(p) => p,
        }
    }
}

/// A cached per-file result.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A statistic's accumulator.
    Stat(StatAcc),
    /// A series' counts.
    Series(FxHashMap<(u64, u128), Counts>),
    /// An aggregation's first groups.
    Agg(AggPrefix),
    /// A file's earliest [`STARTS_KEPT`] flow start times, ascending: where the flow
    /// explorer's pages end.
    Starts(Vec<u64>),
}

/// Start times kept per file.
pub(crate) const STARTS_KEPT: usize = 1024;

/// One file's aggregation (of keys packing into two words at most), cut to its first
/// groups in one additive order (flows, packets or bytes): enough to find the top N of a
/// range of files exactly without holding every group of every file (see
/// `Embedded::aggregate_cached`).
#[derive(Debug)]
pub(crate) struct AggPrefix {
    /// The first groups, by packed key.
    pub(crate) top: FxHashMap<[u128; 2], Sums>,
    /// `None` when `top` holds every group of the file; else the highest value of the order
    /// any group outside `top` has.
    pub(crate) rest: Option<u64>,
    /// The file's totals.
    pub(crate) totals: Sums,
}

impl AggPrefix {
    /// Groups kept per file.
    pub(crate) const GROUPS: usize = 4096;

    /// The prefix of a file's whole aggregation.
    pub(crate) fn of(acc: &AggAcc, order: AggOrder, totals: Sums) -> AggPrefix {
        let mut top = acc.top_packed(order, Self::GROUPS + 1);
        let rest = if top.len() > Self::GROUPS {
            let r = rank(order, &top[Self::GROUPS].1).0;
            top.truncate(Self::GROUPS);
            Some(r)
        } else {
            None
        };
        AggPrefix {
            top: top.into_iter().map(|(k, s)| ([k[0], k[1]], s)).collect(),
            rest,
            totals,
        }
    }
}

impl Entry {
    fn rows(&self) -> usize {
        match self {
            Entry::Stat(a) => a.len(),
            Entry::Series(m) => m.len(),
            Entry::Agg(p) => p.top.len(),
            Entry::Starts(v) => v.len(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: FxHashMap<CacheKey, (Arc<Entry>, u64)>,
    tick: u64,
    rows: usize,
}

/// Entries of at most this many values (the small panels: protocols, ASes, countries,
/// pair prefixes, start times) live in their own pool, so that a few large ones (addresses,
/// ports) cannot push them all out.
pub(crate) const SMALL_ENTRY: usize = 8192;

/// The cache: two LRU pools (small and large entries), each holding at most `max_rows`
/// values over its entries (64 bytes each in the hash tables, up to twice that with their
/// spare capacity).
#[derive(Debug)]
pub(crate) struct FileCache {
    pools: [Mutex<Inner>; 2],
    max_rows: usize,
}

impl FileCache {
    pub(crate) fn new(max_rows: usize) -> FileCache {
        FileCache {
            pools: [Mutex::new(Inner::default()), Mutex::new(Inner::default())],
            max_rows,
        }
    }

    fn pool(&self, i: usize) -> std::sync::MutexGuard<'_, Inner> {
        self.pools[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, k: &CacheKey) -> Option<Arc<Entry>> {
        (0..2).find_map(|i| {
            let mut g = self.pool(i);
            g.tick += 1;
            let t = g.tick;
            let e = g.map.get_mut(k)?;
            e.1 = t;
            Some(e.0.clone())
        })
    }

    /// The most values one entry may hold: one file's answer may not crowd out the rest.
    pub(crate) fn max_entry_rows(&self) -> usize {
        self.max_rows / 4
    }

    pub(crate) fn put(&self, k: CacheKey, mut e: Entry) {
        let rows = e.rows();
        if rows > self.max_entry_rows() {
            return;
        }
        match &mut e {
            Entry::Stat(a) => a.shrink_to_fit(),
            Entry::Series(m) => m.shrink_to_fit(),
            Entry::Agg(p) => p.top.shrink_to_fit(),
            Entry::Starts(v) => v.shrink_to_fit(),
        }
        let here = usize::from(rows > SMALL_ENTRY);
        // A key lives in one pool only.
        {
            let mut o = self.pool(1 - here);
            if let Some((old, _)) = o.map.remove(&k) {
                o.rows -= old.rows();
            }
        }
        let mut g = self.pool(here);
        g.tick += 1;
        let t = g.tick;
        if let Some((old, _)) = g.map.insert(k, (Arc::new(e), t)) {
            g.rows -= old.rows();
        }
        g.rows += rows;
        while g.rows > self.max_rows {
            let Some(oldest) = g
                .map
                .iter()
                .min_by_key(|(_, v)| v.1)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = g.map.remove(&oldest) {
                g.rows -= old.rows();
            }
        }
    }

    /// Drops the entries of files no longer in the store.
    pub(crate) fn retain_files(&self, live: &FxHashSet<&PathBuf>) {
        for i in 0..2 {
            let mut g = self.pool(i);
            let mut freed = 0;
            g.map.retain(|k, v| {
                let keep = live.contains(k.path());
                if !keep {
                    freed += v.0.rows();
                }
                keep
            });
            g.rows -= freed;
        }
    }

    #[cfg(test)]
    pub(crate) fn rows(&self) -> usize {
        (0..2).map(|i| self.pool(i).rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: u64) -> Entry {
        Entry::Series((0..n).map(|i| ((i, 0u128), (1, 1, 1))).collect())
    }

    #[test]
    fn least_recently_used_entries_go_first_and_rows_stay_bounded() {
        let c = FileCache::new(100);
        let k = |n: &str| CacheKey::Series(PathBuf::from(n), StatKey::Proto, 1);
        c.put(k("a"), series(20));
        c.put(k("b"), series(20));
        c.put(k("c"), series(20));
        assert!(c.get(&k("a")).is_some()); // a is now the most recent
        c.put(k("d"), series(25));
        c.put(k("e"), series(25)); // 110 rows: the least recent (b) goes
        assert!(c.get(&k("b")).is_none());
        assert!(c.get(&k("a")).is_some() && c.get(&k("e")).is_some());
        assert!(c.rows() <= 100, "{}", c.rows());
        // Too big for a quarter of the budget: not kept.
        c.put(k("f"), series(26));
        assert!(c.get(&k("f")).is_none());
        let a = PathBuf::from("a");
        c.retain_files(&[&a].into_iter().collect());
        assert_eq!(c.rows(), 20);
    }

    /// Large entries evict each other, never the small ones.
    #[test]
    fn large_entries_do_not_push_out_small_ones() {
        let c = FileCache::new(40_000);
        let k = |n: &str| CacheKey::Series(PathBuf::from(n), StatKey::Proto, 1);
        c.put(k("small"), series(10));
        for n in ["a", "b", "c", "d", "e"] {
            c.put(k(n), series(9_000)); // 45 000 values: the oldest large one goes
        }
        assert!(c.get(&k("small")).is_some());
        assert!(c.get(&k("a")).is_none() && c.get(&k("e")).is_some());
        assert_eq!(c.rows(), 10 + 4 * 9_000);
    }
}
