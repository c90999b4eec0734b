//! Pure wire formats of flowsight: decoders and encoders for NetFlow v1/v5/v7, NetFlow v9
//! (RFC 3954), IPFIX (RFC 7011/7012) and sFlow v5, with the v9/IPFIX template engine,
//! sampling and sequence tracking. No I/O, no async runtime: bytes in, columns out.
//!
//! Decoders are hand-written rather than taken from a crate: this is the collector's hot path,
//! and decoding straight into [`FlowBatch`] columns through compiled template plans is several
//! times faster than building per-record maps (see `BENCHMARKS.md`).
//!
//! ```
//! use flowsight_wire::{Decoder, LegacyHeader, encode_legacy};
//! use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip};
//!
//! // Make a NetFlow v5 packet with one flow, then decode it.
//! let rec = FlowRecord {
//!     src_addr: addr_from_ip("192.0.2.1".parse().unwrap()),
//!     dst_addr: addr_from_ip("198.51.100.7".parse().unwrap()),
//!     bytes: 1500, packets: 3, proto: 6, dst_port: 443,
//!     ..FlowRecord::default()
//! };
//! let hdr = LegacyHeader { unix_secs: 1_700_000_000, sys_uptime_ms: 60_000, ..Default::default() };
//! let mut pkt = Vec::new();
//! encode_legacy(5, &hdr, &[rec], &mut pkt);
//!
//! let mut dec = Decoder::default();
//! let mut batch = FlowBatch::default();
//! let info = dec.decode("10.0.0.1".parse().unwrap(), 0, &pkt, &mut batch).unwrap();
//! assert_eq!(info.flows, 1);
//! assert_eq!(batch.bytes[0], 1500);
//!
//! // A collector hands over each receive batch at once: data sets of one v9/IPFIX template
//! // are then decoded together across datagrams, and every record is in `out` on return.
//! let mut out = FlowBatch::default();
//! let datagrams = [pkt.as_slice(), pkt.as_slice()];
//! let exporter = "10.0.0.1".parse().unwrap();
//! dec.decode_many(datagrams.iter().map(|d| (exporter, 0, *d)), &mut out, |i, flows, res| {
//!     assert!(res.is_ok() && flows == 1, "datagram {i}");
//! });
//! assert_eq!(out.len(), 2);
//! ```

mod columnar;
mod encode;
mod error;
pub mod ie;
mod legacy;
pub mod packet;
mod reader;
pub mod sequence;
pub mod sflow;
pub mod template;
mod templated;

pub use encode::{ExportEncoder, IpfixEncoder, IpfixTime, LegacyEncoder, V9Encoder};
pub use error::{DecodeError, Format};
pub use legacy::{LegacyHeader, encode_legacy};
pub use sequence::{Numbering, SeqKey, SeqOutcome, SeqState, SequenceTracker};
pub use sflow::{IfCounters, SflowEncoder};
pub use template::{TemplateDef, TemplateKey, TemplateLimits, TemplateProto, TemplateSnapshot};
pub use templated::IpfixStream;

use flowsight_schema::FlowBatch;
use reader::{u16_at, u32_at};
use std::net::IpAddr;

/// Decoder settings. Every limit bounds memory whatever exporters send.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct DecoderConfig {
    /// Template limits and idle expiry.
    pub templates: TemplateLimits,
    /// Bytes of data sets held while their template is unknown.
    pub pending_max_bytes: usize,
    /// How long (ns) such sets are held before being dropped.
    pub pending_max_age_ns: u64,
    /// Sequence scopes tracked.
    pub max_sequence_scopes: usize,
    /// Sampling-rate entries learned from options data.
    pub max_sampling_entries: usize,
    /// sFlow counter records buffered until [`Decoder::take_counters`].
    pub max_counter_records: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            templates: TemplateLimits::default(),
            pending_max_bytes: 4 << 20,
            pending_max_age_ns: 120 * 1_000_000_000,
            max_sequence_scopes: 65_536,
            max_sampling_entries: 65_536,
            max_counter_records: 100_000,
        }
    }
}

/// Counters of one format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FormatCounts {
    /// Datagrams / messages decoded (also partly).
    pub packets: u64,
    /// Flow records produced.
    pub flows: u64,
}

/// Decoder counters: what was decoded, and everything that was not, by cause.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Per format, indexed like [`Format::ALL`].
    pub formats: [FormatCounts; 6],
    /// Datagrams that failed to decode (wholly or partly), by [`DecodeError::kind`].
    pub errors: u64,
    /// Options data records (sampling, system init time, ...).
    pub options_records: u64,
    /// Templates learned for the first time.
    pub templates_learned: u64,
    /// Templates redefined with different fields.
    pub templates_redefined: u64,
    /// Templates withdrawn by the exporter (IPFIX).
    pub templates_withdrawn: u64,
    /// Templates expired after the idle timeout.
    pub templates_expired: u64,
    /// Templates rejected (limits, malformed).
    pub templates_rejected: u64,
    /// Data sets that arrived before their template.
    pub unknown_template_sets: u64,
    /// Of those, decoded once the template came.
    pub pending_decoded_sets: u64,
    /// Of those, dropped (buffer full or too old).
    pub pending_dropped_sets: u64,
    /// Bytes of the dropped sets.
    pub pending_dropped_bytes: u64,
    /// Sets with a reserved id (v9 2-255, IPFIX 0-1 and 4-255), skipped.
    pub reserved_sets: u64,
    /// sFlow counter samples.
    pub sflow_counter_samples: u64,
    /// sFlow samples of unknown or enterprise formats, skipped.
    pub sflow_unknown_samples: u64,
    /// sFlow counter records dropped because the buffer was full.
    pub sflow_counters_dropped: u64,
}

impl DecodeStats {
    /// Counts of one format.
    pub fn format(&self, f: Format) -> FormatCounts {
        self.formats[Format::ALL.iter().position(|x| *x == f).unwrap_or(0)]
    }
}

/// What one datagram gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramInfo {
    /// Its format.
    pub format: Format,
    /// Flow records appended to the batch (including held data now decoded).
    pub flows: usize,
}

/// Detects the export format of a datagram from its first bytes.
pub fn detect(data: &[u8]) -> Option<Format> {
    match u16_at(data, 0)? {
        1 => Some(Format::NetflowV1),
        5 => Some(Format::NetflowV5),
        7 => Some(Format::NetflowV7),
        9 => Some(Format::NetflowV9),
        10 => Some(Format::Ipfix),
        0 if u32_at(data, 0) == Some(5) => Some(Format::Sflow5),
        _ => None,
    }
}

/// Stateful decoder for every format: holds templates, sampling rates and sequence state of
/// every exporter it has seen. One decoder per collector worker; exporters must always reach
/// the same decoder so their templates stay coherent.
#[derive(Debug)]
pub struct Decoder {
    cfg: DecoderConfig,
    pub(crate) templates: template::TemplateCache,
    pub(crate) pending: template::PendingBuffer,
    pub(crate) sampling: template::SamplingTable,
    pub(crate) seq: SequenceTracker,
    pub(crate) stats: DecodeStats,
    pub(crate) counters: Vec<IfCounters>,
    pub(crate) last_msg_data_records: usize,
    pub(crate) last_msg_flow_records: usize,
    last_expiry_ns: u64,
    /// Fixed-length data records not decoded yet, one run per template (see
    /// `columnar::Run`); a run whose `segs` is empty is closed, its buffers kept for reuse.
    pub(crate) runs: Vec<columnar::Run>,
    /// Data sets that joined a run so far (their arrival ranks).
    pub(crate) arrivals: u64,
    /// Scratch for putting several runs' records back in arrival order.
    pub(crate) placed: Vec<(u64, usize, usize)>,
    /// Inside [`Decoder::decode_many`]: runs span datagrams.
    defer: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder {
            cfg,
            templates: template::TemplateCache::new(cfg.templates),
            pending: template::PendingBuffer {
                max_bytes: cfg.pending_max_bytes,
                max_age_ns: cfg.pending_max_age_ns,
                ..Default::default()
            },
            sampling: template::SamplingTable {
                max_entries: cfg.max_sampling_entries,
                ..Default::default()
            },
            seq: SequenceTracker::new(cfg.max_sequence_scopes),
            stats: DecodeStats::default(),
            counters: Vec::new(),
            last_msg_data_records: 0,
            last_msg_flow_records: 0,
            last_expiry_ns: 0,
            runs: Vec::new(),
            arrivals: 0,
            placed: Vec::new(),
            defer: false,
        }
    }

    /// Decodes one datagram (or one IPFIX message from a stream) from `exporter`, received
    /// at `received_ns` (Unix ns), appending its flows to `out`. On error the flows decoded
    /// before the fault stay in `out`, and the error says where decoding stopped.
    pub fn decode(
        &mut self,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DatagramInfo, DecodeError> {
        self.decode_counted(exporter, received_ns, data, out).1
    }

    /// [`Decoder::decode`], also giving the datagram's flow count when it fails part way.
    fn decode_counted(
        &mut self,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> (usize, Result<DatagramInfo, DecodeError>) {
        self.maybe_expire(received_ns);
        let Some(format) = detect(data) else {
            self.stats.errors += 1;
            if data.len() < 4 {
                return (
                    0,
                    Err(DecodeError::Truncated {
                        format: Format::NetflowV5,
                        exporter,
                        offset: 0,
                        need: 4,
                        have: data.len(),
                        what: "version field",
                    }),
                );
            }
            return (
                0,
                Err(DecodeError::UnknownVersion {
                    exporter,
                    version: u16_at(data, 0).map_or(0, |v| v as u32),
                }),
            );
        };
        let before = out.len();
        let held_before = self.run_rows();
        if !matches!(format, Format::NetflowV9 | Format::Ipfix) {
            // Records go to `out` in arrival order: held ones first.
            self.flush_run(out);
        }
        let res = match format {
            Format::NetflowV1 => self.decode_legacy(1, exporter, received_ns, data, out),
            Format::NetflowV5 => self.decode_legacy(5, exporter, received_ns, data, out),
            Format::NetflowV7 => self.decode_legacy(7, exporter, received_ns, data, out),
            Format::NetflowV9 => self.decode_v9(exporter, received_ns, data, out),
            Format::Ipfix => self.decode_ipfix(exporter, received_ns, data, out),
            Format::Sflow5 => self.decode_sflow(exporter, received_ns, data, out),
        };
        if !self.defer {
            self.flush_run(out);
        }
        let idx = Format::ALL.iter().position(|x| *x == format).unwrap_or(0);
        // This datagram's flows: those appended, less the held ones of earlier datagrams
        // that went out with them, plus its own still held.
        let flows = (out.len() - before + self.run_rows()).saturating_sub(held_before);
        self.stats.formats[idx].packets += 1;
        self.stats.formats[idx].flows += flows as u64;
        match res {
            Ok(_) => (flows, Ok(DatagramInfo { format, flows })),
            Err(e) => {
                self.stats.errors += 1;
                (flows, Err(e))
            }
        }
    }

    /// Decodes datagrams in arrival order, as [`Decoder::decode`] one at a time would, and
    /// calls `each(i, flows, outcome)` for the `i`-th, `flows` being its flow count (also
    /// when it failed part way). The data sets of an exporter's templates are decoded
    /// together, one run per template, even across datagrams: that costs far less per
    /// record when sets are small or the templates alternate (the collector hands over its
    /// receive batches this way). Every record is in `out`, in arrival order, when this
    /// returns.
    pub fn decode_many<'a>(
        &mut self,
        datagrams: impl IntoIterator<Item = (IpAddr, u64, &'a [u8])>,
        out: &mut FlowBatch,
        mut each: impl FnMut(usize, usize, Result<DatagramInfo, DecodeError>),
    ) {
        self.defer = true;
        for (i, (exporter, received_ns, data)) in datagrams.into_iter().enumerate() {
            let (flows, res) = self.decode_counted(exporter, received_ns, data, out);
            each(i, flows, res);
        }
        self.defer = false;
        self.flush_run(out);
    }

    /// Records held in the open runs.
    fn run_rows(&self) -> usize {
        self.runs.iter().map(|r| r.rows()).sum()
    }

    fn maybe_expire(&mut self, now_ns: u64) {
        if now_ns < self.last_expiry_ns.saturating_add(1_000_000_000) {
            return;
        }
        self.last_expiry_ns = now_ns;
        self.stats.templates_expired += self.templates.expire(now_ns) as u64;
        let (sets, bytes) = self.pending.expire(now_ns);
        self.stats.pending_dropped_sets += sets;
        self.stats.pending_dropped_bytes += bytes;
    }

    /// Drops every held data set whose template never came (call at the end of a capture)
    /// and counts them as dropped.
    pub fn flush_pending(&mut self) {
        let (sets, bytes) = self.pending.expire(u64::MAX);
        self.stats.pending_dropped_sets += sets;
        self.stats.pending_dropped_bytes += bytes;
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Sequence state of every scope (exporter, domain, format).
    pub fn sequences(&self) -> &SequenceTracker {
        &self.seq
    }

    /// Number of templates held.
    pub fn template_count(&self) -> usize {
        self.templates.map.len()
    }

    /// Templates held for one exporter (all its domains).
    pub fn exporter_template_count(&self, exporter: IpAddr) -> usize {
        self.templates
            .per_exporter
            .get(&exporter)
            .copied()
            .unwrap_or(0)
    }

    /// Data sets held waiting for their template.
    pub fn pending_sets(&self) -> usize {
        self.pending.sets.len()
    }

    /// Name and description symbols ([`flowsight_schema::sym`]) an exporter's interface
    /// options data gave for `if_index` (0: not given).
    pub fn interface_name(
        &self,
        exporter: &flowsight_schema::Addr,
        if_index: u32,
    ) -> Option<(u32, u32)> {
        if self.sampling.interfaces.is_empty() {
            return None;
        }
        self.sampling
            .interfaces
            .get(&(*exporter, if_index))
            .copied()
    }

    /// Whether any exporter sent interface names.
    pub fn has_interface_names(&self) -> bool {
        !self.sampling.interfaces.is_empty()
    }

    /// The sampling rate learned from options data for an exporter's domain, if any.
    pub fn sampling_rate(&self, exporter: IpAddr, domain: u32) -> Option<u64> {
        self.sampling.rate(exporter, domain, template::ANY_SAMPLER)
    }

    /// A serializable image of all templates (persist it; restore with
    /// [`Decoder::restore_templates`]).
    pub fn snapshot_templates(&self) -> TemplateSnapshot {
        self.templates.snapshot()
    }

    /// Restores templates from a snapshot; returns how many were accepted (limits apply).
    pub fn restore_templates(&mut self, snap: &TemplateSnapshot) -> usize {
        snap.templates
            .iter()
            .filter(|(def, seen)| self.templates.insert(def.clone(), *seen).is_ok())
            .count()
    }

    /// Takes the sFlow interface counter records decoded so far.
    pub fn take_counters(&mut self) -> Vec<IfCounters> {
        std::mem::take(&mut self.counters)
    }
}
