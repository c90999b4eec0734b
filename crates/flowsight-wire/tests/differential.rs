//! Differential test: flowsight and the `netflow_parser` crate decode the same captures from
//! real exporters (testdata/captures, UDP NetFlow v5/v7/v9 and IPFIX) and must find the same
//! flows: the same multiset of (src, dst, src port, dst port, protocol, first, last).

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{FlowBatch, addr_to_ip};
use flowsight_wire::Decoder;
use std::collections::BTreeMap;
use std::net::IpAddr;
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

/// UDP payloads of a capture, with their exporter (IPFIX over TCP is left out: netflow_parser
/// has no stream framing).
fn udp_payloads(path: &PathBuf) -> Vec<(IpAddr, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    let (frames, _) = flowsight_capture::read_frames(&b).unwrap();
    let mut ex = flowsight_capture::Extractor::default();
    let mut issues = Vec::new();
    frames
        .iter()
        .filter(|f| f.data.get(23) == Some(&17)) // Ethernet + IPv4 protocol field: UDP
        .flat_map(|f| ex.extract(f, &mut issues))
        .map(|p| (p.src, p.data))
        .collect()
}

fn ours(pkts: &[(IpAddr, Vec<u8>)]) -> BTreeMap<Key, usize> {
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    for (src, p) in pkts {
        dec.decode(*src, 0, p, &mut b).unwrap();
    }
    let mut m = BTreeMap::new();
    for r in b.iter() {
        // ICMP "ports" are a convention (type/code folded as nfdump does), not data.
        let icmp = r.proto == 1 || r.proto == 58;
        let k = (
            addr_to_ip(&r.src_addr).unwrap(),
            addr_to_ip(&r.dst_addr).unwrap(),
            if icmp { 0 } else { r.src_port },
            if icmp { 0 } else { r.dst_port },
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
            let proto = s.protocol_number.unwrap_or(0);
            let icmp = proto == 1 || proto == 58;
            let port = |p: Option<u16>| if icmp { 0 } else { p.unwrap_or(0) };
            let k = (src, dst, port(s.src_port), port(s.dst_port), proto);
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
