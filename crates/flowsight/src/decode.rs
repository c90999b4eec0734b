//! `flowsight decode FILE.pcap`: flows of a capture as goflow2-layout NDJSON or a table.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use flowsight_capture::{CaptureIssue, Extractor, read_frames};
use flowsight_schema::{FlowBatch, FlowRecord, addr_to_ip, flow_type, proto_name};
use flowsight_wire::{Decoder, Format};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Output layouts.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// One goflow2-layout JSON object per line.
    Ndjson,
    /// A human-readable table.
    Table,
    /// CSV (statistics: nfdump's columns ts,te,td,pr,val,fl,flP,pkt,pktP,byt,bytP,pps,bps,bpp).
    Csv,
}

/// Summary layouts.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    /// Aligned text.
    Text,
    /// One JSON object.
    Json,
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// pcap or pcapng file of exported datagrams (UDP; IPFIX also over TCP).
    pub file: PathBuf,
    /// nfdump-style filter, e.g. 'proto tcp and dst port 443' (see docs/filters.md).
    pub filter: Option<String>,
    /// Print how the filter was compiled, and exit.
    #[arg(long)]
    pub explain: bool,
    /// Statistic instead of flows, nfdump style: KEY[/ORDER], e.g. srcip/bytes, dstport,
    /// proto/packets (keys: srcip dstip ip srcport dstport port proto srcas dstas as inif outif
    /// router tos flags vlan; orders: flows packets bytes pps bps bpp).
    #[arg(short = 's', long = "stat")]
    pub stat: Option<String>,
    /// Rows of the statistic.
    #[arg(short = 'n', default_value_t = 10)]
    pub top: usize,
    /// Output layout of the flows.
    #[arg(short, long, value_enum, default_value = "ndjson")]
    pub output: Output,
    /// Print totals instead of flows: flows, packets, bytes, per-format counts, errors.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    pub summary: Option<SummaryFormat>,
    /// Print at most this many error lines (all are counted in the summary).
    #[arg(long, default_value_t = 20)]
    pub max_errors: usize,
}

#[derive(Default, serde::Serialize)]
struct FormatTotals {
    datagrams: u64,
    flows: u64,
    packets: u64,
    bytes: u64,
}

#[derive(Default, serde::Serialize)]
struct Summary {
    frames: u64,
    datagrams: u64,
    flows: u64,
    packets: u64,
    bytes: u64,
    /// Bytes and packets scaled by each record's sampling rate.
    scaled_packets: u64,
    scaled_bytes: u64,
    formats: BTreeMap<&'static str, FormatTotals>,
    decode_errors: u64,
    errors_by_kind: BTreeMap<&'static str, u64>,
    capture_errors: u64,
    frames_skipped: u64,
    not_flow_exports: u64,
    unknown_template_sets: u64,
    unknown_template_sets_dropped: u64,
    templates: usize,
    options_records: u64,
    sflow_counter_samples: u64,
    sequence_lost: u64,
}

pub fn run(a: DecodeArgs) -> Result<()> {
    let filter = match &a.filter {
        Some(f) => {
            flowsight_query::filter::parse(f).map_err(|e| anyhow::anyhow!("\n{}", e.render()))?
        }
        None => flowsight_query::filter::Expr::Any,
    };
    if a.explain {
        println!("{filter}");
        return Ok(());
    }
    let stat = match &a.stat {
        Some(s) => Some(
            flowsight_query::stats::parse_spec(s).map_err(|e| anyhow::anyhow!("-s {s}: {e}"))?,
        ),
        None => None,
    };
    // Flows kept for the statistic (only when one is asked for).
    let mut kept = FlowBatch::default();
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let (frames, mut issues) =
        read_frames(&bytes).with_context(|| format!("{}", a.file.display()))?;
    let mut dec = Decoder::default();
    let mut ex = Extractor::default();
    let mut batch = FlowBatch::default();
    let mut sum = Summary {
        frames: frames.len() as u64,
        ..Summary::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = String::with_capacity(1024);
    let mut errors_printed = 0usize;
    let report = |msg: String, printed: &mut usize| {
        if *printed < a.max_errors {
            eprintln!("flowsight: {}: {msg}", a.file.display());
        } else if *printed == a.max_errors {
            eprintln!(
                "flowsight: {}: further errors are not printed (counted in --summary)",
                a.file.display()
            );
        }
        *printed += 1;
    };
    for issue in issues.drain(..) {
        sum.capture_errors += 1;
        report(
            format!("file offset {}: {}", issue.offset, issue.message),
            &mut errors_printed,
        );
    }
    if a.output == Output::Table && a.summary.is_none() {
        writeln!(
            out,
            "{:<23} {:<10} {:<5} {:>41} -> {:<41} {:>8} {:>10} {:>15}",
            "start", "type", "proto", "src", "dst", "packets", "bytes", "exporter"
        )?;
    }
    for f in &frames {
        let mut cap_issues: Vec<CaptureIssue> = Vec::new();
        let payloads = ex.extract(f, &mut cap_issues);
        for issue in cap_issues {
            sum.capture_errors += 1;
            report(
                format!("file offset {}: {}", issue.offset, issue.message),
                &mut errors_printed,
            );
        }
        for p in payloads {
            if flowsight_wire::detect(&p.data).is_none() {
                sum.not_flow_exports += 1;
                continue;
            }
            sum.datagrams += 1;
            batch.clear();
            match dec.decode(p.src, p.ts_ns, &p.data, &mut batch) {
                Ok(_) => {}
                Err(e) => {
                    *sum.errors_by_kind.entry(e.kind()).or_default() += 1;
                    sum.decode_errors += 1;
                    report(
                        format!("frame {} (file offset {}): {e}", p.frame, p.offset),
                        &mut errors_printed,
                    );
                }
            }
            for (i, r) in batch.iter().enumerate() {
                if !filter.matches(&batch, i) {
                    continue;
                }
                account(&mut sum, &r);
                if stat.is_some() {
                    kept.push(&r);
                    continue;
                }
                if a.summary.is_none() {
                    line.clear();
                    match a.output {
                        Output::Ndjson => r.write_json(&mut line),
                        Output::Table | Output::Csv => table_row(&r, &mut line),
                    }
                    line.push('\n');
                    out.write_all(line.as_bytes())?;
                }
            }
            if let Some(fmt) = flowsight_wire::detect(&p.data) {
                sum.formats.entry(fmt.name()).or_default().datagrams += 1;
            }
        }
    }
    dec.flush_pending();
    let st = dec.stats();
    sum.frames_skipped = ex.skipped;
    sum.unknown_template_sets = st.unknown_template_sets;
    sum.unknown_template_sets_dropped = st.pending_dropped_sets;
    sum.templates = dec.template_count();
    sum.options_records = st.options_records;
    sum.sflow_counter_samples = st.sflow_counter_samples;
    sum.sequence_lost = dec.sequences().iter().map(|(_, s)| s.lost).sum();
    if let Some((key, order)) = stat {
        let st = flowsight_query::stats::compute(
            &kept,
            &flowsight_query::filter::Expr::Any,
            key,
            order,
            a.top,
        );
        if a.output == Output::Csv {
            out.write_all(st.to_csv().as_bytes())?;
        } else {
            out.write_all(st.to_table().as_bytes())?;
        }
    }
    match a.summary {
        None => {}
        Some(SummaryFormat::Json) => {
            serde_json::to_writer_pretty(&mut out, &sum)?;
            writeln!(out)?;
        }
        Some(SummaryFormat::Text) => write_summary(&mut out, &sum)?,
    }
    out.flush()?;
    Ok(())
}

fn account(sum: &mut Summary, r: &FlowRecord) {
    sum.flows += 1;
    sum.packets += r.packets;
    sum.bytes += r.bytes;
    sum.scaled_packets += r.scaled_packets();
    sum.scaled_bytes += r.scaled_bytes();
    let name = match r.flow_type {
        flow_type::NETFLOW_V1 => Format::NetflowV1,
        flow_type::NETFLOW_V5 => Format::NetflowV5,
        flow_type::NETFLOW_V7 => Format::NetflowV7,
        flow_type::NETFLOW_V9 => Format::NetflowV9,
        flow_type::IPFIX => Format::Ipfix,
        _ => Format::Sflow5,
    }
    .name();
    let f = sum.formats.entry(name).or_default();
    f.flows += 1;
    f.packets += r.packets;
    f.bytes += r.bytes;
}

fn write_summary(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "Summary: flows: {}, packets: {}, bytes: {}",
        s.flows, s.packets, s.bytes
    )?;
    if s.scaled_bytes != s.bytes || s.scaled_packets != s.packets {
        writeln!(
            out,
            "Scaled by sampling rate: packets: {}, bytes: {}",
            s.scaled_packets, s.scaled_bytes
        )?;
    }
    writeln!(
        out,
        "Frames: {}, export datagrams/messages: {}, other frames: {}",
        s.frames,
        s.datagrams,
        s.frames_skipped + s.not_flow_exports
    )?;
    for (name, f) in &s.formats {
        writeln!(
            out,
            "  {name:<11} datagrams: {:>8}  flows: {:>10}  packets: {:>12}  bytes: {:>15}",
            f.datagrams, f.flows, f.packets, f.bytes
        )?;
    }
    writeln!(
        out,
        "Templates: {}, options records: {}, sFlow counter samples: {}",
        s.templates, s.options_records, s.sflow_counter_samples
    )?;
    writeln!(
        out,
        "Errors: decode: {}, capture: {}, data sets before their template: {} ({} never decoded), sequence loss: {}",
        s.decode_errors,
        s.capture_errors,
        s.unknown_template_sets,
        s.unknown_template_sets_dropped,
        s.sequence_lost
    )?;
    Ok(())
}

fn table_row(r: &FlowRecord, out: &mut String) {
    use std::fmt::Write as _;
    let ip = |a| addr_to_ip(a).map_or_else(|| "-".to_string(), |i| i.to_string());
    let ep = |a, p: u16| {
        let i = ip(a);
        if i.contains(':') {
            format!("[{i}]:{p}")
        } else {
            format!("{i}:{p}")
        }
    };

    let proto = proto_name(r.proto).map_or_else(|| r.proto.to_string(), str::to_string);
    let _ = write!(
        out,
        "{:<23} {:<10} {:<5} {:>41} -> {:<41} {:>8} {:>10} {:>15}",
        flowsight_query::utc_time(r.time_flow_start_ns),
        flow_type::name(r.flow_type),
        proto,
        ep(&r.src_addr, r.src_port),
        ep(&r.dst_addr, r.dst_port),
        r.packets,
        r.bytes,
        ip(&r.sampler_address)
    );
}
