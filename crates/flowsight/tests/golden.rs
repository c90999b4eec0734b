//! Golden tests over captures made by real exporters (testdata/captures, made by
//! testdata/regen.sh with softflowd, fprobe, pmacct and nfreplay):
//!
//! 1. `flowsight decode --summary=json` totals (flows, packets, bytes) equal those of an
//!    independent decoder run now, on the same capture: tshark's NetFlow/IPFIX/sFlow
//!    dissectors (testdata/tshark_totals.py), and the nfdump figures recorded at capture time.
//! 2. `flowsight decode` NDJSON equals the reviewed golden output in testdata/golden/
//!    (`FLOWSIGHT_BLESS=1 cargo test -p flowsight --test golden` rewrites it after a
//!    deliberate change; review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flowsight(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args(args)
        .output()
        .expect("run flowsight");
    assert!(
        out.status.success(),
        "flowsight {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "flowsight {args:?} reported errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn captures() -> Vec<(String, PathBuf, Value)> {
    let dir = root().join("testdata/captures");
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".totals.json") {
            let totals: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            v.push((stem.to_string(), dir.join(format!("{stem}.pcap")), totals));
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        v.len() >= 10,
        "expected the golden captures in {}; run testdata/regen.sh",
        dir.display()
    );
    v
}

fn tshark_totals(pcap: &Path, t: &Value) -> Value {
    if Command::new("tshark").arg("--version").output().is_err() {
        panic!(
            "tshark is needed for the golden tests: apt-get install -y tshark (scripts/test.sh installs it)"
        );
    }
    let out = std::env::temp_dir().join(format!("flowsight-golden-{}.json", std::process::id()));
    let st = Command::new("python3")
        .arg(root().join("testdata/tshark_totals.py"))
        .arg(pcap)
        .args(["--format", t["format"].as_str().unwrap()])
        .args(["--transport", t["transport"].as_str().unwrap()])
        .args(["--port", &t["export_port"].to_string()])
        .args(["--tool", "golden test"])
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run python3 testdata/tshark_totals.py");
    assert!(
        st.success(),
        "tshark_totals.py failed on {}",
        pcap.display()
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(out);
    v
}

#[test]
fn totals_agree_with_tshark_and_nfdump() {
    for (name, pcap, recorded) in captures() {
        let ours: Value = serde_json::from_str(&flowsight(&[
            "decode",
            "--summary=json",
            pcap.to_str().unwrap(),
        ]))
        .unwrap();
        let live = tshark_totals(&pcap, &recorded);
        for key in ["flows", "packets", "bytes"] {
            assert_eq!(
                ours[key], live[key],
                "{name}: {key}: flowsight vs tshark (now)"
            );
            assert_eq!(
                ours[key], recorded[key],
                "{name}: {key}: flowsight vs recorded totals"
            );
            if let Some(nf) = recorded.get("nfdump").filter(|v| v.is_object()) {
                // nfdump scales sFlow samples by the sampling rate; NetFlow counts are raw.
                let ours_key = if recorded["format"] == "sflow_v5" && key != "flows" {
                    format!("scaled_{key}")
                } else {
                    key.to_string()
                };
                assert_eq!(
                    ours[&ours_key], nf[key],
                    "{name}: {key}: flowsight ({ours_key}) vs nfdump"
                );
            }
        }
        assert_eq!(ours["decode_errors"], 0, "{name}: decode errors");
        assert_eq!(
            ours["sequence_lost"], 0,
            "{name}: loss reported on a loss-free capture"
        );
        assert_eq!(ours["unknown_template_sets_dropped"], 0, "{name}");
    }
}

#[test]
fn ndjson_matches_golden_output() {
    let bless = std::env::var_os("FLOWSIGHT_BLESS").is_some();
    let dir = root().join("testdata/golden");
    for (name, pcap, _) in captures() {
        let got = flowsight(&["decode", pcap.to_str().unwrap()]);
        let path = dir.join(format!("{name}.ndjson"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{} missing: run FLOWSIGHT_BLESS=1 cargo test -p flowsight --test golden and review it", path.display())
        });
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(
                g,
                w,
                "{name}: line {} differs from {}",
                i + 1,
                path.display()
            );
        }
        assert_eq!(
            got.lines().count(),
            want.lines().count(),
            "{name}: number of flows"
        );
    }
}

fn decode_bytes(bytes: &[u8]) -> (Value, String) {
    let path = std::env::temp_dir().join(format!(
        "flowsight-damaged-{}-{}.pcap",
        std::process::id(),
        bytes.len()
    ));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args(["decode", "--summary=json", path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "a damaged capture is not fatal");
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn damaged_capture_is_reported_with_offset_and_decoding_goes_on() {
    let (_, pcap, totals) = captures()
        .into_iter()
        .find(|c| c.0 == "softflowd-v9")
        .unwrap();
    let good = std::fs::read(&pcap).unwrap();
    let rec_len =
        |b: &[u8], o: usize| u32::from_le_bytes(b[o + 8..o + 12].try_into().unwrap()) as usize;
    let second = 24 + 16 + rec_len(&good, 24);
    let third = second + 16 + rec_len(&good, second);
    let total_flows = totals["flows"].as_u64().unwrap();

    // A damaged record header in the middle: reported with its offset, skipped, and the
    // next record decodes.
    let mut b = good.clone();
    b[second + 8..second + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let (s, err) = decode_bytes(&b);
    assert!(
        err.contains(&format!("file offset {second}: damaged record header")),
        "{err}"
    );
    assert!(
        err.contains(&format!("skipped {} bytes", third - second)),
        "{err}"
    );
    assert_eq!(s["capture_errors"], 1);
    assert_eq!(s["datagrams"], 2);
    assert!(s["flows"].as_u64().unwrap() < total_flows);

    // A capture cut in the middle of its last record.
    let mut b = good.clone();
    b.truncate(good.len() - 10);
    let (s, err) = decode_bytes(&b);
    assert!(err.contains(&format!("file offset {third}")), "{err}");
    assert!(err.contains("runs past the end of the file"), "{err}");
    assert_eq!(s["datagrams"], 2);

    // A datagram damaged inside (set length beyond the packet): an error naming the frame,
    // and the other datagrams still decode.
    let mut b = good.clone();
    let ip = third + 16 + 14; // last frame: Ethernet, IPv4
    let ihl = (b[ip] & 15) as usize * 4;
    let set_len_at = ip + ihl + 8 + 20 + 2; // UDP header, v9 header, first FlowSet length
    b[set_len_at..set_len_at + 2].copy_from_slice(&[0xff, 0xff]);
    let (s, err) = decode_bytes(&b);
    assert!(
        err.contains(&format!("frame 3 (file offset {third})")),
        "{err}"
    );
    assert!(err.contains("bad set length 65535"), "{err}");
    assert_eq!(s["decode_errors"], 1);
    assert!(s["flows"].as_u64().unwrap() > 0 && s["flows"].as_u64().unwrap() < total_flows);
}

#[test]
fn not_a_capture_is_one_clear_error() {
    let path = std::env::temp_dir().join(format!("flowsight-notpcap-{}.txt", std::process::id()));
    std::fs::write(&path, "hello, this is not a capture").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args(["decode", path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn docs_schema_md_matches_the_registry() {
    let got = flowsight(&["schema"]);
    let path = root().join("docs/schema.md");
    if std::env::var_os("FLOWSIGHT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "docs/schema.md is stale: run `cargo run -- schema > docs/schema.md`"
    );
}

#[test]
fn decode_applies_an_nfdump_filter_and_explains_bad_ones() {
    let (_, pcap, _) = captures()
        .into_iter()
        .find(|c| c.0 == "softflowd-v9")
        .unwrap();
    let all: Value = serde_json::from_str(&flowsight(&[
        "decode",
        "--summary=json",
        pcap.to_str().unwrap(),
    ]))
    .unwrap();
    let tcp: Value = serde_json::from_str(&flowsight(&[
        "decode",
        "--summary=json",
        pcap.to_str().unwrap(),
        "proto tcp",
    ]))
    .unwrap();
    let not_tcp: Value = serde_json::from_str(&flowsight(&[
        "decode",
        "--summary=json",
        pcap.to_str().unwrap(),
        "not proto tcp",
    ]))
    .unwrap();
    assert!(tcp["flows"].as_u64().unwrap() > 0);
    assert_eq!(
        tcp["flows"].as_u64().unwrap() + not_tcp["flows"].as_u64().unwrap(),
        all["flows"].as_u64().unwrap()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_flowsight"))
        .args([
            "decode",
            pcap.to_str().unwrap(),
            "proto tcp and dst prot 443",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("                  ^^^^"), "{err}");
    assert!(
        err.contains("expected ip, host, net, port, as, geo"),
        "{err}"
    );
}
