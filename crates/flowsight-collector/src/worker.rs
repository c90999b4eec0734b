//! Decode workers: each owns a decoder (templates, sampling, sequences) for the exporters
//! hashed to it, and hands batches of flows to the store thread.

use crate::config::Prefix;
use crate::metrics::{Counters, ExporterStats, Shared};
use crate::queue::WorkerRx;
use crate::{RateLimit, Settings, worker_of};
use flowsight_schema::FlowBatch;
use flowsight_wire::{Decoder, DecoderConfig, TemplateSnapshot};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flows per batch handed to the store thread.
const HANDOFF_ROWS: usize = 16 * 1024;
/// A batch is handed over at least this often, so flows reach the store promptly.
const HANDOFF_AGE: Duration = Duration::from_millis(200);

pub(crate) struct WorkerCtx {
    id: usize,
    rx: WorkerRx,
    sink: SyncSender<FlowBatch>,
    shared: Arc<Shared>,
    snapshots: Arc<Mutex<Vec<TemplateSnapshot>>>,
    decoder: Decoder,
    allow: Vec<Prefix>,
    overrides: FxHashMap<IpAddr, u64>,
    enrich: Option<(
        Arc<flowsight_enrich::Shared>,
        u64,
        flowsight_enrich::Enricher,
    )>,
}

impl WorkerCtx {
    pub(crate) fn new(
        id: usize,
        s: &Settings,
        rx: WorkerRx,
        sink: SyncSender<FlowBatch>,
        shared: Arc<Shared>,
        snapshots: Arc<Mutex<Vec<TemplateSnapshot>>>,
        restore: &TemplateSnapshot,
    ) -> Self {
        let mut decoder = Decoder::new(DecoderConfig {
            templates: s.template_limits,
            ..DecoderConfig::default()
        });
        // Only this worker's exporters' templates: the others' go to their own workers.
        let mine = TemplateSnapshot {
            templates: restore
                .templates
                .iter()
                .filter(|(d, _)| worker_of(d.key.exporter, s.workers) == id)
                .cloned()
                .collect(),
        };
        let n = decoder.restore_templates(&mine);
        Counters::add(&shared.counters.templates_restored, n as u64);
        WorkerCtx {
            id,
            rx,
            sink,
            snapshots,
            decoder,
            allow: s.allow.clone(),
            overrides: s.sampling_overrides.iter().copied().collect(),
            enrich: shared.enrich.as_ref().map(|e| {
                (
                    e.clone(),
                    e.generation(),
                    flowsight_enrich::Enricher::new(e.current(), s.enrich.cache_entries),
                )
            }),
            shared,
        }
    }
}

pub(crate) fn run(mut w: WorkerCtx) {
    let mut batch = FlowBatch::default();
    let mut oldest: Option<Instant> = None;
    let mut stats: FxHashMap<IpAddr, ExporterStats> = FxHashMap::default();
    let mut last_publish = Instant::now();
    let mut last_snapshot = Instant::now();
    let mut errors = RateLimit::default();
    // Per datagram of a chunk: its flow count and outcome.
    let mut outcomes: Vec<(
        usize,
        Result<flowsight_wire::Format, flowsight_wire::DecodeError>,
    )> = Vec::new();
    let c = &w.shared.counters;
    loop {
        let msg = w.rx.rx.recv_timeout(Duration::from_millis(100));
        let done = matches!(msg, Err(RecvTimeoutError::Disconnected));
        if let Ok(chunk) = msg {
            let mut flows = 0u64;
            // The allowed datagrams, decoded in one go: consecutive data sets of a template
            // are decoded together across datagrams (`Decoder::decode_many`).
            let mut allowed = Vec::with_capacity(chunk.items.len());
            for it in &chunk.items {
                if w.allow.is_empty() || w.allow.iter().any(|p| p.contains(it.exporter)) {
                    allowed.push(it);
                } else {
                    Counters::add(&c.not_allowed, 1);
                }
            }
            let before = batch.len();
            w.decoder.decode_many(
                allowed.iter().map(|it| {
                    let data = &chunk.data[it.start as usize..(it.start + it.len) as usize];
                    (it.exporter, it.received_ns, data)
                }),
                &mut batch,
                |_, n, res| outcomes.push((n, res.map(|info| info.format))),
            );
            // Per exporter, datagram by datagram: the records are in `batch` in arrival order.
            let mut row = before;
            for (it, (n, res)) in allowed.iter().zip(outcomes.drain(..)) {
                flows += n as u64;
                let st = stats.entry(it.exporter).or_default();
                st.packets += 1;
                st.flows += n as u64;
                st.last_seen_ns = it.received_ns;
                match res {
                    Ok(format) => {
                        if st.format.is_empty() || st.format != format.name() {
                            st.format = format.name().to_string();
                        }
                    }
                    Err(e) => {
                        st.decode_errors += 1;
                        Counters::add(&c.decode_errors, 1);
                        if let Some(s) = errors.allow() {
                            tracing::warn!(exporter = %it.exporter, error = %e, suppressed = s, "decode error");
                        }
                    }
                }
                let rows = row..(row + n).min(batch.len());
                row = rows.end;
                if !rows.is_empty() {
                    if let Some(&rate) = w.overrides.get(&it.exporter) {
                        batch.sampling_rate[rows.clone()].fill(rate);
                    }
                    st.sampling_rate = batch.sampling_rate[rows.end - 1];
                    oldest.get_or_insert_with(Instant::now);
                }
            }
            Counters::add(&c.flows, flows);
            // Decoded: its bytes go back to the receive queue (the batch holds copies).
            w.rx.done(&chunk);
        }
        let due = oldest.is_some_and(|t| t.elapsed() >= HANDOFF_AGE);
        if batch.len() >= HANDOFF_ROWS || (due || done) && !batch.is_empty() {
            interface_names(&w.decoder, &mut batch);
            // Enrichment once per hand-off: one pass over the batch, cache-friendly.
            if let Some((shared, generation, e)) = &mut w.enrich {
                let g = shared.generation();
                if g != *generation {
                    e.set_databases(shared.current());
                    *generation = g;
                }
                e.enrich(&mut batch, 0);
                Counters::add(&c.enrich_cache_hits, std::mem::take(&mut e.hits));
                Counters::add(&c.enrich_cache_misses, std::mem::take(&mut e.misses));
                Counters::add(&c.enrich_errors, std::mem::take(&mut e.errors));
            }
            if w.sink.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
            // Room for a whole hand-off up front: growing by doubling would copy and fault
            // in fresh pages several times per batch.
            batch.reserve(HANDOFF_ROWS + 4096);
            oldest = None;
        }
        if done || last_publish.elapsed() >= Duration::from_millis(250) {
            publish(&w, &mut stats);
            last_publish = Instant::now();
        }
        if done || last_snapshot.elapsed() >= Duration::from_secs(10) {
            if let Ok(mut s) = w.snapshots.lock()
                && let Some(slot) = s.get_mut(w.id)
            {
                *slot = w.decoder.snapshot_templates();
            }
            last_snapshot = Instant::now();
        }
        if done {
            break;
        }
    }
}

/// Interface names and descriptions the exporters sent in options data (IPFIX/v9 IE 82/83).
fn interface_names(dec: &Decoder, b: &mut FlowBatch) {
    if !dec.has_interface_names() {
        return;
    }
    b.materialize(&["in_if_name", "out_if_name", "in_if_desc", "out_if_desc"]);
    for i in 0..b.len() {
        let exp = b.sampler_address[i];
        if let Some((n, d)) = dec.interface_name(&exp, b.in_if[i]) {
            b.in_if_name[i] = n;
            b.in_if_desc[i] = d;
        }
        if let Some((n, d)) = dec.interface_name(&exp, b.out_if[i]) {
            b.out_if_name[i] = n;
            b.out_if_desc[i] = d;
        }
    }
}

fn publish(w: &WorkerCtx, stats: &mut FxHashMap<IpAddr, ExporterStats>) {
    let mut lost: FxHashMap<IpAddr, (u64, u64)> = FxHashMap::default();
    for (k, s) in w.decoder.sequences().iter() {
        let e = lost.entry(k.exporter).or_default();
        e.0 += s.lost;
        e.1 += s.resets;
    }
    for (ip, st) in stats.iter_mut() {
        let (l, r) = lost.get(ip).copied().unwrap_or_default();
        st.sequence_lost = l;
        st.sequence_resets = r;
        st.templates = w.decoder.exporter_template_count(*ip) as u64;
    }
    if let Ok(mut m) = w.shared.exporters.lock() {
        for (ip, st) in stats.iter() {
            m.insert(*ip, st.clone());
        }
    }
    if let Ok(mut d) = w.shared.decoders.lock() {
        if d.len() <= w.id {
            d.resize(w.id + 1, flowsight_wire::DecodeStats::default());
        }
        d[w.id] = w.decoder.stats().clone();
    }
}
