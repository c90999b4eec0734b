//! `flowsight`: NetFlow / IPFIX / sFlow collector and traffic analyzer.

mod decode;
mod demo;
mod generate;
mod geo;
mod query;
mod replay;
mod schema_cmd;
mod serve;
mod sql;
mod token;
mod user;

use anyhow::Result;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "flowsight",
    version,
    about = "NetFlow / IPFIX / sFlow collector and traffic analyzer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode flow exports captured in a pcap/pcapng file and print the flows.
    Decode(decode::DecodeArgs),
    /// Run the collector: receive flow exports, store them, serve metrics over HTTP.
    Serve(serve::ServeArgs),
    /// Query the stored flows, nfdump style: filters, -s statistics, -A aggregation.
    Query(query::QueryArgs),
    /// Ad-hoc SQL over the stored flows (Apache DataFusion).
    Sql(sql::SqlArgs),
    /// Send synthetic flow exports (background traffic and attack scenarios) to collectors
    /// and/or a pcap, with the exact ground truth of what was sent.
    Generate(generate::GenerateArgs),
    /// Resend the flow exports of a capture to collectors.
    Replay(replay::ReplayArgs),
    /// Print the flow field registry (columns, types, goflow2 JSON names, meanings).
    Schema(schema_cmd::SchemaArgs),
    /// Enrichment tools: `geo lookup ADDR` shows what every configured source says.
    Geo(geo::GeoArgs),
    /// API tokens: `token new` makes one and prints the hashed line for flowsight.toml.
    Token(token::TokenArgs),
    /// Portal logins: `user add NAME` prints the `[[users]]` entry with the password hashed.
    User(user::UserArgs),
}

/// Lets freed memory wait 10 s, not mimalloc's 1 s, before it goes back to the kernel. A
/// batch of flows lives about a second from decode to written file at high rates, so with
/// the default its pages were returned and the next batches faulted fresh, zeroed pages
/// back in: 262 000 - 276 000 page faults (~1 GB) per 12 M flows against 119 000 - 148 000
/// (bench/cpu.sh at 1.2 M flows/s). Memory stays bounded by the queues; it is only returned
/// later. `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3); the Rust bindings
    // have no constant for it.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // Not thread safe: called first thing in `main`, before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 10_000);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let res: Result<()> = match cli.command {
        Command::Decode(a) => decode::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Query(a) => query::run(a),
        Command::Sql(a) => sql::run(a),
        Command::Schema(a) => schema_cmd::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Geo(a) => geo::run(a),
        Command::Token(a) => token::run(a),
        Command::User(a) => user::run(a),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`| head`) is not an error worth reporting.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return std::process::ExitCode::SUCCESS;
            }
            eprintln!("flowsight: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr; `RUST_LOG` sets the level (default `info`), and
/// `FLOWSIGHT_LOG=json` switches to one JSON object per line for log shippers.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("FLOWSIGHT_LOG").as_deref() == Ok("json") {
        b.json().try_init()
    } else {
        b.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// A progress bar on stderr when it is a terminal, hidden otherwise (CI logs, pipes).
pub(crate) fn progress_bar(len: Option<u64>, template: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    b.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}
