//! Store throughput: writing flush files (the collector's store thread) and scanning them
//! (every query), on flows from the generator's traffic model decoded by the real decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowsight_gen::{GenConfig, Generator};
use flowsight_schema::FlowBatch;
use flowsight_store::{Codec, Prepared, Rollup, Store, Tier, TimeRange, WriteOptions};

fn flows(n: u64) -> FlowBatch {
    let g = Generator::new(GenConfig {
        rate: Some(1_000_000.0),
        max_flows: Some(n),
        seed: 3,
        ..GenConfig::default()
    })
    .unwrap();
    let mut dec = flowsight_wire::Decoder::default();
    let mut b = FlowBatch::default();
    let ip = "127.0.0.1".parse().unwrap();
    for d in g {
        let _ = dec.decode(ip, d.t_ns, &d.bytes, &mut b);
    }
    b
}

fn bench(c: &mut Criterion) {
    const N: u64 = 1 << 20;
    let batch = flows(N);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let opts = WriteOptions {
        sync: false,
        ..WriteOptions::default()
    };
    // Bytes per flow of one 1M-flow file per codec (printed once, for BENCHMARKS.md).
    for codec in [Codec::None, Codec::Lz4, Codec::Zstd(1), Codec::Zstd(3)] {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let o = WriteOptions {
            flush_codec: codec,
            ..opts.clone()
        };
        let f = s
            .write_prepared(&Prepared::new(batch.clone()), 1_795_000_000_000_000_000, &o)
            .unwrap()
            .unwrap();
        eprintln!(
            "{codec:?}: {:.1} bytes/flow",
            f.size as f64 / batch.len() as f64
        );
    }
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("write flush file (zstd 1), 1M flows", |b| {
        b.iter(|| {
            let p = Prepared::new(batch.clone());
            store
                .write_prepared(&p, 1_795_000_000_000_000_000, &opts)
                .unwrap();
        })
    });
    // Scan four files of 1M flows (what a query reads), the columns of `-s srcip/bytes`.
    let dir2 = tempfile::tempdir().unwrap();
    let store = Store::open(dir2.path()).unwrap();
    for _ in 0..4 {
        store
            .write_prepared(
                &Prepared::new(batch.clone()),
                1_795_000_000_000_000_000,
                &opts,
            )
            .unwrap();
    }
    g.throughput(Throughput::Elements(4 * batch.len() as u64));
    let cols = [
        "src_addr",
        "packets",
        "bytes",
        "time_flow_start_ns",
        "time_flow_end_ns",
    ];
    // The store thread sums every flush's flows into the 1-minute rollup.
    g.bench_function("rollup 1m add_batch, 1M flows", |b| {
        b.iter(|| {
            let mut r = Rollup::new(Tier::M1);
            r.add_batch(&batch);
            r.len()
        })
    });
    g.bench_function("scan -s srcip/bytes columns", |b| {
        b.iter(|| {
            let out = store
                .scan(TimeRange::ALL, &cols, || 0u64, |n, b| *n += b.len() as u64)
                .unwrap();
            out.parts.iter().sum::<u64>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
