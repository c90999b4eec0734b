//! Fixed-work decode loop over the golden captures, for instruction-count comparisons that
//! do not depend on machine load: `valgrind --tool=callgrind target/release/examples/decode_loop`.

use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use std::net::IpAddr;

fn payloads(name: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../testdata/captures/{name}.pcap"));
    let b = std::fs::read(&path).unwrap_or_default();
    let mut v = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[o + 8], b[o + 9], b[o + 10], b[o + 11]]) as usize;
        let ip = &b[o + 16 + 14..o + 16 + incl];
        o += 16 + incl;
        if ip[9] == 17 {
            let ihl = (ip[0] & 15) as usize * 4;
            v.push(ip[ihl + 8..].to_vec());
        }
    }
    v
}

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names = if names.is_empty() {
        vec![
            "softflowd-v9".to_string(),
            "softflowd-ipfix".into(),
            "pmacct-nfprobe-ipfix".into(),
            "nfreplay-v9".into(),
        ]
    } else {
        names
    };
    let exporter = IpAddr::from([127, 0, 0, 1]);
    let mut total = 0usize;
    for name in &names {
        let pkts = payloads(name);
        let mut dec = Decoder::default();
        let mut batch = FlowBatch::default();
        for _ in 0..2000 {
            batch.clear();
            for p in &pkts {
                let _ = dec.decode(exporter, 0, p, &mut batch);
            }
            total += batch.len();
        }
    }
    println!("{total} records");
}
