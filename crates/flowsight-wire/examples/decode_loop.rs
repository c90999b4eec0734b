//! Fixed-work decode loop over the golden captures, for instruction-count comparisons that
//! do not depend on machine load: `valgrind --tool=callgrind target/release/examples/decode_loop`.
//! Arguments: golden capture names, capture paths, or `bench:NAME` for the criterion bench's
//! own datagrams (`bench:netflow_v9`, `bench:ipfix`, `bench:netflow_v5`, `bench:sflow_v5`), or
//! `dual:NAME` for the same with every fourth record IPv6 (the `decode_dual_stack` group).

use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use std::net::IpAddr;

#[path = "../benches/bench_data/mod.rs"]
mod bench_data;

/// A golden capture by name, or any capture by path (e.g. one from `flowsight generate`).
fn payloads(name: &str) -> Vec<Vec<u8>> {
    let bench = name
        .strip_prefix("bench:")
        .map(|s| (s, false))
        .or_else(|| name.strip_prefix("dual:").map(|s| (s, true)));
    if let Some((set, dual)) = bench {
        let recs = if dual {
            bench_data::dual_stack_records(30_000)
        } else {
            bench_data::records(30_000)
        };
        let exporter = IpAddr::from([192, 0, 2, 1]);
        return bench_data::datagram_sets(&recs, exporter)
            .into_iter()
            .find(|(n, _)| *n == set)
            .map(|(_, p)| p)
            .unwrap_or_default();
    }
    let path = if name.contains('/') {
        std::path::PathBuf::from(name)
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../testdata/captures/{name}.pcap"))
    };
    let bytes = std::fs::read(&path).unwrap_or_default();
    flowsight_capture::payloads(&bytes)
        .map(|v| v.into_iter().map(|p| p.data).collect())
        .unwrap_or_default()
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
    // 2 000 passes over a small golden capture; PASSES=N to change (1 for a big capture).
    let passes: usize = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(2000);
    let chunk: usize = std::env::var("CHUNK")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let mut total = 0usize;
    for name in &names {
        let pkts = payloads(name);
        let mut dec = Decoder::default();
        let mut batch = FlowBatch::default();
        for _ in 0..passes {
            batch.clear();
            // As the collector does: receive batches of up to 64 datagrams (CHUNK=1: one
            // datagram at a time through `decode`).
            if chunk <= 1 {
                for p in &pkts {
                    let _ = dec.decode(exporter, 0, p, &mut batch);
                }
            } else {
                for c in pkts.chunks(chunk) {
                    let items = c.iter().map(|p| (exporter, 0, p.as_slice()));
                    dec.decode_many(items, &mut batch, |_, _, _| {});
                }
            }
            total += batch.len();
        }
    }
    println!("{total} records");
}
