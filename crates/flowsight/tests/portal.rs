//! The portal in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` runs `tests/browser/portal.test.mjs` against `flowsight serve` holding
//! an hour of generated, enriched traffic, logged in as a configured user. The script checks
//! that every page shows the numbers the API returns, that filter errors appear, that URLs
//! round-trip, and that the first load stays under 2 MB; it saves a screenshot of every page
//! (the test's artifacts, in `$CARGO_TARGET_DIR/portal-screenshots`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on purpose

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where `playwright-core` is installed: `$FLOWSIGHT_NODE_MODULES` (scripts/test.sh sets it)
/// or `tests/browser/node_modules`.
fn node_modules() -> PathBuf {
    let d = std::env::var_os("FLOWSIGHT_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/browser/node_modules"));
    assert!(
        d.join("playwright-core/package.json").exists(),
        "playwright-core is not in {}: run `npm ci --prefix tests/browser` (scripts/test.sh \
         does it) or set FLOWSIGHT_NODE_MODULES to a node_modules holding it",
        d.display()
    );
    d
}

fn geo_dir() -> PathBuf {
    let d = std::env::var_os("FLOWSIGHT_GEO_DIR")
        .map(PathBuf::from)
        .expect(
            "FLOWSIGHT_GEO_DIR is not set: run `scripts/fetch-geo-data --no-city DIR` and set \
         FLOWSIGHT_GEO_DIR=DIR (scripts/test.sh does both)",
        );
    assert!(
        d.join("geo-whois-asn-country.mmdb").exists(),
        "{} lacks the GeoIP database: run `scripts/fetch-geo-data --no-city {}`",
        d.display(),
        d.display()
    );
    d
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let d = target.join("portal-screenshots");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_portal_page_shows_what_the_api_says_in_chromium() {
    need("chromium", "chromium");
    need("node", "nodejs");
    let modules = node_modules();
    let geo = geo_dir();
    let dir = tempdir("portal");
    // A token for this harness (the collector's metrics need credentials too), a login for
    // the browser.
    let out = Command::new(bin()).args(["token", "new"]).output().unwrap();
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let tokens_line = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.trim().starts_with("api_tokens = "))
        .unwrap()
        .trim()
        .to_string();
    let s = Serve::with_config(
        &dir,
        &format!(
            "{tokens_line}\n{}\n[enrich]\ngeoip = [{:?}]\nasn = [{:?}, {:?}]\nas_source = \"database\"\n",
            user_entry("alice", "correct horse battery"),
            geo.join("geo-whois-asn-country.mmdb"),
            geo.join("asn-ipv4.csv"),
            geo.join("asn-ipv6.csv"),
        ),
        "netflow://127.0.0.1:0",
    );
    // An hour of traffic: one burst every two minutes (the generator's virtual clock starts
    // at --start-time), two exporters, and a SYN flood in the middle.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bursts = 30u64;
    let per = 4_000u64;
    for i in 0..bursts {
        let mut c = Command::new(bin());
        c.args(["generate", "--rate", "max", "--exporters", "2"])
            .args(["--seed", &(100 + i).to_string()])
            .args(["--start-time", &(now - 3600 + i * 120).to_string()])
            .args(["--flows", &per.to_string(), "--target", &s.addr("netflow")]);
        if i == bursts / 2 {
            c.args(["--scenario", "ddos-syn:target=10.1.0.10,rate=20000"]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let auth = format!("Authorization: Bearer {token}\r\n");
    let t = std::time::Instant::now();
    loop {
        let (_, _, m) = http_get_with(&s.http, "/metrics", &auth);
        let n: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("flowsight_flows_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if n >= bursts * per {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{n} flows decoded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(800)); // the last flush

    let out = artifacts();
    let script = root().join("tests/browser/portal.test.mjs");
    let run = Command::new("node")
        .arg(&script)
        .args(["--base", &format!("http://{}", s.http)])
        .arg("--out")
        .arg(&out)
        .args(["--user", "alice", "--password", "correct horse battery"])
        .env("FLOWSIGHT_NODE_MODULES", &modules)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{log}");
    assert!(run.status.success(), "the browser test failed:\n{log}");
    for page in ["overview", "top", "geo", "flows", "host", "exporters"] {
        let f = out.join(format!("{page}.png"));
        assert!(
            f.metadata().is_ok_and(|m| m.len() > 10_000),
            "no screenshot {}",
            f.display()
        );
    }
    s.stop();
}
