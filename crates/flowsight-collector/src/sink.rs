//! The store thread (buffer, flush, retry) and the upkeep thread (compaction, retention,
//! template snapshots).

use crate::metrics::{Counters, Shared};
use crate::{RateLimit, Settings, now_ns};
use flowsight_schema::FlowBatch;
use flowsight_store::{CompactOptions, Prepared, Rollup, Store, Tier, WriteOptions};
use flowsight_wire::TemplateSnapshot;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows that trigger a flush before the interval is up: at high rates files are written
/// every half million flows, each taking a fraction of a second to encode.
const FLUSH_ROWS: usize = 512 * 1024;
/// Threads encoding and writing files, so accumulation never waits for one file's encoding
/// and two files can be encoded at once.
const WRITERS: usize = 2;
/// Files waiting for a writer; beyond this the store thread blocks (back-pressure to the
/// workers and, in the end, to the kernel buffer, whose drops are counted).
const WRITE_QUEUE: usize = 2;

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
        let closing = Arc::new(AtomicBool::new(false));
        let (wtx, wrx) = std::sync::mpsc::sync_channel::<(Prepared, Rollup)>(WRITE_QUEUE);
        let wrx = Arc::new(Mutex::new(wrx));
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let (store, shared, wrx, closing, queued) = (
                self.store.clone(),
                self.shared.clone(),
                wrx.clone(),
                closing.clone(),
                queued.clone(),
            );
            match crate::spawn(format!("fs-writer-{i}"), move || {
                writer(&store, &shared, &wrx, &closing, &queued);
            }) {
                Ok(h) => writers.push(h),
                Err(e) => tracing::error!(error = %e, "cannot start a store writer"),
            }
        }
        // The workers' batches, kept as they came (no concatenation copy).
        let mut pending: Vec<FlowBatch> = Vec::new();
        let mut pending_rows = 0usize;
        let mut oldest: Option<Instant> = None;
        let tick = (self.interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
        loop {
            let msg = rx.recv_timeout(tick);
            let done = matches!(msg, Err(RecvTimeoutError::Disconnected));
            if let Ok(b) = msg
                && !b.is_empty()
            {
                oldest.get_or_insert_with(Instant::now);
                pending_rows += b.len();
                pending.push(b);
            }
            c.store_pending_flows.store(
                pending_rows as u64 + queued.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            let due = oldest.is_some_and(|t| t.elapsed() >= self.interval);
            if pending_rows >= FLUSH_ROWS || (due || done) && pending_rows > 0 {
                // The 1-minute rollup of the same flows, written beside them.
                let mut rollup = Rollup::new(Tier::M1);
                for b in &pending {
                    rollup.add_batch(b);
                }
                let p = Prepared::from_batches(std::mem::take(&mut pending));
                pending_rows = 0;
                queued.fetch_add(p.rows() as u64, Ordering::Relaxed);
                if done {
                    closing.store(true, Ordering::SeqCst);
                }
                if wtx.send((p, rollup)).is_err() {
                    tracing::error!("store writers are gone; flows cannot be stored");
                }
                oldest = None;
            }
            if done {
                break;
            }
        }
        closing.store(true, Ordering::SeqCst);
        drop(wtx);
        for h in writers {
            let _ = h.join();
        }
    }
}

/// Writes queued files; a failing write (disk full, permissions) is retried every second
/// while the collector runs, and given up at shutdown.
fn writer(
    store: &Store,
    shared: &Shared,
    rx: &Mutex<Receiver<(Prepared, Rollup)>>,
    closing: &AtomicBool,
    queued: &std::sync::atomic::AtomicU64,
) {
    let c = &shared.counters;
    let opts = WriteOptions::default();
    let mut errors = RateLimit::default();
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((p, rollup)) = next else { return };
        loop {
            match store.write_prepared(&p, now_ns(), &opts) {
                Ok(_) => {
                    Counters::add(&c.stored_flows, p.rows() as u64);
                    Counters::add(&c.store_files, 1);
                    // A rollup that cannot be written is logged, not retried: the flows
                    // themselves are safe, and rollups are a summary of them.
                    if let Err(e) = store.write_rollup(&rollup, now_ns(), &opts) {
                        Counters::add(&c.store_errors, 1);
                        if let Some(s) = errors.allow() {
                            tracing::warn!(error = %e, suppressed = s, "cannot write a rollup file");
                        }
                    }
                    break;
                }
                Err(e) => {
                    Counters::add(&c.store_errors, 1);
                    if let Some(s) = errors.allow() {
                        tracing::error!(error = %e, suppressed = s, "cannot write flows to the store; keeping them and retrying");
                    }
                    if closing.load(Ordering::Relaxed) {
                        Counters::add(&c.store_dropped_flows, p.rows() as u64);
                        tracing::error!(
                            flows = p.rows(),
                            "flows lost at shutdown: the store cannot be written"
                        );
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        queued.fetch_sub(p.rows() as u64, Ordering::Relaxed);
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
                ..CompactOptions::default()
            },
            max_age: s.max_age,
            max_size: s.max_size,
        }
    }

    pub(crate) fn run(self) {
        let c = &self.shared.counters;
        let period = Duration::from_secs(10);
        let mut last = Instant::now();
        let mut last_reload_check = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            // Databases replaced on disk are picked up within seconds (the workers switch at
            // their next batch).
            if last_reload_check.elapsed() >= Duration::from_secs(2) {
                last_reload_check = Instant::now();
                if let Some(e) = &self.shared.enrich
                    && let Some(problems) = e.reload_if_changed()
                {
                    if problems.is_empty() {
                        Counters::add(&c.enrich_reloads, 1);
                        tracing::info!("enrichment databases reloaded");
                    } else {
                        Counters::add(&c.enrich_reload_errors, 1);
                        for p in problems {
                            tracing::warn!(error = %p, "enrichment reload refused; the previous databases stay in use");
                        }
                    }
                }
            }
            if last.elapsed() < period {
                continue;
            }
            last = Instant::now();
            if let Ok(s) = self.snapshots.lock() {
                crate::save_templates(&self.data, &s);
            }
            if let Err(e) = self.store.roll_up_tiers(now_ns(), &WriteOptions::default()) {
                tracing::warn!(error = %e, "5-minute/hourly rollups failed; will retry");
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
