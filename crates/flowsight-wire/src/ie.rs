//! Information elements: which IANA IPFIX IE (RFC 7012 s4, the IANA "IPFIX Information
//! Elements" registry, whose ids 1-127 are NetFlow v9's field types of RFC 3954 s8) fills which
//! flow column, and the conversions between wire values and [`FlowRecord`] fields.

use crate::reader::uint_be;
use flowsight_schema::{Addr, FlowRecord, addr_from_v4};

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970), RFC 7011 s6.1.9.
pub(crate) const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// IE numbers used by name in the code.
#[allow(missing_docs)]
pub mod id {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL_IDENTIFIER: u16 = 4;
    pub const IP_CLASS_OF_SERVICE: u16 = 5;
    pub const TCP_CONTROL_BITS: u16 = 6;
    pub const SOURCE_TRANSPORT_PORT: u16 = 7;
    pub const SOURCE_IPV4_ADDRESS: u16 = 8;
    pub const SOURCE_IPV4_PREFIX_LENGTH: u16 = 9;
    pub const INGRESS_INTERFACE: u16 = 10;
    pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
    pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
    pub const DESTINATION_IPV4_PREFIX_LENGTH: u16 = 13;
    pub const EGRESS_INTERFACE: u16 = 14;
    pub const IP_NEXT_HOP_IPV4_ADDRESS: u16 = 15;
    pub const BGP_SOURCE_AS_NUMBER: u16 = 16;
    pub const BGP_DESTINATION_AS_NUMBER: u16 = 17;
    pub const BGP_NEXT_HOP_IPV4_ADDRESS: u16 = 18;
    pub const FLOW_END_SYS_UP_TIME: u16 = 21;
    pub const FLOW_START_SYS_UP_TIME: u16 = 22;
    pub const SOURCE_IPV6_ADDRESS: u16 = 27;
    pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
    pub const SOURCE_IPV6_PREFIX_LENGTH: u16 = 29;
    pub const DESTINATION_IPV6_PREFIX_LENGTH: u16 = 30;
    pub const FLOW_LABEL_IPV6: u16 = 31;
    pub const ICMP_TYPE_CODE_IPV4: u16 = 32;
    pub const SAMPLING_INTERVAL: u16 = 34;
    pub const SAMPLING_ALGORITHM: u16 = 35;
    pub const SAMPLER_ID: u16 = 48;
    pub const SAMPLER_MODE: u16 = 49;
    pub const SAMPLER_RANDOM_INTERVAL: u16 = 50;
    pub const FRAGMENT_IDENTIFICATION: u16 = 54;
    pub const SOURCE_MAC_ADDRESS: u16 = 56;
    pub const POST_DESTINATION_MAC_ADDRESS: u16 = 57;
    pub const VLAN_ID: u16 = 58;
    pub const POST_VLAN_ID: u16 = 59;
    pub const IP_VERSION: u16 = 60;
    pub const FLOW_DIRECTION: u16 = 61;
    pub const IP_NEXT_HOP_IPV6_ADDRESS: u16 = 62;
    pub const BGP_NEXT_HOP_IPV6_ADDRESS: u16 = 63;
    pub const MPLS_TOP_LABEL_STACK_SECTION: u16 = 70;
    pub const DESTINATION_MAC_ADDRESS: u16 = 80;
    pub const POST_SOURCE_MAC_ADDRESS: u16 = 81;
    pub const OCTET_TOTAL_COUNT: u16 = 85;
    pub const PACKET_TOTAL_COUNT: u16 = 86;
    pub const FRAGMENT_OFFSET: u16 = 88;
    pub const FORWARDING_STATUS: u16 = 89;
    pub const BGP_NEXT_ADJACENT_AS_NUMBER: u16 = 128;
    pub const OBSERVATION_POINT_ID: u16 = 138;
    pub const ICMP_TYPE_CODE_IPV6: u16 = 139;
    pub const FLOW_START_SECONDS: u16 = 150;
    pub const FLOW_END_SECONDS: u16 = 151;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
    pub const FLOW_START_MICROSECONDS: u16 = 154;
    pub const FLOW_END_MICROSECONDS: u16 = 155;
    pub const FLOW_START_NANOSECONDS: u16 = 156;
    pub const FLOW_END_NANOSECONDS: u16 = 157;
    pub const FLOW_START_DELTA_MICROSECONDS: u16 = 158;
    pub const FLOW_END_DELTA_MICROSECONDS: u16 = 159;
    pub const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
    pub const ICMP_TYPE_IPV4: u16 = 176;
    pub const ICMP_CODE_IPV4: u16 = 177;
    pub const ICMP_TYPE_IPV6: u16 = 178;
    pub const ICMP_CODE_IPV6: u16 = 179;
    pub const IP_TTL: u16 = 192;
    pub const FRAGMENT_FLAGS: u16 = 197;
    pub const DOT1Q_VLAN_ID: u16 = 243;
    pub const POST_DOT1Q_VLAN_ID: u16 = 254;
    pub const ETHERNET_TYPE: u16 = 256;
    pub const SELECTOR_ID: u16 = 302;
    pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
    pub const SAMPLING_PACKET_SPACE: u16 = 306;
    pub const INTERFACE_NAME: u16 = 82;
    pub const INTERFACE_DESCRIPTION: u16 = 83;
}

/// v9 options scope field types (RFC 3954 s6.1): 2 is "Interface", its value an ifIndex.
pub(crate) const V9_SCOPE_INTERFACE: u16 = 2;

/// A short text field of an options record (interface name or description), held inline so
/// [`Scratch`] stays `Copy`; longer values are cut at [`IfText::MAX`] bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IfText {
    buf: [u8; IfText::MAX],
    len: u8,
}

impl IfText {
    pub(crate) const MAX: usize = 64;

    /// RFC 7011 s6.1.6: strings are UTF-8; fixed-length fields are padded, here with NULs or
    /// spaces, which are dropped.
    pub(crate) fn new(s: &[u8]) -> IfText {
        let end = s
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |p| p + 1);
        let n = end.min(IfText::MAX);
        let mut buf = [0u8; IfText::MAX];
        buf[..n].copy_from_slice(&s[..n]);
        IfText { buf, len: n as u8 }
    }

    /// The text (invalid UTF-8 replaced).
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.buf[..self.len as usize])
    }
}

/// Where a field's value goes. A template compiles into a list of these (a decode plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Skip,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    Proto,
    Tos,
    TcpFlags,
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
    NextHopAs,
    FlowLabel,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    SrcMac,
    DstMac,
    PostSrcMac,
    PostDstMac,
    Vlan,
    PostVlan,
    Dot1qVlan,
    Direction,
    Mpls,
    FwdStatus,
    Ttl,
    FragFlags,
    FragId,
    FragOffset,
    IpVersion,
    EtherType,
    ObsPoint,
    StartSysUp,
    EndSysUp,
    StartSec,
    EndSec,
    StartMs,
    EndMs,
    StartNtp,
    EndNtp,
    StartDeltaUs,
    EndDeltaUs,
    SysInitMs,
    SamplingInterval,
    SamplerId,
    SamplingPktInterval,
    SamplingPktSpace,
    IfName,
    IfDesc,
}

/// The target of an IANA IE (`pen == 0`); enterprise-specific IEs are skipped (kept out of
/// the plan, so they cost nothing per record).
pub(crate) fn target_for(pen: u32, ie: u16) -> Target {
    use Target as T;
    use id::*;
    if pen != 0 {
        return T::Skip;
    }
    match ie {
        OCTET_DELTA_COUNT => T::Bytes,
        PACKET_DELTA_COUNT => T::Packets,
        OCTET_TOTAL_COUNT => T::BytesTotal,
        PACKET_TOTAL_COUNT => T::PacketsTotal,
        PROTOCOL_IDENTIFIER => T::Proto,
        IP_CLASS_OF_SERVICE => T::Tos,
        TCP_CONTROL_BITS => T::TcpFlags,
        SOURCE_TRANSPORT_PORT => T::SrcPort,
        DESTINATION_TRANSPORT_PORT => T::DstPort,
        SOURCE_IPV4_ADDRESS | SOURCE_IPV6_ADDRESS => T::SrcAddr,
        DESTINATION_IPV4_ADDRESS | DESTINATION_IPV6_ADDRESS => T::DstAddr,
        SOURCE_IPV4_PREFIX_LENGTH | SOURCE_IPV6_PREFIX_LENGTH => T::SrcMask,
        DESTINATION_IPV4_PREFIX_LENGTH | DESTINATION_IPV6_PREFIX_LENGTH => T::DstMask,
        INGRESS_INTERFACE => T::InIf,
        EGRESS_INTERFACE => T::OutIf,
        IP_NEXT_HOP_IPV4_ADDRESS | IP_NEXT_HOP_IPV6_ADDRESS => T::NextHop,
        BGP_NEXT_HOP_IPV4_ADDRESS | BGP_NEXT_HOP_IPV6_ADDRESS => T::BgpNextHop,
        BGP_SOURCE_AS_NUMBER => T::SrcAs,
        BGP_DESTINATION_AS_NUMBER => T::DstAs,
        BGP_NEXT_ADJACENT_AS_NUMBER => T::NextHopAs,
        FLOW_LABEL_IPV6 => T::FlowLabel,
        ICMP_TYPE_CODE_IPV4 | ICMP_TYPE_CODE_IPV6 => T::IcmpTypeCode,
        ICMP_TYPE_IPV4 | ICMP_TYPE_IPV6 => T::IcmpType,
        ICMP_CODE_IPV4 | ICMP_CODE_IPV6 => T::IcmpCode,
        SOURCE_MAC_ADDRESS => T::SrcMac,
        DESTINATION_MAC_ADDRESS => T::DstMac,
        POST_SOURCE_MAC_ADDRESS => T::PostSrcMac,
        POST_DESTINATION_MAC_ADDRESS => T::PostDstMac,
        VLAN_ID => T::Vlan,
        POST_VLAN_ID | POST_DOT1Q_VLAN_ID => T::PostVlan,
        DOT1Q_VLAN_ID => T::Dot1qVlan,
        FLOW_DIRECTION => T::Direction,
        MPLS_TOP_LABEL_STACK_SECTION => T::Mpls,
        FORWARDING_STATUS => T::FwdStatus,
        IP_TTL => T::Ttl,
        FRAGMENT_FLAGS => T::FragFlags,
        FRAGMENT_IDENTIFICATION => T::FragId,
        FRAGMENT_OFFSET => T::FragOffset,
        IP_VERSION => T::IpVersion,
        ETHERNET_TYPE => T::EtherType,
        OBSERVATION_POINT_ID => T::ObsPoint,
        FLOW_START_SYS_UP_TIME => T::StartSysUp,
        FLOW_END_SYS_UP_TIME => T::EndSysUp,
        FLOW_START_SECONDS => T::StartSec,
        FLOW_END_SECONDS => T::EndSec,
        FLOW_START_MILLISECONDS => T::StartMs,
        FLOW_END_MILLISECONDS => T::EndMs,
        FLOW_START_MICROSECONDS | FLOW_START_NANOSECONDS => T::StartNtp,
        FLOW_END_MICROSECONDS | FLOW_END_NANOSECONDS => T::EndNtp,
        FLOW_START_DELTA_MICROSECONDS => T::StartDeltaUs,
        FLOW_END_DELTA_MICROSECONDS => T::EndDeltaUs,
        SYSTEM_INIT_TIME_MILLISECONDS => T::SysInitMs,
        SAMPLING_INTERVAL | SAMPLER_RANDOM_INTERVAL => T::SamplingInterval,
        SAMPLER_ID | SELECTOR_ID => T::SamplerId,
        SAMPLING_PACKET_INTERVAL => T::SamplingPktInterval,
        SAMPLING_PACKET_SPACE => T::SamplingPktSpace,
        INTERFACE_NAME => T::IfName,
        INTERFACE_DESCRIPTION => T::IfDesc,
        _ => T::Skip,
    }
}

/// Whether a target writes one column and nothing else, so it can be decoded
/// column-at-a-time; the rest go through [`Scratch`].
pub(crate) fn is_direct(t: Target) -> bool {
    use Target as T;
    !matches!(
        t,
        T::Skip
            | T::BytesTotal
            | T::PacketsTotal
            | T::PostSrcMac
            | T::PostDstMac
            | T::IpVersion
            | T::StartSysUp
            | T::EndSysUp
            | T::StartSec
            | T::EndSec
            | T::StartMs
            | T::EndMs
            | T::StartNtp
            | T::EndNtp
            | T::StartDeltaUs
            | T::EndDeltaUs
            | T::SysInitMs
            | T::SamplingInterval
            | T::SamplerId
            | T::SamplingPktInterval
            | T::SamplingPktSpace
            | T::IfName
            | T::IfDesc
    )
}

/// Per-record values that need the whole record (or the message header) before they can be
/// turned into columns: times, sampling, totals.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scratch {
    pub start_sysup: Option<u32>,
    pub end_sysup: Option<u32>,
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    pub start_delta_us: Option<u32>,
    pub end_delta_us: Option<u32>,
    pub sys_init_ms: Option<u64>,
    pub sampling_interval: Option<u64>,
    pub sampler_id: Option<u32>,
    pub pkt_interval: Option<u64>,
    pub pkt_space: Option<u64>,
    pub bytes_total: Option<u64>,
    pub packets_total: Option<u64>,
    pub have_bytes: bool,
    pub have_packets: bool,
    pub have_icmp: bool,
    pub have_etype: bool,
    pub post_src_mac: u64,
    pub post_dst_mac: u64,
    pub ip_version: u8,
    /// interfaceName / interfaceDescription of an interface options record (RFC 7012 IE
    /// 82/83).
    pub if_name: Option<IfText>,
    pub if_desc: Option<IfText>,
}

impl Scratch {
    /// The sampling rate the record itself states (RFC 7012 IEs 34/50, or 305/306 per
    /// RFC 5477 s8.2: rate = (interval + space) / interval).
    pub(crate) fn own_sampling_rate(&self) -> Option<u64> {
        if let Some(i) = self.sampling_interval.filter(|&i| i > 0) {
            return Some(i);
        }
        match (self.pkt_interval, self.pkt_space) {
            (Some(i), Some(s)) if i > 0 => Some((i + s) / i),
            _ => None,
        }
    }
}

#[inline]
pub(crate) fn addr_of(s: &[u8]) -> Addr {
    match s.len() {
        4 => addr_from_v4(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            a
        }
        _ => [0u8; 16],
    }
}

#[inline]
pub(crate) fn mac_of(s: &[u8]) -> u64 {
    if s.len() == 6 { uint_be(s) } else { 0 }
}

/// NTP timestamp (RFC 7011 s6.1.9/6.1.10: seconds since 1900, 2^-32 fractions) to Unix ns.
#[inline]
pub(crate) fn ntp_to_ns(v: u64) -> u64 {
    let secs = (v >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let frac = v & 0xffff_ffff;
    secs * 1_000_000_000 + ((frac * 1_000_000_000) >> 32)
}

/// Unix ns to an NTP timestamp (inverse of [`ntp_to_ns`], rounding the fraction up so the
/// round trip is exact).
pub fn ns_to_ntp(ns: u64) -> u64 {
    let secs = ns / 1_000_000_000 + NTP_UNIX_OFFSET;
    let rem = ns % 1_000_000_000;
    let frac = (rem << 32).div_ceil(1_000_000_000);
    (secs << 32) | frac
}

/// Writes one field value into the record or the scratch.
#[inline(always)]
pub(crate) fn apply(rec: &mut FlowRecord, sc: &mut Scratch, t: Target, s: &[u8]) {
    use Target as T;
    match t {
        T::Skip => {}
        T::Bytes => {
            rec.bytes = uint_be(s);
            sc.have_bytes = true;
        }
        T::Packets => {
            rec.packets = uint_be(s);
            sc.have_packets = true;
        }
        T::BytesTotal => sc.bytes_total = Some(uint_be(s)),
        T::PacketsTotal => sc.packets_total = Some(uint_be(s)),
        T::Proto => rec.proto = uint_be(s) as u8,
        T::Tos => rec.ip_tos = uint_be(s) as u8,
        T::TcpFlags => rec.tcp_flags = uint_be(s) as u16,
        T::SrcPort => rec.src_port = uint_be(s) as u16,
        T::DstPort => rec.dst_port = uint_be(s) as u16,
        T::SrcAddr => rec.src_addr = addr_of(s),
        T::DstAddr => rec.dst_addr = addr_of(s),
        T::SrcMask => rec.src_net = uint_be(s) as u8,
        T::DstMask => rec.dst_net = uint_be(s) as u8,
        T::InIf => rec.in_if = uint_be(s) as u32,
        T::OutIf => rec.out_if = uint_be(s) as u32,
        T::NextHop => rec.next_hop = addr_of(s),
        T::BgpNextHop => rec.bgp_next_hop = addr_of(s),
        T::SrcAs => rec.src_as = uint_be(s) as u32,
        T::DstAs => rec.dst_as = uint_be(s) as u32,
        T::NextHopAs => rec.next_hop_as = uint_be(s) as u32,
        T::FlowLabel => rec.ipv6_flow_label = (uint_be(s) & 0x000f_ffff) as u32,
        T::IcmpTypeCode => {
            let v = uint_be(s);
            rec.icmp_type = (v >> 8) as u8;
            rec.icmp_code = v as u8;
            sc.have_icmp = true;
        }
        T::IcmpType => {
            rec.icmp_type = uint_be(s) as u8;
            sc.have_icmp = true;
        }
        T::IcmpCode => {
            rec.icmp_code = uint_be(s) as u8;
            sc.have_icmp = true;
        }
        T::SrcMac => rec.src_mac = mac_of(s),
        T::DstMac => rec.dst_mac = mac_of(s),
        T::PostSrcMac => sc.post_src_mac = mac_of(s),
        T::PostDstMac => sc.post_dst_mac = mac_of(s),
        T::Vlan => {
            let v = uint_be(s) as u16 & 0x0fff;
            rec.src_vlan = v;
            if rec.vlan_id == 0 {
                rec.vlan_id = v;
            }
        }
        T::PostVlan => rec.dst_vlan = uint_be(s) as u16 & 0x0fff,
        T::Dot1qVlan => rec.vlan_id = uint_be(s) as u16 & 0x0fff,
        T::Direction => rec.flow_direction = uint_be(s) as u8,
        // RFC 7012 IE 70: 3 octets, label in the top 20 bits.
        T::Mpls => {
            rec.mpls_label = if s.len() >= 3 {
                (uint_be(&s[..3]) >> 4) as u32
            } else {
                0
            }
        }
        // RFC 7270 s4.12: the status lives in the most significant octet when sent as
        // unsigned32, and is the octet itself in the recommended reduced-size encoding.
        T::FwdStatus => rec.forwarding_status = s.first().copied().unwrap_or(0),
        T::Ttl => rec.ip_ttl = uint_be(s) as u8,
        // RFC 5102 fragmentFlags: 0x40 DF, 0x20 MF; stored as the IPv4 header bits (DF 2, MF 1).
        T::FragFlags => rec.ip_flags = (uint_be(s) as u8) >> 5,
        T::FragId => rec.fragment_id = uint_be(s) as u32,
        T::FragOffset => rec.fragment_offset = uint_be(s) as u16,
        T::IpVersion => sc.ip_version = uint_be(s) as u8,
        T::EtherType => {
            rec.etype = uint_be(s) as u16;
            sc.have_etype = true;
        }
        T::ObsPoint => rec.observation_point_id = uint_be(s) as u32,
        T::StartSysUp => sc.start_sysup = Some(uint_be(s) as u32),
        T::EndSysUp => sc.end_sysup = Some(uint_be(s) as u32),
        T::StartSec => sc.start_ns = Some(uint_be(s).saturating_mul(1_000_000_000)),
        T::EndSec => sc.end_ns = Some(uint_be(s).saturating_mul(1_000_000_000)),
        T::StartMs => sc.start_ns = Some(uint_be(s).saturating_mul(1_000_000)),
        T::EndMs => sc.end_ns = Some(uint_be(s).saturating_mul(1_000_000)),
        T::StartNtp => sc.start_ns = Some(ntp_to_ns(uint_be(s))),
        T::EndNtp => sc.end_ns = Some(ntp_to_ns(uint_be(s))),
        T::StartDeltaUs => sc.start_delta_us = Some(uint_be(s) as u32),
        T::EndDeltaUs => sc.end_delta_us = Some(uint_be(s) as u32),
        T::SysInitMs => sc.sys_init_ms = Some(uint_be(s)),
        T::SamplingInterval => sc.sampling_interval = Some(uint_be(s)),
        T::SamplerId => sc.sampler_id = Some(uint_be(s) as u32),
        T::SamplingPktInterval => sc.pkt_interval = Some(uint_be(s)),
        T::SamplingPktSpace => sc.pkt_space = Some(uint_be(s)),
        T::IfName => sc.if_name = Some(IfText::new(s)),
        T::IfDesc => sc.if_desc = Some(IfText::new(s)),
    }
}

/// Time in ns of an uptime-relative timestamp: `t_ms` and `uptime_ms` are both milliseconds
/// since the exporter booted, `export_ns` is the wall time at `uptime_ms` (RFC 3954 s5.1,
/// "sysUpTime"; Cisco v5 "First"/"Last"). Wrapping u32 arithmetic handles the 49.7-day
/// uptime wrap; a timestamp slightly after the export time (clock races) stays after it.
#[inline]
pub(crate) fn sysup_to_ns(export_ns: u64, uptime_ms: u32, t_ms: u32) -> u64 {
    let ago_ms = uptime_ms.wrapping_sub(t_ms) as i32 as i64;
    (export_ns as i64).saturating_sub(ago_ms * 1_000_000).max(0) as u64
}

/// Fills the columns that depend on several fields or on the header. `export_ns` is the
/// message's export time; `uptime_ms` is v9's header sysUpTime (None for IPFIX, whose
/// sysUpTime IEs are relative to systemInitTimeMilliseconds, RFC 7012 IE 160).
#[inline]
pub(crate) fn finalize(
    rec: &mut FlowRecord,
    sc: &Scratch,
    export_ns: u64,
    uptime_ms: Option<u32>,
    sys_init_ms: Option<u64>,
) {
    // Times.
    let sys_init = sc.sys_init_ms.or(sys_init_ms);
    let conv = |abs: Option<u64>, sysup: Option<u32>, delta: Option<u32>| -> Option<u64> {
        if abs.is_some() {
            return abs;
        }
        if let Some(t) = sysup {
            if let Some(up) = uptime_ms {
                return Some(sysup_to_ns(export_ns, up, t));
            }
            if let Some(init) = sys_init {
                return Some((init + t as u64) * 1_000_000);
            }
        }
        delta.map(|d| export_ns.saturating_sub(d as u64 * 1000))
    };
    let start = conv(sc.start_ns, sc.start_sysup, sc.start_delta_us);
    let end = conv(sc.end_ns, sc.end_sysup, sc.end_delta_us);
    // A record with no time at all is stamped with the export time, so time-range queries
    // still find it.
    rec.time_flow_start_ns = start.or(end).unwrap_or(export_ns);
    rec.time_flow_end_ns = end.or(start).unwrap_or(export_ns);

    if !sc.have_bytes {
        rec.bytes = sc.bytes_total.unwrap_or(0);
    }
    if !sc.have_packets {
        rec.packets = sc.packets_total.unwrap_or(0);
    }
    if rec.src_mac == 0 {
        rec.src_mac = sc.post_src_mac;
    }
    if rec.dst_mac == 0 {
        rec.dst_mac = sc.post_dst_mac;
    }
    finalize_l3(rec, sc.have_etype, sc.have_icmp, sc.ip_version);
}

/// Whether nfdump (1.7) puts an ICMP flow's type/code into its destination port when the
/// exporter sent them in their own fields: always for ICMP, and for ICMPv6 only from IPFIX
/// (its NetFlow v9 path leaves ICMPv6 ports 0).
#[inline]
pub(crate) fn icmp_type_in_port(proto: u8, flow_type: u8) -> bool {
    proto == 1 || proto == 58 && flow_type == flowsight_schema::flow_type::IPFIX
}

/// Ethernet type from the address family, and ICMP type/code from the destination port
/// where the exporter encodes them there (Cisco v5 convention, also used by v9 exporters).
#[inline]
pub(crate) fn finalize_l3(rec: &mut FlowRecord, have_etype: bool, have_icmp: bool, ipv: u8) {
    if !have_etype {
        rec.etype = if rec.src_addr != [0; 16] || rec.dst_addr != [0; 16] {
            if flowsight_schema::addr_is_v4(&rec.src_addr)
                || flowsight_schema::addr_is_v4(&rec.dst_addr)
            {
                0x0800
            } else {
                0x86dd
            }
        } else {
            match ipv {
                4 => 0x0800,
                6 => 0x86dd,
                _ => 0,
            }
        };
    }
    if rec.proto == 1 || rec.proto == 58 {
        if !have_icmp {
            rec.icmp_type = (rec.dst_port >> 8) as u8;
            rec.icmp_code = rec.dst_port as u8;
        } else if rec.dst_port == 0 && icmp_type_in_port(rec.proto, rec.flow_type) {
            // The other way round, as nfdump stores it, so port statistics and filters agree
            // with nfdump's.
            rec.dst_port = (rec.icmp_type as u16) << 8 | rec.icmp_code as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_round_trip() {
        for ns in [
            0u64,
            1,
            999_999_999,
            1_705_009_466_286_792_700,
            1_705_009_466_000_000_000,
        ] {
            let ns = ns + 1_000_000_000; // after 1970
            assert_eq!(ntp_to_ns(ns_to_ntp(ns)), ns, "{ns}");
        }
    }

    #[test]
    fn sysuptime_wraps() {
        let export = 1_000_000_000_000u64;
        // Flow started 5 s before export.
        assert_eq!(sysup_to_ns(export, 10_000, 5_000), export - 5_000_000_000);
        // Uptime wrapped past 2^32 ms between flow start and export.
        assert_eq!(
            sysup_to_ns(export, 1_000, u32::MAX - 999),
            export - 2_000_000_000
        );
        // Flow "ends" 1 ms after the export time (exporter clock race).
        assert_eq!(sysup_to_ns(export, 10_000, 10_001), export + 1_000_000);
    }
}
