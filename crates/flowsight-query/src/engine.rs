//! The query engine interface, and its implementation over the embedded store.
//!
//! The CLI and the API only talk to [`Engine`]: a filter, a time range and what to compute go
//! in; typed results come out. The embedded implementation ([`Embedded`]) scans Parquet files
//! in parallel reading only the columns a query needs; a ClickHouse implementation would
//! translate the same typed [`Expr`] into SQL without changing the callers.

use crate::aggregate::{AggAcc, AggKey, AggOrder, AggRow};
use crate::filter::Expr;
use crate::stats::{Order, Stat, StatAcc, StatKey, VALUE_COLUMNS, key_columns};
use flowsight_schema::{FIELDS, FlowBatch};
pub use flowsight_store::TimeRange;
use flowsight_store::{ScanReport, Store, StoreError};

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
    /// Matching flows, by start time, at most `limit`, with the totals of all of them.
    fn flows(
        &self,
        q: &Query,
        limit: Option<usize>,
    ) -> Result<(FlowBatch, Totals, ScanInfo), QueryError>;
}

/// The engine over the embedded store.
#[derive(Debug, Clone)]
pub struct Embedded {
    store: Store,
}

impl Embedded {
    /// Opens the store at `dir` for reading.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Embedded, QueryError> {
        Ok(Embedded {
            store: Store::open_read(dir)?,
        })
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

#[inline]
fn selected(q: &Query, b: &FlowBatch, i: usize) -> bool {
    q.range.contains(b.time_flow_start_ns[i]) && q.filter.matches(b, i)
}

impl Engine for Embedded {
    fn stat(
        &self,
        q: &Query,
        key: StatKey,
        order: Order,
        n: usize,
    ) -> Result<(Stat, ScanInfo), QueryError> {
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
        limit: Option<usize>,
    ) -> Result<(FlowBatch, Totals, ScanInfo), QueryError> {
        let all: Vec<&'static str> = FIELDS.iter().map(|f| f.name).collect();
        let out = self.store.scan(
            q.range,
            &all,
            || (FlowBatch::default(), Totals::EMPTY),
            |(acc, t), b| {
                let idx: Vec<u32> = (0..b.len())
                    .filter(|&i| selected(q, b, i))
                    .map(|i| i as u32)
                    .collect();
                for &i in &idx {
                    t.add(b, i as usize);
                }
                let mut sel = b.take(&idx);
                acc.append(&mut sel);
            },
        )?;
        let mut all = FlowBatch::default();
        let mut tot = Totals::EMPTY;
        for (mut b, t) in out.parts {
            all.append(&mut b);
            tot.merge(&t);
        }
        let mut idx: Vec<u32> = (0..all.len() as u32).collect();
        idx.sort_by_key(|&i| (all.time_flow_start_ns[i as usize], i));
        if let Some(l) = limit {
            idx.truncate(l);
        }
        Ok((all.take(&idx), tot, out.report))
    }
}
