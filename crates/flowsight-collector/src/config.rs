//! `flowsight.toml`: the collector's configuration, validated into typed settings.
//!
//! Durations are written `500ms`, `2s`, `5m`, `12h`, `30d`; sizes `64MiB`, `100GB`, `1TiB` or
//! plain bytes. Unknown keys are errors (a typo must not silently fall back to a default).

use crate::CollectorError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The configuration file, as written by users (see `docs/configuration.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener URLs: `netflow://ADDR:PORT`, `sflow://ADDR:PORT`, `ipfix+tcp://ADDR:PORT`,
    /// `ipfix+tls://ADDR:PORT`, `ipfix+sctp://ADDR:PORT`.
    pub listen: Vec<String>,
    /// Data directory of the embedded store.
    pub data: PathBuf,
    /// Address of the HTTP server (metrics, API, portal).
    pub http: String,
    /// API tokens, stored hashed: `"sha256:<64 hex digits>"` (`flowsight token new` makes
    /// one). When set, every HTTP request needs `Authorization: Bearer <token>`; binding
    /// `http` to anything but loopback requires at least one.
    pub api_tokens: Vec<String>,
    /// People who may log in to the portal, with their passwords stored hashed
    /// (`flowsight user add NAME` makes an entry). Binding `http` to anything but loopback
    /// requires users or API tokens.
    pub users: Vec<UserConfig>,
    /// Keep the portal's standard panels over the last hour computed as store files
    /// arrive (a background thread at the lowest CPU priority), so dashboards answer from
    /// memory from their first request.
    pub prewarm: bool,
    /// Decode workers (0: one per core).
    pub workers: usize,
    /// Receive threads per UDP listener, each on its own `SO_REUSEPORT` socket.
    pub receivers: usize,
    /// Kernel receive buffer per UDP socket (`SO_RCVBUF`).
    pub socket_buffer: String,
    /// Memory for received datagrams waiting for a decode worker (shared among the
    /// workers): what rides out a stall downstream before the kernel buffer has to.
    pub receive_queue: String,
    /// Ask the kernel for UDP GRO: several datagrams of one exporter per receive, cheaper,
    /// but the kernel then counts a dropped buffer as one drop whatever it held.
    pub udp_gro: bool,
    /// Exporters allowed to send (addresses or CIDR prefixes); empty: everyone.
    pub allow: Vec<String>,
    /// Per-exporter settings.
    pub exporters: Vec<ExporterConfig>,
    /// Embedded store settings.
    pub store: StoreConfig,
    /// Template handling.
    pub templates: TemplateConfig,
    /// Certificate and key for `ipfix+tls://` listeners.
    pub tls: Option<TlsConfig>,
    /// Enrichment sources (GeoIP, ASN, networks file, interface names); see
    /// `docs/enrichment.md`.
    pub enrich: flowsight_enrich::EnrichConfig,
}

/// Settings for one exporter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    /// The exporter's address (the datagrams' source; the agent address for sFlow).
    pub address: IpAddr,
    /// Use this 1-in-N sampling rate for its flows, whatever the exporter says.
    pub sampling_rate: Option<u64>,
}

/// Embedded store settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Flows are written to disk at least this often (and are queryable then).
    pub flush_interval: String,
    /// Small files older than this are compacted into large, time-sorted ones.
    pub compact_after: String,
    /// Rows per compacted file.
    pub compact_rows: u64,
    /// Delete flows older than this (empty: keep).
    pub max_age: String,
    /// Delete the oldest flows when the store is larger than this (empty: no limit).
    pub max_size: String,
}

/// Template settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateConfig {
    /// Templates not refreshed for this long are dropped.
    pub idle_timeout: String,
    /// Templates one exporter may hold.
    pub max_per_exporter: usize,
    /// Templates in total.
    pub max_total: usize,
}

/// Certificate and key (PEM) for IPFIX over TLS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![
                "netflow://0.0.0.0:2055".into(),
                "sflow://0.0.0.0:6343".into(),
                "ipfix+tcp://0.0.0.0:4739".into(),
            ],
            data: PathBuf::from("flowsight-data"),
            http: "127.0.0.1:8080".into(),
            api_tokens: Vec::new(),
            users: Vec::new(),
            prewarm: true,
            workers: 0,
            receivers: 1,
            socket_buffer: "32MiB".into(),
            receive_queue: "256MiB".into(),
            udp_gro: false,
            allow: Vec::new(),
            exporters: Vec::new(),
            store: StoreConfig::default(),
            templates: TemplateConfig::default(),
            tls: None,
            enrich: flowsight_enrich::EnrichConfig::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_interval: "2s".into(),
            compact_after: "1m".into(),
            compact_rows: 4_000_000,
            max_age: "30d".into(),
            max_size: String::new(),
        }
    }
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            idle_timeout: "30m".into(),
            max_per_exporter: 4096,
            max_total: 65_536,
        }
    }
}

/// What a listener receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// NetFlow v1/v5/v7/v9 and IPFIX over UDP (detected per datagram).
    Netflow,
    /// sFlow v5 over UDP.
    Sflow,
    /// IPFIX over TCP (RFC 7011 s10.4).
    IpfixTcp,
    /// IPFIX over TLS on TCP (RFC 7011 s11).
    IpfixTls,
    /// IPFIX over SCTP (RFC 7011 s10.2).
    IpfixSctp,
}

/// A parsed listener URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The URL as written.
    pub url: String,
    /// What it receives.
    pub kind: ListenerKind,
    /// Where.
    pub addr: SocketAddr,
}

impl Listener {
    /// Parses `scheme://ADDR:PORT`.
    pub fn parse(url: &str) -> Result<Listener, CollectorError> {
        let bad = |why: String| CollectorError::Config(format!("listener `{url}`: {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "not a URL; write it as netflow://0.0.0.0:2055, sflow://0.0.0.0:6343 or ipfix+tcp://0.0.0.0:4739".into(),
            ));
        };
        let kind = match scheme {
            "netflow" | "ipfix" | "udp" => ListenerKind::Netflow,
            "sflow" => ListenerKind::Sflow,
            "ipfix+tcp" | "tcp" => ListenerKind::IpfixTcp,
            "ipfix+tls" | "tls" => ListenerKind::IpfixTls,
            "ipfix+sctp" | "sctp" => ListenerKind::IpfixSctp,
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}`; use netflow, sflow, ipfix+tcp, ipfix+tls or ipfix+sctp"
                )));
            }
        };
        let addr = rest.trim_end_matches('/').parse().map_err(|_| {
            bad(format!(
                "`{rest}` is not ADDR:PORT (e.g. 0.0.0.0:2055 or [::]:2055)"
            ))
        })?;
        Ok(Listener {
            url: url.to_string(),
            kind,
            addr,
        })
    }
}

/// Parses `500ms`, `2s`, `5m`, `12h`, `30d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 500ms, 2s, 5m, 12h, 30d"))?;
    let mult = match unit.trim() {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}`; use ms, s, m, h, d or w"
            ));
        }
    };
    Ok(Duration::from_secs_f64(n * mult))
}

/// Parses `64MiB`, `100GB`, `1TiB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 64MiB, 100GB or 1TiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}`; use B, KB, MiB, GB, TiB..."
            ));
        }
    };
    Ok((n * mult) as u64)
}

/// An address prefix of the allow-list, in the 128-bit (IPv4-mapped) space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    net: u128,
    bits: u8,
}

impl Prefix {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or CIDR prefix"))?;
        let (max, off) = match ip {
            IpAddr::V4(_) => (32u8, 96u8),
            IpAddr::V6(_) => (128, 0),
        };
        let len: u8 = match len {
            Some(l) => l
                .trim()
                .parse()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        let bits = off + len;
        let net = u128::from_be_bytes(flowsight_schema::addr_from_ip(ip)) & mask(bits);
        Ok(Prefix { net, bits })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        u128::from_be_bytes(flowsight_schema::addr_from_ip(ip)) & mask(self.bits) == self.net
    }
}

fn mask(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits))
    }
}

/// `sha256:` and 64 hex digits, as bytes.
fn parse_token_hash(s: &str) -> Option<[u8; 32]> {
    parse_hex(s.trim().strip_prefix("sha256:")?)
}

/// Exactly `2 * N` hex digits (no sign, no spaces), as `N` bytes.
pub fn parse_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    if hex.len() != 2 * N || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A portal user: `[[users]] name = "alice" password = "pbkdf2-sha256$..."`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// `pbkdf2-sha256$<iterations>$<salt, hex>$<32-byte hash, hex>` (never the password).
    pub password: String,
}

/// A stored password: PBKDF2-HMAC-SHA256 (RFC 8018 s5.2) with its salt and iteration count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt (16 to 64 bytes).
    pub salt: Vec<u8>,
    /// Derived key.
    pub hash: [u8; 32],
}

impl PasswordHash {
    /// Parses `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
    pub fn parse(s: &str) -> Option<PasswordHash> {
        let mut it = s.split('$');
        if it.next()? != "pbkdf2-sha256" {
            return None;
        }
        let iterations: u32 = it.next()?.parse().ok()?;
        let salt_hex = it.next()?;
        let hash = parse_hex::<32>(it.next()?)?;
        if it.next().is_some()
            || !(10_000..=10_000_000).contains(&iterations)
            || salt_hex.len() % 2 != 0
            || !(32..=128).contains(&salt_hex.len())
        {
            return None;
        }
        let salt = (0..salt_hex.len() / 2)
            .map(|i| u8::from_str_radix(salt_hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }
}

/// The configuration, validated and typed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listeners.
    pub listeners: Vec<Listener>,
    /// Data directory.
    pub data: PathBuf,
    /// HTTP address.
    pub http: SocketAddr,
    /// SHA-256 digests of the API tokens (empty: no authentication, loopback only).
    pub api_tokens: Vec<[u8; 32]>,
    /// Portal users and their password hashes.
    pub users: Vec<(String, PasswordHash)>,
    /// Prewarm the portal's panels.
    pub prewarm: bool,
    /// Decode workers.
    pub workers: usize,
    /// Receive threads per UDP listener.
    pub receivers: usize,
    /// `SO_RCVBUF` bytes.
    pub socket_buffer: usize,
    /// Bytes of datagrams queued for the workers, all together.
    pub receive_queue: usize,
    /// UDP GRO on the UDP sockets.
    pub udp_gro: bool,
    /// Allowed exporters (empty: all).
    pub allow: Vec<Prefix>,
    /// Sampling overrides.
    pub sampling_overrides: Vec<(IpAddr, u64)>,
    /// Flush interval.
    pub flush_interval: Duration,
    /// Compaction age.
    pub compact_after: Duration,
    /// Rows per compacted file.
    pub compact_rows: u64,
    /// Retention by age.
    pub max_age: Option<Duration>,
    /// Retention by size.
    pub max_size: Option<u64>,
    /// Template idle timeout.
    pub template_idle: Duration,
    /// Template limits.
    pub template_limits: flowsight_wire::TemplateLimits,
    /// TLS files.
    pub tls: Option<TlsConfig>,
    /// Enrichment sources.
    pub enrich: flowsight_enrich::EnrichConfig,
}

impl Config {
    /// Reads and parses a TOML file; errors name the file, line and key.
    pub fn from_file(path: &std::path::Path) -> Result<Config, CollectorError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CollectorError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Config::from_toml(&text)
            .map_err(|e| CollectorError::Config(format!("{}: {e}", path.display())))
    }

    /// The configuration `flowsight` commands use: the file given, else `./flowsight.toml`
    /// when it exists, else the defaults.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, CollectorError> {
        match path {
            Some(p) => Config::from_file(p),
            None => {
                let p = std::path::Path::new("flowsight.toml");
                if p.exists() {
                    Config::from_file(p)
                } else {
                    Ok(Config::default())
                }
            }
        }
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The configuration as TOML (what `serve --check` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Validates every setting; the error lists each problem with the key it is under.
    pub fn validate(&self) -> Result<Settings, CollectorError> {
        let mut errs: Vec<String> = Vec::new();
        let mut listeners = Vec::new();
        for l in &self.listen {
            match Listener::parse(l) {
                Ok(x) => listeners.push(x),
                Err(e) => errs.push(e.to_string()),
            }
        }
        if self.listen.is_empty() {
            errs.push("listen: no listener configured; add e.g. \"netflow://0.0.0.0:2055\"".into());
        }
        let http = self.http.parse().unwrap_or_else(|_| {
            errs.push(format!(
                "http: `{}` is not ADDR:PORT (e.g. 127.0.0.1:8080)",
                self.http
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let mut dur = |key: &str, v: &str| match parse_duration(v) {
            Ok(d) => d,
            Err(e) => {
                errs.push(format!("{key}: {e}"));
                Duration::ZERO
            }
        };
        let flush_interval = dur("store.flush_interval", &self.store.flush_interval);
        let compact_after = dur("store.compact_after", &self.store.compact_after);
        let template_idle = dur("templates.idle_timeout", &self.templates.idle_timeout);
        let max_age = if self.store.max_age.trim().is_empty() {
            None
        } else {
            Some(dur("store.max_age", &self.store.max_age))
        };
        if flush_interval.is_zero() || flush_interval > Duration::from_secs(5) {
            errs.push(format!(
                "store.flush_interval: `{}` must be between 1ms and 5s (flows must be queryable within 5 seconds)",
                self.store.flush_interval
            ));
        }
        let socket_buffer = parse_size(&self.socket_buffer).unwrap_or_else(|e| {
            errs.push(format!("socket_buffer: {e}"));
            0
        }) as usize;
        let receive_queue = match parse_size(&self.receive_queue) {
            Ok(v) if v >= 1 << 20 => v as usize,
            Ok(_) => {
                errs.push(format!(
                    "receive_queue: `{}` is too small; give at least 1MiB (default 256MiB)",
                    self.receive_queue
                ));
                0
            }
            Err(e) => {
                errs.push(format!("receive_queue: {e}"));
                0
            }
        };
        let max_size = if self.store.max_size.trim().is_empty() {
            None
        } else {
            match parse_size(&self.store.max_size) {
                Ok(v) => Some(v),
                Err(e) => {
                    errs.push(format!("store.max_size: {e}"));
                    None
                }
            }
        };
        let mut allow = Vec::new();
        for a in &self.allow {
            match Prefix::parse(a) {
                Ok(p) => allow.push(p),
                Err(e) => errs.push(format!("allow: {e}")),
            }
        }
        let mut sampling_overrides = Vec::new();
        for e in &self.exporters {
            if let Some(r) = e.sampling_rate {
                if r == 0 {
                    errs.push(format!(
                        "exporters ({}): sampling_rate must be at least 1",
                        e.address
                    ));
                }
                sampling_overrides.push((e.address, r));
            }
        }
        let mut api_tokens = Vec::new();
        for t in &self.api_tokens {
            match parse_token_hash(t) {
                Some(h) => api_tokens.push(h),
                None => errs.push(format!(
                    "api_tokens: `{t}` is not \"sha256:\" and 64 hex digits; make a token and its \
                     hash with `flowsight token new` (the token itself never goes in the file)"
                )),
            }
        }
        let mut users: Vec<(String, PasswordHash)> = Vec::new();
        for u in &self.users {
            let name_ok = !u.name.is_empty()
                && u.name.len() <= 64
                && u.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
            if !name_ok {
                errs.push(format!(
                    "users: name `{}` must be 1 to 64 letters, digits, `.`, `_`, `-` or `@`",
                    u.name
                ));
            } else if users.iter().any(|(n, _)| *n == u.name) {
                errs.push(format!("users: `{}` is listed twice", u.name));
            }
            match PasswordHash::parse(&u.password) {
                Some(h) => users.push((u.name.clone(), h)),
                None => errs.push(format!(
                    "users: the password of `{}` is not \"pbkdf2-sha256$ITERATIONS$SALT$HASH\" \
                     (10000 to 10000000 iterations, 16-64 byte salt); make the entry with \
                     `flowsight user add {}` (the password itself never goes in the file)",
                    u.name, u.name
                )),
            }
        }
        if !http.ip().is_loopback() && self.api_tokens.is_empty() && self.users.is_empty() {
            errs.push(format!(
                "http: {http} is reachable from other hosts, and the portal, API and metrics \
                 would be open to them: add api_tokens = [\"sha256:...\"] for machines \
                 (`flowsight token new`) and [[users]] for people (`flowsight user add NAME`), \
                 or bind 127.0.0.1"
            ));
        }
        if listeners.iter().any(|l| l.kind == ListenerKind::IpfixTls) && self.tls.is_none() {
            errs.push(
                "tls: an ipfix+tls:// listener needs [tls] cert = \"...\" and key = \"...\"".into(),
            );
        }
        // An invalid networks file (bad CIDR, duplicate prefix) is a configuration error
        // with its line; missing or damaged databases only warn at start (see `start`).
        if let Err(e) = self.enrich.check() {
            errs.push(format!("enrich: {e}"));
        }
        if self.enrich.cache_entries == 0 {
            errs.push("enrich.cache_entries must be at least 1".into());
        }
        if self.templates.max_per_exporter == 0 || self.templates.max_total == 0 {
            errs.push("templates: max_per_exporter and max_total must be at least 1".into());
        }
        if !errs.is_empty() {
            return Err(CollectorError::Config(errs.join("\n")));
        }
        let workers = if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        };
        Ok(Settings {
            listeners,
            data: self.data.clone(),
            http,
            api_tokens,
            users,
            prewarm: self.prewarm,
            workers,
            receivers: self.receivers.max(1),
            socket_buffer,
            receive_queue,
            udp_gro: self.udp_gro,
            allow,
            sampling_overrides,
            flush_interval,
            compact_after,
            compact_rows: self.store.compact_rows.max(1),
            max_age,
            max_size,
            template_idle,
            template_limits: flowsight_wire::TemplateLimits {
                max_per_exporter: self.templates.max_per_exporter,
                max_total: self.templates.max_total,
                idle_timeout_ns: template_idle.as_nanos() as u64,
                ..flowsight_wire::TemplateLimits::default()
            },
            tls: self.tls.clone(),
            enrich: self.enrich.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(
            parse_duration("2 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("100GB"), Ok(100_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn listener_urls() {
        let l = Listener::parse("netflow://127.0.0.1:2055").unwrap();
        assert_eq!((l.kind, l.addr.port()), (ListenerKind::Netflow, 2055));
        assert_eq!(
            Listener::parse("ipfix+sctp://[::]:4739").unwrap().kind,
            ListenerKind::IpfixSctp
        );
        let e = Listener::parse("http://0.0.0.0:80")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scheme `http`"), "{e}");
        let e = Listener::parse("0.0.0.0:2055").unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
        let e = Listener::parse("sflow://localhost")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not ADDR:PORT"), "{e}");
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("10.0.0.0/8").unwrap();
        assert!(p.contains("10.9.8.7".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::a00:1".parse().unwrap()));
        let h = Prefix::parse("2001:db8::1").unwrap();
        assert!(h.contains("2001:db8::1".parse().unwrap()));
        assert!(!h.contains("2001:db8::2".parse().unwrap()));
        assert!(Prefix::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn config_errors_name_the_key() {
        let e =
            Config::from_toml("listen = [\"netflow://0.0.0.0:2055\"]\nflush = 3\n").unwrap_err();
        assert!(e.contains("unknown field `flush`"), "{e}");
        let mut c = Config::default();
        c.store.flush_interval = "10s".into();
        c.allow = vec!["10.0.0.0/99".into()];
        c.listen.push("ipfix+tls://0.0.0.0:4740".into());
        c.receive_queue = "64KiB".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("receive_queue: `64KiB` is too small"), "{e}");
        assert!(e.contains("store.flush_interval"), "{e}");
        assert!(e.contains("allow: `10.0.0.0/99`"), "{e}");
        assert!(e.contains("[tls]"), "{e}");
        // The defaults are valid and print back to themselves.
        let d = Config::default();
        d.validate().unwrap();
        assert_eq!(Config::from_toml(&d.to_toml()).unwrap(), d);
    }
}
