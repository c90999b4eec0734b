//! flowsight's collector: receives flow exports, decodes them, and writes them to the store.
//!
//! # Data path
//!
//! ```text
//! UDP socket(s) ──recvmmsg──▶ receiver thread ─┐   (one per listener × `receivers`,
//!                                              │    SO_REUSEPORT, SO_RXQ_OVFL counted)
//! TCP/TLS/SCTP ──IPFIX framing──▶ conn thread ─┤
//!                                              ▼ hash(exporter address) % workers
//!                                   decode worker (owns a Decoder: templates, sampling,
//!                                   sequence state of *its* exporters) ──FlowBatch──▶
//!                                   store thread (buffer, flush every flush_interval,
//!                                   atomic Parquet files) ; upkeep thread (compaction,
//!                                   retention, template snapshots)
//! ```
//!
//! Every datagram of one exporter reaches the same worker (the hash is of the exporter
//! address only, not the source port), so its templates stay coherent without locks. Channels
//! are bounded (the receivers' queues by bytes, `receive_queue`): when the store or the
//! workers fall behind, receivers block, the kernel buffer fills and the kernel's drops are
//! counted — nothing is dropped silently in user space.
//!
//! Shutdown ([`Running::shutdown`]) stops the receivers, lets the workers drain, flushes the
//! store and saves the templates, so a restart loses nothing the exporters still rely on.

pub mod config;
pub mod metrics;
mod queue;
mod sink;
mod stream;
mod udp;
mod worker;

pub use config::{Config, Listener, ListenerKind, Settings};
pub use metrics::{ExporterStats, Shared};

use flowsight_wire::TemplateSnapshot;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Errors of the collector layer.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The configuration is invalid (each problem on its own line).
    #[error("invalid configuration:\n{0}")]
    Config(String),
    /// A listener could not be started.
    #[error("listener `{url}`: {message}")]
    Listen {
        /// The listener URL.
        url: String,
        /// What failed and how to fix it.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] flowsight_store::StoreError),
    /// A thread could not be started.
    #[error("cannot start thread {name}: {source}")]
    Thread {
        /// Thread name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// One datagram (or stream message) handed to a worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub exporter: IpAddr,
    pub received_ns: u64,
    pub start: u32,
    pub len: u32,
}

/// Datagrams for one worker, sharing one buffer.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub data: Vec<u8>,
    pub items: Vec<Item>,
}

impl Chunk {
    pub(crate) fn push(&mut self, exporter: IpAddr, received_ns: u64, bytes: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.items.push(Item {
            exporter,
            received_ns,
            start,
            len: bytes.len() as u32,
        });
    }
}

/// The worker owning an exporter: a fixed hash of its address (stable across restarts, so
/// restored templates land where their exporter's datagrams will).
pub(crate) fn worker_of(ip: IpAddr, workers: usize) -> usize {
    let a = flowsight_schema::addr_from_ip(ip);
    // FNV-1a: tiny, deterministic, good enough to spread addresses.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in a {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % workers.max(1) as u64) as usize
}

pub(crate) fn now_ns() -> u64 {
    flowsight_store::now_ns()
}

pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
    name: String,
    f: F,
) -> Result<JoinHandle<()>, CollectorError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|source| CollectorError::Thread { name, source })
}

/// Counts and logs an event at most a few times, then once per interval with the number
/// suppressed: hot-path failures become metrics, not log floods.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    logged: u64,
    suppressed: u64,
    last: Option<std::time::Instant>,
}

impl RateLimit {
    /// Whether to log now; `Some(n)` carries how many were suppressed since the last line.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self.logged < 10
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(10))
        {
            self.logged += 1;
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// Where the template snapshot lives in the data directory.
pub fn templates_path(data: &std::path::Path) -> PathBuf {
    data.join("state").join("templates.json")
}

/// A started collector.
#[derive(Debug)]
pub struct Running {
    /// Statistics, for the HTTP side.
    pub shared: Arc<Shared>,
    /// The bound address of each listener, in configuration order (port 0 resolved).
    pub bound: Vec<(Listener, SocketAddr)>,
    stop: Arc<AtomicBool>,
    receivers: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    sink: Option<JoinHandle<()>>,
    upkeep: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    snapshots: Arc<Mutex<Vec<TemplateSnapshot>>>,
    data: PathBuf,
}

/// Turns transparent huge pages off for this process.
///
/// Why: column buffers are allocated by the workers and freed by the store's threads, so the
/// allocator keeps asking for fresh memory, and with THP each first touch faulted in and
/// zeroed a 2 MiB page: two thirds of a decode worker's time with every enrichment source
/// (perf, `clear_page_erms`), and 18% of all CPU without (10.8 s instead of 13.2 s for
/// 6 M flows at 500k/s; 13.1 s instead of 18.1 s enriched; BENCHMARKS.md).
fn no_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "cannot turn transparent huge pages off");
    }
}

/// Starts listeners, workers and the store writer.
pub fn start(settings: &Settings) -> Result<Running, CollectorError> {
    no_huge_pages();
    let store = flowsight_store::Store::open(&settings.data)?;
    let enrich = if settings.enrich.is_empty() {
        None
    } else {
        let (e, problems) = flowsight_enrich::Shared::new(settings.enrich.clone());
        for p in &problems {
            tracing::warn!(error = %p, "enrichment source left out; flowsight runs without it");
        }
        for d in e.current().describe() {
            tracing::info!(source = %d, "enrichment source loaded");
        }
        Some(e)
    };
    let shared = Arc::new(Shared {
        enrich: enrich.clone(),
        ..Shared::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let snapshots = Arc::new(Mutex::new(vec![
        TemplateSnapshot::default();
        settings.workers
    ]));

    // Bind everything first: a bad listener fails the start before any thread runs.
    let mut udp_socks = Vec::new();
    let mut stream_socks = Vec::new();
    let mut bound = Vec::new();
    for l in &settings.listeners {
        match l.kind {
            ListenerKind::Netflow | ListenerKind::Sflow => {
                let socks = udp::bind(
                    l,
                    settings.receivers,
                    settings.socket_buffer,
                    settings.udp_gro,
                )?;
                let addr = socks
                    .first()
                    .and_then(|s| s.local_addr().ok())
                    .unwrap_or(l.addr);
                bound.push((l.clone(), addr));
                udp_socks.push((l.clone(), socks));
            }
            _ => {
                let s = stream::bind(l, settings.tls.as_ref())?;
                bound.push((l.clone(), s.local_addr()));
                stream_socks.push(s);
            }
        }
    }

    let restore = load_templates(&settings.data);
    // 32 batches of up to 16k flows: about half a second at 1M flows/s.
    let (sink_tx, sink_rx) = std::sync::mpsc::sync_channel(32);
    let mut worker_txs = Vec::new();
    let mut workers = Vec::new();
    let queues = queue::channels(settings.workers, settings.receive_queue, shared.clone());
    for (id, (tx, rx)) in queues.into_iter().enumerate() {
        worker_txs.push(tx);
        let ctx = worker::WorkerCtx::new(
            id,
            settings,
            rx,
            sink_tx.clone(),
            shared.clone(),
            snapshots.clone(),
            &restore,
        );
        workers.push(spawn(format!("fs-worker-{id}"), move || worker::run(ctx))?);
    }
    drop(sink_tx);
    let sink = sink::Sink::new(store.clone(), settings, shared.clone());
    let sink = spawn("fs-store".into(), move || sink.run(sink_rx))?;

    let mut receivers = Vec::new();
    for (l, socks) in udp_socks {
        for (i, s) in socks.into_iter().enumerate() {
            let r = udp::Receiver::new(s, worker_txs.clone(), shared.clone(), stop.clone());
            receivers.push(spawn(format!("fs-udp-{}-{i}", l.addr.port()), move || {
                r.run()
            })?);
        }
    }
    for s in stream_socks {
        let txs = worker_txs.clone();
        let (sh, st) = (shared.clone(), stop.clone());
        receivers.push(spawn(
            format!("fs-accept-{}", s.local_addr().port()),
            move || {
                s.run(txs, sh, st);
            },
        )?);
    }
    drop(worker_txs);

    let upkeep_stop = Arc::new(AtomicBool::new(false));
    let up = sink::Upkeep::new(
        store,
        settings,
        shared.clone(),
        snapshots.clone(),
        upkeep_stop.clone(),
    );
    let upkeep = spawn("fs-upkeep".into(), move || up.run())?;

    Ok(Running {
        shared,
        bound,
        stop,
        receivers,
        workers,
        sink: Some(sink),
        upkeep: Some((upkeep, upkeep_stop)),
        snapshots,
        data: settings.data.clone(),
    })
}

fn load_templates(data: &std::path::Path) -> TemplateSnapshot {
    let p = templates_path(data);
    match std::fs::read(&p) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "template snapshot unreadable; starting without saved templates (exporters will resend theirs)");
                TemplateSnapshot::default()
            }
        },
        Err(_) => TemplateSnapshot::default(),
    }
}

/// Writes the template snapshot atomically.
pub(crate) fn save_templates(data: &std::path::Path, snaps: &[TemplateSnapshot]) {
    let mut all = TemplateSnapshot::default();
    for s in snaps {
        all.templates.extend(s.templates.iter().cloned());
    }
    let p = templates_path(data);
    let res = (|| -> std::io::Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = p.with_extension("json.tmp");
        let body = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &p)
    })();
    if let Err(e) = res {
        tracing::warn!(file = %p.display(), error = %e, "cannot save the template snapshot");
    }
}

impl Running {
    /// Whether [`Running::shutdown`] was requested by a thread that failed.
    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops receiving, drains the workers, flushes the store and saves templates.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.receivers.drain(..) {
            let _ = h.join();
        }
        // Receivers dropped their senders: workers drain their queues and exit.
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.sink.take() {
            let _ = h.join();
        }
        if let Some((h, stop)) = self.upkeep.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = h.join();
        }
        if let Ok(s) = self.snapshots.lock() {
            save_templates(&self.data, &s);
        }
    }
}
