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

/// One column of the encoders' standard templates (the payloads are read by the reference
/// encoder of the tests).
#[allow(dead_code)]
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
    StartMs,
    EndMs,
}

/// How an IPFIX encoder writes flow start and end times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpfixTime {
    /// flowStartMilliseconds / flowEndMilliseconds (IEs 152/153, dateTimeMilliseconds,
    /// RFC 7011 s6.1.8): milliseconds as exporters have them (Juniper sends these; Cisco
    /// and softflowd send sysUpTime milliseconds); sub-ms parts of the records' times are
    /// dropped.
    Milliseconds,
    /// flowStartNanoseconds / flowEndNanoseconds (IEs 156/157, dateTimeNanoseconds, NTP
    /// format, RFC 7011 s6.1.10): the records' full precision.
    #[default]
    Nanoseconds,
}

/// Which standard template an encoder writes: NetFlow v9 (sysUpTime times, 1-byte TCP
/// flags) or IPFIX with its time unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    V9,
    Ipfix(IpfixTime),
}

impl Flavor {
    fn ipfix(self) -> bool {
        self != Flavor::V9
    }

    /// Index into the table of standard templates.
    fn index(self) -> usize {
        match self {
            Flavor::V9 => 0,
            Flavor::Ipfix(IpfixTime::Nanoseconds) => 1,
            Flavor::Ipfix(IpfixTime::Milliseconds) => 2,
        }
    }
}

fn build_standard_fields(v6: bool, flavor: Flavor) -> Vec<(u16, u16, Col)> {
    let ipfix = flavor.ipfix();
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
    match flavor {
        // Nanosecond timestamps (RFC 7011 s6.1.10) keep the records' full precision.
        Flavor::Ipfix(IpfixTime::Nanoseconds) => {
            f.push((id::FLOW_START_NANOSECONDS, 8, Col::StartNs));
            f.push((id::FLOW_END_NANOSECONDS, 8, Col::EndNs));
        }
        // Milliseconds since the Unix epoch (RFC 7011 s6.1.8).
        Flavor::Ipfix(IpfixTime::Milliseconds) => {
            f.push((id::FLOW_START_MILLISECONDS, 8, Col::StartMs));
            f.push((id::FLOW_END_MILLISECONDS, 8, Col::EndMs));
        }
        Flavor::V9 => {
            f.push((id::FLOW_START_SYS_UP_TIME, 4, Col::StartSysUp));
            f.push((id::FLOW_END_SYS_UP_TIME, 4, Col::EndSysUp));
        }
    }
    f
}

/// The standard template of a family and protocol, built once.
fn standard_fields(v6: bool, flavor: Flavor) -> &'static [(u16, u16, Col)] {
    static T: std::sync::OnceLock<[Vec<(u16, u16, Col)>; 6]> = std::sync::OnceLock::new();
    let t = T.get_or_init(|| {
        let ms = Flavor::Ipfix(IpfixTime::Milliseconds);
        let ns = Flavor::Ipfix(IpfixTime::Nanoseconds);
        [
            build_standard_fields(false, Flavor::V9),
            build_standard_fields(true, Flavor::V9),
            build_standard_fields(false, ns),
            build_standard_fields(true, ns),
            build_standard_fields(false, ms),
            build_standard_fields(true, ms),
        ]
    });
    &t[v6 as usize + 2 * flavor.index()]
}

/// Milliseconds-since-boot of an absolute time.
fn sysup(boot_ns: u64, t_ns: u64) -> u32 {
    ((t_ns as i64 - boot_ns as i64) / 1_000_000) as u32
}

fn addr_bytes(a: &Addr, v6: bool) -> &[u8] {
    if v6 { a } else { &a[12..] }
}

#[cfg(test)]
fn encode_record(
    r: &FlowRecord,
    fields: &[(u16, u16, Col)],
    v6: bool,
    boot_ns: u64,
    out: &mut Vec<u8>,
) {
    // One stack buffer per record, appended once: no capacity check per field.
    let mut buf = [0u8; 256];
    let mut o = 0usize;
    let mut w = |b: &[u8]| {
        buf[o..o + b.len()].copy_from_slice(b);
        o += b.len();
    };
    for &(_, _, c) in fields {
        match c {
            Col::Bytes => w(&r.bytes.to_be_bytes()),
            Col::Packets => w(&r.packets.to_be_bytes()),
            Col::Proto => w(&[r.proto]),
            Col::Tos => w(&[r.ip_tos]),
            Col::TcpFlags(1) => w(&[r.tcp_flags as u8]),
            Col::TcpFlags(_) => w(&r.tcp_flags.to_be_bytes()),
            Col::SrcPort => w(&r.src_port.to_be_bytes()),
            Col::DstPort => w(&r.dst_port.to_be_bytes()),
            Col::SrcAddr => w(addr_bytes(&r.src_addr, v6)),
            Col::DstAddr => w(addr_bytes(&r.dst_addr, v6)),
            Col::SrcMask => w(&[r.src_net]),
            Col::DstMask => w(&[r.dst_net]),
            Col::InIf => w(&r.in_if.to_be_bytes()),
            Col::OutIf => w(&r.out_if.to_be_bytes()),
            Col::NextHop => w(addr_bytes(&r.next_hop, v6)),
            Col::BgpNextHop => w(addr_bytes(&r.bgp_next_hop, v6)),
            Col::SrcAs => w(&r.src_as.to_be_bytes()),
            Col::DstAs => w(&r.dst_as.to_be_bytes()),
            Col::NextAs => w(&r.next_hop_as.to_be_bytes()),
            Col::SrcMac => w(&r.src_mac.to_be_bytes()[2..]),
            Col::DstMac => w(&r.dst_mac.to_be_bytes()[2..]),
            Col::Vlan => w(&r.src_vlan.to_be_bytes()),
            Col::PostVlan => w(&r.dst_vlan.to_be_bytes()),
            Col::Dot1q => w(&r.vlan_id.to_be_bytes()),
            Col::Direction => w(&[r.flow_direction]),
            Col::Fwd => w(&[r.forwarding_status]),
            Col::Ttl => w(&[r.ip_ttl]),
            Col::FragFlags => w(&[r.ip_flags << 5]),
            Col::FragId => w(&r.fragment_id.to_be_bytes()),
            Col::FragOff => w(&r.fragment_offset.to_be_bytes()),
            Col::Mpls => w(&((r.mpls_label << 4) | 1).to_be_bytes()[1..]),
            Col::ObsPoint => w(&r.observation_point_id.to_be_bytes()),
            Col::FlowLabel => w(&r.ipv6_flow_label.to_be_bytes()),
            Col::IcmpTypeCode => w(&[r.icmp_type, r.icmp_code]),
            Col::StartSysUp => w(&sysup(boot_ns, r.time_flow_start_ns).to_be_bytes()),
            Col::EndSysUp => w(&sysup(boot_ns, r.time_flow_end_ns).to_be_bytes()),
            Col::StartNs => w(&ns_to_ntp(r.time_flow_start_ns).to_be_bytes()),
            Col::EndNs => w(&ns_to_ntp(r.time_flow_end_ns).to_be_bytes()),
            Col::StartMs => w(&(r.time_flow_start_ns / 1_000_000).to_be_bytes()),
            Col::EndMs => w(&(r.time_flow_end_ns / 1_000_000).to_be_bytes()),
        }
    }
    out.extend_from_slice(&buf[..o]);
}

/// [`encode_record`] for the standard templates, as straight-line code: the generator's hot
/// path. Must write exactly the fields of [`build_standard_fields`] in order (tested).
fn encode_standard(r: &FlowRecord, v6: bool, flavor: Flavor, boot_ns: u64, out: &mut Vec<u8>) {
    let ipfix = flavor.ipfix();
    let mut buf = [0u8; 256];
    let mut o = 0usize;
    let mut w = |b: &[u8]| {
        buf[o..o + b.len()].copy_from_slice(b);
        o += b.len();
    };
    w(&r.bytes.to_be_bytes());
    w(&r.packets.to_be_bytes());
    w(&[r.proto, r.ip_tos]);
    if ipfix {
        w(&r.tcp_flags.to_be_bytes());
    } else {
        w(&[r.tcp_flags as u8]);
    }
    w(&r.src_port.to_be_bytes());
    w(&r.dst_port.to_be_bytes());
    w(addr_bytes(&r.src_addr, v6));
    w(addr_bytes(&r.dst_addr, v6));
    w(&[r.src_net, r.dst_net]);
    w(&r.in_if.to_be_bytes());
    w(&r.out_if.to_be_bytes());
    w(addr_bytes(&r.next_hop, v6));
    w(addr_bytes(&r.bgp_next_hop, v6));
    w(&r.src_as.to_be_bytes());
    w(&r.dst_as.to_be_bytes());
    w(&r.next_hop_as.to_be_bytes());
    w(&r.src_mac.to_be_bytes()[2..]);
    w(&r.dst_mac.to_be_bytes()[2..]);
    w(&r.src_vlan.to_be_bytes());
    w(&r.dst_vlan.to_be_bytes());
    w(&r.vlan_id.to_be_bytes());
    w(&[
        r.flow_direction,
        r.forwarding_status,
        r.ip_ttl,
        r.ip_flags << 5,
    ]);
    w(&r.fragment_id.to_be_bytes());
    w(&r.fragment_offset.to_be_bytes());
    w(&((r.mpls_label << 4) | 1).to_be_bytes()[1..]);
    w(&r.observation_point_id.to_be_bytes());
    w(&[r.icmp_type, r.icmp_code]);
    if v6 {
        w(&r.ipv6_flow_label.to_be_bytes());
    }
    match flavor {
        Flavor::Ipfix(IpfixTime::Nanoseconds) => {
            w(&ns_to_ntp(r.time_flow_start_ns).to_be_bytes());
            w(&ns_to_ntp(r.time_flow_end_ns).to_be_bytes());
        }
        Flavor::Ipfix(IpfixTime::Milliseconds) => {
            w(&(r.time_flow_start_ns / 1_000_000).to_be_bytes());
            w(&(r.time_flow_end_ns / 1_000_000).to_be_bytes());
        }
        Flavor::V9 => {
            w(&sysup(boot_ns, r.time_flow_start_ns).to_be_bytes());
            w(&sysup(boot_ns, r.time_flow_end_ns).to_be_bytes());
        }
    }
    out.extend_from_slice(&buf[..o]);
}

fn record_len(fields: &[(u16, u16, Col)]) -> usize {
    fields.iter().map(|f| f.1 as usize).sum()
}

/// Whether a record goes in the IPv6 template: by its source/destination addresses, or,
/// when it has neither (e.g. from an sFlow sample without an IP header), by its next hops.
fn is_v6(r: &FlowRecord) -> bool {
    if r.src_addr != [0; 16] || r.dst_addr != [0; 16] {
        return !(addr_is_v4(&r.src_addr) || addr_is_v4(&r.dst_addr));
    }
    [r.next_hop, r.bgp_next_hop]
        .iter()
        .find(|a| **a != [0; 16])
        .is_some_and(|a| !addr_is_v4(a))
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
    flavor: Flavor,
    room: usize,
    records: &[FlowRecord],
    out: &mut Vec<u8>,
) -> usize {
    let f4 = standard_fields(false, flavor);
    let f6 = standard_fields(true, flavor);
    let mut used = 0usize;
    let mut n = 0usize;
    let rate = records.first().map_or(0, |r| r.sampling_rate);
    while n < records.len() {
        let v6 = is_v6(&records[n]);
        let fields = if v6 { f6 } else { f4 };
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
            encode_standard(&records[n], v6, flavor, st.boot_ns, out);
            used += rl;
            n += 1;
        }
        // v9 FlowSets are padded to 4 bytes (RFC 3954 s5.3); IPFIX needs no padding.
        if !flavor.ipfix() {
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
            template_body(standard_fields(false, Flavor::V9), TID_V4, out);
            template_body(standard_fields(true, Flavor::V9), TID_V6, out);
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
        let n = data_sets(st, Flavor::V9, room, records, out);
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

/// IPFIX encoder (RFC 7011): standard IPv4 and IPv6 templates with nanosecond timestamps
/// (or milliseconds, see [`IpfixEncoder::time`]), an options template announcing sampling
/// as samplingPacketInterval/Space (IEs 305/306).
#[derive(Debug, Clone)]
pub struct IpfixEncoder {
    st: TemplatedState,
    time: IpfixTime,
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
            time: IpfixTime::default(),
        }
    }

    /// Writes flow times in this unit (default: nanoseconds).
    pub fn time(mut self, time: IpfixTime) -> Self {
        self.time = time;
        self
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
            let flavor = Flavor::Ipfix(self.time);
            template_body(standard_fields(false, flavor), TID_V4, out);
            template_body(standard_fields(true, flavor), TID_V6, out);
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
        let n = data_sets(st, Flavor::Ipfix(self.time), room, records, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::addr_from_v4;

    #[test]
    fn straight_line_encoder_matches_the_template_list() {
        let mut r = FlowRecord {
            bytes: 0x0102_0304_0506_0708,
            packets: 77,
            proto: 6,
            ip_tos: 3,
            tcp_flags: 0x1b2,
            src_port: 1234,
            dst_port: 443,
            src_addr: addr_from_v4(0x0a00_0001),
            dst_addr: addr_from_v4(0xc000_0201),
            next_hop: addr_from_v4(0x0a00_00fe),
            bgp_next_hop: addr_from_v4(0x0a00_00fd),
            src_net: 24,
            dst_net: 16,
            in_if: 5,
            out_if: 6,
            src_as: 64_512,
            dst_as: 15_169,
            next_hop_as: 3_356,
            src_mac: 0x0011_2233_4455,
            dst_mac: 0x6677_8899_aabb,
            src_vlan: 10,
            dst_vlan: 20,
            vlan_id: 30,
            flow_direction: 1,
            forwarding_status: 64,
            ip_ttl: 63,
            ip_flags: 2,
            fragment_id: 9,
            fragment_offset: 8,
            mpls_label: 1000,
            observation_point_id: 4,
            icmp_type: 8,
            icmp_code: 1,
            ipv6_flow_label: 0x12345,
            time_flow_start_ns: 1_700_000_000_123_456_789,
            time_flow_end_ns: 1_700_000_001_000_000_000,
            ..FlowRecord::default()
        };
        let flavors = [
            Flavor::V9,
            Flavor::Ipfix(IpfixTime::Nanoseconds),
            Flavor::Ipfix(IpfixTime::Milliseconds),
        ];
        for v6 in [false, true] {
            for flavor in flavors {
                if v6 {
                    r.src_addr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
                }
                let (mut a, mut b) = (Vec::new(), Vec::new());
                encode_record(
                    &r,
                    standard_fields(v6, flavor),
                    v6,
                    1_699_000_000_000_000_000,
                    &mut a,
                );
                encode_standard(&r, v6, flavor, 1_699_000_000_000_000_000, &mut b);
                assert_eq!(a, b, "v6 {v6} {flavor:?}");
                assert_eq!(a.len(), record_len(standard_fields(v6, flavor)));
            }
        }
    }
}
