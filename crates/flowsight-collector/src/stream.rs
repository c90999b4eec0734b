//! IPFIX over streams: TCP (RFC 7011 s10.4), TLS over TCP (s11) and SCTP (s10.2), one thread
//! per connection, messages split by the header's length field and handed to the exporter's
//! worker.

use crate::config::TlsConfig;
use crate::metrics::{Counters, Shared};
use crate::queue::WorkerTx;
use crate::{Chunk, CollectorError, Listener, ListenerKind, now_ns, worker_of};
use flowsight_wire::IpfixStream;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Concurrent connections per listener (each costs a thread and at most 64 KiB of framing).
const MAX_CONNECTIONS: usize = 1024;

pub(crate) struct StreamListener {
    listener: TcpListener,
    url: String,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Loads the certificate chain and key (PEM) into a TLS server configuration; errors name the
/// file and what is wrong with it.
fn tls_config(t: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.cert {}: {e}", t.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.cert {}: no PEM certificate in it",
            t.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| {
        format!(
            "tls.key {}: {e} (a PEM private key is needed)",
            t.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(Arc::new)
        .map_err(|e| format!("tls: the key does not fit the certificate or is unsupported: {e}"))
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
    let tls = if l.kind == ListenerKind::IpfixTls {
        let t = tls.ok_or_else(|| {
            err("needs [tls] cert = \"...\" and key = \"...\" in the configuration".into())
        })?;
        Some(tls_config(t).map_err(err)?)
    } else {
        None
    };
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
        tls,
    })
}

impl StreamListener {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts connections until `stop`; each gets its own thread.
    pub(crate) fn run(self, workers: Vec<WorkerTx>, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
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
                    let tls = self.tls.clone();
                    match crate::spawn(format!("fs-conn-{peer}"), move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        match tls.map(rustls::ServerConnection::new) {
                            None => connection(s, peer, &url, &w, &sh, &st),
                            Some(Ok(c)) => {
                                connection(rustls::StreamOwned::new(c, s), peer, &url, &w, &sh, &st)
                            }
                            Some(Err(e)) => {
                                tracing::warn!(listener = %url, %peer, error = %e, "TLS session setup failed");
                                Counters::add(&sh.counters.stream_errors, 1);
                            }
                        }
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
    mut s: impl Read,
    peer: SocketAddr,
    url: &str,
    workers: &[WorkerTx],
    shared: &Shared,
    stop: &AtomicBool,
) {
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
    workers: &[WorkerTx],
    w: usize,
    chunk: Chunk,
    c: &crate::metrics::Counters,
) -> Result<(), ()> {
    Counters::add(&c.datagrams, chunk.items.len() as u64);
    Counters::add(&c.bytes, chunk.data.len() as u64);
    workers[w].send(chunk)
}
