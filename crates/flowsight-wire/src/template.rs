//! Template engine for NetFlow v9 (RFC 3954 s5.2-5.3, s6) and IPFIX (RFC 7011 s3.4, s8).
//!
//! Templates are scoped by (exporter address, observation domain / source id, template id)
//! and protocol — never by source port, which routers change when they restart (RFC 7011 s8:
//! templates are scoped to the Transport Session and Observation Domain; for UDP the
//! exporter address is the stable part). Each template compiles once into a [`Plan`]: a list
//! of (offset, length, target) steps with the fields flowsight does not use removed, so
//! records decode with no allocation and no per-field lookup.

#[allow(unused_imports)]
use crate::ie::Scratch;
use crate::ie::{Target, target_for};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Field length meaning "variable length" (RFC 7011 s7).
pub const VARIABLE_LENGTH: u16 = 65535;

/// v9 or IPFIX: their templates live in separate namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TemplateProto {
    /// NetFlow v9.
    V9,
    /// IPFIX.
    Ipfix,
}

/// Where a template is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TemplateKey {
    /// Exporter address.
    pub exporter: IpAddr,
    /// IPFIX observation domain id / v9 source id.
    pub domain: u32,
    /// Template id (256..=65535).
    pub id: u16,
    /// v9 or IPFIX.
    pub proto: TemplateProto,
}

/// One field specifier of a template (RFC 7011 s3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FieldSpec {
    /// Information element id (without the enterprise bit).
    pub id: u16,
    /// Length in bytes, or [`VARIABLE_LENGTH`].
    pub len: u16,
    /// Private enterprise number, 0 for IANA IEs.
    pub pen: u32,
}

/// A template as received: what the snapshot persists.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateDef {
    /// Scope of the template.
    pub key: TemplateKey,
    /// Field specifiers in record order (scope fields first for options templates).
    pub fields: Vec<FieldSpec>,
    /// Number of scope fields (options templates), 0 for data templates.
    pub scope_fields: u16,
    /// Whether this is an options template.
    pub options: bool,
}

/// A serializable image of every template, so a collector can persist templates across
/// restarts and decode data immediately after one.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateSnapshot {
    /// Templates with the time (ns) each was last received.
    pub templates: Vec<(TemplateDef, u64)>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub off: u32,
    pub len: u16,
    pub target: Target,
}

/// A compiled template.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Steps for the fields flowsight uses (fixed-length templates only).
    pub steps: Vec<Step>,
    /// Of those, the ones written straight into a column (decoded column-at-a-time).
    pub direct: Vec<Step>,
    /// The others: times, sampling, totals, decoded per record through a [`Scratch`].
    pub scratch: Vec<Step>,
    /// The template has octetDeltaCount / packetDeltaCount / an ICMP field / ethernetType.
    pub has_bytes: bool,
    pub has_packets: bool,
    pub has_icmp: bool,
    pub has_etype: bool,
    /// Record length when every field is fixed-length.
    pub fixed_len: Option<usize>,
    /// Smallest possible record (variable fields count their 1-byte length prefix).
    pub min_len: usize,
    /// Every field with its target, for the variable-length slow path.
    pub all: Vec<(u16, Target)>,
}

impl Plan {
    pub(crate) fn compile(def: &TemplateDef) -> Plan {
        let mut steps = Vec::new();
        let mut all = Vec::with_capacity(def.fields.len());
        let mut off = 0usize;
        let mut variable = false;
        let mut min_len = 0usize;
        for (i, f) in def.fields.iter().enumerate() {
            // v9 options scope fields use their own type numbering (RFC 3954 s6.1: 1 System,
            // 2 Interface, ...), which collides with IE ids: never map them as IEs.
            let is_v9_scope = def.key.proto == TemplateProto::V9 && i < def.scope_fields as usize;
            let target = if is_v9_scope {
                // An "Interface" scope holds the ifIndex the options record describes.
                if f.id == crate::ie::V9_SCOPE_INTERFACE {
                    Target::InIf
                } else {
                    Target::Skip
                }
            } else {
                target_for(f.pen, f.id)
            };
            all.push((f.len, target));
            if f.len == VARIABLE_LENGTH {
                variable = true;
                min_len += 1;
                continue;
            }
            min_len += f.len as usize;
            if !variable && target != Target::Skip {
                steps.push(Step {
                    off: off as u32,
                    len: f.len,
                    target,
                });
            }
            off += f.len as usize;
        }
        let (direct, scratch): (Vec<Step>, Vec<Step>) =
            steps.iter().partition(|s| crate::ie::is_direct(s.target));
        let has = |f: &dyn Fn(Target) -> bool| all.iter().any(|&(_, t)| f(t));
        Plan {
            has_bytes: has(&|t| t == Target::Bytes),
            has_packets: has(&|t| t == Target::Packets),
            has_icmp: has(&|t| {
                matches!(
                    t,
                    Target::IcmpTypeCode | Target::IcmpType | Target::IcmpCode
                )
            }),
            has_etype: has(&|t| t == Target::EtherType),
            direct,
            scratch,
            steps,
            fixed_len: (!variable).then_some(off),
            min_len,
            all,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub def: TemplateDef,
    /// Shared with the decode run that uses it (a template switch must not allocate).
    pub plan: std::sync::Arc<Plan>,
    pub last_seen_ns: u64,
}

/// Limits that keep memory bounded whatever exporters send.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct TemplateLimits {
    /// Templates one exporter may hold (all its domains).
    pub max_per_exporter: usize,
    /// Templates in total.
    pub max_total: usize,
    /// Fields in one template.
    pub max_fields: usize,
    /// Templates not refreshed for this long (ns) are dropped (RFC 7011 s8.4 for UDP).
    pub idle_timeout_ns: u64,
}

impl Default for TemplateLimits {
    fn default() -> Self {
        TemplateLimits {
            max_per_exporter: 4096,
            max_total: 65_536,
            max_fields: 512,
            idle_timeout_ns: 3_600 * 1_000_000_000,
        }
    }
}

/// What inserting a template did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    New,
    Refreshed,
    Redefined,
}

/// All templates of all exporters.
#[derive(Debug, Default)]
pub(crate) struct TemplateCache {
    pub map: FxHashMap<TemplateKey, Compiled>,
    /// Bumped whenever a template is added, redefined or removed: a decode run made with
    /// an older plan must not take more records.
    pub generation: u64,
    pub(crate) per_exporter: FxHashMap<IpAddr, usize>,
    pub limits: TemplateLimits,
}

impl TemplateCache {
    pub(crate) fn new(limits: TemplateLimits) -> Self {
        TemplateCache {
            limits,
            ..Default::default()
        }
    }

    pub(crate) fn insert(&mut self, def: TemplateDef, now_ns: u64) -> Result<Insert, &'static str> {
        if def.fields.len() > self.limits.max_fields {
            return Err("more fields than max_fields");
        }
        if let Some(c) = self.map.get_mut(&def.key) {
            c.last_seen_ns = now_ns;
            if c.def == def {
                return Ok(Insert::Refreshed);
            }
            c.plan = std::sync::Arc::new(Plan::compile(&def));
            c.def = def;
            self.generation += 1;
            return Ok(Insert::Redefined);
        }
        let n = self
            .per_exporter
            .get(&def.key.exporter)
            .copied()
            .unwrap_or(0);
        if n >= self.limits.max_per_exporter {
            return Err("exporter holds max_per_exporter templates");
        }
        if self.map.len() >= self.limits.max_total {
            return Err("template cache holds max_total templates");
        }
        *self.per_exporter.entry(def.key.exporter).or_default() += 1;
        let plan = std::sync::Arc::new(Plan::compile(&def));
        self.generation += 1;
        self.map.insert(
            def.key,
            Compiled {
                def,
                plan,
                last_seen_ns: now_ns,
            },
        );
        Ok(Insert::New)
    }

    fn forget(&mut self, key: &TemplateKey) -> bool {
        if self.map.remove(key).is_some() {
            self.generation += 1;
            if let Some(n) = self.per_exporter.get_mut(&key.exporter) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_exporter.remove(&key.exporter);
                }
            }
            true
        } else {
            false
        }
    }

    /// RFC 7011 s8.1: a template withdrawal removes one template.
    pub(crate) fn withdraw(&mut self, key: &TemplateKey) -> usize {
        self.forget(key) as usize
    }

    /// RFC 7011 s8.1: "All Data Templates / All Options Templates Withdrawal".
    pub(crate) fn withdraw_all(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        proto: TemplateProto,
        options: bool,
    ) -> usize {
        let keys: Vec<TemplateKey> = self
            .map
            .iter()
            .filter(|(k, c)| {
                k.exporter == exporter
                    && k.domain == domain
                    && k.proto == proto
                    && c.def.options == options
            })
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter(|k| self.forget(k)).count()
    }

    /// Drops templates not refreshed within the idle timeout; returns how many.
    pub(crate) fn expire(&mut self, now_ns: u64) -> usize {
        let timeout = self.limits.idle_timeout_ns;
        let keys: Vec<TemplateKey> = self
            .map
            .iter()
            .filter(|(_, c)| now_ns.saturating_sub(c.last_seen_ns) > timeout)
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter(|k| self.forget(k)).count()
    }

    pub(crate) fn snapshot(&self) -> TemplateSnapshot {
        let mut templates: Vec<(TemplateDef, u64)> = self
            .map
            .values()
            .map(|c| (c.def.clone(), c.last_seen_ns))
            .collect();
        templates.sort_by_key(|(d, _)| (d.key.exporter, d.key.domain, d.key.id));
        TemplateSnapshot { templates }
    }
}

/// A data set that arrived before its template (RFC 7011 s8: "the Collecting Process MAY
/// buffer" such sets), with what is needed to decode it later.
#[derive(Debug)]
pub(crate) struct PendingSet {
    pub key: TemplateKey,
    pub hdr: crate::templated::MsgHeader,
    pub data: Vec<u8>,
}

/// Bounded buffer of [`PendingSet`]s: oldest dropped first when full or too old.
#[derive(Debug, Default)]
pub(crate) struct PendingBuffer {
    pub sets: VecDeque<PendingSet>,
    pub bytes: usize,
    pub max_bytes: usize,
    pub max_age_ns: u64,
}

impl PendingBuffer {
    /// Adds a set; returns (sets, bytes) dropped to make room.
    pub(crate) fn push(&mut self, p: PendingSet) -> (u64, u64) {
        let mut dropped = (0u64, 0u64);
        if p.data.len() > self.max_bytes {
            return (1, p.data.len() as u64);
        }
        while self.bytes + p.data.len() > self.max_bytes {
            match self.sets.pop_front() {
                Some(old) => {
                    self.bytes -= old.data.len();
                    dropped.0 += 1;
                    dropped.1 += old.data.len() as u64;
                }
                None => break,
            }
        }
        self.bytes += p.data.len();
        self.sets.push_back(p);
        dropped
    }

    /// Removes and returns the sets waiting for `key`.
    pub(crate) fn take(&mut self, key: &TemplateKey) -> Vec<PendingSet> {
        if !self.sets.iter().any(|p| p.key == *key) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.sets.len());
        for p in self.sets.drain(..) {
            if p.key == *key {
                self.bytes -= p.data.len();
                out.push(p);
            } else {
                keep.push_back(p);
            }
        }
        self.sets = keep;
        out
    }

    /// Drops sets older than the maximum age; returns (sets, bytes) dropped.
    pub(crate) fn expire(&mut self, now_ns: u64) -> (u64, u64) {
        let mut dropped = (0u64, 0u64);
        while let Some(front) = self.sets.front() {
            if now_ns.saturating_sub(front.hdr.received_ns) <= self.max_age_ns {
                break;
            }
            if let Some(old) = self.sets.pop_front() {
                self.bytes -= old.data.len();
                dropped.0 += 1;
                dropped.1 += old.data.len() as u64;
            }
        }
        dropped
    }
}

/// Sampling state learned from options data (RFC 3954 s6.1 / RFC 7012 IEs 34, 35, 48-50,
/// 302, 304-306) plus systemInitTimeMilliseconds (IE 160), per exporter and domain.
#[derive(Debug, Default)]
pub(crate) struct SamplingTable {
    /// (exporter, domain, sampler id or u32::MAX for "any") -> rate.
    pub(crate) rates: FxHashMap<(IpAddr, u32, u32), u64>,
    pub(crate) sys_init: FxHashMap<(IpAddr, u32), u64>,
    /// Interface names and descriptions from options data: (exporter, ifIndex) -> symbols
    /// of [`flowsight_schema::sym`]. Bounded by `max_entries` like the rates.
    pub(crate) interfaces: FxHashMap<(flowsight_schema::Addr, u32), (u32, u32)>,
    pub max_entries: usize,
    pub overflow: u64,
}

pub(crate) const ANY_SAMPLER: u32 = u32::MAX;

impl SamplingTable {
    /// Records what an interface options record says of `if_index`.
    pub(crate) fn set_interface(&mut self, exporter: IpAddr, if_index: u32, name: u32, desc: u32) {
        let k = (flowsight_schema::addr_from_ip(exporter), if_index);
        if self.interfaces.len() >= self.max_entries && !self.interfaces.contains_key(&k) {
            self.overflow += 1;
            return;
        }
        let e = self.interfaces.entry(k).or_insert((0, 0));
        // A record may carry only one of the two: keep what an earlier one said.
        if name != 0 {
            e.0 = name;
        }
        if desc != 0 {
            e.1 = desc;
        }
    }

    pub(crate) fn set_rate(&mut self, exporter: IpAddr, domain: u32, sampler: u32, rate: u64) {
        let k = (exporter, domain, sampler);
        if self.rates.len() >= self.max_entries && !self.rates.contains_key(&k) {
            self.overflow += 1;
            return;
        }
        self.rates.insert(k, rate);
    }

    pub(crate) fn rate(&self, exporter: IpAddr, domain: u32, sampler: u32) -> Option<u64> {
        if self.rates.is_empty() {
            return None;
        }
        self.rates.get(&(exporter, domain, sampler)).copied()
    }

    pub(crate) fn set_sys_init(&mut self, exporter: IpAddr, domain: u32, ms: u64) {
        if self.sys_init.len() >= self.max_entries
            && !self.sys_init.contains_key(&(exporter, domain))
        {
            self.overflow += 1;
            return;
        }
        self.sys_init.insert((exporter, domain), ms);
    }

    pub(crate) fn sys_init(&self, exporter: IpAddr, domain: u32) -> Option<u64> {
        if self.sys_init.is_empty() {
            return None;
        }
        self.sys_init.get(&(exporter, domain)).copied()
    }
}
