//! File naming and listing.

use crate::{Store, StoreError, io_err};
use std::path::{Path, PathBuf};

/// How a file came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Written by a flush of the collector's buffer (small, lz4).
    Flush,
    /// Written by compaction (large, sorted by flow start, zstd).
    Compacted,
    /// A rollup table file (its time range is that of its buckets).
    Rollup,
}

/// What a file's path says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Full path.
    pub path: PathBuf,
    /// Flush or compacted.
    pub kind: FileKind,
    /// Smallest `time_flow_start_ns` of its rows.
    pub min_start: u64,
    /// Largest `time_flow_start_ns` of its rows.
    pub max_start: u64,
    /// Rows.
    pub rows: u64,
    /// Start of its partition hour, ns.
    pub partition_ns: u64,
    /// Size on disk, bytes.
    pub size: u64,
}

const HOUR_NS: u64 = 3_600_000_000_000;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The partition directory (relative to `flows/`) of the hour containing `ns`.
pub fn partition_dir(ns: u64) -> String {
    let hours = ns / HOUR_NS;
    let (y, m, d) = civil((hours / 24) as i64);
    format!("date={y:04}-{m:02}-{d:02}/hour={:02}", hours % 24)
}

fn parse_partition(date: &str, hour: &str) -> Option<u64> {
    let date = date.strip_prefix("date=")?;
    let hour: u64 = hour.strip_prefix("hour=")?.parse().ok()?;
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || hour > 23 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days)
        .ok()
        .map(|days| (days * 24 + hour) * HOUR_NS)
}

pub(crate) fn file_name(kind: FileKind, min: u64, max: u64, rows: u64, id: &str) -> String {
    let k = match kind {
        FileKind::Flush => 'f',
        FileKind::Compacted => 'c',
        FileKind::Rollup => 'r',
    };
    format!("{k}-{min}-{max}-{rows}-{id}.parquet")
}

fn parse_name(name: &str) -> Option<(FileKind, u64, u64, u64)> {
    let stem = name.strip_suffix(".parquet")?;
    let mut it = stem.splitn(5, '-');
    let kind = match it.next()? {
        "f" => FileKind::Flush,
        "c" => FileKind::Compacted,
        "r" => FileKind::Rollup,
        _ => return None,
    };
    let min = it.next()?.parse().ok()?;
    let max = it.next()?.parse().ok()?;
    let rows = it.next()?.parse().ok()?;
    it.next()?;
    Some((kind, min, max, rows))
}

fn read_dir(p: &Path) -> Result<Vec<std::fs::DirEntry>, StoreError> {
    let rd = std::fs::read_dir(p).map_err(io_err("list directory", p))?;
    // An entry vanishing while we list (compaction, retention) is not an error.
    Ok(rd.filter_map(Result::ok).collect())
}

/// Partition directories of the flow files, oldest first: (start ns, path).
pub(crate) fn partitions(store: &Store) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    partitions_in(&store.flows_dir())
}

/// Partition directories under `base` (`date=/hour=`), oldest first; none when `base` does
/// not exist yet.
pub(crate) fn partitions_in(base: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    if !base.is_dir() {
        return Ok(out);
    }
    for date in read_dir(base)? {
        let dn = date.file_name().to_string_lossy().into_owned();
        if !date.path().is_dir() || !dn.starts_with("date=") {
            continue;
        }
        for hour in read_dir(&date.path())? {
            let hn = hour.file_name().to_string_lossy().into_owned();
            if let Some(ns) = parse_partition(&dn, &hn) {
                out.push((ns, hour.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The data files of one partition directory, and the inputs an unfinished compaction
/// journal there says are already replaced.
pub(crate) fn partition_files(dir: &Path, partition_ns: u64) -> Result<Vec<FileMeta>, StoreError> {
    let mut replaced: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for e in read_dir(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".compact-") && name.ends_with(".json") {
            if let Some(j) = crate::maintenance::Journal::read(&e.path())
                && dir.join(&j.output).exists()
            {
                replaced.extend(j.inputs);
            }
            continue;
        }
        let Some((kind, min, max, rows)) = parse_name(&name) else {
            continue;
        };
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        files.push(FileMeta {
            path: e.path(),
            kind,
            min_start: min,
            max_start: max,
            rows,
            partition_ns,
            size,
        });
    }
    files.retain(|f| {
        let n = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        !replaced.contains(&n)
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

pub(crate) fn list(store: &Store) -> Result<Vec<FileMeta>, StoreError> {
    let mut out = Vec::new();
    for (ns, dir) in partitions(store)? {
        out.extend(partition_files(&dir, ns)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        // 2026-11-22T21:26:39Z
        let ns = 1_795_382_799_000_000_000u64;
        assert_eq!(partition_dir(ns), "date=2026-11-22/hour=21");
        assert_eq!(
            parse_partition("date=2026-11-22", "hour=21"),
            Some(ns / HOUR_NS * HOUR_NS)
        );
        assert_eq!(partition_dir(0), "date=1970-01-01/hour=00");
        // Leap day.
        let leap = (days_from_civil(2024, 2, 29) as u64 * 24 + 5) * HOUR_NS;
        assert_eq!(partition_dir(leap), "date=2024-02-29/hour=05");
        assert_eq!(parse_partition("date=2024-13-01", "hour=00"), None);
        assert_eq!(parse_partition("date=2024-01-01", "hour=24"), None);
        assert_eq!(parse_partition("garbage", "hour=1"), None);
    }

    #[test]
    fn file_names_round_trip() {
        let n = file_name(FileKind::Compacted, 5, 9, 100, "abc-1");
        assert_eq!(n, "c-5-9-100-abc-1.parquet");
        assert_eq!(parse_name(&n), Some((FileKind::Compacted, 5, 9, 100)));
        assert_eq!(parse_name(".f-1-2-3-x.parquet.tmp"), None);
        assert_eq!(parse_name("f-1-2.parquet"), None);
        assert_eq!(parse_name("notes.txt"), None);
    }
}
