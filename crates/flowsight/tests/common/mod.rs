//! Helpers shared by the integration tests: real collectors (`flowsight serve`, `nfcapd`)
//! started on loopback with random ports, and stopped the way an operator would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flowsight")
}

/// Fails with the install command when a tool is missing.
pub fn need(tool: &str, package: &str) {
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is needed: apt-get install -y {package} (scripts/test.sh installs it)"
    );
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowsight-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// A running `flowsight serve`.
pub struct Serve {
    pub child: Child,
    pub data: PathBuf,
    /// Bound addresses by scheme, in the order printed (`netflow` -> `127.0.0.1:PORT`).
    pub listeners: Vec<(String, String)>,
    pub http: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    /// Starts serve with `args` (listeners, flush interval...) on a data directory, and waits
    /// until it reports its listeners.
    pub fn start(data: &Path, args: &[&str]) -> Serve {
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut listeners = Vec::new();
        let mut http = String::new();
        let mut seen = String::new();
        let t = Instant::now();
        loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                panic!("serve exited before it was ready:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("flowsight: listening on ") {
                let (scheme, addr) = rest.split_once("://").unwrap();
                listeners.push((scheme.to_string(), addr.to_string()));
            }
            if let Some(rest) = line.trim().strip_prefix("flowsight: http on http://") {
                http = rest.split_whitespace().next().unwrap().to_string();
            }
            if line.starts_with("flowsight: storing flows in") {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "serve too slow to start:\n{seen}"
            );
        }
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(seen));
        let s2 = stderr.clone();
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                s2.lock().unwrap().push_str(&(l + "\n"));
            }
        });
        Serve {
            child,
            data: data.to_path_buf(),
            listeners,
            http,
            stderr,
        }
    }

    /// Writes `toml` to `dir/flowsight.toml` and starts serve with it on `dir/store`,
    /// listening on `listen`, flushing every 200 ms.
    pub fn with_config(dir: &Path, toml: &str, listen: &str) -> Serve {
        let cfg = dir.join("flowsight.toml");
        std::fs::write(&cfg, toml).unwrap();
        Serve::start(
            &dir.join("store"),
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--listen",
                listen,
                "--flush-interval",
                "200ms",
            ],
        )
    }

    pub fn addr(&self, scheme: &str) -> String {
        self.listeners
            .iter()
            .find(|(s, _)| s == scheme)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {scheme} listener in {:?}", self.listeners))
    }

    pub fn metrics(&self) -> String {
        http_get(&self.http, "/metrics")
    }

    /// One metric's value (first sample with that name).
    pub fn metric(&self, name: &str) -> u64 {
        let m = self.metrics();
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{m}"))
    }

    /// Waits until metric `name` satisfies `ok`; past `timeout`, fails with `what` and the
    /// value last read.
    pub fn wait_metric(&self, name: &str, ok: impl Fn(u64) -> bool, timeout: Duration, what: &str) {
        let t = Instant::now();
        loop {
            let v = self.metric(name);
            if ok(v) {
                return;
            }
            assert!(t.elapsed() < timeout, "{what} ({name} = {v})");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `flowsight_flows_total` reaches `n` (or times out).
    pub fn wait_flows(&self, n: u64, timeout: Duration) {
        let what = format!("serve did not decode {n} flows");
        self.wait_metric("flowsight_flows_total", |v| v >= n, timeout, &what);
    }

    /// Sends `n` generated IPFIX flows (seed `seed`) to the netflow listener, at full
    /// speed, and waits until all are decoded.
    pub fn generate_ipfix(&self, n: u64, seed: u64) {
        flowsight(&[
            "generate",
            "--format",
            "ipfix",
            "--rate",
            "max",
            "--seed",
            &seed.to_string(),
            "--flows",
            &n.to_string(),
            "--target",
            &self.addr("netflow"),
        ]);
        self.wait_flows(n, Duration::from_secs(30));
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(mut self) -> String {
        self.stop_ref()
    }

    fn stop_ref(&mut self) -> String {
        sigterm(&self.child);
        let st = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let err = self.stderr.lock().unwrap().clone();
        assert!(st.success(), "serve exited with {st}:\n{err}");
        err
    }
}

impl Drop for Serve {
    /// A failing test must not leave a collector running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A bare HTTP/1.1 GET (no client library needed for tests).
/// A Python that can import `module` (pip package `package`): `FLOWSIGHT_PYTHON`
/// (scripts/test.sh makes a virtualenv with every one the tests use) or `python3`.
pub fn python_with(module: &str, package: &str) -> String {
    let py = std::env::var("FLOWSIGHT_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{py} cannot import {module}: run ./scripts/test.sh (it makes a virtualenv with it), or \
         python3 -m venv v && v/bin/pip install {package} && export FLOWSIGHT_PYTHON=$PWD/v/bin/python"
    );
    py
}

/// A Python with the `duckdb` module.
pub fn duckdb_python() -> String {
    python_with("duckdb", "duckdb")
}

/// The first row of DuckDB's answer to `sql`, one string per column.
pub fn duckdb_row(sql: &str) -> Vec<String> {
    let py = duckdb_python();
    let out = Command::new(&py)
        .args([
            "-c",
            &format!("import duckdb; print(*duckdb.sql({sql:?}).fetchall()[0], sep='\\t')"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .split('\t')
        .map(str::to_string)
        .collect()
}

/// Status, headers and body of `GET path`.
pub fn http_get_full(addr: &str, path: &str) -> (u16, String, String) {
    http_get_with(addr, path, "")
}

/// `GET path` with extra header lines (each ending in `\r\n`).
pub fn http_get_with(addr: &str, path: &str, headers: &str) -> (u16, String, String) {
    http_request(addr, "GET", path, headers, "")
}

/// One HTTP/1.1 request; a chunked response body is decoded.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let len = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}{len}Connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    // Split on bytes: a chunk may end inside a UTF-8 character.
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(all.len());
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let body = all.get(split + 4..).unwrap_or(&[]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// Decodes an HTTP/1.1 chunked body (RFC 9112 s7.1).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&b[..eol]).into_owned();
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line `{size}`"));
        if n == 0 {
            break;
        }
        let rest = &b[eol + 2..];
        assert!(
            rest.len() >= n,
            "truncated chunk: {} of {n} bytes",
            rest.len()
        );
        out.extend_from_slice(&rest[..n]);
        b = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let (_, b) = body.split_once("\r\n\r\n").unwrap_or(("", &body));
    b.to_string()
}

/// Runs `flowsight ARGS` and returns stdout; panics with stderr on failure.
pub fn flowsight(args: &[&str]) -> Vec<u8> {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "flowsight {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `flowsight query` and returns stdout; panics with stderr on failure.
pub fn query(data: &Path, args: &[&str]) -> String {
    let data = data.to_str().unwrap();
    String::from_utf8(flowsight(&[&["query", "--data", data], args].concat())).unwrap()
}

/// A running nfcapd writing into a directory.
pub struct Nfcapd {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

impl Nfcapd {
    pub fn start(dir: &Path) -> Nfcapd {
        Nfcapd::start_tool("nfcapd", dir, &[])
    }

    /// `nfcapd` or `sfcapd` with extra arguments, on a random loopback port; returns once it
    /// listens (the port is taken).
    pub fn start_tool(tool: &str, dir: &Path, extra: &[&str]) -> Nfcapd {
        need(
            tool,
            if tool == "sfcapd" {
                "nfdump-sflow"
            } else {
                "nfdump"
            },
        );
        std::fs::create_dir_all(dir).unwrap();
        let port = free_udp_port();
        let child = Command::new(tool)
            .args(["-b", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .arg("-w")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{tool} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nfcapd {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// SIGTERM flushes nfcapd's current file.
    pub fn stop(mut self) -> PathBuf {
        sigterm(&self.child);
        let _ = self.child.wait();
        self.dir.clone()
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs nfdump over a directory.
pub fn nfdump(dir: &Path, args: &[&str]) -> String {
    need("nfdump", "nfdump");
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nfdump {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Forwards every datagram received on a loopback port to several collectors, so one
/// exporter run feeds all of them the same bytes.
pub struct Tee {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Tee {
    pub fn start(targets: Vec<String>) -> Tee {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            let out = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut buf = vec![0u8; 65_536];
            let mut n = 0;
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(len) = sock.recv(&mut buf) {
                    for t in &targets {
                        out.send_to(&buf[..len], t).unwrap();
                    }
                    n += 1;
                }
            }
            n
        });
        Tee {
            port,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops forwarding; returns how many datagrams were forwarded.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// Runs `softflowd -r testdata/input/traffic.pcap` exporting NetFlow `version` (5, 9, 10) to
/// `127.0.0.1:port`, and waits until it has exported everything.
pub fn softflowd(version: u8, port: u16) {
    need("softflowd", "softflowd");
    need("softflowctl", "softflowd");
    let work = tempdir(&format!("softflowd-{version}-{port}"));
    let ctl = work.join("ctl");
    let mut child = Command::new("softflowd")
        .args(["-d", "-a", "-r", "input/traffic.pcap", "-n"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-v", &version.to_string(), "-c"])
        .arg(&ctl)
        .arg("-p")
        .arg(work.join("pid"))
        .current_dir(root().join("testdata"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // softflowd -r advances while its control socket is polled: poll until the packet count
    // is stable, then expire every flow and shut down (as testdata/regen.sh does).
    let ctl_cmd = |cmd: &str| {
        Command::new("softflowctl")
            .arg("-c")
            .arg(&ctl)
            .arg(cmd)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut prev = String::new();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let cur: String = ctl_cmd("statistics")
            .lines()
            .filter(|l| l.to_lowercase().contains("packets processed"))
            .collect();
        if !cur.is_empty() && cur == prev {
            ctl_cmd("expire-all");
            std::thread::sleep(Duration::from_secs(1));
            ctl_cmd("shutdown");
            break;
        }
        prev = cur;
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&work);
}

/// `flowsight user add NAME` with `password` on stdin: the `[[users]]` entry.
pub fn user_entry(name: &str, password: &str) -> String {
    let mut c = Command::new(bin())
        .args(["user", "add", name, "--iterations", "10000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
