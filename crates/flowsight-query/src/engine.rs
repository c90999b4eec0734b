//! The query engine interface, and its implementation over the embedded store.
//!
//! The CLI and the API only talk to [`Engine`]: a filter, a time range and what to compute go
//! in; typed results come out. The embedded implementation ([`Embedded`]) scans Parquet files
//! in parallel reading only the columns a query needs; a ClickHouse implementation would
//! translate the same typed [`Expr`] into SQL without changing the callers.

use crate::aggregate::{AggAcc, AggKey, AggOrder, AggRow};
use crate::cache::{CacheKey, Entry, FileCache};
use crate::filter::Expr;
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

/// Values (distinct per file and query) the per-file cache holds by default: 64 to 128 MB.
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
        mut hit: impl FnMut(&Entry),
    ) -> (Vec<FileMeta>, usize) {
        let mut list = Vec::new();
        for f in sp.whole {
            match cache.get(&key(&f)) {
                Some(e) => hit(&e),
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
            |e| {
                if let Entry::Stat(a) = e {
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
            |e| {
                if let Entry::Series(m) = e {
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
        let cols = columns(q, &key_columns(key));
        let out = self.store.scan(
            q.range,
            &cols,
            || StatAcc::new(key),
            |acc, b| {
                for i in 0..b.len() {
                    if selected(q, b, i) {
                        acc.add_row(b, i);
                    }
                }
            },
        )?;
        let mut parts = out.parts.into_iter();
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
        let mut extra: Vec<&'static str> = Vec::new();
        for k in keys {
            extra.extend(k.columns());
        }
        let cols = columns(q, &extra);
        let keys = keys.to_vec();
        let out = self.store.scan(
            q.range,
            &cols,
            || (AggAcc::new(&keys), Totals::EMPTY),
            |(acc, t), b| {
                for i in 0..b.len() {
                    if selected(q, b, i) {
                        acc.add_row(b, i);
                        t.add(b, i);
                    }
                }
            },
        )?;
        let mut parts = out.parts.into_iter();
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut page = FlowBatch::default();
        let mut next = 0;
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
