//! Byte-literal tests: one hand-written packet per format, a comment on every field, and the
//! decoded values checked against what the bytes say.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{FlowBatch, addr_from_ip, flow_type};
use flowsight_wire::{Decoder, Format};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn decode(pkts: &[&[u8]]) -> (Decoder, FlowBatch) {
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    for p in pkts {
        dec.decode(ip("10.0.0.1"), 1_700_000_100_000_000_000, p, &mut b)
            .unwrap();
    }
    (dec, b)
}

/// Cisco NetFlow v5 export format: 24-byte header, 48-byte records.
#[test]
fn netflow_v5_packet() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        // --- header ---
        0x00, 0x05,             // version 5
        0x00, 0x01,             // count: 1 record
        0x00, 0x00, 0xea, 0x60, // sys_uptime: 60000 ms
        0x65, 0x53, 0xf1, 0x00, // unix_secs: 1700000000
        0x00, 0x00, 0x00, 0x00, // unix_nsecs: 0
        0x00, 0x00, 0x03, 0xe8, // flow_sequence: 1000
        0x01,                   // engine_type 1
        0x02,                   // engine_id 2
        0x40, 0x64,             // sampling: mode 01, interval 100
        // --- record 1 ---
        192, 0, 2, 1,           // srcaddr 192.0.2.1
        198, 51, 100, 7,        // dstaddr 198.51.100.7
        10, 0, 0, 254,          // nexthop 10.0.0.254
        0x00, 0x03,             // input ifIndex 3
        0x00, 0x04,             // output ifIndex 4
        0x00, 0x00, 0x00, 0x0a, // dPkts 10
        0x00, 0x00, 0x05, 0xdc, // dOctets 1500
        0x00, 0x00, 0xd6, 0xd8, // first: uptime 55000 ms (5 s before export)
        0x00, 0x00, 0xe6, 0x78, // last: uptime 59000 ms (1 s before export)
        0xc3, 0x50,             // srcport 50000
        0x01, 0xbb,             // dstport 443
        0x00,                   // pad1
        0x1b,                   // tcp_flags FIN|SYN|PSH|ACK
        0x06,                   // prot TCP
        0x28,                   // tos 0x28
        0xfd, 0xe8,             // src_as 65000
        0x3a, 0x98,             // dst_as 15000
        24,                     // src_mask /24
        16,                     // dst_mask /16
        0x00, 0x00,             // pad2
    ];
    let (dec, b) = decode(&[pkt]);
    assert_eq!(b.len(), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::NETFLOW_V5);
    assert_eq!(r.sequence_num, 1000);
    assert_eq!(r.sampling_rate, 100);
    assert_eq!(r.observation_domain_id, 0x0102);
    assert_eq!(r.src_addr, addr_from_ip(ip("192.0.2.1")));
    assert_eq!(r.dst_addr, addr_from_ip(ip("198.51.100.7")));
    assert_eq!(r.next_hop, addr_from_ip(ip("10.0.0.254")));
    assert_eq!((r.in_if, r.out_if), (3, 4));
    assert_eq!((r.packets, r.bytes), (10, 1500));
    assert_eq!(
        r.time_flow_start_ns,
        1_700_000_000_000_000_000 - 5_000_000_000
    );
    assert_eq!(
        r.time_flow_end_ns,
        1_700_000_000_000_000_000 - 1_000_000_000
    );
    assert_eq!((r.src_port, r.dst_port), (50000, 443));
    assert_eq!(r.tcp_flags, 0x1b);
    assert_eq!((r.proto, r.ip_tos), (6, 0x28));
    assert_eq!((r.src_as, r.dst_as), (65000, 15000));
    assert_eq!((r.src_net, r.dst_net), (24, 16));
    assert_eq!(r.etype, 0x0800);
    assert_eq!(dec.stats().format(Format::NetflowV5).flows, 1);
}

/// Cisco NetFlow v1: 16-byte header, 48-byte records (proto/tos/flags at 38..41).
#[test]
fn netflow_v1_packet() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        0x00, 0x01,             // version 1
        0x00, 0x01,             // count 1
        0x00, 0x00, 0x27, 0x10, // sys_uptime 10000 ms
        0x65, 0x53, 0xf1, 0x00, // unix_secs 1700000000
        0x00, 0x00, 0x00, 0x00, // unix_nsecs
        10, 1, 1, 1,            // srcaddr
        10, 2, 2, 2,            // dstaddr
        0, 0, 0, 0,             // nexthop
        0x00, 0x01,             // input 1
        0x00, 0x02,             // output 2
        0x00, 0x00, 0x00, 0x01, // dPkts 1
        0x00, 0x00, 0x00, 0x54, // dOctets 84
        0x00, 0x00, 0x27, 0x10, // first = uptime
        0x00, 0x00, 0x27, 0x10, // last = uptime
        0x00, 0x00,             // srcport 0
        0x08, 0x00,             // dstport: ICMP type 8 code 0 (echo request)
        0x00, 0x00,             // pad1
        0x01,                   // prot ICMP
        0x00,                   // tos
        0x00,                   // tcp_flags
        0x00, 0x00, 0x00,       // tcp_retx_cnt, tcp_retx_secs, tcp_misseq_cnt
        0x00, 0x00, 0x00, 0x00, // reserved
    ];
    let (_, b) = decode(&[pkt]);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::NETFLOW_V1);
    assert_eq!((r.packets, r.bytes, r.proto), (1, 84, 1));
    assert_eq!((r.icmp_type, r.icmp_code), (8, 0));
    assert_eq!(r.time_flow_start_ns, 1_700_000_000_000_000_000);
}

/// Cisco NetFlow v7 (Catalyst): 24-byte header, 52-byte records ending in router_sc.
#[test]
fn netflow_v7_packet() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        0x00, 0x07,             // version 7
        0x00, 0x01,             // count 1
        0x00, 0x00, 0x27, 0x10, // sys_uptime
        0x65, 0x53, 0xf1, 0x00, // unix_secs
        0x00, 0x00, 0x00, 0x00, // unix_nsecs
        0x00, 0x00, 0x00, 0x07, // flow_sequence 7
        0x00, 0x00, 0x00, 0x00, // reserved
        10, 1, 1, 1,            // srcaddr
        10, 2, 2, 2,            // dstaddr
        10, 9, 9, 9,            // nexthop
        0x00, 0x01, 0x00, 0x02, // input 1, output 2
        0x00, 0x00, 0x00, 0x02, // dPkts 2
        0x00, 0x00, 0x00, 0x80, // dOctets 128
        0x00, 0x00, 0x27, 0x10, // first
        0x00, 0x00, 0x27, 0x10, // last
        0x00, 0x35, 0x30, 0x39, // srcport 53, dstport 12345
        0x00,                   // flags1 (field validity)
        0x00,                   // tcp_flags
        0x11,                   // prot UDP
        0x00,                   // tos
        0x00, 0x01, 0x00, 0x02, // src_as 1, dst_as 2
        8, 16,                  // src_mask, dst_mask
        0x00, 0x00,             // flags2
        10, 0, 0, 1,            // router_sc: router shortcut 10.0.0.1
    ];
    let (_, b) = decode(&[pkt]);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::NETFLOW_V7);
    assert_eq!(r.sequence_num, 7);
    assert_eq!((r.src_port, r.dst_port, r.proto), (53, 12345, 17));
    assert_eq!((r.src_as, r.dst_as, r.src_net, r.dst_net), (1, 2, 8, 16));
    assert_eq!(r.next_hop, addr_from_ip(ip("10.9.9.9")));
}

/// NetFlow v9 (RFC 3954): header s5.1, template FlowSet s5.2, options template s6.1, data
/// FlowSets s5.3 with padding, options data giving the sampling interval.
#[test]
fn netflow_v9_packet() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        // --- header (s5.1) ---
        0x00, 0x09,             // version 9
        0x00, 0x04,             // count: 4 records (2 templates, 1 options, 1 data)
        0x00, 0x00, 0xea, 0x60, // sysUpTime 60000 ms
        0x65, 0x53, 0xf1, 0x00, // UNIX secs 1700000000
        0x00, 0x00, 0x00, 0x05, // sequence 5 (packets)
        0x00, 0x00, 0x00, 0x21, // source id 33
        // --- template FlowSet (s5.2) ---
        0x00, 0x00,             // FlowSet id 0: template
        0x00, 0x20,             // length 32
        0x01, 0x00,             // template id 256
        0x00, 0x06,             // field count 6
        0x00, 0x08, 0x00, 0x04, // IPV4_SRC_ADDR (8), 4
        0x00, 0x0c, 0x00, 0x04, // IPV4_DST_ADDR (12), 4
        0x00, 0x01, 0x00, 0x04, // IN_BYTES (1), 4
        0x00, 0x02, 0x00, 0x04, // IN_PKTS (2), 4
        0x00, 0x16, 0x00, 0x04, // FIRST_SWITCHED (22), 4
        0x00, 0x04, 0x00, 0x01, // PROTOCOL (4), 1
        // --- options template FlowSet (s6.1) ---
        0x00, 0x01,             // FlowSet id 1: options template
        0x00, 0x18,             // length 24
        0x01, 0x01,             // template id 257
        0x00, 0x04,             // option scope length: 4 bytes (one scope field)
        0x00, 0x08,             // option length: 8 bytes (two option fields)
        0x00, 0x01, 0x00, 0x04, // scope: System (1), 4
        0x00, 0x22, 0x00, 0x04, // SAMPLING_INTERVAL (34), 4
        0x00, 0x23, 0x00, 0x01, // SAMPLING_ALGORITHM (35), 1
        0x00, 0x00,             // padding
        // --- options data FlowSet ---
        0x01, 0x01,             // FlowSet id 257
        0x00, 0x10,             // length 16
        0x0a, 0x00, 0x00, 0x01, // scope System: 10.0.0.1
        0x00, 0x00, 0x01, 0x00, // sampling interval 256
        0x02,                   // algorithm 2 (random)
        0x00, 0x00, 0x00,       // padding
        // --- data FlowSet (s5.3) ---
        0x01, 0x00,             // FlowSet id 256
        0x00, 0x1c,             // length 28 (4 + 21 + 3 padding)
        192, 0, 2, 1,           // src 192.0.2.1
        192, 0, 2, 2,           // dst 192.0.2.2
        0x00, 0x00, 0x10, 0x00, // bytes 4096
        0x00, 0x00, 0x00, 0x04, // packets 4
        0x00, 0x00, 0xe6, 0x78, // first switched: uptime 59000 ms
        0x11,                   // protocol UDP
        0x00, 0x00, 0x00,       // padding
    ];
    let (dec, b) = decode(&[pkt]);
    assert_eq!(b.len(), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::NETFLOW_V9);
    assert_eq!(r.observation_domain_id, 33);
    assert_eq!(r.sequence_num, 5);
    assert_eq!((r.bytes, r.packets, r.proto), (4096, 4, 17));
    assert_eq!(r.src_addr, addr_from_ip(ip("192.0.2.1")));
    // The options record came before the data: its interval applies.
    assert_eq!(r.sampling_rate, 256);
    assert_eq!(
        r.time_flow_start_ns,
        1_700_000_000_000_000_000 - 1_000_000_000
    );
    // No end time in the template: the start time stands for both.
    assert_eq!(r.time_flow_end_ns, r.time_flow_start_ns);
    assert_eq!(dec.stats().options_records, 1);
    assert_eq!(dec.template_count(), 2);
}

/// IPFIX (RFC 7011): message header s3.1, template set s3.4.1 with an enterprise-specific
/// field (s3.2) and a variable-length field (s7), data set s3.3, NTP timestamps s6.1.10.
#[test]
fn ipfix_message() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        // --- message header (s3.1) ---
        0x00, 0x0a,             // version 10
        0x00, 0x66,             // length 102
        0x65, 0x53, 0xf1, 0x00, // export time 1700000000
        0x00, 0x00, 0x00, 0x64, // sequence number 100 (data records)
        0x00, 0x00, 0x00, 0x07, // observation domain 7
        // --- template set (s3.4.1) ---
        0x00, 0x02,             // set id 2: template set
        0x00, 0x24,             // length 36
        0x01, 0x00,             // template id 256
        0x00, 0x06,             // field count 6
        0x00, 0x1b, 0x00, 0x10, // sourceIPv6Address (27), 16
        0x00, 0x1c, 0x00, 0x10, // destinationIPv6Address (28), 16
        0x00, 0x01, 0x00, 0x02, // octetDeltaCount (1), 2: reduced-size encoding (s6.2)
        0x80, 0x64, 0xff, 0xff, // enterprise bit + IE 100, variable length
        0x00, 0x00, 0x73, 0x79, //   enterprise number 29561
        0x00, 0x9c, 0x00, 0x08, // flowStartNanoseconds (156), 8
        0x00, 0x88, 0x00, 0x01, // flowEndReason (136), 1: unused by flowsight
        // --- data set (s3.3) ---
        0x01, 0x00,             // set id 256
        0x00, 0x32,             // length 50 (4 + one 46-byte record)
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst 2001:db8::2
        0x05, 0xdc,             // octets 1500
        0x02, 0xab, 0xcd,       // enterprise field: length 2, value 0xabcd
        0xe8, 0xfe, 0x6f, 0x7f, // NTP seconds: 1700000000 + 2208988800 - 1
        0x80, 0x00, 0x00, 0x00, // NTP fraction 0.5
        0x03,                   // flowEndReason 3
    ];
    let (dec, b) = decode(&[pkt]);
    assert_eq!(b.len(), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::IPFIX);
    assert_eq!(r.observation_domain_id, 7);
    assert_eq!(r.sequence_num, 100);
    assert_eq!(r.src_addr, addr_from_ip(ip("2001:db8::1")));
    assert_eq!(r.dst_addr, addr_from_ip(ip("2001:db8::2")));
    assert_eq!(r.bytes, 1500);
    assert_eq!(r.etype, 0x86dd);
    assert_eq!(r.time_flow_start_ns, 1_699_999_999_500_000_000);
    assert_eq!(dec.stats().format(Format::Ipfix).flows, 1);
}

/// sFlow v5 datagram: header, one flow sample with a raw Ethernet/IPv4/UDP header record
/// and an extended switch record, and one counter sample with generic interface counters.
#[test]
fn sflow_v5_datagram() {
    #[rustfmt::skip]
    let mut pkt: Vec<u8> = vec![
        // --- sample_datagram_v5 ---
        0, 0, 0, 5,             // version 5
        0, 0, 0, 1,             // agent address type IPv4
        10, 0, 0, 9,            // agent 10.0.0.9
        0, 0, 0, 3,             // sub_agent_id 3
        0, 0, 0, 42,            // sequence_number 42
        0, 0, 0x75, 0x30,       // uptime 30000 ms
        0, 0, 0, 2,             // num_samples 2
        // --- flow_sample (enterprise 0, format 1) ---
        0, 0, 0, 1,             // data_format 0:1
        0, 0, 0, 0x7c,          // length 124
        0, 0, 0, 1,             // sequence_number 1
        0, 0, 0, 5,             // source_id: type 0, ifIndex 5
        0, 0, 0x01, 0x00,       // sampling_rate 256
        0, 0, 0x10, 0x00,       // sample_pool 4096
        0, 0, 0, 0,             // drops
        0, 0, 0, 5,             // input ifIndex 5
        0, 0, 0, 6,             // output ifIndex 6
        0, 0, 0, 2,             // flow_records 2
        // flow record: sampled_header (0:1)
        0, 0, 0, 1,             // data_format 0:1
        0, 0, 0, 0x3c,          // length 60
        0, 0, 0, 1,             // header_protocol 1: ethernet
        0, 0, 0x05, 0xee,       // frame_length 1518
        0, 0, 0, 4,             // stripped 4 (FCS)
        0, 0, 0, 0x2a,          // header length 42
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // dst MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // src MAC
        0x08, 0x00,             // ethertype IPv4
        0x45, 0x00, 0x05, 0xdc, // IPv4, IHL 5, tos 0, total length 1500
        0x00, 0x01, 0x00, 0x00, // id 1, no flags
        0x40, 0x11, 0x00, 0x00, // ttl 64, UDP, checksum
        192, 0, 2, 1,           // src
        198, 51, 100, 7,        // dst
        0x00, 0x35, 0xd4, 0x31, // UDP src port 53, dst port 54321
        0x05, 0xc8, 0x00, 0x00, // UDP length, checksum
        0x00, 0x00,             // padding to 4 bytes
        // flow record: extended_switch (0:1001)
        0, 0, 0x03, 0xe9,       // data_format 0:1001
        0, 0, 0, 0x10,          // length 16
        0, 0, 0, 10,            // src_vlan 10
        0, 0, 0, 0,             // src_priority
        0, 0, 0, 20,            // dst_vlan 20
        0, 0, 0, 0,             // dst_priority
        // --- counters_sample (0:2) ---
        0, 0, 0, 2,             // data_format 0:2
        0, 0, 0, 0x6c,          // length 108
        0, 0, 0, 7,             // sequence_number
        0, 0, 0, 5,             // source_id ifIndex 5
        0, 0, 0, 1,             // counter_records 1
        0, 0, 0, 1,             // data_format 0:1 if_counters
        0, 0, 0, 0x58,          // length 88
    ];
    #[rustfmt::skip]
    pkt.extend_from_slice(&[
        0, 0, 0, 5,             // ifIndex 5
        0, 0, 0, 6,             // ifType 6 (ethernetCsmacd)
        0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00, // ifSpeed 1 Gb/s
        0, 0, 0, 1,             // ifDirection full duplex
        0, 0, 0, 3,             // ifStatus up/up
        0, 0, 0, 0, 0, 0, 0x27, 0x10, // ifInOctets 10000
    ]);
    pkt.extend_from_slice(&[0u8; 88 - 32]); // remaining counters zero
    let (dec, b) = decode(&[&pkt]);
    assert_eq!(b.len(), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.flow_type, flow_type::SFLOW_5);
    assert_eq!(r.sampler_address, addr_from_ip(ip("10.0.0.9")));
    assert_eq!(r.observation_domain_id, 3);
    assert_eq!(r.sequence_num, 42);
    assert_eq!((r.sampling_rate, r.packets, r.bytes), (256, 1, 1518));
    assert_eq!(r.scaled_bytes(), 1518 * 256);
    assert_eq!((r.in_if, r.out_if), (5, 6));
    assert_eq!((r.src_mac, r.dst_mac), (0x6677_8899_aabb, 0x0011_2233_4455));
    assert_eq!(
        (r.proto, r.src_port, r.dst_port, r.ip_ttl),
        (17, 53, 54321, 64)
    );
    assert_eq!((r.src_vlan, r.dst_vlan), (10, 20));
    assert_eq!(r.fragment_id, 1);
    let mut dec = dec;
    let c = dec.take_counters();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].if_index, c[0].if_speed, c[0].in_octets),
        (5, 1_000_000_000, 10_000)
    );
}

/// sFlow v5 expanded flow sample (format 0:3) with an IPv6 raw header (header protocol 12),
/// and extended router (0:1002) and gateway (0:1003) records.
#[test]
fn sflow_v5_expanded_flow_sample() {
    #[rustfmt::skip]
    let mut pkt: Vec<u8> = vec![
        0, 0, 0, 5,             // version 5
        0, 0, 0, 2,             // agent address type IPv6
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // agent 2001:db8::9
        0, 0, 0, 0,             // sub_agent_id
        0, 0, 0, 7,             // sequence_number 7
        0, 0, 0, 0,             // uptime
        0, 0, 0, 1,             // num_samples 1
        0, 0, 0, 3,             // data_format 0:3 flow_sample_expanded
        0, 0, 0, 0,             // length (patched below)
        0, 0, 0, 1,             // sequence_number
        0, 0, 0, 0,             // source_id_type 0 (ifIndex)
        0, 0, 0x01, 0x2c,       // source_id_index 300
        0, 0, 0x03, 0xe8,       // sampling_rate 1000
        0, 0, 0, 0,             // sample_pool
        0, 0, 0, 0,             // drops
        0, 0, 0, 0,             // input format 0
        0, 0, 0x01, 0x2c,       // input ifIndex 300
        0, 0, 0, 0,             // output format 0
        0, 0, 0x01, 0x2d,       // output ifIndex 301
        0, 0, 0, 3,             // flow_records 3
        // sampled_header: IPv6 + UDP
        0, 0, 0, 1,             // data_format 0:1
        0, 0, 0, 0x40,          // length 64 (16 + 48)
        0, 0, 0, 12,            // header_protocol 12: IPv6
        0, 0, 0x02, 0x00,       // frame_length 512
        0, 0, 0, 0,             // stripped
        0, 0, 0, 0x30,          // header length 48
        0x60, 0x00, 0x12, 0x34, // v6, traffic class 0, flow label 0x1234
        0x00, 0x08, 17, 55,     // payload length 8, next header UDP, hop limit 55
        0x20, 0x01, 0x48, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x88, // src 2001:4860::8888
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst 2001:db8::2
        0x00, 0x35, 0xc0, 0x00, // UDP 53 -> 49152
        0x00, 0x08, 0x00, 0x00, // UDP length, checksum
        // extended_router: next hop IPv6, masks
        0, 0, 0x03, 0xea,       // data_format 0:1002
        0, 0, 0, 0x1c,          // length 28
        0, 0, 0, 2,             // address type IPv6
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // next hop fe80::1
        0, 0, 0, 32,            // src_mask_len 32
        0, 0, 0, 48,            // dst_mask_len 48
        // extended_gateway: BGP next hop, ASes, AS path [3356, 64500]
        0, 0, 0x03, 0xeb,       // data_format 0:1003
        0, 0, 0, 0x2c,          // length 44
        0, 0, 0, 1,             // address type IPv4
        192, 0, 2, 254,         // BGP next hop 192.0.2.254
        0, 0, 0xfb, 0xf0,       // as (router's own) 64496
        0, 0, 0x3b, 0x41,       // src_as 15169
        0, 0, 0, 0,             // src_peer_as
        0, 0, 0, 1,             // dst_as_path segments 1
        0, 0, 0, 2,             // type AS_SEQUENCE
        0, 0, 0, 2,             // 2 ASes
        0, 0, 0x0d, 0x1c,       // 3356 (next-hop AS)
        0, 0, 0xfb, 0xf4,       // 64500 (destination AS)
    ];
    pkt.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // communities 0, localpref 0
    let sample_len = (pkt.len() - 48) as u32; // 40-byte header, format, length
    pkt[44..48].copy_from_slice(&sample_len.to_be_bytes());
    let (_, b) = decode(&[&pkt]);
    let r = b.get(0).unwrap();
    assert_eq!(r.sampler_address, addr_from_ip(ip("2001:db8::9")));
    assert_eq!((r.sampling_rate, r.bytes, r.packets), (1000, 512, 1));
    assert_eq!((r.in_if, r.out_if), (300, 301));
    assert_eq!(r.etype, 0x86dd);
    assert_eq!(r.src_addr, addr_from_ip(ip("2001:4860::8888")));
    assert_eq!(
        (r.proto, r.src_port, r.dst_port, r.ip_ttl),
        (17, 53, 49152, 55)
    );
    assert_eq!(r.ipv6_flow_label, 0x1234);
    assert_eq!(r.next_hop, addr_from_ip(ip("fe80::1")));
    assert_eq!((r.src_net, r.dst_net), (32, 48));
    assert_eq!(r.bgp_next_hop, addr_from_ip(ip("192.0.2.254")));
    assert_eq!((r.src_as, r.next_hop_as, r.dst_as), (15169, 3356, 64500));
}

/// IPFIX interface options (RFC 7011 s3.4.2.2 options template; RFC 7012 IE 82
/// interfaceName, IE 83 interfaceDescription), as routers export their interface table.
#[test]
fn ipfix_interface_options() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        // --- message header (s3.1) ---
        0x00, 0x0a,             // version 10
        0x00, 0x44,             // length 68
        0x65, 0x53, 0xf1, 0x00, // export time 1700000000
        0x00, 0x00, 0x00, 0x00, // sequence number 0
        0x00, 0x00, 0x00, 0x01, // observation domain 1
        // --- options template set (s3.4.2.2) ---
        0x00, 0x03,             // set id 3: options template set
        0x00, 0x16,             // length 22
        0x01, 0x01,             // template id 257
        0x00, 0x03,             // field count 3
        0x00, 0x01,             // scope field count 1
        0x00, 0x0a, 0x00, 0x04, // scope: ingressInterface (10), 4
        0x00, 0x52, 0x00, 0x0c, // interfaceName (82), 12: fixed, NUL padded
        0x00, 0x53, 0xff, 0xff, // interfaceDescription (83), variable length
        // --- data set: one options record ---
        0x01, 0x01,             // set id 257
        0x00, 0x1e,             // length 30
        0x00, 0x00, 0x00, 0x03, // ingressInterface 3
        b'x', b'e', b'-', b'0', b'/', b'0', b'/', b'3', 0, 0, 0, 0, // "xe-0/0/3" + padding
        0x09,                   // description length 9
        b't', b'r', b'a', b'n', b's', b'i', b't', b' ', b'A', // "transit A"
    ];
    let (dec, b) = decode(&[pkt]);
    assert_eq!(b.len(), 0, "options records are not flows");
    let exporter = addr_from_ip(ip("10.0.0.1"));
    let (name, desc) = dec.interface_name(&exporter, 3).unwrap();
    assert_eq!(flowsight_schema::sym::resolve(name), "xe-0/0/3");
    assert_eq!(flowsight_schema::sym::resolve(desc), "transit A");
    assert_eq!(dec.interface_name(&exporter, 4), None);
    assert_eq!(dec.interface_name(&addr_from_ip(ip("10.0.0.2")), 3), None);
}

/// NetFlow v9 interface options (RFC 3954 s6.1: scope type 2 "Interface"), with IE 82.
#[test]
fn v9_interface_options() {
    #[rustfmt::skip]
    let pkt: &[u8] = &[
        // --- packet header (s5.1) ---
        0x00, 0x09,             // version 9
        0x00, 0x02,             // count 2 (records: one template, one options record)
        0x00, 0x00, 0x10, 0x00, // sysUpTime
        0x65, 0x53, 0xf1, 0x00, // unix secs 1700000000
        0x00, 0x00, 0x00, 0x01, // sequence 1
        0x00, 0x00, 0x00, 0x00, // source id 0
        // --- options template flowset (s6.1) ---
        0x00, 0x01,             // flowset id 1: options template
        0x00, 0x14,             // length 20 (with the 2 padding bytes)
        0x01, 0x02,             // template id 258
        0x00, 0x04,             // option scope length 4 (one scope field)
        0x00, 0x04,             // option length 4 (one option field)
        0x00, 0x02, 0x00, 0x02, // scope: Interface (2), 2 bytes
        0x00, 0x52, 0x00, 0x08, // interfaceName (82), 8
        0x00, 0x00,             // padding to 4 bytes
        // --- data flowset ---
        0x01, 0x02,             // flowset id 258
        0x00, 0x10,             // length 16
        0x00, 0x07,             // Interface scope: ifIndex 7
        b'G', b'i', b'0', b'/', b'7', b' ', b' ', b' ', // "Gi0/7", space padded
        0x00, 0x00,             // padding
    ];
    let (dec, _) = decode(&[pkt]);
    let (name, desc) = dec
        .interface_name(&addr_from_ip(ip("10.0.0.1")), 7)
        .unwrap();
    assert_eq!(flowsight_schema::sym::resolve(name), "Gi0/7");
    assert_eq!(desc, 0);
}
