//! Writes one flush file of N generated flows with a given codec: a deterministic harness for
//! comparing encoder settings under `valgrind --tool=callgrind` (wall clock on shared VMs is
//! too noisy for that). Usage: write_once N none|lz4|zstd1|zstd3 [enrich]
//!
//! With `enrich`, every enrichment text column is filled the way a full configuration
//! (city GeoIP, ASN names, a networks file, interface names) fills it: values drawn from the
//! addresses with the cardinalities real databases give (a few hundred countries and
//! regions, thousands of cities and AS names, a handful of networks).
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
    if args.get(3).map(String::as_str) == Some("enrich") {
        enrich(&mut b);
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
    // WRITE_ONCE_KEEP=1 leaves the file, e.g. to compare two builds' files with pyarrow.
    if std::env::var_os("WRITE_ONCE_KEEP").is_some() {
        println!("{}", f.path.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[inline(never)]
fn write(store: &Store, p: &Prepared, opts: &WriteOptions) -> flowsight_store::FileMeta {
    store
        .write_prepared(p, 1_795_000_000_000_000_000, opts)
        .unwrap()
        .unwrap()
}

fn enrich(b: &mut FlowBatch) {
    use flowsight_schema::sym::intern;
    let names: Vec<&str> = flowsight_schema::FIELDS
        .iter()
        .filter(|f| f.enrichment && f.kind == flowsight_schema::Kind::Text)
        .map(|f| f.name)
        .collect();
    b.materialize(&names);
    let pick = |a: &[u8; 16], salt: u64, n: u64| {
        let mut h = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for x in a {
            h = (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3);
        }
        h % n
    };
    let sym = |p: &str, i: u64| intern(&format!("{p}-{i}"));
    for i in 0..b.len() {
        for (addr, src) in [(b.src_addr[i], true), (b.dst_addr[i], false)] {
            let country = sym("CC", pick(&addr, 1, 150));
            let region = sym("region", pick(&addr, 2, 600));
            let city = sym("city", pick(&addr, 3, 4000));
            let as_name = sym("AS name, Inc.", pick(&addr, 4, 3000));
            // A third of the addresses fall in the networks file.
            let net = pick(&addr, 5, 30);
            let tags = if net < 10 {
                [
                    sym("net", net),
                    sym("role", net % 3),
                    sym("site", net % 4),
                    sym("region", net % 2),
                    sym("tenant", net % 5),
                    sym("env=prod,team", net % 3),
                ]
            } else {
                [0; 6]
            };
            if src {
                (
                    b.src_country[i],
                    b.src_region[i],
                    b.src_city[i],
                    b.src_as_name[i],
                ) = (country, region, city, as_name);
                (b.src_net_name[i], b.src_net_role[i], b.src_net_site[i]) =
                    (tags[0], tags[1], tags[2]);
                (
                    b.src_net_region[i],
                    b.src_net_tenant[i],
                    b.src_net_labels[i],
                ) = (tags[3], tags[4], tags[5]);
            } else {
                (
                    b.dst_country[i],
                    b.dst_region[i],
                    b.dst_city[i],
                    b.dst_as_name[i],
                ) = (country, region, city, as_name);
                (b.dst_net_name[i], b.dst_net_role[i], b.dst_net_site[i]) =
                    (tags[0], tags[1], tags[2]);
                (
                    b.dst_net_region[i],
                    b.dst_net_tenant[i],
                    b.dst_net_labels[i],
                ) = (tags[3], tags[4], tags[5]);
            }
        }
        let (i_in, i_out) = (u64::from(b.in_if[i] % 16), u64::from(b.out_if[i] % 16));
        b.in_if_name[i] = sym("GigabitEthernet0/0/", i_in);
        b.out_if_name[i] = sym("GigabitEthernet0/0/", i_out);
        b.in_if_desc[i] = sym("uplink to transit provider", i_in);
        b.out_if_desc[i] = sym("uplink to transit provider", i_out);
    }
}
