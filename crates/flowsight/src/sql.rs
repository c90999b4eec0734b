//! `flowsight sql`: ad-hoc SQL over the store (Apache DataFusion).

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;

/// Output layouts.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SqlOutput {
    /// Aligned columns.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per row.
    Json,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// Data directory written by `flowsight serve`.
    #[arg(long, value_name = "DIR", default_value = "flowsight-data")]
    pub data: PathBuf,
    /// The query. Tables: flows, rollup_1m, rollup_5m, rollup_1h (column names: `flowsight
    /// schema`).
    pub query: String,
    /// Output layout.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: SqlOutput,
}

pub fn run(a: SqlArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the query runtime")?;
    let batches = rt.block_on(flowsight_query::sql::run(&a.data, &a.query))?;
    let text = match a.output {
        SqlOutput::Table => flowsight_query::sql::to_table(&batches),
        SqlOutput::Csv => flowsight_query::sql::to_csv(&batches),
        SqlOutput::Json => flowsight_query::sql::to_ndjson(&batches),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())?;
    Ok(())
}
