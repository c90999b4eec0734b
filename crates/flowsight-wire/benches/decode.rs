//! Decode throughput: flowsight's decoders into the columnar batch, and `netflow_parser`
//! decoding the very same datagrams in the same run (it has no sFlow decoder).
//!
//! "flowsight" decodes as the collector does (receive batches of 64 datagrams through
//! `Decoder::decode_many`); "flowsight_single" one datagram at a time through `decode`.
//!
//! Run: `cargo bench -p flowsight-wire --bench decode`. Records/s = the "thrpt" figure.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use std::hint::black_box;
use std::net::IpAddr;

mod bench_data;

/// Datagrams per `recvmmsg` call in the collector, handed to a decode worker together.
const RECV_BATCH: usize = 64;
use bench_data::{T0, datagram_sets, records};

fn bench(c: &mut Criterion) {
    let recs = records(30_000);
    let exporter: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([192, 0, 2, 1]));
    let sets = datagram_sets(&recs, exporter);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(20);
    for (name, pkts) in &sets {
        // As the collector decodes: receive batches of up to 64 datagrams through
        // `decode_many`.
        bench_decode_many(&mut g, name, pkts, exporter, Some(recs.len()));
        // One datagram at a time through `decode` (offline tools, IPFIX over TCP).
        g.bench_with_input(
            BenchmarkId::new("flowsight_single", name),
            pkts,
            |b, pkts| {
                let mut dec = Decoder::default();
                let mut batch = FlowBatch::default();
                let _ = dec.decode(exporter, T0, &pkts[0], &mut batch);
                b.iter(|| {
                    batch.clear();
                    for p in pkts {
                        let _ = dec.decode(exporter, T0, black_box(p), &mut batch);
                    }
                    assert_eq!(batch.len(), recs.len());
                    black_box(batch.len())
                })
            },
        );
        if *name == "sflow_v5" {
            continue;
        }
        bench_netflow_parser(&mut g, name, pkts);
    }
    g.finish();
    // Dual-stack: IPv4 and IPv6 data sets alternate within datagrams (v9 and IPFIX).
    let recs = bench_data::dual_stack_records(30_000);
    let mut g = c.benchmark_group("decode_dual_stack");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(20);
    let sets = [
        (
            "netflow_v9",
            bench_data::encode_all(
                &mut flowsight_wire::V9Encoder::new(1, T0 - 3_600_000_000_000)
                    .template_every(u64::MAX),
                &recs,
            ),
        ),
        (
            "ipfix",
            bench_data::encode_all(
                &mut flowsight_wire::IpfixEncoder::new(1).template_every(u64::MAX),
                &recs,
            ),
        ),
    ];
    for (name, pkts) in &sets {
        bench_decode_many(&mut g, name, pkts, exporter, Some(recs.len()));
    }
    g.finish();
}

/// As the collector decodes: receive batches of up to 64 datagrams through `decode_many`,
/// the templates learnt beforehand by decoding every datagram once, as a running collector
/// would have them. Each pass must give the flows of that first one (and `flows`, when the
/// caller knows how many the datagrams hold); the group's throughput is set to them.
fn bench_decode_many(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pkts: &[Vec<u8>],
    exporter: IpAddr,
    flows: Option<usize>,
) {
    let mut dec = Decoder::default();
    let mut batch = FlowBatch::default();
    for p in pkts {
        let _ = dec.decode(exporter, T0, p, &mut batch);
    }
    let learnt = batch.len();
    if let Some(f) = flows {
        assert_eq!(learnt, f);
    }
    g.throughput(Throughput::Elements(learnt as u64));
    g.bench_with_input(BenchmarkId::new("flowsight", name), pkts, |b, pkts| {
        b.iter(|| {
            batch.clear();
            for chunk in pkts.chunks(RECV_BATCH) {
                let items = chunk
                    .iter()
                    .map(|p| (exporter, T0, black_box(p.as_slice())));
                dec.decode_many(items, &mut batch, |_, _, _| {});
            }
            assert_eq!(batch.len(), learnt);
            black_box(batch.len())
        })
    });
}

/// Flow export payloads of a golden capture.
fn capture(name: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../testdata/captures/{name}.pcap"));
    let bytes = std::fs::read(&path).unwrap_or_default();
    flowsight_capture::payloads(&bytes)
        .map(|v| v.into_iter().map(|p| p.data).collect())
        .unwrap_or_default()
}

/// The real exporters' own templates and record layouts (softflowd, pmacct, nfreplay).
fn bench_captures(c: &mut Criterion) {
    let exporter: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut g = c.benchmark_group("decode_capture");
    g.sample_size(20);
    for name in [
        "softflowd-v9",
        "softflowd-ipfix",
        "pmacct-nfprobe-ipfix",
        "nfreplay-v9",
        "softflowd-v5",
    ] {
        let pkts = capture(name);
        if pkts.is_empty() {
            continue;
        }
        // Sets the group's throughput to the capture's own flows (netflow_parser's too).
        bench_decode_many(&mut g, name, &pkts, exporter, None);
        bench_netflow_parser(&mut g, name, &pkts);
    }
    g.finish();
}

/// `netflow_parser` decoding the same datagrams, templates learned once beforehand.
fn bench_netflow_parser(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pkts: &[Vec<u8>],
) {
    g.bench_with_input(BenchmarkId::new("netflow_parser", name), pkts, |b, pkts| {
        let mut parser = netflow_parser::NetflowParser::default();
        for p in pkts {
            let _ = parser.parse_bytes(p);
        }
        b.iter(|| {
            let mut n = 0usize;
            for p in pkts {
                n += parser.parse_bytes(black_box(p)).packets.len();
            }
            black_box(n)
        })
    });
}

criterion_group!(benches, bench, bench_captures);
criterion_main!(benches);
