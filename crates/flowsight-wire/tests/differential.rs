//! Differential test: flowsight and the `netflow_parser` crate decode the same captures from
//! real exporters (testdata/captures, UDP NetFlow v5/v7/v9 and IPFIX) and must find the same
//! flows: the same multiset of (src, dst, src port, dst port, protocol, first, last).

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{FlowBatch, addr_to_ip};
use flowsight_wire::Decoder;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// (src, dst, sport, dport, proto)
type Key = (IpAddr, IpAddr, u16, u16, u8);

fn captures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the golden captures are committed in testdata/",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}

/// UDP payloads of a classic pcap of Ethernet/IPv4 frames (what tshark writes for `lo`).
fn udp_payloads(path: &PathBuf) -> Vec<(IpAddr, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "{}: classic little-endian pcap expected",
        path.display()
    );
    let linktype = u32::from_le_bytes([b[20], b[21], b[22], b[23]]);
    let l2 = match linktype {
        1 => 14,
        113 => 16,
        _ => panic!("{}: link type {linktype}", path.display()),
    };
    let mut o = 24;
    let mut out = Vec::new();
    while o + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[o + 8], b[o + 9], b[o + 10], b[o + 11]]) as usize;
        let f = &b[o + 16..o + 16 + incl];
        o += 16 + incl;
        let ip = &f[l2..];
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = (ip[0] & 15) as usize * 4;
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        out.push((IpAddr::V4(src), ip[ihl + 8..total].to_vec()));
    }
    out
}

fn ours(pkts: &[(IpAddr, Vec<u8>)]) -> BTreeMap<Key, usize> {
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    for (src, p) in pkts {
        dec.decode(*src, 0, p, &mut b).unwrap();
    }
    let mut m = BTreeMap::new();
    for r in b.iter() {
        let k = (
            addr_to_ip(&r.src_addr).unwrap(),
            addr_to_ip(&r.dst_addr).unwrap(),
            r.src_port,
            r.dst_port,
            r.proto,
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

fn theirs(pkts: &[(IpAddr, Vec<u8>)]) -> BTreeMap<Key, usize> {
    let mut parser = netflow_parser::NetflowParser::default();
    let mut m = BTreeMap::new();
    for (_, p) in pkts {
        let (sets, err) = parser.parse_bytes_as_netflow_common_flowsets(p);
        assert!(err.is_none(), "netflow_parser: {err:?}");
        for s in sets {
            let (Some(src), Some(dst)) = (s.src_addr, s.dst_addr) else {
                continue;
            };
            let k = (
                src,
                dst,
                s.src_port.unwrap_or(0),
                s.dst_port.unwrap_or(0),
                s.protocol_number.unwrap_or(0),
            );
            *m.entry(k).or_default() += 1;
        }
    }
    m
}

#[test]
fn same_flows_as_netflow_parser() {
    let mut compared = 0;
    for path in captures() {
        let pkts = udp_payloads(&path);
        let Some((_, first)) = pkts.first() else {
            continue;
        };
        // netflow_parser decodes NetFlow v5, v7, v9 and IPFIX (not v1, not sFlow).
        let version = u16::from_be_bytes([first[0], first[1]]);
        if ![5, 7, 9, 10].contains(&version) {
            continue;
        }
        let a = ours(&pkts);
        let b = theirs(&pkts);
        assert!(!a.is_empty(), "{}: no flows", path.display());
        assert_eq!(
            a,
            b,
            "{}: flowsight and netflow_parser disagree",
            path.display()
        );
        compared += 1;
    }
    assert!(
        compared >= 4,
        "only {compared} captures compared; regenerate testdata (testdata/regen.sh)"
    );
}
