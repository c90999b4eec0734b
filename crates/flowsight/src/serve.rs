//! `flowsight serve`: receives flow exports on UDP and writes each flow as a goflow2-layout
//! JSON line. The embedded store, query CLI and portal build on this (see the issues).

use anyhow::{Context, Result, bail};
use clap::Args;
use flowsight_schema::FlowBatch;
use flowsight_wire::Decoder;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Listener URL: `netflow://ADDR:PORT` (NetFlow v1/v5/v7/v9 and IPFIX over UDP, detected
    /// per datagram) or `sflow://ADDR:PORT`. Repeatable.
    #[arg(long = "listen", default_values = ["netflow://0.0.0.0:2055", "sflow://0.0.0.0:6343"])]
    pub listen: Vec<String>,
    /// Stop after this many datagrams (all listeners together); 0: run until killed.
    #[arg(long, default_value_t = 0)]
    pub max_datagrams: u64,
}

fn parse_listen(url: &str) -> Result<SocketAddr> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!(
            "listener `{url}` is not a URL: write it as netflow://0.0.0.0:2055 or sflow://0.0.0.0:6343"
        );
    };
    match scheme {
        "netflow" | "sflow" | "ipfix" => rest.parse().with_context(|| {
            format!("listener `{url}`: `{rest}` is not ADDR:PORT (e.g. 0.0.0.0:2055)")
        }),
        other => bail!(
            "listener `{url}`: scheme `{other}` is not supported here; use netflow:// or sflow:// (UDP)"
        ),
    }
}

pub fn run(a: ServeArgs) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(SocketAddr, u64, Vec<u8>)>(4096);
    for url in &a.listen {
        let addr = parse_listen(url)?;
        let sock = UdpSocket::bind(addr).with_context(|| {
            format!("cannot listen on {addr} for `{url}` (port in use, or a privileged port without root?)")
        })?;
        eprintln!("flowsight: listening on udp://{}", sock.local_addr()?);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                if tx.send((from, now, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut dec = Decoder::default();
    let mut batch = FlowBatch::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = String::with_capacity(1024);
    let mut n = 0u64;
    let mut errors = 0u64;
    while let Ok((from, ts, data)) = rx.recv() {
        batch.clear();
        if let Err(e) = dec.decode(from.ip(), ts, &data, &mut batch) {
            errors += 1;
            // Rate-limited: the first few, then every 1000th.
            if errors <= 10 || errors.is_multiple_of(1000) {
                eprintln!("flowsight: decode error #{errors}: {e}");
            }
        }
        line.clear();
        batch.write_ndjson(&mut line);
        out.write_all(line.as_bytes())?;
        // Flush per datagram so a pipe reader sees flows as they arrive.
        out.flush()?;
        n += 1;
        if a.max_datagrams != 0 && n >= a.max_datagrams {
            break;
        }
    }
    out.flush()?;
    Ok(())
}
