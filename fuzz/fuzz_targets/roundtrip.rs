#![no_main]
//! decode -> encode -> decode: whatever a decoder produces from any input, re-encoding it as
//! IPFIX and decoding again gives back the same values for every field IPFIX carries.
mod common;
use flowsight_schema::{FlowBatch, addr_is_v4};
use flowsight_wire::{ExportEncoder, IpfixEncoder};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, first) = common::feed(data, &[]);
    // One address family per record (the encoder's templates are per family).
    let recs: Vec<_> = first
        .iter()
        .filter(|r| {
            let fam = |a: &[u8; 16]| (*a != [0; 16]).then(|| addr_is_v4(a));
            let fams: Vec<_> = [r.src_addr, r.dst_addr, r.next_hop, r.bgp_next_hop].iter().filter_map(fam).collect();
            !fams.is_empty() && fams.iter().all(|&f| f == fams[0])
        })
        .map(|mut r| {
            r.sampling_rate = 0;
            r
        })
        .collect();
    if recs.is_empty() {
        return;
    }
    let mut enc = IpfixEncoder::new(7);
    let mut dec = common::decoder();
    let mut second = FlowBatch::default();
    let exporter = "192.0.2.9".parse().unwrap_or(std::net::IpAddr::from([192, 0, 2, 9]));
    let mut done = 0;
    while done < recs.len() {
        let mut m = Vec::new();
        let n = enc.encode_datagram(1_700_000_000_000_000_000, &recs[done..], &mut m);
        assert!(n > 0);
        done += n;
        dec.decode(exporter, 0, &m, &mut second).expect("our own encoding decodes");
    }
    assert_eq!(second.len(), recs.len());
    for (a, b) in recs.iter().zip(second.iter()) {
        assert_eq!((a.bytes, a.packets, a.proto, a.src_port, a.dst_port), (b.bytes, b.packets, b.proto, b.src_port, b.dst_port));
        // An absent IPv4 address can only be sent as 0.0.0.0, which decodes as present.
        let n = |x: [u8; 16]| if x == flowsight_schema::addr_from_v4(0) { [0; 16] } else { x };
        assert_eq!(
            (n(a.src_addr), n(a.dst_addr), n(a.next_hop), n(a.bgp_next_hop)),
            (n(b.src_addr), n(b.dst_addr), n(b.next_hop), n(b.bgp_next_hop))
        );
        assert_eq!((a.in_if, a.out_if, a.src_as, a.dst_as, a.next_hop_as), (b.in_if, b.out_if, b.src_as, b.dst_as, b.next_hop_as));
        assert_eq!((a.tcp_flags, a.ip_tos, a.ip_ttl, a.icmp_type, a.icmp_code), (b.tcp_flags, b.ip_tos, b.ip_ttl, b.icmp_type, b.icmp_code));
        assert_eq!((a.src_mac, a.dst_mac, a.src_vlan, a.dst_vlan, a.vlan_id), (b.src_mac, b.dst_mac, b.src_vlan, b.dst_vlan, b.vlan_id));
        assert_eq!((a.mpls_label, a.fragment_id, a.fragment_offset, a.ip_flags & 7), (b.mpls_label, b.fragment_id, b.fragment_offset, b.ip_flags));
        // NTP timestamps (RFC 7011 s6.1.10) end with NTP era 0 in Feb 2036: compare before it.
        const NTP_ERA0_END_NS: u64 = 2_085_978_495_000_000_000;
        if a.time_flow_start_ns < NTP_ERA0_END_NS && a.time_flow_end_ns < NTP_ERA0_END_NS {
            assert_eq!((a.time_flow_start_ns, a.time_flow_end_ns), (b.time_flow_start_ns, b.time_flow_end_ns));
        }
        assert_eq!((a.src_net, a.dst_net, a.flow_direction, a.forwarding_status), (b.src_net, b.dst_net, b.flow_direction, b.forwarding_status));
    }
});
