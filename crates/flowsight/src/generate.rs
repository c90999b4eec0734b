//! `flowsight generate`: synthetic flow exports to collectors and/or a pcap, with the exact
//! ground truth of what was sent.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use flowsight_gen::pcap::PcapWriter;
use flowsight_gen::{GenConfig, Generator, OutFormat, Scenario, TemplateInterval, parse_seconds};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams (every format).
    Udp,
    /// IPFIX messages over a TCP connection per exporter and target (RFC 7011 s10.4).
    Tcp,
}

/// The unit of IPFIX flow times on the wire.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum TimeUnit {
    /// flowStart/EndMilliseconds (IEs 152/153): exporters keep milliseconds.
    Ms,
    /// flowStart/EndNanoseconds (IEs 156/157): the generated times whole.
    Ns,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    /// Aligned text.
    Text,
    /// JSON (the ground truth: totals, per exporter, per protocol, per scenario, top
    /// destinations).
    Json,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Collector to send to, HOST:PORT (repeatable). Without it, give --out.
    #[arg(long = "target", value_name = "HOST:PORT")]
    pub targets: Vec<String>,
    /// Export format: v1, v5, v7, v9, ipfix or sflow.
    #[arg(long, default_value = "ipfix")]
    pub format: String,
    /// Transport (tcp: IPFIX only).
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Transport,
    /// Simulated exporters: distinct source addresses 127.0.0.1, 127.0.0.2, ... each with
    /// its own sequence numbers, observation domain, uptime and templates.
    #[arg(long, default_value_t = 1)]
    pub exporters: usize,
    /// Background flows per second, or `max` (no pacing).
    #[arg(long, default_value = "1000", allow_hyphen_values = true)]
    pub rate: String,
    /// No background traffic: only the scenarios.
    #[arg(long)]
    pub no_background: bool,
    /// Stop after this many flows.
    #[arg(long)]
    pub flows: Option<u64>,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long)]
    pub duration: Option<String>,
    /// Announce 1-in-N packet sampling (v5 header, v9/IPFIX options, sFlow samples).
    #[arg(long, default_value_t = 0)]
    pub sampling: u32,
    /// Resend v9/IPFIX templates every N datagrams, or every N seconds with an `s` suffix.
    #[arg(long, default_value = "20")]
    pub template_interval: String,
    /// Seed of the traffic model: the same seed gives the same flows (and, with --out and
    /// no --target, or with --start-time, byte-identical output).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Virtual start time of the flows, Unix seconds (default: now, or 2024-01-01 when only
    /// writing --out with a --seed).
    #[arg(long)]
    pub start_time: Option<u64>,
    /// Scenario to mix in: NAME[:key=value,...], e.g. ddos-syn:target=10.1.0.10,start=10s.
    /// Names: ddos-syn, udp-amplification, icmp-flood, port-scan, c2-beacon, exfiltration,
    /// arp-storm (sflow), short-packets. Keys: target, source, start, stop, rate, interval.
    #[arg(long = "scenario", value_name = "SPEC")]
    pub scenarios: Vec<String>,
    /// Also (or only) write the datagrams to this pcap file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the ground truth at the end.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    pub summary: Option<SummaryFormat>,
    /// Largest datagram in bytes.
    #[arg(long, default_value_t = 1400)]
    pub max_datagram: usize,
    /// Share of conversations over IPv6, 0 to 1 (default 0.2 for v9, IPFIX and sFlow: a
    /// dual-stack network). 0 gives an IPv4-only exporter, whose full datagrams all have
    /// one size.
    #[arg(long, value_name = "FRACTION")]
    pub ipv6_share: Option<f64>,
    /// Unit of IPFIX flow start and end times [default: ms, as exporters keep them; ns
    /// keeps the generated times whole]. NetFlow v9 always sends sysUpTime milliseconds.
    #[arg(long, value_enum, value_name = "UNIT")]
    pub ipfix_time: Option<TimeUnit>,
}

fn parse_format(s: &str) -> Result<OutFormat> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "v1" | "1" => OutFormat::V1,
        "v5" | "5" => OutFormat::V5,
        "v7" | "7" => OutFormat::V7,
        "v9" | "9" => OutFormat::V9,
        "ipfix" | "v10" | "10" => OutFormat::Ipfix,
        "sflow" | "sflow5" => OutFormat::Sflow,
        _ => bail!("--format {s}: use v1, v5, v7, v9, ipfix or sflow"),
    })
}

fn resolve(t: &str) -> Result<SocketAddr> {
    let mut it = t
        .to_socket_addrs()
        .with_context(|| format!("--target {t}: not HOST:PORT, or the host does not resolve"))?;
    it.next()
        .with_context(|| format!("--target {t}: the host has no address"))
}

enum Sink {
    Udp(UdpSocket),
    Tcp(Vec<TcpStream>),
}

pub fn run(a: GenerateArgs) -> Result<()> {
    let format = parse_format(&a.format)?;
    if a.transport == Transport::Tcp && format != OutFormat::Ipfix {
        bail!("--transport tcp carries IPFIX only; use --format ipfix or --transport udp");
    }
    if a.ipfix_time.is_some() && format != OutFormat::Ipfix {
        bail!(
            "--ipfix-time sets the unit of IPFIX flow times; --format {} has its own (drop the option, or use --format ipfix)",
            a.format
        );
    }
    if a.targets.is_empty() && a.out.is_none() {
        bail!("nowhere to send: give --target HOST:PORT (repeatable) and/or --out FILE.pcap");
    }
    if !(1..=250).contains(&a.exporters) {
        bail!(
            "--exporters {}: use 1 to 250 (127.0.0.1 to 127.0.0.250)",
            a.exporters
        );
    }
    let rate = match a.rate.as_str() {
        "max" => None,
        r => Some(
            r.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .with_context(|| {
                    format!("--rate {r}: use a positive number of flows per second, or max")
                })?,
        ),
    };
    let duration_ns = match &a.duration {
        Some(d) => Some(
            parse_seconds(d)
                .filter(|s| *s > 0.0)
                .map(|s| (s * 1e9) as u64)
                .with_context(|| format!("--duration {d}: use a duration like 30s, 5m or 1h"))?,
        ),
        None => None,
    };
    if a.flows.is_none() && duration_ns.is_none() {
        bail!("give --flows N or --duration D, so the run ends");
    }
    let template_interval = match a.template_interval.strip_suffix('s') {
        Some(s) => {
            TemplateInterval::Seconds(s.parse::<f64>().ok().filter(|v| *v > 0.0).with_context(
                || {
                    format!(
                        "--template-interval {}: use N (datagrams) or Ns (seconds)",
                        a.template_interval
                    )
                },
            )?)
        }
        None => TemplateInterval::Packets(
            a.template_interval
                .parse::<u64>()
                .ok()
                .filter(|v| *v > 0)
                .with_context(|| {
                    format!(
                        "--template-interval {}: use N (datagrams) or Ns (seconds)",
                        a.template_interval
                    )
                })?,
        ),
    };
    let scenarios = a
        .scenarios
        .iter()
        .map(|s| s.parse::<Scenario>().map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let targets = a
        .targets
        .iter()
        .map(|t| resolve(t))
        .collect::<Result<Vec<_>>>()?;
    let exporters: Vec<IpAddr> = (0..a.exporters)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)))
        .collect();
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let start_ns = match (a.start_time, a.seed, targets.is_empty()) {
        (Some(t), _, _) => t * 1_000_000_000,
        (None, Some(_), true) => GenConfig::default().start_ns,
        _ => now_ns,
    };
    let cfg = GenConfig {
        format,
        exporters: exporters.clone(),
        // At `max`, flows still need a virtual time axis: 100k/s spreads their timestamps.
        rate: if a.no_background {
            None
        } else {
            Some(rate.unwrap_or(100_000.0))
        },
        scenarios,
        sampling: a.sampling,
        template_interval,
        seed: a.seed.unwrap_or(now_ns),
        start_ns,
        max_flows: a.flows,
        duration_ns,
        max_datagram: a.max_datagram.clamp(200, 65_000),
        ipv6_share: a.ipv6_share,
        ipfix_time: match a.ipfix_time {
            Some(TimeUnit::Ns) => flowsight_gen::IpfixTime::Nanoseconds,
            Some(TimeUnit::Ms) | None => flowsight_gen::IpfixTime::Milliseconds,
        },
        ..GenConfig::default()
    };
    let mut generator = Generator::new(cfg)?;

    // One sink per exporter, so each has its own source address.
    let mut sinks = Vec::with_capacity(exporters.len());
    for (i, ex) in exporters.iter().enumerate() {
        let any_remote = targets.iter().any(|t| !t.ip().is_loopback());
        let bind_ip = if any_remote {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            *ex
        };
        match a.transport {
            Transport::Udp => {
                let s = UdpSocket::bind((bind_ip, 0))
                    .with_context(|| format!("cannot bind exporter {} to {bind_ip}", i + 1))?;
                sinks.push(Sink::Udp(s));
            }
            Transport::Tcp => {
                let mut conns = Vec::new();
                for t in &targets {
                    let c = connect_tcp(bind_ip, *t)?;
                    conns.push(c);
                }
                sinks.push(Sink::Tcp(conns));
            }
        }
    }
    let mut pcap = match &a.out {
        Some(p) => Some(PcapWriter::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))?),
        None => None,
    };
    let pcap_dst = targets
        .first()
        .copied()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 2055)));
    let mut tcp_seq = vec![1u32; exporters.len()];

    let total = a.flows.unwrap_or(0);
    let bar = crate::progress_bar(
        (total > 0).then_some(total),
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} flows {per_sec} {msg}",
    );
    let paced = rate.is_some() && !targets.is_empty();
    let start = Instant::now();
    let mut send_errors = 0u64;
    let mut sent_flows = 0u64;
    for d in generator.by_ref() {
        if paced {
            pace(start, d.t_ns);
        }
        let ts = start_ns + d.t_ns;
        match &mut sinks[d.exporter] {
            Sink::Udp(s) => {
                for t in &targets {
                    if let Err(e) = s.send_to(&d.bytes, t) {
                        match e.kind() {
                            // A closed port (ICMP unreachable reported late) does not stop the run.
                            std::io::ErrorKind::ConnectionRefused => send_errors += 1,
                            _ => bail!("cannot send to {t}: {e} (is the address reachable?)"),
                        }
                    }
                }
            }
            Sink::Tcp(conns) => {
                for (c, t) in conns.iter_mut().zip(&targets) {
                    c.write_all(&d.bytes)
                        .with_context(|| format!("TCP connection to {t} failed"))?;
                }
            }
        }
        if let Some(w) = &mut pcap {
            let src = SocketAddr::new(exporters[d.exporter], 50_000 + d.exporter as u16);
            match a.transport {
                Transport::Udp => w.write_udp(ts, src, pcap_dst, &d.bytes)?,
                Transport::Tcp => {
                    w.write_tcp(ts, src, pcap_dst, tcp_seq[d.exporter], &d.bytes)?;
                    tcp_seq[d.exporter] = tcp_seq[d.exporter].wrapping_add(d.bytes.len() as u32);
                }
            }
        }
        sent_flows += d.flows as u64;
        bar.set_position(sent_flows);
    }
    // A timed run lasts its duration, also when its last flow came a little earlier.
    if let (true, Some(d)) = (paced, duration_ns) {
        pace(start, d);
    }
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(w) = pcap {
        w.finish()?;
    }
    let truth = &generator.truth();
    let achieved = truth.flows as f64 / elapsed.max(1e-9);
    eprintln!(
        "flowsight generate: {} flows ({} packets, {} bytes) in {} datagrams from {} exporter(s) to {} target(s){} in {:.2} s: {} flows/s{}{}",
        truth.flows,
        truth.packets,
        truth.bytes,
        truth.datagrams,
        exporters.len(),
        targets.len(),
        a.out
            .as_ref()
            .map_or(String::new(), |p| format!(" and {}", p.display())),
        elapsed,
        if achieved < 100.0 {
            format!("{achieved:.2}")
        } else {
            format!("{achieved:.0}")
        },
        rate.map_or(" (max)".to_string(), |r| format!(
            " (target {r:.0} background)"
        )),
        if send_errors > 0 {
            format!(", {send_errors} sends refused (port closed?)")
        } else {
            String::new()
        }
    );
    match a.summary {
        None => {}
        Some(SummaryFormat::Json) => {
            let mut v = serde_json::to_value(truth)?;
            let top: Vec<serde_json::Value> = truth
                .top_destinations(20)
                .into_iter()
                .map(|(addr, t)| serde_json::json!({"addr": addr.to_string(), "flows": t.flows, "packets": t.packets, "bytes": t.bytes}))
                .collect();
            v["top_destinations"] = serde_json::Value::Array(top);
            v["format"] = serde_json::to_value(format)?;
            v["elapsed_s"] = serde_json::json!(elapsed);
            v["flows_per_s"] = serde_json::json!(achieved);
            v["send_errors"] = serde_json::json!(send_errors);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Some(SummaryFormat::Text) => {
            println!(
                "flows: {}, packets: {}, bytes: {}, datagrams: {}",
                truth.flows, truth.packets, truth.bytes, truth.datagrams
            );
            if truth.scaled_packets != truth.packets {
                println!(
                    "scaled by sampling: packets: {}, bytes: {}",
                    truth.scaled_packets, truth.scaled_bytes
                );
            }
            for (name, t) in &truth.exporters {
                println!(
                    "  exporter {name:<15} flows {:>10} packets {:>12} bytes {:>15}",
                    t.flows, t.packets, t.bytes
                );
            }
            for (name, t) in &truth.protocols {
                println!(
                    "  protocol {name:<15} flows {:>10} packets {:>12} bytes {:>15}",
                    t.flows, t.packets, t.bytes
                );
            }
            for (name, t) in &truth.scenarios {
                println!(
                    "  scenario {name:<30} flows {:>10} packets {:>12} bytes {:>15}",
                    t.flows, t.packets, t.bytes
                );
            }
        }
    }
    Ok(())
}

/// Waits until `t_ns` after `start`, sleeping, never spinning. Due times are absolute, so
/// a sleep that overshoots (the kernel wakes us ~50-100 us late) only makes the next sends
/// overdue: they go out at once, in a burst of at most that long, and the average rate stays
/// exact. Spinning the last stretch instead kept the sender on a core for the whole run, and
/// on a machine shared with the collector that core is the collector's.
pub fn pace(start: Instant, t_ns: u64) {
    let due = start + Duration::from_nanos(t_ns);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

fn connect_tcp(bind: IpAddr, to: SocketAddr) -> Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    if bind.is_loopback() {
        sock.bind(&SocketAddr::new(bind, 0).into())
            .with_context(|| format!("cannot bind a TCP exporter to {bind}"))?;
    }
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .with_context(|| {
            format!(
                "cannot connect to {to} over TCP (is an IPFIX-over-TCP collector listening there?)"
            )
        })?;
    sock.set_tcp_nodelay(true)?;
    Ok(sock.into())
}
