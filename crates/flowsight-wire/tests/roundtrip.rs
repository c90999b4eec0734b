//! Property tests: for every format, decode(encode(records)) == records, for every field the
//! format can carry. `carry_*` states, per format, which fields survive and how (the
//! derived ones, like etype or the exporter address, are set to what the decoder must infer).

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{Addr, FlowBatch, FlowRecord, addr_from_ip, addr_from_v4, flow_type};
use flowsight_wire::{
    Decoder, ExportEncoder, IpfixEncoder, IpfixTime, LegacyEncoder, SflowEncoder, V9Encoder,
};
use proptest::prelude::*;
use std::net::IpAddr;

const EXPORTER: &str = "192.0.2.10";
/// A whole second: v9 headers carry export time in seconds only.
const EXPORT_NS: u64 = 1_700_000_000_000_000_000;
const BOOT_NS: u64 = EXPORT_NS - 86_400_000_000_000;
const RECEIVED_NS: u64 = EXPORT_NS + 5_000_000;

fn exporter() -> IpAddr {
    EXPORTER.parse().unwrap()
}

fn v6_addr() -> impl Strategy<Value = Addr> {
    any::<[u8; 14]>().prop_map(|t| {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2..].copy_from_slice(&t);
        a
    })
}

prop_compose! {
    fn record()(
        v6 in any::<bool>(),
        a4 in any::<[u32; 4]>(),
        a6 in [v6_addr(), v6_addr(), v6_addr(), v6_addr()],
        counters in (any::<u64>(), any::<u64>()),
        l4 in (prop::sample::select(vec![1u8, 6, 17, 47, 58, 132]), any::<u16>(), any::<u16>(), any::<u16>()),
        ip in (any::<u8>(), any::<u8>(), 0u8..8, any::<u32>(), any::<u16>(), any::<u32>()),
        ifs in (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        l2 in (any::<u64>(), any::<u64>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>()),
        misc in (any::<u8>(), any::<u8>(), 0u8..=32, 0u8..=32, any::<u32>(), (any::<u8>(), any::<u8>())),
        dur in (0u64..3_600_000, 0u64..3_600_000),
    ) -> FlowRecord {
        let (src, dst, nh, bnh) = if v6 {
            (a6[0], a6[1], a6[2], a6[3])
        } else {
            (addr_from_v4(a4[0]), addr_from_v4(a4[1]), addr_from_v4(a4[2]), addr_from_v4(a4[3]))
        };
        FlowRecord {
            src_addr: src, dst_addr: dst, next_hop: nh, bgp_next_hop: bnh,
            bytes: counters.0, packets: counters.1,
            proto: l4.0, src_port: l4.1, dst_port: l4.2, tcp_flags: l4.3,
            ip_tos: ip.0, ip_ttl: ip.1, ip_flags: ip.2, fragment_id: ip.3,
            // Mostly unfragmented, so transport headers are exercised.
            fragment_offset: if ip.4 % 4 == 0 { ip.4 & 0x1fff } else { 0 },
            ipv6_flow_label: ip.5 & 0xfffff,
            in_if: ifs.0, out_if: ifs.1, src_as: ifs.2, dst_as: ifs.3, next_hop_as: ifs.4,
            src_mac: l2.0 & 0xffff_ffff_ffff, dst_mac: l2.1 & 0xffff_ffff_ffff,
            src_vlan: l2.2 & 0xfff, dst_vlan: l2.3 & 0xfff, vlan_id: l2.4 & 0xfff,
            mpls_label: l2.5 & 0xfffff,
            flow_direction: misc.0, forwarding_status: misc.1, src_net: misc.2, dst_net: misc.3,
            observation_point_id: misc.4, icmp_type: (misc.5).0, icmp_code: (misc.5).1,
            // Millisecond-aligned times at most an hour before export.
            time_flow_start_ns: EXPORT_NS - (dur.0 + dur.1) * 1_000_000,
            time_flow_end_ns: EXPORT_NS - dur.1 * 1_000_000,
            ..FlowRecord::default()
        }
    }
}

fn decode_all(datagrams: &[Vec<u8>]) -> FlowBatch {
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    for d in datagrams {
        dec.decode(exporter(), RECEIVED_NS, d, &mut b).unwrap();
    }
    b
}

/// `recs` encoded by `enc` in as many datagrams as they need.
fn encode_all(enc: &mut dyn ExportEncoder, recs: &[FlowRecord]) -> Vec<Vec<u8>> {
    let mut pkts = Vec::new();
    let mut done = 0;
    while done < recs.len() {
        let mut p = Vec::new();
        done += enc.encode_datagram(EXPORT_NS, &recs[done..], &mut p);
        pkts.push(p);
    }
    pkts
}

/// `recs` through `enc` and back through one decoder: the decoded records and the sequence
/// loss the decoder reported.
fn ipfix_through(mut enc: IpfixEncoder, recs: &[FlowRecord]) -> (Vec<FlowRecord>, u64) {
    let pkts = encode_all(&mut enc, recs);
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    for p in &pkts {
        dec.decode(exporter(), RECEIVED_NS, p, &mut b).unwrap();
    }
    let lost = dec.sequences().iter().map(|(_, s)| s.lost).sum();
    (b.iter().collect(), lost)
}

fn icmp_from_port(r: &mut FlowRecord) {
    if r.proto == 1 || r.proto == 58 {
        r.icmp_type = (r.dst_port >> 8) as u8;
        r.icmp_code = r.dst_port as u8;
    } else {
        r.icmp_type = 0;
        r.icmp_code = 0;
    }
}

/// What NetFlow v1/v5/v7 carry.
fn carry_legacy(version: u16, r: &FlowRecord, seq: u32) -> FlowRecord {
    let v4 = |a: &Addr| addr_from_v4(u32::from_be_bytes([a[12], a[13], a[14], a[15]]));
    let mut c = FlowRecord {
        flow_type: match version {
            1 => flow_type::NETFLOW_V1,
            5 => flow_type::NETFLOW_V5,
            _ => flow_type::NETFLOW_V7,
        },
        time_received_ns: RECEIVED_NS,
        sequence_num: seq,
        sampler_address: addr_from_ip(exporter()),
        src_addr: v4(&r.src_addr),
        dst_addr: v4(&r.dst_addr),
        next_hop: v4(&r.next_hop),
        in_if: r.in_if & 0xffff,
        out_if: r.out_if & 0xffff,
        packets: r.packets.min(u32::MAX as u64),
        bytes: r.bytes.min(u32::MAX as u64),
        time_flow_start_ns: r.time_flow_start_ns,
        time_flow_end_ns: r.time_flow_end_ns,
        src_port: r.src_port,
        dst_port: r.dst_port,
        proto: r.proto,
        ip_tos: r.ip_tos,
        tcp_flags: r.tcp_flags & 0xff,
        etype: 0x0800,
        ..FlowRecord::default()
    };
    if version != 1 {
        c.src_as = r.src_as & 0xffff;
        c.dst_as = r.dst_as & 0xffff;
        c.src_net = r.src_net;
        c.dst_net = r.dst_net;
    }
    if c.proto == 1 || c.proto == 58 {
        // Type in the source port (fprobe) or type << 8 | code in the destination port (Cisco)
        // both end up in the destination port.
        c.dst_port = ((c.src_port as u32 * 256 + c.dst_port as u32) & 0xffff) as u16;
        c.src_port = 0;
    }
    icmp_from_port(&mut c);
    c
}

fn carry_templated(r: &FlowRecord, ipfix: bool, seq: u32, rate: u64) -> FlowRecord {
    let mut c = *r;
    c.flow_type = if ipfix {
        flow_type::IPFIX
    } else {
        flow_type::NETFLOW_V9
    };
    c.time_received_ns = RECEIVED_NS;
    c.sequence_num = seq;
    c.sampler_address = addr_from_ip(exporter());
    c.observation_domain_id = 42;
    c.sampling_rate = rate;
    let v6 = !flowsight_schema::addr_is_v4(&c.src_addr);
    c.etype = if v6 { 0x86dd } else { 0x0800 };
    if !v6 {
        c.ipv6_flow_label = 0;
    }
    if !ipfix {
        c.tcp_flags &= 0xff;
    }
    // nfdump's rule: ICMP type/code go to the destination port, for ICMPv6 only from IPFIX.
    if (c.proto == 1 || c.proto == 58 && ipfix) && c.dst_port == 0 {
        c.dst_port = (c.icmp_type as u16) << 8 | c.icmp_code as u16;
    }
    c
}

fn carry_sflow(r: &FlowRecord, seq: u32) -> FlowRecord {
    let mut c = *r;
    let v6 = !flowsight_schema::addr_is_v4(&c.src_addr);
    c.flow_type = flow_type::SFLOW_5;
    c.time_received_ns = RECEIVED_NS;
    c.time_flow_start_ns = RECEIVED_NS;
    c.time_flow_end_ns = RECEIVED_NS;
    c.sequence_num = seq;
    c.sampler_address = addr_from_ip(exporter());
    c.observation_domain_id = 0;
    c.packets = 1;
    c.bytes &= 0xffff_ffff;
    c.sampling_rate &= 0xffff_ffff;
    c.in_if &= 0x3fff_ffff;
    c.out_if &= 0x3fff_ffff;
    if c.in_if == 0x3fff_ffff {
        c.in_if = 0;
    }
    if c.out_if == 0x3fff_ffff {
        c.out_if = 0;
    }
    c.etype = if v6 { 0x86dd } else { 0x0800 };
    // Fields only NetFlow/IPFIX carry.
    c.flow_direction = 0;
    c.forwarding_status = 0;
    c.observation_point_id = 0;
    if v6 {
        c.fragment_id = 0;
        c.fragment_offset = 0;
        c.ip_flags = 0;
    } else {
        c.ipv6_flow_label = 0;
        c.fragment_id &= 0xffff;
        c.fragment_offset &= 0x1fff;
    }
    c.tcp_flags &= 0x1ff;
    let has_l4 = c.fragment_offset == 0;
    match c.proto {
        6 if has_l4 => {
            c.icmp_type = 0;
            c.icmp_code = 0;
        }
        17 | 132 if has_l4 => {
            c.icmp_type = 0;
            c.icmp_code = 0;
            c.tcp_flags = 0;
        }
        1 | 58 if has_l4 => {
            c.src_port = 0;
            c.dst_port = (c.icmp_type as u16) << 8 | c.icmp_code as u16;
            c.tcp_flags = 0;
        }
        _ => {
            c.src_port = 0;
            c.dst_port = 0;
            c.tcp_flags = 0;
            c.icmp_type = 0;
            c.icmp_code = 0;
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn legacy_round_trip(version in prop::sample::select(vec![1u16, 5, 7]), recs in prop::collection::vec(record(), 1..24)) {
        let mut enc = LegacyEncoder::new(version, BOOT_NS);
        enc.flow_sequence = 1000;
        let mut pkt = Vec::new();
        let n = enc.encode_datagram(EXPORT_NS, &recs, &mut pkt);
        prop_assert_eq!(n, recs.len());
        let b = decode_all(&[pkt]);
        let seq = if version == 1 { 0 } else { 1000 };
        let want: Vec<_> = recs.iter().map(|r| carry_legacy(version, r, seq)).collect();
        let got: Vec<_> = b.iter().collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn v9_round_trip(recs in prop::collection::vec(record(), 1..40), rate in prop::sample::select(vec![0u64, 1, 100, 4096])) {
        let recs: Vec<_> = recs.into_iter().map(|mut r| { r.sampling_rate = rate; r }).collect();
        let pkts = encode_all(&mut V9Encoder::new(42, BOOT_NS), &recs);
        let b = decode_all(&pkts);
        // Sequence numbers count packets; find each record's packet.
        let got: Vec<_> = b.iter().collect();
        prop_assert_eq!(got.len(), recs.len());
        for (g, r) in got.iter().zip(&recs) {
            prop_assert_eq!(*g, carry_templated(r, false, g.sequence_num, rate));
        }
        prop_assert!(got.last().unwrap().sequence_num as usize == pkts.len() - 1);
    }

    #[test]
    fn ipfix_round_trip(recs in prop::collection::vec(record(), 1..40), rate in prop::sample::select(vec![0u64, 1, 100, 4096]), ns in 0u64..1_000_000) {
        // IPFIX carries nanoseconds: shift the times off the millisecond grid.
        let recs: Vec<_> = recs.into_iter().map(|mut r| {
            r.sampling_rate = rate;
            r.time_flow_start_ns += ns;
            r.time_flow_end_ns += ns;
            r
        }).collect();
        let (got, lost) = ipfix_through(IpfixEncoder::new(42), &recs);
        prop_assert_eq!(got.len(), recs.len());
        for (g, r) in got.iter().zip(&recs) {
            prop_assert_eq!(*g, carry_templated(r, true, g.sequence_num, rate));
        }
        // The encoder's sequence numbers count data records: no loss may be reported.
        prop_assert_eq!(lost, 0);
    }

    #[test]
    fn ipfix_millisecond_times_round_trip(recs in prop::collection::vec(record(), 1..40), ns in 0u64..1_000_000) {
        // flowStart/EndMilliseconds (RFC 7011 s6.1.8): times off the millisecond grid come
        // back truncated to it, everything else whole.
        let shifted: Vec<_> = recs.into_iter().map(|mut r| {
            r.time_flow_start_ns += ns;
            r.time_flow_end_ns += ns;
            r
        }).collect();
        let enc = IpfixEncoder::new(42).time(IpfixTime::Milliseconds);
        let (got, lost) = ipfix_through(enc, &shifted);
        prop_assert_eq!(lost, 0);
        prop_assert_eq!(got.len(), shifted.len());
        for (g, r) in got.iter().zip(&shifted) {
            let mut want = carry_templated(r, true, g.sequence_num, 0);
            want.time_flow_start_ns = r.time_flow_start_ns - ns;
            want.time_flow_end_ns = r.time_flow_end_ns - ns;
            prop_assert_eq!(*g, want);
        }
    }

    #[test]
    fn sflow_round_trip(recs in prop::collection::vec(record(), 1..12), rate in any::<u32>()) {
        let recs: Vec<_> = recs.into_iter().map(|mut r| {
            r.sampling_rate = rate as u64;
            // Next hops of the flow's family (the extended router record carries one).
            if !flowsight_schema::addr_is_v4(&r.src_addr) && flowsight_schema::addr_is_v4(&r.next_hop) {
                r.next_hop = [0; 16];
            }
            r
        }).collect();
        let mut enc = SflowEncoder::new(exporter());
        enc.max_datagram = 65_000;
        let mut p = Vec::new();
        let n = enc.encode_datagram(&recs, &[], &mut p);
        prop_assert_eq!(n, recs.len());
        let b = decode_all(&[p]);
        let want: Vec<_> = recs.iter().map(|r| carry_sflow(r, 1)).collect();
        let got: Vec<_> = b.iter().collect();
        prop_assert_eq!(got, want);
    }

    /// Whatever the bytes, decoding never panics and never reports more flows than bytes
    /// could hold.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000), version in prop::sample::select(vec![1u16, 5, 7, 9, 10, 0])) {
        let mut d = data;
        if d.len() >= 4 {
            d[..2].copy_from_slice(&version.to_be_bytes());
            if version == 0 { d[2] = 0; d[3] = 5; }
        }
        let mut dec = Decoder::default();
        let mut b = FlowBatch::default();
        let _ = dec.decode(exporter(), 0, &d, &mut b);
        prop_assert!(b.len() <= d.len());
    }
}

/// Fuzz finding (roundtrip target, 2026-11-23): a record with no source or destination
/// address (an sFlow sample without an IP header) but an IPv6 next hop went out in the IPv4
/// template, which keeps only an address's last 4 bytes.
#[test]
fn ipv6_next_hop_without_addresses_survives_ipfix_and_v9() {
    let nh = [0x20, 0x01, 0x0d, 0xb8, 5, 42, 0, 0, 0, 0, 0, 0, 5, 5, 0, 1];
    let r = FlowRecord {
        next_hop: nh,
        bytes: 1500,
        packets: 1,
        time_flow_start_ns: RECEIVED_NS - 1_000_000_000,
        time_flow_end_ns: RECEIVED_NS - 1_000_000_000,
        ..FlowRecord::default()
    };
    let mut ipfix = IpfixEncoder::new(42);
    let mut v9 = V9Encoder::new(42, RECEIVED_NS - 3_600_000_000_000);
    for enc in [&mut ipfix as &mut dyn ExportEncoder, &mut v9] {
        let mut d = Vec::new();
        assert_eq!(enc.encode_datagram(RECEIVED_NS, &[r], &mut d), 1);
        let b = decode_all(&[d]);
        assert_eq!(b.len(), 1);
        assert_eq!(b.next_hop[0], nh);
        assert_eq!(b.src_addr[0], [0; 16]);
    }
}
