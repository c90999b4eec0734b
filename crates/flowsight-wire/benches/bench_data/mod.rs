//! The bench's record set and datagrams, shared with `examples/decode_loop.rs` so the
//! instruction counts there are over exactly what criterion times.

use flowsight_schema::{FlowRecord, addr_from_v4};
use flowsight_wire::{ExportEncoder, IpfixEncoder, LegacyEncoder, SflowEncoder, V9Encoder};
use std::net::IpAddr;

pub const T0: u64 = 1_700_000_000_000_000_000;

/// Typical flows: varied addresses, ports, protocols and counters (IPv4, so every decoder
/// compared sees the same records).
pub fn records(n: usize) -> Vec<FlowRecord> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            FlowRecord {
                src_addr: addr_from_v4(0x0a00_0000 | (x as u32 & 0xffff)),
                dst_addr: addr_from_v4((x >> 16) as u32),
                next_hop: addr_from_v4(0x0a00_00fe),
                src_port: (x >> 40) as u16,
                dst_port: [443, 80, 53, 123, 22][i % 5],
                proto: [6, 6, 17, 17, 6][i % 5],
                bytes: 40 + (x >> 50),
                packets: 1 + (x >> 58),
                in_if: 1,
                out_if: 2,
                src_as: 64_512,
                dst_as: (x >> 20) as u32 & 0xffff,
                tcp_flags: 0x1b,
                time_flow_start_ns: T0 - 10_000_000_000,
                time_flow_end_ns: T0 - 1_000_000_000,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// [`records`] with every fourth record IPv6, as the generator's traffic model has it: the
/// encoders start a new data set whenever the template changes, so IPv4 and IPv6 sets
/// alternate within datagrams, as from a dual-stack exporter.
pub fn dual_stack_records(n: usize) -> Vec<FlowRecord> {
    let mut recs = records(n);
    for (i, r) in recs.iter_mut().enumerate().filter(|(i, _)| i % 4 == 3) {
        let v6 = |v: u64| {
            let mut a = [0u8; 16];
            a[..2].copy_from_slice(&[0x20, 0x01]);
            a[8..].copy_from_slice(&v.to_be_bytes());
            a
        };
        r.src_addr = v6(i as u64);
        r.dst_addr = v6(r.bytes.wrapping_mul(0x9e37_79b9));
        r.next_hop = v6(0xfe);
    }
    recs
}

pub fn encode_all(enc: &mut dyn ExportEncoder, recs: &[FlowRecord]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut done = 0;
    while done < recs.len() {
        let mut p = Vec::new();
        done += enc.encode_datagram(T0, &recs[done..], &mut p);
        out.push(p);
    }
    out
}

/// The bench's datagram sets by name: v5, v9 and IPFIX with templates only in the first
/// datagram (steady state), and sFlow.
pub fn datagram_sets(recs: &[FlowRecord], exporter: IpAddr) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut sflow = SflowEncoder::new(exporter);
    vec![
        (
            "netflow_v5",
            encode_all(&mut LegacyEncoder::new(5, T0 - 3_600_000_000_000), recs),
        ),
        (
            "netflow_v9",
            encode_all(
                &mut V9Encoder::new(1, T0 - 3_600_000_000_000).template_every(u64::MAX),
                recs,
            ),
        ),
        (
            "ipfix",
            encode_all(&mut IpfixEncoder::new(1).template_every(u64::MAX), recs),
        ),
        ("sflow_v5", encode_all(&mut sflow, recs)),
    ]
}
