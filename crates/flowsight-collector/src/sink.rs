//! The store thread (buffer, flush, retry) and the upkeep thread (compaction, retention,
//! template snapshots).

use crate::metrics::{Counters, Shared};
use crate::{RateLimit, Settings, now_ns};
use flowsight_schema::FlowBatch;
use flowsight_store::{CompactOptions, Prepared, Store, WriteOptions};
use flowsight_wire::TemplateSnapshot;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows that trigger a flush before the interval is up (bounds memory at high rates).
const FLUSH_ROWS: usize = 1 << 20;
/// Rows kept for retry while the store fails; beyond this the oldest are dropped (counted).
const RETRY_ROWS: usize = 16 << 20;

pub(crate) struct Sink {
    store: Store,
    interval: Duration,
    shared: Arc<Shared>,
}

impl Sink {
    pub(crate) fn new(store: Store, s: &Settings, shared: Arc<Shared>) -> Self {
        Sink {
            store,
            interval: s.flush_interval,
            shared,
        }
    }

    pub(crate) fn run(self, rx: Receiver<FlowBatch>) {
        let c = &self.shared.counters;
        let opts = WriteOptions::default();
        let mut pending = FlowBatch::default();
        let mut oldest: Option<Instant> = None;
        let mut retry: Vec<Prepared> = Vec::new();
        let mut errors = RateLimit::default();
        let tick = (self.interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
        loop {
            let msg = rx.recv_timeout(tick);
            let done = matches!(msg, Err(RecvTimeoutError::Disconnected));
            if let Ok(mut b) = msg
                && !b.is_empty()
            {
                oldest.get_or_insert_with(Instant::now);
                pending.append(&mut b);
            }
            c.store_pending_flows.store(
                (pending.len() + retry.iter().map(Prepared::rows).sum::<usize>()) as u64,
                Ordering::Relaxed,
            );
            let due = oldest.is_some_and(|t| t.elapsed() >= self.interval);
            if pending.len() >= FLUSH_ROWS || (due || done) && !pending.is_empty() {
                retry.push(Prepared::new(std::mem::take(&mut pending)));
                oldest = None;
            }
            // Write everything waiting, oldest first; stop at the first failure and retry
            // on the next tick.
            while let Some(p) = retry.first() {
                match self.store.write_prepared(p, now_ns(), &opts) {
                    Ok(_) => {
                        Counters::add(&c.stored_flows, p.rows() as u64);
                        Counters::add(&c.store_files, 1);
                        retry.remove(0);
                    }
                    Err(e) => {
                        Counters::add(&c.store_errors, 1);
                        if let Some(s) = errors.allow() {
                            tracing::error!(error = %e, suppressed = s, "cannot write flows to the store; keeping them in memory and retrying");
                        }
                        let held: usize = retry.iter().map(Prepared::rows).sum();
                        if held > RETRY_ROWS {
                            let lost = retry.remove(0);
                            Counters::add(&c.store_dropped_flows, lost.rows() as u64);
                        }
                        if !done {
                            break;
                        }
                        // At shutdown, give up after one more failure rather than hang.
                        let lost: usize = retry.drain(..).map(|p| p.rows()).sum();
                        Counters::add(&c.store_dropped_flows, lost as u64);
                        tracing::error!(
                            flows = lost,
                            "flows lost at shutdown: the store cannot be written"
                        );
                    }
                }
            }
            if done {
                break;
            }
        }
    }
}

pub(crate) struct Upkeep {
    store: Store,
    shared: Arc<Shared>,
    snapshots: Arc<Mutex<Vec<TemplateSnapshot>>>,
    stop: Arc<AtomicBool>,
    data: PathBuf,
    compact: CompactOptions,
    max_age: Option<Duration>,
    max_size: Option<u64>,
}

impl Upkeep {
    pub(crate) fn new(
        store: Store,
        s: &Settings,
        shared: Arc<Shared>,
        snapshots: Arc<Mutex<Vec<TemplateSnapshot>>>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Upkeep {
            store,
            shared,
            snapshots,
            stop,
            data: s.data.clone(),
            compact: CompactOptions {
                min_age_ns: s.compact_after.as_nanos() as u64,
                target_rows: s.compact_rows,
                write: WriteOptions::default(),
            },
            max_age: s.max_age,
            max_size: s.max_size,
        }
    }

    pub(crate) fn run(self) {
        let c = &self.shared.counters;
        let period = Duration::from_secs(10);
        let mut last = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() < period {
                continue;
            }
            last = Instant::now();
            if let Ok(s) = self.snapshots.lock() {
                crate::save_templates(&self.data, &s);
            }
            match flowsight_store::compact(&self.store, &self.compact, now_ns()) {
                Ok(r) => Counters::add(&c.compacted_files, r.inputs as u64),
                Err(e) => tracing::warn!(error = %e, "compaction failed; will retry"),
            }
            let age = self.max_age.map(|d| d.as_nanos() as u64);
            if age.is_some() || self.max_size.is_some() {
                match flowsight_store::enforce_retention(&self.store, age, self.max_size, now_ns())
                {
                    Ok(r) => {
                        if r.files > 0 {
                            tracing::info!(
                                files = r.files,
                                bytes = r.bytes,
                                flows = r.rows,
                                "retention removed old flows"
                            );
                        }
                        Counters::add(&c.retention_deleted_files, r.files as u64);
                    }
                    Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
                }
            }
        }
    }
}
