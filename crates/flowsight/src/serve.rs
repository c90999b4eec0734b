//! `flowsight serve`: the collector daemon. Receives flow exports, stores them in the embedded
//! store, and serves the portal, the REST API (`flowsight-web`) and metrics over HTTP.

use anyhow::{Context, Result};
use clap::Args;
use flowsight_collector::Config;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuration file (TOML). Default: ./flowsight.toml when it exists.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Listener URL, repeatable; replaces the configured list. `netflow://ADDR:PORT` (NetFlow
    /// v1/v5/v7/v9 and IPFIX over UDP), `sflow://ADDR:PORT`, `ipfix+tcp://ADDR:PORT`,
    /// `ipfix+tls://ADDR:PORT` (certificate and key under [tls] in the config file),
    /// `ipfix+sctp://ADDR:PORT`.
    #[arg(long = "listen", value_name = "URL")]
    pub listen: Vec<String>,
    /// Data directory of the embedded store.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// HTTP address for /metrics and the API (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Decode workers (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// How often buffered flows are written to disk (e.g. 1s; at most 5s).
    #[arg(long, value_name = "DURATION")]
    pub flush_interval: Option<String>,
    /// Validate the configuration, print the effective one, and exit.
    #[arg(long)]
    pub check: bool,
    /// Demo mode: the generator feeds the collector background traffic and an attack every
    /// few minutes over loopback. Unless given, data goes to ./flowsight-demo-data and the
    /// only listener is netflow://127.0.0.1:0, so a demo never mixes with real flows.
    #[arg(long)]
    pub demo: bool,
}

fn effective_config(a: &ServeArgs) -> Result<Config> {
    let mut cfg = Config::load(a.config.as_deref())?;
    if a.demo {
        cfg.listen = vec!["netflow://127.0.0.1:0".into()];
        cfg.data = PathBuf::from("flowsight-demo-data");
    }
    if !a.listen.is_empty() {
        cfg.listen = a.listen.clone();
    }
    if let Some(d) = &a.data {
        cfg.data = d.clone();
    }
    if let Some(h) = &a.http {
        cfg.http = h.clone();
    }
    if let Some(w) = a.workers {
        cfg.workers = w;
    }
    if let Some(f) = &a.flush_interval {
        cfg.store.flush_interval = f.clone();
    }
    Ok(cfg)
}

pub fn run(a: ServeArgs) -> Result<()> {
    let cfg = effective_config(&a)?;
    let settings = cfg.validate()?;
    if a.check {
        print!("# effective configuration (valid)\n{}", cfg.to_toml());
        return Ok(());
    }
    crate::init_logging();

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }

    let http = std::net::TcpListener::bind(settings.http).with_context(|| {
        format!(
            "cannot bind the HTTP address {} (in use? pick another with --http ADDR)",
            settings.http
        )
    })?;
    let running = flowsight_collector::start(&settings)?;
    for (l, addr) in &running.bound {
        let scheme = l.url.split("://").next().unwrap_or("udp");
        eprintln!("flowsight: listening on {scheme}://{addr}");
    }
    let http_addr = http.local_addr()?;
    eprintln!("flowsight: http on http://{http_addr} (metrics at /metrics)");
    eprintln!("flowsight: storing flows in {}", settings.data.display());
    let demo = if a.demo {
        let target = running
            .bound
            .iter()
            .find(|(l, _)| l.kind == flowsight_collector::ListenerKind::Netflow)
            .map(|(_, addr)| {
                let ip = if addr.ip().is_unspecified() {
                    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
                } else {
                    addr.ip()
                };
                std::net::SocketAddr::new(ip, addr.port())
            })
            .context("--demo needs a netflow:// listener for the generator to feed")?;
        eprintln!(
            "flowsight: demo: generating {} flows/s plus attacks into {target}; open http://{http_addr}/",
            crate::demo::RATE
        );
        let st = stop.clone();
        Some(
            std::thread::Builder::new()
                .name("fs-demo".into())
                .spawn(move || {
                    if let Err(e) = crate::demo::feed(target, st) {
                        tracing::error!("demo generator stopped: {e:#}");
                    }
                })
                .context("cannot start the demo generator")?,
        )
    } else {
        None
    };

    // The API reads the store the collector writes (opened once it exists).
    let api = flowsight_web::Api::open(&settings.data, Some(running.shared.clone()))
        .context("cannot open the store for the API")?
        .with_access(settings.api_tokens.clone(), settings.users.clone());
    if settings.prewarm {
        api.prewarm_in_background(std::time::Duration::from_secs(5))
            .context("cannot start the portal prewarm thread")?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fs-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let http_stop = Arc::new(tokio::sync::Notify::new());
    let hs = http_stop.clone();
    let server = rt.spawn(async move {
        http.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(http)?;
        axum::serve(l, flowsight_web::router(api))
            .with_graceful_shutdown(async move { hs.notified().await })
            .await
    });

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if server.is_finished() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(d) = demo {
        let _ = d.join();
    }
    tracing::info!("shutting down: draining workers, flushing the store, saving templates");
    running.shutdown();
    http_stop.notify_waiters();
    let res = rt
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), server).await });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Ok(Ok(Err(e))) = res {
        return Err(anyhow::Error::new(e).context("HTTP server failed"));
    }
    eprintln!("flowsight: stopped");
    Ok(())
}
