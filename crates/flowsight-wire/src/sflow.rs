//! sFlow version 5 (sflow.org "sFlow Version 5", July 2004): datagrams, flow samples
//! (compact and expanded), counter samples, and the flow records flowsight uses. Section
//! references below are to that specification; structure names are its XDR names.

use crate::Decoder;
use crate::error::{DecodeError, Format};
use crate::ie::finalize_l3;
use crate::packet::{build_frame, parse_ethernet, parse_ipv4, parse_ipv6};
use crate::reader::{u32_at, u64_at};
use crate::sequence::SeqKey;
use flowsight_schema::{
    Addr, FlowBatch, FlowRecord, addr_from_ip, addr_from_v4, addr_is_v4, flow_type,
};
use std::net::IpAddr;

/// Interface counters from an sFlow counter sample ("if_counters", format 0:1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct IfCounters {
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    pub received_ns: u64,
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    pub if_direction: u32,
    pub if_status: u32,
    pub in_octets: u64,
    pub in_ucast_pkts: u32,
    pub in_multicast_pkts: u32,
    pub in_broadcast_pkts: u32,
    pub in_discards: u32,
    pub in_errors: u32,
    pub in_unknown_protos: u32,
    pub out_octets: u64,
    pub out_ucast_pkts: u32,
    pub out_multicast_pkts: u32,
    pub out_broadcast_pkts: u32,
    pub out_discards: u32,
    pub out_errors: u32,
    pub promiscuous_mode: u32,
}

const IF_COUNTERS_LEN: usize = 88;

struct Cur<'a> {
    b: &'a [u8],
    o: usize,
    base: usize,
    exporter: IpAddr,
}

impl<'a> Cur<'a> {
    fn err(&self, need: usize, what: &'static str) -> DecodeError {
        DecodeError::Truncated {
            format: Format::Sflow5,
            exporter: self.exporter,
            offset: self.base + self.o,
            need,
            have: self.b.len().saturating_sub(self.o),
            what,
        }
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = u32_at(self.b, self.o).ok_or_else(|| self.err(4, what))?;
        self.o += 4;
        Ok(v)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let s = self
            .b
            .get(self.o..self.o.saturating_add(n))
            .ok_or_else(|| self.err(n, what))?;
        self.o += n;
        Ok(s)
    }
    /// sFlow "address": type(4) 1=IPv4 2=IPv6, then 4 or 16 bytes; 0.0.0.0 (how agents
    /// say "none") and type 0 (UNKNOWN) are absent.
    fn addr(&mut self, what: &'static str) -> Result<Addr, DecodeError> {
        match self.u32(what)? {
            1 => Ok(match self.u32(what)? {
                0 => [0; 16],
                v => addr_from_v4(v),
            }),
            2 => {
                let s = self.take(16, what)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(s);
                Ok(a)
            }
            _ => Ok([0; 16]),
        }
    }
}

impl Decoder {
    /// One sFlow v5 datagram ("sample_datagram_v5", spec s5).
    pub(crate) fn decode_sflow(
        &mut self,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let mut c = Cur {
            b: data,
            o: 4,
            base: 0,
            exporter,
        };
        // version(4)=5 agent_address sub_agent_id(4) sequence_number(4) uptime(4) num_samples(4)
        let agent = c.addr("agent address")?;
        let sub_agent = c.u32("sub_agent_id")?;
        let seq = c.u32("sequence_number")?;
        let _uptime = c.u32("uptime")?;
        let n_samples = c.u32("num_samples")?;
        let agent_ip = flowsight_schema::addr_to_ip(&agent).unwrap_or(exporter);
        self.seq.observe(
            SeqKey {
                exporter: agent_ip,
                domain: sub_agent,
                format: Format::Sflow5,
            },
            seq,
            Some(1),
        );
        let base = FlowRecord {
            flow_type: flow_type::SFLOW_5,
            time_received_ns: received_ns,
            time_flow_start_ns: received_ns,
            time_flow_end_ns: received_ns,
            sequence_num: seq,
            sampler_address: agent,
            observation_domain_id: sub_agent,
            packets: 1,
            ..FlowRecord::default()
        };
        let mut flows = 0;
        for _ in 0..n_samples {
            if c.o >= data.len() {
                return Err(c.err(8, "sample header (num_samples exceeds the datagram)"));
            }
            // sample_record: data_format(4) = enterprise(20 bits) << 12 | format(12); length(4)
            let fmt = c.u32("sample data_format")?;
            let len = c.u32("sample length")? as usize;
            let at = c.o;
            let body = c.take(len, "sample body")?;
            let mut s = Cur {
                b: body,
                o: 0,
                base: at,
                exporter,
            };
            match (fmt >> 12, fmt & 0xfff) {
                (0, 1) => flows += self.flow_sample(&mut s, false, &base, out)?,
                (0, 3) => flows += self.flow_sample(&mut s, true, &base, out)?,
                (0, 2) => self.counter_sample(&mut s, false, agent_ip, sub_agent, received_ns)?,
                (0, 4) => self.counter_sample(&mut s, true, agent_ip, sub_agent, received_ns)?,
                _ => self.stats.sflow_unknown_samples += 1,
            }
        }
        Ok(flows)
    }

    /// "flow_sample" (0:1) or "flow_sample_expanded" (0:3), spec s5.
    fn flow_sample(
        &mut self,
        s: &mut Cur,
        expanded: bool,
        base: &FlowRecord,
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let _seq = s.u32("flow sample sequence_number")?;
        if expanded {
            s.u32("source_id_type")?;
            s.u32("source_id_index")?;
        } else {
            s.u32("source_id")?;
        }
        let rate = s.u32("sampling_rate")?;
        let _pool = s.u32("sample_pool")?;
        let _drops = s.u32("drops")?;
        let (input, output) = if expanded {
            // interface_expanded: format(4) value(4)
            let _ = s.u32("input format")?;
            let i = s.u32("input value")?;
            let of = s.u32("output format")?;
            let o = s.u32("output value")?;
            (i, if of == 0 { o } else { 0 })
        } else {
            // interface: top 2 bits format, low 30 bits value (0x3fffffff: unknown).
            let i = s.u32("input")?;
            let o = s.u32("output")?;
            (
                i & 0x3fff_ffff,
                if o >> 30 == 0 { o & 0x3fff_ffff } else { 0 },
            )
        };
        let n_records = s.u32("flow_records count")?;
        let mut rec = *base;
        rec.sampling_rate = rate as u64;
        rec.in_if = if input == 0x3fff_ffff { 0 } else { input };
        rec.out_if = if output == 0x3fff_ffff { 0 } else { output };
        let mut have_header = false;
        for _ in 0..n_records {
            let fmt = s.u32("flow record data_format")?;
            let len = s.u32("flow record length")? as usize;
            let body = s.take(len, "flow record body")?;
            let mut r = Cur {
                b: body,
                o: 0,
                base: s.base + s.o - len,
                exporter: s.exporter,
            };
            match (fmt >> 12, fmt & 0xfff) {
                // sampled_header: protocol(4) frame_length(4) stripped(4) header<>
                (0, 1) => {
                    let proto = r.u32("header_protocol")?;
                    let frame_len = r.u32("frame_length")?;
                    let _stripped = r.u32("stripped")?;
                    let hlen = r.u32("header length")? as usize;
                    let h = r.take(hlen, "sampled header")?;
                    rec.bytes = frame_len as u64;
                    have_header = true;
                    match proto {
                        1 => parse_ethernet(h, &mut rec),
                        11 => parse_ipv4(h, &mut rec),
                        12 => parse_ipv6(h, &mut rec),
                        _ => {}
                    }
                }
                // sampled_ethernet: length(4) src_mac(6+2) dst_mac(6+2) type(4)
                (0, 2) if !have_header => {
                    let len = r.u32("ethernet length")?;
                    let src = r.take(8, "src_mac")?;
                    let dst = r.take(8, "dst_mac")?;
                    let et = r.u32("ethernet type")?;
                    rec.bytes = len as u64;
                    rec.src_mac = src[..6].iter().fold(0, |a, &x| (a << 8) | x as u64);
                    rec.dst_mac = dst[..6].iter().fold(0, |a, &x| (a << 8) | x as u64);
                    rec.etype = et as u16;
                }
                // sampled_ipv4 / sampled_ipv6: length protocol src dst src_port dst_port
                // tcp_flags tos|priority
                (0, 3) | (0, 4) if !have_header => {
                    let len = r.u32("ip length")?;
                    let proto = r.u32("ip protocol")?;
                    if fmt & 0xfff == 3 {
                        rec.src_addr = addr_from_v4(r.u32("src_ip")?);
                        rec.dst_addr = addr_from_v4(r.u32("dst_ip")?);
                    } else {
                        rec.src_addr.copy_from_slice(r.take(16, "src_ip")?);
                        rec.dst_addr.copy_from_slice(r.take(16, "dst_ip")?);
                    }
                    rec.bytes = len as u64;
                    rec.proto = proto as u8;
                    rec.src_port = r.u32("src_port")? as u16;
                    rec.dst_port = r.u32("dst_port")? as u16;
                    rec.tcp_flags = r.u32("tcp_flags")? as u16;
                    rec.ip_tos = r.u32("tos")? as u8;
                }
                // extended_switch: src_vlan src_priority dst_vlan dst_priority
                (0, 1001) => {
                    rec.src_vlan = r.u32("src_vlan")? as u16;
                    r.u32("src_priority")?;
                    rec.dst_vlan = r.u32("dst_vlan")? as u16;
                }
                // extended_router: next_hop src_mask_len dst_mask_len
                (0, 1002) => {
                    rec.next_hop = r.addr("next_hop")?;
                    rec.src_net = r.u32("src_mask_len")? as u8;
                    rec.dst_net = r.u32("dst_mask_len")? as u8;
                }
                // extended_gateway: next_hop as src_as src_peer_as dst_as_path<> communities<>
                // localpref
                (0, 1003) => {
                    rec.bgp_next_hop = r.addr("bgp next_hop")?;
                    let router_as = r.u32("as")?;
                    rec.src_as = r.u32("src_as")?;
                    let _peer = r.u32("src_peer_as")?;
                    let segments = r.u32("dst_as_path segments")?;
                    let mut first = None;
                    let mut last = None;
                    for _ in 0..segments {
                        let _ty = r.u32("as_path_type")?;
                        let n = r.u32("as_path length")? as usize;
                        let path = r.take(n.saturating_mul(4), "as_path")?;
                        for a in path.chunks_exact(4) {
                            let asn = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
                            first.get_or_insert(asn);
                            last = Some(asn);
                        }
                    }
                    rec.next_hop_as = first.unwrap_or(0);
                    rec.dst_as = last.unwrap_or(router_as);
                }
                _ => {}
            }
        }
        // A parsed header already set the ICMP fields; sampled_ipv4/6 records carry them in
        // the ports.
        let have_etype = rec.etype != 0;
        finalize_l3(&mut rec, have_etype, have_header, 0);
        out.push(&rec);
        Ok(1)
    }

    /// "counters_sample" (0:2) or "counters_sample_expanded" (0:4); keeps generic interface
    /// counters (0:1), skips the other counter records.
    fn counter_sample(
        &mut self,
        s: &mut Cur,
        expanded: bool,
        agent: IpAddr,
        sub_agent: u32,
        received_ns: u64,
    ) -> Result<(), DecodeError> {
        self.stats.sflow_counter_samples += 1;
        s.u32("counter sample sequence_number")?;
        s.u32("source_id")?;
        if expanded {
            s.u32("source_id_index")?;
        }
        let n = s.u32("counter records count")?;
        for _ in 0..n {
            let fmt = s.u32("counter record data_format")?;
            let len = s.u32("counter record length")? as usize;
            let b = s.take(len, "counter record body")?;
            if fmt == 1 && len >= IF_COUNTERS_LEN {
                let g = |o| u32_at(b, o).unwrap_or(0);
                let g64 = |o| u64_at(b, o).unwrap_or(0);
                let c = IfCounters {
                    agent: Some(agent),
                    sub_agent_id: sub_agent,
                    received_ns,
                    if_index: g(0),
                    if_type: g(4),
                    if_speed: g64(8),
                    if_direction: g(16),
                    if_status: g(20),
                    in_octets: g64(24),
                    in_ucast_pkts: g(32),
                    in_multicast_pkts: g(36),
                    in_broadcast_pkts: g(40),
                    in_discards: g(44),
                    in_errors: g(48),
                    in_unknown_protos: g(52),
                    out_octets: g64(56),
                    out_ucast_pkts: g(64),
                    out_multicast_pkts: g(68),
                    out_broadcast_pkts: g(72),
                    out_discards: g(76),
                    out_errors: g(80),
                    promiscuous_mode: g(84),
                };
                if self.counters.len() < self.config().max_counter_records {
                    self.counters.push(c);
                } else {
                    self.stats.sflow_counters_dropped += 1;
                }
            }
        }
        Ok(())
    }
}

/// Builds sFlow v5 datagrams: one flow sample per record (raw Ethernet header built from the
/// record, plus extended switch/router/gateway records when the record has such data), and
/// optionally interface counter samples.
#[derive(Debug, Clone)]
pub struct SflowEncoder {
    /// Agent address written in the datagram header.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent_id: u32,
    /// Next datagram sequence number.
    pub sequence: u32,
    /// Next flow-sample sequence number.
    pub sample_sequence: u32,
    /// Agent uptime in ms written in the header.
    pub uptime_ms: u32,
    /// Largest datagram to build (bytes).
    pub max_datagram: usize,
}

impl SflowEncoder {
    /// An encoder for `agent`.
    pub fn new(agent: IpAddr) -> Self {
        SflowEncoder {
            agent,
            sub_agent_id: 0,
            sequence: 1,
            sample_sequence: 1,
            uptime_ms: 0,
            max_datagram: 1400,
        }
    }

    /// Encodes one datagram holding as many of `records` as fit and all `counters`;
    /// returns the number of records written.
    pub fn encode_datagram(
        &mut self,
        records: &[FlowRecord],
        counters: &[IfCounters],
        out: &mut Vec<u8>,
    ) -> usize {
        let start = out.len();
        put(out, 5);
        put_addr(out, &addr_from_ip(self.agent));
        put(out, self.sub_agent_id);
        put(out, self.sequence);
        put(out, self.uptime_ms);
        let n_at = out.len();
        put(out, 0);
        self.sequence = self.sequence.wrapping_add(1);
        let mut n_samples = 0u32;
        for c in counters {
            put(out, 2); // counters_sample
            let len_at = out.len();
            put(out, 0);
            put(out, self.sample_sequence);
            put(out, c.if_index);
            put(out, 1); // one record
            put(out, 1); // if_counters
            put(out, IF_COUNTERS_LEN as u32);
            for v in [c.if_index, c.if_type] {
                put(out, v);
            }
            out.extend_from_slice(&c.if_speed.to_be_bytes());
            put(out, c.if_direction);
            put(out, c.if_status);
            out.extend_from_slice(&c.in_octets.to_be_bytes());
            for v in [
                c.in_ucast_pkts,
                c.in_multicast_pkts,
                c.in_broadcast_pkts,
                c.in_discards,
                c.in_errors,
                c.in_unknown_protos,
            ] {
                put(out, v);
            }
            out.extend_from_slice(&c.out_octets.to_be_bytes());
            for v in [
                c.out_ucast_pkts,
                c.out_multicast_pkts,
                c.out_broadcast_pkts,
                c.out_discards,
                c.out_errors,
                c.promiscuous_mode,
            ] {
                put(out, v);
            }
            patch_len(out, len_at);
            self.sample_sequence = self.sample_sequence.wrapping_add(1);
            n_samples += 1;
        }
        let mut written = 0;
        for r in records {
            let mark = out.len();
            self.flow_sample(r, out);
            if out.len() - start > self.max_datagram && written > 0 {
                out.truncate(mark);
                break;
            }
            self.sample_sequence = self.sample_sequence.wrapping_add(1);
            written += 1;
            n_samples += 1;
        }
        out[n_at..n_at + 4].copy_from_slice(&n_samples.to_be_bytes());
        written
    }

    fn flow_sample(&self, r: &FlowRecord, out: &mut Vec<u8>) {
        put(out, 1); // flow_sample
        let len_at = out.len();
        put(out, 0);
        put(out, self.sample_sequence);
        put(out, r.in_if & 0x3fff_ffff); // source_id: ifIndex
        put(out, r.sampling_rate as u32);
        put(
            out,
            self.sample_sequence
                .wrapping_mul(r.sampling_rate.max(1) as u32),
        ); // sample_pool
        put(out, 0); // drops
        put(out, r.in_if & 0x3fff_ffff);
        put(out, r.out_if & 0x3fff_ffff);
        let has_switch = r.src_vlan != 0 || r.dst_vlan != 0;
        let has_router = r.next_hop != [0; 16] || r.src_net != 0 || r.dst_net != 0;
        let has_gateway =
            r.bgp_next_hop != [0; 16] || r.src_as != 0 || r.dst_as != 0 || r.next_hop_as != 0;
        put(
            out,
            1 + has_switch as u32 + has_router as u32 + has_gateway as u32,
        );
        // sampled_header (0:1)
        let mut frame = Vec::with_capacity(96);
        build_frame(r, &mut frame);
        put(out, 1);
        put(out, (16 + frame.len().div_ceil(4) * 4) as u32);
        put(out, 1); // ethernet
        put(out, r.bytes as u32);
        put(out, 4); // stripped FCS
        put(out, frame.len() as u32);
        out.extend_from_slice(&frame);
        out.resize(out.len() + (4 - frame.len() % 4) % 4, 0);
        if has_switch {
            put(out, 1001);
            put(out, 16);
            for v in [r.src_vlan as u32, 0, r.dst_vlan as u32, 0] {
                put(out, v);
            }
        }
        if has_router {
            put(out, 1002);
            let len_at = out.len();
            put(out, 0);
            put_addr(out, &r.next_hop);
            put(out, r.src_net as u32);
            put(out, r.dst_net as u32);
            patch_len(out, len_at);
        }
        if has_gateway {
            put(out, 1003);
            let len_at = out.len();
            put(out, 0);
            put_addr(out, &r.bgp_next_hop);
            put(out, r.dst_as); // router's own AS (used when the path is empty)
            put(out, r.src_as);
            put(out, 0); // src_peer_as
            // With a next-hop AS: one AS_SEQUENCE [next-hop AS, destination AS]. Without one,
            // an empty path: the destination is then the router's own AS written above.
            if r.next_hop_as != 0 {
                put(out, 1);
                put(out, 2); // AS_SEQUENCE
                put(out, 2);
                put(out, r.next_hop_as);
                put(out, r.dst_as);
            } else {
                put(out, 0);
            }
            put(out, 0); // communities
            put(out, 0); // localpref
            patch_len(out, len_at);
        }
        patch_len(out, len_at);
    }
}

fn put(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_addr(out: &mut Vec<u8>, a: &Addr) {
    if *a == [0; 16] {
        // Absent: 0.0.0.0, as agents send it. The spec's type 0 (UNKNOWN) would be shorter,
        // but sflowtool-based collectors (sfcapd) reject the whole datagram on it.
        put(out, 1);
        out.extend_from_slice(&[0; 4]);
    } else if addr_is_v4(a) {
        put(out, 1);
        out.extend_from_slice(&a[12..]);
    } else {
        put(out, 2);
        out.extend_from_slice(a);
    }
}

/// Writes the length of the structure whose length field is at `at` (bytes after it).
fn patch_len(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}
