#![no_main]
//! Enrichment inputs users and downloads provide: the networks file, ASN range CSVs and
//! `.mmdb` files. Whatever the bytes, parsing returns a value or an error, never panics, and a
//! database that opens answers lookups without panicking.
use flowsight_enrich::asn_csv::AsnRanges;
use flowsight_enrich::mmdb::MmdbSource;
use flowsight_enrich::networks::Networks;
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match sel % 3 {
        0 => {
            if let Ok(n) = Networks::parse(&text, Path::new("fuzz.txt")) {
                let _ = n.lookup(&[0u8; 16]);
                let _ = n.lookup(&flowsight_schema::addr_from_v4(0x0a00_0001));
            }
        }
        1 => {
            if let Ok(t) = AsnRanges::parse(&text, Path::new("fuzz.csv"), sel & 4 != 0) {
                let _ = t.lookup(0);
                let _ = t.lookup(u128::MAX);
            }
        }
        _ => {
            if let Ok(db) = MmdbSource::from_bytes(rest.to_vec(), Path::new("fuzz.mmdb")) {
                for ip in ["1.2.3.4", "::1", "2001:db8::1", "255.255.255.255"] {
                    let _ = db.lookup(ip.parse().unwrap_or(std::net::IpAddr::from([0u8; 4])));
                }
            }
        }
    }
});
