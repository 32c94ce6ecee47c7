//! Late samples: out-of-order samples older than the last truncation, in a
//! time range the head has already cut into blocks.
//!
//! Prometheus accepts any sample within the out-of-order window, however
//! far behind the head's cut it falls; a lagging remote-write shard or a
//! sender catching up after an outage depends on that. The head keeps such
//! a sample with the series' other out-of-order data (reads see it at
//! once) but, unlike an out-of-order sample inside the head's range, a
//! head cut will not write it: its range is behind the cut. Instead:
//!
//! - **Durability.** A commit logs its late samples to the out-of-order
//!   log `wbl/` (Prometheus's write-behind log: the same segment format,
//!   Samples records whose refs are series of the WAL), after the WAL
//!   records of the same commit. Its out-of-order samples inside the head's
//!   range go to both logs, as Prometheus writes them (its replay drops
//!   out-of-order samples of the WAL and takes them from `wbl/`). Opening
//!   replays `wbl/` after the WAL and takes from it only the late samples;
//!   the others are in the WAL.
//! - **Flush.** [`Head::begin_late_flush`] stops late commits (one lock,
//!   taken shared by every commit with late samples), starts a new log
//!   segment, and hands out [`LateFlush::ranges`] and a querier per range
//!   that reads the late samples alone; the database writes one block per
//!   range (they overlap blocks it already has, and compaction merges
//!   them). [`LateFlush::finish`] then drops those samples from the series
//!   and deletes the log segments before the new one. A crash between the
//!   blocks and `finish` replays samples that are also in a block; they are
//!   written again and merged away (same timestamp, same value). The
//!   database flushes after every head cut, so the log never keeps
//!   in-range samples of ranges already cut for longer than a cut (a crash
//!   between the cut and the flush replays them as late: written again and
//!   merged away likewise).
//! - Truncation keeps late samples: it drops out-of-order samples only
//!   between the previous truncation point and the new one.
//!
//! An out-of-order sample staged in the head's range whose range a
//! concurrent truncation cut before the commit applied it is dropped at
//! apply time, as before (it is in the WAL, not in `wbl/`).

use std::sync::atomic::Ordering;

use cairn_storage::Querier;
use parking_lot::RwLockWriteGuard;

use crate::error::Result;
use crate::head::Head;
use crate::series::Tx;
use crate::wal_log::{Record, WalLog};

/// The out-of-order log's directory in the data directory (Prometheus's name).
pub(crate) const WBL_DIR: &str = "wbl";

/// Late samples replayed from `wbl/` carry append id 0, which every reader sees.
const REPLAYED: Tx = Tx {
    id: 0,
    low_watermark: 1,
};

/// Figures of the late samples and out-of-order conflicts, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateStats {
    /// Late samples held now (accepted, not yet flushed to blocks).
    pub held: u64,
    /// Late samples accepted since the head opened.
    pub appended_total: u64,
    /// Late samples flushed to blocks since the head opened.
    pub flushed_total: u64,
    /// Out-of-order samples dropped because a buffered sample had their
    /// timestamp and another value.
    pub conflicts_total: u64,
}

/// A flush of the late samples in progress; see the module docs. Late
/// commits wait while it is alive.
pub struct LateFlush<'h> {
    head: &'h Head,
    below: i64,
    /// No late sample is held.
    empty: bool,
    /// The log segment started for commits after the flush.
    segment: Option<u32>,
    _stop: RwLockWriteGuard<'h, ()>,
}

impl std::fmt::Debug for LateFlush<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateFlush")
            .field("below", &self.below)
            .field("segment", &self.segment)
            .finish()
    }
}

impl Head {
    /// Oldest timestamp the head's own range covers: the last truncation
    /// point (`i64::MIN` before the first). Samples before it are late.
    pub fn truncated_before(&self) -> i64 {
        self.min_valid.load(Ordering::Acquire)
    }

    /// The late-sample figures.
    pub fn late_stats(&self) -> LateStats {
        LateStats {
            held: self.late.held.load(Ordering::Acquire),
            appended_total: self.late.appended.load(Ordering::Acquire),
            flushed_total: self.late.flushed.load(Ordering::Acquire),
            conflicts_total: self.late.conflicts.load(Ordering::Acquire),
        }
    }

    /// Starts flushing the late samples (with none held, a flush only
    /// starts a new log segment and deletes the older ones: what they hold
    /// beside late samples is in the WAL). Commits with late samples wait
    /// until the flush is dropped or finished.
    pub fn begin_late_flush(&self) -> Result<LateFlush<'_>> {
        let stop = self.late.lock.write();
        let segment = match &self.wbl {
            Some(w) => Some(w.next_segment()?),
            None => None,
        };
        Ok(LateFlush {
            head: self,
            below: self.truncated_before(),
            empty: self.late.held.load(Ordering::Acquire) == 0,
            segment,
            _stop: stop,
        })
    }

    /// Counts an out-of-order conflict (see [`LateStats::conflicts_total`]).
    pub(crate) fn note_conflict(&self) {
        self.late.conflicts.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts `n` late samples applied.
    pub(crate) fn note_late(&self, n: u64) {
        if n > 0 {
            self.late.held.fetch_add(n, Ordering::AcqRel);
            self.late.appended.fetch_add(n, Ordering::AcqRel);
        }
    }

    /// Replays the late samples of `wbl/` after the WAL (see the module
    /// docs). Samples of series the WAL does not know are counted and
    /// skipped.
    pub(crate) fn replay_wbl(&self, dir: &std::path::Path) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        let policy = self.policy();
        let below = self.truncated_before();
        let (mut late, mut in_range, mut unknown, mut markers) = (0u64, 0u64, 0u64, 0u64);
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        WalLog::replay(dir, |_, rec| {
            match rec {
                Record::Samples(v) => {
                    for s in v {
                        if s.t >= below {
                            in_range += 1;
                            continue;
                        }
                        let Some(ms) = self.series.get(s.r) else {
                            unknown += 1;
                            continue;
                        };
                        let mut d = ms.data.lock();
                        let a = d.insert_ooo(s.t, s.v, REPLAYED, &policy);
                        self.num_chunks
                            .fetch_add(a.chunks_created as i64, Ordering::AcqRel);
                        if !a.inserted {
                            continue;
                        }
                        lo = lo.min(s.t);
                        hi = hi.max(s.t);
                        late += 1;
                    }
                }
                Record::MmapMarkers(v) => markers += v.len() as u64,
                _ => {}
            }
            Ok(())
        })?;
        self.widen(lo, hi);
        self.note_late(late);
        tracing::info!(
            dir = %dir.display(),
            late,
            in_range_skipped = in_range,
            unknown_series = unknown,
            markers_skipped = markers,
            "out-of-order log replayed"
        );
        Ok(())
    }
}

impl LateFlush<'_> {
    /// Late samples are older than this.
    pub fn below(&self) -> i64 {
        self.below
    }

    /// The starts of the aligned ranges of width `width` that hold late
    /// samples, ascending (a range may turn out empty: chunk spans can
    /// hold gaps).
    pub fn ranges(&self, width: i64) -> Vec<i64> {
        if self.empty {
            return Vec::new();
        }
        let mut spans = Vec::new();
        let mut starts = std::collections::BTreeSet::new();
        self.head.series.for_each(|s| {
            spans.clear();
            s.data.lock().late_spans(self.below, &mut spans);
            for &(a, b) in &spans {
                let mut r = a.div_euclid(width).saturating_mul(width);
                while r <= b {
                    starts.insert(r);
                    r = r.saturating_add(width);
                }
            }
        });
        starts.into_iter().collect()
    }

    /// A querier over the late samples in `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        Box::new(self.head.late_querier(mint, maxt, self.below))
    }

    /// Drops the late samples from the series (they are in blocks now) and
    /// the log segments that held them. Returns the samples dropped.
    pub fn finish(self) -> Result<u64> {
        let head = self.head;
        let (mut samples, mut chunks) = (0u64, 0u64);
        if !self.empty {
            head.series.for_each(|s| {
                let (n, c) = s.data.lock().drop_ooo(s.r, i64::MIN, self.below);
                samples += n;
                chunks += c;
            });
        }
        head.num_chunks.fetch_sub(chunks as i64, Ordering::AcqRel);
        head.late.held.store(0, Ordering::Release);
        head.late.flushed.fetch_add(samples, Ordering::AcqRel);
        if head.min_time() < self.below {
            head.min_time.fetch_max(self.below, Ordering::AcqRel);
        }
        if let (Some(w), Some(seg)) = (&head.wbl, self.segment) {
            w.truncate(seg)?;
        }
        if samples > 0 {
            tracing::info!(samples, below = self.below, "late samples flushed");
        }
        Ok(samples)
    }
}

/// The head's late-sample state.
#[derive(Debug, Default)]
pub(crate) struct Late {
    /// Taken shared by commits with late samples (log and apply), and
    /// exclusively by a flush.
    pub(crate) lock: parking_lot::RwLock<()>,
    pub(crate) held: std::sync::atomic::AtomicU64,
    pub(crate) appended: std::sync::atomic::AtomicU64,
    pub(crate) flushed: std::sync::atomic::AtomicU64,
    pub(crate) conflicts: std::sync::atomic::AtomicU64,
}
