//! flowsight's embedded flow store: open columnar files on local disk, no server.
//!
//! # Layout
//!
//! ```text
//! DIR/flows/date=2026-11-22/hour=21/f-<min_start>-<max_start>-<rows>-<id>.parquet   flushed
//! DIR/flows/date=2026-11-22/hour=21/c-<min_start>-<max_start>-<rows>-<id>.parquet   compacted
//! DIR/rollup_1m|5m|1h/date=.../hour=.../r-...parquet                                  rollup tables
//! DIR/quarantine/...                                                                 unreadable files
//! ```
//!
//! - Files are plain Parquet written by arrow-rs with the registry's column names
//!   ([`flowsight_schema::FIELDS`]); DuckDB, pandas or Spark read them without flowsight
//!   (`SELECT * FROM 'DIR/flows/**/*.parquet'`). The `date=`/`hour=` directories are Hive-style
//!   partitions of the time the flows were *written* (≈ received), which is bounded and
//!   monotonic whatever the exporters' clocks say.
//! - The file name carries the smallest and largest `time_flow_start_ns` of its rows, so a
//!   time-range query skips files from a directory listing without opening them; inside a file
//!   the row groups' statistics skip further.
//! - Every file appears by atomic rename of a hidden temporary (`.name.tmp`) after `fsync`, so a
//!   crash at any moment leaves either the whole file or nothing. Compaction replaces small
//!   files by a larger, time-sorted one under a journal ([`compact`]), so a crash never
//!   duplicates or loses rows.
//!
//! ```no_run
//! use flowsight_store::{Store, TimeRange};
//! let store = Store::open("/var/lib/flowsight")?;
//! let totals = store.scan(TimeRange::ALL, &["bytes"], || 0u64, |acc, b| {
//!     *acc += b.bytes.iter().sum::<u64>();
//! })?;
//! println!("{} bytes", totals.parts.iter().sum::<u64>());
//! # Ok::<(), flowsight_store::StoreError>(())
//! ```

mod chunk;
#[doc(hidden)]
pub use chunk::fuzz_page_header;
mod delta;
mod dictkeys;
#[doc(hidden)]
pub use dictkeys::fuzz_indices;
pub use pages::fuzz_delta;
mod files;
mod intcol;
mod maintenance;
mod pages;
mod rollup;
mod scan;
mod textcol;
mod write;

/// The unit tests' value source: xorshift64, a fixed sequence per seed (not zero).
#[cfg(test)]
pub(crate) fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

pub use files::{FileKind, FileMeta, partition_dir};
pub use maintenance::{CompactOptions, CompactReport, RetentionReport, compact, enforce_retention};
pub use rollup::{Rollup, RollupKey, RollupSums, Tier};
pub use scan::{DictKeys, ScanOutput, ScanReport};
pub use write::{Codec, Prepared, WriteOptions};

use std::path::{Path, PathBuf};

/// Errors of the store layer, each naming the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet file {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A scan worker stopped (a bug): reported rather than answering from part of the data.
    #[error(
        "a store scan worker stopped unexpectedly ({message}); the query is not answered from part of the data. Please report this"
    )]
    ScanWorker {
        /// The worker's panic message.
        message: String,
    },
    /// The data directory is not a flowsight store.
    #[error(
        "{path} is not a flowsight data directory ({why}); point --data at the directory `flowsight serve` writes"
    )]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// Why not.
        why: String,
    },
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// A half-open range `[since, until)` of flow start times, ns since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub since: u64,
    /// Exclusive upper bound.
    pub until: u64,
}

impl TimeRange {
    /// Every flow.
    pub const ALL: TimeRange = TimeRange {
        since: 0,
        until: u64::MAX,
    };

    /// Whether a flow starting at `t` is inside.
    #[inline]
    pub fn contains(&self, t: u64) -> bool {
        t >= self.since && t < self.until
    }

    /// Whether any start time in `[min, max]` can be inside.
    pub fn overlaps(&self, min: u64, max: u64) -> bool {
        max >= self.since && min < self.until
    }

    /// Whether this range bounds anything.
    pub fn is_all(&self) -> bool {
        self.since == 0 && self.until == u64::MAX
    }
}

/// A flow store rooted at a data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (and creates, if needed) the store at `root` for writing: finishes or rolls back
    /// an interrupted compaction and removes temporaries a crash left behind.
    pub fn open(root: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = root.as_ref().to_path_buf();
        for d in [root.join("flows"), root.join("quarantine")] {
            std::fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        }
        let s = Store { root };
        maintenance::recover(&s)?;
        Ok(s)
    }

    /// Opens an existing store for reading only; fails with a clear message when `root` is
    /// not a store.
    pub fn open_read(root: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = root.as_ref().to_path_buf();
        let flows = root.join("flows");
        if !root.is_dir() {
            return Err(StoreError::NotAStore {
                path: root,
                why: "no such directory".into(),
            });
        }
        if !flows.is_dir() {
            return Err(StoreError::NotAStore {
                path: root,
                why: "it has no flows/ subdirectory".into(),
            });
        }
        Ok(Store { root })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the flow files.
    pub fn flows_dir(&self) -> PathBuf {
        self.root.join("flows")
    }

    /// Where unreadable files are moved.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// The live flow files, oldest partition first (files an unfinished compaction already
    /// replaced are left out).
    pub fn files(&self) -> Result<Vec<FileMeta>, StoreError> {
        files::list(self)
    }

    /// Writes `batch` as one new file in the partition of `now_ns`, atomically. Returns the
    /// file written, or `None` for an empty batch.
    pub fn write(
        &self,
        batch: flowsight_schema::FlowBatch,
        now_ns: u64,
        opts: &WriteOptions,
    ) -> Result<Option<FileMeta>, StoreError> {
        write::write_file(self, batch, now_ns, FileKind::Flush, opts)
    }

    /// Like [`Store::write`] for an already converted batch, which stays with the caller so
    /// that a failed write (disk full, permissions) can be retried.
    pub fn write_prepared(
        &self,
        batch: &Prepared,
        now_ns: u64,
        opts: &WriteOptions,
    ) -> Result<Option<FileMeta>, StoreError> {
        let dir = self.flows_dir().join(partition_dir(now_ns));
        write::write_in(&dir, batch, now_ns, FileKind::Flush, opts, &mut |_| Ok(()))
    }

    /// Reads the columns `columns` (registry names; `flow_type` is always added) of every
    /// file whose flows may start inside `range`, on all cores: each worker folds batches into
    /// its own accumulator made by `init`. Rows outside `range` are *not* removed: the caller
    /// tests `range.contains(time_flow_start_ns)` (ask for that column) where it matters.
    /// Unreadable files are quarantined with a warning and reported, never fatal.
    pub fn scan<A: Send>(
        &self,
        range: TimeRange,
        columns: &[&str],
        init: impl Fn() -> A + Sync,
        fold: impl Fn(&mut A, &flowsight_schema::FlowBatch) + Sync,
    ) -> Result<ScanOutput<A>, StoreError> {
        scan::scan(self, range, columns, None, init, |a, b, _| fold(a, b))
    }

    /// Like [`Store::scan`], over a chosen list of files (from [`Store::files`]; the
    /// report's `files_total` is left 0). `fold` is told the index in `files` of the file
    /// each batch comes from, and `done(acc, index, whole)` runs on the same worker once that
    /// file is read (`whole` is false if it vanished or is damaged): callers keep per-file
    /// results this way (the query engine caches them for files that no longer change)
    /// while holding one file's worth per worker.
    pub fn scan_files<A: Send>(
        &self,
        files: &[FileMeta],
        range: TimeRange,
        columns: &[&str],
        init: impl Fn() -> A + Sync,
        fold: impl Fn(&mut A, usize, &flowsight_schema::FlowBatch) + Sync,
        done: impl Fn(&mut A, usize, bool) + Sync,
    ) -> Result<ScanOutput<A>, StoreError> {
        scan::scan_list(
            self,
            0,
            files,
            range,
            columns,
            None,
            init,
            |a, i, b, _| fold(a, i, b),
            Some(done),
        )
    }

    /// Like [`Store::scan`], and the address column `key` (`src_addr`, `dst_addr`,
    /// `sampler_address`, `next_hop`, `bgp_next_hop`) is read too: as [`DictKeys`] from
    /// files whose chunks of it are all dictionary-encoded (the batch's own column is then
    /// filled only if `columns` names it), as the batch's column from other files (`None`).
    pub fn scan_keyed<A: Send>(
        &self,
        range: TimeRange,
        columns: &[&str],
        key: &str,
        init: impl Fn() -> A + Sync,
        fold: impl Fn(&mut A, &flowsight_schema::FlowBatch, Option<&DictKeys>) + Sync,
    ) -> Result<ScanOutput<A>, StoreError> {
        scan::scan(self, range, columns, Some(key), init, fold)
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
