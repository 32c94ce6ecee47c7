//! Adapter over the write-ahead log (cairn-wal).
//!
//! The head logs four kinds of records: new series, samples, metadata and
//! tombstones (deletions).
//! Everything it needs from the WAL goes through [`WalLog`] and the record
//! types re-exported here, so the backing crate is swapped in this one file.
//!
//! Contract: when [`WalLog::log`] returns `Ok`, the records are in the
//! operating system (they survive the process being killed; with
//! `FsyncPolicy::Always` also power loss), and replay yields them in the
//! order they were logged.

use std::path::{Path, PathBuf};

pub use cairn_wal::{FsyncPolicy, WalOptions};
pub(crate) use cairn_wal::{
    Progress as ReplayProgress, Record, RefExemplar, RefFloatHistogramSample, RefHistogramSample,
    RefMetadata, RefSample, RefSeries,
};
use cairn_wal::{Wal, WalError};

use crate::error::{HeadError, Result};

fn wal_err(op: &'static str, dir: &Path, e: WalError) -> HeadError {
    HeadError::Wal {
        op,
        dir: dir.display().to_string(),
        source: Box::new(e),
    }
}

/// About the encoded size of `r` (more for typical records): a sample
/// takes a ref delta, a time delta and 8 value bytes.
fn size_hint(r: &Record) -> usize {
    match r {
        Record::Series(v) => v.iter().map(|s| 16 + s.labels.len() * 32).sum::<usize>() + 1,
        Record::Samples(v) => 17 + v.len() * 14,
        Record::Metadata(v) => {
            v.iter()
                .map(|m| 32 + m.unit.len() + m.help.len())
                .sum::<usize>()
                + 1
        }
        _ => 64,
    }
}

/// The head's WAL.
pub(crate) struct WalLog {
    dir: PathBuf,
    wal: Wal,
}

impl std::fmt::Debug for WalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalLog").field("dir", &self.dir).finish()
    }
}

impl WalLog {
    pub(crate) fn open(dir: &Path, opts: &WalOptions) -> Result<Self> {
        let wal = Wal::open(dir, *opts).map_err(|e| wal_err("open", dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            wal,
        })
    }

    /// fsyncs everything logged so far.
    pub(crate) fn sync(&self) -> Result<()> {
        self.wal.sync().map_err(|e| wal_err("sync", &self.dir, e))
    }

    /// fsyncs so far and their total duration in seconds.
    pub(crate) fn fsync_durations(&self) -> (u64, f64) {
        self.wal.fsync_durations()
    }

    /// Logs records in one write; see the module contract.
    pub(crate) fn log(&self, recs: &[Record]) -> Result<()> {
        // All records go into one buffer sized up front, so a commit's
        // encoding allocates once instead of growing a buffer per record.
        let mut buf = Vec::with_capacity(recs.iter().map(size_hint).sum());
        let mut ends = Vec::with_capacity(recs.len());
        for r in recs {
            cairn_wal::record::encode(r, &mut buf);
            ends.push(buf.len());
        }
        let mut refs: Vec<&[u8]> = Vec::with_capacity(recs.len());
        let mut start = 0;
        for &end in &ends {
            refs.push(buf.get(start..end).unwrap_or_default());
            start = end;
        }
        self.wal
            .log(&refs)
            .map_err(|e| wal_err("log", &self.dir, e))
    }

    /// Replays the WAL in `dir` (checkpoint first, then segments), telling
    /// `f` how far it has got with each record; a missing directory replays
    /// nothing. Returns where a torn tail ended the replay, if one did.
    pub(crate) fn replay(
        dir: &Path,
        mut f: impl FnMut(ReplayProgress, Record) -> Result<()>,
    ) -> Result<Option<(u32, u64)>> {
        let mut failed: Option<HeadError> = None;
        let res = cairn_wal::replay_with_progress(dir, |p, rec| {
            f(p, rec).map_err(|e| {
                let msg = e.to_string();
                failed = Some(e);
                WalError::consumer(msg)
            })
        });
        match (res, failed) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(wal_err("replay", dir, e)),
            (Ok(stats), None) => {
                tracing::debug!(?stats, "WAL replayed");
                Ok(stats.torn_tail)
            }
        }
    }

    /// The segment being written.
    pub(crate) fn current_segment(&self) -> u32 {
        self.wal.current_segment()
    }

    /// Closes the current segment and starts the next; returns its number.
    /// Everything logged before is in earlier segments.
    pub(crate) fn next_segment(&self) -> Result<u32> {
        self.wal
            .next_segment()
            .map_err(|e| wal_err("next segment", &self.dir, e))
    }

    /// Deletes the segments before `before`.
    pub(crate) fn truncate(&self, before: u32) -> Result<()> {
        self.wal
            .truncate(before)
            .map_err(|e| wal_err("truncate", &self.dir, e))
    }

    /// Closes the current segment, writes a checkpoint of every segment
    /// before it keeping the series for which `keep` is true and samples at
    /// or after `mint`, then deletes those segments.
    pub(crate) fn checkpoint(&self, keep: impl Fn(u64) -> bool, mint: i64) -> Result<()> {
        let (first, _) = self
            .wal
            .segment_range()
            .map_err(|e| wal_err("segment range", &self.dir, e))?;
        let cur = self
            .wal
            .next_segment()
            .map_err(|e| wal_err("next segment", &self.dir, e))?;
        let to = cur.saturating_sub(1);
        if cur == 0 || first > to {
            return Ok(());
        }
        cairn_wal::checkpoint(
            &self.dir,
            first,
            to,
            keep,
            mint,
            self.wal.options().compress,
        )
        .map_err(|e| wal_err("checkpoint", &self.dir, e))?;
        self.wal
            .truncate(cur)
            .map_err(|e| wal_err("truncate", &self.dir, e))
    }
}
