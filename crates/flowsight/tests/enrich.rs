//! Enrichment end to end: generated traffic to well-known public resolvers goes through
//! `flowsight serve` with the real free databases (`scripts/fetch-geo-data --no-city`, which
//! `scripts/test.sh` runs into `$FLOWSIGHT_GEO_DIR`), and `flowsight query` reports the
//! countries and ASes those addresses belong to; a bad networks file is refused by
//! `serve --check` with its line number.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on purpose

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn geo_dir() -> PathBuf {
    let Some(d) = std::env::var_os("FLOWSIGHT_GEO_DIR").map(PathBuf::from) else {
        panic!(
            "FLOWSIGHT_GEO_DIR is not set: run `scripts/fetch-geo-data --no-city DIR` and set FLOWSIGHT_GEO_DIR=DIR (scripts/test.sh does both)"
        );
    };
    for f in ["geo-whois-asn-country.mmdb", "asn-ipv4.csv", "asn-ipv6.csv"] {
        assert!(
            d.join(f).exists(),
            "{} lacks {f}: run `scripts/fetch-geo-data --no-city {}`",
            d.display(),
            d.display()
        );
    }
    d
}

/// Splits one CSV line (RFC 4180 quoting: AS names hold commas).
fn csv_split(l: &str) -> Vec<String> {
    let (mut out, mut cur, mut q) = (Vec::new(), String::new(), false);
    let mut it = l.chars().peekable();
    while let Some(c) = it.next() {
        match (c, q) {
            ('"', true) if it.peek() == Some(&'"') => {
                cur.push('"');
                it.next();
            }
            ('"', _) => q = !q,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Flows summed over the rows of a statistic's CSV that contain `having`.
fn flows_of(csv: &str, having: &str) -> u64 {
    csv.lines()
        .skip(1)
        .filter(|l| l.contains(having))
        .map(|l| csv_split(l)[5].parse::<u64>().unwrap())
        .sum()
}

/// The one row of `-s KEY/bytes` over the flows matching `filter`, as (value, bytes).
fn only_row(data: &std::path::Path, filter: &str, key: &str) -> (String, u64) {
    let out = query(data, &["-s", &format!("{key}/bytes"), "-o", "csv", filter]);
    let rows: Vec<(String, u64)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let c = csv_split(l);
            (c[4].clone(), c[9].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 1, "{filter} -s {key}: {out}");
    rows[0].clone()
}

#[test]
fn generated_traffic_gets_real_countries_and_ases() {
    let geo = geo_dir();
    let data = tempdir("enrich-e2e");
    let nets = data.join("networks.txt");
    // The generator's clients: 10.x (IPv4) and fd00::/16 (IPv6).
    std::fs::write(
        &nets,
        "10.0.0.0/8 name=clients tenant=acme\nfd00::/16 name=clients6 tenant=acme\n",
    )
    .unwrap();
    let s = Serve::with_config(
        &data,
        &format!(
            "[enrich]\ngeoip = [{:?}]\nasn = [{:?}, {:?}]\nnetworks = {:?}\nas_source = \"database\"\n",
            geo.join("geo-whois-asn-country.mmdb"),
            geo.join("asn-ipv4.csv"),
            geo.join("asn-ipv6.csv"),
            nets
        ),
        "netflow://127.0.0.1:0",
    );
    let health = http_get(&s.http, "/api/v1/health");
    assert!(health.contains(r#""enrichment":"on""#), "{health}");
    let n = 20_000u64;
    s.generate_ipfix(n, 7);
    assert!(s.metric("flowsight_enrich_cache_hits_total") > 0);
    s.stop();
    let store = data.join("store");

    // Each resolver: the country its registry records and its AS, from the databases (the
    // generator's own AS numbers are overridden: as_source = "database").
    for (ip, country, asn, as_name) in [
        ("8.8.8.8", "US", "15169", "Google LLC"),
        ("1.1.1.1", "AU", "13335", "Cloudflare, Inc."),
        ("9.9.9.9", "US", "19281", "Quad9"),
        ("2001:4860:4860::8888", "US", "15169", "Google LLC"),
    ] {
        let f = format!("dst ip {ip}");
        let (_, bytes) = only_row(&store, &f, "dstip");
        assert!(bytes > 0, "no traffic to {ip}");
        assert_eq!(
            only_row(&store, &f, "dstgeo"),
            (country.to_string(), bytes),
            "{ip}"
        );
        assert_eq!(
            only_row(&store, &f, "dstas"),
            (asn.to_string(), bytes),
            "{ip}"
        );
        assert_eq!(
            only_row(&store, &f, "dstasname"),
            (as_name.to_string(), bytes),
            "{ip}"
        );
        // And the filter language reaches the same flows through the enrichment columns.
        let by_geo = query(
            &store,
            &[
                "-s",
                "dstip/bytes",
                "-o",
                "csv",
                "-n",
                "0",
                &format!("dst geo {country} and dst ip {ip}"),
            ],
        );
        assert!(by_geo.contains(&format!(",{ip},")), "{by_geo}");
    }
    // -s dstgeo over everything: the US row holds at least the US resolvers' bytes.
    let all = query(&store, &["-s", "dstgeo/bytes", "-o", "csv", "-n", "0"]);
    assert!(all.lines().any(|l| l.contains(",US,")), "{all}");

    // Networks file: every client address is internal and tagged; servers are external.
    let flows_total = flows_of(
        &query(&store, &["-s", "proto/flows", "-o", "csv", "-n", "0"]),
        "",
    );
    let internal = query(
        &store,
        &["-s", "srctenant/flows", "-o", "csv", "src internal"],
    );
    let acme = flows_of(&internal, ",acme,");
    let by_net = query(
        &store,
        &[
            "-s",
            "proto/flows",
            "-o",
            "csv",
            "-n",
            "0",
            "src net 10.0.0.0/8 or src net fd00::/16",
        ],
    );
    let by_net = flows_of(&by_net, "");
    assert!(
        acme > 0 && acme == by_net && acme < flows_total,
        "{acme} {by_net} {flows_total}"
    );

    // JSON output carries the enrichment columns.
    let j = query(&store, &["-o", "ndjson", "-c", "1", "dst ip 8.8.8.8"]);
    let v: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
    assert_eq!(v["dst_country"], "US");
    assert_eq!(v["dst_as_name"], "Google LLC");
    assert_eq!(v["src_net_tenant"], "acme");
    assert_eq!(v["src_internal"], 1);

    // DuckDB, without flowsight, reads the text columns (flowsight writes their dictionary
    // pages itself) and counts what the filter language counts.
    let us = flows_of(
        &query(
            &store,
            &["-s", "proto/flows", "-o", "csv", "-n", "0", "dst geo US"],
        ),
        "",
    );
    let glob = store.join("flows/**/*.parquet");
    let row = duckdb_row(&format!(
        "SELECT count(*) FILTER (WHERE dst_country = 'US'), \
                max(dst_as_name) FILTER (WHERE dst_addr = unhex('00000000000000000000FFFF08080808')), \
                count(*) FILTER (WHERE src_net_tenant = 'acme') \
         FROM read_parquet('{}', union_by_name = true)",
        glob.display()
    ));
    assert_eq!(
        row,
        vec![us.to_string(), "Google LLC".into(), acme.to_string()],
        "DuckDB disagrees"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_bad_networks_file_is_refused_by_check_with_its_line() {
    let dir = tempdir("enrich-check");
    let nets = dir.join("networks.txt");
    let cfg = dir.join("flowsight.toml");
    std::fs::write(&cfg, format!("[enrich]\nnetworks = {nets:?}\n")).unwrap();
    for (text, want) in [
        (
            "10.0.0.0/8 name=a\n10.0.0.0/40 name=b\n",
            "networks.txt:2: prefix length 40",
        ),
        (
            "# c\n10.0.0.0/8 name=a\n192.0.2.0/24 name=b\n10.0.0.0/8 name=c\n",
            "networks.txt:4: prefix 10.0.0.0/8 is already given on line 2",
        ),
    ] {
        std::fs::write(&nets, text).unwrap();
        let out = Command::new(bin())
            .args(["serve", "--check", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
    // A good file passes and the effective configuration shows the section.
    std::fs::write(&nets, "10.0.0.0/8 name=a\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("[enrich]"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_database_is_reported_and_serve_runs_without_it() {
    let dir = tempdir("enrich-corrupt");
    let bad = dir.join("broken.mmdb");
    std::fs::write(&bad, b"\x00\x01 definitely not a MaxMind DB").unwrap();
    let nets = dir.join("networks.txt");
    std::fs::write(&nets, "127.0.0.0/8 name=loopback\n").unwrap();
    let s = Serve::with_config(
        &dir,
        &format!("[enrich]\ngeoip = [{bad:?}]\nnetworks = {nets:?}\n"),
        "netflow://127.0.0.1:0",
    );
    let out = Command::new(bin())
        .args([
            "generate", "--format", "v9", "--rate", "max", "--flows", "500",
        ])
        .args(["--target", &s.addr("netflow")])
        .output()
        .unwrap();
    assert!(out.status.success());
    s.wait_flows(500, Duration::from_secs(20));
    let health = http_get(&s.http, "/api/v1/health");
    assert!(
        health.contains("networks.txt") && !health.contains("broken.mmdb"),
        "{health}"
    );
    let err = s.stop();
    assert!(
        err.contains("broken.mmdb") && err.contains("not a valid MaxMind DB"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn interface_names_from_options_data_and_the_static_map() {
    let dir = tempdir("enrich-ifnames");
    // The static map names ifIndex 3 too: the exporter's own name must win; ifIndex 5 only
    // has the static entry.
    let s = Serve::with_config(
        &dir,
        "[[enrich.interfaces]]\nexporter = \"127.0.0.1\"\nindex = 3\nname = \"static-3\"\nspeed = \"10G\"\n\n[[enrich.interfaces]]\nexporter = \"127.0.0.1\"\nindex = 5\nname = \"uplink-5\"\ndescription = \"to core\"\nspeed = \"100G\"\n",
        "netflow://127.0.0.1:0",
    );
    #[rustfmt::skip]
    let options: &[u8] = &[
        0x00, 0x0a, 0x00, 0x44,             // IPFIX, length 68
        0x65, 0x53, 0xf1, 0x00,             // export time
        0x00, 0x00, 0x00, 0x00,             // sequence 0
        0x00, 0x00, 0x00, 0x01,             // domain 1
        0x00, 0x03, 0x00, 0x16,             // options template set, length 22
        0x01, 0x01, 0x00, 0x03, 0x00, 0x01, // template 257, 3 fields, 1 scope field
        0x00, 0x0a, 0x00, 0x04,             // scope ingressInterface (10), 4
        0x00, 0x52, 0x00, 0x0c,             // interfaceName (82), 12
        0x00, 0x53, 0xff, 0xff,             // interfaceDescription (83), variable
        0x01, 0x01, 0x00, 0x1e,             // data set 257, length 30
        0x00, 0x00, 0x00, 0x03,             // ifIndex 3
        b'x', b'e', b'-', b'0', b'/', b'0', b'/', b'3', 0, 0, 0, 0,
        0x09, b't', b'r', b'a', b'n', b's', b'i', b't', b' ', b'A',
    ];
    #[rustfmt::skip]
    let data: &[u8] = &[
        0x00, 0x0a, 0x00, 0x3c,             // IPFIX, length 60
        0x65, 0x53, 0xf1, 0x00,             // export time
        0x00, 0x00, 0x00, 0x00,             // sequence 0
        0x00, 0x00, 0x00, 0x01,             // domain 1
        0x00, 0x02, 0x00, 0x18,             // template set, length 24
        0x01, 0x00, 0x00, 0x04,             // template 256, 4 fields
        0x00, 0x0a, 0x00, 0x04,             // ingressInterface (10), 4
        0x00, 0x0e, 0x00, 0x04,             // egressInterface (14), 4
        0x00, 0x01, 0x00, 0x04,             // octetDeltaCount (1), 4
        0x00, 0x02, 0x00, 0x04,             // packetDeltaCount (2), 4
        0x01, 0x00, 0x00, 0x14,             // data set 256, length 20
        0x00, 0x00, 0x00, 0x03,             // in 3
        0x00, 0x00, 0x00, 0x05,             // out 5
        0x00, 0x00, 0x03, 0xe8,             // 1000 bytes
        0x00, 0x00, 0x00, 0x0a,             // 10 packets
    ];
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(options, s.addr("netflow")).unwrap();
    // Options first (as routers send them), then the flow, in a second datagram.
    std::thread::sleep(Duration::from_millis(100));
    sock.send_to(data, s.addr("netflow")).unwrap();
    s.wait_flows(1, Duration::from_secs(10));
    s.stop();
    let j = query(&dir.join("store"), &["-o", "ndjson"]);
    let v: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
    assert_eq!(v["in_if"], 3);
    assert_eq!(v["in_if_name"], "xe-0/0/3");
    assert_eq!(v["in_if_desc"], "transit A");
    assert_eq!(v["in_if_speed"], 10_000_000_000u64);
    assert_eq!(v["out_if_name"], "uplink-5");
    assert_eq!(v["out_if_desc"], "to core");
    assert_eq!(v["out_if_speed"], 100_000_000_000u64);
    let t = query(
        &dir.join("store"),
        &["-s", "inifname/bytes", "-o", "csv", "in if name xe-0/0/3"],
    );
    assert!(
        t.lines().nth(1).is_some_and(|l| l.contains(",xe-0/0/3,1,")),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
