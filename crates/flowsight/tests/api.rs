//! The REST API against a running `flowsight serve` fed generated traffic: top-N, time series
//! and flow search give what `flowsight query` gives for the same filter and range; bad
//! parameters and filters (injection attempts included) get a 400 that names them; the
//! OpenAPI document lists every route.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on purpose

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get_json(s: &Serve, path: &str) -> Value {
    let (status, _, body) = http_get_full(&s.http, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A running collector holding `n` generated flows, all flushed to the store.
fn serve_with_flows(name: &str, n: u64) -> (Serve, std::path::PathBuf) {
    let data = tempdir(name);
    let s = Serve::start(
        &data,
        &[
            "--listen",
            "netflow://127.0.0.1:0",
            "--flush-interval",
            "200ms",
        ],
    );
    s.generate_ipfix(n, 11);
    let t = Instant::now();
    loop {
        let v = get_json(&s, "/api/v1/top?dimension=proto");
        if v["totals"]["flows"].as_u64() == Some(n) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "store has {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (s, data)
}

/// `flowsight query -s KEY/ORDER -n N -o json` rows as (value, flows, packets, bytes).
fn cli_stat(
    data: &std::path::Path,
    spec: &str,
    n: usize,
    extra: &[&str],
) -> Vec<(String, u64, u64, u64)> {
    let mut args = vec!["-s", spec, "-o", "json"];
    let n = n.to_string();
    args.extend(["-n", &n]);
    args.extend(extra);
    let v: Value = serde_json::from_str(query(data, &args).trim()).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_string(),
                r["flows"].as_u64().unwrap(),
                r["packets"].as_u64().unwrap(),
                r["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn api_rows(v: &Value) -> Vec<(String, u64, u64, u64)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"][0].as_str().unwrap().to_string(),
                r["flows"].as_u64().unwrap(),
                r["packets"].as_u64().unwrap(),
                r["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn api_answers_equal_the_cli() {
    let n = 20_000;
    let (s, data) = serve_with_flows("api-equal", n);
    let store = s.data.clone();

    // Top-N: the same rows as `-s`, for several keys, metrics and filters.
    for (dim, metric, filter) in [
        ("srcip", "bytes", ""),
        ("dstport", "flows", "proto tcp"),
        ("proto", "packets", "not dst port 53"),
        ("ip", "bytes", "bytes > 1000"),
        ("dstas", "flows", ""),
    ] {
        let v = get_json(
            &s,
            &format!(
                "/api/v1/top?dimension={dim}&metric={metric}&limit=7&filter={}",
                enc(filter)
            ),
        );
        let extra: Vec<&str> = if filter.is_empty() {
            vec![]
        } else {
            vec![filter]
        };
        let want = cli_stat(&store, &format!("{dim}/{metric}"), 7, &extra);
        assert!(!want.is_empty(), "{dim} {filter}");
        assert_eq!(api_rows(&v), want, "{dim}/{metric} '{filter}'");
        // Rows plus "other" are every value's traffic (one-sided keys: the totals).
        if dim != "ip" {
            let sum: u64 =
                want.iter().map(|r| r.1).sum::<u64>() + v["other"]["flows"].as_u64().unwrap();
            assert_eq!(sum, v["totals"]["flows"].as_u64().unwrap(), "{dim}");
        }
    }
    // Unfiltered answers come from the per-file cache the second time: no file is read, and
    // the rows are still the CLI's.
    for (dim, metric) in [("srcip", "bytes"), ("dstas", "flows")] {
        let path = format!("/api/v1/top?dimension={dim}&metric={metric}&limit=7");
        let first = get_json(&s, &path);
        let again = get_json(&s, &path);
        assert_eq!(again["scan"]["files_read"], 0, "{dim}: {again}");
        let want = cli_stat(&store, &format!("{dim}/{metric}"), 7, &[]);
        assert_eq!(api_rows(&first), want, "{dim}/{metric}, first");
        assert_eq!(api_rows(&again), want, "{dim}/{metric}, cached");
        assert_eq!(first["totals"], again["totals"]);
        assert_eq!(first["other"], again["other"]);
    }
    // Pairs: each conversation's share, plus other, is the total.
    let v = get_json(&s, "/api/v1/top?dimension=srcip,dstip&metric=bytes&limit=5");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["key"].as_array().unwrap().len(), 2);
    let sum: u64 = rows
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .sum::<u64>()
        + v["other"]["bytes"].as_u64().unwrap();
    assert_eq!(sum, v["totals"]["bytes"].as_u64().unwrap());

    // The flows' time span, in whole seconds, for range queries both sides can express.
    let all = get_json(&s, "/api/v1/flows?limit=1&columns=time_flow_start_ns");
    let first = all["flows"][0]["time_flow_start_ns"].as_u64().unwrap() / 1_000_000_000;
    // Aligned to the 10 s buckets, so each bucket is a range the CLI can be asked about.
    let since = first - first % 10;
    let until = since + 60;

    // Time series: each series sums to its `-s` row over the range, and each bucket's sum
    // is the range's totals for that bucket.
    let v = get_json(
        &s,
        &format!(
            "/api/v1/timeseries?dimension=proto&metric=bytes&k=3&bucket=10s&since={since}&until={until}"
        ),
    );
    assert_eq!(v["bucket_s"], 10);
    let times = v["times_ns"].as_array().unwrap();
    assert_eq!(times.len(), 6);
    let series = v["series"].as_array().unwrap();
    let want = cli_stat(
        &store,
        "proto/bytes",
        3,
        &["--since", &since.to_string(), "--until", &until.to_string()],
    );
    for (line, w) in series.iter().zip(&want) {
        assert_eq!(line["key"].as_str().unwrap(), w.0);
        let total: f64 = line["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .sum();
        assert_eq!(total as u64, w.3, "{}", w.0);
    }
    assert_eq!(series.last().unwrap()["key"], "other");
    // The same series again, from the cache.
    let again = get_json(
        &s,
        &format!(
            "/api/v1/timeseries?dimension=proto&metric=bytes&k=3&bucket=10s&since={since}&until={until}"
        ),
    );
    assert_eq!(again["series"], v["series"]);
    assert_eq!(again["times_ns"], v["times_ns"]);
    for (j, t) in times.iter().enumerate() {
        let b0 = t.as_u64().unwrap() / 1_000_000_000;
        let in_bucket: f64 = series
            .iter()
            .map(|l| l["values"][j].as_f64().unwrap())
            .sum();
        let cli = cli_stat(
            &store,
            "proto/bytes",
            0,
            &[
                "--since",
                &b0.to_string(),
                "--until",
                &(b0 + 10).to_string(),
            ],
        );
        let cli_total: u64 = cli.iter().map(|r| r.3).sum();
        assert_eq!(in_bucket as u64, cli_total, "bucket {j}");
    }

    // Flow search: every page together is exactly what `query -o ndjson` prints.
    let filter = "proto udp and dst port 53";
    let mut got: Vec<String> = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let v = get_json(
            &s,
            &format!("/api/v1/flows?limit=500&filter={}{cursor}", enc(filter)),
        );
        for f in v["flows"].as_array().unwrap() {
            got.push(f.to_string());
        }
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut want: Vec<String> = query(&store, &["-o", "ndjson", filter])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect();
    assert!(want.len() > 1000, "{}", want.len());
    assert!(pages > 2);
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the pages differ from the CLI's flows");
    // A page of some columns holds the same flows, in the same order, as the full page (the
    // engine reads only those columns and the ones the order needs).
    let cols = "src_addr,dst_port,bytes,src_country";
    let full = get_json(
        &s,
        &format!("/api/v1/flows?limit=300&filter={}", enc(filter)),
    );
    let some = get_json(
        &s,
        &format!(
            "/api/v1/flows?limit=300&columns={cols}&filter={}",
            enc(filter)
        ),
    );
    let project = |f: &Value| -> Vec<String> {
        ["src_addr", "dst_port", "bytes"]
            .iter()
            .map(|c| f[*c].to_string())
            .collect()
    };
    let full_rows: Vec<_> = full["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(project)
        .collect();
    let some_rows: Vec<_> = some["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(project)
        .collect();
    assert_eq!(full_rows.len(), 300);
    assert_eq!(some_rows, full_rows);
    assert_eq!(some["matched"], full["matched"]);
    assert_eq!(some["next_cursor"], full["next_cursor"]);
    for f in some["flows"].as_array().unwrap() {
        assert!(f.get("packets").is_none(), "{f}");
    }

    // Exports: NDJSON and CSV carry the same flows.
    let (st, head, body) = http_get_full(
        &s.http,
        &format!(
            "/api/v1/flows?format=ndjson&limit=100000&filter={}",
            enc(filter)
        ),
    );
    assert_eq!(st, 200);
    assert!(
        head.to_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    assert!(
        head.to_lowercase().contains("transfer-encoding: chunked"),
        "exports stream: {head}"
    );
    let mut exported: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect();
    exported.sort();
    assert!(
        exported == want,
        "the NDJSON export differs from the CLI's flows"
    );
    let (_, _, csv) = http_get_full(
        &s.http,
        &format!(
            "/api/v1/flows?format=csv&limit=100000&columns=src_addr,dst_port,bytes&filter={}",
            enc(filter)
        ),
    );
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("src_addr,dst_port,bytes"));
    assert_eq!(lines.count(), want.len());
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_parameters_and_filters_get_a_400_that_names_them() {
    let (s, data) = serve_with_flows("api-errors", 2_000);
    for (path, code, param) in [
        (
            "/api/v1/top?dimension=srcip&metric=loudness",
            "bad_parameter",
            "metric",
        ),
        ("/api/v1/top?dimension=colour", "bad_parameter", "dimension"),
        (
            "/api/v1/top?dimension=srcip&limit=0",
            "bad_parameter",
            "limit",
        ),
        (
            "/api/v1/top?dimension=srcip&limit=many",
            "bad_parameter",
            "query",
        ),
        (
            "/api/v1/top?dimension=srcip&since=yesterdayish",
            "bad_parameter",
            "since",
        ),
        (
            "/api/v1/timeseries?bucket=7parsecs",
            "bad_parameter",
            "bucket",
        ),
        ("/api/v1/flows?format=xml", "bad_parameter", "format"),
        (
            "/api/v1/flows?columns=src_addr,evil",
            "bad_parameter",
            "columns",
        ),
        ("/api/v1/flows?cursor=zzz", "bad_parameter", "cursor"),
        (
            "/api/v1/top?dimension=srcip&filter=proto%20tcp%20and",
            "bad_filter",
            "filter",
        ),
    ] {
        let (status, head, body) = http_get_full(&s.http, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(head.to_lowercase().contains("application/json"), "{head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], code, "{path}: {body}");
        assert_eq!(v["error"]["parameter"], param, "{path}: {body}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // A filter error says where: "proto tcp and" ends where a term was expected.
    let (_, _, body) = http_get_full(
        &s.http,
        "/api/v1/top?dimension=srcip&filter=proto%20tcp%20and",
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["position"], 13, "{body}");
    // Counted in the text as sent, leading spaces included.
    let (_, _, body) = http_get_full(
        &s.http,
        "/api/v1/top?dimension=srcip&filter=%20%20proto%20tcp%20and",
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["position"], 15, "{body}");
    // Metric names are case-insensitive, and mean the same thing in every spelling.
    let a = get_json(&s, "/api/v1/top?dimension=proto&metric=packets");
    let b = get_json(&s, "/api/v1/top?dimension=proto&metric=PACKETS");
    assert_eq!(a["rows"], b["rows"]);
    // SQL injection is a syntax error of the filter language, never a query.
    for evil in [
        "1=1; DROP TABLE flows",
        "proto tcp' OR '1'='1",
        "src ip 10.0.0.1) UNION SELECT * FROM flows --",
    ] {
        let (status, _, body) =
            http_get_full(&s.http, &format!("/api/v1/flows?filter={}", enc(evil)));
        assert_eq!(status, 400, "{evil}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "bad_filter", "{evil}: {body}");
    }
    // Unknown routes are JSON 404s; every response carries the security headers.
    let (status, head, _) = http_get_full(&s.http, "/api/v1/nope");
    assert_eq!(status, 404);
    for h in [
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "content-security-policy",
    ] {
        assert!(head.to_lowercase().contains(h), "{h}: {head}");
    }
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn openapi_lists_every_route_and_validates() {
    let data = tempdir("api-openapi");
    let s = Serve::start(&data, &["--listen", "netflow://127.0.0.1:0"]);
    let doc = get_json(&s, "/api/v1/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    // Every route the server answers (not 404) is documented, and every documented one answers.
    for route in [
        "/api/v1/top",
        "/api/v1/timeseries",
        "/api/v1/flows",
        "/api/v1/exporters",
        "/api/v1/health",
        "/api/v1/version",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(route),
            "{route} missing from the OpenAPI document"
        );
    }
    for route in paths.keys() {
        let (status, _, body) = http_get_full(&s.http, route);
        assert_ne!(status, 404, "{route} is documented but not served: {body}");
    }
    // A real validator says the document is valid OpenAPI 3.
    let spec = data.join("openapi.json");
    std::fs::write(&spec, doc.to_string()).unwrap();
    let py = python_with("openapi_spec_validator", "openapi-spec-validator");
    let out = Command::new(&py)
        .args(["-m", "openapi_spec_validator"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_public_bind_without_tokens_refuses_to_start() {
    let data = tempdir("api-public");
    for check in [true, false] {
        let mut cmd = Command::new(bin());
        cmd.arg("serve").arg("--data").arg(&data).args([
            "--http",
            "0.0.0.0:0",
            "--listen",
            "netflow://127.0.0.1:0",
        ]);
        if check {
            cmd.arg("--check");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "check={check}: serve started: {err}");
        assert!(
            err.contains("reachable from other hosts") && err.contains("flowsight token new"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn with_tokens_every_request_needs_a_valid_one() {
    // A token as the CLI makes it: the token on stdout, the config line on stderr.
    let out = Command::new(bin()).args(["token", "new"]).output().unwrap();
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.trim().starts_with("api_tokens = "))
        .unwrap_or_else(|| panic!("{err}"))
        .trim()
        .to_string();
    assert!(
        !line.contains(&token),
        "the token itself must not go in the file"
    );
    // `token hash` agrees with the line `token new` printed.
    let mut h = Command::new(bin())
        .args(["token", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(h.stdin.take().unwrap(), "{token}").unwrap();
    let hashed = String::from_utf8_lossy(&h.wait_with_output().unwrap().stdout)
        .trim()
        .to_string();
    assert_eq!(line, format!("api_tokens = [\"{hashed}\"]"));

    // Served on all interfaces: allowed, because tokens are configured.
    let dir = tempdir("api-tokens");
    let cfg = dir.join("flowsight.toml");
    std::fs::write(&cfg, format!("{line}\n")).unwrap();
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--data")
        .arg(dir.join("store"))
        .arg("--config")
        .arg(&cfg)
        .args(["--http", "0.0.0.0:0", "--listen", "netflow://127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut port = String::new();
    let t = Instant::now();
    while port.is_empty() {
        let mut l = String::new();
        use std::io::BufRead;
        assert!(r.read_line(&mut l).unwrap() > 0, "serve exited");
        if let Some(rest) = l.trim().strip_prefix("flowsight: http on http://") {
            port = rest
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(30));
    }
    let addr = format!("127.0.0.1:{port}");
    for path in [
        "/api/v1/health",
        "/api/v1/top?dimension=proto",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let (st, head, body) = http_get_full(&addr, path);
        assert_eq!(st, 401, "{path} without a token: {body}");
        assert!(
            head.to_lowercase().contains("www-authenticate: bearer"),
            "{head}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
        let (st, _, _) = http_get_with(&addr, path, "Authorization: Bearer fst_0000\r\n");
        assert_eq!(st, 401, "{path} with a wrong token");
        let (st, _, body) =
            http_get_with(&addr, path, &format!("Authorization: Bearer {token}\r\n"));
        assert_eq!(st, 200, "{path} with the token: {body}");
        // The scheme is case-insensitive (RFC 7235).
        let (st, _, _) = http_get_with(&addr, path, &format!("Authorization: bearer {token}\r\n"));
        assert_eq!(st, 200, "{path} with `bearer`");
    }
    sigterm(&child);
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn people_log_in_with_a_password_and_the_session_opens_the_api() {
    let dir = tempdir("api-login");
    let s = Serve::with_config(
        &dir,
        &user_entry("alice", "correct horse battery"),
        "netflow://127.0.0.1:0",
    );
    let (st, _, body) = http_get_full(&s.http, "/api/v1/session");
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["auth_required"], true);
    assert_eq!(v["login_available"], true);
    assert_eq!(v["via"], "none");
    // Data needs a login; the portal's page and assets (no data in them) do not.
    let (st, _, _) = http_get_full(&s.http, "/api/v1/top?dimension=proto");
    assert_eq!(st, 401);
    let (st, head, page) = http_get_full(&s.http, "/top?dimension=srcip");
    assert_eq!(st, 200);
    assert!(page.contains("/assets/app.js"), "{page}");
    let h = head.to_lowercase();
    for want in [
        "content-security-policy: default-src 'self'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
    ] {
        assert!(h.contains(want), "{want} missing in {head}");
    }
    let json = "Content-Type: application/json\r\n";
    for (body, status, code) in [
        (
            r#"{"username":"alice","password":"wrong"}"#,
            401,
            "bad_login",
        ),
        (
            r#"{"username":"mallory","password":"correct horse battery"}"#,
            401,
            "bad_login",
        ),
        (r#"{"username":"alice"}"#, 400, "bad_parameter"),
    ] {
        let (st, _, b) = http_request(&s.http, "POST", "/api/v1/login", json, body);
        assert_eq!(st, status, "{body}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["code"], code, "{b}");
    }
    let (st, head, b) = http_request(
        &s.http,
        "POST",
        "/api/v1/login",
        json,
        r#"{"username":"alice","password":"correct horse battery"}"#,
    );
    assert_eq!(st, 200, "{b}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let with = format!("Cookie: {cookie}\r\n");
    let (st, _, b) = http_get_with(&s.http, "/api/v1/top?dimension=proto", &with);
    assert_eq!(st, 200, "{b}");
    let (_, _, b) = http_get_with(&s.http, "/api/v1/session", &with);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (v["user"].as_str(), v["via"].as_str()),
        (Some("alice"), Some("session"))
    );
    // A forged session id is not a session.
    let forged = format!("Cookie: flowsight_session={}\r\n", "ab".repeat(32));
    let (st, _, _) = http_get_with(&s.http, "/api/v1/top?dimension=proto", &forged);
    assert_eq!(st, 401);
    let (st, _, _) = http_request(&s.http, "POST", "/api/v1/logout", &with, "");
    assert_eq!(st, 204);
    let (st, _, b) = http_get_with(&s.http, "/api/v1/top?dimension=proto", &with);
    assert_eq!(st, 401, "after logout: {b}");
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_mode_feeds_itself_from_two_exporters() {
    let dir = tempdir("api-demo");
    let s = Serve::start(&dir.join("store"), &["--demo", "--flush-interval", "200ms"]);
    let t = Instant::now();
    loop {
        let err = s.stderr.lock().unwrap().clone();
        if err.contains("flowsight: demo: generating") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{err}");
        std::thread::sleep(Duration::from_millis(50));
    }
    loop {
        let v = get_json(&s, "/api/v1/top?dimension=router&metric=flows");
        let rows = v["rows"].as_array().unwrap().len();
        if rows == 2 && v["totals"]["flows"].as_u64().unwrap() > 100 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "demo store: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ex = get_json(&s, "/api/v1/exporters");
    assert_eq!(ex.as_array().unwrap().len(), 2, "{ex}");
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
