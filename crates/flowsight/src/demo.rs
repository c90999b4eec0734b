//! `serve --demo`: the generator feeds the collector over loopback, so a newcomer sees a
//! live portal with one command. Background traffic from two exporters runs all the time;
//! every ten-minute cycle carries a SYN flood, a port scan and a UDP amplification attack,
//! so the portal has something to find.

use flowsight_gen::{GenConfig, Generator, OutFormat, Scenario, TemplateInterval};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Background conversations per second: enough to fill the dashboards, light on a laptop.
pub const RATE: f64 = 2_000.0;
/// Length of one cycle of background traffic and attacks.
const CYCLE_S: u64 = 600;
/// The attacks of each cycle (seconds from the cycle's start).
const SCENARIOS: [&str; 3] = [
    "ddos-syn:start=60s,stop=150s,rate=3000",
    "port-scan:start=240s,stop=300s,rate=300",
    "udp-amplification:start=420s,stop=480s,rate=1500,service=ntp",
];

/// Sends demo traffic to `target` until `stop` is set. Runs on its own thread.
pub fn feed(target: SocketAddr, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let exporters = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    ];
    let mut sockets = Vec::new();
    for e in exporters {
        // 127.0.0.2 exists on Linux's loopback; elsewhere both exporters share 127.0.0.1
        // (told apart by their observation domains only).
        let s = UdpSocket::bind((e, 0)).or_else(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))?;
        sockets.push(s);
    }
    let scenarios: Vec<Scenario> = SCENARIOS
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let mut cycle = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let start_ns = flowsight_store::now_ns();
        let generator = Generator::new(GenConfig {
            format: OutFormat::Ipfix,
            exporters: exporters.to_vec(),
            rate: Some(RATE),
            scenarios: scenarios.clone(),
            sampling: 0,
            template_interval: TemplateInterval::Seconds(10.0),
            seed: 0x5eed ^ cycle,
            start_ns,
            max_flows: None,
            duration_ns: Some(CYCLE_S * 1_000_000_000),
            ..GenConfig::default()
        })?;
        let t0 = Instant::now();
        for d in generator {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            crate::generate::pace(t0, d.t_ns);
            // A full socket buffer or a restart drops a datagram, as on a real network.
            let _ = sockets[d.exporter].send_to(&d.bytes, target);
        }
        cycle += 1;
    }
    Ok(())
}
