//! Cisco NetFlow v1, v5 and v7: fixed-layout formats without an RFC. Layouts follow Cisco's
//! "NetFlow Export Datagram Format" documentation (header and record tables per version).

use crate::Decoder;
use crate::error::{DecodeError, Format};
use crate::ie::{finalize_l3, sysup_to_ns};
use crate::reader::{u8_at, u16_at, u32_at};
use crate::sequence::SeqKey;
use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip, addr_from_v4, flow_type};
use std::net::IpAddr;

/// Header fields of a v1/v5/v7 export packet, for the encoders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyHeader {
    /// Milliseconds since the exporter booted.
    pub sys_uptime_ms: u32,
    /// Export time, seconds since the Unix epoch.
    pub unix_secs: u32,
    /// Residual nanoseconds of the export time.
    pub unix_nsecs: u32,
    /// v5/v7: flows exported before this packet.
    pub flow_sequence: u32,
    /// v5: engine type.
    pub engine_type: u8,
    /// v5: engine id.
    pub engine_id: u8,
    /// v5: sampling mode (2 bits) and interval (14 bits).
    pub sampling_interval: u16,
}

struct Layout {
    format: Format,
    header: usize,
    record: usize,
    max_count: usize,
}

const V1: Layout = Layout {
    format: Format::NetflowV1,
    header: 16,
    record: 48,
    max_count: 24,
};
const V5: Layout = Layout {
    format: Format::NetflowV5,
    header: 24,
    record: 48,
    max_count: 30,
};
const V7: Layout = Layout {
    format: Format::NetflowV7,
    header: 24,
    record: 52,
    max_count: 28,
};

impl LegacyHeader {
    fn export_ns(&self) -> u64 {
        self.unix_secs as u64 * 1_000_000_000 + self.unix_nsecs as u64
    }
}

impl Decoder {
    /// NetFlow v1 / v5 / v7 packet. Complete records are kept even when the packet is cut
    /// short; the shortfall is reported as an error.
    pub(crate) fn decode_legacy(
        &mut self,
        version: u16,
        exporter: IpAddr,
        received_ns: u64,
        data: &[u8],
        out: &mut FlowBatch,
    ) -> Result<usize, DecodeError> {
        let l = match version {
            1 => &V1,
            5 => &V5,
            _ => &V7,
        };
        if data.len() < l.header {
            return Err(DecodeError::Truncated {
                format: l.format,
                exporter,
                offset: 0,
                need: l.header,
                have: data.len(),
                what: "header",
            });
        }
        // Common header: version(2) count(2) sys_uptime(4) unix_secs(4) unix_nsecs(4);
        // v5 adds flow_sequence(4) engine_type(1) engine_id(1) sampling_interval(2);
        // v7 adds flow_sequence(4) reserved(4).
        let count = u16_at(data, 2).unwrap_or(0) as usize;
        let h = LegacyHeader {
            sys_uptime_ms: u32_at(data, 4).unwrap_or(0),
            unix_secs: u32_at(data, 8).unwrap_or(0),
            unix_nsecs: u32_at(data, 12).unwrap_or(0),
            flow_sequence: if version == 1 {
                0
            } else {
                u32_at(data, 16).unwrap_or(0)
            },
            engine_type: if version == 5 {
                u8_at(data, 20).unwrap_or(0)
            } else {
                0
            },
            engine_id: if version == 5 {
                u8_at(data, 21).unwrap_or(0)
            } else {
                0
            },
            sampling_interval: if version == 5 {
                u16_at(data, 22).unwrap_or(0)
            } else {
                0
            },
        };
        if count > l.max_count {
            return Err(DecodeError::BadLength {
                format: l.format,
                exporter,
                offset: 2,
                what: "record count",
                value: count,
            });
        }
        let available = (data.len() - l.header) / l.record;
        let n = count.min(available);
        let export_ns = h.export_ns();
        let domain = ((h.engine_type as u32) << 8) | h.engine_id as u32;
        // v5: low 14 bits are the interval, top 2 bits the mode.
        let rate = (h.sampling_interval & 0x3fff) as u64;
        let base = FlowRecord {
            flow_type: match version {
                1 => flow_type::NETFLOW_V1,
                5 => flow_type::NETFLOW_V5,
                _ => flow_type::NETFLOW_V7,
            },
            time_received_ns: received_ns,
            sequence_num: h.flow_sequence,
            sampling_rate: rate,
            sampler_address: addr_from_ip(exporter),
            observation_domain_id: domain,
            ..FlowRecord::default()
        };
        out.reserve(n);
        for r in data[l.header..].chunks_exact(l.record).take(n) {
            let mut rec = base;
            // Common record start: srcaddr(4) dstaddr(4) nexthop(4) input(2) output(2)
            // dPkts(4) dOctets(4) first(4) last(4) srcport(2) dstport(2).
            rec.src_addr = addr_from_v4(u32_at(r, 0).unwrap_or(0));
            rec.dst_addr = addr_from_v4(u32_at(r, 4).unwrap_or(0));
            rec.next_hop = addr_from_v4(u32_at(r, 8).unwrap_or(0));
            rec.in_if = u16_at(r, 12).unwrap_or(0) as u32;
            rec.out_if = u16_at(r, 14).unwrap_or(0) as u32;
            rec.packets = u32_at(r, 16).unwrap_or(0) as u64;
            rec.bytes = u32_at(r, 20).unwrap_or(0) as u64;
            let first = u32_at(r, 24).unwrap_or(0);
            let last = u32_at(r, 28).unwrap_or(0);
            rec.time_flow_start_ns = sysup_to_ns(export_ns, h.sys_uptime_ms, first);
            rec.time_flow_end_ns = sysup_to_ns(export_ns, h.sys_uptime_ms, last);
            rec.src_port = u16_at(r, 32).unwrap_or(0);
            rec.dst_port = u16_at(r, 34).unwrap_or(0);
            if version == 1 {
                // pad1(2) prot(1) tos(1) tcp_flags(1) pad(3) reserved(4)
                rec.proto = r[38];
                rec.ip_tos = r[39];
                rec.tcp_flags = r[40] as u16;
            } else {
                // v5: pad1(1) tcp_flags(1) prot(1) tos(1) src_as(2) dst_as(2) src_mask(1)
                // dst_mask(1) pad2(2); v7: flags1(1) in place of pad1, flags2(2) in place
                // of pad2, then router_sc(4).
                rec.tcp_flags = r[37] as u16;
                rec.proto = r[38];
                rec.ip_tos = r[39];
                rec.src_as = u16_at(r, 40).unwrap_or(0) as u32;
                rec.dst_as = u16_at(r, 42).unwrap_or(0) as u32;
                rec.src_net = r[44];
                rec.dst_net = r[45];
            }
            if rec.proto == 1 || rec.proto == 58 {
                // ICMP type/code: Cisco puts type << 8 | code in the destination port, some
                // exporters (fprobe) the type in the source port and the code in the
                // destination port. Like nfdump, fold both into the destination port.
                rec.dst_port = ((rec.src_port as u32 * 256 + rec.dst_port as u32) & 0xffff) as u16;
                rec.src_port = 0;
            }
            finalize_l3(&mut rec, false, false, 4);
            out.push(&rec);
        }
        if version != 1 {
            // Cisco v5/v7: flow_sequence counts flows, per engine.
            self.seq.observe(
                SeqKey {
                    exporter,
                    domain,
                    format: l.format,
                },
                h.flow_sequence,
                Some(n as u32),
            );
        }
        if n < count {
            return Err(DecodeError::Truncated {
                format: l.format,
                exporter,
                offset: l.header + n * l.record,
                need: (count - n) * l.record,
                have: data.len() - l.header - n * l.record,
                what: "flow records announced by the header count",
            });
        }
        Ok(n)
    }
}

fn v4_of(a: &flowsight_schema::Addr) -> u32 {
    u32::from_be_bytes([a[12], a[13], a[14], a[15]])
}

/// Uptime in ms at which an absolute time (ns) falls, relative to the header's export time.
fn ns_to_sysup(h: &LegacyHeader, t_ns: u64) -> u32 {
    let ago_ms = (h.export_ns() as i64 - t_ns as i64) / 1_000_000;
    h.sys_uptime_ms.wrapping_sub(ago_ms as i32 as u32)
}

/// Encodes one NetFlow v1, v5 or v7 packet. Records beyond the version's maximum per packet
/// (24, 30, 28) are not written; the number written is returned. IPv6 records cannot be
/// expressed in these formats: their addresses are written as 0.0.0.0.
pub fn encode_legacy(
    version: u16,
    h: &LegacyHeader,
    records: &[FlowRecord],
    out: &mut Vec<u8>,
) -> usize {
    let l = match version {
        1 => &V1,
        5 => &V5,
        _ => &V7,
    };
    let n = records.len().min(l.max_count);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&h.sys_uptime_ms.to_be_bytes());
    out.extend_from_slice(&h.unix_secs.to_be_bytes());
    out.extend_from_slice(&h.unix_nsecs.to_be_bytes());
    match version {
        1 => {}
        5 => {
            out.extend_from_slice(&h.flow_sequence.to_be_bytes());
            out.push(h.engine_type);
            out.push(h.engine_id);
            out.extend_from_slice(&h.sampling_interval.to_be_bytes());
        }
        _ => {
            out.extend_from_slice(&h.flow_sequence.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
        }
    }
    for r in &records[..n] {
        out.extend_from_slice(&v4_of(&r.src_addr).to_be_bytes());
        out.extend_from_slice(&v4_of(&r.dst_addr).to_be_bytes());
        out.extend_from_slice(&v4_of(&r.next_hop).to_be_bytes());
        out.extend_from_slice(&(r.in_if as u16).to_be_bytes());
        out.extend_from_slice(&(r.out_if as u16).to_be_bytes());
        out.extend_from_slice(&(r.packets.min(u32::MAX as u64) as u32).to_be_bytes());
        out.extend_from_slice(&(r.bytes.min(u32::MAX as u64) as u32).to_be_bytes());
        out.extend_from_slice(&ns_to_sysup(h, r.time_flow_start_ns).to_be_bytes());
        out.extend_from_slice(&ns_to_sysup(h, r.time_flow_end_ns).to_be_bytes());
        out.extend_from_slice(&r.src_port.to_be_bytes());
        out.extend_from_slice(&r.dst_port.to_be_bytes());
        if version == 1 {
            out.extend_from_slice(&[
                0,
                0,
                r.proto,
                r.ip_tos,
                r.tcp_flags as u8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
        } else {
            out.extend_from_slice(&[0, r.tcp_flags as u8, r.proto, r.ip_tos]);
            out.extend_from_slice(&(r.src_as as u16).to_be_bytes());
            out.extend_from_slice(&(r.dst_as as u16).to_be_bytes());
            out.extend_from_slice(&[r.src_net, r.dst_net, 0, 0]);
            if version == 7 {
                out.extend_from_slice(&[0; 4]); // router_sc
            }
        }
    }
    n
}
