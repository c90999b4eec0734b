//! Encoders for the template formats (NetFlow v9, RFC 3954; IPFIX, RFC 7011) and one trait
//! over every encoder, for the generator, tests and fuzzers.

use crate::ie::{id, ns_to_ntp};
use crate::legacy::{LegacyHeader, encode_legacy};
use crate::sflow::SflowEncoder;
use flowsight_schema::{Addr, FlowRecord, addr_is_v4};

/// Anything that turns flow records into export datagrams.
pub trait ExportEncoder {
    /// Encodes one datagram (message) holding `records[..n]` for the largest `n` that fits,
    /// appended to `out`; returns `n`. `export_ns` is the export time (Unix ns).
    fn encode_datagram(
        &mut self,
        export_ns: u64,
        records: &[FlowRecord],
        out: &mut Vec<u8>,
    ) -> usize;

    /// Makes the next datagram carry the templates (time-based template refresh). Formats
    /// without templates ignore it.
    fn resend_templates(&mut self) {}
}

/// NetFlow v1/v5/v7 encoder with a running flow sequence and uptime.
#[derive(Debug, Clone)]
pub struct LegacyEncoder {
    /// 1, 5 or 7.
    pub version: u16,
    /// When the simulated exporter booted (Unix ns); uptime is measured from it.
    pub boot_ns: u64,
    /// Flows exported so far (v5/v7 header sequence).
    pub flow_sequence: u32,
    /// v5 engine type and id.
    pub engine: (u8, u8),
    /// v5 sampling interval (0: unsampled).
    pub sampling_interval: u16,
}

impl LegacyEncoder {
    /// An encoder for NetFlow `version` (1, 5 or 7).
    pub fn new(version: u16, boot_ns: u64) -> Self {
        LegacyEncoder {
            version,
            boot_ns,
            flow_sequence: 0,
            engine: (0, 0),
            sampling_interval: 0,
        }
    }
}

impl ExportEncoder for LegacyEncoder {
    fn encode_datagram(
        &mut self,
        export_ns: u64,
        records: &[FlowRecord],
        out: &mut Vec<u8>,
    ) -> usize {
        let h = LegacyHeader {
            sys_uptime_ms: (export_ns.saturating_sub(self.boot_ns) / 1_000_000) as u32,
            unix_secs: (export_ns / 1_000_000_000) as u32,
            unix_nsecs: (export_ns % 1_000_000_000) as u32,
            flow_sequence: self.flow_sequence,
            engine_type: self.engine.0,
            engine_id: self.engine.1,
            sampling_interval: self.sampling_interval,
        };
        let n = encode_legacy(self.version, &h, records, out);
        self.flow_sequence = self.flow_sequence.wrapping_add(n as u32);
        n
    }
}

impl ExportEncoder for SflowEncoder {
    fn encode_datagram(
        &mut self,
        export_ns: u64,
        records: &[FlowRecord],
        out: &mut Vec<u8>,
    ) -> usize {
        let _ = export_ns;
        SflowEncoder::encode_datagram(self, records, &[], out)
    }
}

/// Template ids the encoders use.
const TID_V4: u16 = 256;
const TID_V6: u16 = 257;
const TID_SAMPLING: u16 = 258;

/// One column of the encoders' standard templates.
#[derive(Clone, Copy)]
enum Col {
    Bytes,
    Packets,
    Proto,
    Tos,
    TcpFlags(u16),
    SrcPort,
    DstPort,
    SrcAddr,
    DstAddr,
    SrcMask,
    DstMask,
    InIf,
    OutIf,
    NextHop,
    BgpNextHop,
    SrcAs,
    DstAs,
    NextAs,
    SrcMac,
    DstMac,
    Vlan,
    PostVlan,
    Dot1q,
    Direction,
    Fwd,
    Ttl,
    FragFlags,
    FragId,
    FragOff,
    Mpls,
    ObsPoint,
    FlowLabel,
    IcmpTypeCode,
    StartSysUp,
    EndSysUp,
    StartNs,
    EndNs,
}

fn standard_fields(v6: bool, ipfix: bool) -> Vec<(u16, u16, Col)> {
    let a = if v6 { 16 } else { 4 };
    let mut f = vec![
        (id::OCTET_DELTA_COUNT, 8, Col::Bytes),
        (id::PACKET_DELTA_COUNT, 8, Col::Packets),
        (id::PROTOCOL_IDENTIFIER, 1, Col::Proto),
        (id::IP_CLASS_OF_SERVICE, 1, Col::Tos),
        (
            id::TCP_CONTROL_BITS,
            if ipfix { 2 } else { 1 },
            Col::TcpFlags(if ipfix { 2 } else { 1 }),
        ),
        (id::SOURCE_TRANSPORT_PORT, 2, Col::SrcPort),
        (id::DESTINATION_TRANSPORT_PORT, 2, Col::DstPort),
        (
            if v6 {
                id::SOURCE_IPV6_ADDRESS
            } else {
                id::SOURCE_IPV4_ADDRESS
            },
            a,
            Col::SrcAddr,
        ),
        (
            if v6 {
                id::DESTINATION_IPV6_ADDRESS
            } else {
                id::DESTINATION_IPV4_ADDRESS
            },
            a,
            Col::DstAddr,
        ),
        (
            if v6 {
                id::SOURCE_IPV6_PREFIX_LENGTH
            } else {
                id::SOURCE_IPV4_PREFIX_LENGTH
            },
            1,
            Col::SrcMask,
        ),
        (
            if v6 {
                id::DESTINATION_IPV6_PREFIX_LENGTH
            } else {
                id::DESTINATION_IPV4_PREFIX_LENGTH
            },
            1,
            Col::DstMask,
        ),
        (id::INGRESS_INTERFACE, 4, Col::InIf),
        (id::EGRESS_INTERFACE, 4, Col::OutIf),
        (
            if v6 {
                id::IP_NEXT_HOP_IPV6_ADDRESS
            } else {
                id::IP_NEXT_HOP_IPV4_ADDRESS
            },
            a,
            Col::NextHop,
        ),
        (
            if v6 {
                id::BGP_NEXT_HOP_IPV6_ADDRESS
            } else {
                id::BGP_NEXT_HOP_IPV4_ADDRESS
            },
            a,
            Col::BgpNextHop,
        ),
        (id::BGP_SOURCE_AS_NUMBER, 4, Col::SrcAs),
        (id::BGP_DESTINATION_AS_NUMBER, 4, Col::DstAs),
        (id::BGP_NEXT_ADJACENT_AS_NUMBER, 4, Col::NextAs),
        (id::SOURCE_MAC_ADDRESS, 6, Col::SrcMac),
        (id::DESTINATION_MAC_ADDRESS, 6, Col::DstMac),
        (id::VLAN_ID, 2, Col::Vlan),
        (id::POST_VLAN_ID, 2, Col::PostVlan),
        (id::DOT1Q_VLAN_ID, 2, Col::Dot1q),
        (id::FLOW_DIRECTION, 1, Col::Direction),
        (id::FORWARDING_STATUS, 1, Col::Fwd),
        (id::IP_TTL, 1, Col::Ttl),
        (id::FRAGMENT_FLAGS, 1, Col::FragFlags),
        (id::FRAGMENT_IDENTIFICATION, 4, Col::FragId),
        (id::FRAGMENT_OFFSET, 2, Col::FragOff),
        (id::MPLS_TOP_LABEL_STACK_SECTION, 3, Col::Mpls),
        (id::OBSERVATION_POINT_ID, 4, Col::ObsPoint),
        (
            if v6 {
                id::ICMP_TYPE_CODE_IPV6
            } else {
                id::ICMP_TYPE_CODE_IPV4
            },
            2,
            Col::IcmpTypeCode,
        ),
    ];
    if v6 {
        f.push((id::FLOW_LABEL_IPV6, 4, Col::FlowLabel));
    }
    if ipfix {
        // Nanosecond timestamps (RFC 7011 s6.1.10) keep the records' full precision.
        f.push((id::FLOW_START_NANOSECONDS, 8, Col::StartNs));
        f.push((id::FLOW_END_NANOSECONDS, 8, Col::EndNs));
    } else {
        f.push((id::FLOW_START_SYS_UP_TIME, 4, Col::StartSysUp));
        f.push((id::FLOW_END_SYS_UP_TIME, 4, Col::EndSysUp));
    }
    f
}

/// Milliseconds-since-boot of an absolute time.
fn sysup(boot_ns: u64, t_ns: u64) -> u32 {
    ((t_ns as i64 - boot_ns as i64) / 1_000_000) as u32
}

fn put_addr(out: &mut Vec<u8>, a: &Addr, v6: bool) {
    if v6 {
        out.extend_from_slice(a);
    } else {
        out.extend_from_slice(&a[12..]);
    }
}

fn encode_record(
    r: &FlowRecord,
    fields: &[(u16, u16, Col)],
    v6: bool,
    boot_ns: u64,
    out: &mut Vec<u8>,
) {
    for &(_, _, c) in fields {
        match c {
            Col::Bytes => out.extend_from_slice(&r.bytes.to_be_bytes()),
            Col::Packets => out.extend_from_slice(&r.packets.to_be_bytes()),
            Col::Proto => out.push(r.proto),
            Col::Tos => out.push(r.ip_tos),
            Col::TcpFlags(1) => out.push(r.tcp_flags as u8),
            Col::TcpFlags(_) => out.extend_from_slice(&r.tcp_flags.to_be_bytes()),
            Col::SrcPort => out.extend_from_slice(&r.src_port.to_be_bytes()),
            Col::DstPort => out.extend_from_slice(&r.dst_port.to_be_bytes()),
            Col::SrcAddr => put_addr(out, &r.src_addr, v6),
            Col::DstAddr => put_addr(out, &r.dst_addr, v6),
            Col::SrcMask => out.push(r.src_net),
            Col::DstMask => out.push(r.dst_net),
            Col::InIf => out.extend_from_slice(&r.in_if.to_be_bytes()),
            Col::OutIf => out.extend_from_slice(&r.out_if.to_be_bytes()),
            Col::NextHop => put_addr(out, &r.next_hop, v6),
            Col::BgpNextHop => put_addr(out, &r.bgp_next_hop, v6),
            Col::SrcAs => out.extend_from_slice(&r.src_as.to_be_bytes()),
            Col::DstAs => out.extend_from_slice(&r.dst_as.to_be_bytes()),
            Col::NextAs => out.extend_from_slice(&r.next_hop_as.to_be_bytes()),
            Col::SrcMac => out.extend_from_slice(&r.src_mac.to_be_bytes()[2..]),
            Col::DstMac => out.extend_from_slice(&r.dst_mac.to_be_bytes()[2..]),
            Col::Vlan => out.extend_from_slice(&r.src_vlan.to_be_bytes()),
            Col::PostVlan => out.extend_from_slice(&r.dst_vlan.to_be_bytes()),
            Col::Dot1q => out.extend_from_slice(&r.vlan_id.to_be_bytes()),
            Col::Direction => out.push(r.flow_direction),
            Col::Fwd => out.push(r.forwarding_status),
            Col::Ttl => out.push(r.ip_ttl),
            Col::FragFlags => out.push(r.ip_flags << 5),
            Col::FragId => out.extend_from_slice(&r.fragment_id.to_be_bytes()),
            Col::FragOff => out.extend_from_slice(&r.fragment_offset.to_be_bytes()),
            Col::Mpls => out.extend_from_slice(&((r.mpls_label << 4) | 1).to_be_bytes()[1..]),
            Col::ObsPoint => out.extend_from_slice(&r.observation_point_id.to_be_bytes()),
            Col::FlowLabel => out.extend_from_slice(&r.ipv6_flow_label.to_be_bytes()),
            Col::IcmpTypeCode => out.extend_from_slice(&[r.icmp_type, r.icmp_code]),
            Col::StartSysUp => {
                out.extend_from_slice(&sysup(boot_ns, r.time_flow_start_ns).to_be_bytes())
            }
            Col::EndSysUp => {
                out.extend_from_slice(&sysup(boot_ns, r.time_flow_end_ns).to_be_bytes())
            }
            Col::StartNs => out.extend_from_slice(&ns_to_ntp(r.time_flow_start_ns).to_be_bytes()),
            Col::EndNs => out.extend_from_slice(&ns_to_ntp(r.time_flow_end_ns).to_be_bytes()),
        }
    }
}

fn record_len(fields: &[(u16, u16, Col)]) -> usize {
    fields.iter().map(|f| f.1 as usize).sum()
}

fn is_v6(r: &FlowRecord) -> bool {
    !(addr_is_v4(&r.src_addr) || addr_is_v4(&r.dst_addr))
        && (r.src_addr != [0; 16] || r.dst_addr != [0; 16])
}

/// State shared by the v9 and IPFIX encoders.
#[derive(Debug, Clone)]
struct TemplatedState {
    domain: u32,
    boot_ns: u64,
    sequence: u32,
    packets: u64,
    template_every: u64,
    max_datagram: usize,
    announced_rate: Option<u64>,
    force_templates: bool,
}

/// Data records of `records` that go into one message: same address family runs are grouped
/// into data sets; stops at a record whose sampling rate differs from the first.
fn data_sets(
    st: &TemplatedState,
    ipfix: bool,
    room: usize,
    records: &[FlowRecord],
    out: &mut Vec<u8>,
) -> usize {
    let f4 = standard_fields(false, ipfix);
    let f6 = standard_fields(true, ipfix);
    let mut used = 0usize;
    let mut n = 0usize;
    let rate = records.first().map_or(0, |r| r.sampling_rate);
    while n < records.len() {
        let v6 = is_v6(&records[n]);
        let fields = if v6 { &f6 } else { &f4 };
        let rl = record_len(fields);
        // At least one record per message, however small `room` is.
        if n > 0 && used + 4 + rl > room {
            break;
        }
        let set_at = out.len();
        out.extend_from_slice(&(if v6 { TID_V6 } else { TID_V4 }).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        used += 4;
        while n < records.len()
            && is_v6(&records[n]) == v6
            && records[n].sampling_rate == rate
            && (used + rl <= room || n == 0)
        {
            encode_record(&records[n], fields, v6, st.boot_ns, out);
            used += rl;
            n += 1;
        }
        // v9 FlowSets are padded to 4 bytes (RFC 3954 s5.3); IPFIX needs no padding.
        if !ipfix {
            let pad = (4 - (out.len() - set_at) % 4) % 4;
            out.resize(out.len() + pad, 0);
            used += pad;
        }
        let len = (out.len() - set_at) as u16;
        out[set_at + 2..set_at + 4].copy_from_slice(&len.to_be_bytes());
        if n < records.len() && records[n].sampling_rate != rate {
            break;
        }
    }
    n
}

fn template_body(fields: &[(u16, u16, Col)], tid: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&tid.to_be_bytes());
    out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for &(ie, len, _) in fields {
        out.extend_from_slice(&ie.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// NetFlow v9 encoder (RFC 3954): standard IPv4 and IPv6 templates, an options template
/// announcing the sampling interval (IE 34), templates resent every `template_every` packets.
#[derive(Debug, Clone)]
pub struct V9Encoder {
    st: TemplatedState,
}

impl V9Encoder {
    /// An encoder for source id `source_id`, whose exporter booted at `boot_ns`.
    pub fn new(source_id: u32, boot_ns: u64) -> Self {
        V9Encoder {
            st: TemplatedState {
                domain: source_id,
                boot_ns,
                sequence: 0,
                packets: 0,
                template_every: 20,
                max_datagram: 1400,
                announced_rate: None,
                force_templates: false,
            },
        }
    }

    /// Resends templates every `n` packets (1: every packet).
    pub fn template_every(mut self, n: u64) -> Self {
        self.st.template_every = n.max(1);
        self
    }

    /// Largest datagram to build (bytes); at least one record is always written.
    pub fn max_datagram(mut self, n: usize) -> Self {
        self.st.max_datagram = n;
        self
    }
}

impl ExportEncoder for V9Encoder {
    fn encode_datagram(
        &mut self,
        export_ns: u64,
        records: &[FlowRecord],
        out: &mut Vec<u8>,
    ) -> usize {
        let st = &mut self.st;
        let start = out.len();
        // Header: version count sysUpTime unix_secs sequence source_id (RFC 3954 s5.1)
        out.extend_from_slice(&9u16.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&sysup(st.boot_ns, export_ns).to_be_bytes());
        out.extend_from_slice(&((export_ns / 1_000_000_000) as u32).to_be_bytes());
        out.extend_from_slice(&st.sequence.to_be_bytes());
        out.extend_from_slice(&st.domain.to_be_bytes());
        let mut count = 0u16;
        let send_templates = st.packets.is_multiple_of(st.template_every) || st.force_templates;
        st.force_templates = false;
        if send_templates {
            let set_at = out.len();
            out.extend_from_slice(&[0, 0, 0, 0]);
            template_body(&standard_fields(false, false), TID_V4, out);
            template_body(&standard_fields(true, false), TID_V6, out);
            let len = (out.len() - set_at) as u16;
            out[set_at + 2..set_at + 4].copy_from_slice(&len.to_be_bytes());
            // Options template (RFC 3954 s6.1): scope System(1) len 4; samplingInterval(34) 4.
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&20u16.to_be_bytes());
            out.extend_from_slice(&TID_SAMPLING.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 4]);
            out.extend_from_slice(&id::SAMPLING_INTERVAL.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&[0, 0]); // padding to 4 bytes
            count += 3;
        }
        let rate = records.first().map_or(0, |r| r.sampling_rate);
        if rate != 0 && (send_templates || st.announced_rate != Some(rate)) {
            out.extend_from_slice(&TID_SAMPLING.to_be_bytes());
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&st.domain.to_be_bytes());
            out.extend_from_slice(&(rate as u32).to_be_bytes());
            st.announced_rate = Some(rate);
            count += 1;
        }
        let room = st.max_datagram.saturating_sub(out.len() - start);
        let n = data_sets(st, false, room, records, out);
        count += n as u16;
        out[start + 2..start + 4].copy_from_slice(&count.to_be_bytes());
        st.sequence = st.sequence.wrapping_add(1);
        st.packets += 1;
        n
    }

    fn resend_templates(&mut self) {
        self.st.force_templates = true;
    }
}

/// IPFIX encoder (RFC 7011): standard IPv4 and IPv6 templates with nanosecond timestamps, an
/// options template announcing sampling as samplingPacketInterval/Space (IEs 305/306).
#[derive(Debug, Clone)]
pub struct IpfixEncoder {
    st: TemplatedState,
}

impl IpfixEncoder {
    /// An encoder for observation domain `domain`.
    pub fn new(domain: u32) -> Self {
        IpfixEncoder {
            st: TemplatedState {
                domain,
                boot_ns: 0,
                sequence: 0,
                packets: 0,
                template_every: 20,
                max_datagram: 1400,
                announced_rate: None,
                force_templates: false,
            },
        }
    }

    /// Resends templates every `n` messages (1: every message).
    pub fn template_every(mut self, n: u64) -> Self {
        self.st.template_every = n.max(1);
        self
    }

    /// Largest message to build (bytes); at least one record is always written.
    pub fn max_datagram(mut self, n: usize) -> Self {
        self.st.max_datagram = n;
        self
    }
}

impl ExportEncoder for IpfixEncoder {
    fn encode_datagram(
        &mut self,
        export_ns: u64,
        records: &[FlowRecord],
        out: &mut Vec<u8>,
    ) -> usize {
        let st = &mut self.st;
        let start = out.len();
        // Header: version(10) length exportTime sequenceNumber observationDomainId (s3.1)
        out.extend_from_slice(&10u16.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&((export_ns / 1_000_000_000) as u32).to_be_bytes());
        out.extend_from_slice(&st.sequence.to_be_bytes());
        out.extend_from_slice(&st.domain.to_be_bytes());
        let send_templates = st.packets.is_multiple_of(st.template_every) || st.force_templates;
        st.force_templates = false;
        let mut opts = 0u32;
        if send_templates {
            let set_at = out.len();
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            template_body(&standard_fields(false, true), TID_V4, out);
            template_body(&standard_fields(true, true), TID_V6, out);
            let len = (out.len() - set_at) as u16;
            out[set_at + 2..set_at + 4].copy_from_slice(&len.to_be_bytes());
            // Options template set (s3.4.2.2): scope observationDomainId(149);
            // samplingPacketInterval(305), samplingPacketSpace(306).
            out.extend_from_slice(&3u16.to_be_bytes());
            out.extend_from_slice(&22u16.to_be_bytes());
            out.extend_from_slice(&TID_SAMPLING.to_be_bytes());
            out.extend_from_slice(&3u16.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            for ie in [
                149u16,
                id::SAMPLING_PACKET_INTERVAL,
                id::SAMPLING_PACKET_SPACE,
            ] {
                out.extend_from_slice(&ie.to_be_bytes());
                out.extend_from_slice(&4u16.to_be_bytes());
            }
        }
        let rate = records.first().map_or(0, |r| r.sampling_rate);
        if rate != 0 && (send_templates || st.announced_rate != Some(rate)) {
            out.extend_from_slice(&TID_SAMPLING.to_be_bytes());
            out.extend_from_slice(&16u16.to_be_bytes());
            out.extend_from_slice(&st.domain.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&((rate - 1) as u32).to_be_bytes());
            st.announced_rate = Some(rate);
            opts = 1;
        }
        let room = st.max_datagram.saturating_sub(out.len() - start);
        let n = data_sets(st, true, room, records, out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        // RFC 7011 s3.1: the sequence counts data records (options data included).
        st.sequence = st.sequence.wrapping_add(n as u32 + opts);
        st.packets += 1;
        n
    }

    fn resend_templates(&mut self) {
        self.st.force_templates = true;
    }
}
