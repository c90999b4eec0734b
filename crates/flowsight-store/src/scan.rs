//! Parallel, projected, time-pruned reads.

use crate::files::FileMeta;
use crate::{Store, StoreError, TimeRange, io_err};
use arrow_array::{Array, BooleanArray, RecordBatch};
use flowsight_schema::arrow::{ns_per_unit, stored_ns_per_unit};
use flowsight_schema::{Addr, FlowBatch, Physical};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use parquet::basic::Encoding;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::Statistics;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a scan read and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Live files in the store.
    pub files_total: usize,
    /// Files read.
    pub files_read: usize,
    /// Row groups skipped by their time statistics.
    pub row_groups_skipped: usize,
    /// Rows read.
    pub rows_read: u64,
    /// Files found unreadable and moved to the quarantine directory.
    pub quarantined: Vec<PathBuf>,
    /// Files that disappeared while the scan ran (replaced by compaction or retention).
    pub vanished: usize,
}

/// The per-worker accumulators of a scan, and its report.
#[derive(Debug)]
pub struct ScanOutput<A> {
    /// One accumulator per worker thread.
    pub parts: Vec<A>,
    /// What was read.
    pub report: ScanReport,
}

/// An address column read as its file's dictionary: per row, an index into `values`.
///
/// Dictionary-encoded chunks (what the store writes for addresses that repeat) are read
/// this way when a scan asks for a key column: a statistic sums per index and looks each
/// distinct address up once per file instead of once per row.
#[derive(Debug, Default)]
pub struct DictKeys {
    /// Per row of the batch, an index into `values` (always in bounds).
    pub keys: Vec<u32>,
    /// The file's dictionaries (one per row group, concatenated: a value may repeat).
    pub values: Vec<Addr>,
    /// Changes with `values` (another file); equal generations mean equal dictionaries.
    pub generation: u64,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl DictKeys {
    /// The addresses of the rows, into `out`.
    fn materialize(&self, out: &mut Vec<Addr>) {
        out.clear();
        out.extend(self.keys.iter().map(|&k| self.values[k as usize]));
    }
}

/// Whether every data page of `c` is dictionary-encoded (a chunk that fell back to PLAIN
/// pages has no indices to hand out).
fn all_dictionary(c: &ColumnChunkMetaData) -> bool {
    if c.dictionary_page_offset().is_none() {
        return false;
    }
    let dict = |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    if let Some(mask) = c.page_encoding_stats_mask() {
        return mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY);
    }
    c.page_encoding_stats().is_some_and(|stats| {
        stats
            .iter()
            .all(|s| s.page_type == parquet::basic::PageType::DICTIONARY_PAGE || dict(s.encoding))
    })
}

/// The address columns a scan can read as keys.
const KEY_COLUMNS: [&str; 5] = [
    "src_addr",
    "dst_addr",
    "sampler_address",
    "next_hop",
    "bgp_next_hop",
];

/// The batch's address column `name`, one of [`KEY_COLUMNS`].
fn addr_column<'a>(b: &'a mut FlowBatch, name: &str) -> Option<&'a mut Vec<Addr>> {
    match name {
        "src_addr" => Some(&mut b.src_addr),
        "dst_addr" => Some(&mut b.dst_addr),
        "sampler_address" => Some(&mut b.sampler_address),
        "next_hop" => Some(&mut b.next_hop),
        "bgp_next_hop" => Some(&mut b.bgp_next_hop),
        _ => None,
    }
}

enum FileError {
    Vanished,
    Corrupt(String),
}

fn stat_range(s: &Statistics) -> Option<(u64, u64)> {
    match s {
        // UInt64 is stored as INT64 with an unsigned logical type.
        Statistics::Int64(v) => Some((*v.min_opt()? as u64, *v.max_opt()? as u64)),
        _ => None,
    }
}

/// Reads one file. With `key` (an address column), that column is also read, as
/// [`DictKeys`] where every selected chunk of it is dictionary-encoded (the batch's column
/// is then filled only if `columns` names it), else as plain values like the others.
#[allow(clippy::too_many_arguments)]
fn read_file(
    path: &Path,
    range: TimeRange,
    columns: &[&str],
    key: Option<&str>,
    f: &mut dyn FnMut(&FlowBatch, Option<&DictKeys>),
    report: &mut ScanReport,
    scratch: &mut crate::pages::Scratch,
    (part, parts): (usize, usize),
) -> Result<(), FileError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileError::Vanished),
        Err(e) => return Err(FileError::Corrupt(e.to_string())),
    };
    let corrupt = |e: parquet::errors::ParquetError| FileError::Corrupt(e.to_string());
    // A second handle (the builder takes the first) and the file's length, for the pages
    // read here.
    let handle = file.try_clone().and_then(|h| {
        let len = h.metadata()?.len();
        Ok((Arc::new(h), len))
    });
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(corrupt)?;
    let meta = builder.metadata().clone();
    let schema = meta.file_metadata().schema_descr();
    let key = key.filter(|k| KEY_COLUMNS.contains(k));
    let key_leaf = key.and_then(|k| schema.columns().iter().position(|c| c.name() == k));
    let mut leaves = Vec::new();
    for (i, c) in schema.columns().iter().enumerate() {
        if columns.contains(&c.name()) || Some(i) == key_leaf {
            leaves.push(i);
        }
    }
    let start_col = schema
        .columns()
        .iter()
        .position(|c| c.name() == "time_flow_start_ns");
    // ns per unit of the stored start times (1: plain ns numbers, as older files hold).
    let start_scale = stored_ns_per_unit(builder.schema(), "time_flow_start_ns");
    let mut groups = Vec::new();
    // Whether the range cuts through a group read.
    let mut cut = false;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let span = start_col
            .and_then(|c| rg.column(c).statistics().and_then(stat_range))
            .map(|(lo, hi)| (lo.wrapping_mul(start_scale), hi.wrapping_mul(start_scale)));
        let keep = range.is_all() || span.is_none_or(|(lo, hi)| range.overlaps(lo, hi));
        if keep {
            groups.push(i);
            cut |= !range.is_all()
                && span.is_none_or(|(lo, hi)| !(range.contains(lo) && range.contains(hi)));
        } else {
            report.row_groups_skipped += usize::from(part == 0);
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    // Each leaf with its registry type where the pages of `pages` can fill the batch's
    // column (`None`: arrow-rs's reading is needed).
    let arrow_schema = builder.schema().clone();
    let typed = |leaves: &[usize]| -> Vec<(usize, Option<Physical>)> {
        leaves
            .iter()
            .map(|&l| {
                let physical = schema.columns().get(l).and_then(|c| {
                    let def = flowsight_schema::field(c.name())?;
                    let p = def.kind.physical();
                    let dt = arrow_schema.field_with_name(def.name).ok()?.data_type();
                    // Times are stored as timestamps (see `write::as_timestamps`).
                    let same = dt == &flowsight_schema::arrow::data_type(p)
                        || (p == Physical::UInt64 && ns_per_unit(dt).is_some());
                    (same && !matches!(p, Physical::Utf8Dict | Physical::Float64)).then_some(p)
                });
                (l, physical)
            })
            .collect()
    };
    // A file read in parts (see `scan_list`) is read here in row ranges of its one row
    // group; one that cannot be is read whole by its first part.
    let split = parts > 1
        && !cut
        && groups.len() == 1
        && handle.is_ok()
        && crate::pages::supported(&meta, &groups, &typed(&leaves));
    if !split && part != 0 {
        return Ok(());
    }
    // The key column as its dictionaries and indices, where every chunk read is
    // dictionary-encoded and whole groups are read (a range cutting a group selects rows,
    // which the indices would have to follow); the column then leaves arrow-rs's
    // projection. Anything unexpected falls back to reading it as plain values.
    let crate::pages::Scratch {
        batch: b,
        cols,
        file_keys,
        keys,
        chunk,
    } = scratch;
    file_keys.clear();
    keys.keys.clear();
    keys.values.clear();
    let as_keys = match (key, key_leaf, &handle) {
        (Some(k), Some(c), Ok((h, len)))
            if !cut
                && groups
                    .iter()
                    .all(|&g| all_dictionary(meta.row_group(g).column(c))) =>
        {
            crate::dictkeys::read(
                (h, *len),
                &meta,
                &groups,
                c,
                file_keys,
                &mut keys.values,
                chunk,
            )
            .map(|()| (k, c))
        }
        _ => None,
    };
    if let Some((_, c)) = as_keys {
        keys.generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        leaves.retain(|&l| l != c);
    }
    // Columns another file filled must not pass for this one's.
    b.clear();
    // The file's row the next batch starts at (for the key column's indices).
    let at = std::cell::Cell::new(0usize);
    // What every batch gets before the caller sees it, whichever way it was read.
    let mut deliver = |b: &mut FlowBatch| -> Result<(), FileError> {
        if let Some((k, _)) = as_keys {
            let rows = file_keys.get(at.get()..at.get() + b.len()).ok_or_else(|| {
                FileError::Corrupt(format!("column {k} has fewer rows than the others"))
            })?;
            at.set(at.get() + rows.len());
            keys.keys.clear();
            keys.keys.extend_from_slice(rows);
            if columns.contains(&k)
                && let Some(col) = addr_column(b, k)
            {
                keys.materialize(col);
            }
        }
        // Files written before a column existed read it as its default.
        b.fill_missing(columns);
        report.rows_read += b.len() as u64;
        f(b, as_keys.is_some().then_some(&*keys));
        Ok(())
    };
    // Number and address columns of whole row groups are decoded here from their pages
    // (see `pages`); anything else goes through arrow-rs.
    let typed = typed(&leaves);
    if let (false, Ok((h, len))) = (cut, &handle)
        && crate::pages::supported(&meta, &groups, &typed)
    {
        let cols = crate::pages::columns(
            cols,
            typed.iter().filter_map(|&(l, _)| {
                let c = schema.columns().get(l)?;
                let name = flowsight_schema::field(c.name())?.name;
                let scale = stored_ns_per_unit(&arrow_schema, name);
                Some((name, l, c.physical_type(), scale))
            }),
        );
        // The file's row each group starts at (the key column's indices run over the file).
        let mut group_row = 0;
        for &g in &groups {
            let rows = usize::try_from(meta.row_group(g).num_rows()).map_err(|_| {
                FileError::Corrupt(format!("row group {g} has a negative row count"))
            })?;
            for c in cols.iter_mut() {
                c.start_group(h, *len, &meta, g)
                    .map_err(FileError::Corrupt)?;
            }
            let (lo, hi) = if split {
                part_rows(cols.first_mut(), rows, part, parts).map_err(FileError::Corrupt)?
            } else {
                (0, rows)
            };
            for c in cols.iter_mut() {
                c.skip(lo).map_err(FileError::Corrupt)?;
            }
            at.set(group_row + lo);
            group_row += rows;
            let mut done = lo;
            while done < hi {
                // Up to the next page end of any column: pages then go whole into the
                // batch (the store's files cut every column's pages at the same rows).
                let mut n = (hi - done).min(crate::pages::BATCH_ROWS);
                for c in cols.iter_mut() {
                    n = n.min(c.ready().map_err(FileError::Corrupt)?);
                }
                // `flow_type` carries the batch's length when it is not read.
                b.flow_type.clear();
                b.flow_type.resize(n, 0);
                for c in cols.iter_mut() {
                    c.take(n, b).map_err(FileError::Corrupt)?;
                }
                deliver(b)?;
                done += n;
            }
        }
        return Ok(());
    }
    // Batches need one column to carry their row count; `flow_type` is read only when
    // asked for or when nothing else is (it cost 4 decompressed bytes a row to every query).
    if leaves.is_empty() {
        leaves.extend(
            schema
                .columns()
                .iter()
                .position(|c| c.name() == "flow_type"),
        );
    }
    let mask = ProjectionMask::leaves(schema, leaves);
    let mut builder = builder;
    if let (true, Some(c)) = (cut, start_col) {
        // Where the range cuts a group, the start times are read first and the other
        // columns are decoded only for the flows inside it: a dashboard's range edge, a
        // page of the flow explorer narrowed to a few seconds. Callers still check the
        // range per flow, so a column of another type just selects everything.
        let pred = ArrowPredicateFn::new(
            ProjectionMask::leaves(schema, [c]),
            move |rb: RecordBatch| {
                let col = rb.column(0);
                let mut t = Vec::new();
                Ok(
                    match flowsight_schema::arrow::u64_values(col.as_ref(), &mut t) {
                        Ok(()) => t.iter().map(|&t| Some(range.contains(t))).collect(),
                        Err(_) => BooleanArray::from(vec![true; col.len()]),
                    },
                )
            },
        );
        builder = builder.with_row_filter(RowFilter::new(vec![Box::new(pred)]));
    }
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(corrupt)?;
    // One batch refilled per Arrow batch: fresh buffers each time cost ~12% of a
    // statistic's time in page faults (perf, `flowsight query -s srcip/bytes`).
    for rb in reader {
        let rb = rb.map_err(|e| FileError::Corrupt(e.to_string()))?;
        b.refill_from_record_batch(&rb)
            .map_err(FileError::Corrupt)?;
        deliver(b)?;
    }
    Ok(())
}

/// Rows `lo..hi` of a row group of `rows` rows that part `part` of `parts` reads: cut at
/// the data page starts of `first` (the first column read) nearest to equal shares, so no
/// page is decoded by two parts where the columns' pages line up (as in the store's own
/// files); equal shares without a column.
fn part_rows(
    first: Option<&mut crate::pages::Column>,
    rows: usize,
    part: usize,
    parts: usize,
) -> Result<(usize, usize), crate::pages::PageError> {
    let mut starts = Vec::new();
    if let Some(c) = first {
        c.page_starts(&mut starts)?;
    }
    let bound = |p: usize| -> usize {
        if p == 0 {
            return 0;
        }
        if p >= parts {
            return rows;
        }
        let target = (rows as u128 * p as u128 / parts as u128) as usize;
        starts
            .iter()
            .copied()
            .filter(|&s| s <= rows)
            .min_by_key(|&s| s.abs_diff(target))
            .unwrap_or(target)
    };
    Ok((bound(part), bound(part + 1)))
}

/// Moves an unreadable file out of the way, keeping its partition in the name.
pub(crate) fn quarantine(store: &Store, path: &Path, why: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix(store.flows_dir()).unwrap_or(path);
    let flat = rel.to_string_lossy().replace(['/', '\\'], "_");
    let qdir = store.quarantine_dir();
    if let Err(e) = std::fs::create_dir_all(&qdir).map_err(io_err("create directory", &qdir)) {
        tracing::warn!(file = %path.display(), error = %e, "cannot quarantine unreadable file");
        return None;
    }
    let dest = qdir.join(flat);
    match std::fs::rename(path, &dest) {
        Ok(()) => {
            tracing::warn!(
                file = %path.display(),
                moved_to = %dest.display(),
                reason = why,
                "unreadable store file quarantined; its flows are left out of results"
            );
            Some(dest)
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, reason = why, "unreadable store file (could not move it to quarantine)");
            None
        }
    }
}

/// Every file whose flows may start inside `range`; with `key`, that address column as
/// [`DictKeys`] where the files allow (see [`read_file`]).
pub(crate) fn scan<A: Send>(
    store: &Store,
    range: TimeRange,
    columns: &[&str],
    key: Option<&str>,
    init: impl Fn() -> A + Sync,
    fold: impl Fn(&mut A, &FlowBatch, Option<&DictKeys>) + Sync,
) -> Result<ScanOutput<A>, StoreError> {
    let all = store.files()?;
    let files: Vec<FileMeta> = all
        .iter()
        .filter(|f| range.is_all() || range.overlaps(f.min_start, f.max_start))
        .cloned()
        .collect();
    scan_list(
        store,
        all.len(),
        &files,
        range,
        columns,
        key,
        init,
        |a, _, b, k| fold(a, b, k),
        None::<fn(&mut A, usize, bool)>,
    )
}

/// Files read at the end of a scan are read in this many parts, on any worker.
const TAIL_PARTS: usize = 4;

/// Scans `files` (a selection of the store's `files_total` files); `fold` is told the index
/// in `files` of the file each batch comes from, and `done`, if given, is called on the
/// same worker when that file has been read (`true`: whole; `false`: it vanished or is
/// damaged, and what was folded of it may be partial). A worker reads one file at a time.
///
/// Without `done`, the last files (one per worker) are read in [`TAIL_PARTS`] row ranges
/// each, which any worker takes: otherwise a scan of 19 files on two cores ends with one
/// core reading the 19th alone (5% of a 10 M-flow statistic's time, measured).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_list<A: Send>(
    store: &Store,
    files_total: usize,
    files: &[FileMeta],
    range: TimeRange,
    columns: &[&str],
    key: Option<&str>,
    init: impl Fn() -> A + Sync,
    fold: impl Fn(&mut A, usize, &FlowBatch, Option<&DictKeys>) + Sync,
    done: Option<impl Fn(&mut A, usize, bool) + Sync>,
) -> Result<ScanOutput<A>, StoreError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // (file, part, parts): files in order, the last `cores` of them in parts.
    let split_from = match done {
        Some(_) => files.len(),
        None => files.len().saturating_sub(cores),
    };
    let units: Vec<(usize, usize, usize)> = (0..files.len())
        .flat_map(|i| {
            let parts = if i >= split_from { TAIL_PARTS } else { 1 };
            (0..parts).map(move |p| (i, p, parts))
        })
        .collect();
    let threads = cores.min(units.len().max(1));
    // A file found gone or damaged by several of its parts is reported (and moved) once.
    let failed: Vec<std::sync::atomic::AtomicBool> =
        files.iter().map(|_| Default::default()).collect();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(ScanReport {
        files_total,
        ..ScanReport::default()
    });
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut acc = init();
                    let mut rep = ScanReport::default();
                    let mut scratch = crate::pages::Scratch::default();
                    loop {
                        let u = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(i, part, parts)) = units.get(u) else {
                            break;
                        };
                        let Some(fm) = files.get(i) else { break };
                        let mut cb = |b: &FlowBatch, k: Option<&DictKeys>| fold(&mut acc, i, b, k);
                        let first_failure = || !failed[i].swap(true, Ordering::Relaxed);
                        let ok = match read_file(
                            &fm.path,
                            range,
                            columns,
                            key,
                            &mut cb,
                            &mut rep,
                            &mut scratch,
                            (part, parts),
                        ) {
                            Ok(()) => {
                                rep.files_read += usize::from(part == 0);
                                true
                            }
                            Err(FileError::Vanished) => {
                                rep.vanished += usize::from(first_failure());
                                false
                            }
                            Err(FileError::Corrupt(why)) => {
                                if first_failure()
                                    && let Some(q) = quarantine(store, &fm.path, &why)
                                {
                                    rep.quarantined.push(q);
                                }
                                false
                            }
                        };
                        if let Some(d) = &done {
                            d(&mut acc, i, ok);
                        }
                    }
                    if let Ok(mut t) = total.lock() {
                        t.files_read += rep.files_read;
                        t.row_groups_skipped += rep.row_groups_skipped;
                        t.rows_read += rep.rows_read;
                        t.vanished += rep.vanished;
                        t.quarantined.append(&mut rep.quarantined);
                    }
                    acc
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .collect::<Result<Vec<A>, _>>()
    });
    let parts = parts.map_err(|p| StoreError::ScanWorker {
        message: p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
    })?;
    let report = total.into_inner().unwrap_or_default();
    Ok(ScanOutput { parts, report })
}
