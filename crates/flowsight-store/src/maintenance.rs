//! Background upkeep: crash recovery, compaction and retention.

use crate::files::{FileKind, FileMeta, partition_files, partitions};
use crate::scan::quarantine;
use crate::write::{Prepared, WriteOptions, write_in};
use crate::{Store, StoreError, io_err};
use flowsight_schema::FlowBatch;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A compaction in progress: written (synced) before the output is renamed into place and
/// removed after the inputs are deleted. If the output exists, the inputs are stale.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub(crate) output: String,
    pub(crate) inputs: Vec<String>,
}

impl Journal {
    pub(crate) fn read(path: &Path) -> Option<Journal> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Finishes or rolls back what a crash interrupted: deletes hidden temporaries, and for each
/// compaction journal deletes the inputs (output in place) or just the journal (it is not).
pub(crate) fn recover(store: &Store) -> Result<(), StoreError> {
    for (_, dir) in partitions(store)? {
        let entries = std::fs::read_dir(&dir).map_err(io_err("list directory", &dir))?;
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::info!(file = %path.display(), "removing a temporary left by an interrupted write");
                let _ = std::fs::remove_file(&path);
            } else if name.starts_with(".compact-") && name.ends_with(".json") {
                if let Some(j) = Journal::read(&path)
                    && dir.join(&j.output).exists()
                {
                    for i in &j.inputs {
                        let _ = std::fs::remove_file(dir.join(i));
                    }
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

/// What compaction merges.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only flush files older than this (by their partition's write time) are merged, so the
    /// files of the current few seconds stay as they are.
    pub min_age_ns: u64,
    /// Rows per compacted file (bounds compaction's memory: every row of a group is held and
    /// sorted at once). Flush files of at least an eighth of this are left as they are: at
    /// high rates flushes are already large, and rewriting every flow would cost as much
    /// again as writing it.
    pub target_rows: u64,
    /// A compacted file holds flows of at most this much flow-start time (its flush files'
    /// earliest starts fall in one window of this width): a query whose time range cuts
    /// through a file reads the whole file, so files stay short in time as well as in rows.
    pub max_span_ns: u64,
    /// Encoding.
    pub write: WriteOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            min_age_ns: 60_000_000_000,
            target_rows: 4_000_000,
            max_span_ns: 300_000_000_000,
            write: WriteOptions::default(),
        }
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Files merged away.
    pub inputs: usize,
    /// Files written.
    pub outputs: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Inputs found unreadable and quarantined.
    pub quarantined: usize,
}

fn file_age_ns(path: &Path, now_ns: u64) -> u64 {
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now_ns, |d| d.as_nanos() as u64);
    now_ns.saturating_sub(mtime)
}

fn read_whole(path: &Path) -> Result<FlowBatch, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| e.to_string())?;
    let mut out = FlowBatch::default();
    for rb in reader {
        let rb = rb.map_err(|e| e.to_string())?;
        let mut b = FlowBatch::from_record_batch(&rb)?;
        // Files without an enrichment column merge with files having it: `append` fills the
        // gap with defaults, and a column no input has stays out of the output too.
        out.append(&mut b);
    }
    Ok(out)
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Merges old flush files, partition by partition, into time-sorted, zstd-compressed files
/// of about `target_rows` rows. Safe against crashes at any point (see [`Journal`]) and
/// against concurrent readers (they skip inputs a journal marks as replaced).
pub fn compact(
    store: &Store,
    opts: &CompactOptions,
    now_ns: u64,
) -> Result<CompactReport, StoreError> {
    let mut rep = CompactReport::default();
    for (pns, dir) in partitions(store)? {
        let flushes: Vec<FileMeta> = partition_files(&dir, pns)?
            .into_iter()
            .filter(|f| {
                f.kind == FileKind::Flush
                    && f.rows < opts.target_rows.div_ceil(8)
                    && file_age_ns(&f.path, now_ns) >= opts.min_age_ns
            })
            .collect();
        // Groups of consecutive files up to target_rows, within one window of max_span_ns.
        let mut groups: Vec<Vec<FileMeta>> = Vec::new();
        let mut rows = 0;
        let span = opts.max_span_ns.max(1);
        let mut window = u64::MAX;
        for f in flushes {
            if groups.is_empty() || rows + f.rows > opts.target_rows || f.min_start / span != window
            {
                window = f.min_start / span;
                groups.push(Vec::new());
                rows = 0;
            }
            rows += f.rows;
            if let Some(g) = groups.last_mut() {
                g.push(f);
            }
        }
        for g in groups.into_iter().filter(|g| g.len() > 1) {
            compact_group(store, &dir, pns, &g, opts, &mut rep)?;
        }
    }
    Ok(rep)
}

fn compact_group(
    store: &Store,
    dir: &Path,
    pns: u64,
    group: &[FileMeta],
    opts: &CompactOptions,
    rep: &mut CompactReport,
) -> Result<(), StoreError> {
    let mut all = FlowBatch::default();
    let mut inputs = Vec::new();
    for f in group {
        match read_whole(&f.path) {
            Ok(mut b) => {
                all.append(&mut b);
                inputs.push(name_of(&f.path));
            }
            Err(why) => {
                if quarantine(store, &f.path, &why).is_some() {
                    rep.quarantined += 1;
                }
            }
        }
    }
    if inputs.len() < 2 {
        return Ok(());
    }
    let mut idx: Vec<u32> = (0..all.len() as u32).collect();
    idx.sort_by_key(|&i| all.time_flow_start_ns[i as usize]);
    let sorted = all.take(&idx);
    drop(all);
    let rows = sorted.len() as u64;
    // The journal naming the output and its inputs is on disk before the output becomes
    // visible: a crash before the rename rolls back (no output), after it rolls forward
    // (inputs deleted), and readers never count a row twice.
    let mut journal = PathBuf::new();
    let sync = opts.write.sync;
    let mut hook = |name: &str| -> Result<(), StoreError> {
        journal = dir.join(format!(".compact-{name}.json"));
        let j = Journal {
            output: name.to_string(),
            inputs: inputs.clone(),
        };
        let body = serde_json::to_vec(&j).unwrap_or_default();
        std::fs::write(&journal, body).map_err(io_err("write journal", &journal))?;
        if sync {
            std::fs::File::open(&journal)
                .and_then(|f| f.sync_all())
                .map_err(io_err("sync journal", &journal))?;
        }
        Ok(())
    };
    // Written under the partition's own time so it stays in this partition.
    if write_in(
        dir,
        &Prepared::new(sorted),
        pns,
        FileKind::Compacted,
        &opts.write,
        &mut hook,
    )?
    .is_none()
    {
        return Ok(());
    }
    for i in &inputs {
        let p = dir.join(i);
        std::fs::remove_file(&p).map_err(io_err("remove compacted input", &p))?;
    }
    let _ = std::fs::remove_file(&journal);
    rep.inputs += inputs.len();
    rep.outputs += 1;
    rep.rows += rows;
    Ok(())
}

/// What retention removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Files deleted.
    pub files: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Rows deleted.
    pub rows: u64,
}

/// Deletes whole partitions older than `max_age_ns` (by partition hour end), then the oldest
/// files until the store is at most `max_bytes`.
pub fn enforce_retention(
    store: &Store,
    max_age_ns: Option<u64>,
    max_bytes: Option<u64>,
    now_ns: u64,
) -> Result<RetentionReport, StoreError> {
    let mut rep = RetentionReport::default();
    let mut files = store.files()?;
    let remove = |f: &FileMeta, rep: &mut RetentionReport| {
        if std::fs::remove_file(&f.path).is_ok() {
            rep.files += 1;
            rep.bytes += f.size;
            rep.rows += f.rows;
        }
    };
    if let Some(age) = max_age_ns {
        let cutoff = now_ns.saturating_sub(age);
        // The 1-minute rollups age out with the flows; the 5-minute and hourly ones are
        // small and kept for long-range views.
        let m1 = store.root().join(crate::Tier::M1.dir());
        for (ns, dir) in crate::files::partitions_in(&m1)? {
            if ns + 3_600_000_000_000 <= cutoff {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        files.retain(|f| {
            let expired = f.partition_ns + 3_600_000_000_000 <= cutoff;
            if expired {
                remove(f, &mut rep);
            }
            !expired
        });
    }
    if let Some(limit) = max_bytes {
        let mut total: u64 = files.iter().map(|f| f.size).sum();
        for f in &files {
            if total <= limit {
                break;
            }
            total -= f.size;
            remove(f, &mut rep);
        }
    }
    // Drop partition directories left empty.
    for (_, dir) in partitions(store)? {
        let _ = std::fs::remove_dir(&dir);
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(rep)
}
