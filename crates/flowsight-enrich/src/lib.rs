//! Flow enrichment: what each address and interface of a flow is, added once at ingest so
//! queries read stored columns.
//!
//! Sources (all optional; without any, enrichment is off and costs nothing):
//! - GeoIP `.mmdb` files ([`mmdb`]): country, region, city, latitude/longitude;
//! - AS numbers and names from an ASN `.mmdb` or a range CSV ([`asn_csv`]);
//! - a networks file ([`networks`]): name, role, site, region, tenant, labels, internal;
//! - a static interface map (exporter, ifIndex -> name, description, speed).
//!
//! [`Databases`] holds the loaded sources and is shared read-only by the collector's workers;
//! [`Shared`] reloads it when a file changes. Each worker owns an [`Enricher`], a direct-mapped
//! per-address cache in front of the databases, so a busy address costs one probe per flow.
//!
//! ```
//! use flowsight_enrich::{Databases, EnrichConfig, Enricher};
//! use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip, sym};
//! let dir = tempfile::tempdir().unwrap();
//! let nets = dir.path().join("networks.txt");
//! std::fs::write(&nets, "10.0.0.0/8 name=corp tenant=acme\n").unwrap();
//! let cfg = EnrichConfig { networks: Some(nets), ..EnrichConfig::default() };
//! let (dbs, problems) = Databases::load(&cfg);
//! assert!(problems.is_empty());
//! let mut e = Enricher::new(std::sync::Arc::new(dbs), 1024);
//! let mut b = FlowBatch::default();
//! b.push(&FlowRecord { src_addr: addr_from_ip("10.1.2.3".parse().unwrap()), ..FlowRecord::default() });
//! e.enrich(&mut b, 0);
//! assert_eq!(sym::resolve(b.src_net_name[0]), "corp");
//! assert_eq!(b.src_internal[0], 1);
//! ```

pub mod asn_csv;
mod error;
pub mod mmdb;
pub mod networks;
pub mod services;

pub use error::EnrichError;

use asn_csv::AsnRanges;
use flowsight_schema::{Addr, FlowBatch, addr_to_ip, sym};
use mmdb::{MmdbInfo, MmdbSource};
use networks::{NetInfo, Networks};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Columns filled by GeoIP sources.
pub const GEO_COLUMNS: [&str; 10] = [
    "src_country",
    "dst_country",
    "src_region",
    "dst_region",
    "src_city",
    "dst_city",
    "src_lat",
    "src_lon",
    "dst_lat",
    "dst_lon",
];
/// Columns filled by the networks file.
pub const NET_COLUMNS: [&str; 14] = [
    "src_net_name",
    "dst_net_name",
    "src_net_role",
    "dst_net_role",
    "src_net_site",
    "dst_net_site",
    "src_net_region",
    "dst_net_region",
    "src_net_tenant",
    "dst_net_tenant",
    "src_net_labels",
    "dst_net_labels",
    "src_internal",
    "dst_internal",
];
/// Columns filled by interface names (options data or the static map).
pub const IF_COLUMNS: [&str; 6] = [
    "in_if_name",
    "out_if_name",
    "in_if_desc",
    "out_if_desc",
    "in_if_speed",
    "out_if_speed",
];

/// Which AS number a flow keeps when the exporter sent one and a database has another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AsSource {
    /// The exporter's AS numbers win; the database fills only zeros (the default: routers
    /// with BGP know their routing better than a public database).
    #[default]
    Exporter,
    /// The database wins where it has an entry; the exporter's number is kept otherwise.
    Database,
}

/// A static interface entry: names and speed of one exporter's ifIndex.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceEntry {
    /// Exporter address (as the flows' `sampler_address`).
    pub exporter: IpAddr,
    /// SNMP ifIndex.
    pub index: u32,
    /// Interface name (`xe-0/0/1`).
    #[serde(default)]
    pub name: String,
    /// Interface description (`transit: AS174`).
    #[serde(default)]
    pub description: String,
    /// Speed: bits/s as a number, or with a K/M/G/T suffix (`"10G"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
}

/// An interface speed in bits/s, written as a number or `"10G"`, `"100M"`...
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Speed(pub u64);

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Speed(n)),
            Raw::S(s) => parse_speed(&s).map(Speed).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `10G`, `100M`, `2.5G`, `1000000` as bits/s.
pub fn parse_speed(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        Some('T') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("speed `{s}`: expected bits/s like 10G, 100M or 1000000"))?;
    if !(0.0..=1e15).contains(&(v * mult)) {
        return Err(format!("speed `{s}` is out of range"));
    }
    Ok((v * mult) as u64)
}

fn default_cache() -> usize {
    65536
}

/// The `[enrich]` section of `flowsight.toml`. Relative paths are relative to the working
/// directory, like the other paths of the file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// GeoIP `.mmdb` files (city or country layouts), tried in order: the first with an
    /// entry for the address wins (list the IPv4 and IPv6 files of split datasets).
    #[serde(default)]
    pub geoip: Vec<PathBuf>,
    /// AS sources: `.mmdb` (GeoLite2-ASN layout) or `.csv` ranges, tried in order.
    #[serde(default)]
    pub asn: Vec<PathBuf>,
    /// The networks file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<PathBuf>,
    /// Which AS number wins when the exporter sent one.
    #[serde(default)]
    pub as_source: AsSource,
    /// Per-worker address cache entries (rounded up to a power of two).
    #[serde(default = "default_cache")]
    pub cache_entries: usize,
    /// Static interface names and speeds (last: TOML writes tables after plain values).
    #[serde(default)]
    pub interfaces: Vec<InterfaceEntry>,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            geoip: Vec::new(),
            asn: Vec::new(),
            networks: None,
            as_source: AsSource::Exporter,
            interfaces: Vec::new(),
            cache_entries: default_cache(),
        }
    }
}

impl EnrichConfig {
    /// Whether any source is configured.
    pub fn is_empty(&self) -> bool {
        self.geoip.is_empty()
            && self.asn.is_empty()
            && self.networks.is_none()
            && self.interfaces.is_empty()
    }

    /// Every file the configuration reads.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.geoip.iter().chain(&self.asn).cloned().collect();
        v.extend(self.networks.clone());
        v
    }

    /// Checks what a config check can: the networks file parses (invalid CIDR and duplicate
    /// prefixes are errors with their line), the interface entries are unique. Databases that
    /// fail to open are reported by [`Databases::load`] and do not stop the collector.
    pub fn check(&self) -> Result<(), EnrichError> {
        if let Some(p) = &self.networks {
            Networks::load(p)?;
        }
        let mut seen = FxHashMap::default();
        for (i, e) in self.interfaces.iter().enumerate() {
            if let Some(prev) = seen.insert((e.exporter, e.index), i) {
                return Err(EnrichError::Config(format!(
                    "interfaces #{} and #{} both name exporter {} ifIndex {}",
                    prev + 1,
                    i + 1,
                    e.exporter,
                    e.index
                )));
            }
        }
        Ok(())
    }
}

/// An AS source.
#[derive(Debug)]
enum AsnDb {
    Mmdb(MmdbSource),
    Csv(AsnRanges),
}

impl AsnDb {
    /// (AS number, AS name symbol) this source gives `ip` (stored as `a`), if any.
    fn answer(&self, ip: IpAddr, a: &Addr) -> Result<Option<(u32, u32)>, String> {
        match self {
            AsnDb::Mmdb(m) => Ok(m
                .lookup(ip)?
                .filter(|r| r.asn != 0)
                .map(|r| (r.asn, r.as_name))),
            AsnDb::Csv(t) => Ok(t.lookup(u128::from_be_bytes(*a))),
        }
    }
}

/// A GeoIP source's answer for `ip`: a record with a country, a city or a location (a
/// record with none of them, as some files have for reserved ranges, is no answer).
fn geo_answer(g: &MmdbSource, ip: IpAddr) -> Result<Option<MmdbInfo>, String> {
    Ok(g.lookup(ip)?
        .filter(|m| m.country != 0 || m.city != 0 || m.has_location))
}

/// Interface names and speed, as symbols.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfInfo {
    /// Name symbol.
    pub name: u32,
    /// Description symbol.
    pub desc: u32,
    /// Speed, bits/s.
    pub speed: u64,
}

/// Everything the sources say of one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrInfo {
    /// GeoIP answer.
    pub geo: MmdbInfo,
    /// AS number from the databases (0: none).
    pub asn: u32,
    /// AS name symbol from the databases.
    pub as_name: u32,
    /// Networks-file answer.
    pub net: NetInfo,
}

/// The loaded sources: immutable, shared by the workers, replaced whole on reload.
#[derive(Debug, Default)]
pub struct Databases {
    geo: Vec<MmdbSource>,
    asn: Vec<AsnDb>,
    asn_names: FxHashMap<u32, u32>,
    networks: Option<Networks>,
    interfaces: FxHashMap<(Addr, u32), IfInfo>,
    as_source: AsSource,
}

fn open_asn(p: &Path) -> Result<AsnDb, EnrichError> {
    match p.extension().and_then(|e| e.to_str()) {
        Some("mmdb") => Ok(AsnDb::Mmdb(MmdbSource::open(p)?)),
        Some("csv") => Ok(AsnDb::Csv(AsnRanges::load(p)?)),
        _ => Err(EnrichError::UnknownFormat {
            path: p.to_path_buf(),
        }),
    }
}

impl Databases {
    /// Loads every configured source. A source that fails (missing, corrupt, truncated) is
    /// left out and its error returned, so the collector runs on without it.
    pub fn load(cfg: &EnrichConfig) -> (Databases, Vec<EnrichError>) {
        let mut problems = Vec::new();
        let mut d = Databases {
            as_source: cfg.as_source,
            ..Databases::default()
        };
        for p in &cfg.geoip {
            match MmdbSource::open(p) {
                Ok(s) => d.geo.push(s),
                Err(e) => problems.push(e),
            }
        }
        for p in &cfg.asn {
            match open_asn(p) {
                Ok(s) => d.asn.push(s),
                Err(e) => problems.push(e),
            }
        }
        for db in &d.asn {
            if let AsnDb::Csv(t) = db {
                for (asn, name) in t.names() {
                    if name != 0 {
                        d.asn_names.entry(asn).or_insert(name);
                    }
                }
            }
        }
        if let Some(p) = &cfg.networks {
            match Networks::load(p) {
                Ok(n) => d.networks = Some(n),
                Err(e) => problems.push(e),
            }
        }
        for e in &cfg.interfaces {
            d.interfaces.insert(
                (flowsight_schema::addr_from_ip(e.exporter), e.index),
                IfInfo {
                    name: sym::intern(&e.name),
                    desc: sym::intern(&e.description),
                    speed: e.speed.map_or(0, |s| s.0),
                },
            );
        }
        (d, problems)
    }

    /// Whether no source is loaded (enrichment is off).
    pub fn is_empty(&self) -> bool {
        self.geo.is_empty()
            && self.asn.is_empty()
            && self.networks.is_none()
            && self.interfaces.is_empty()
    }

    /// One line per loaded source, for logs and the portal.
    pub fn describe(&self) -> Vec<String> {
        let mut v = Vec::new();
        for g in &self.geo {
            v.push(format!(
                "geoip {} ({})",
                g.path().display(),
                g.database_type
            ));
        }
        for a in &self.asn {
            match a {
                AsnDb::Mmdb(m) => {
                    v.push(format!("asn {} ({})", m.path().display(), m.database_type))
                }
                AsnDb::Csv(c) => v.push(format!("asn {} ({} ranges)", c.path().display(), c.len())),
            }
        }
        if let Some(n) = &self.networks {
            v.push(format!(
                "networks {} ({} prefixes)",
                n.path().display(),
                n.len()
            ));
        }
        if !self.interfaces.is_empty() {
            v.push(format!(
                "interfaces: {} static entries",
                self.interfaces.len()
            ));
        }
        v
    }

    /// What the sources say of `a`, uncached. Lookup errors inside a database (a damaged
    /// record) count as "no entry" here and are counted by the caller.
    pub fn lookup(&self, a: &Addr) -> (AddrInfo, u32) {
        let mut info = AddrInfo::default();
        let mut errors = 0;
        let Some(ip) = addr_to_ip(a) else {
            return (info, 0);
        };
        for g in &self.geo {
            match geo_answer(g, ip) {
                Ok(Some(m)) => {
                    info.geo = m;
                    break;
                }
                Ok(None) => {}
                Err(_) => errors += 1,
            }
        }
        for db in &self.asn {
            match db.answer(ip, a) {
                Ok(Some((asn, name))) => {
                    info.asn = asn;
                    info.as_name = name;
                    break;
                }
                Ok(None) => {}
                Err(_) => errors += 1,
            }
        }
        if let Some(n) = &self.networks
            && let Some(e) = n.lookup(a)
        {
            info.net = e.info;
        }
        (info, errors)
    }

    /// The name of AS `asn` when a source lists it.
    pub fn as_name(&self, asn: u32) -> u32 {
        self.asn_names.get(&asn).copied().unwrap_or(0)
    }

    /// The AS number a flow keeps and its name, from the exporter's number and the
    /// databases' answer.
    pub fn pick_as(&self, exporter_as: u32, info: &AddrInfo) -> (u32, u32) {
        let asn = match self.as_source {
            AsSource::Exporter if exporter_as != 0 => exporter_as,
            AsSource::Database if info.asn != 0 => info.asn,
            _ if exporter_as != 0 => exporter_as,
            _ => info.asn,
        };
        let name = if asn == 0 {
            0
        } else if asn == info.asn && info.as_name != 0 {
            info.as_name
        } else {
            self.as_name(asn)
        };
        (asn, name)
    }

    /// Every source's answer for `ip`, in words (for `flowsight geo lookup`).
    pub fn explain(&self, ip: IpAddr) -> Vec<String> {
        let mut out = Vec::new();
        let a = flowsight_schema::addr_from_ip(ip);
        if self.is_empty() {
            out.push("no enrichment source is configured ([enrich] in flowsight.toml)".into());
            return out;
        }
        let mut geo_won = false;
        for g in &self.geo {
            let head = format!("geoip {} ({})", g.path().display(), g.database_type);
            match geo_answer(g, ip) {
                Ok(Some(m)) => {
                    let mut s = format!("{head}: {}", describe_geo(&m));
                    if geo_won {
                        s.push_str(" (not used: an earlier source answered)");
                    }
                    geo_won = true;
                    out.push(s);
                }
                Ok(None) => out.push(format!(
                    "{head}: no entry{}",
                    if ip.is_ipv6() && g.database_type.contains("ipv4") {
                        " (an IPv4 database)"
                    } else {
                        ""
                    }
                )),
                Err(e) => out.push(format!("{head}: lookup failed: {e}")),
            }
        }
        let mut as_won = false;
        for db in &self.asn {
            let head = match db {
                AsnDb::Mmdb(m) => format!("asn {} ({})", m.path().display(), m.database_type),
                AsnDb::Csv(t) => format!("asn {} (ranges)", t.path().display()),
            };
            match db.answer(ip, &a) {
                Ok(Some((asn, name))) => {
                    out.push(format!(
                        "{head}: AS{asn} {}{}",
                        sym::resolve(name),
                        if as_won {
                            " (not used: an earlier source answered)"
                        } else {
                            ""
                        }
                    ));
                    as_won = true;
                }
                Ok(None) => out.push(format!("{head}: no entry")),
                Err(e) => out.push(format!("{head}: lookup failed: {e}")),
            }
        }
        if let Some(n) = &self.networks {
            match n.lookup(&a) {
                Some(e) => out.push(format!(
                    "networks {}:{}: {} -> {}",
                    n.path().display(),
                    e.line,
                    e.prefix,
                    describe_net(&e.info)
                )),
                None => out.push(format!(
                    "networks {}: no prefix holds it, so it is external",
                    n.path().display()
                )),
            }
        }
        let (info, _) = self.lookup(&a);
        let (asn, name) = self.pick_as(0, &info);
        let mut fin = format!(
            "stored: country={} region={} city={} lat={} lon={} as={} as_name={}",
            sym::resolve(info.geo.country),
            sym::resolve(info.geo.region),
            sym::resolve(info.geo.city),
            flowsight_schema::coord_degrees(info.geo.lat),
            flowsight_schema::coord_degrees(info.geo.lon),
            asn,
            sym::resolve(name)
        );
        fin.push_str(&format!(
            " net={} internal={}",
            sym::resolve(info.net.name),
            info.net.internal
        ));
        out.push(fin);
        out
    }
}

fn describe_geo(m: &MmdbInfo) -> String {
    let mut s = format!("country={}", sym::resolve(m.country));
    if m.region != 0 {
        s.push_str(&format!(" region={}", sym::resolve(m.region)));
    }
    if m.city != 0 {
        s.push_str(&format!(" city={}", sym::resolve(m.city)));
    }
    if m.has_location {
        s.push_str(&format!(
            " lat={} lon={}",
            flowsight_schema::coord_degrees(m.lat),
            flowsight_schema::coord_degrees(m.lon)
        ));
    }
    s
}

fn describe_net(n: &NetInfo) -> String {
    let mut s = Vec::new();
    for (k, v) in [
        ("name", n.name),
        ("role", n.role),
        ("site", n.site),
        ("region", n.region),
        ("tenant", n.tenant),
        ("labels", n.labels),
    ] {
        if v != 0 {
            s.push(format!("{k}={}", sym::resolve(v)));
        }
    }
    s.push(format!(
        "internal={}",
        if n.internal == 1 { "yes" } else { "no" }
    ));
    s.join(" ")
}

/// The databases in use, replaced when a configured file changes on disk.
#[derive(Debug)]
pub struct Shared {
    cfg: EnrichConfig,
    current: RwLock<Arc<Databases>>,
    generation: AtomicU64,
    stamps: Mutex<Vec<Option<(u64, SystemTime)>>>,
}

fn stamp(p: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl Shared {
    /// Loads the sources of `cfg`; returns the problems of those left out.
    pub fn new(cfg: EnrichConfig) -> (Arc<Shared>, Vec<EnrichError>) {
        let stamps = cfg.files().iter().map(|p| stamp(p)).collect();
        let (dbs, problems) = Databases::load(&cfg);
        (
            Arc::new(Shared {
                cfg,
                current: RwLock::new(Arc::new(dbs)),
                generation: AtomicU64::new(1),
                stamps: Mutex::new(stamps),
            }),
            problems,
        )
    }

    /// The databases in use.
    pub fn current(&self) -> Arc<Databases> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bumped at every reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reloads when a configured file changed (size or modification time). Returns `None`
    /// when nothing changed, else the problems of the reload (empty when it succeeded; when a
    /// source fails, the previous databases stay in use). Called periodically by the
    /// collector.
    pub fn reload_if_changed(&self) -> Option<Vec<EnrichError>> {
        let now: Vec<_> = self.cfg.files().iter().map(|p| stamp(p)).collect();
        {
            let mut st = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *st == now {
                return None;
            }
            *st = now;
        }
        let (fresh, problems) = Databases::load(&self.cfg);
        // A file caught mid-rewrite, or now corrupt: keep serving the previous databases
        // whole; the next change of the file triggers another attempt.
        if !problems.is_empty() {
            return Some(problems);
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Some(problems)
    }
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u128,
    full: bool,
    info: AddrInfo,
}

/// Per-worker enrichment with an address cache; see the crate docs.
pub struct Enricher {
    dbs: Arc<Databases>,
    cache: Vec<Slot>,
    mask: usize,
    /// Address lookups served by the cache.
    pub hits: u64,
    /// Address lookups that went to the databases.
    pub misses: u64,
    /// Damaged database records met.
    pub errors: u64,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("cache", &self.cache.len())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

impl Enricher {
    /// An enricher over `dbs` with a cache of `cache_entries` addresses (a power of two at
    /// least that large).
    pub fn new(dbs: Arc<Databases>, cache_entries: usize) -> Enricher {
        let n = cache_entries.clamp(16, 1 << 24).next_power_of_two();
        Enricher {
            dbs,
            cache: vec![Slot::default(); n],
            mask: n - 1,
            hits: 0,
            misses: 0,
            errors: 0,
        }
    }

    /// Switches to reloaded databases (and forgets the cache).
    pub fn set_databases(&mut self, dbs: Arc<Databases>) {
        self.dbs = dbs;
        self.cache.iter_mut().for_each(|s| s.full = false);
    }

    /// The databases in use.
    pub fn databases(&self) -> &Arc<Databases> {
        &self.dbs
    }

    #[inline]
    fn info(&mut self, a: &Addr) -> AddrInfo {
        let k = u128::from_be_bytes(*a);
        if k == 0 {
            return AddrInfo::default();
        }
        let h = ((k as u64) ^ ((k >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (h >> 40) as usize & self.mask;
        let s = &self.cache[i];
        if s.full && s.key == k {
            self.hits += 1;
            return s.info;
        }
        self.misses += 1;
        let (info, errors) = self.dbs.lookup(a);
        self.errors += errors as u64;
        self.cache[i] = Slot {
            key: k,
            full: true,
            info,
        };
        info
    }

    /// Fills the enrichment columns of rows `from..` of `b`. Only the columns the loaded
    /// sources fill are materialized (and so written to the store).
    pub fn enrich(&mut self, b: &mut FlowBatch, from: usize) {
        if self.dbs.is_empty() {
            return;
        }
        let geo = !self.dbs.geo.is_empty();
        let asn = !self.dbs.asn.is_empty();
        let nets = self.dbs.networks.is_some();
        let ifs = !self.dbs.interfaces.is_empty();
        let mut cols: Vec<&str> = Vec::new();
        if geo {
            cols.extend(GEO_COLUMNS);
        }
        if asn {
            cols.extend(["src_as_name", "dst_as_name"]);
        }
        if nets {
            cols.extend(NET_COLUMNS);
        }
        if ifs {
            cols.extend(IF_COLUMNS);
        }
        b.materialize(&cols);
        for i in from..b.len() {
            if geo || asn || nets {
                let s = self.info(&b.src_addr[i]);
                let d = self.info(&b.dst_addr[i]);
                let (sa, sn) = self.dbs.pick_as(b.src_as[i], &s);
                let (da, dn) = self.dbs.pick_as(b.dst_as[i], &d);
                b.src_as[i] = sa;
                b.dst_as[i] = da;
                if asn {
                    b.src_as_name[i] = sn;
                    b.dst_as_name[i] = dn;
                }
                if geo {
                    b.src_country[i] = s.geo.country;
                    b.src_region[i] = s.geo.region;
                    b.src_city[i] = s.geo.city;
                    b.src_lat[i] = s.geo.lat;
                    b.src_lon[i] = s.geo.lon;
                    b.dst_country[i] = d.geo.country;
                    b.dst_region[i] = d.geo.region;
                    b.dst_city[i] = d.geo.city;
                    b.dst_lat[i] = d.geo.lat;
                    b.dst_lon[i] = d.geo.lon;
                }
                if nets {
                    b.src_net_name[i] = s.net.name;
                    b.src_net_role[i] = s.net.role;
                    b.src_net_site[i] = s.net.site;
                    b.src_net_region[i] = s.net.region;
                    b.src_net_tenant[i] = s.net.tenant;
                    b.src_net_labels[i] = s.net.labels;
                    b.src_internal[i] = s.net.internal;
                    b.dst_net_name[i] = d.net.name;
                    b.dst_net_role[i] = d.net.role;
                    b.dst_net_site[i] = d.net.site;
                    b.dst_net_region[i] = d.net.region;
                    b.dst_net_tenant[i] = d.net.tenant;
                    b.dst_net_labels[i] = d.net.labels;
                    b.dst_internal[i] = d.net.internal;
                }
            }
            if ifs {
                let exp = b.sampler_address[i];
                // Names the exporter sent in options data (filled by the collector before)
                // win; the static map fills the rest.
                if let Some(f) = self.dbs.interfaces.get(&(exp, b.in_if[i])) {
                    if b.in_if_name[i] == 0 {
                        b.in_if_name[i] = f.name;
                    }
                    if b.in_if_desc[i] == 0 {
                        b.in_if_desc[i] = f.desc;
                    }
                    b.in_if_speed[i] = f.speed;
                }
                if let Some(f) = self.dbs.interfaces.get(&(exp, b.out_if[i])) {
                    if b.out_if_name[i] == 0 {
                        b.out_if_name[i] = f.name;
                    }
                    if b.out_if_desc[i] == 0 {
                        b.out_if_desc[i] = f.desc;
                    }
                    b.out_if_speed[i] = f.speed;
                }
            }
        }
    }
}
