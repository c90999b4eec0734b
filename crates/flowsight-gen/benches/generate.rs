//! Generator throughput per format (flows/s on one core, encoding included, no sending).
//!
//! Run: `cargo bench -p flowsight-gen --bench generate`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flowsight_gen::{GenConfig, Generator, OutFormat};

fn bench(c: &mut Criterion) {
    let n = 200_000u64;
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for f in [
        OutFormat::V5,
        OutFormat::V9,
        OutFormat::Ipfix,
        OutFormat::Sflow,
    ] {
        g.bench_function(BenchmarkId::from_parameter(format!("{f:?}")), |b| {
            b.iter(|| {
                let cfg = GenConfig {
                    format: f,
                    max_flows: Some(n),
                    ..GenConfig::default()
                };
                let mut g2 = Generator::new(cfg).unwrap_or_else(|e| panic!("{e}"));
                let bytes: usize = g2.by_ref().map(|d| d.bytes.len()).sum();
                assert_eq!(g2.truth().flows, n);
                bytes
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
