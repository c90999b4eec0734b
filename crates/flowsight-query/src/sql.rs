//! Ad-hoc SQL over the embedded store, with Apache DataFusion.
//!
//! Tables: `flows` (every flow column of the schema registry, plus the `date` and `hour`
//! partition columns) and, when they exist, `rollup_1m`, `rollup_5m`, `rollup_1h`. Addresses
//! are 16-byte binaries (IPv4 as `::ffff:a.b.c.d`); results render them as addresses.
//!
//! ```no_run
//! # async fn f() -> Result<(), flowsight_query::engine::QueryError> {
//! let batches = flowsight_query::sql::run(
//!     std::path::Path::new("/var/lib/flowsight"),
//!     "SELECT proto, sum(bytes) AS bytes FROM flows GROUP BY proto ORDER BY bytes DESC",
//! )
//! .await?;
//! print!("{}", flowsight_query::sql::to_table(&batches));
//! # Ok(()) }
//! ```

use crate::engine::QueryError;
use datafusion::arrow::array::{Array, FixedSizeBinaryArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use std::path::Path;

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        QueryError::Invalid(format!("SQL: {e}"))
    }
}

/// Runs `query` over the store at `dir` and returns its result batches.
pub async fn run(dir: &Path, query: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let store = flowsight_store::Store::open_read(dir)?;
    let ctx = SessionContext::new();
    let partitions = vec![
        ("date".to_string(), DataType::Utf8),
        ("hour".to_string(), DataType::Utf8),
    ];
    let flows_schema = flowsight_schema::arrow::sql_schema();
    let mut tables = vec![("flows", store.flows_dir())];
    for t in ["rollup_1m", "rollup_5m", "rollup_1h"] {
        let p = dir.join(t);
        if p.is_dir() {
            tables.push((t, p));
        }
    }
    for (name, path) in tables {
        // A table over an empty directory has no schema to infer: skip it until it has files.
        let has_files = store.files().map(|f| !f.is_empty()).unwrap_or(false) || name != "flows";
        if !has_files {
            continue;
        }
        let url = format!("{}/", path.display());
        let opts = ParquetReadOptions::default().table_partition_cols(partitions.clone());
        // Files store times as timestamps of the unit each needs (older ones as ns
        // numbers): the registry's schema gives SQL one type, UTC timestamps in ns, and
        // every column, whichever files have it.
        let opts = if name == "flows" {
            opts.schema(&flows_schema)
        } else {
            opts
        };
        ctx.register_parquet(name, &url, opts).await?;
    }
    let df = ctx.sql(query).await?;
    Ok(df.collect().await?)
}

/// The cells of a result as strings, addresses rendered as IP addresses.
pub fn cells(batches: &[RecordBatch]) -> (Vec<String>, Vec<Vec<String>>) {
    let header: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    let opts = FormatOptions::default().with_null("");
    for b in batches {
        let fmts: Vec<Option<ArrayFormatter<'_>>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).ok())
            .collect();
        for i in 0..b.num_rows() {
            let mut row = Vec::with_capacity(b.num_columns());
            for (j, c) in b.columns().iter().enumerate() {
                let addr = c
                    .as_any()
                    .downcast_ref::<FixedSizeBinaryArray>()
                    .filter(|a| a.value_length() == 16 && !a.is_null(i));
                let cell = match (addr, &fmts[j]) {
                    (Some(a), _) => {
                        let mut x = [0u8; 16];
                        x.copy_from_slice(a.value(i));
                        flowsight_schema::addr_to_ip(&x)
                            .map_or_else(String::new, |ip| ip.to_string())
                    }
                    (None, Some(f)) => f.value(i).to_string(),
                    (None, None) => String::new(),
                };
                row.push(cell);
            }
            rows.push(row);
        }
    }
    (header, rows)
}

/// An aligned text table.
pub fn to_table(batches: &[RecordBatch]) -> String {
    let (header, rows) = cells(batches);
    let mut w: Vec<usize> = header.iter().map(String::len).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&format!("{c:<width$}", width = w[i]));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut s = line(&header);
    for r in &rows {
        s.push_str(&line(r));
    }
    s
}

/// CSV with a header line (fields with commas or quotes are quoted).
pub fn to_csv(batches: &[RecordBatch]) -> String {
    let (header, rows) = cells(batches);
    let q = |c: &String| crate::csv_field(c).into_owned();
    let mut s = header.iter().map(q).collect::<Vec<_>>().join(",") + "\n";
    for r in &rows {
        s.push_str(&(r.iter().map(q).collect::<Vec<_>>().join(",") + "\n"));
    }
    s
}

/// One JSON object per row (numbers stay numbers when they parse as such).
pub fn to_ndjson(batches: &[RecordBatch]) -> String {
    let (header, rows) = cells(batches);
    let mut s = String::new();
    for r in &rows {
        let mut o = serde_json::Map::new();
        for (k, v) in header.iter().zip(r) {
            let val = v
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| v.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::String(v.clone()));
            o.insert(k.clone(), val);
        }
        s.push_str(&serde_json::Value::Object(o).to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{TimeUnit, TimestampNanosecondType};
    use flowsight_schema::{FlowBatch, FlowRecord};

    // 2026-11-22T10:00:00Z
    const T0: u64 = 1_795_341_600_000_000_000;

    fn batch(starts: &[u64]) -> FlowBatch {
        let mut b = FlowBatch::default();
        for &t in starts {
            b.push(&FlowRecord {
                time_flow_start_ns: t,
                time_flow_end_ns: t + 1_000_000,
                bytes: 1,
                ..FlowRecord::default()
            });
        }
        b
    }

    /// SQL sees every file's times as ns timestamps: the store's files (ms here) and
    /// files written before times were timestamps (plain ns numbers).
    #[test]
    fn times_are_ns_timestamps_whatever_unit_a_file_stores() {
        let dir = tempfile::tempdir().unwrap();
        let store = flowsight_store::Store::open(dir.path()).unwrap();
        let new: Vec<u64> = (0..10).map(|i| T0 + i * 1_000_000).collect();
        store
            .write(batch(&new), T0, &flowsight_store::WriteOptions::default())
            .unwrap()
            .unwrap();
        let old: Vec<u64> = (0..5).map(|i| T0 + 123_456_789 + i).collect();
        let rb = batch(&old).into_record_batch();
        let part = dir.path().join("flows/date=2026-11-22/hour=10");
        let path = part.join(format!("f-{}-{}-5-old.parquet", old[0], old[4]));
        let f = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, rb.schema(), None).unwrap();
        w.write(&rb).unwrap();
        w.close().unwrap();

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt
            .block_on(run(
                dir.path(),
                "SELECT time_flow_start_ns FROM flows ORDER BY time_flow_start_ns",
            ))
            .unwrap();
        let mut got = Vec::new();
        for b in &out {
            let c = b.column(0);
            assert_eq!(
                c.data_type(),
                &datafusion::arrow::datatypes::DataType::Timestamp(
                    TimeUnit::Nanosecond,
                    Some("UTC".into())
                )
            );
            let t = c.as_primitive::<TimestampNanosecondType>();
            assert_eq!(t.null_count(), 0);
            got.extend(t.values().iter().map(|&v| v as u64));
        }
        let mut want: Vec<u64> = new.iter().chain(&old).copied().collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
