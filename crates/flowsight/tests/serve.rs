//! `flowsight serve` end to end on loopback: real UDP datagrams from the golden captures in,
//! goflow2 JSON lines out, totals equal to the capture's independent totals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Flow export payloads of a capture.
fn payloads(path: &PathBuf) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    flowsight_capture::payloads(&bytes)
        .unwrap()
        .into_iter()
        .map(|p| p.data)
        .collect()
}

#[test]
fn serve_decodes_udp_exports_to_json_lines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cap = root.join("testdata/captures/softflowd-ipfix.pcap");
    let totals: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("testdata/captures/softflowd-ipfix.totals.json"))
            .unwrap(),
    )
    .unwrap();
    let pkts = payloads(&cap);

    let mut child = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args([
            "serve",
            "--listen",
            "netflow://127.0.0.1:0",
            "--max-datagrams",
        ])
        .arg(pkts.len().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The listener reports its (random) port on stderr.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"));

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in &pkts {
        sock.send_to(p, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = BufReader::new(child.stdout.take().unwrap());
    let (mut flows, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(20);
    for l in out.lines() {
        let v: Value = serde_json::from_str(&l.unwrap()).unwrap();
        assert_eq!(v["type"], "IPFIX");
        assert_eq!(v["sampler_address"], "127.0.0.1");
        flows += 1;
        packets += v["packets"].as_u64().unwrap();
        bytes += v["bytes"].as_u64().unwrap();
        assert!(Instant::now() < deadline, "serve too slow");
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        (flows, packets, bytes),
        (
            totals["flows"].as_u64().unwrap(),
            totals["packets"].as_u64().unwrap(),
            totals["bytes"].as_u64().unwrap()
        )
    );
}

#[test]
fn serve_rejects_a_bad_listener_with_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args(["serve", "--listen", "kafka://127.0.0.1:9092"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scheme `kafka` is not supported"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
