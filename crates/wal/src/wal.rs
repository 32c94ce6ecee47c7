//! The thread-safe write-ahead log handle.
//!
//! Contracts:
//! * [`Wal::open`] never writes into an existing segment. It repairs a
//!   damaged tail of the last non-empty segment (truncating it to its last
//!   complete record, with a `tracing::warn!`), then starts a fresh segment
//!   numbered after every existing segment and checkpoint.
//! * [`Wal::log`] returns only after its bytes were handed to the kernel
//!   with `write(2)`, so they survive the process being killed. With
//!   [`FsyncPolicy::Always`] it also returns only after an fsync covering
//!   them, so they survive power loss. Concurrent `Always` callers share
//!   fsyncs (group commit): one caller syncs for everyone whose write
//!   finished before the sync began.
//! * With [`FsyncPolicy::Never`], data is fsynced when a segment is closed
//!   (rollover, [`Wal::next_segment`], drop) and on [`Wal::sync`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Result, WalError};
use crate::fragment::{DEFAULT_SEGMENT_SIZE, PAGE_SIZE};
use crate::segments::{
    check_consecutive, damage_or_error, last_nonempty, list, open_reader, segment_path, sync_dir,
};
use crate::writer::LogWriter;

/// When the log forces its data to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fsync only when a segment is closed and on [`Wal::sync`]; an
    /// acknowledged append survives a process crash but not power loss.
    #[default]
    Never,
    /// fsync before every [`Wal::log`] returns (shared between concurrent
    /// callers); an acknowledged append survives power loss.
    Always,
}

/// Options for [`Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Nominal segment size in bytes: a positive multiple of 32 KiB.
    pub segment_size: usize,
    pub fsync: FsyncPolicy,
    /// Snappy-compress records that shrink (Prometheus's
    /// `--storage.tsdb.wal-compression`, on by default there and here).
    /// Reading never depends on it.
    pub compress: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: FsyncPolicy::Never,
            compress: true,
        }
    }
}

struct Inner {
    w: LogWriter,
    /// Number of completed `log` calls; the sequence number of the last one.
    written: u64,
    poisoned: Option<String>,
}

/// A segmented write-ahead log open for appending. See the module docs.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    inner: Mutex<Inner>,
    /// Highest write sequence number known to be fsynced.
    synced: Mutex<u64>,
    /// fsyncs issued for group commit and `sync` (observability).
    fsyncs: AtomicU64,
    /// Every fsync of segment data (group commit, `sync`, segment close) and its duration.
    fsync_stats: Arc<crate::writer::FsyncStats>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// What [`repair_tail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repaired {
    pub segment: u32,
    pub offset: u64,
    pub dropped: u64,
}

/// Truncates a damaged tail of the last non-empty segment in `dir`.
pub(crate) fn repair_tail(dir: &Path, segments: &[u32]) -> Result<Option<Repaired>> {
    let Some((seg, len)) = last_nonempty(dir, segments)? else {
        return Ok(None);
    };
    let (path, mut r) = open_reader(dir, seg)?;
    let (offset, expected, found) = loop {
        match r.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) => break damage_or_error(e, dir, seg, &path)?,
        }
    };
    let keep = r.valid_prefix();
    tracing::warn!(
        segment = seg,
        offset,
        expected = %expected,
        found = %found,
        kept_bytes = keep,
        dropped_bytes = len - keep,
        "WAL segment has a damaged tail; truncating it to its last complete record"
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    f.set_len(keep).map_err(|e| WalError::io(&path, e))?;
    f.sync_all().map_err(|e| WalError::io(&path, e))?;
    Ok(Some(Repaired {
        segment: seg,
        offset,
        dropped: len - keep,
    }))
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`; see the module docs.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Self> {
        if opts.segment_size == 0 || !opts.segment_size.is_multiple_of(PAGE_SIZE) {
            return Err(WalError::InvalidOptions {
                reason: format!(
                    "segment size {} is not a positive multiple of {PAGE_SIZE}",
                    opts.segment_size
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let listing = list(dir)?;
        check_consecutive(dir, &listing.segments)?;
        repair_tail(dir, &listing.segments)?;
        let after_seg = listing.segments.last().map(|s| s.saturating_add(1));
        let after_cp = listing.checkpoints.last().map(|c| c.saturating_add(1));
        let next = after_seg.max(after_cp).unwrap_or(0);
        let fsync_stats = Arc::new(crate::writer::FsyncStats::default());
        let w = LogWriter::create(
            dir,
            next,
            opts.segment_size,
            fsync_stats.clone(),
            opts.compress,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(Inner {
                w,
                written: 0,
                poisoned: None,
            }),
            synced: Mutex::new(0),
            fsyncs: AtomicU64::new(0),
            fsync_stats,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> WalOptions {
        self.opts
    }

    fn check(&self, g: &Inner) -> Result<()> {
        match &g.poisoned {
            Some(reason) => Err(WalError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Appends `recs` in order; see the module docs for durability. An empty
    /// slice writes nothing.
    pub fn log(&self, recs: &[&[u8]]) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let seq = {
            let mut g = self.inner.lock();
            self.check(&g)?;
            if let Err(e) = g.w.log(recs) {
                g.poisoned = Some(e.to_string());
                return Err(e);
            }
            g.written += 1;
            g.written
        };
        if self.opts.fsync == FsyncPolicy::Always {
            self.sync_upto(seq)?;
        }
        Ok(())
    }

    /// Group commit: makes sure every write up to `seq` is fsynced.
    fn sync_upto(&self, seq: u64) -> Result<()> {
        let mut synced = self.synced.lock();
        if *synced >= seq {
            return Ok(());
        }
        // Every write numbered <= target is in `file` or in an earlier
        // segment, and earlier segments were fsynced when they were closed.
        let (target, file, seg): (u64, Arc<File>, u32) = {
            let g = self.inner.lock();
            self.check(&g)?;
            (g.written, g.w.file(), g.w.segment())
        };
        self.fsync_stats
            .time(|| file.sync_data())
            .map_err(|e| WalError::io(segment_path(&self.dir, seg), e))?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = target;
        Ok(())
    }

    /// fsyncs everything logged so far.
    pub fn sync(&self) -> Result<()> {
        let seq = self.inner.lock().written;
        self.sync_upto(seq)
    }

    /// How many fsyncs `log` (under [`FsyncPolicy::Always`]) and `sync` have
    /// issued; with concurrent callers this is below the number of `log`
    /// calls when group commit shares fsyncs.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Every fsync of segment data so far (group commit, [`Wal::sync`] and
    /// segment close): how many, and their total duration in seconds.
    pub fn fsync_durations(&self) -> (u64, f64) {
        let n = self.fsync_stats.count.load(Ordering::Relaxed);
        let ns = self.fsync_stats.nanos.load(Ordering::Relaxed);
        (n, ns as f64 / 1e9)
    }

    /// The first and last segment indexes present in the directory.
    pub fn segment_range(&self) -> Result<(u32, u32)> {
        let cur = self.inner.lock().w.segment();
        let l = list(&self.dir)?;
        let first = l.segments.first().copied().unwrap_or(cur);
        let last = l.segments.last().copied().unwrap_or(cur);
        Ok((first.min(cur), last.max(cur)))
    }

    /// The segment currently written to.
    pub fn current_segment(&self) -> u32 {
        self.inner.lock().w.segment()
    }

    /// Closes the current segment (zero-padding its last page and fsyncing
    /// it) and starts a new one, whose index is returned. Everything logged
    /// before this call is then in segments below the returned index.
    pub fn next_segment(&self) -> Result<u32> {
        let mut g = self.inner.lock();
        self.check(&g)?;
        match g.w.roll() {
            Ok(n) => Ok(n),
            Err(e) => {
                g.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Deletes segments with index `< before`. The segment being written is
    /// never deleted, whatever `before` says.
    pub fn truncate(&self, before: u32) -> Result<()> {
        let g = self.inner.lock();
        let cur = g.w.segment();
        let l = list(&self.dir)?;
        let mut removed = false;
        for s in l.segments.into_iter().filter(|&s| s < before && s < cur) {
            let p = segment_path(&self.dir, s);
            std::fs::remove_file(&p).map_err(|e| WalError::io(&p, e))?;
            removed = true;
        }
        drop(g);
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// fsyncs and closes the log, reporting any error (dropping does the
    /// same but can only log errors).
    pub fn close(self) -> Result<()> {
        let g = self.inner.lock();
        g.w.sync()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let g = self.inner.lock();
        if g.poisoned.is_none() {
            if let Err(e) = g.w.sync() {
                tracing::warn!(error = %e, "fsync of the WAL on close failed");
            }
        }
    }
}
