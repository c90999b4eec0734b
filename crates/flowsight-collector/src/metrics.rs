//! Collector self-statistics: global counters (atomics, updated on the hot path without
//! locks), per-exporter statistics (published by each worker four times a second), and their
//! Prometheus text rendering.

use rustc_hash::FxHashMap;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Global counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams (UDP) or messages (streams) received.
    pub datagrams: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Flow records decoded.
    pub flows: AtomicU64,
    /// Datagrams that failed to decode (partly or wholly).
    pub decode_errors: AtomicU64,
    /// Datagrams from exporters outside the allow-list.
    pub not_allowed: AtomicU64,
    /// Datagrams the kernel dropped because the socket buffer was full (`SO_RXQ_OVFL`).
    pub kernel_drops: AtomicU64,
    /// UDP receives that carried several datagrams of one exporter (UDP GRO).
    pub udp_gro_receives: AtomicU64,
    /// Bytes of datagrams waiting for a decode worker (bounded by `receive_queue`).
    pub receive_queue_bytes: AtomicU64,
    /// Flows written to the store.
    pub stored_flows: AtomicU64,
    /// Files written by flushes.
    pub store_files: AtomicU64,
    /// Flushes that failed (flows kept for the next attempt).
    pub store_errors: AtomicU64,
    /// Flows dropped because the store kept failing and the buffer limit was reached.
    pub store_dropped_flows: AtomicU64,
    /// Flows waiting in memory for the next flush.
    pub store_pending_flows: AtomicU64,
    /// Files merged by compaction.
    pub compacted_files: AtomicU64,
    /// Files deleted by retention.
    pub retention_deleted_files: AtomicU64,
    /// Stream (TCP/TLS/SCTP) connections accepted.
    pub stream_connections: AtomicU64,
    /// Stream connections closed because of a framing or TLS error.
    pub stream_errors: AtomicU64,
    /// Templates restored from the snapshot at start.
    pub templates_restored: AtomicU64,
    /// Address enrichment lookups served by the workers' caches.
    pub enrich_cache_hits: AtomicU64,
    /// Address enrichment lookups that went to the databases.
    pub enrich_cache_misses: AtomicU64,
    /// Damaged database records met during enrichment.
    pub enrich_errors: AtomicU64,
    /// Enrichment database reloads (a configured file changed).
    pub enrich_reloads: AtomicU64,
    /// Enrichment reloads refused because a file was damaged (previous data kept).
    pub enrich_reload_errors: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Statistics of one exporter.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ExporterStats {
    /// Datagrams / messages received.
    pub packets: u64,
    /// Flow records decoded.
    pub flows: u64,
    /// Datagrams that failed to decode.
    pub decode_errors: u64,
    /// Units estimated lost from sequence numbers (sum over its domains and formats).
    pub sequence_lost: u64,
    /// Sequence resets (exporter restarts).
    pub sequence_resets: u64,
    /// Templates held.
    pub templates: u64,
    /// Last datagram, ns since the epoch.
    pub last_seen_ns: u64,
    /// The most recent sampling rate seen in its flows (0: unsampled/unknown).
    pub sampling_rate: u64,
    /// Format of its most recent datagram (`NETFLOW_V9`, `IPFIX`, ...).
    pub format: String,
}

/// Everything the HTTP side reads.
#[derive(Debug, Default)]
pub struct Shared {
    /// Global counters.
    pub counters: Counters,
    /// Per-exporter statistics, keyed by exporter address.
    pub exporters: Mutex<FxHashMap<IpAddr, ExporterStats>>,
    /// Decoder counters per worker (templates learned, pending sets, ...).
    pub decoders: Mutex<Vec<flowsight_wire::DecodeStats>>,
    /// Enrichment databases in use (absent: enrichment off).
    pub enrich: Option<Arc<flowsight_enrich::Shared>>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Shared {
    /// A copy of the per-exporter statistics, sorted by address.
    pub fn exporters(&self) -> Vec<(IpAddr, ExporterStats)> {
        let mut v: Vec<_> = self
            .exporters
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let c = &self.counters;
        let mut s = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP flowsight_{name} {help}");
            let _ = writeln!(s, "# TYPE flowsight_{name} {kind}");
            let _ = writeln!(s, "flowsight_{name} {v}");
        };
        metric(
            "datagrams_total",
            "counter",
            "Datagrams or stream messages received.",
            g(&c.datagrams),
        );
        metric(
            "received_bytes_total",
            "counter",
            "Payload bytes received.",
            g(&c.bytes),
        );
        metric(
            "flows_total",
            "counter",
            "Flow records decoded.",
            g(&c.flows),
        );
        metric(
            "decode_errors_total",
            "counter",
            "Datagrams that failed to decode.",
            g(&c.decode_errors),
        );
        metric(
            "not_allowed_total",
            "counter",
            "Datagrams from exporters outside the allow-list.",
            g(&c.not_allowed),
        );
        metric(
            "kernel_drops_total",
            "counter",
            "Datagrams dropped by the kernel (socket buffer full, SO_RXQ_OVFL).",
            g(&c.kernel_drops),
        );
        metric(
            "udp_gro_receives_total",
            "counter",
            "UDP receives that carried several datagrams of one exporter (UDP GRO).",
            g(&c.udp_gro_receives),
        );
        metric(
            "stored_flows_total",
            "counter",
            "Flows written to the store.",
            g(&c.stored_flows),
        );
        metric(
            "store_files_total",
            "counter",
            "Files written by flushes.",
            g(&c.store_files),
        );
        metric(
            "store_errors_total",
            "counter",
            "Flushes that failed (flows kept for retry).",
            g(&c.store_errors),
        );
        metric(
            "store_dropped_flows_total",
            "counter",
            "Flows dropped after repeated store failures.",
            g(&c.store_dropped_flows),
        );
        metric(
            "receive_queue_bytes",
            "gauge",
            "Bytes of datagrams received and waiting for a decode worker.",
            g(&c.receive_queue_bytes),
        );
        metric(
            "store_pending_flows",
            "gauge",
            "Flows buffered in memory for the next flush.",
            g(&c.store_pending_flows),
        );
        metric(
            "compacted_files_total",
            "counter",
            "Files merged by compaction.",
            g(&c.compacted_files),
        );
        metric(
            "retention_deleted_files_total",
            "counter",
            "Files deleted by retention.",
            g(&c.retention_deleted_files),
        );
        metric(
            "stream_connections_total",
            "counter",
            "IPFIX stream connections accepted.",
            g(&c.stream_connections),
        );
        metric(
            "stream_errors_total",
            "counter",
            "IPFIX stream connections closed on error.",
            g(&c.stream_errors),
        );
        metric(
            "templates_restored_total",
            "counter",
            "Templates restored from the snapshot at start.",
            g(&c.templates_restored),
        );
        metric(
            "enrich_cache_hits_total",
            "counter",
            "Address enrichment lookups served by the workers' caches.",
            g(&c.enrich_cache_hits),
        );
        metric(
            "enrich_cache_misses_total",
            "counter",
            "Address enrichment lookups that went to the databases.",
            g(&c.enrich_cache_misses),
        );
        metric(
            "enrich_errors_total",
            "counter",
            "Damaged database records met during enrichment.",
            g(&c.enrich_errors),
        );
        metric(
            "enrich_reloads_total",
            "counter",
            "Enrichment database reloads after a file changed.",
            g(&c.enrich_reloads),
        );
        metric(
            "enrich_reload_errors_total",
            "counter",
            "Enrichment reloads refused because a file was damaged (previous data kept).",
            g(&c.enrich_reload_errors),
        );
        if let Ok(d) = self.decoders.lock() {
            let sum =
                |f: &dyn Fn(&flowsight_wire::DecodeStats) -> u64| d.iter().map(f).sum::<u64>();
            metric(
                "templates_learned_total",
                "counter",
                "Templates learned.",
                sum(&|x| x.templates_learned),
            );
            metric(
                "templates_withdrawn_total",
                "counter",
                "Templates withdrawn by exporters.",
                sum(&|x| x.templates_withdrawn),
            );
            metric(
                "templates_expired_total",
                "counter",
                "Templates dropped after the idle timeout.",
                sum(&|x| x.templates_expired),
            );
            metric(
                "templates_rejected_total",
                "counter",
                "Templates rejected (limits, malformed).",
                sum(&|x| x.templates_rejected),
            );
            metric(
                "unknown_template_sets_total",
                "counter",
                "Data sets that arrived before their template.",
                sum(&|x| x.unknown_template_sets),
            );
            metric(
                "pending_dropped_sets_total",
                "counter",
                "Held data sets dropped because their template never came.",
                sum(&|x| x.pending_dropped_sets),
            );
        }
        let ex = self.exporters();
        let per = [
            (
                "exporter_packets_total",
                "counter",
                "Datagrams received per exporter.",
            ),
            (
                "exporter_flows_total",
                "counter",
                "Flows decoded per exporter.",
            ),
            (
                "exporter_decode_errors_total",
                "counter",
                "Decode errors per exporter.",
            ),
            (
                "exporter_sequence_lost_total",
                "counter",
                "Units estimated lost from sequence numbers, per exporter.",
            ),
            (
                "exporter_templates",
                "gauge",
                "Templates held per exporter.",
            ),
            (
                "exporter_last_seen_seconds",
                "gauge",
                "Last datagram per exporter, Unix seconds.",
            ),
            (
                "exporter_sampling_rate",
                "gauge",
                "Most recent sampling rate per exporter.",
            ),
        ];
        for (i, (name, kind, help)) in per.iter().enumerate() {
            let _ = writeln!(s, "# HELP flowsight_{name} {help}");
            let _ = writeln!(s, "# TYPE flowsight_{name} {kind}");
            for (ip, e) in &ex {
                let v = match i {
                    0 => e.packets,
                    1 => e.flows,
                    2 => e.decode_errors,
                    3 => e.sequence_lost,
                    4 => e.templates,
                    5 => e.last_seen_ns / 1_000_000_000,
                    _ => e.sampling_rate,
                };
                let _ = writeln!(
                    s,
                    "flowsight_{name}{{exporter=\"{}\",format=\"{}\"}} {v}",
                    esc(&ip.to_string()),
                    esc(&e.format)
                );
            }
        }
        s
    }
}
