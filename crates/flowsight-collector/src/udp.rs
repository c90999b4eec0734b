//! UDP receive: `SO_REUSEPORT` sockets with large buffers, batched `recvmmsg`, kernel drop
//! counting (`SO_RXQ_OVFL`), and dispatch of each datagram to its exporter's worker.

use crate::metrics::{Counters, Shared};
use crate::queue::WorkerTx;
use crate::{Chunk, CollectorError, Listener, now_ns, worker_of};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::IoSliceMut;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 64;
/// Buffer per datagram: the largest UDP payload, so nothing is ever truncated.
const SLOT: usize = 65_536;
/// After a receive that drained the socket (fewer than [`BATCH`] datagrams), wait this long
/// before the next one so datagrams accumulate in the kernel buffer. Without it, each
/// datagram woke this thread and its worker: at 800 000 flows/s, perf put three quarters of
/// the receive thread's time in the context switches (`finish_task_switch`). A millisecond
/// of traffic is far below any configured buffer and far below the store's flush interval.
const LINGER: Duration = Duration::from_millis(1);

fn one(
    l: &Listener,
    port: u16,
    rcvbuf: usize,
    reuse: bool,
    gro: bool,
) -> Result<UdpSocket, CollectorError> {
    let err = |what: &str, e: std::io::Error| CollectorError::Listen {
        url: l.url.clone(),
        message: format!("{what}: {e}"),
    };
    let mut addr = l.addr;
    addr.set_port(port);
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| err("cannot create a UDP socket", e))?;
    if reuse {
        setsockopt(&s, sockopt::ReusePort, &true)
            .map_err(|e| err("cannot set SO_REUSEPORT", e.into()))?;
    }
    // Ask for the buffer; with CAP_NET_ADMIN the "force" variant passes net.core.rmem_max.
    if setsockopt(&s, sockopt::RcvBufForce, &rcvbuf).is_err() {
        let _ = setsockopt(&s, sockopt::RcvBuf, &rcvbuf);
    }
    let got = nix::sys::socket::getsockopt(&s, sockopt::RcvBuf).unwrap_or(0);
    // Linux reports twice the usable size.
    if got / 2 < rcvbuf / 2 {
        tracing::warn!(
            listener = %l.url,
            requested = rcvbuf,
            granted = got,
            "socket receive buffer smaller than configured; raise it with `sysctl -w net.core.rmem_max={rcvbuf}` or run with CAP_NET_ADMIN"
        );
    }
    let _ = setsockopt(&s, sockopt::RxqOvfl, &1);
    // UDP GRO (Linux 5.0+, `udp(7)` UDP_GRO), when configured: the kernel may hand over
    // several datagrams of one exporter (same addresses and ports) in one buffer, cut at the
    // size a control message gives, so one receive costs what one datagram did. Off by
    // default: the kernel counts a coalesced buffer it drops as one drop (`SO_RXQ_OVFL`,
    // measured on 6.18), so kernel drops would be undercounted. Older kernels refuse the
    // option and deliver datagrams one by one, which the receive loop handles the same way.
    if gro && setsockopt(&s, sockopt::UdpGroSegment, &true).is_err() {
        tracing::warn!(listener = %l.url, "this kernel refuses UDP GRO (udp_gro = true); receiving datagrams one by one");
    }
    s.bind(&addr.into()).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another collector is using this port; stop it or pick another port)"
            }
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (this host has no such address)",
            _ => "",
        };
        err(&format!("cannot bind {addr}{hint}"), e)
    })?;
    let u: UdpSocket = s.into();
    u.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| err("cannot set a read timeout", e))?;
    Ok(u)
}

/// Binds `n` sockets on the listener's address (the first resolves port 0; the others share
/// its port through `SO_REUSEPORT`).
pub(crate) fn bind(
    l: &Listener,
    n: usize,
    rcvbuf: usize,
    gro: bool,
) -> Result<Vec<UdpSocket>, CollectorError> {
    let reuse = n > 1;
    let first = one(l, l.addr.port(), rcvbuf, reuse, gro)?;
    let port = first
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(l.addr.port());
    let mut v = vec![first];
    for _ in 1..n {
        v.push(one(l, port, rcvbuf, reuse, gro)?);
    }
    Ok(v)
}

fn ip_of(a: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    // A dual-stack socket sees IPv4 exporters as ::ffff:a.b.c.d; name them as IPv4.
    a.as_sockaddr_in6()
        .map(|v6| IpAddr::V6(v6.ip()).to_canonical())
}

pub(crate) struct Receiver {
    sock: UdpSocket,
    workers: Vec<WorkerTx>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn new(
        sock: UdpSocket,
        workers: Vec<WorkerTx>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Receiver {
            sock,
            workers,
            shared,
            stop,
        }
    }

    pub(crate) fn run(self) {
        let mut bufs = vec![0u8; BATCH * SLOT];
        // (exporter, bytes received, GRO segment size or 0).
        let mut meta: Vec<(Option<IpAddr>, usize, usize)> = Vec::with_capacity(BATCH);
        let mut chunks: Vec<Chunk> = (0..self.workers.len()).map(|_| Chunk::default()).collect();
        // Per worker, the bytes and datagrams of one receive; per receive buffer, its worker
        // and the datagrams in it (several with GRO).
        let mut need: Vec<(usize, usize)> = Vec::with_capacity(chunks.len());
        let mut dest: Vec<(usize, usize)> = Vec::with_capacity(BATCH);
        let mut drops_seen: u32 = 0;
        let c = &self.shared.counters;
        let fd = self.sock.as_raw_fd();
        let mut errors = crate::RateLimit::default();
        // Linger only with room for it: a buffer the kernel capped near its 208 KiB default
        // could overflow in the wait at high rates (Linux reports twice the usable size).
        let room = nix::sys::socket::getsockopt(&self.sock, sockopt::RcvBuf).unwrap_or(0) / 2;
        let linger = room >= 1 << 20;
        while !self.stop.load(Ordering::Relaxed) {
            meta.clear();
            let mut ovfl: Option<u32> = None;
            {
                // Fresh headers each call: the kernel writes back each header's control
                // length (0 when a datagram carried no drop count), and nix does not restore
                // it, so reused headers would stop receiving SO_RXQ_OVFL counts.
                let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
                    BATCH,
                    Some(nix::cmsg_space!(u32, i32)),
                );
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                    .chunks_exact_mut(SLOT)
                    .map(|b| [IoSliceMut::new(b)])
                    .collect();
                // MSG_WAITFORONE: block (up to the read timeout) for the first datagram,
                // then take whatever else is already queued.
                match recvmmsg(fd, &mut headers, &mut iovs, MsgFlags::MSG_WAITFORONE, None) {
                    Ok(res) => {
                        for m in res {
                            let mut seg = 0;
                            if let Ok(cm) = m.cmsgs() {
                                for x in cm {
                                    match x {
                                        ControlMessageOwned::RxqOvfl(n) => ovfl = Some(n),
                                        ControlMessageOwned::UdpGroSegments(n) => {
                                            seg = usize::try_from(n).unwrap_or(0);
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            let ip = m.address.as_ref().and_then(ip_of);
                            meta.push((ip, m.bytes, seg));
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        if let Some(s) = errors.allow() {
                            tracing::warn!(error = %e, suppressed = s, "UDP receive failed");
                        }
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
            }
            if let Some(n) = ovfl {
                // The kernel reports the socket's cumulative drop count.
                Counters::add(&c.kernel_drops, u64::from(n.wrapping_sub(drops_seen)));
                drops_seen = n;
            }
            // Each worker's chunk sized for exactly this receive's datagrams: the receive
            // queue counts a chunk's capacity, and growing by doubling would count up to
            // twice its bytes (and copy them at each growth).
            need.clear();
            need.resize(chunks.len(), (0, 0));
            dest.clear();
            for &(ip, len, seg) in &meta {
                let Some(ip) = ip else {
                    dest.push((usize::MAX, 1));
                    continue;
                };
                let (w, len) = (worker_of(ip, chunks.len()), len.min(SLOT));
                // A GRO buffer holds datagrams of `seg` bytes each, the last maybe shorter.
                let parts = if seg == 0 || len <= seg {
                    1
                } else {
                    len.div_ceil(seg)
                };
                need[w].0 += len;
                need[w].1 += parts;
                dest.push((w, parts));
            }
            for (ch, &(b, n)) in chunks.iter_mut().zip(&need) {
                ch.data.reserve_exact(b);
                ch.items.reserve_exact(n);
            }
            let now = now_ns();
            let (mut bytes, mut datagrams, mut gro) = (0u64, 0u64, 0u64);
            for (i, (&(ip, len, seg), &(w, parts))) in meta.iter().zip(&dest).enumerate() {
                datagrams += parts as u64;
                let Some(ip) = ip else { continue };
                let data = &bufs[i * SLOT..i * SLOT + len.min(SLOT)];
                bytes += len as u64;
                if parts == 1 {
                    chunks[w].push(ip, now, data);
                } else {
                    gro += 1;
                    for d in data.chunks(seg) {
                        chunks[w].push(ip, now, d);
                    }
                }
            }
            Counters::add(&c.datagrams, datagrams);
            if gro > 0 {
                Counters::add(&c.udp_gro_receives, gro);
            }
            Counters::add(&c.bytes, bytes);
            for (w, ch) in chunks.iter_mut().enumerate() {
                if ch.items.is_empty() {
                    continue;
                }
                let full = std::mem::take(ch);
                // Blocks when the worker is behind: back-pressure goes to the kernel buffer,
                // whose drops are counted, instead of dropping here.
                if self.workers[w].send(full).is_err() {
                    return;
                }
            }
            if linger && meta.len() < BATCH {
                std::thread::sleep(LINGER);
            }
        }
    }
}
