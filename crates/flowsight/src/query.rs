//! `flowsight query`: nfdump-style queries over the embedded store.

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use flowsight_query::aggregate::{AggKey, AggOrder, AggRow, parse_keys, parse_order};
use flowsight_query::engine::{Embedded, Engine, Query, ScanInfo, TimeRange, Totals};
use flowsight_query::filter::{Expr, parse};
use flowsight_query::stats::{Stat, parse_spec};
use flowsight_query::utc_time;
use flowsight_schema::{FlowBatch, FlowRecord, addr_to_ip, proto_name};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Output layouts.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum QueryOutput {
    /// One line per flow, nfdump's default layout.
    Line,
    /// `line` plus TCP flags, ToS, interfaces and exporter.
    Long,
    /// One JSON array (goflow2 layout for flows).
    Json,
    /// One goflow2-layout JSON object per line.
    Ndjson,
    /// CSV with nfdump's column names.
    Csv,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Data directory written by `flowsight serve`.
    #[arg(long, value_name = "DIR", default_value = "flowsight-data")]
    pub data: PathBuf,
    /// nfdump-style filter, e.g. 'proto tcp and dst port 443' (see docs/filters.md).
    pub filter: Vec<String>,
    /// Statistic, nfdump style: KEY[/ORDER] (keys: srcip dstip ip srcport dstport port proto
    /// srcas dstas as inif outif router tos flags vlan; orders: flows packets bytes pps bps
    /// bpp). Repeatable.
    #[arg(short = 's', long = "stat", value_name = "KEY[/ORDER]")]
    pub stat: Vec<String>,
    /// Rows of each statistic, 0 for all (or of the aggregation).
    #[arg(short = 'n', value_name = "N")]
    pub top: Option<usize>,
    /// Aggregate flows by these keys, e.g. srcip,dstport or srcip4/24.
    #[arg(short = 'A', value_name = "KEYS")]
    pub aggregate: Option<String>,
    /// Order of listed or aggregated flows: tstart, tend, flows, packets, bytes, pps, bps, bpp.
    #[arg(short = 'O', value_name = "ORDER")]
    pub order: Option<String>,
    /// Time window of flow starts, nfdump style: yyyy/MM/dd.hh:mm:ss[-yyyy/MM/dd.hh:mm:ss] (UTC).
    #[arg(short = 't', value_name = "WINDOW")]
    pub window: Option<String>,
    /// Flows starting at or after this time (2026-11-22T10:00:00Z, 1h for an hour ago, ...).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Flows starting before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// List at most this many flows.
    #[arg(short = 'c', value_name = "N")]
    pub limit: Option<usize>,
    /// Output layout.
    #[arg(short, long, value_enum, default_value = "line")]
    pub output: QueryOutput,
    /// Plain numbers (no K/M/G scaling) in line/long output.
    #[arg(short = 'N')]
    pub plain: bool,
    /// No header and no summary.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Show how the filter compiled, the columns and time range read, and the files scanned.
    #[arg(long)]
    pub explain: bool,
}

fn scaled(v: u64, plain: bool) -> String {
    if plain || v < 1_000_000 {
        return v.to_string();
    }
    let (d, u) = if v >= 1_000_000_000_000 {
        (1e12, "T")
    } else if v >= 1_000_000_000 {
        (1e9, "G")
    } else {
        (1e6, "M")
    };
    format!("{:.1} {u}", v as f64 / d)
}

pub(crate) fn time_range(a: &QueryArgs) -> Result<TimeRange> {
    let now = flowsight_store::now_ns();
    let mut r = TimeRange::ALL;
    if let Some(w) = &a.window {
        r = flowsight_query::time::parse_window(w).map_err(|e| anyhow!("-t: {e}"))?;
    }
    if let Some(s) = &a.since {
        r.since = r
            .since
            .max(flowsight_query::time::parse_point(s, now).map_err(|e| anyhow!("--since: {e}"))?);
    }
    if let Some(u) = &a.until {
        r.until = r
            .until
            .min(flowsight_query::time::parse_point(u, now).map_err(|e| anyhow!("--until: {e}"))?);
    }
    if r.until <= r.since {
        bail!("the time range is empty: it ends before it starts");
    }
    Ok(r)
}

pub fn run(a: QueryArgs) -> Result<()> {
    let text = a.filter.join(" ");
    let filter = if text.trim().is_empty() {
        Expr::Any
    } else {
        parse(&text).map_err(|e| anyhow!("bad filter\n{}", e.render()))?
    };
    let stats = a
        .stat
        .iter()
        .map(|s| parse_spec(s).map_err(|e| anyhow!("-s {s}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let agg: Option<Vec<AggKey>> = match &a.aggregate {
        Some(k) => Some(parse_keys(k).map_err(|e| anyhow!("-A: {e}"))?),
        None => None,
    };
    let order = match &a.order {
        Some(o) => parse_order(o).map_err(|e| anyhow!("-O: {e}"))?,
        None => AggOrder::Tstart,
    };
    let range = time_range(&a)?;
    let engine = Embedded::open(&a.data)?;
    let q = Query { filter, range };
    if a.explain {
        return explain(&engine, &q);
    }
    let started = std::time::Instant::now();
    let bar = crate::progress_bar(None, "{spinner} querying {elapsed}");
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut s = String::new();
    let report: ScanInfo;
    if !stats.is_empty() {
        let mut last = ScanInfo::default();
        // nfdump: -n 0 lists every value.
        let n = match a.top.unwrap_or(10) {
            0 => usize::MAX,
            n => n,
        };
        for (key, ord) in &stats {
            let (st, rep) = engine.stat(&q, *key, *ord, n)?;
            bar.suspend(|| ());
            render_stat(&a, &st, &mut s);
            last = rep;
        }
        report = last;
    } else if let Some(keys) = &agg {
        let (rows, tot, rep) = engine.aggregate(&q, keys, order, a.top.or(a.limit))?;
        render_agg(&a, keys, &rows, &mut s);
        if !a.quiet && matches!(a.output, QueryOutput::Line | QueryOutput::Long) {
            summary(&tot, &mut s, a.plain);
        }
        report = rep;
    } else {
        // In start order the engine keeps only the first `-c` flows per scan part; another
        // order needs them all before sorting.
        let by_start = a.order.is_none() || order == AggOrder::Tstart;
        let (mut flows, tot, rep) =
            engine.flows(&q, None, if by_start { a.limit } else { None }, None)?;
        if a.order.is_some() && order != AggOrder::Tstart {
            sort_flows(&mut flows, order);
        }
        if let Some(l) = a.limit {
            flows.truncate(l);
        }
        render_flows(&a, &flows, &mut s);
        if !a.quiet && matches!(a.output, QueryOutput::Line | QueryOutput::Long) {
            summary(&tot, &mut s, a.plain);
        }
        report = rep;
    }
    bar.finish_and_clear();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    if !a.quiet && matches!(a.output, QueryOutput::Line | QueryOutput::Long) {
        eprintln!(
            "Files read: {} of {}, rows read: {}, time: {:.3}s",
            report.files_read,
            report.files_total,
            report.rows_read,
            started.elapsed().as_secs_f64()
        );
    }
    for q in &report.quarantined {
        eprintln!(
            "flowsight: warning: an unreadable store file was moved to {} and left out",
            q.display()
        );
    }
    Ok(())
}

fn explain(engine: &Embedded, q: &Query) -> Result<()> {
    let mut cols = Vec::new();
    q.filter.columns(&mut cols);
    println!("filter:  {}", q.filter);
    println!(
        "columns: {}",
        if cols.is_empty() {
            "(none: matches every flow)".to_string()
        } else {
            cols.join(", ")
        }
    );
    let show = |t: u64, open: &str| {
        if t == 0 || t == u64::MAX {
            open.to_string()
        } else {
            utc_time(t)
        }
    };
    println!(
        "range:   flows starting in [{}, {})",
        show(q.range.since, "-inf"),
        show(q.range.until, "+inf")
    );
    let files = engine.store().files()?;
    let scanned = files
        .iter()
        .filter(|f| q.range.is_all() || q.range.overlaps(f.min_start, f.max_start))
        .count();
    println!(
        "files:   {scanned} of {} would be read (the others are outside the time range)",
        files.len()
    );
    Ok(())
}

fn sort_flows(b: &mut FlowBatch, order: AggOrder) {
    let mut idx: Vec<u32> = (0..b.len() as u32).collect();
    let rate = |v: u64, i: usize| {
        let d = b.time_flow_end_ns[i].saturating_sub(b.time_flow_start_ns[i]);
        if d == 0 {
            0
        } else {
            (v as f64 * 1e9 / d as f64) as u64
        }
    };
    idx.sort_by_key(|&i| {
        let i = i as usize;
        std::cmp::Reverse(match order {
            AggOrder::Tstart => u64::MAX - b.time_flow_start_ns[i],
            AggOrder::Tend => u64::MAX - b.time_flow_end_ns[i],
            AggOrder::Flows => 1,
            AggOrder::Packets => b.packets[i],
            AggOrder::Bytes => b.bytes[i],
            AggOrder::Pps => rate(b.packets[i], i),
            AggOrder::Bps => rate(b.bytes[i] * 8, i),
            AggOrder::Bpp => b.bytes[i].checked_div(b.packets[i]).unwrap_or(0),
        })
    });
    *b = b.take(&idx);
}

fn ip(a: &[u8; 16]) -> String {
    addr_to_ip(a).map_or_else(|| "0.0.0.0".to_string(), |i| i.to_string())
}

fn endpoint(a: &[u8; 16], p: u16) -> String {
    let i = ip(a);
    if i.contains(':') {
        format!("{i}.{p}")
    } else {
        format!("{i}:{p}")
    }
}

fn flags(f: u16) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (128, 'C'),
        (64, 'E'),
        (32, 'U'),
        (16, 'A'),
        (8, 'P'),
        (4, 'R'),
        (2, 'S'),
        (1, 'F'),
    ] {
        s.push(if f & bit != 0 { c } else { '.' });
    }
    s
}

fn proto(p: u8) -> String {
    proto_name(p).map_or_else(|| p.to_string(), str::to_string)
}

fn render_flows(a: &QueryArgs, b: &FlowBatch, s: &mut String) {
    match a.output {
        QueryOutput::Ndjson => b.write_ndjson(s),
        QueryOutput::Json => {
            s.push('[');
            for (i, r) in b.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push('\n');
                r.write_json(s);
            }
            s.push_str("\n]\n");
        }
        QueryOutput::Csv => {
            s.push_str("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,in,out,sas,das,smk,dmk,nh,nhb,svln,dvln,ra\n");
            for r in b.iter() {
                let _ = writeln!(
                    s,
                    "{},{},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    utc_time(r.time_flow_start_ns),
                    utc_time(r.time_flow_end_ns),
                    dur(&r),
                    ip(&r.src_addr),
                    ip(&r.dst_addr),
                    r.src_port,
                    r.dst_port,
                    proto(r.proto),
                    flags(r.tcp_flags),
                    r.forwarding_status,
                    r.ip_tos,
                    r.packets,
                    r.bytes,
                    r.in_if,
                    r.out_if,
                    r.src_as,
                    r.dst_as,
                    r.src_net,
                    r.dst_net,
                    ip(&r.next_hop),
                    ip(&r.bgp_next_hop),
                    r.src_vlan,
                    r.dst_vlan,
                    ip(&r.sampler_address),
                );
            }
        }
        QueryOutput::Line | QueryOutput::Long => {
            let long = a.output == QueryOutput::Long;
            if !a.quiet {
                let _ = write!(
                    s,
                    "{:<23} {:>9} {:<5} {:>45} -> {:<45}",
                    "Date first seen", "Duration", "Proto", "Src IP Addr:Port", "Dst IP Addr:Port"
                );
                if long {
                    let _ = write!(s, " {:<8} {:>3} {:>5} {:>5}", "Flags", "Tos", "In", "Out");
                }
                let _ = writeln!(s, " {:>8} {:>8} {:>5}", "Packets", "Bytes", "Flows");
            }
            for r in b.iter() {
                let _ = write!(
                    s,
                    "{:<23} {:>9.3} {:<5} {:>45} -> {:<45}",
                    utc_time(r.time_flow_start_ns),
                    dur(&r),
                    proto(r.proto),
                    endpoint(&r.src_addr, r.src_port),
                    endpoint(&r.dst_addr, r.dst_port),
                );
                if long {
                    let _ = write!(
                        s,
                        " {:<8} {:>3} {:>5} {:>5}",
                        flags(r.tcp_flags),
                        r.ip_tos,
                        r.in_if,
                        r.out_if
                    );
                }
                let _ = writeln!(
                    s,
                    " {:>8} {:>8} {:>5}",
                    scaled(r.packets, a.plain),
                    scaled(r.bytes, a.plain),
                    1
                );
            }
        }
    }
}

fn dur(r: &FlowRecord) -> f64 {
    r.time_flow_end_ns.saturating_sub(r.time_flow_start_ns) as f64 / 1e9
}

fn summary(t: &Totals, s: &mut String, plain: bool) {
    let span = if t.flows == 0 {
        0.0
    } else {
        t.last_ns.saturating_sub(t.first_ns) as f64 / 1e9
    };
    let (bps, pps) = if span > 0.0 {
        (
            (t.bytes as f64 * 8.0 / span) as u64,
            (t.packets as f64 / span) as u64,
        )
    } else {
        (0, 0)
    };
    let _ = writeln!(
        s,
        "Summary: total flows: {}, total bytes: {}, total packets: {}, avg bps: {}, avg pps: {}, avg bpp: {}",
        t.flows,
        scaled(t.bytes, plain),
        scaled(t.packets, plain),
        scaled(bps, plain),
        scaled(pps, plain),
        t.bytes.checked_div(t.packets).unwrap_or(0)
    );
    if t.flows > 0 {
        let _ = writeln!(
            s,
            "Time window: {} - {}",
            utc_time(t.first_ns),
            utc_time(t.last_ns)
        );
    }
}

fn render_stat(a: &QueryArgs, st: &Stat, s: &mut String) {
    match a.output {
        QueryOutput::Csv => s.push_str(&st.to_csv()),
        QueryOutput::Json | QueryOutput::Ndjson => {
            let rows: Vec<serde_json::Value> = st
                .rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "value": r.value, "flows": r.flows, "packets": r.packets, "bytes": r.bytes,
                        "first": utc_time(r.first_ns), "last": utc_time(r.last_ns),
                        "pps": r.pps(), "bps": r.bps(), "bpp": r.bpp(),
                    })
                })
                .collect();
            let v = serde_json::json!({
                "stat": format!("{:?}", st.key).to_lowercase(),
                "rows": rows,
                "totals": {"flows": st.totals.0, "packets": st.totals.1, "bytes": st.totals.2},
            });
            let _ = writeln!(s, "{v}");
        }
        QueryOutput::Line | QueryOutput::Long => {
            if !a.quiet {
                let _ = writeln!(
                    s,
                    "Top {} {} ordered by the requested metric:",
                    st.rows.len(),
                    st.key
                );
            }
            let t = st.to_table();
            if a.quiet {
                // Drop the header and the summary line.
                let lines: Vec<&str> = t.lines().collect();
                for l in lines.iter().skip(1).take(lines.len().saturating_sub(2)) {
                    let _ = writeln!(s, "{l}");
                }
            } else {
                s.push_str(&t);
            }
        }
    }
}

fn render_agg(a: &QueryArgs, keys: &[AggKey], rows: &[AggRow], s: &mut String) {
    let names: Vec<String> = keys.iter().map(AggKey::name).collect();
    match a.output {
        QueryOutput::Csv => {
            let _ = writeln!(s, "ts,te,td,{},fl,pkt,byt,pps,bps,bpp", names.join(","));
            for r in rows {
                let _ = writeln!(
                    s,
                    "{},{},{:.3},{},{},{},{},{},{},{}",
                    utc_time(r.first_ns),
                    utc_time(r.last_ns),
                    r.duration_s(),
                    r.key
                        .iter()
                        .map(|k| flowsight_query::csv_field(k))
                        .collect::<Vec<_>>()
                        .join(","),
                    r.flows,
                    r.packets,
                    r.bytes,
                    r.pps(),
                    r.bps(),
                    r.bpp()
                );
            }
        }
        QueryOutput::Json | QueryOutput::Ndjson => {
            let objs: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    for (n, v) in names.iter().zip(&r.key) {
                        o.insert(n.clone(), serde_json::Value::String(v.clone()));
                    }
                    o.insert("flows".into(), r.flows.into());
                    o.insert("packets".into(), r.packets.into());
                    o.insert("bytes".into(), r.bytes.into());
                    o.insert("first".into(), utc_time(r.first_ns).into());
                    o.insert("last".into(), utc_time(r.last_ns).into());
                    serde_json::Value::Object(o)
                })
                .collect();
            if a.output == QueryOutput::Json {
                let _ = writeln!(s, "{}", serde_json::Value::Array(objs));
            } else {
                for o in objs {
                    let _ = writeln!(s, "{o}");
                }
            }
        }
        QueryOutput::Line | QueryOutput::Long => {
            if !a.quiet {
                let _ = write!(s, "{:<23} {:>9}", "Date first seen", "Duration");
                for n in &names {
                    let _ = write!(s, " {n:>20}");
                }
                let _ = writeln!(
                    s,
                    " {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
                    "Flows", "Packets", "Bytes", "pps", "bps", "bpp"
                );
            }
            for r in rows {
                let _ = write!(s, "{:<23} {:>9.3}", utc_time(r.first_ns), r.duration_s());
                for v in &r.key {
                    let _ = write!(s, " {v:>20}");
                }
                let _ = writeln!(
                    s,
                    " {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
                    scaled(r.flows, a.plain),
                    scaled(r.packets, a.plain),
                    scaled(r.bytes, a.plain),
                    scaled(r.pps(), a.plain),
                    scaled(r.bps(), a.plain),
                    r.bpp()
                );
            }
        }
    }
}
