//! IPFIX over streams: TCP (RFC 7011 s10.4) and SCTP (s10.2), one thread per connection,
//! messages split by the header's length field and handed to the exporter's worker.

use crate::config::TlsConfig;
use crate::metrics::{Counters, Shared};
use crate::{Chunk, CollectorError, Listener, ListenerKind, now_ns, worker_of};
use flowsight_wire::IpfixStream;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

/// Concurrent connections per listener (each costs a thread and at most 64 KiB of framing).
const MAX_CONNECTIONS: usize = 1024;

pub(crate) struct StreamListener {
    listener: TcpListener,
    url: String,
}

/// IANA protocol number of SCTP.
const IPPROTO_SCTP: i32 = 132;

pub(crate) fn bind(
    l: &Listener,
    tls: Option<&TlsConfig>,
) -> Result<StreamListener, CollectorError> {
    let err = |message: String| CollectorError::Listen {
        url: l.url.clone(),
        message,
    };
    if l.kind == ListenerKind::IpfixTls {
        let _ = tls;
        return Err(err(
            "IPFIX over TLS is not available in this build yet; use ipfix+tcp:// behind a TLS terminator (stunnel, haproxy)".into(),
        ));
    }
    let proto = if l.kind == ListenerKind::IpfixSctp {
        Protocol::from(IPPROTO_SCTP)
    } else {
        Protocol::TCP
    };
    let s = Socket::new(Domain::for_address(l.addr), Type::STREAM, Some(proto)).map_err(|e| {
        if l.kind == ListenerKind::IpfixSctp {
            err(format!(
                "this kernel has no SCTP support ({e}); load it with `modprobe sctp` (package linux-modules-extra on some distributions), or have exporters use ipfix+tcp:// or UDP"
            ))
        } else {
            err(format!("cannot create a socket: {e}"))
        }
    })?;
    let _ = s.set_reuse_address(true);
    s.bind(&l.addr.into()).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (another program is using this port)",
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        };
        err(format!("cannot bind {}{hint}: {e}", l.addr))
    })?;
    s.listen(128)
        .map_err(|e| err(format!("cannot listen: {e}")))?;
    s.set_nonblocking(true)
        .map_err(|e| err(format!("cannot set non-blocking: {e}")))?;
    Ok(StreamListener {
        listener: s.into(),
        url: l.url.clone(),
    })
}

impl StreamListener {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts connections until `stop`; each gets its own thread.
    pub(crate) fn run(
        self,
        workers: Vec<SyncSender<Chunk>>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) {
        let active = Arc::new(AtomicUsize::new(0));
        let mut conns = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((s, peer)) => {
                    if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                        tracing::warn!(listener = %self.url, %peer, "too many IPFIX connections; refusing this one");
                        continue;
                    }
                    Counters::add(&shared.counters.stream_connections, 1);
                    active.fetch_add(1, Ordering::Relaxed);
                    let (w, sh, st, a) = (
                        workers.clone(),
                        shared.clone(),
                        stop.clone(),
                        active.clone(),
                    );
                    let url = self.url.clone();
                    match crate::spawn(format!("fs-conn-{peer}"), move || {
                        connection(s, peer, &url, &w, &sh, &st);
                        a.fetch_sub(1, Ordering::Relaxed);
                    }) {
                        Ok(h) => conns.push(h),
                        Err(e) => tracing::warn!(error = %e, "cannot start a connection thread"),
                    }
                    conns.retain(|h| !h.is_finished());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    tracing::warn!(listener = %self.url, error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        for h in conns {
            let _ = h.join();
        }
    }
}

fn connection(
    mut s: TcpStream,
    peer: SocketAddr,
    url: &str,
    workers: &[SyncSender<Chunk>],
    shared: &Shared,
    stop: &AtomicBool,
) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let exporter = peer.ip().to_canonical();
    let w = worker_of(exporter, workers.len());
    let c = &shared.counters;
    let mut framing = IpfixStream::new();
    let mut buf = vec![0u8; 64 * 1024];
    tracing::info!(listener = url, %peer, "IPFIX stream connected");
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(listener = url, %peer, error = %e, "IPFIX stream read failed");
                Counters::add(&c.stream_errors, 1);
                break;
            }
        };
        framing.push(&buf[..n]);
        let mut chunk = Chunk::default();
        let now = now_ns();
        loop {
            match framing.next_message() {
                Ok(Some(m)) => chunk.push(exporter, now, &m),
                Ok(None) => break,
                Err(why) => {
                    // RFC 7011 s10.4.1: a stream that lost its framing cannot be resynchronized.
                    tracing::warn!(listener = url, %peer, error = why, "closing IPFIX stream");
                    Counters::add(&c.stream_errors, 1);
                    Counters::add(&c.decode_errors, 1);
                    let _ = send(workers, w, chunk, c);
                    return;
                }
            }
        }
        if !chunk.items.is_empty() && send(workers, w, chunk, c).is_err() {
            return;
        }
    }
    tracing::info!(listener = url, %peer, "IPFIX stream closed");
}

fn send(
    workers: &[SyncSender<Chunk>],
    w: usize,
    chunk: Chunk,
    c: &crate::metrics::Counters,
) -> Result<(), ()> {
    Counters::add(&c.datagrams, chunk.items.len() as u64);
    Counters::add(&c.bytes, chunk.data.len() as u64);
    workers[w].send(chunk).map_err(|_| ())
}
