//! `flowsight geo lookup`: what every enrichment source says about addresses, and what a flow
//! would store, for debugging `[enrich]` configurations.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use flowsight_collector::config::Config;
use flowsight_enrich::{Databases, EnrichConfig};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct GeoArgs {
    #[command(subcommand)]
    pub command: GeoCommand,
}

#[derive(Subcommand, Debug)]
pub enum GeoCommand {
    /// Look addresses up in every configured source, in order, and print what each says.
    Lookup(LookupArgs),
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Configuration file whose [enrich] section to use. Default: ./flowsight.toml when it
    /// exists.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// GeoIP .mmdb file, repeatable (added after the configured ones).
    #[arg(long, value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
    /// ASN .mmdb or range .csv, repeatable (added after the configured ones).
    #[arg(long, value_name = "FILE")]
    pub asn: Vec<PathBuf>,
    /// Networks file (replaces the configured one).
    #[arg(long, value_name = "FILE")]
    pub networks: Option<PathBuf>,
    /// Addresses to look up.
    #[arg(required = true, value_name = "ADDR")]
    pub addrs: Vec<String>,
}

pub fn run(a: GeoArgs) -> Result<()> {
    match a.command {
        GeoCommand::Lookup(l) => lookup(l),
    }
}

fn lookup(a: LookupArgs) -> Result<()> {
    let mut cfg: EnrichConfig = Config::load(a.config.as_deref())?.enrich;
    cfg.geoip.extend(a.geoip);
    cfg.asn.extend(a.asn);
    if a.networks.is_some() {
        cfg.networks = a.networks;
    }
    let mut ips = Vec::new();
    for s in &a.addrs {
        let ip: IpAddr = s
            .parse()
            .with_context(|| format!("`{s}` is not an IPv4 or IPv6 address"))?;
        ips.push(ip);
    }
    let (dbs, problems) = Databases::load(&cfg);
    for p in &problems {
        eprintln!("flowsight: warning: {p} (left out)");
    }
    if dbs.is_empty() && !problems.is_empty() {
        bail!("no enrichment source could be loaded");
    }
    for ip in ips {
        println!("{ip}");
        for line in dbs.explain(ip) {
            println!("  {line}");
        }
    }
    Ok(())
}
