//! Writes one flush file of N generated flows with a given codec: a deterministic harness for
//! comparing encoder settings under `valgrind --tool=callgrind` (wall clock on shared VMs is
//! too noisy for that). Usage: write_once N none|lz4|zstd1|zstd3
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowsight_gen::{GenConfig, Generator};
use flowsight_schema::FlowBatch;
use flowsight_store::{Codec, Prepared, Store, WriteOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(262_144);
    let codec = match args.get(2).map(String::as_str) {
        Some("none") => Codec::None,
        Some("lz4") => Codec::Lz4,
        Some("zstd3") => Codec::Zstd(3),
        _ => Codec::Zstd(1),
    };
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
    let dir = std::env::temp_dir().join(format!("write-once-{}", std::process::id()));
    let store = Store::open(&dir).unwrap();
    let p = Prepared::new(b);
    let opts = WriteOptions {
        flush_codec: codec,
        sync: false,
        ..WriteOptions::default()
    };
    // Marker for callgrind --toggle-collect: only the write is measured.
    let f = write(&store, &p, &opts);
    println!("{codec:?}: {} rows, {} bytes", f.rows, f.size);
    let _ = std::fs::remove_dir_all(&dir);
}

#[inline(never)]
fn write(store: &Store, p: &Prepared, opts: &WriteOptions) -> flowsight_store::FileMeta {
    store
        .write_prepared(p, 1_795_000_000_000_000_000, opts)
        .unwrap()
        .unwrap()
}
