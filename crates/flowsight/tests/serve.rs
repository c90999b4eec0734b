//! `flowsight serve` end to end on loopback: real datagrams in, the embedded store and
//! `flowsight query` out; restarts, crashes, hostile input and configuration errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose

mod common;

use common::{Serve, duckdb_python, query, root, tempdir};
use flowsight_schema::{FlowRecord, addr_from_ip};
use flowsight_wire::{ExportEncoder, IpfixEncoder};
use serde_json::Value;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

fn capture_totals(name: &str) -> (u64, u64, u64) {
    let t: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(format!("testdata/captures/{name}.totals.json")))
            .unwrap(),
    )
    .unwrap();
    (
        t["flows"].as_u64().unwrap(),
        t["packets"].as_u64().unwrap(),
        t["bytes"].as_u64().unwrap(),
    )
}

/// (flows, packets, bytes) of the store, from `query -s proto -o json`.
fn stored_totals(data: &std::path::Path, filter: &str) -> (u64, u64, u64) {
    let out = query(data, &["-s", "proto", "-o", "json", filter]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let t = &v["totals"];
    (
        t["flows"].as_u64().unwrap(),
        t["packets"].as_u64().unwrap(),
        t["bytes"].as_u64().unwrap(),
    )
}

fn send_capture(name: &str, to: &str, from: &str) -> usize {
    let pkts = flowsight_capture::payloads(
        &std::fs::read(root().join(format!("testdata/captures/{name}.pcap"))).unwrap(),
    )
    .unwrap();
    let sock = UdpSocket::bind(from).unwrap();
    for p in &pkts {
        sock.send_to(&p.data, to).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    pkts.len()
}

#[test]
fn flows_are_queryable_within_five_seconds_and_equal_the_capture() {
    let data = tempdir("serve-basic");
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    let want = capture_totals("softflowd-ipfix");
    send_capture("softflowd-ipfix", &s.addr("netflow"), "127.0.0.1:0");
    let sent = Instant::now();
    // Default flush interval (2 s): the flows must be in the store within 5 s.
    loop {
        if stored_totals(&data, "any") == want {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "after 5 s the store has {:?}, want {want:?}",
            stored_totals(&data, "any")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Per-exporter statistics on /metrics.
    let m = s.metrics();
    assert!(
        m.contains(&format!(
            "flowsight_exporter_flows_total{{exporter=\"127.0.0.1\",format=\"ipfix\"}} {}",
            want.0
        )),
        "{m}"
    );
    assert_eq!(s.metric("flowsight_decode_errors_total"), 0);
    let api = common::http_get(&s.http, "/api/v1/exporters");
    let ex: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(ex[0]["address"], "127.0.0.1");
    assert_eq!(ex[0]["flows"].as_u64(), Some(want.0));
    s.stop();
    // Still there after a clean stop.
    assert_eq!(stored_totals(&data, "any"), want);
    // The 1-minute rollup written beside the flows sums to the same totals.
    let rows = flowsight_store::Store::open_read(&data)
        .unwrap()
        .read_rollup(flowsight_store::Tier::M1, flowsight_store::TimeRange::ALL)
        .unwrap();
    let r = rows.iter().fold((0, 0, 0), |a, (_, x)| {
        (a.0 + x.flows, a.1 + x.packets, a.2 + x.bytes)
    });
    assert_eq!(r, want);
    let _ = std::fs::remove_dir_all(&data);
}

/// Replays a capture to `to` with `flowsight replay --speed max` (UDP GSO runs); returns
/// its JSON summary.
fn replay(name: &str, to: &str) -> Value {
    let pcap = root().join(format!("testdata/captures/{name}.pcap"));
    let out = common::flowsight(&[
        "replay",
        "--speed",
        "max",
        "--summary-json",
        "--target",
        to,
        pcap.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(summary["gso"], true, "this kernel refused UDP GSO");
    summary
}

/// `flowsight replay` hands runs of equal-size datagrams to the kernel as one UDP GSO send,
/// and `serve` with `udp_gro = true` asks for UDP GRO, so on loopback the run arrives as one
/// buffer. Each datagram in it must still be decoded on its own: the totals are tshark's
/// and nfdump's counts of the captures (two NetFlow v5 datagrams, the last one shorter;
/// 38 sFlow datagrams). Without the setting, GRO stays off.
#[test]
fn gro_buffers_are_cut_into_their_datagrams() {
    let dir = tempdir("serve-gro");
    let s = Serve::with_config(&dir, "udp_gro = true\n", "netflow://127.0.0.1:0");
    let data = dir.join("store");
    let mut want = (0, 0, 0);
    let mut datagrams = 0;
    for name in ["softflowd-v5", "pmacct-sfprobe"] {
        let summary = replay(name, &s.addr("netflow"));
        let t = capture_totals(name);
        want = (want.0 + t.0, want.1 + t.1, want.2 + t.2);
        datagrams += summary["datagrams"].as_u64().unwrap();
    }
    s.wait_flows(want.0, Duration::from_secs(10));
    assert_eq!(s.metric("flowsight_datagrams_total"), datagrams);
    assert!(
        s.metric("flowsight_udp_gro_receives_total") > 0,
        "no receive carried several datagrams: the test did not exercise GRO"
    );
    assert_eq!(s.metric("flowsight_decode_errors_total"), 0);
    // Every queued byte is given back once its datagrams are decoded (a leak would, in the
    // end, block the receivers for good).
    s.wait_metric(
        "flowsight_receive_queue_bytes",
        |v| v == 0,
        Duration::from_secs(5),
        "the receive queue still holds bytes after every flow was decoded",
    );
    s.stop();
    assert_eq!(stored_totals(&data, "any"), want);
    // The default: no GRO, the same datagrams one by one.
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    let summary = replay("softflowd-v5", &s.addr("netflow"));
    let n = capture_totals("softflowd-v5").0;
    s.wait_flows(n, Duration::from_secs(10));
    assert_eq!(
        s.metric("flowsight_datagrams_total"),
        summary["datagrams"].as_u64().unwrap()
    );
    assert_eq!(s.metric("flowsight_udp_gro_receives_total"), 0);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn duckdb_reads_the_store_without_flowsight() {
    let py = duckdb_python();
    let data = tempdir("serve-duckdb");
    let s = Serve::start(
        &data,
        &[
            "--listen",
            "netflow://127.0.0.1:0",
            "--flush-interval",
            "200ms",
        ],
    );
    let want = capture_totals("softflowd-v9");
    send_capture("softflowd-v9", &s.addr("netflow"), "127.0.0.1:0");
    s.wait_flows(want.0, Duration::from_secs(10));
    s.stop();
    let glob = data.join("flows/**/*.parquet");
    let sql = format!(
        "SELECT count(*), sum(packets), sum(bytes), \
                count(*) FILTER (WHERE proto = 6), \
                count(*) FILTER (WHERE src_addr = unhex('00000000000000000000FFFFC0A8010A')) \
         FROM read_parquet('{}', hive_partitioning = true)",
        glob.display()
    );
    let out = Command::new(&py)
        .args([
            "-c",
            &format!("import duckdb; print(*duckdb.sql(\"{sql}\").fetchall()[0])"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let count = |f: &str| query(&data, &["-o", "ndjson", f]).lines().count() as u64;
    assert_eq!(
        got,
        vec![
            want.0,
            want.1,
            want.2,
            count("proto tcp"),
            count("src ip 192.168.1.10")
        ]
    );
    assert!(got[4] > 0, "the address test selects something");
    let _ = std::fs::remove_dir_all(&data);
}

fn records(n: usize, base_ns: u64) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| FlowRecord {
            src_addr: addr_from_ip(format!("192.0.2.{}", i % 200 + 1).parse().unwrap()),
            dst_addr: addr_from_ip("198.51.100.7".parse().unwrap()),
            src_port: 40_000 + i as u16,
            dst_port: 443,
            proto: 6,
            etype: 0x0800,
            packets: 3 + i as u64 % 5,
            bytes: 1000 + i as u64,
            time_flow_start_ns: base_ns + i as u64 * 1_000_000,
            time_flow_end_ns: base_ns + i as u64 * 1_000_000 + 500_000_000,
            ..FlowRecord::default()
        })
        .collect()
}

#[test]
fn templates_survive_a_restart() {
    let data = tempdir("serve-restart");
    let now = flowsight_store::now_ns();
    // One exporter whose templates are only in its first message.
    let mut enc = IpfixEncoder::new(7).template_every(1_000_000);
    let recs = records(400, now - 60_000_000_000);
    let mut msgs = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        let mut m = Vec::new();
        i += enc.encode_datagram(now, &recs[i..], &mut m);
        msgs.push(m);
    }
    assert!(msgs.len() >= 4, "{} messages", msgs.len());
    let half = msgs.len() / 2;
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();

    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    for m in &msgs[..half] {
        exporter.send_to(m, s.addr("netflow")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    s.stop();

    // The second half has no template: it decodes only if the restart kept it.
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    assert!(s.metric("flowsight_templates_restored_total") >= 1);
    for m in &msgs[half..] {
        exporter.send_to(m, s.addr("netflow")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.metric("flowsight_unknown_template_sets_total"), 0);
    s.stop();
    let want: (u64, u64, u64) = (
        recs.len() as u64,
        recs.iter().map(|r| r.packets).sum(),
        recs.iter().map(|r| r.bytes).sum(),
    );
    assert_eq!(stored_totals(&data, "any"), want);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn ipfix_over_tcp_reaches_the_store() {
    let data = tempdir("serve-tcp");
    let s = Serve::start(
        &data,
        &[
            "--listen",
            "ipfix+tcp://127.0.0.1:0",
            "--flush-interval",
            "500ms",
        ],
    );
    let out = common::flowsight(&[
        "generate",
        "--format",
        "ipfix",
        "--transport",
        "tcp",
        "--flows",
        "5000",
        "--rate",
        "max",
        "--no-background",
        "--scenario",
        "ddos-syn",
        "--target",
        &s.addr("ipfix+tcp"),
        "--summary=json",
    ]);
    let truth: Value = serde_json::from_slice(&out).unwrap();
    let flows = truth["flows"].as_u64().unwrap();
    s.wait_flows(flows, Duration::from_secs(20));
    s.stop();
    let got = stored_totals(&data, "any");
    assert_eq!(
        got,
        (
            flows,
            truth["packets"].as_u64().unwrap(),
            truth["bytes"].as_u64().unwrap()
        )
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn kill_9_loses_at_most_the_flush_interval_and_leaves_a_readable_store() {
    let data = tempdir("serve-kill9");
    let mut s = Serve::start(
        &data,
        &[
            "--listen",
            "netflow://127.0.0.1:0",
            "--flush-interval",
            "1s",
        ],
    );
    let target = s.addr("netflow");
    let mut gen_child = Command::new(common::bin())
        .args([
            "generate",
            "--format",
            "ipfix",
            "--rate",
            "20000",
            "--duration",
            "30s",
        ])
        .args(["--target", &target])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Sample the decoded-flow counter while traffic flows, then kill -9 mid-stream.
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(3500) {
        samples.push((Instant::now(), s.metric("flowsight_flows_total")));
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed_at = Instant::now();
    s.child.kill().unwrap();
    let _ = s.child.wait();
    let _ = gen_child.kill();
    let _ = gen_child.wait();
    let decoded = samples.last().unwrap().1;
    assert!(
        decoded > 20_000,
        "only {decoded} flows decoded before the kill"
    );
    // Flows decoded more than flush interval + hand-off (200 ms) + slack before the kill
    // must be on disk.
    let horizon = killed_at - Duration::from_millis(1000 + 200 + 400);
    let must = samples
        .iter()
        .filter(|(t, _)| *t <= horizon)
        .map(|(_, n)| *n)
        .max()
        .unwrap();
    let (stored, _, _) = stored_totals(&data, "any");
    assert!(
        stored >= must && stored <= decoded,
        "stored {stored}, decoded {decoded} at the kill, {must} decoded by the flush horizon"
    );
    // The store reopens for writing after the crash (temporaries cleaned) and stays readable.
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    s.stop();
    assert_eq!(stored_totals(&data, "any").0, stored);
    let _ = std::fs::remove_dir_all(&data);
}

/// Hostile datagrams from one exporter while another sends real traffic.
fn hostile_corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        vec![],                                   // empty
        vec![0x00],                               // one byte
        vec![0x00, 0x05],                         // v5, header cut
        vec![0x00, 0x09, 0x00, 0x01],             // v9, header cut
        vec![0x00, 0x0a, 0x00, 0x10],             // IPFIX, length 16 but 4 bytes
        vec![0x12, 0x34, 0x00, 0x10, 0, 0, 0, 0], // unknown version
        vec![0xff; 1400],                         // garbage
    ];
    // IPFIX header claiming 65535 bytes.
    let mut huge = vec![0x00, 0x0a, 0xff, 0xff];
    huge.extend_from_slice(&[0; 12]);
    v.push(huge);
    // IPFIX message with a zero-length set.
    let mut zero = vec![0x00, 0x0a, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    zero.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    v.push(zero);
    // v9 data set whose length runs past the datagram.
    let mut v9 = vec![
        0x00, 0x09, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    v9.extend_from_slice(&[0x01, 0x00, 0xff, 0xf0, 1, 2, 3, 4]);
    v.push(v9);
    // A template flood: 3000 IPFIX messages, each defining a new template id.
    for id in 0..3000u16 {
        let tid = 256 + id;
        let mut m = vec![0x00, 0x0a, 0x00, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        m.extend_from_slice(&[0x00, 0x02, 0x00, 0x0c]); // template set, 12 bytes
        m.extend_from_slice(&tid.to_be_bytes());
        m.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x04]); // 1 field: IE 8, len 4
        v.push(m);
    }
    v
}

#[test]
fn hostile_packets_never_crash_and_real_traffic_stays_exact() {
    let data = tempdir("serve-hostile");
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    let to = s.addr("netflow");
    let want = capture_totals("softflowd-v9");
    let evil = hostile_corpus();
    let n_evil = evil.len() as u64;
    let to2 = to.clone();
    let attacker = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
        for p in &evil {
            sock.send_to(p, &to2).unwrap();
        }
    });
    send_capture("softflowd-v9", &to, "127.0.0.1:0");
    attacker.join().unwrap();
    s.wait_flows(want.0, Duration::from_secs(10));
    // Per-exporter figures are published a few times a second.
    let t = Instant::now();
    let mut m = s.metrics();
    while !m.contains(&format!(
        "flowsight_exporter_packets_total{{exporter=\"127.0.0.2\",format=\"ipfix\"}} {n_evil}"
    )) {
        assert!(t.elapsed() < Duration::from_secs(5), "{m}");
        std::thread::sleep(Duration::from_millis(100));
        m = s.metrics();
    }
    s.stop();
    assert_eq!(stored_totals(&data, "router ip 127.0.0.1"), want);
    // The attacker's errors are counted against it, and it is the only one with errors.
    let errs = |ip: &str| -> u64 {
        m.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "flowsight_exporter_decode_errors_total{{exporter=\"{ip}\""
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(errs("127.0.0.2") >= 8, "{m}");
    assert_eq!(errs("127.0.0.1"), 0, "{m}");
    let pk = |ip: &str| {
        m.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "flowsight_exporter_packets_total{{exporter=\"{ip}\""
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        pk("127.0.0.2"),
        n_evil,
        "every hostile datagram was seen: {m}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn configuration_errors_are_clear_and_check_prints_the_effective_config() {
    let out = Command::new(common::bin())
        .args(["serve", "--listen", "kafka://127.0.0.1:9092"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scheme `kafka`"), "{err}");

    let dir = tempdir("serve-config");
    let cfg = dir.join("flowsight.toml");
    std::fs::write(
        &cfg,
        "listen = [\"netflow://127.0.0.1:2055\"]\n[store]\nflush_intervl = \"1s\"\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["serve", "--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `flush_intervl`") && err.contains("line 3"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "listen = [\"netflow://127.0.0.1:2055\"]\n[store]\nmax_age = \"7d\"\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["serve", "--check", "--config"])
        .arg(&cfg)
        .args(["--http", "127.0.0.1:9999"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("max_age = \"7d\""), "{text}");
    assert!(text.contains("http = \"127.0.0.1:9999\""), "{text}");
    assert!(text.contains("flush_interval = \"2s\""), "{text}");

    // SCTP: where the kernel has none, the listener fails at start and says so.
    let sctp = std::fs::read_to_string("/proc/net/protocols")
        .map(|p| p.contains("SCTP"))
        .unwrap_or(false);
    if !sctp {
        let out = Command::new(common::bin())
            .args([
                "serve",
                "--listen",
                "ipfix+sctp://127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ])
            .arg("--data")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no SCTP support") && err.contains("modprobe sctp"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn allow_list_and_sampling_override_from_the_config_file() {
    let data = tempdir("serve-allow");
    let s = Serve::with_config(
        &data,
        "allow = [\"127.0.0.1/32\"]\n\n[[exporters]]\naddress = \"127.0.0.1\"\nsampling_rate = 100\n",
        "netflow://127.0.0.1:0",
    );
    let want = capture_totals("softflowd-v5");
    let from_other = send_capture("softflowd-v5", &s.addr("netflow"), "127.0.0.3:0");
    send_capture("softflowd-v5", &s.addr("netflow"), "127.0.0.1:0");
    s.wait_flows(want.0, Duration::from_secs(10));
    s.wait_metric(
        "flowsight_not_allowed_total",
        |v| v >= from_other as u64,
        Duration::from_secs(5),
        "the other exporter's datagrams were not counted as not allowed",
    );
    assert_eq!(s.metric("flowsight_not_allowed_total"), from_other as u64);
    s.stop();
    let store = data.join("store");
    assert_eq!(stored_totals(&store, "any"), want);
    let rates: std::collections::BTreeSet<u64> = query(&store, &["-o", "ndjson"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["sampler_address"], "127.0.0.1");
            v["sampling_rate"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(rates, [100].into_iter().collect());
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn ipfix_over_tls_with_openssl_as_the_exporter() {
    common::need("openssl", "openssl");
    let dir = tempdir("serve-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.join("flowsight.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let data = dir.join("store");
    let s = Serve::start(
        &data,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "ipfix+tls://127.0.0.1:0",
            "--flush-interval",
            "200ms",
        ],
    );
    let addr = s.addr("ipfix+tls");

    // A plain-TCP client on the TLS port is refused, and counted, without harm.
    {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        let _ = c.write_all(&[0, 10, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    // IPFIX messages written through `openssl s_client` (a real TLS client).
    let now = flowsight_store::now_ns();
    let recs = records(300, now - 60_000_000_000);
    let mut enc = IpfixEncoder::new(3);
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        i += enc.encode_datagram(now, &recs[i..], &mut bytes);
    }
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr,
            "-quiet",
            "-no_ign_eof",
            "-nocommands",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(&bytes).unwrap();
    }
    s.wait_flows(recs.len() as u64, Duration::from_secs(10));
    let _ = client.wait();
    // The refused plain-TCP connection is counted by its own connection thread, which may
    // run after the TLS flows are in on a loaded machine: wait for it (a CI run read 0).
    s.wait_metric(
        "flowsight_stream_errors_total",
        |v| v >= 1,
        Duration::from_secs(10),
        "the plain-TCP client on the TLS port was not counted as a stream error",
    );
    s.stop();
    let want: (u64, u64, u64) = (
        recs.len() as u64,
        recs.iter().map(|r| r.packets).sum(),
        recs.iter().map(|r| r.bytes).sum(),
    );
    assert_eq!(stored_totals(&data, "any"), want);

    // A key that is not PEM is a clear start-up error naming the file.
    std::fs::write(&key, "not a key").unwrap();
    let out = Command::new(common::bin())
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "ipfix+tls://127.0.0.1:0",
        ])
        .args(["--http", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.key") && err.contains("key.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn sql(data: &std::path::Path, q: &str) -> std::process::Output {
    Command::new(common::bin())
        .args(["sql", "-o", "csv", "--data"])
        .arg(data)
        .arg(q)
        .output()
        .unwrap()
}

#[test]
fn sql_over_the_store_agrees_with_query() {
    let data = tempdir("serve-sql");
    let s = Serve::start(
        &data,
        &[
            "--listen",
            "netflow://127.0.0.1:0",
            "--flush-interval",
            "200ms",
        ],
    );
    let want = capture_totals("softflowd-ipfix");
    send_capture("softflowd-ipfix", &s.addr("netflow"), "127.0.0.1:0");
    s.wait_flows(want.0, Duration::from_secs(10));
    s.stop();

    let out = sql(
        &data,
        "SELECT count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes FROM flows",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().nth(1).unwrap(),
        format!("{},{},{}", want.0, want.1, want.2)
    );

    // Top 5 sources by bytes: the same addresses and bytes as `query -s srcip/bytes`.
    let out = sql(
        &data,
        "SELECT src_addr, sum(bytes) AS b FROM flows GROUP BY src_addr ORDER BY b DESC, src_addr LIMIT 5",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.to_string(), b.parse().unwrap())
        })
        .collect();
    let stat: Vec<(String, u64)> = query(&data, &["-s", "srcip/bytes", "-n", "5", "-o", "csv"])
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[4].to_string(), c[9].parse().unwrap())
        })
        .collect();
    assert_eq!(ours, stat);

    // The rollup tables are there too.
    let out = sql(&data, "SELECT sum(flows) FROM rollup_1m");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().nth(1),
        Some(want.0.to_string().as_str())
    );

    // Mistakes are one clear error, not a crash.
    let out = sql(&data, "SELEC nothing FROM flows");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SQL"), "{err}");
    let out = sql(&data, "SELECT no_such_column FROM flows");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_column"));
    let _ = std::fs::remove_dir_all(&data);
}
