//! `flowsight generate` and `replay` against real reference collectors: Debian's nfcapd
//! (NetFlow v5/v9, IPFIX) and sfcapd (sFlow) receive the traffic, and nfdump's totals and
//! top-10 destinations must equal the generator's ground truth exactly. This proves our
//! encoders interoperate, not only round-trip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose

use serde_json::Value;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{bin, free_udp_port, tempdir as tmpdir};

/// A reference collector (nfcapd or sfcapd) on a random loopback port.
struct Collector {
    inner: common::Nfcapd,
    port: u16,
}

impl Collector {
    fn start(tool: &str, name: &str) -> Collector {
        let inner = common::Nfcapd::start_tool(tool, &tmpdir(name), &["-B", "8000000"]);
        let port = inner.port;
        Collector { inner, port }
    }

    /// Stops the collector (SIGTERM flushes its file) and returns nfdump's view.
    fn finish(self) -> (Value, Vec<(String, u64)>) {
        std::thread::sleep(Duration::from_millis(300));
        let dir = self.inner.stop();
        let totals = nfdump_totals(&dir);
        let top = nfdump_top_dst(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        (totals, top)
    }
}

fn nfdump_totals(dir: &Path) -> Value {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .arg("-I")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("nfdump -I has no {k}: {text}"))
    };
    serde_json::json!({"flows": get("Flows"), "packets": get("Packets"), "bytes": get("Bytes")})
}

fn nfdump_top_dst(dir: &Path) -> Vec<(String, u64)> {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .args(["-s", "dstip/bytes", "-n", "10", "-o", "csv", "-N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[4].to_string(), c[9].parse().unwrap())
        })
        .collect()
}

fn generate(args: &[&str]) -> Value {
    let out = Command::new(bin())
        .arg("generate")
        .args(args)
        .arg("--summary=json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// nfdump's top-10 destinations by bytes must be the generator's, with the same bytes.
fn check_top(truth: &Value, top: &[(String, u64)], scaled: u64) {
    assert_eq!(top.len(), 10);
    let ours: Vec<(String, u64)> = truth["top_destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["addr"].as_str().unwrap().to_string(),
                d["bytes"].as_u64().unwrap() * scaled,
            )
        })
        .collect();
    for (i, (addr, bytes)) in top.iter().enumerate() {
        // Same bytes at each rank (ties may order differently), and that address has them.
        assert_eq!(
            *bytes, ours[i].1,
            "rank {i}: nfdump {addr} {bytes}, generator {:?}",
            ours[i]
        );
        assert!(
            ours.iter().any(|(a, b)| a == addr && b == bytes),
            "{addr} {bytes} not in {ours:?}"
        );
    }
}

fn interop(format: &str) {
    let c = Collector::start("nfcapd", &format!("nfcapd-{format}"));
    let truth = generate(&[
        "--target",
        &format!("127.0.0.1:{}", c.port),
        "--format",
        format,
        "--flows",
        "20000",
        "--rate",
        "20000",
        "--exporters",
        "3",
        "--seed",
        "11",
        "--scenario",
        "ddos-syn:rate=2000",
        "--scenario",
        "udp-amplification:service=ntp,rate=500",
    ]);
    let (nf, top) = c.finish();
    for k in ["flows", "packets", "bytes"] {
        assert_eq!(
            nf[k], truth[k],
            "{format}: {k}: nfdump vs generator ground truth"
        );
    }
    check_top(&truth, &top, 1);
}

#[test]
fn netflow_v5_into_nfcapd() {
    interop("v5");
}

#[test]
fn netflow_v9_into_nfcapd() {
    interop("v9");
}

#[test]
fn ipfix_into_nfcapd() {
    interop("ipfix");
}

#[test]
fn sflow_into_sfcapd() {
    let c = Collector::start("sfcapd", "sfcapd");
    let truth = generate(&[
        "--target",
        &format!("127.0.0.1:{}", c.port),
        "--format",
        "sflow",
        "--flows",
        "10000",
        "--rate",
        "10000",
        "--exporters",
        "2",
        "--sampling",
        "64",
        "--seed",
        "12",
        "--scenario",
        "icmp-flood:rate=1000",
    ]);
    let (nf, top) = c.finish();
    // sfcapd scales each sample by the sampling rate.
    assert_eq!(nf["flows"], truth["flows"]);
    assert_eq!(nf["packets"], truth["scaled_packets"]);
    assert_eq!(nf["bytes"], truth["scaled_bytes"]);
    check_top(&truth, &top, 64);
}

#[test]
fn replay_of_a_generated_capture_delivers_the_same_totals() {
    let dir = tmpdir("replay");
    let pcap = dir.join("gen.pcap");
    let truth = generate(&[
        "--out",
        pcap.to_str().unwrap(),
        "--format",
        "v9",
        "--flows",
        "8000",
        "--exporters",
        "2",
        "--seed",
        "13",
    ]);
    let c = Collector::start("nfcapd", "nfcapd-replay");
    common::flowsight(&[
        "replay",
        pcap.to_str().unwrap(),
        "--target",
        &format!("127.0.0.1:{}", c.port),
        "--speed",
        "max",
        "--summary-json",
    ]);
    let (nf, _) = c.finish();
    for k in ["flows", "packets", "bytes"] {
        assert_eq!(nf[k], truth[k], "replay: {k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_gives_byte_identical_captures() {
    let dir = tmpdir("seed");
    let a = dir.join("a.pcap");
    let b = dir.join("b.pcap");
    for p in [&a, &b] {
        generate(&[
            "--out",
            p.to_str().unwrap(),
            "--flows",
            "3000",
            "--seed",
            "99",
            "--scenario",
            "c2-beacon:interval=1s",
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rate_is_held_within_two_percent() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    for (rate, dur) in [("50", "4s"), ("20000", "3s")] {
        let t = generate(&[
            "--target",
            &format!("127.0.0.1:{port}"),
            "--rate",
            rate,
            "--duration",
            dur,
            "--format",
            "v5",
        ]);
        let want: f64 = rate.parse().unwrap();
        let got = t["flows_per_s"].as_f64().unwrap();
        assert!(
            (got - want).abs() / want < 0.02,
            "rate {rate}: achieved {got}"
        );
    }
}

#[test]
fn bad_input_gives_one_clear_line() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--target", "127.0.0.1:9", "--rate", "fast", "--flows", "1"],
            "--rate fast",
        ),
        (
            &["--target", "127.0.0.1:9", "--rate", "-3", "--flows", "1"],
            "--rate -3",
        ),
        (
            &["--target", "no-such-host.invalid:2055", "--flows", "1"],
            "does not resolve",
        ),
        (&["--target", "127.0.0.1:9"], "--flows N or --duration"),
        (
            &[
                "--target",
                "127.0.0.1:9",
                "--flows",
                "1",
                "--scenario",
                "meteor",
            ],
            "unknown scenario",
        ),
        (&["--flows", "1"], "nowhere to send"),
        (
            &[
                "--format",
                "v9",
                "--ipfix-time",
                "ns",
                "--flows",
                "1",
                "--target",
                "127.0.0.1:9",
            ],
            "--ipfix-time sets the unit of IPFIX flow times",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(bin())
            .arg("generate")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    // A closed UDP port does not stop the run.
    let port = free_udp_port();
    let out = Command::new(bin())
        .args([
            "generate",
            "--target",
            &format!("127.0.0.1:{port}"),
            "--flows",
            "2000",
            "--rate",
            "max",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unreadable capture for replay.
    let out = Command::new(bin())
        .args(["replay", "/nonexistent/x.pcap", "--target", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /nonexistent/x.pcap"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn ipfix_over_tcp_delivers_the_truth() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept both exporters' connections and keep their byte streams.
    let server = std::thread::spawn(move || {
        let mut streams = Vec::new();
        for _ in 0..2 {
            let (mut s, peer) = listener.accept().unwrap();
            let h = std::thread::spawn(move || {
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).unwrap();
                (peer.ip(), buf)
            });
            streams.push(h);
        }
        streams
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let dir = tmpdir("tcp");
    let pcap = dir.join("tcp.pcap");
    let truth = generate(&[
        "--target",
        &format!("127.0.0.1:{port}"),
        "--transport",
        "tcp",
        "--exporters",
        "2",
        "--flows",
        "5000",
        "--rate",
        "max",
        "--seed",
        "21",
        "--out",
        pcap.to_str().unwrap(),
    ]);
    let streams = server.join().unwrap();
    let mut dec = flowsight_wire::Decoder::default();
    let mut batch = flowsight_schema::FlowBatch::default();
    for (peer, bytes) in &streams {
        // Each exporter connected from its own address.
        assert!(peer.to_string().starts_with("127.0.0."), "{peer}");
        let mut s = flowsight_wire::IpfixStream::new();
        s.push(bytes);
        while let Some(m) = s.next_message().unwrap() {
            dec.decode(*peer, 0, &m, &mut batch).unwrap();
        }
        assert_eq!(
            s.buffered(),
            0,
            "a partial message at the end of the stream"
        );
    }
    assert_ne!(streams[0].0, streams[1].0);
    assert_eq!(batch.len() as u64, truth["flows"].as_u64().unwrap());
    assert_eq!(
        batch.bytes.iter().sum::<u64>(),
        truth["bytes"].as_u64().unwrap()
    );
    // The pcap of the TCP segments decodes to the same flows.
    let out = Command::new(bin())
        .args(["decode", "--summary=json", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["flows"], truth["flows"]);
    assert_eq!(s["bytes"], truth["bytes"]);
    let _ = std::fs::remove_dir_all(&dir);
}
