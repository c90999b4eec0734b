//! The query engine interface, and its implementation over the embedded store.
//!
//! The CLI and the API only talk to [`Engine`]: a filter, a time range and what to compute go
//! in; typed results come out. The embedded implementation ([`Embedded`]) scans Parquet files
//! in parallel reading only the columns a query needs; a ClickHouse implementation would
//! translate the same typed [`Expr`] into SQL without changing the callers.

use crate::aggregate::{AggAcc, AggKey, AggOrder, AggRow, Packed, ordering, rank, render_rows};
use crate::cache::{AggPrefix, CacheKey, Entry, FileCache, STARTS_KEPT};
use crate::filter::{DictColumn, Expr, LeafTables};
use crate::stats::{Order, Stat, StatAcc, StatKey, VALUE_COLUMNS, key_columns, key_values};
use flowsight_schema::{FIELDS, FlowBatch};
use flowsight_store::FileMeta;
pub use flowsight_store::TimeRange;
use flowsight_store::{ScanReport, Store, StoreError};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// What a query selects.
#[derive(Debug, Clone)]
pub struct Query {
    /// Compiled filter.
    pub filter: Expr,
    /// Flows whose start time is in this range.
    pub range: TimeRange,
}

/// Flows, packets and bytes over every matching flow, and the time they span.
pub type Totals = crate::stats::Sums;

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query parameter is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Facts about how a query ran (for `--explain` and the API's diagnostics).
pub type ScanInfo = ScanReport;

/// The most buckets one series query returns (a week of minutes is 10 080).
pub const MAX_BUCKETS: usize = 20_000;

/// What every backend answers.
pub trait Engine {
    /// Top `n` values of `key` by `order`.
    fn stat(
        &self,
        q: &Query,
        key: StatKey,
        order: Order,
        n: usize,
    ) -> Result<(Stat, ScanInfo), QueryError>;
    /// Flows grouped by `keys`, ordered, at most `n` rows.
    fn aggregate(
        &self,
        q: &Query,
        keys: &[AggKey],
        order: AggOrder,
        n: Option<usize>,
    ) -> Result<(Vec<AggRow>, Totals, ScanInfo), QueryError>;
    /// Matching flows in [`flow_key`] order (start time first), at most `limit`, only those
    /// after `after` (keyset pagination), with the totals of all matching flows. With
    /// `columns`, only those columns (and the ones ordering needs) are read; the others
    /// hold default values.
    fn flows(
        &self,
        q: &Query,
        after: Option<&FlowKey>,
        limit: Option<usize>,
        columns: Option<&[&str]>,
    ) -> Result<(FlowBatch, Totals, ScanInfo), QueryError>;
    /// Traffic per time bucket of `bucket_ns`, split by the top `k` values of `key` (ranked
    /// by `order` over the whole range, as `stat` ranks them) plus one "other" series.
    fn series(
        &self,
        q: &Query,
        key: StatKey,
        order: Order,
        k: usize,
        bucket_ns: u64,
    ) -> Result<(Series, ScanInfo), QueryError>;
}

/// Flows, packets and bytes of one series in one bucket.
pub type Counts = (u64, u64, u64);

/// A time series split by a key: `buckets[t][s]` holds series `s` (the top values in
/// `names` order, then "other") in the bucket starting at `start_ns + t * bucket_ns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Bucket width, ns.
    pub bucket_ns: u64,
    /// Start of the first bucket, ns (0 when there is no flow).
    pub start_ns: u64,
    /// The top values, rendered as `stat` renders them; "other" follows them.
    pub names: Vec<String>,
    /// Per bucket, one entry per name plus "other".
    pub buckets: Vec<Vec<Counts>>,
}

/// The engine over the embedded store.
#[derive(Debug, Clone)]
pub struct Embedded {
    store: Store,
    cache: Option<Arc<FileCache>>,
}

/// Values (distinct per file and query) each of the per-file cache's two pools (small and
/// large entries) holds by default: 64 to 128 MB each.
pub const DEFAULT_CACHE_ROWS: usize = 1_000_000;

impl Embedded {
    /// Opens the store at `dir` for reading.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Embedded, QueryError> {
        Ok(Embedded {
            store: Store::open_read(dir)?,
            cache: None,
        })
    }

    /// Keeps the per-file results of unfiltered statistics and series in memory, at most
    /// `max_rows` values over all files, so repeated queries (dashboards) scan only the
    /// files that are new or that the time range cuts through. The answers are the same.
    pub fn with_cache(mut self, max_rows: usize) -> Embedded {
        self.cache = Some(Arc::new(FileCache::new(max_rows)));
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn columns(q: &Query, extra: &[&'static str]) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = Vec::new();
    q.filter.columns(&mut c);
    for x in VALUE_COLUMNS.iter().chain(extra) {
        if !c.contains(x) {
            c.push(x);
        }
    }
    c
}

/// The order flows are listed and paged in: start time, then enough of the flow's own
/// fields that two records differ in it unless they are identical in every field that
/// matters (a router's ingress and egress records of one flow differ in the interfaces), so
/// the order does not depend on which file or thread delivered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// `time_flow_start_ns`.
    pub start_ns: u64,
    /// `time_flow_end_ns`.
    pub end_ns: u64,
    /// `src_addr`.
    pub src_addr: flowsight_schema::Addr,
    /// `dst_addr`.
    pub dst_addr: flowsight_schema::Addr,
    /// `src_port`.
    pub src_port: u16,
    /// `dst_port`.
    pub dst_port: u16,
    /// `proto`.
    pub proto: u8,
    /// `bytes`.
    pub bytes: u64,
    /// `packets`.
    pub packets: u64,
    /// `sampler_address`.
    pub sampler: flowsight_schema::Addr,
    /// `in_if`.
    pub in_if: u32,
    /// `out_if`.
    pub out_if: u32,
    /// `time_received_ns`.
    pub received_ns: u64,
    /// `sequence_num`.
    pub sequence: u32,
    /// `tcp_flags`.
    pub tcp_flags: u16,
}

/// The [`FlowKey`] of flow `i` of `b`.
pub fn flow_key(b: &FlowBatch, i: usize) -> FlowKey {
    FlowKey {
        start_ns: b.time_flow_start_ns[i],
        end_ns: b.time_flow_end_ns[i],
        src_addr: b.src_addr[i],
        dst_addr: b.dst_addr[i],
        src_port: b.src_port[i],
        dst_port: b.dst_port[i],
        proto: b.proto[i],
        bytes: b.bytes[i],
        packets: b.packets[i],
        sampler: b.sampler_address[i],
        in_if: b.in_if[i],
        out_if: b.out_if[i],
        received_ns: b.time_received_ns[i],
        sequence: b.sequence_num[i],
        tcp_flags: b.tcp_flags[i],
    }
}

/// The columns [`flow_key`] reads.
const FLOW_KEY_COLUMNS: [&str; 15] = [
    "time_flow_start_ns",
    "time_flow_end_ns",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "proto",
    "bytes",
    "packets",
    "sampler_address",
    "in_if",
    "out_if",
    "time_received_ns",
    "sequence_num",
    "tcp_flags",
];

/// The first `n` flows of `b` in [`flow_key`] order.
fn earliest(b: &FlowBatch, n: usize) -> FlowBatch {
    let mut idx: Vec<u32> = (0..b.len() as u32).collect();
    if n < idx.len() {
        idx.select_nth_unstable_by_key(n, |&i| flow_key(b, i as usize));
        idx.truncate(n);
    }
    idx.sort_by_key(|&i| flow_key(b, i as usize));
    b.take(&idx)
}

#[inline]
fn selected(q: &Query, b: &FlowBatch, i: usize) -> bool {
    q.range.contains(b.time_flow_start_ns[i]) && q.filter.matches(b, i)
}

/// Sets `sel` to which rows of `b` the query selects (the batch form of [`selected`]).
fn select(q: &Query, b: &FlowBatch, sel: &mut Vec<bool>) {
    select_with(q, b, sel, None);
}

/// [`select`], with the filter's dictionary column given (see [`Expr::refine_with`]).
fn select_with(q: &Query, b: &FlowBatch, sel: &mut Vec<bool>, dict: Option<&mut DictColumn>) {
    sel.clear();
    sel.resize(b.len(), true);
    if !q.range.is_all() {
        let r = q.range;
        for (s, &t) in sel.iter_mut().zip(&b.time_flow_start_ns) {
            *s &= r.contains(t);
        }
    }
    q.filter.refine_with(b, sel, dict);
}

/// The files a cached query reads: those wholly inside the range (cacheable) and those it
/// cuts through (scanned with the range applied).
struct Split {
    whole: Vec<FileMeta>,
    cut: Vec<FileMeta>,
    total: usize,
}

type BucketCounts = FxHashMap<(u64, u128), Counts>;
/// Counts per (bucket index, series index).
type SeriesCounts = FxHashMap<(u64, usize), Counts>;

fn add_counts<K: std::hash::Hash + Eq>(all: &mut FxHashMap<K, Counts>, k: K, v: &Counts) {
    let c = all.entry(k).or_insert((0, 0, 0));
    c.0 += v.0;
    c.1 += v.1;
    c.2 += v.2;
}

impl Embedded {
    fn split(&self, cache: &FileCache, range: TimeRange) -> Result<Split, QueryError> {
        let all = self.store.files()?;
        cache.retain_files(&all.iter().map(|f| &f.path).collect::<FxHashSet<_>>());
        let total = all.len();
        let (whole, cut) = all
            .into_iter()
            .filter(|f| range.is_all() || range.overlaps(f.min_start, f.max_start))
            .partition(|f| range.contains(f.min_start) && range.contains(f.max_start));
        Ok(Split { whole, cut, total })
    }

    /// The files a cached query must scan: the whole files `cache` has no entry for (first,
    /// `.1` of them: these get cached), then the cut ones. `hit` folds each cached entry.
    fn to_scan(
        cache: &FileCache,
        sp: Split,
        key: impl Fn(&FileMeta) -> CacheKey,
        mut hit: impl FnMut(&FileMeta, &Arc<Entry>),
    ) -> (Vec<FileMeta>, usize) {
        let mut list = Vec::new();
        for f in sp.whole {
            match cache.get(&key(&f)) {
                Some(e) => hit(&f, &e),
                None => list.push(f),
            }
        }
        let misses = list.len();
        list.extend(sp.cut);
        (list, misses)
    }

    /// `stat` through the per-file cache (unfiltered queries only). Each worker keeps the
    /// file it is reading apart until it is done, then caches it (if read whole) and folds it
    /// into its running total: one file's worth of values per worker.
    fn stat_cached(
        &self,
        cache: &FileCache,
        q: &Query,
        key: StatKey,
    ) -> Result<(StatAcc, ScanInfo), QueryError> {
        let sp = self.split(cache, q.range)?;
        let total_files = sp.total;
        let mut acc = StatAcc::new(key);
        let (list, misses) = Self::to_scan(
            cache,
            sp,
            |f| CacheKey::Stat(f.path.clone(), key),
            |_, e| {
                if let Entry::Stat(a) = &**e {
                    acc.merge_ref(a);
                }
            },
        );
        let cols = columns(q, &key_columns(key));
        let out = self.store.scan_files(
            &list,
            q.range,
            &cols,
            || (StatAcc::new(key), StatAcc::new(key)),
            |(_, cur), _, b| {
                for i in 0..b.len() {
                    if selected(q, b, i) {
                        cur.add_row(b, i);
                    }
                }
            },
            |(total, cur), fi, whole| {
                let a = std::mem::replace(cur, StatAcc::new(key));
                total.merge_ref(&a);
                if whole && fi < misses {
                    cache.put(CacheKey::Stat(list[fi].path.clone(), key), Entry::Stat(a));
                }
            },
        )?;
        for (total, _) in out.parts {
            acc.merge(total);
        }
        let mut report = out.report;
        report.files_total = total_files;
        Ok((acc, report))
    }

    /// A series' counts per (bucket index, series index) through the per-file cache
    /// (unfiltered only): files are cached per (bucket, value), so any top-k can use them.
    fn series_cached(
        &self,
        cache: &FileCache,
        q: &Query,
        key: StatKey,
        bucket_ns: u64,
        index: &FxHashMap<u128, usize>,
    ) -> Result<(SeriesCounts, ScanInfo), QueryError> {
        let other = index.len();
        let fold_into = |all: &mut FxHashMap<(u64, usize), Counts>, m: &BucketCounts| {
            for ((t, v), c) in m {
                add_counts(all, (*t, index.get(v).copied().unwrap_or(other)), c);
            }
        };
        // A file with more (bucket, value) pairs than the cache would keep is folded as it is
        // read, not held.
        let hold = cache.max_entry_rows();
        let sp = self.split(cache, q.range)?;
        let total_files = sp.total;
        let mut all: FxHashMap<(u64, usize), Counts> = FxHashMap::default();
        let (list, misses) = Self::to_scan(
            cache,
            sp,
            |f| CacheKey::Series(f.path.clone(), key, bucket_ns),
            |_, e| {
                if let Entry::Series(m) = &**e {
                    fold_into(&mut all, m);
                }
            },
        );
        let cols = columns(q, &key_columns(key));
        let out = self.store.scan_files(
            &list,
            q.range,
            &cols,
            || (FxHashMap::default(), BucketCounts::default(), false),
            |(total, cur, spilled), _, b| {
                bucket_values(q, b, key, bucket_ns, |t, v, i| {
                    add_counts(cur, (t, v), &(1, b.packets[i], b.bytes[i]));
                });
                if cur.len() > hold {
                    fold_into(total, cur);
                    cur.clear();
                    *spilled = true;
                }
            },
            |(total, cur, spilled), fi, whole| {
                let m = std::mem::take(cur);
                fold_into(total, &m);
                if whole && !*spilled && fi < misses {
                    cache.put(
                        CacheKey::Series(list[fi].path.clone(), key, bucket_ns),
                        Entry::Series(m),
                    );
                }
                *spilled = false;
            },
        )?;
        for (total, _, _) in out.parts {
            for (k, v) in total {
                add_counts(&mut all, k, &v);
            }
        }
        let mut report = out.report;
        report.files_total = total_files;
        Ok((all, report))
    }
}

impl Embedded {
    /// `aggregate` through the per-file cache, for unfiltered queries ranked by flows,
    /// packets or bytes over keys that pack into two words (conversations: `srcip,dstip`).
    ///
    /// A file's whole aggregation is too big to keep (a file of 500 000 flows holds about as
    /// many address pairs), so each file read whole keeps only its first
    /// [`AggPrefix::GROUPS`] groups and the value the best of the others reaches. The top N
    /// is then found as in Fagin's threshold algorithms: a group's value is known to lie
    /// between what the prefixes and the freshly scanned files say and that plus the bound
    /// of every prefix it is missing from. The answer is returned only when it is exact: the
    /// N groups' values are all known and nothing else can reach the N-th. Otherwise (flat
    /// traffic without heavy hitters) `None`, and the caller scans everything.
    fn aggregate_cached(
        &self,
        cache: &FileCache,
        q: &Query,
        keys: &[AggKey],
        order: AggOrder,
        n: usize,
    ) -> Result<Option<(Vec<AggRow>, Totals, ScanInfo)>, QueryError> {
        let spec = keys.to_vec();
        let sp = self.split(cache, q.range)?;
        let total_files = sp.total;
        let mut hits: Vec<(FileMeta, Arc<Entry>)> = Vec::new();
        let (list, misses) = Self::to_scan(
            cache,
            sp,
            |f| CacheKey::Agg(f.path.clone(), spec.clone(), order),
            |f, e| hits.push((f.clone(), e.clone())),
        );
        let mut extra: Vec<&'static str> = Vec::new();
        for k in keys {
            extra.extend(k.columns());
        }
        let cols = columns(q, &extra);
        let fresh = || (AggAcc::new(&spec), Totals::EMPTY);
        let out = self.store.scan_files(
            &list,
            q.range,
            &cols,
            || (fresh(), fresh()),
            |(_, (cur, t)), _, b| {
                for i in 0..b.len() {
                    if selected(q, b, i) {
                        cur.add_row(b, i);
                        t.add(b, i);
                    }
                }
            },
            |((acc, tot), cur), fi, whole| {
                let (a, t) = std::mem::replace(cur, fresh());
                if whole && fi < misses {
                    cache.put(
                        CacheKey::Agg(list[fi].path.clone(), spec.clone(), order),
                        Entry::Agg(AggPrefix::of(&a, order, t)),
                    );
                }
                tot.merge(&t);
                if acc.is_empty() {
                    *acc = a;
                } else {
                    acc.merge(a);
                }
            },
        )?;
        let (mut exact, mut totals) = fresh();
        for ((a, t), _) in out.parts {
            totals.merge(&t);
            if exact.is_empty() {
                exact = a;
            } else {
                exact.merge(a);
            }
        }
        let mut report = out.report;
        report.files_total = total_files;
        let prefixes: Vec<(&FileMeta, &AggPrefix)> = hits
            .iter()
            .filter_map(|(f, e)| match &**e {
                Entry::Agg(p) => Some((f, p)),
                _ => None,
            })
            .collect();
        if prefixes.is_empty() {
            return Ok(Some((exact.finish(order, Some(n)), totals, report)));
        }
        for (_, p) in &prefixes {
            totals.merge(&p.totals);
        }
        let layout = exact.layout().clone();
        let wide = |k: [u128; 2]| -> Packed {
            let mut p = [0u128; crate::aggregate::MAX_KEYS];
            p[0] = k[0];
            p[1] = k[1];
            p
        };
        // Candidates: every group a prefix holds, and the scanned files' first N. Any other
        // group is at most `beyond`: the scanned files' (N+1)-th value plus every bound.
        let mut head = exact.top_packed(order, n + 1);
        let mut beyond: Option<u64> = None;
        if head.len() > n {
            beyond = Some(rank(order, &head[n].1).0);
            head.truncate(n);
        }
        for (_, p) in &prefixes {
            if let Some(r) = p.rest {
                beyond = Some(beyond.unwrap_or(0) + r);
            }
        }
        let mut cand: FxHashSet<[u128; 2]> = head.iter().map(|(k, _)| [k[0], k[1]]).collect();
        for (_, p) in &prefixes {
            cand.extend(p.top.keys().copied());
        }
        // Per candidate: what is known of its sums, and the most its unknown part can add.
        let mut groups: Vec<([u128; 2], Totals, Option<u64>)> = cand
            .into_iter()
            .map(|k| {
                let mut s = exact.get_packed(&wide(k)).copied().unwrap_or(Totals::EMPTY);
                let mut unknown: Option<u64> = None;
                for (_, p) in &prefixes {
                    match (p.top.get(&k), p.rest) {
                        (Some(v), _) => s.merge(v),
                        (None, Some(r)) => unknown = Some(unknown.unwrap_or(0) + r),
                        (None, None) => {}
                    }
                }
                (k, s, unknown)
            })
            .collect();
        groups.sort_unstable_by(|a, b| ordering(order, (&a.0, &a.1), (&b.0, &b.1)));
        // The N-th best known value: every group of the answer reaches it.
        let floor = if groups.len() >= n {
            rank(order, &groups[n - 1].1).0
        } else if beyond.is_some() {
            return Ok(None); // fewer groups than asked, and unseen ones exist
        } else {
            0
        };
        if beyond.is_some_and(|b| b >= floor) {
            return Ok(None); // a group no prefix holds may belong
        }
        // Contenders: the groups that can reach the floor. Those partly unknown (small in
        // some file, so outside its prefix) get their exact sums from one targeted read of
        // the files they are unknown in: a membership test per flow, not an aggregation.
        groups.retain(|g| rank(order, &g.1).0 + g.2.unwrap_or(0) >= floor);
        let need: FxHashSet<[u128; 2]> = groups
            .iter()
            .filter(|g| g.2.is_some())
            .map(|g| g.0)
            .collect();
        if need.len() > 4 * n + 256 {
            return Ok(None);
        }
        if !need.is_empty() {
            let reread: Vec<FileMeta> = prefixes
                .iter()
                .filter(|(_, p)| p.rest.is_some() && need.iter().any(|k| !p.top.contains_key(k)))
                .map(|(f, _)| (*f).clone())
                .collect();
            let probe = AggAcc::new(keys);
            let out = self.store.scan_files(
                &reread,
                q.range,
                &cols,
                FxHashMap::<[u128; 2], Totals>::default,
                |m, _, b| {
                    for i in 0..b.len() {
                        if !selected(q, b, i) {
                            continue;
                        }
                        let k = probe.packed_key(b, i);
                        let k = [k[0], k[1]];
                        if need.contains(&k) {
                            m.entry(k).or_insert(Totals::EMPTY).add(b, i);
                        }
                    }
                },
                |_, _, _| {},
            )?;
            if out.report.vanished > 0 || !out.report.quarantined.is_empty() {
                // Compaction or damage took a file away: its sums are not known; scan anew.
                return Ok(None);
            }
            report.files_read += out.report.files_read;
            report.rows_read += out.report.rows_read;
            let mut read: FxHashMap<[u128; 2], Totals> = FxHashMap::default();
            for m in out.parts {
                for (k, v) in m {
                    read.entry(k).or_insert(Totals::EMPTY).merge(&v);
                }
            }
            let again: FxHashSet<&std::path::PathBuf> = reread.iter().map(|f| &f.path).collect();
            for g in groups.iter_mut().filter(|g| g.2.is_some()) {
                let mut s = exact
                    .get_packed(&wide(g.0))
                    .copied()
                    .unwrap_or(Totals::EMPTY);
                for (f, p) in &prefixes {
                    if !again.contains(&f.path)
                        && let Some(v) = p.top.get(&g.0)
                    {
                        s.merge(v);
                    }
                }
                if let Some(v) = read.get(&g.0) {
                    s.merge(v);
                }
                *g = (g.0, s, None);
            }
            groups.sort_unstable_by(|a, b| ordering(order, (&a.0, &a.1), (&b.0, &b.1)));
        }
        groups.truncate(n);
        let rows = groups.iter().map(|g| (wide(g.0), g.1)).collect();
        Ok(Some((render_rows(keys, &layout, rows), totals, report)))
    }
}

/// The results [`Embedded::prewarm`] keeps computed for every file: a dashboard's panels.
#[derive(Debug, Clone, Default)]
pub struct WarmPlan {
    /// Statistics (top-N of one key).
    pub stats: Vec<StatKey>,
    /// Time series: key and bucket width, ns.
    pub series: Vec<(StatKey, u64)>,
    /// Aggregations (`srcip,dstip`) and the orders they are ranked by (flows, packets or
    /// bytes; others are not cached).
    pub aggregations: Vec<(Vec<AggKey>, AggOrder)>,
    /// The earliest start times (where unfiltered flow pages end).
    pub starts: bool,
}

/// One file's results for a [`WarmPlan`], being accumulated.
struct Warming {
    starts: Vec<u64>,
    stats: Vec<StatAcc>,
    series: Vec<BucketCounts>,
    aggs: Vec<(AggAcc, Totals)>,
}

impl Embedded {
    /// Computes `plan` for every file wholly inside `range` that the cache lacks a result
    /// of, reading each such file once, and caches the results: what the queries of
    /// `plan` would cache, ahead of them. Returns the number of files read. The
    /// server runs it as files arrive, so a dashboard opened later answers from the cache
    /// (the per-file results play the part of Akvorado's rollup tables).
    ///
    /// `warmed` remembers the files already done (pass the same set each time): a file is
    /// read once, even when an entry did not fit the cache or was evicted since (the
    /// queries themselves then cache it), so a cache too small for the hour does not
    /// turn the prewarm into a rescan every round.
    pub fn prewarm(
        &self,
        range: TimeRange,
        plan: &WarmPlan,
        warmed: &mut FxHashSet<std::path::PathBuf>,
    ) -> Result<usize, QueryError> {
        let Some(cache) = self.cache.as_deref() else {
            return Ok(0);
        };
        let aggs: Vec<&(Vec<AggKey>, AggOrder)> = plan
            .aggregations
            .iter()
            .filter(|(k, o)| {
                matches!(o, AggOrder::Flows | AggOrder::Packets | AggOrder::Bytes)
                    && AggAcc::new(k).layout().words() <= 2
            })
            .collect();
        let sp = self.split(cache, range)?;
        let live: FxHashSet<&std::path::PathBuf> = sp.whole.iter().map(|f| &f.path).collect();
        warmed.retain(|p| live.contains(p));
        let todo: Vec<FileMeta> = sp
            .whole
            .iter()
            .filter(|f| !warmed.contains(&f.path))
            .cloned()
            .collect();
        if todo.is_empty() {
            return Ok(0);
        }
        let mut extra: Vec<&'static str> = Vec::new();
        for k in plan.stats.iter().chain(plan.series.iter().map(|(k, _)| k)) {
            extra.extend(key_columns(*k));
        }
        for (k, _) in &aggs {
            for key in k {
                extra.extend(key.columns());
            }
        }
        let q = Query {
            filter: Expr::Any,
            range,
        };
        let cols = columns(&q, &extra);
        let fresh = || Warming {
            starts: Vec::new(),
            stats: plan.stats.iter().map(|k| StatAcc::new(*k)).collect(),
            series: plan
                .series
                .iter()
                .map(|_| BucketCounts::default())
                .collect(),
            aggs: aggs
                .iter()
                .map(|(k, _)| (AggAcc::new(k), Totals::EMPTY))
                .collect(),
        };
        let hold = cache.max_entry_rows();
        let out = self.store.scan_files(
            &todo,
            range,
            &cols,
            fresh,
            |w, _, b| {
                for i in 0..b.len() {
                    if !selected(&q, b, i) {
                        continue;
                    }
                    if plan.starts {
                        w.starts.push(b.time_flow_start_ns[i]);
                    }
                    for a in &mut w.stats {
                        a.add_row(b, i);
                    }
                    for (a, t) in &mut w.aggs {
                        a.add_row(b, i);
                        t.add(b, i);
                    }
                }
                for (m, (k, width)) in w.series.iter_mut().zip(&plan.series) {
                    // Too many values for the cache: stop counting, it will not be kept.
                    if m.len() <= hold {
                        bucket_values(&q, b, *k, *width, |t, v, i| {
                            add_counts(m, (t, v), &(1, b.packets[i], b.bytes[i]));
                        });
                    }
                }
            },
            |w, fi, whole| {
                let done = std::mem::replace(w, fresh());
                if !whole {
                    return;
                }
                let path = &todo[fi].path;
                if plan.starts {
                    let mut v = done.starts;
                    if v.len() > STARTS_KEPT {
                        v.select_nth_unstable(STARTS_KEPT - 1);
                        v.truncate(STARTS_KEPT);
                    }
                    v.sort_unstable();
                    cache.put(CacheKey::Starts(path.clone()), Entry::Starts(v));
                }
                // Answers with many values per file (ports) go to the cache's large pool,
                // where they cannot push out the small panels.
                for (a, k) in done.stats.into_iter().zip(&plan.stats) {
                    cache.put(CacheKey::Stat(path.clone(), *k), Entry::Stat(a));
                }
                for (m, (k, width)) in done.series.into_iter().zip(&plan.series) {
                    if m.len() <= hold {
                        cache.put(CacheKey::Series(path.clone(), *k, *width), Entry::Series(m));
                    }
                }
                for ((a, t), (k, o)) in done.aggs.into_iter().zip(&aggs) {
                    cache.put(
                        CacheKey::Agg(path.clone(), k.clone(), *o),
                        Entry::Agg(AggPrefix::of(&a, *o, t)),
                    );
                }
            },
        )?;
        warmed.extend(todo.into_iter().map(|f| f.path));
        Ok(out.report.files_read)
    }
}

/// Calls `f(bucket index, value, row)` for every value of `key` of every selected row of `b`
/// (two for two-sided keys), buckets of `bucket_ns` by flow start.
#[inline]
fn bucket_values(
    q: &Query,
    b: &FlowBatch,
    key: StatKey,
    bucket_ns: u64,
    mut f: impl FnMut(u64, u128, usize),
) {
    let mut vals = Vec::with_capacity(2);
    for i in 0..b.len() {
        if !selected(q, b, i) {
            continue;
        }
        let t = b.time_flow_start_ns[i] / bucket_ns;
        vals.clear();
        key_values(b, i, key, &mut vals);
        for &v in &vals {
            f(t, v, i);
        }
    }
}

fn unfiltered(q: &Query) -> bool {
    matches!(q.filter, Expr::Any)
}

impl Engine for Embedded {
    fn stat(
        &self,
        q: &Query,
        key: StatKey,
        order: Order,
        n: usize,
    ) -> Result<(Stat, ScanInfo), QueryError> {
        if let Some(cache) = self.cache.as_deref().filter(|_| unfiltered(q)) {
            let (acc, report) = self.stat_cached(cache, q, key)?;
            return Ok((acc.finish(order, n), report));
        }
        // An address key, or the address column the filter tests one value at a time, is
        // read as its files' dictionaries where they have them: summed per index, tested
        // per distinct value.
        let (stat_col, filter_col) = (StatAcc::dict_column(key), q.filter.dict_column());
        let mut cols = columns(q, &key_columns(key));
        let out = match stat_col.or(filter_col) {
            Some(k) => {
                // The batch's own column is filled only if the filter or the key read it
                // otherwise (`ip` reads both address columns).
                let mut read = Vec::new();
                q.filter.columns(&mut read);
                let plain = (read.contains(&k) && filter_col != Some(k))
                    || (key_columns(key).contains(&k) && stat_col != Some(k));
                cols.retain(|c| *c != k || plain);
                self.store.scan_keyed(
                    q.range,
                    &cols,
                    k,
                    || (StatAcc::new(key), Vec::new(), LeafTables::default()),
                    |(acc, sel, tables), b, keys| {
                        let Some(d) = keys else {
                            select(q, b, sel);
                            return acc.add_selected(b, sel);
                        };
                        let mut dict = DictColumn {
                            column: k,
                            keys: &d.keys,
                            values: &d.values,
                            generation: d.generation,
                            tables,
                        };
                        select_with(q, b, sel, (filter_col == Some(k)).then_some(&mut dict));
                        if stat_col == Some(k) {
                            acc.add_selected_dict(b, sel, &d.keys, &d.values, d.generation);
                        } else {
                            acc.add_selected(b, sel);
                        }
                    },
                )?
            }
            None => self.store.scan(
                q.range,
                &cols,
                || (StatAcc::new(key), Vec::new(), LeafTables::default()),
                |(acc, sel, _), b| {
                    select(q, b, sel);
                    acc.add_selected(b, sel);
                },
            )?,
        };
        let mut parts = out.parts.into_iter().map(|(a, _, _)| a);
        let mut acc = parts.next().unwrap_or_else(|| StatAcc::new(key));
        for p in parts {
            acc.merge(p);
        }
        Ok((acc.finish(order, n), out.report))
    }

    fn aggregate(
        &self,
        q: &Query,
        keys: &[AggKey],
        order: AggOrder,
        n: Option<usize>,
    ) -> Result<(Vec<AggRow>, Totals, ScanInfo), QueryError> {
        if let Some(cache) = self.cache.as_deref().filter(|_| unfiltered(q))
            && let Some(n) = n.filter(|&n| (1..=AggPrefix::GROUPS / 4).contains(&n))
            && matches!(order, AggOrder::Flows | AggOrder::Packets | AggOrder::Bytes)
            && AggAcc::new(keys).layout().words() <= 2
            && let Some(answer) = self.aggregate_cached(cache, q, keys, order, n)?
        {
            return Ok(answer);
        }
        let mut extra: Vec<&'static str> = Vec::new();
        for k in keys {
            extra.extend(k.columns());
        }
        let cols = columns(q, &extra);
        let keys = keys.to_vec();
        let out = self.store.scan(
            q.range,
            &cols,
            || (AggAcc::new(&keys), Totals::EMPTY, Vec::new()),
            |(acc, t, sel), b| {
                select(q, b, sel);
                for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
                    acc.add_row(b, i);
                    t.add(b, i);
                }
            },
        )?;
        let mut parts = out.parts.into_iter().map(|(a, t, _)| (a, t));
        let (mut acc, mut tot) = parts
            .next()
            .unwrap_or_else(|| (AggAcc::new(&keys), Totals::EMPTY));
        for (a, t) in parts {
            acc.merge(a);
            tot.merge(&t);
        }
        Ok((acc.finish(order, n), tot, out.report))
    }

    fn flows(
        &self,
        q: &Query,
        after: Option<&FlowKey>,
        limit: Option<usize>,
        wanted: Option<&[&str]>,
    ) -> Result<(FlowBatch, Totals, ScanInfo), QueryError> {
        // Two passes. The totals of every matching flow read only the filter's and the
        // counts' columns (or come from the per-file cache when unfiltered). The page reads
        // every column, but only of the files that can hold its flows: files go in order of
        // their earliest start, and once `limit` flows are found, a file starting after the
        // last of them cannot add one.
        let (tot, mut report) = match self.cache.as_deref().filter(|_| unfiltered(q)) {
            Some(cache) => {
                let (acc, rep) = self.stat_cached(cache, q, StatKey::Proto)?;
                (acc.sums(), rep)
            }
            None => {
                let cols = columns(q, &[]);
                let out = self.store.scan(
                    q.range,
                    &cols,
                    || Totals::EMPTY,
                    |t, b| {
                        for i in 0..b.len() {
                            if selected(q, b, i) {
                                t.add(b, i);
                            }
                        }
                    },
                )?;
                let mut tot = Totals::EMPTY;
                for t in &out.parts {
                    tot.merge(t);
                }
                (tot, out.report)
            }
        };
        let all: Vec<&'static str> = FIELDS.iter().map(|f| f.name).collect();
        // Decoding every column of a file is most of a page's cost: with `columns`, only
        // those, the filter's and the order's are read.
        let read: Vec<&'static str> = match wanted {
            None => all.clone(),
            Some(want) => {
                let mut c = columns(q, &FLOW_KEY_COLUMNS);
                for f in FIELDS.iter().filter(|f| want.contains(&f.name)) {
                    if !c.contains(&f.name) {
                        c.push(f.name);
                    }
                }
                c
            }
        };
        let mut files: Vec<FileMeta> = self
            .store
            .files()?
            .into_iter()
            .filter(|f| q.range.is_all() || q.range.overlaps(f.min_start, f.max_start))
            // A flow after the cursor starts at or after the cursor's start.
            .filter(|f| after.is_none_or(|a| f.max_start >= a.start_ns))
            .collect();
        files.sort_by_key(|f| f.min_start);
        let want = limit.unwrap_or(usize::MAX);
        // The page's last start time, from the start column (and the filter's) alone: the
        // flows starting after the cursor's start all come after the cursor, so the `want`-th
        // earliest of them bounds the page. The page's columns are then read only for flows
        // up to it (the store decodes them only for rows inside the range).
        let mut range = q.range;
        if let Some(a) = after {
            range.since = range.since.max(a.start_ns);
        }
        if (1..=100_000).contains(&want) && !files.is_empty() {
            let floor = after.map(|a| a.start_ns);
            let above = |t: u64| floor.is_none_or(|f| t > f);
            // Unfiltered, a file inside the range has its earliest starts cached: each is a
            // flow of the range, so the `want`-th of them all still bounds the page.
            let cache = self.cache.as_deref().filter(|_| unfiltered(q));
            let inside = |f: &FileMeta| range.contains(f.min_start) && range.contains(f.max_start);
            let mut starts: Vec<u64> = Vec::new();
            let mut scan: Vec<FileMeta> = Vec::new();
            for f in &files {
                let hit = cache
                    .filter(|_| inside(f))
                    .and_then(|c| c.get(&CacheKey::Starts(f.path.clone())));
                match hit.as_deref() {
                    Some(Entry::Starts(v)) => {
                        starts.extend(v.iter().copied().filter(|&t| above(t)))
                    }
                    _ => scan.push(f.clone()),
                }
            }
            let mut cols = Vec::new();
            q.filter.columns(&mut cols);
            if !cols.contains(&"time_flow_start_ns") {
                cols.push("time_flow_start_ns");
            }
            let keep = |v: &mut Vec<u64>, n: usize| {
                if v.len() > n {
                    v.select_nth_unstable(n - 1);
                    v.truncate(n);
                }
            };
            let out = self.store.scan_files(
                &scan,
                range,
                &cols,
                || (Vec::new(), Vec::new()),
                |(_, cur): &mut (Vec<u64>, Vec<u64>), _, b| {
                    for i in 0..b.len() {
                        if selected(q, b, i) {
                            cur.push(b.time_flow_start_ns[i]);
                        }
                    }
                },
                |(acc, cur), fi, whole| {
                    let mut v = std::mem::take(cur);
                    if let Some(c) = cache.filter(|_| whole && inside(&scan[fi])) {
                        let mut first = v.clone();
                        keep(&mut first, STARTS_KEPT);
                        first.sort_unstable();
                        c.put(
                            CacheKey::Starts(scan[fi].path.clone()),
                            Entry::Starts(first),
                        );
                    }
                    v.retain(|&t| above(t));
                    acc.append(&mut v);
                    if acc.len() > want.saturating_mul(2).saturating_add(65_536) {
                        keep(acc, want);
                    }
                },
            )?;
            for (mut v, _) in out.parts {
                starts.append(&mut v);
            }
            if starts.len() >= want {
                keep(&mut starts, want);
                if let Some(&last) = starts.iter().max() {
                    range.until = range.until.min(last.saturating_add(1));
                }
            }
            report.rows_read += out.report.rows_read;
            files.retain(|f| range.overlaps(f.min_start, f.max_start));
        }
        let narrowed = Query {
            filter: q.filter.clone(),
            range,
        };
        let q = &narrowed;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut page = FlowBatch::default();
        let mut next = 0;
        if want == 0 {
            files.clear();
        }
        while next < files.len() {
            if page.len() >= want {
                let last = flow_key(&page, page.len() - 1).start_ns;
                if files[next].min_start > last {
                    break;
                }
            }
            // A few files at a time, one per core.
            let chunk = &files[next..(next + threads).min(files.len())];
            next += chunk.len();
            let out = self.store.scan_files(
                chunk,
                q.range,
                &read,
                FlowBatch::default,
                |acc, _, b| {
                    let mut idx: Vec<u32> = (0..b.len())
                        .filter(|&i| selected(q, b, i))
                        .map(|i| i as u32)
                        .collect();
                    if let Some(a) = after {
                        idx.retain(|&i| flow_key(b, i as usize) > *a);
                    }
                    let mut sel = b.take(&idx);
                    acc.append(&mut sel);
                    // Row budget: each part keeps only its earliest flows.
                    if acc.len() > want.saturating_mul(2).saturating_add(65_536) {
                        *acc = earliest(acc, want);
                    }
                },
                |_, _, _| {},
            )?;
            for mut b in out.parts {
                page.append(&mut b);
            }
            page = earliest(&page, want);
            report.files_read += out.report.files_read;
            report.rows_read += out.report.rows_read;
            report.vanished += out.report.vanished;
            report.quarantined.extend(out.report.quarantined);
        }
        // Columns not read hold defaults, so every record of the page can be built.
        page.fill_missing(&all);
        Ok((page, tot, report))
    }

    fn series(
        &self,
        q: &Query,
        key: StatKey,
        order: Order,
        k: usize,
        bucket_ns: u64,
    ) -> Result<(Series, ScanInfo), QueryError> {
        if bucket_ns == 0 {
            return Err(QueryError::Invalid(
                "the bucket must be longer than 0".into(),
            ));
        }
        // Two passes: the top values over the whole range, then every flow into its bucket
        // and series. The ranking is the statistic's own, so the series agree with `-s`.
        let (top, _) = self.stat(q, key, order, k)?;
        let index: FxHashMap<u128, usize> = top
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.raw, i))
            .collect();
        let other = top.rows.len();
        let (all, report) = if let Some(cache) = self.cache.as_deref().filter(|_| unfiltered(q)) {
            self.series_cached(cache, q, key, bucket_ns, &index)?
        } else {
            let cols = columns(q, &key_columns(key));
            let out = self
                .store
                .scan(q.range, &cols, SeriesCounts::default, |acc, b| {
                    bucket_values(q, b, key, bucket_ns, |t, v, i| {
                        let s = index.get(&v).copied().unwrap_or(other);
                        add_counts(acc, (t, s), &(1, b.packets[i], b.bytes[i]));
                    });
                })?;
            let mut all = SeriesCounts::default();
            for p in out.parts {
                for (k, v) in p {
                    add_counts(&mut all, k, &v);
                }
            }
            (all, out.report)
        };
        // Buckets span the asked range when it is bounded, else the flows found.
        let first = all.keys().map(|k| k.0).min();
        let last = all.keys().map(|k| k.0).max();
        let lo = if q.range.since > 0 {
            Some(q.range.since / bucket_ns)
        } else {
            first
        };
        let hi = if q.range.until < u64::MAX {
            Some(q.range.until.saturating_sub(1) / bucket_ns)
        } else {
            last
        };
        let mut series = Series {
            bucket_ns,
            start_ns: 0,
            names: top.rows.iter().map(|r| r.value.clone()).collect(),
            buckets: Vec::new(),
        };
        if let (Some(lo), Some(hi)) = (lo, hi)
            && hi >= lo
        {
            let n = (hi - lo + 1) as usize;
            if n > MAX_BUCKETS {
                return Err(QueryError::Invalid(format!(
                    "{n} buckets: at most {MAX_BUCKETS}; choose a longer bucket or a shorter range"
                )));
            }
            series.start_ns = lo * bucket_ns;
            series.buckets = vec![vec![(0, 0, 0); other + 1]; n];
            for ((t, s), c) in all {
                if t >= lo && t <= hi {
                    series.buckets[(t - lo) as usize][s] = c;
                }
            }
        }
        Ok((series, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::parse_keys;
    use flowsight_schema::{FlowRecord, addr_from_ip};
    use flowsight_store::WriteOptions;

    const S: u64 = 1_000_000_000;

    /// Six files of 6 000 flows, more groups each than a prefix keeps. With `heavy`, ten
    /// pairs carry most bytes (as real traffic's heavy hitters do); without, every pair is
    /// alike and the prefixes cannot prove a top N.
    fn store(heavy: bool) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut x: u64 = 99;
        for f in 0..6u64 {
            let mut b = FlowBatch::default();
            for i in 0..6000u64 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = x >> 24;
                let (src, dst, bytes) = if heavy && i % 4 == 0 {
                    let h = r % 10;
                    (h, 1000 + h, 1_000_000 * (h + 1) + r % 1000)
                } else {
                    (
                        r % 100_000,
                        (r >> 17) % 50,
                        if heavy { 100 + r % 100 } else { 500 },
                    )
                };
                b.push(&FlowRecord {
                    src_addr: addr_from_ip(std::net::Ipv4Addr::from(src as u32).into()),
                    dst_addr: addr_from_ip(std::net::Ipv4Addr::from(dst as u32).into()),
                    bytes,
                    packets: 1 + bytes / 1000,
                    time_flow_start_ns: (1000 + f * 100) * S + i * S / 100,
                    time_flow_end_ns: (1000 + f * 100) * S + i * S / 100 + S,
                    ..FlowRecord::default()
                });
            }
            store
                .write(b, (1000 + f * 100) * S, &WriteOptions::default())
                .unwrap();
        }
        (dir, store)
    }

    /// The same store behind a plain engine and a cached one, for equality tests.
    fn engines(st: Store) -> (Embedded, Embedded) {
        let plain = Embedded {
            store: st.clone(),
            cache: None,
        };
        let cached = Embedded {
            store: st,
            cache: Some(Arc::new(FileCache::new(DEFAULT_CACHE_ROWS))),
        };
        (plain, cached)
    }

    fn answer(e: &Embedded, range: TimeRange, order: AggOrder) -> ((Vec<AggRow>, Totals), usize) {
        let q = Query {
            filter: Expr::Any,
            range,
        };
        let keys = parse_keys("srcip,dstip").unwrap();
        let (rows, tot, rep) = e.aggregate(&q, &keys, order, Some(10)).unwrap();
        ((rows, tot), rep.files_read)
    }

    /// Conversations from cached prefixes equal a full scan's, for every additive order,
    /// for ranges holding whole files and cutting through them; a refresh reads no file.
    #[test]
    fn cached_conversations_equal_a_full_scan() {
        let (_d, st) = store(true);
        let (plain, cached) = engines(st);
        let whole = TimeRange::ALL;
        let cut = TimeRange {
            since: 1030 * S,
            until: 1450 * S,
        };
        for order in [AggOrder::Bytes, AggOrder::Flows, AggOrder::Packets] {
            for range in [whole, cut] {
                let (want, _) = answer(&plain, range, order);
                assert_eq!(want.0.len(), 10);
                let (cold, _) = answer(&cached, range, order);
                assert_eq!(cold, want, "{order:?} {range:?} cold");
                let (warm, read) = answer(&cached, range, order);
                assert_eq!(warm, want, "{order:?} {range:?} warm");
                // Only the two files the cut range ends in are read again.
                assert_eq!(read, if range == whole { 0 } else { 2 }, "{order:?}");
            }
        }
    }

    /// Statistics from the store equal the same statistic computed over all its flows in
    /// memory, with address keys and address filters read as the files' dictionaries
    /// (destinations repeat in every file, sources only in the last) or as plain columns
    /// (other files, and ranges cutting through files).
    #[test]
    fn store_statistics_equal_in_memory_ones() {
        let (_d, st) = store(true);
        let mut b = FlowBatch::default();
        for i in 0..3000u64 {
            b.push(&FlowRecord {
                src_addr: addr_from_ip(std::net::Ipv4Addr::from((i * 7 % 40) as u32).into()),
                dst_addr: addr_from_ip(std::net::Ipv4Addr::from((i * 11 % 30) as u32).into()),
                bytes: 100 + i,
                packets: 1 + i % 7,
                proto: [6, 17][(i % 2) as usize],
                time_flow_start_ns: 1700 * S + i * S / 100,
                time_flow_end_ns: 1700 * S + i * S / 100 + S,
                ..FlowRecord::default()
            });
        }
        st.write(b, 1700 * S, &WriteOptions::default()).unwrap();
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let parts = st
            .scan(TimeRange::ALL, &names, FlowBatch::default, |acc, b| {
                acc.append(&mut b.clone())
            })
            .unwrap();
        let mut all = FlowBatch::default();
        for mut p in parts.parts {
            all.append(&mut p);
        }
        assert_eq!(all.len(), 39_000);
        let e = Embedded {
            store: st,
            cache: None,
        };
        let cut = TimeRange {
            since: 1030 * S,
            until: 1720 * S,
        };
        for f in [
            "",
            "dst net 0.0.0.0/28",
            "src net 0.0.0.0/27 and dst net 0.0.0.0/28",
            "not dst ip 0.0.0.7 and proto tcp",
            "dst ip in [0.0.3.233, 0.0.0.3] or src ip 0.0.0.21",
            "net 0.0.0.0/28",
        ] {
            let filter = crate::filter::parse(f).unwrap();
            for key in [StatKey::SrcIp, StatKey::DstIp, StatKey::Proto, StatKey::Ip] {
                for range in [TimeRange::ALL, cut] {
                    let q = Query {
                        filter: filter.clone(),
                        range,
                    };
                    let (got, _) = e.stat(&q, key, Order::Bytes, 20).unwrap();
                    let mut inside = FlowBatch::default();
                    let idx: Vec<u32> = (0..all.len() as u32)
                        .filter(|&i| range.contains(all.time_flow_start_ns[i as usize]))
                        .collect();
                    inside.append(&mut all.take(&idx));
                    let want = crate::stats::compute(&inside, &filter, key, Order::Bytes, 20);
                    assert!(want.totals.0 > 0, "{f}: no flow");
                    assert_eq!(got.rows, want.rows, "{f} by {key} over {range:?}");
                    assert_eq!(
                        (got.totals, got.other),
                        (want.totals, want.other),
                        "{f} by {key} over {range:?}"
                    );
                }
            }
        }
    }

    /// Without heavy hitters the prefixes prove nothing: the answer comes from a full scan
    /// and is still exact.
    #[test]
    fn flat_traffic_falls_back_to_a_full_scan() {
        let (_d, st) = store(false);
        let (plain, cached) = engines(st);
        let (want, _) = answer(&plain, TimeRange::ALL, AggOrder::Bytes);
        answer(&cached, TimeRange::ALL, AggOrder::Bytes);
        let (warm, read) = answer(&cached, TimeRange::ALL, AggOrder::Bytes);
        assert_eq!(warm, want);
        assert_eq!(read, 6);
    }

    /// A group outside a file's prefix whose bound could lift it into the top N is not
    /// guessed away: here `x` is 515 bytes in five small files and 10 (unknown to the cache,
    /// like 4 200 other groups of file 5) in the large one, so it outranks `h0` (520). Its
    /// sums come from reading that one file again.
    #[test]
    fn a_group_outside_a_prefix_that_may_rank_is_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(dir.path()).unwrap();
        let flow = |src: u32, dst: u32, bytes: u64, t: u64| FlowRecord {
            src_addr: addr_from_ip(std::net::Ipv4Addr::from(src).into()),
            dst_addr: addr_from_ip(std::net::Ipv4Addr::from(dst).into()),
            bytes,
            packets: 1,
            time_flow_start_ns: t * S,
            time_flow_end_ns: t * S + S,
            ..FlowRecord::default()
        };
        let x = 0xC800_0001; // 200.0.0.1: sorts after every filler
        for f in 0..6u64 {
            let t = 1000 + f * 100;
            let mut b = FlowBatch::default();
            for h in 0..10u32 {
                b.push(&flow(
                    h,
                    1,
                    if f < 5 { 100 + 50 * u64::from(h) } else { 20 },
                    t,
                ));
            }
            if f < 5 {
                b.push(&flow(x, 1, 103, t));
            } else {
                for i in 0..4200u32 {
                    b.push(&flow(0x0A00_0000 + i, 2, 10, t));
                }
                b.push(&flow(x, 1, 10, t));
            }
            st.write(b, t * S, &WriteOptions::default()).unwrap();
        }
        let (plain, cached) = engines(st);
        let (want, _) = answer(&plain, TimeRange::ALL, AggOrder::Bytes);
        assert_eq!(
            want.0[9].key,
            vec!["200.0.0.1".to_string(), "0.0.0.1".to_string()]
        );
        assert_eq!(want.0[9].bytes, 525);
        answer(&cached, TimeRange::ALL, AggOrder::Bytes);
        let (warm, read) = answer(&cached, TimeRange::ALL, AggOrder::Bytes);
        assert_eq!(warm, want);
        // Only the large file, where `x` is outside the prefix, is read again.
        assert_eq!(read, 1);
    }

    /// After a prewarm, the planned queries read no file and answer as a full scan does;
    /// a second prewarm reads nothing.
    #[test]
    fn prewarmed_panels_read_no_file() {
        let (_d, st) = store(true);
        let (plain, cached) = engines(st);
        let plan = WarmPlan {
            stats: vec![StatKey::SrcIp, StatKey::Proto],
            series: vec![(StatKey::Proto, 60 * S)],
            aggregations: vec![(parse_keys("srcip,dstip").unwrap(), AggOrder::Bytes)],
            starts: true,
        };
        let mut warmed = FxHashSet::default();
        assert_eq!(
            cached.prewarm(TimeRange::ALL, &plan, &mut warmed).unwrap(),
            6
        );
        assert_eq!(
            cached.prewarm(TimeRange::ALL, &plan, &mut warmed).unwrap(),
            0
        );
        let q = Query {
            filter: Expr::Any,
            range: TimeRange::ALL,
        };
        let (want, _) = plain.stat(&q, StatKey::SrcIp, Order::Bytes, 10).unwrap();
        let (got, rep) = cached.stat(&q, StatKey::SrcIp, Order::Bytes, 10).unwrap();
        assert_eq!(rep.files_read, 0);
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        let (want, _) = plain
            .series(&q, StatKey::Proto, Order::Bytes, 3, 60 * S)
            .unwrap();
        let (got, rep) = cached
            .series(&q, StatKey::Proto, Order::Bytes, 3, 60 * S)
            .unwrap();
        assert_eq!((got, rep.files_read), (want, 0));
        let (want, _) = answer(&plain, TimeRange::ALL, AggOrder::Bytes);
        let (got, read) = answer(&cached, TimeRange::ALL, AggOrder::Bytes);
        assert_eq!((got, read), (want, 0));
    }

    /// Flow pages bounded by cached earliest starts equal a plain engine's, page after
    /// page, and the cached first page reads only the file that holds it.
    #[test]
    fn cached_flow_pages_equal_plain_ones() {
        let (_d, st) = store(true);
        let (plain, cached) = engines(st);
        let q = Query {
            filter: Expr::Any,
            range: TimeRange::ALL,
        };
        let keys = |b: &FlowBatch| (0..b.len()).map(|i| flow_key(b, i)).collect::<Vec<_>>();
        for round in 0..2 {
            let mut after: Option<FlowKey> = None;
            for page in 0..6 {
                let (want, wt, _) = plain.flows(&q, after.as_ref(), Some(500), None).unwrap();
                let (got, gt, rep) = cached.flows(&q, after.as_ref(), Some(500), None).unwrap();
                assert_eq!(keys(&got), keys(&want), "round {round} page {page}");
                assert_eq!(gt, wt);
                if round == 1 && page == 0 {
                    // The first 500 flows are all in the first file (6 000 flows), and only
                    // they are decoded: the start times bounding the page are cached.
                    assert_eq!(rep.files_read, 1);
                    assert!(rep.rows_read <= 600, "{}", rep.rows_read);
                }
                after = Some(flow_key(&want, want.len() - 1));
            }
        }
    }
}
