//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) messages: headers, template sets, options
//! template sets and data sets, decoded through the template engine.

use crate::Decoder;
use crate::error::{DecodeError, Format};
use crate::ie::{Scratch, apply, finalize};
use crate::reader::{u8_at, u16_at, u32_at};
use crate::sequence::SeqKey;
use crate::template::{
    ANY_SAMPLER, FieldSpec, Insert, PendingSet, Plan, SamplingTable, TemplateDef, TemplateKey,
    TemplateProto, VARIABLE_LENGTH,
};
use flowsight_schema::{FlowBatch, FlowRecord};
use std::net::IpAddr;

/// Bytes of records a run holds before it is decoded. Small enough that the run's rows in
/// the batch (~300 bytes a flow over ~45 columns, first filled with defaults and then
/// overwritten field by field) stay in L2 between the passes: 32 KiB of IPFIX records
/// decoded ~25% faster than 256 KiB (`cargo bench -p flowsight-wire --bench decode`,
/// three alternating runs each). Large enough that the per-run costs stay small.
const RUN_MAX_BYTES: usize = 32 << 10;

/// Runs open at once (one per template of an exporter). Exporters interleave the data sets
/// of their templates (IPv4 and IPv6 records alternate within a datagram), which would end
/// a single run every few records; with one run per template each gathers ~300 records,
/// and the per-run costs (~45 columns filled, every field dispatched) are paid that much
/// less often. At most this many times `RUN_MAX_BYTES` is held.
const MAX_RUNS: usize = 4;

/// Decodes the records of the open runs into `out`, in arrival order (fields, not
/// `&mut Decoder`, so a template borrowed from the cache can stay borrowed). Several open
/// runs are decoded one after the other, then their data sets' rows are put back in the
/// order the sets arrived: files keep nearly sorted times (grouped by template, IPFIX
/// files took 18.2 bytes a flow instead of 17.1, their delta-coded times jumping back at
/// every run), and each datagram's records stay together.
fn flush_runs(
    runs: &mut [crate::columnar::Run],
    sampling: &SamplingTable,
    out: &mut FlowBatch,
    placed: &mut Vec<(u64, usize, usize)>,
) {
    let open = runs.iter().filter(|r| !r.segs.is_empty()).count();
    if open <= 1 {
        for r in runs.iter_mut().filter(|r| !r.segs.is_empty()) {
            r.flush(sampling, out, None);
        }
        return;
    }
    let start = out.len();
    placed.clear();
    for r in runs.iter_mut().filter(|r| !r.segs.is_empty()) {
        let at = out.len() - start;
        let first = placed.len();
        r.flush(sampling, out, Some(placed));
        for p in &mut placed[first..] {
            p.1 += at;
        }
    }
    if !placed.is_sorted_by_key(|p| p.0) {
        placed.sort_unstable_by_key(|p| p.0);
        // Sets that follow each other in the decoded rows too move as one block.
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(placed.len());
        for &(_, off, rows) in placed.iter() {
            match ranges.last_mut() {
                Some((o, n)) if *o + *n == off => *n += rows,
                _ => ranges.push((off, rows)),
            }
        }
        out.reorder_tail(start, &ranges);
    }
}

/// What a data set needs from its message header to be decoded, now or later.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgHeader {
    pub proto: TemplateProto,
    pub exporter: IpAddr,
    pub domain: u32,
    pub seq: u32,
    pub export_ns: u64,
    /// v9 header sysUpTime (ms); IPFIX has none.
    pub uptime_ms: Option<u32>,
    pub received_ns: u64,
}

impl MsgHeader {
    fn format(&self) -> Format {
        match self.proto {
            TemplateProto::V9 => Format::NetflowV9,
            TemplateProto::Ipfix => Format::Ipfix,
        }
    }
}

/// Decodes the records of one data set with a compiled plan. Returns (data records, options
/// records, truncated): options records update `sampling` instead of producing flows.
pub(crate) fn decode_records(
    plan: &Plan,
    options: bool,
    hdr: &MsgHeader,
    body: &[u8],
    sampling: &mut SamplingTable,
    out: &mut FlowBatch,
) -> (usize, usize, bool) {
    let exporter = hdr.exporter;
    // The set's header and the exporter's options state, looked up once for both paths.
    let seg = crate::columnar::Segment::new(hdr, 0, sampling);
    let base = crate::columnar::base_record(hdr, seg.sampling_rate);
    let sys_init = seg.sys_init;
    let mut n = 0usize;
    let mut truncated = false;

    let mut emit = |rec: &mut FlowRecord, sc: &Scratch, sampling: &mut SamplingTable| {
        if options {
            if let Some(rate) = sc.own_sampling_rate() {
                // Data records may or may not name their sampler: remember the rate both for
                // the sampler id and as the domain's default.
                if let Some(id) = sc.sampler_id {
                    sampling.set_rate(exporter, hdr.domain, id, rate);
                }
                sampling.set_rate(exporter, hdr.domain, ANY_SAMPLER, rate);
            }
            if let Some(ms) = sc.sys_init_ms {
                sampling.set_sys_init(exporter, hdr.domain, ms);
            }
            // Interface options (RFC 7012 IE 82/83 with an ingressInterface scope, or a v9
            // "Interface" scope): names for the enrichment of this exporter's flows.
            if sc.if_name.is_some() || sc.if_desc.is_some() {
                let idx = if rec.in_if != 0 {
                    rec.in_if
                } else {
                    rec.out_if
                };
                let sym = |t: Option<crate::ie::IfText>| {
                    t.map_or(0, |t| flowsight_schema::sym::intern(&t.text()))
                };
                sampling.set_interface(exporter, idx, sym(sc.if_name), sym(sc.if_desc));
            }
            return;
        }
        if let Some(rate) = sc.own_sampling_rate() {
            rec.sampling_rate = rate;
        } else if let Some(id) = sc.sampler_id
            && let Some(rate) = sampling.rate(exporter, hdr.domain, id)
        {
            rec.sampling_rate = rate;
        }
        finalize(rec, sc, hdr.export_ns, hdr.uptime_ms, sys_init);
        out.push(rec);
    };

    if let Some(len) = plan.fixed_len {
        if len == 0 {
            return (0, 0, false);
        }
        if !options {
            let seg = crate::columnar::Segment {
                rows: body.len() / len,
                ..seg
            };
            let n = crate::columnar::decode_run(plan, len, &[seg], body, sampling, out);
            return (n, 0, false);
        }
        // RFC 7011 s3.3.1: bytes after the last whole record are padding.
        for r in body.chunks_exact(len) {
            let mut rec = base;
            let mut sc = Scratch::default();
            for st in &plan.steps {
                let o = st.off as usize;
                apply(&mut rec, &mut sc, st.target, &r[o..o + st.len as usize]);
            }
            emit(&mut rec, &sc, sampling);
            n += 1;
        }
    } else {
        // Variable-length fields (RFC 7011 s7): a 1-byte length, or 255 then a 2-byte length.
        let mut off = 0usize;
        'records: while body.len() - off >= plan.min_len.max(1) {
            let mut rec = base;
            let mut sc = Scratch::default();
            let mut o = off;
            for &(flen, target) in &plan.all {
                let len = if flen == VARIABLE_LENGTH {
                    let Some(l) = u8_at(body, o) else {
                        truncated = true;
                        break 'records;
                    };
                    o += 1;
                    if l == 255 {
                        let Some(l2) = u16_at(body, o) else {
                            truncated = true;
                            break 'records;
                        };
                        o += 2;
                        l2 as usize
                    } else {
                        l as usize
                    }
                } else {
                    flen as usize
                };
                let Some(s) = body.get(o..o + len) else {
                    truncated = true;
                    break 'records;
                };
                apply(&mut rec, &mut sc, target, s);
                o += len;
            }
            if o == off {
                break;
            }
            off = o;
            emit(&mut rec, &sc, sampling);
            n += 1;
        }
        // Trailing bytes shorter than a minimal record are padding; a record cut by the end
        // of the set is an error the caller counts.
    }
    if options {
        (0, n, truncated)
    } else {
        (n, 0, truncated)
    }
}

impl Decoder {
    /// NetFlow v9 export packet, RFC 3954 s5.1 (header) and s5.2-5.3 (FlowSets).
    pub(crate) fn decode_v9(
        &mut self,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let fmt = Format::NetflowV9;
        if data.len() < 20 {
            return Err(DecodeError::Truncated {
                format: fmt,
                exporter,
                offset: 0,
                need: 20,
                have: data.len(),
                what: "v9 header",
            });
        }
        // Header: version(2) count(2) sysUpTime(4) unix_secs(4) sequence(4) source_id(4).
        let uptime = u32_at(data, 4).unwrap_or(0);
        let unix_secs = u32_at(data, 8).unwrap_or(0);
        let seq = u32_at(data, 12).unwrap_or(0);
        let source_id = u32_at(data, 16).unwrap_or(0);
        let hdr = MsgHeader {
            proto: TemplateProto::V9,
            exporter,
            domain: source_id,
            seq,
            export_ns: unix_secs as u64 * 1_000_000_000,
            uptime_ms: Some(uptime),
            received_ns,
        };
        // RFC 3954 s5.1: the v9 sequence number counts export packets per source id.
        self.seq.observe(
            SeqKey {
                exporter,
                domain: source_id,
                format: fmt,
            },
            seq,
            Some(1),
        );
        self.walk_sets(&hdr, data, 20, data.len(), out)
    }

    /// IPFIX message, RFC 7011 s3.1 (header) and s3.3 (sets).
    pub(crate) fn decode_ipfix(
        &mut self,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let fmt = Format::Ipfix;
        if data.len() < 16 {
            return Err(DecodeError::Truncated {
                format: fmt,
                exporter,
                offset: 0,
                need: 16,
                have: data.len(),
                what: "IPFIX message header",
            });
        }
        // Header: version(2)=10 length(2) exportTime(4) sequenceNumber(4) domainId(4).
        let length = u16_at(data, 2).unwrap_or(0) as usize;
        if length < 16 {
            return Err(DecodeError::BadLength {
                format: fmt,
                exporter,
                offset: 2,
                what: "message length",
                value: length,
            });
        }
        if length > data.len() {
            return Err(DecodeError::Truncated {
                format: fmt,
                exporter,
                offset: 0,
                need: length,
                have: data.len(),
                what: "IPFIX message (length field)",
            });
        }
        let export = u32_at(data, 4).unwrap_or(0);
        let seq = u32_at(data, 8).unwrap_or(0);
        let domain = u32_at(data, 12).unwrap_or(0);
        let hdr = MsgHeader {
            proto: TemplateProto::Ipfix,
            exporter,
            domain,
            seq,
            export_ns: export as u64 * 1_000_000_000,
            uptime_ms: None,
            received_ns,
        };
        let before_unknown = self.stats.unknown_template_sets;
        let res = self.walk_sets(&hdr, data, 16, length, out);
        let (records, flows) = (self.last_msg_data_records, self.last_msg_flow_records);
        // RFC 7011 s3.1: the sequence number counts data records per observation domain; a
        // set we could not decode yet leaves the count unknown, so resynchronize.
        let units = (self.stats.unknown_template_sets == before_unknown && res.is_ok())
            .then_some((records as u32, flows as u32));
        self.seq.observe_records(
            SeqKey {
                exporter,
                domain,
                format: fmt,
            },
            seq,
            units,
        );
        res
    }

    /// Walks the sets of a v9 packet / IPFIX message from `start` to `end`.
    fn walk_sets(
        &mut self,
        hdr: &MsgHeader,
        data: &[u8],
        start: usize,
        end: usize,
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let fmt = hdr.format();
        let mut off = start;
        let mut flows = 0usize;
        self.last_msg_data_records = 0;
        self.last_msg_flow_records = 0;
        while off + 4 <= end {
            let set_id = u16_at(data, off).unwrap_or(0);
            let set_len = u16_at(data, off + 2).unwrap_or(0) as usize;
            if set_len < 4 || off + set_len > end {
                if set_len == 0
                    && hdr.proto == TemplateProto::V9
                    && data[off..end].iter().all(|&b| b == 0)
                {
                    break; // zero padding after the last FlowSet
                }
                return Err(DecodeError::BadLength {
                    format: fmt,
                    exporter: hdr.exporter,
                    offset: off + 2,
                    what: "set length",
                    value: set_len,
                });
            }
            let body = &data[off + 4..off + set_len];
            let body_off = off + 4;
            match (hdr.proto, set_id) {
                (TemplateProto::V9, 0) | (TemplateProto::Ipfix, 2) => {
                    flows += self.template_set(hdr, body, body_off, false, out)?;
                }
                (TemplateProto::V9, 1) | (TemplateProto::Ipfix, 3) => {
                    flows += self.template_set(hdr, body, body_off, true, out)?;
                }
                (_, id) if id >= 256 => {
                    flows += self.data_set(hdr, id, body, body_off, out)?;
                }
                _ => self.stats.reserved_sets += 1,
            }
            off += set_len;
        }
        Ok(flows)
    }

    /// Decodes the records of the open runs, if any, into `out`.
    pub(crate) fn flush_run(&mut self, out: &mut FlowBatch) {
        flush_runs(&mut self.runs, &self.sampling, out, &mut self.placed);
    }

    fn data_set(
        &mut self,
        hdr: &MsgHeader,
        id: u16,
        body: &[u8],
        body_off: usize,
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let key = TemplateKey {
            exporter: hdr.exporter,
            domain: hdr.domain,
            id,
            proto: hdr.proto,
        };
        let Some(c) = self.templates.map.get(&key) else {
            self.stats.unknown_template_sets += 1;
            let (sets, bytes) = self.pending.push(PendingSet {
                key,
                hdr: *hdr,
                data: body.to_vec(),
            });
            self.stats.pending_dropped_sets += sets;
            self.stats.pending_dropped_bytes += bytes;
            return Ok(0);
        };
        // Fixed-length data records join the run of their template (decoded when it ends);
        // anything else is decoded now, after the run.
        if !c.def.options
            && let Some(len) = c.plan.fixed_len.filter(|&l| l > 0)
        {
            let rows = body.len() / len;
            let generation = self.templates.generation;
            // Runs open together belong to one exporter and one generation of the
            // templates: a template change is never decoded with the old plan, and
            // exporters taking turns end each other's runs rather than competing for the
            // `MAX_RUNS` slots. A full run ends them all, so one reordering covers every
            // record held.
            if self.runs.iter().any(|r| {
                !r.segs.is_empty()
                    && (r.key.exporter != key.exporter
                        || r.generation != generation
                        || r.key == key && r.body.len() >= RUN_MAX_BYTES)
            }) {
                flush_runs(&mut self.runs, &self.sampling, out, &mut self.placed);
            }
            let open = |r: &crate::columnar::Run| !r.segs.is_empty() && r.key == key;
            let i = match self.runs.iter().position(open) {
                Some(i) => i,
                None => {
                    let i = match self.runs.iter().position(|r| r.segs.is_empty()) {
                        Some(i) => i,
                        None if self.runs.len() < MAX_RUNS => {
                            self.runs.push(crate::columnar::Run {
                                key,
                                plan: c.plan.clone(),
                                generation,
                                len,
                                body: Vec::new(),
                                segs: Vec::new(),
                            });
                            self.runs.len() - 1
                        }
                        None => {
                            flush_runs(&mut self.runs, &self.sampling, out, &mut self.placed);
                            0
                        }
                    };
                    let r = &mut self.runs[i];
                    if r.key != key || r.generation != generation || r.len != len {
                        r.key = key;
                        r.plan = c.plan.clone();
                        r.generation = generation;
                        r.len = len;
                    }
                    i
                }
            };
            if rows > 0
                && let Some(r) = self.runs.get_mut(i)
            {
                r.body.extend_from_slice(&body[..rows * len]);
                let mut seg = crate::columnar::Segment::new(hdr, rows, &self.sampling);
                seg.arrival = self.arrivals;
                self.arrivals = self.arrivals.wrapping_add(1);
                r.segs.push(seg);
            }
            self.last_msg_data_records += rows;
            self.last_msg_flow_records += rows;
            return Ok(rows);
        }
        self.flush_run(out);
        let Some(c) = self.templates.map.get(&key) else {
            return Ok(0);
        };
        let (flows, opts, truncated) =
            decode_records(&c.plan, c.def.options, hdr, body, &mut self.sampling, out);
        self.stats.options_records += opts as u64;
        self.last_msg_data_records += flows + opts;
        self.last_msg_flow_records += flows;
        if truncated {
            return Err(DecodeError::Truncated {
                format: hdr.format(),
                exporter: hdr.exporter,
                offset: body_off,
                need: c.plan.min_len,
                have: body.len(),
                what: "variable-length data record",
            });
        }
        Ok(flows)
    }

    /// Template and options template sets: RFC 3954 s5.2/s6.1, RFC 7011 s3.4.1/s3.4.2.
    fn template_set(
        &mut self,
        hdr: &MsgHeader,
        body: &[u8],
        body_off: usize,
        options: bool,
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        // Templates may change below: the run decodes with the ones it began with.
        self.flush_run(out);
        let fmt = hdr.format();
        let mut o = 0usize;
        let mut flows = 0usize;
        let bad =
            |offset: usize, template_id: u16, reason: &'static str| DecodeError::BadTemplate {
                format: fmt,
                exporter: hdr.exporter,
                domain: hdr.domain,
                template_id,
                offset,
                reason,
            };
        // Each record starts with template id and a count; fewer than 4 bytes left is padding.
        while body.len() - o >= 4 {
            let tid = u16_at(body, o).unwrap_or(0);
            let at = body_off + o;
            let (fields, scope, next) = match (hdr.proto, options) {
                (TemplateProto::V9, false) => {
                    // template_id(2) field_count(2) {type(2) length(2)}*
                    let count = u16_at(body, o + 2).unwrap_or(0) as usize;
                    if tid == 0 && count == 0 {
                        break; // padding
                    }
                    let mut f = Vec::with_capacity(count.min(512));
                    let mut p = o + 4;
                    for _ in 0..count {
                        let (Some(id), Some(len)) = (u16_at(body, p), u16_at(body, p + 2)) else {
                            return Err(bad(at, tid, "field specifiers run past the set"));
                        };
                        f.push(FieldSpec { id, len, pen: 0 });
                        p += 4;
                    }
                    (f, 0u16, p)
                }
                (TemplateProto::V9, true) => {
                    // template_id(2) scope_length(2) option_length(2), then scope and option
                    // fields as {type(2) length(2)}; lengths are in bytes (RFC 3954 s6.1).
                    if tid == 0 {
                        break; // padding
                    }
                    let (Some(sl), Some(ol)) = (u16_at(body, o + 2), u16_at(body, o + 4)) else {
                        break;
                    };
                    let (sl, ol) = (sl as usize / 4, ol as usize / 4);
                    let mut f = Vec::with_capacity((sl + ol).min(512));
                    let mut p = o + 6;
                    for _ in 0..sl + ol {
                        let (Some(id), Some(len)) = (u16_at(body, p), u16_at(body, p + 2)) else {
                            return Err(bad(at, tid, "field specifiers run past the set"));
                        };
                        f.push(FieldSpec { id, len, pen: 0 });
                        p += 4;
                    }
                    (f, sl as u16, p)
                }
                (TemplateProto::Ipfix, _) => {
                    // template_id(2) field_count(2) [scope_field_count(2)] then
                    // {E|id(2) length(2) [enterprise(4)]}* (RFC 7011 s3.4.1, s3.2).
                    let count = u16_at(body, o + 2).unwrap_or(0) as usize;
                    if count == 0 {
                        // RFC 7011 s8.1: withdrawal. Id 2 (3) withdraws all (options) templates.
                        let n = if (!options && tid == 2) || (options && tid == 3) {
                            self.templates.withdraw_all(
                                hdr.exporter,
                                hdr.domain,
                                hdr.proto,
                                options,
                            )
                        } else {
                            self.templates.withdraw(&TemplateKey {
                                exporter: hdr.exporter,
                                domain: hdr.domain,
                                id: tid,
                                proto: hdr.proto,
                            })
                        };
                        self.stats.templates_withdrawn += n as u64;
                        o += 4;
                        continue;
                    }
                    let mut p = o + 4;
                    let scope = if options {
                        let s = u16_at(body, p).unwrap_or(0);
                        p += 2;
                        if s == 0 || s as usize > count {
                            return Err(bad(
                                at,
                                tid,
                                "scope field count is 0 or above field count",
                            ));
                        }
                        s
                    } else {
                        0
                    };
                    if count > self.templates.limits.max_fields {
                        self.stats.templates_rejected += 1;
                        return Err(bad(at, tid, "more fields than the configured maximum"));
                    }
                    let mut f = Vec::with_capacity(count);
                    for _ in 0..count {
                        let (Some(raw), Some(len)) = (u16_at(body, p), u16_at(body, p + 2)) else {
                            return Err(bad(at, tid, "field specifiers run past the set"));
                        };
                        p += 4;
                        let pen = if raw & 0x8000 != 0 {
                            let Some(pen) = u32_at(body, p) else {
                                return Err(bad(at, tid, "enterprise number runs past the set"));
                            };
                            p += 4;
                            pen
                        } else {
                            0
                        };
                        f.push(FieldSpec {
                            id: raw & 0x7fff,
                            len,
                            pen,
                        });
                    }
                    (f, scope, p)
                }
            };
            o = next;
            if tid < 256 {
                self.stats.templates_rejected += 1;
                return Err(bad(at, tid, "template id below 256"));
            }
            if hdr.proto == TemplateProto::V9 && fields.iter().any(|f| f.len == VARIABLE_LENGTH) {
                self.stats.templates_rejected += 1;
                return Err(bad(at, tid, "variable-length field in a v9 template"));
            }
            if fields.iter().all(|f| f.len == 0) {
                self.stats.templates_rejected += 1;
                return Err(bad(at, tid, "records of zero length"));
            }
            let key = TemplateKey {
                exporter: hdr.exporter,
                domain: hdr.domain,
                id: tid,
                proto: hdr.proto,
            };
            let def = TemplateDef {
                key,
                fields,
                scope_fields: scope,
                options,
            };
            match self.templates.insert(def, hdr.received_ns) {
                Ok(Insert::New) => self.stats.templates_learned += 1,
                Ok(Insert::Redefined) => self.stats.templates_redefined += 1,
                Ok(Insert::Refreshed) => {}
                Err(reason) => {
                    self.stats.templates_rejected += 1;
                    return Err(bad(at, tid, reason));
                }
            }
            // Data that arrived before this template can be decoded now.
            for p in self.pending.take(&key) {
                if let Some(c) = self.templates.map.get(&key) {
                    let (f, opts, _) = decode_records(
                        &c.plan,
                        c.def.options,
                        &p.hdr,
                        &p.data,
                        &mut self.sampling,
                        out,
                    );
                    self.stats.pending_decoded_sets += 1;
                    self.stats.options_records += opts as u64;
                    flows += f;
                }
            }
        }
        Ok(flows)
    }
}

/// Splits an IPFIX byte stream (TCP or SCTP transport, RFC 7011 s10.3-10.4) into messages
/// using the header's length field. Memory is bounded: at most one maximal message
/// (65535 bytes) is buffered.
#[derive(Debug, Default)]
pub struct IpfixStream {
    buf: Vec<u8>,
}

impl IpfixStream {
    /// A new, empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one is buffered. An impossible header (version not 10,
    /// or length under 16) is an error: the stream cannot be resynchronized and should be
    /// closed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, &'static str> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        if u16_at(&self.buf, 0) != Some(10) {
            return Err("IPFIX stream out of sync: version field is not 10");
        }
        let len = u16_at(&self.buf, 2).unwrap_or(0) as usize;
        if len < 16 {
            return Err("IPFIX stream out of sync: message length below 16");
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let rest = self.buf.split_off(len);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }

    /// Bytes buffered (an incomplete message).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
