//! Attack and anomaly scenarios, mixable with background traffic, each with its own rate and
//! start/stop times: `NAME[:key=value,...]`, e.g. `ddos-syn:target=10.1.0.10,start=10s,rate=5000`.

use crate::GenError;
use crate::rng::Rng;
use flowsight_schema::{Addr, FlowRecord, addr_from_ip, addr_from_v4};
use std::net::IpAddr;
use std::str::FromStr;

/// What a scenario does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// TCP SYN flood from spoofed sources.
    DdosSyn,
    /// DNS / NTP / memcached reflection towards a victim.
    UdpAmplification,
    /// ICMP echo flood.
    IcmpFlood,
    /// One scanner probing every port of a target.
    PortScan,
    /// An internal host calling home at a fixed interval with small flows.
    C2Beacon,
    /// One internal host uploading a lot to one outside address.
    Exfiltration,
    /// ARP broadcast storm asking for the target (sFlow only: NetFlow does not see ARP).
    ArpStorm,
    /// Floods of minimum-size UDP packets.
    ShortPackets,
}

impl Kind {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DdosSyn => "ddos-syn",
            Kind::UdpAmplification => "udp-amplification",
            Kind::IcmpFlood => "icmp-flood",
            Kind::PortScan => "port-scan",
            Kind::C2Beacon => "c2-beacon",
            Kind::Exfiltration => "exfiltration",
            Kind::ArpStorm => "arp-storm",
            Kind::ShortPackets => "short-packets",
        }
    }

    const ALL: [Kind; 8] = [
        Kind::DdosSyn,
        Kind::UdpAmplification,
        Kind::IcmpFlood,
        Kind::PortScan,
        Kind::C2Beacon,
        Kind::Exfiltration,
        Kind::ArpStorm,
        Kind::ShortPackets,
    ];

    /// Default (target, source, flows/s).
    fn defaults(self) -> (&'static str, &'static str, f64) {
        match self {
            Kind::DdosSyn => ("10.1.0.10", "0.0.0.0", 2000.0),
            Kind::UdpAmplification => ("10.1.0.11", "0.0.0.0", 500.0),
            Kind::IcmpFlood => ("10.1.0.12", "0.0.0.0", 500.0),
            Kind::PortScan => ("10.1.0.13", "45.143.203.10", 200.0),
            Kind::C2Beacon => ("185.220.101.45", "10.2.3.4", 0.2),
            Kind::Exfiltration => ("203.0.113.66", "10.2.3.5", 1.0),
            Kind::ArpStorm => ("10.2.3.1", "10.2.3.9", 1000.0),
            Kind::ShortPackets => ("10.1.0.14", "0.0.0.0", 500.0),
        }
    }
}

/// A scenario with its parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scenario {
    /// What it does.
    pub kind: Kind,
    /// Victim / destination.
    pub target: IpAddr,
    /// Attacker / internal host (0.0.0.0: many random sources).
    pub source: IpAddr,
    /// Seconds after the run starts.
    pub start_s: f64,
    /// Seconds after the run starts (infinite: until the run ends).
    pub stop_s: f64,
    /// Flows per second while active.
    pub rate: f64,
    /// udp-amplification: which service reflects (dns, ntp, memcached).
    pub service: String,
}

/// Parses `10s`, `1.5s`, `2m`, `500ms` or a plain number of seconds.
pub fn parse_seconds(s: &str) -> Option<f64> {
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else if let Some(v) = s.strip_suffix('h') {
        (v, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

impl FromStr for Scenario {
    type Err = GenError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (name, params) = spec.split_once(':').unwrap_or((spec, ""));
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| GenError::UnknownScenario(name.to_string()))?;
        let (target, source, rate) = kind.defaults();
        let bad = |message: String| GenError::BadScenario {
            scenario: name.to_string(),
            message,
        };
        let ip = |v: &str| -> Result<IpAddr, GenError> {
            v.parse()
                .map_err(|_| bad(format!("`{v}` is not an IP address")))
        };
        let mut s = Scenario {
            kind,
            target: ip(target)?,
            source: ip(source)?,
            start_s: 0.0,
            stop_s: f64::INFINITY,
            rate,
            service: "dns".into(),
        };
        for kv in params.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("`{kv}` is not key=value")))?;
            let secs = || {
                parse_seconds(v)
                    .ok_or_else(|| bad(format!("{k}: `{v}` is not a duration like 10s")))
            };
            match k {
                "target" => s.target = ip(v)?,
                "source" => s.source = ip(v)?,
                "start" => s.start_s = secs()?,
                "stop" => s.stop_s = secs()?,
                "rate" => {
                    s.rate = v
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| {
                            bad(format!("rate: `{v}` is not a positive number of flows/s"))
                        })?
                }
                "interval" => s.rate = 1.0 / secs()?.max(0.001),
                "service" if kind == Kind::UdpAmplification => {
                    if !["dns", "ntp", "memcached"].contains(&v) {
                        return Err(bad(format!("service `{v}`: use dns, ntp or memcached")));
                    }
                    s.service = v.to_string();
                }
                other => {
                    return Err(bad(format!(
                        "unknown key `{other}`; use target, source, start, stop, rate, interval{}",
                        if kind == Kind::UdpAmplification {
                            ", service"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
        if s.stop_s <= s.start_s {
            return Err(bad(format!(
                "stop ({}s) must be after start ({}s)",
                s.stop_s, s.start_s
            )));
        }
        Ok(s)
    }
}

/// A random public-looking IPv4 address (avoids 0/8, 10/8, 127/8, 172.16/12, 192.168/16,
/// multicast and reserved space).
fn random_public_v4(rng: &mut Rng) -> Addr {
    loop {
        let v = rng.next_u64() as u32;
        let a = (v >> 24) as u8;
        let b = (v >> 16) as u8;
        let private = a == 0
            || a == 10
            || a == 127
            || a >= 224
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 100 && (64..128).contains(&b));
        if !private {
            return addr_from_v4(v);
        }
    }
}

impl Scenario {
    /// The flow this scenario emits at `t_ns` (absolute); `n` counts its flows so far.
    pub fn flow(&self, rng: &mut Rng, t_ns: u64, n: u64) -> FlowRecord {
        let target = addr_from_ip(self.target);
        let fixed_source = !self.source.is_unspecified();
        let source = if fixed_source {
            addr_from_ip(self.source)
        } else {
            random_public_v4(rng)
        };
        let v6 = self.target.is_ipv6();
        let base = FlowRecord {
            src_addr: source,
            dst_addr: target,
            time_flow_start_ns: t_ns,
            time_flow_end_ns: t_ns,
            in_if: 10,
            out_if: 1,
            ip_ttl: 50,
            etype: if v6 { 0x86dd } else { 0x0800 },
            src_mac: 0x0200_5eff_0001,
            dst_mac: 0x0200_5e00_00aa,
            src_net: if v6 { 48 } else { 24 },
            dst_net: if v6 { 64 } else { 24 },
            ..FlowRecord::default()
        };
        match self.kind {
            Kind::DdosSyn => {
                let p = rng.range(1, 3);
                FlowRecord {
                    proto: 6,
                    src_port: rng.range(1024, 65_535) as u16,
                    dst_port: 443,
                    tcp_flags: 0x02,
                    packets: p,
                    bytes: p * 60,
                    ..base
                }
            }
            Kind::UdpAmplification => {
                let (port, size) = match self.service.as_str() {
                    "ntp" => (123, 468),
                    "memcached" => (11_211, 1_428),
                    _ => (53, 1_400),
                };
                let p = rng.range(10, 200);
                FlowRecord {
                    proto: 17,
                    src_port: port,
                    dst_port: rng.range(1024, 65_535) as u16,
                    packets: p,
                    bytes: p * size,
                    time_flow_start_ns: t_ns.saturating_sub(2_000_000_000),
                    ..base
                }
            }
            Kind::IcmpFlood => {
                let p = rng.range(50, 500);
                FlowRecord {
                    proto: if v6 { 58 } else { 1 },
                    dst_port: if v6 { 128 << 8 } else { 0x0800 },
                    packets: p,
                    bytes: p * rng.range(84, 1000),
                    time_flow_start_ns: t_ns.saturating_sub(1_000_000_000),
                    ..base
                }
            }
            Kind::PortScan => FlowRecord {
                proto: 6,
                src_port: 40_000 + (n % 1000) as u16,
                dst_port: (n % 65_535) as u16 + 1,
                tcp_flags: 0x02,
                packets: 1,
                bytes: 44,
                ..base
            },
            Kind::C2Beacon => {
                let p = rng.range(4, 6);
                FlowRecord {
                    proto: 6,
                    src_port: rng.range(32_768, 60_999) as u16,
                    dst_port: 443,
                    tcp_flags: 0x1b,
                    packets: p,
                    bytes: rng.range(300, 600),
                    in_if: 1,
                    out_if: 10,
                    time_flow_start_ns: t_ns.saturating_sub(300_000_000),
                    ..base
                }
            }
            Kind::Exfiltration => {
                let p = rng.pareto(2_000.0, 1.5, 200_000.0) as u64;
                FlowRecord {
                    proto: 6,
                    src_port: rng.range(32_768, 60_999) as u16,
                    dst_port: 443,
                    tcp_flags: 0x1b,
                    packets: p,
                    bytes: p * 1_400,
                    in_if: 1,
                    out_if: 10,
                    time_flow_start_ns: t_ns.saturating_sub(60_000_000_000),
                    ..base
                }
            }
            Kind::ArpStorm => FlowRecord {
                etype: 0x0806,
                proto: 0,
                packets: 1,
                bytes: 64,
                dst_mac: 0xffff_ffff_ffff,
                src_mac: 0x0200_5e00_0bad,
                ..base
            },
            Kind::ShortPackets => {
                let p = rng.range(100, 1000);
                FlowRecord {
                    proto: 17,
                    src_port: rng.range(1024, 65_535) as u16,
                    dst_port: rng.range(1, 65_535) as u16,
                    packets: p,
                    bytes: p * rng.range(40, 64),
                    time_flow_start_ns: t_ns.saturating_sub(1_000_000_000),
                    ..base
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_rejects_bad_ones() {
        let s: Scenario = "ddos-syn:target=192.0.2.1,start=10s,stop=1m,rate=5000"
            .parse()
            .unwrap();
        assert_eq!(
            (s.kind, s.start_s, s.stop_s, s.rate),
            (Kind::DdosSyn, 10.0, 60.0, 5000.0)
        );
        let s: Scenario = "c2-beacon:interval=5s".parse().unwrap();
        assert!((s.rate - 0.2).abs() < 1e-9);
        assert!(matches!(
            "nope".parse::<Scenario>(),
            Err(GenError::UnknownScenario(_))
        ));
        assert!("ddos-syn:rate=-1".parse::<Scenario>().is_err());
        assert!("ddos-syn:target=notanip".parse::<Scenario>().is_err());
        assert!("ddos-syn:start=20s,stop=10s".parse::<Scenario>().is_err());
        assert!(
            "udp-amplification:service=ssdp"
                .parse::<Scenario>()
                .is_err()
        );
    }

    #[test]
    fn flows_hit_the_target() {
        let mut rng = Rng::new(1);
        for k in Kind::ALL {
            let s: Scenario = k.name().parse().unwrap();
            let f = s.flow(&mut rng, 1_000_000_000_000, 3);
            assert_eq!(f.dst_addr, addr_from_ip(s.target), "{}", k.name());
            assert!(f.packets >= 1 && f.bytes >= f.packets, "{}", k.name());
        }
    }
}
