//! Synthetic flow traffic for flowsight: a seeded background model, attack scenarios, and a
//! deterministic stream of export datagrams (one encoder per simulated exporter) together
//! with the exact ground truth of what was encoded.
//!
//! Content depends only on the configuration and the seed, never on timing: every flow has a
//! virtual time, datagrams are cut by count or by virtual time, and the sender paces the
//! stream against the wall clock. So `--seed` reproduces the same bytes.
//!
//! ```
//! use flowsight_gen::{GenConfig, Generator, OutFormat};
//! let cfg = GenConfig { format: OutFormat::Ipfix, max_flows: Some(100), ..GenConfig::default() };
//! let mut g = Generator::new(cfg).unwrap();
//! let n: usize = g.by_ref().map(|d| d.flows).sum();
//! assert_eq!(n, 100);
//! assert_eq!(g.truth().flows, 100);
//! ```

pub mod model;
pub mod pcap;
pub mod rng;
pub mod scenario;

use flowsight_schema::{FlowRecord, addr_to_ip, proto_name};
pub use flowsight_wire::IpfixTime;
use flowsight_wire::{ExportEncoder, IpfixEncoder, LegacyEncoder, SflowEncoder, V9Encoder};
use model::Model;
use rng::Rng;
pub use scenario::{Kind, Scenario, parse_seconds};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

/// Export formats the generator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    /// NetFlow v1.
    V1,
    /// NetFlow v5.
    V5,
    /// NetFlow v7.
    V7,
    /// NetFlow v9.
    V9,
    /// IPFIX.
    Ipfix,
    /// sFlow v5.
    Sflow,
}

impl OutFormat {
    /// Whether the format can carry IPv6 flows.
    pub fn carries_ipv6(self) -> bool {
        matches!(self, OutFormat::V9 | OutFormat::Ipfix | OutFormat::Sflow)
    }
}

/// When templates are re-sent (v9/IPFIX), as routers do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TemplateInterval {
    /// Every N datagrams.
    Packets(u64),
    /// Every N seconds (virtual time).
    Seconds(f64),
}

/// Generator settings.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Export format.
    pub format: OutFormat,
    /// Simulated exporters (each its own encoder, sequence numbers, domain, uptime).
    pub exporters: Vec<IpAddr>,
    /// Background conversation flows per second; `None`: no background traffic.
    pub rate: Option<f64>,
    /// Scenarios mixed in.
    pub scenarios: Vec<Scenario>,
    /// 1-in-N sampling announced with the flows (0: none).
    pub sampling: u32,
    /// Template re-send interval.
    pub template_interval: TemplateInterval,
    /// Seed of every random choice.
    pub seed: u64,
    /// Virtual start time (Unix ns).
    pub start_ns: u64,
    /// Stop after this many flows.
    pub max_flows: Option<u64>,
    /// Stop after this much virtual time (ns).
    pub duration_ns: Option<u64>,
    /// Largest datagram (bytes).
    pub max_datagram: usize,
    /// Internal hosts and public servers in the model.
    pub clients: usize,
    /// Public servers in the model.
    pub servers: usize,
    /// Share of conversations over IPv6, 0 to 1; `None`: 0.2 for formats that carry IPv6
    /// (a dual-stack network), 0 for the others. 0 makes an IPv4-only exporter, whose full
    /// datagrams all have one size.
    pub ipv6_share: Option<f64>,
    /// How IPFIX records carry their start and end times. Milliseconds by default, as
    /// exporters keep them; nanoseconds keep the generated times whole.
    pub ipfix_time: IpfixTime,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            format: OutFormat::Ipfix,
            exporters: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            rate: Some(1000.0),
            scenarios: Vec::new(),
            sampling: 0,
            template_interval: TemplateInterval::Packets(20),
            seed: 1,
            // 2024-01-01T00:00:00Z: a fixed default, so a seed alone reproduces the bytes.
            start_ns: 1_704_067_200_000_000_000,
            max_flows: None,
            duration_ns: None,
            max_datagram: 1400,
            clients: 2000,
            servers: 400,
            ipv6_share: None,
            ipfix_time: IpfixTime::Milliseconds,
        }
    }
}

/// The generator layer's one error type: a configuration or scenario that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenError {
    /// Nothing would ever be generated, nothing stops the run, or the options contradict.
    #[error("{0}")]
    Config(String),
    /// A scenario name that does not exist.
    #[error(
        "unknown scenario `{0}`; known: ddos-syn, udp-amplification, icmp-flood, port-scan, c2-beacon, exfiltration, arp-storm, short-packets"
    )]
    UnknownScenario(String),
    /// A bad scenario key or value.
    #[error("scenario `{scenario}`: {message}")]
    BadScenario {
        /// Scenario name.
        scenario: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Totals of one slice of the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Flow records (sFlow: flow samples).
    pub flows: u64,
    /// Packets as exported.
    pub packets: u64,
    /// Bytes as exported.
    pub bytes: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

impl Totals {
    fn add(&mut self, r: &FlowRecord) {
        self.flows += 1;
        self.packets += r.packets;
        self.bytes += r.bytes;
    }
}

/// The ground truth of everything encoded so far.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Truth {
    /// Flow records.
    pub flows: u64,
    /// Packets as exported (unscaled).
    pub packets: u64,
    /// Bytes as exported (unscaled).
    pub bytes: u64,
    /// Packets scaled by the sampling rate (what sampling-aware collectors report).
    pub scaled_packets: u64,
    /// Bytes scaled by the sampling rate.
    pub scaled_bytes: u64,
    /// Export datagrams (messages).
    pub datagrams: u64,
    /// Per exporter address.
    pub exporters: BTreeMap<String, Totals>,
    /// Per protocol name.
    pub protocols: BTreeMap<String, Totals>,
    /// Per scenario (`name target`), traffic the scenario sent.
    pub scenarios: BTreeMap<String, Totals>,
    /// Background traffic.
    pub background: Totals,
    /// Bytes per destination address (for top-N checks; see [`Truth::top_destinations`]).
    #[serde(skip)]
    pub dst_bytes: HashMap<IpAddr, Totals, rustc_hash::FxBuildHasher>,
}

impl Truth {
    /// The `n` destinations with the most bytes (ties broken by address), as exported.
    pub fn top_destinations(&self, n: usize) -> Vec<(IpAddr, Totals)> {
        let mut v: Vec<_> = self.dst_bytes.iter().map(|(a, t)| (*a, *t)).collect();
        v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// One export datagram of the stream.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// Virtual send time, ns after the start.
    pub t_ns: u64,
    /// Index of the exporter sending it.
    pub exporter: usize,
    /// The payload.
    pub bytes: Vec<u8>,
    /// Flow records in it.
    pub flows: usize,
}

struct Exporter {
    enc: Box<dyn ExportEncoder + Send>,
    /// Records not sent yet, oldest first, with their virtual times.
    buf: Vec<(FlowRecord, Origin, u64)>,
    last_templates_t: u64,
    /// The most records a full datagram carried so far (0: none filled up yet).
    full_cap: usize,
}

#[derive(Clone, Copy)]
enum Origin {
    Background,
    Scenario(usize),
}

struct Source {
    origin: Origin,
    rate: f64,
    start_ns: u64,
    stop_ns: u64,
    emitted: u64,
}

impl Source {
    fn next_t(&self) -> u64 {
        self.start_ns + ((self.emitted as f64) * 1e9 / self.rate) as u64
    }
}

/// Records buffered per exporter before a datagram is cut (a few datagrams' worth).
const BATCH: usize = 64;
/// A buffered record waits at most this long (virtual) before being sent.
const MAX_WAIT_NS: u64 = 100_000_000;

/// The deterministic stream of datagrams. Iterate it; [`Generator::truth`] tells what was
/// encoded so far.
pub struct Generator {
    cfg: GenConfig,
    /// Per exporter / protocol (256 = ARP) / scenario counters, indexed: no per-flow
    /// allocation; [`Generator::truth`] turns them into named maps.
    per_exporter: Vec<Totals>,
    per_proto: Vec<Totals>,
    per_scenario: Vec<Totals>,
    rng: Rng,
    model: Model,
    sources: Vec<Source>,
    exporters: Vec<Exporter>,
    out: VecDeque<Datagram>,
    truth: Truth,
    generated: u64,
    scratch: Vec<FlowRecord>,
    done: bool,
    /// Virtual time of the latest flow generated.
    last_t: u64,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("generated", &self.generated)
            .finish()
    }
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: GenConfig) -> Result<Self, GenError> {
        if cfg.exporters.is_empty() {
            return Err(GenError::Config("at least one exporter is needed".into()));
        }
        if cfg.max_flows.is_none() && cfg.duration_ns.is_none() {
            return Err(GenError::Config(
                "give --flows N or --duration D: nothing would stop the run".into(),
            ));
        }
        if cfg.rate.is_none() && cfg.scenarios.is_empty() {
            return Err(GenError::Config(
                "no background rate and no scenario: nothing to send".into(),
            ));
        }
        if cfg.format == OutFormat::V5 && cfg.sampling > 0x3fff {
            return Err(GenError::Config(format!(
                "NetFlow v5 headers carry sampling intervals up to 16383, not {}",
                cfg.sampling
            )));
        }
        if let Some(s) = cfg.scenarios.iter().find(|s| s.kind == Kind::ArpStorm)
            && cfg.format != OutFormat::Sflow
        {
            return Err(GenError::Config(format!(
                "scenario {} needs --format sflow: NetFlow and IPFIX exporters do not report ARP",
                s.kind.name()
            )));
        }
        if !cfg.format.carries_ipv6()
            && let Some(s) = cfg
                .scenarios
                .iter()
                .find(|s| s.target.is_ipv6() || s.source.is_ipv6())
        {
            return Err(GenError::Config(format!(
                "scenario {} uses IPv6 addresses, which {:?} cannot carry",
                s.kind.name(),
                cfg.format
            )));
        }
        let v6_share = match cfg.ipv6_share {
            Some(f) if !(0.0..=1.0).contains(&f) => {
                return Err(GenError::Config(format!(
                    "IPv6 share {f}: use a fraction from 0 (IPv4 only) to 1 (IPv6 only)"
                )));
            }
            Some(f) if f > 0.0 && !cfg.format.carries_ipv6() => {
                return Err(GenError::Config(format!(
                    "IPv6 share {f}: {:?} cannot carry IPv6 flows; use v9, ipfix or sflow",
                    cfg.format
                )));
            }
            Some(f) => f,
            None if cfg.format.carries_ipv6() => 0.2,
            None => 0.0,
        };
        let mut rng = Rng::new(cfg.seed);
        let model = Model::new(&mut rng, cfg.clients.max(1), cfg.servers.max(1), v6_share);
        let end = cfg.duration_ns.unwrap_or(u64::MAX);
        let mut sources = Vec::new();
        if let Some(rate) = cfg.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(GenError::Config(format!(
                    "rate {rate} is not a positive number of flows/s"
                )));
            }
            sources.push(Source {
                origin: Origin::Background,
                rate,
                start_ns: 0,
                stop_ns: end,
                emitted: 0,
            });
        }
        for (i, s) in cfg.scenarios.iter().enumerate() {
            sources.push(Source {
                origin: Origin::Scenario(i),
                rate: s.rate,
                start_ns: (s.start_s * 1e9) as u64,
                stop_ns: if s.stop_s.is_finite() {
                    ((s.stop_s * 1e9) as u64).min(end)
                } else {
                    end
                },
                emitted: 0,
            });
        }
        let exporters = (0..cfg.exporters.len())
            .map(|i| Exporter {
                enc: encoder(&cfg, i),
                buf: Vec::with_capacity(BATCH * 2),
                last_templates_t: 0,
                full_cap: 0,
            })
            .collect();
        Ok(Generator {
            per_exporter: vec![Totals::default(); cfg.exporters.len()],
            per_proto: vec![Totals::default(); 257],
            per_scenario: vec![Totals::default(); cfg.scenarios.len()],
            rng,
            model,
            sources,
            exporters,
            out: VecDeque::new(),
            truth: Truth::default(),
            generated: 0,
            scratch: Vec::with_capacity(4),
            done: false,
            last_t: 0,
            cfg,
        })
    }

    /// The ground truth of what has been encoded into datagrams so far.
    pub fn truth(&self) -> Truth {
        let mut t = self.truth.clone();
        for (i, c) in self
            .per_exporter
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flows > 0)
        {
            t.exporters.insert(self.cfg.exporters[i].to_string(), *c);
        }
        for (p, c) in self
            .per_proto
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flows > 0)
        {
            let name = if p == 256 {
                "ARP".to_string()
            } else {
                proto_name(p as u8).map_or_else(|| p.to_string(), str::to_string)
            };
            t.protocols.insert(name, *c);
        }
        for (i, c) in self
            .per_scenario
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flows > 0)
        {
            let s = &self.cfg.scenarios[i];
            *t.scenarios
                .entry(format!("{} {}", s.kind.name(), s.target))
                .or_default() += *c;
        }
        t
    }

    /// The configuration.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Generates flows until at least one datagram is ready or the run is over.
    fn fill(&mut self) {
        while self.out.is_empty() && !self.done {
            // The source whose next flow comes first.
            let next = self
                .sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.next_t() < s.stop_ns)
                .min_by_key(|(_, s)| s.next_t())
                .map(|(i, s)| (i, s.next_t()));
            let limit_reached = self.cfg.max_flows.is_some_and(|m| self.generated >= m);
            let Some((si, t)) = next.filter(|_| !limit_reached) else {
                self.done = true;
                for e in 0..self.exporters.len() {
                    self.flush(e, u64::MAX, true);
                }
                break;
            };
            // Datagrams whose oldest record reached its deadline go out at that deadline,
            // before this flow: at low rates a record waits MAX_WAIT, not until the next one.
            for e in 0..self.exporters.len() {
                let ex = &self.exporters[e];
                if let Some(&(_, _, first)) = ex.buf.first()
                    && first + MAX_WAIT_NS <= t
                {
                    self.flush(e, first + MAX_WAIT_NS, true);
                }
            }
            let abs = self.cfg.start_ns + t;
            self.last_t = t;
            self.scratch.clear();
            let origin = self.sources[si].origin;
            match origin {
                Origin::Background => {
                    self.model
                        .conversation(&mut self.rng, abs, &mut self.scratch);
                }
                Origin::Scenario(i) => {
                    let n = self.sources[si].emitted;
                    let f = self.cfg.scenarios[i].flow(&mut self.rng, abs, n);
                    self.scratch.push(f);
                }
            }
            // Sources are paced in flows (a conversation's reply takes the next slot), so
            // `rate` is flows per second.
            self.sources[si].emitted += self.scratch.len().max(1) as u64;
            if let Some(m) = self.cfg.max_flows {
                self.scratch.truncate((m - self.generated) as usize);
            }
            let recs = std::mem::take(&mut self.scratch);
            for mut r in recs.iter().copied() {
                r.sampling_rate = self.cfg.sampling as u64;
                if self.cfg.format == OutFormat::Sflow {
                    // A sample is one packet: the flow's average frame (with Ethernet + FCS).
                    let frame = (r.bytes / r.packets.max(1) + 18).clamp(64, 1522);
                    r.packets = 1;
                    r.bytes = frame;
                }
                let e = exporter_of(&r, origin, self.exporters.len());
                let ex = &mut self.exporters[e];
                ex.buf.push((r, origin, t));
                self.generated += 1;
                if ex.buf.len() >= BATCH {
                    self.flush(e, t, false);
                }
            }
            self.scratch = recs;
        }
    }

    /// Encodes exporter `e`'s buffered records into datagrams at virtual time `t`. As a
    /// router does, only full datagrams go out unless `force` (the oldest record's deadline,
    /// or the end of the run): records that might not fill one wait for more. Cutting a
    /// short datagram at every batch would make every third datagram a runt at high rates,
    /// which exporters under load do not send.
    fn flush(&mut self, e: usize, t: u64, force: bool) {
        let ex = &mut self.exporters[e];
        if ex.buf.is_empty() || !force && ex.buf.len() <= ex.full_cap {
            return;
        }
        // End of the run: nothing more will come, so the last records go out with the last
        // flow rather than waiting for their deadline.
        let t = if t == u64::MAX {
            ex.buf.first().map_or(self.last_t, |f| self.last_t.max(f.2))
        } else {
            t
        };
        if let TemplateInterval::Seconds(s) = self.cfg.template_interval
            && t.saturating_sub(ex.last_templates_t) >= (s * 1e9) as u64
        {
            ex.enc.resend_templates();
            ex.last_templates_t = t;
        }
        let recs: Vec<FlowRecord> = ex.buf.iter().map(|(r, _, _)| *r).collect();
        let mut done = 0;
        while done < recs.len() {
            // More than a full datagram ever carried: this one fills up. (Until one has
            // filled up, the capacity is unknown and every record goes.)
            if !force && ex.full_cap > 0 && recs.len() - done <= ex.full_cap {
                break;
            }
            let mut bytes = Vec::with_capacity(self.cfg.max_datagram);
            let n = ex
                .enc
                .encode_datagram(self.cfg.start_ns + t, &recs[done..], &mut bytes);
            if n == 0 {
                break; // cannot happen with our encoders; avoid looping forever
            }
            if n < recs.len() - done {
                ex.full_cap = ex.full_cap.max(n);
            }
            for (r, origin, _) in &ex.buf[done..done + n] {
                self.truth.flows += 1;
                self.truth.packets += r.packets;
                self.truth.bytes += r.bytes;
                self.truth.scaled_packets += r.scaled_packets();
                self.truth.scaled_bytes += r.scaled_bytes();
                self.per_exporter[e].add(r);
                self.per_proto[if r.etype == 0x0806 {
                    256
                } else {
                    r.proto as usize
                }]
                .add(r);
                match origin {
                    Origin::Background => self.truth.background.add(r),
                    Origin::Scenario(i) => self.per_scenario[*i].add(r),
                }
                if let Some(dst) = addr_to_ip(&r.dst_addr) {
                    self.truth.dst_bytes.entry(dst).or_default().add(r);
                }
            }
            self.truth.datagrams += 1;
            self.out.push_back(Datagram {
                t_ns: t,
                exporter: e,
                bytes,
                flows: n,
            });
            done += n;
        }
        ex.buf.drain(..done);
    }
}

/// Which exporter saw a flow: background traffic by its internal host (so one host's
/// conversations stay on one router), scenarios by their target.
fn exporter_of(r: &FlowRecord, origin: Origin, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let key = match origin {
        Origin::Background => {
            let internal = if r.src_as == model::LOCAL_AS {
                r.src_addr
            } else {
                r.dst_addr
            };
            u128::from_be_bytes(internal)
        }
        Origin::Scenario(i) => i as u128 + u128::from_be_bytes(r.dst_addr),
    };
    ((key ^ (key >> 64)) as u64 % n as u64) as usize
}

fn encoder(cfg: &GenConfig, i: usize) -> Box<dyn ExportEncoder + Send> {
    // Each exporter booted at a different time, has its own domain and sequence numbers.
    let boot = cfg
        .start_ns
        .saturating_sub(3_600_000_000_000 + i as u64 * 420_000_000_000);
    let domain = 100 + i as u32;
    let every = match cfg.template_interval {
        TemplateInterval::Packets(n) => n.max(1),
        TemplateInterval::Seconds(_) => u64::MAX,
    };
    match cfg.format {
        OutFormat::V1 | OutFormat::V5 | OutFormat::V7 => {
            let v = match cfg.format {
                OutFormat::V1 => 1,
                OutFormat::V5 => 5,
                _ => 7,
            };
            let mut e = LegacyEncoder::new(v, boot);
            e.engine = (0, i as u8);
            if cfg.sampling > 0 {
                // Mode 01 (deterministic) and the interval (Cisco v5 header).
                e.sampling_interval = 0x4000 | (cfg.sampling as u16 & 0x3fff);
            }
            Box::new(e)
        }
        OutFormat::V9 => Box::new(
            V9Encoder::new(domain, boot)
                .template_every(every)
                .max_datagram(cfg.max_datagram),
        ),
        OutFormat::Ipfix => Box::new(
            IpfixEncoder::new(domain)
                .time(cfg.ipfix_time)
                .template_every(every)
                .max_datagram(cfg.max_datagram),
        ),
        OutFormat::Sflow => {
            let mut e = SflowEncoder::new(cfg.exporters[i]);
            e.sub_agent_id = domain;
            e.uptime_ms = ((cfg.start_ns - boot) / 1_000_000) as u32;
            e.max_datagram = cfg.max_datagram;
            Box::new(e)
        }
    }
}

impl Iterator for Generator {
    type Item = Datagram;

    fn next(&mut self) -> Option<Datagram> {
        if self.out.is_empty() {
            self.fill();
        }
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::FlowBatch;
    use flowsight_wire::Decoder;

    fn run(cfg: GenConfig) -> (Vec<Datagram>, Truth) {
        let mut g = Generator::new(cfg).unwrap();
        let d: Vec<_> = g.by_ref().collect();
        (d, g.truth())
    }

    #[test]
    fn decoded_totals_equal_the_truth_for_every_format() {
        for format in [
            OutFormat::V1,
            OutFormat::V5,
            OutFormat::V7,
            OutFormat::V9,
            OutFormat::Ipfix,
            OutFormat::Sflow,
        ] {
            let cfg = GenConfig {
                format,
                exporters: vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
                max_flows: Some(5_000),
                scenarios: vec!["ddos-syn:rate=300".parse().unwrap()],
                sampling: if format == OutFormat::Sflow { 100 } else { 0 },
                ..GenConfig::default()
            };
            let (dgrams, truth) = run(cfg.clone());
            assert_eq!(truth.flows, 5_000, "{format:?}");
            let mut dec = Decoder::default();
            let mut b = FlowBatch::default();
            for d in &dgrams {
                dec.decode(cfg.exporters[d.exporter], 0, &d.bytes, &mut b)
                    .unwrap();
            }
            assert_eq!(b.len() as u64, truth.flows, "{format:?}");
            assert_eq!(b.packets.iter().sum::<u64>(), truth.packets, "{format:?}");
            assert_eq!(b.bytes.iter().sum::<u64>(), truth.bytes, "{format:?}");
            let lost: u64 = dec.sequences().iter().map(|(_, s)| s.lost).sum();
            assert_eq!(lost, 0, "{format:?}");
            assert!(truth.scenarios.values().all(|t| t.flows > 0));
        }
    }

    #[test]
    fn ipfix_times_go_out_in_the_configured_unit() {
        // The IPv4 template's last two fields (IE, length) in the first message's template
        // set: flowStart/EndMilliseconds (152/153) by default, Nanoseconds (156/157) on ask.
        let last_fields = |d: &Datagram| {
            let b = &d.bytes;
            assert_eq!(
                u16::from_be_bytes([b[16], b[17]]),
                2,
                "a template set first"
            );
            let count = u16::from_be_bytes([b[22], b[23]]) as usize;
            let at = 24 + (count - 2) * 4;
            [0, 4].map(|k| u16::from_be_bytes([b[at + k], b[at + k + 1]]))
        };
        let times = |time| {
            // At 1M flows/s the virtual clock moves in microseconds.
            let cfg = GenConfig {
                rate: Some(1_000_000.0),
                max_flows: Some(2_000),
                ipfix_time: time,
                ..GenConfig::default()
            };
            let (d, _) = run(cfg.clone());
            let mut dec = Decoder::default();
            let mut b = FlowBatch::default();
            for x in &d {
                dec.decode(cfg.exporters[x.exporter], 0, &x.bytes, &mut b)
                    .unwrap();
            }
            (last_fields(&d[0]), b.time_flow_start_ns)
        };
        let (ies, ms) = times(IpfixTime::Milliseconds);
        assert_eq!(ies, [152, 153]);
        assert!(ms.iter().all(|t| t % 1_000_000 == 0));
        let (ies, ns) = times(IpfixTime::Nanoseconds);
        assert_eq!(ies, [156, 157]);
        // Same flows; only the sub-millisecond parts differ.
        assert_eq!(ms.len(), ns.len());
        assert!(
            ms.iter()
                .zip(&ns)
                .all(|(m, n)| *m == n / 1_000_000 * 1_000_000)
        );
        assert!(ns.iter().any(|t| t % 1_000_000 != 0));
    }

    #[test]
    fn same_seed_same_bytes() {
        let cfg = GenConfig {
            max_flows: Some(2_000),
            scenarios: vec!["port-scan".parse().unwrap()],
            ..GenConfig::default()
        };
        let a: Vec<Vec<u8>> = run(cfg.clone()).0.into_iter().map(|d| d.bytes).collect();
        let b: Vec<Vec<u8>> = run(cfg.clone()).0.into_iter().map(|d| d.bytes).collect();
        assert_eq!(a, b);
        let c: Vec<Vec<u8>> = run(GenConfig { seed: 2, ..cfg })
            .0
            .into_iter()
            .map(|d| d.bytes)
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn virtual_time_follows_the_rate() {
        let cfg = GenConfig {
            rate: Some(500.0),
            duration_ns: Some(10_000_000_000),
            ..GenConfig::default()
        };
        let (d, truth) = run(cfg);
        // 500 flows/s for 10 s, within a conversation's second flow.
        assert!((truth.flows as i64 - 5_000).abs() <= 1, "{}", truth.flows);
        let last = d.last().unwrap().t_ns;
        assert!((9_900_000_000..=10_200_000_000).contains(&last), "{last}");
    }

    #[test]
    fn scenarios_respect_start_and_stop() {
        let cfg = GenConfig {
            rate: None,
            duration_ns: Some(20_000_000_000),
            scenarios: vec!["icmp-flood:start=5s,stop=15s,rate=100".parse().unwrap()],
            ..GenConfig::default()
        };
        let (d, truth) = run(cfg);
        assert_eq!(truth.flows, 1000);
        assert!(
            d.iter()
                .all(|x| x.t_ns >= 5_000_000_000 && x.t_ns <= 15_100_000_000)
        );
    }

    #[test]
    fn refuses_configs_that_cannot_run() {
        let one = GenConfig {
            max_flows: Some(1),
            ..GenConfig::default()
        };
        let v5 = GenConfig {
            format: OutFormat::V5,
            ..one.clone()
        };
        for (cfg, says) in [
            (GenConfig::default(), "--flows"),
            (
                GenConfig {
                    scenarios: vec!["arp-storm".parse().unwrap()],
                    ..v5.clone()
                },
                "sflow",
            ),
            (
                GenConfig {
                    sampling: 20_000,
                    ..v5.clone()
                },
                "16383",
            ),
            (
                GenConfig {
                    ipv6_share: Some(1.5),
                    ..one
                },
                "from 0 (IPv4 only) to 1",
            ),
            (
                GenConfig {
                    ipv6_share: Some(0.5),
                    ..v5
                },
                "cannot carry IPv6",
            ),
        ] {
            let e = Generator::new(cfg).err().unwrap().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    /// Flow records of each address family in a v9 datagram.
    fn v9_families(d: &[u8]) -> (usize, usize) {
        let mut fam = (0, 0);
        let mut b = FlowBatch::default();
        let mut dec = Decoder::default();
        // Templates come with every datagram in these tests (template_interval 1).
        dec.decode("127.0.0.1".parse().unwrap(), 0, d, &mut b)
            .unwrap();
        for (s, dst) in b.src_addr.iter().zip(&b.dst_addr) {
            if flowsight_schema::addr_is_v4(s) || flowsight_schema::addr_is_v4(dst) {
                fam.0 += 1;
            } else {
                fam.1 += 1;
            }
        }
        fam
    }

    /// Record length of template `tid` (256: IPv4, 257: IPv6) in a v9 datagram whose first
    /// data set of that template holds `n` records. v9 header 20 bytes, then FlowSets of
    /// (id u16, length u16) (RFC 3954 s5).
    fn record_len(d: &[u8], tid: u16, n: usize) -> Option<usize> {
        let mut at = 20;
        while at + 4 <= d.len() {
            let id = u16::from_be_bytes([d[at], d[at + 1]]);
            let len = u16::from_be_bytes([d[at + 2], d[at + 3]]) as usize;
            if id == tid {
                // Padding is under 4 bytes, shorter than a record (s5.3).
                return Some((len - 4) / n);
            }
            at += len.max(4);
        }
        None
    }

    #[test]
    fn datagrams_go_out_full_except_at_the_end() {
        // 1M flows/s: every batch of records comes long before its deadline, so only the
        // very last datagram may be short.
        let cfg = GenConfig {
            format: OutFormat::V9,
            rate: Some(1_000_000.0),
            max_flows: Some(20_000),
            template_interval: TemplateInterval::Packets(1),
            ipv6_share: Some(0.0),
            ..GenConfig::default()
        };
        let (d, truth) = run(cfg.clone());
        assert_eq!(truth.flows, 20_000);
        let (last, full) = d.split_last().unwrap();
        // IPv4-only: one template, so every full datagram has the same size and count.
        let size = full[0].bytes.len();
        assert!(
            full.iter()
                .all(|x| x.bytes.len() == size && x.flows == full[0].flows)
        );
        assert!(last.flows <= full[0].flows);
        // Full: one more IPv4 record would not fit in 1 400 bytes (v9 pads a set to 4
        // bytes, so up to 3 bytes of `size` are padding).
        let rec = record_len(&full[0].bytes, 256, full[0].flows).unwrap();
        assert!(size - 3 + rec > 1400, "{size} bytes, records of {rec}");
        assert!(full.iter().all(|x| v9_families(&x.bytes).1 == 0));
        // The old cut at every 64 records made a third of the datagrams short.
        assert!(
            d.len() < 20_000 / full[0].flows + 2,
            "{} datagrams",
            d.len()
        );

        // Dual stack (the default share): still full, sizes vary with the mix.
        let (d, truth) = run(GenConfig {
            ipv6_share: None,
            ..cfg
        });
        assert_eq!(truth.flows, 20_000);
        let v6: usize = d.iter().map(|x| v9_families(&x.bytes).1).sum();
        assert!((2_000..6_000).contains(&v6), "{v6} IPv6 flows of 20 000");
        // A datagram ends when the next record does not fit with its set header: the room
        // left is under 4 + the longest record (IPv6) + 3 bytes of padding.
        let v6_len = d
            .iter()
            .find_map(|x| {
                let (v4, v6) = v9_families(&x.bytes);
                (v4 == 0 && v6 > 0).then(|| record_len(&x.bytes, 257, v6))?
            })
            .expect("an IPv6-only datagram");
        assert!(v6_len > rec);
        assert!(
            d[..d.len() - 1]
                .iter()
                .all(|x| x.bytes.len() + 4 + v6_len + 3 > 1400)
        );
    }

    #[test]
    fn a_slow_exporter_sends_short_datagrams_at_the_deadline() {
        // 100 flows/s: a datagram's worth takes ~0.3 s, so records go out at their 100 ms
        // deadline in short datagrams, none held longer.
        let cfg = GenConfig {
            rate: Some(100.0),
            duration_ns: Some(5_000_000_000),
            ..GenConfig::default()
        };
        let mut g = Generator::new(cfg).unwrap();
        let mut prev = 0;
        let mut n = 0;
        for d in g.by_ref() {
            assert!(
                d.t_ns - prev <= MAX_WAIT_NS + 20_000_000,
                "{} -> {}",
                prev,
                d.t_ns
            );
            prev = d.t_ns;
            n += d.flows;
        }
        assert_eq!(n as u64, g.truth().flows);
        assert!((495..=505).contains(&n), "{n}");
    }
}
