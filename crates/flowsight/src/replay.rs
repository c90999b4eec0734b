//! `flowsight replay FILE.pcap --target HOST:PORT`: resends the flow export payloads of a
//! capture (any format, pcap or pcapng) with the original timing, faster, or at full speed.

use crate::generate::pace;
use anyhow::{Context, Result, bail};
use clap::Args;
use flowsight_capture::{Extractor, read_frames};
use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use nix::errno::Errno;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg, sendmsg,
};
use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture of flow exports (pcap or pcapng; UDP, and IPFIX over TCP).
    pub file: PathBuf,
    /// Collector to send to, HOST:PORT (repeatable).
    #[arg(long = "target", value_name = "HOST:PORT", required = true)]
    pub targets: Vec<String>,
    /// 1.0 keeps the capture's timing, Nx (e.g. 10x) is N times faster, max sends at once.
    #[arg(long, default_value = "1.0")]
    pub speed: String,
    /// Send from this local address (the exporter address the collector sees).
    #[arg(long)]
    pub as_exporter: Option<IpAddr>,
    /// Print a summary (datagrams, bytes, and the flows/packets/bytes they carry) as JSON.
    #[arg(long)]
    pub summary_json: bool,
    /// Send every datagram with its own send call instead of handing runs of equal-size
    /// datagrams to the kernel as one UDP GSO send (the datagrams on the wire are the same).
    #[arg(long)]
    pub no_gso: bool,
}

fn parse_speed(s: &str) -> Result<Option<f64>> {
    if s == "max" {
        return Ok(None);
    }
    let v = s.strip_suffix('x').unwrap_or(s);
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .map(Some)
        .with_context(|| format!("--speed {s}: use 1.0, a factor like 10x, or max"))
}

pub fn run(a: ReplayArgs) -> Result<()> {
    let speed = parse_speed(&a.speed)?;
    let targets = a
        .targets
        .iter()
        .map(|t| {
            t.to_socket_addrs()
                .ok()
                .and_then(|mut i| i.next())
                .with_context(|| {
                    format!("--target {t}: not HOST:PORT, or the host does not resolve")
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let (frames, issues) = read_frames(&bytes).with_context(|| format!("{}", a.file.display()))?;
    for i in &issues {
        eprintln!(
            "flowsight: {}: file offset {}: {}",
            a.file.display(),
            i.offset,
            i.message
        );
    }
    let mut ex = Extractor::default();
    let mut payloads = Vec::new();
    let mut more = Vec::new();
    for f in &frames {
        for p in ex.extract(f, &mut more) {
            if flowsight_wire::detect(&p.data).is_some() {
                payloads.push(p);
            }
        }
    }
    if payloads.is_empty() {
        bail!(
            "{}: no NetFlow/IPFIX/sFlow payloads found in {} frames",
            a.file.display(),
            frames.len()
        );
    }
    let bind = a.as_exporter.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let sock = UdpSocket::bind((bind, 0)).with_context(|| {
        format!(
            "--as-exporter {bind}: cannot send from this address (it must be local, e.g. 127.0.0.5)"
        )
    })?;
    let bar = crate::progress_bar(
        Some(payloads.len() as u64),
        "[{elapsed_precise}] {bar:40} {pos}/{len} datagrams {per_sec}",
    );
    // Count what the payloads carry, with our own decoder, for the summary.
    // What the capture carries, counted before sending so the send loop stays lean (at
    // millions of flows per second the sender must not compete with the collector).
    let (mut flows, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    {
        let mut dec = Decoder::default();
        let mut batch = FlowBatch::default();
        for p in &payloads {
            let exporter = a.as_exporter.unwrap_or(p.src);
            let _ = dec.decode(exporter, p.ts_ns, &p.data, &mut batch);
            flows += batch.len() as u64;
            packets += batch.packets.iter().sum::<u64>();
            bytes += batch.bytes.iter().sum::<u64>();
            batch.clear();
        }
    }
    let t0 = payloads[0].ts_ns;
    let due = |p: &flowsight_capture::Payload| -> u64 {
        speed.map_or(0, |s| (p.ts_ns.saturating_sub(t0) as f64 / s) as u64)
    };
    let mut sender = Sender::new(&sock, &targets, !a.no_gso);
    // With GSO, datagrams due within this much of now go out with the ones due now, so one
    // send carries a run of them, as a NIC's interrupt coalescing would deliver them.
    let lookahead = if a.no_gso { 0 } else { GSO_LOOKAHEAD_NS };
    let cpu0 = thread_cpu_s();
    let start = Instant::now();
    let mut sent_bytes = 0u64;
    let mut i = 0;
    while i < payloads.len() {
        pace(start, due(&payloads[i]));
        // Everything due by now goes in one `sendmmsg` per target: after a sleep that
        // overshot, that is the datagrams of the overshoot.
        let now = start.elapsed().as_nanos() as u64;
        let mut j = i + 1;
        while j < payloads.len() && j - i < BATCH && due(&payloads[j]) <= now + lookahead {
            j += 1;
        }
        sender.send(&payloads[i..j])?;
        sent_bytes += payloads[i..j]
            .iter()
            .map(|p| p.data.len() as u64)
            .sum::<u64>();
        if i / 1024 != j / 1024 {
            bar.set_position(j as u64);
        }
        i = j;
    }
    let send_cpu = thread_cpu_s() - cpu0;
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!(
        "flowsight replay: {} datagrams ({} bytes) carrying {} flows to {} target(s) in {:.2} s: {:.0} datagrams/s, {:.2} CPU s sending{}",
        payloads.len(),
        sent_bytes,
        flows,
        targets.len(),
        elapsed,
        payloads.len() as f64 / elapsed.max(1e-9),
        send_cpu,
        if sender.gso { " (UDP GSO)" } else { "" }
    );
    if a.summary_json {
        println!(
            "{}",
            serde_json::json!({
                "datagrams": payloads.len(), "payload_bytes": sent_bytes,
                "flows": flows, "packets": packets, "bytes": bytes, "elapsed_s": elapsed,
                "flows_per_s": flows as f64 / elapsed.max(1e-9), "send_cpu_s": send_cpu,
                "gso": sender.gso,
            })
        );
    }
    Ok(())
}

/// Datagrams per `sendmmsg` at most.
const BATCH: usize = 64;
/// Datagrams per GSO send at most (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
const GSO_SEGMENTS: usize = 64;
/// Bytes per GSO send at most: one IP packet's worth, less the headers.
const GSO_BYTES: usize = 64_000;
/// See its use in [`run`].
const GSO_LOOKAHEAD_NS: u64 = 200_000;

/// Sends datagrams to every target. A run of equal-size datagrams (the last may be shorter)
/// goes out as one UDP GSO send (`UDP_SEGMENT`, Linux 4.18+): the kernel cuts it into the
/// same datagrams, and the sender pays the network stack once per run instead of once per
/// datagram. On loopback that stack is most of a sender's CPU, all of it taken from the
/// collector on a shared machine. Without GSO (refused by the kernel or `--no-gso`),
/// datagrams go in one `sendmmsg` per batch and target.
struct Sender<'a> {
    sock: &'a UdpSocket,
    targets: Vec<(SocketAddr, SockaddrStorage)>,
    headers: MultiHeaders<SockaddrStorage>,
    gso: bool,
}

/// The end of the GSO run starting at `i`: datagrams of `batch[i]`'s size, then at most one
/// shorter one, within the kernel's limits.
fn gso_run(batch: &[flowsight_capture::Payload], i: usize) -> usize {
    let seg = batch[i].data.len();
    let (mut j, mut total) = (i + 1, seg);
    while j < batch.len() && j - i < GSO_SEGMENTS {
        let n = batch[j].data.len();
        if n == 0 || n > seg || total + n > GSO_BYTES {
            break;
        }
        total += n;
        j += 1;
        if n < seg {
            break;
        }
    }
    j
}

impl<'a> Sender<'a> {
    fn new(sock: &'a UdpSocket, targets: &[SocketAddr], gso: bool) -> Self {
        Sender {
            sock,
            targets: targets
                .iter()
                .map(|t| (*t, SockaddrStorage::from(*t)))
                .collect(),
            headers: MultiHeaders::preallocate(BATCH, None),
            gso,
        }
    }

    fn send(&mut self, batch: &[flowsight_capture::Payload]) -> Result<()> {
        if !self.gso {
            return self.send_each(batch);
        }
        let mut i = 0;
        while i < batch.len() {
            let j = gso_run(batch, i);
            let seg = u16::try_from(batch[i].data.len()).unwrap_or(u16::MAX);
            if j - i == 1 || !self.send_run(&batch[i..j], seg)? {
                self.send_each(&batch[i..j])?;
            }
            i = j;
        }
        Ok(())
    }

    /// One GSO send of `run` to every target; false when the kernel refuses GSO (then it is
    /// off for the rest of the replay, and nothing of `run` was sent).
    fn send_run(&mut self, run: &[flowsight_capture::Payload], seg: u16) -> Result<bool> {
        let iov: Vec<IoSlice<'_>> = run.iter().map(|p| IoSlice::new(&p.data)).collect();
        let cmsg = [ControlMessage::UdpGsoSegments(&seg)];
        for (n, (t, addr)) in self.targets.iter().enumerate() {
            loop {
                match sendmsg(
                    self.sock.as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(addr),
                ) {
                    Ok(_) | Err(Errno::ECONNREFUSED) => break,
                    Err(Errno::EINTR) => {}
                    // Refused on the first target: no GSO here (old kernel, a route whose
                    // MTU is below the datagrams, no checksum offload). Later targets too
                    // would mean sending twice to the first, so those are an error.
                    Err(Errno::EIO | Errno::EINVAL | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP)
                        if n == 0 =>
                    {
                        self.gso = false;
                        eprintln!(
                            "flowsight replay: the kernel refused UDP GSO to {t}; sending datagrams one by one"
                        );
                        return Ok(false);
                    }
                    Err(e) => bail!("cannot send to {t}: {e}"),
                }
            }
        }
        Ok(true)
    }

    fn send_each(&mut self, batch: &[flowsight_capture::Payload]) -> Result<()> {
        let slices: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|p| [IoSlice::new(&p.data)]).collect();
        for (t, addr) in &self.targets {
            let addrs = vec![Some(*addr); batch.len()];
            let mut done = 0;
            while done < batch.len() {
                match sendmmsg(
                    self.sock.as_raw_fd(),
                    &mut self.headers,
                    &slices[done..],
                    &addrs[done..],
                    [],
                    MsgFlags::empty(),
                ) {
                    Ok(r) => done += r.count().max(1),
                    // No collector listening yet (ICMP port unreachable): the datagram is
                    // gone, as with a real exporter; go on.
                    Err(Errno::ECONNREFUSED) => done += 1,
                    Err(Errno::EINTR) => {}
                    Err(e) => bail!("cannot send to {t}: {e}"),
                }
            }
        }
        Ok(())
    }
}

/// CPU seconds (user + system) this thread has used.
fn thread_cpu_s() -> f64 {
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0.0, |u| {
        let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 * 1e-6;
        t(u.user_time()) + t(u.system_time())
    })
}
