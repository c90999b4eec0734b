//! Agreement with nfdump on a real exporter's traffic: `softflowd -r traffic.pcap` exports
//! NetFlow v5, v9 and IPFIX once; every datagram goes to both a real `nfcapd` and
//! `flowsight serve`; then `nfdump` and `flowsight query` must give the same statistics,
//! totals and filter results.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose

mod common;

use common::{Nfcapd, Serve, Tee, nfdump, query, softflowd, tempdir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Filters in nfdump's syntax, shared with the other nfdump comparison: testdata/nfdump_filters.txt.
fn filters() -> Vec<String> {
    std::fs::read_to_string(ROOT_FILTERS)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        // Every flow here comes from the test's own loopback tee.
        .chain(["router ip 127.0.0.1".to_string()])
        .collect()
}

const ROOT_FILTERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/nfdump_filters.txt"
);

/// Where nfdump 1.7.1 itself is wrong (checked to still differ, so a fixed nfdump shows up).
const NFDUMP_BUGS: &[(u8, &str, &str)] = &[(
    10,
    "duration > 1000",
    "nfdump 1.7.1 swaps flowStartSysUpTime/flowEndSysUpTime (IE 22/21) of softflowd's IPFIX",
)];

/// A statistic as value -> (flows, packets, bytes), from CSV with nfdump's columns.
fn stat_rows(csv: &str) -> BTreeMap<String, (u64, u64, u64)> {
    csv.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Summary"))
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[4].trim().to_string(),
                (
                    c[5].parse().unwrap(),
                    c[7].parse().unwrap(),
                    c[9].parse().unwrap(),
                ),
            )
        })
        .collect()
}

fn nfdump_count(dir: &Path, filter: &str) -> usize {
    nfdump(dir, &["-q", "-o", "fmt:%pr", filter])
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("No matching flows"))
        .count()
}

fn nfdump_totals(dir: &Path) -> (u64, u64, u64) {
    let out = nfdump(dir, &["-I"]);
    let get = |k: &str| -> u64 {
        out.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {k} in nfdump -I:\n{out}"))
    };
    (get("Flows:"), get("Packets:"), get("Bytes:"))
}

fn our_totals(data: &Path) -> (u64, u64, u64) {
    let v: Value =
        serde_json::from_str(query(data, &["-s", "proto", "-o", "json"]).trim()).unwrap();
    let t = &v["totals"];
    (
        t["flows"].as_u64().unwrap(),
        t["packets"].as_u64().unwrap(),
        t["bytes"].as_u64().unwrap(),
    )
}

fn agree(version: u8) {
    let work = tempdir(&format!("agree-{version}"));
    let nf = Nfcapd::start(&work.join("nfcapd"));
    let data = work.join("flowsight");
    let s = Serve::start(
        &data,
        &[
            "--listen",
            "netflow://127.0.0.1:0",
            "--flush-interval",
            "500ms",
        ],
    );
    let tee = Tee::start(vec![format!("127.0.0.1:{}", nf.port), s.addr("netflow")]);
    softflowd(version, tee.port);
    std::thread::sleep(Duration::from_millis(300));
    let forwarded = tee.stop();
    assert!(forwarded > 0, "softflowd -v {version} exported nothing");
    std::thread::sleep(Duration::from_millis(500));
    let dir = nf.stop();
    s.stop();

    let theirs = nfdump_totals(&dir);
    assert!(theirs.0 > 20, "v{version}: nfdump saw only {theirs:?}");
    assert_eq!(our_totals(&data), theirs, "v{version}: totals");

    for spec in [
        "srcip/bytes",
        "dstport/flows",
        "proto/packets",
        "dstip/bytes",
        "srcport/packets",
    ] {
        let t = stat_rows(&nfdump(&dir, &["-s", spec, "-n", "0", "-o", "csv", "-q"]));
        let o = stat_rows(&query(&data, &["-s", spec, "-n", "0", "-o", "csv"]));
        assert_eq!(o, t, "v{version}: -s {spec}");
        // The top 20 are the same values with the same figures (ties may order differently).
        let t20 = stat_rows(&nfdump(&dir, &["-s", spec, "-n", "20", "-o", "csv", "-q"]));
        let o20 = stat_rows(&query(&data, &["-s", spec, "-n", "20", "-o", "csv"]));
        assert_eq!(o20.len(), t20.len(), "v{version}: -s {spec} -n 20");
        let fig = |m: &BTreeMap<String, (u64, u64, u64)>| {
            let mut v: Vec<(u64, u64, u64)> = m.values().copied().collect();
            v.sort_unstable();
            v
        };
        let ours_sorted = fig(&o20);
        let theirs_sorted = fig(&t20);
        // Rank metric of the 20th row decides membership; compare all but boundary ties.
        assert_eq!(
            ours_sorted.len(),
            theirs_sorted.len(),
            "v{version}: -s {spec} -n 20"
        );
        for (k, v) in &o20 {
            if let Some(tv) = t20.get(k) {
                assert_eq!(v, tv, "v{version}: -s {spec} -n 20 value {k}");
            }
        }
    }

    for f in &filters() {
        let theirs = nfdump_count(&dir, f);
        let ours = query(&data, &["-o", "ndjson", f]).lines().count();
        let bug = NFDUMP_BUGS
            .iter()
            .find(|(v, flt, _)| *v == version && flt == f);
        match bug {
            Some((_, _, why)) => assert_ne!(
                ours, theirs,
                "v{version} `{f}`: nfdump now agrees; remove the known-bug entry ({why})"
            ),
            None => assert_eq!(ours, theirs, "v{version}: filter `{f}`"),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn netflow_v5_agrees_with_nfdump() {
    agree(5);
}

#[test]
fn netflow_v9_agrees_with_nfdump() {
    agree(9);
}

#[test]
fn ipfix_agrees_with_nfdump() {
    agree(10);
}
