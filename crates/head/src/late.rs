//! Out-of-order samples, late ones included: how they are kept durable and
//! how they reach blocks.
//!
//! Prometheus accepts any sample within the out-of-order window, however
//! far behind the head's cut it falls; a lagging remote-write shard or a
//! sender catching up after an outage depends on that. A *late* sample is
//! one older than the head's last truncation, in a range already cut into
//! blocks; the head keeps it with the series' other out-of-order data, so
//! reads see it at once.
//!
//! - **Durability: `wbl/`.** Every out-of-order sample (late or inside the
//!   head's range) is logged to the out-of-order log `wbl/` (Prometheus's
//!   write-behind log: the same segment format, Samples records whose refs
//!   are series of the WAL), after the WAL records of its commit, and never
//!   to the WAL. The WAL then holds in-order samples only, which replay
//!   needs: it skips WAL samples older than a series' newest chunk in
//!   `chunks_head/`, where only in-order samples are. (Prometheus writes
//!   out-of-order samples to both logs and skips them when replaying its
//!   WAL; Cairn reads such a WAL too, and its `wbl/`.) Opening replays
//!   `wbl/` after the WAL, every sample to its series' out-of-order data;
//!   m-map markers are skipped.
//! - **Flush.** [`Head::begin_late_flush`] stops out-of-order commits (one
//!   lock, taken shared by every commit with out-of-order samples), starts
//!   a new log segment, and hands out [`LateFlush::ranges`] and a querier
//!   per range that reads the late samples alone; the database writes one
//!   block per range, never past the truncation point (they overlap blocks
//!   it has, and compaction merges them). [`LateFlush::finish`] then drops
//!   the late samples from the series, logs the out-of-order samples that
//!   stay (inside the head's range: a head cut writes them) into the new
//!   segment, and deletes the segments before it: the log's checkpoint. A
//!   crash between the blocks and `finish` replays samples that are also in
//!   a block; they are written again and merged away (same timestamp, same
//!   value).
//! - Truncation drops out-of-order samples only between the previous
//!   truncation point and the new one (a head cut wrote them); older ones
//!   are late and wait for the flush.

use std::sync::atomic::Ordering;

use cairn_storage::Querier;
use parking_lot::RwLockWriteGuard;

use crate::error::Result;
use crate::head::Head;
use crate::series::Tx;
use crate::wal_log::{Record, RefSample, WalLog};

/// Samples per record when a flush logs the remaining out-of-order
/// samples again.
const RELOG_BATCH: usize = 10_000;

/// The out-of-order log's directory in the data directory (Prometheus's name).
pub(crate) const WBL_DIR: &str = "wbl";

/// Late samples replayed from `wbl/` carry append id 0, which every reader sees.
const REPLAYED: Tx = Tx {
    id: 0,
    low_watermark: 1,
};

/// Figures of the out-of-order and late samples, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateStats {
    /// Out-of-order samples (late or not) held now, not yet flushed to blocks.
    pub held: u64,
    /// Late samples accepted since the head opened.
    pub appended_total: u64,
    /// Out-of-order samples flushed to blocks since the head opened.
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

    /// Counts `held` out-of-order samples applied, `late` of them late.
    pub(crate) fn note_ooo(&self, held: u64, late: u64) {
        if held > 0 {
            self.late.held.fetch_add(held, Ordering::AcqRel);
        }
        if late > 0 {
            self.late.appended.fetch_add(late, Ordering::AcqRel);
        }
    }

    /// Logs every out-of-order sample and histogram the head holds into
    /// `wbl/` again, so that the log alone has them all (a sample
    /// overtaken at commit was logged to the WAL only): what a head
    /// snapshot, which replaces the WAL but not `wbl/`, needs. Replay keeps
    /// one per timestamp, so the copies cost nothing but log space until
    /// the next flush. Does not sync the log.
    pub(crate) fn relog_ooo(&self) -> Result<()> {
        let Some(w) = &self.wbl else {
            return Ok(());
        };
        let mut keep: Vec<RefSample> = Vec::new();
        let mut err = None;
        self.series.for_each(|s| {
            let d = s.data.lock();
            if d.ooo.is_none() && d.ooo_hist_bounds().is_none() {
                return;
            }
            for x in d.ooo_from(s.r, i64::MIN) {
                keep.push(RefSample {
                    r: s.r,
                    t: x.t,
                    v: x.v,
                });
            }
            let hists = d.ooo_hists_from(i64::MIN);
            drop(d);
            if !hists.is_empty() {
                let recs = crate::hist::records(hists.iter().map(|(t, h)| (s.r, *t, h)));
                if let Err(e) = w.log(&recs) {
                    err.get_or_insert(e);
                }
            }
            if keep.len() >= RELOG_BATCH {
                if let Err(e) = w.log(&[Record::Samples(std::mem::take(&mut keep))]) {
                    err.get_or_insert(e);
                }
            }
        });
        if !keep.is_empty() {
            w.log(&[Record::Samples(keep)])?;
        }
        err.map_or(Ok(()), Err)
    }

    /// Inserts an out-of-order histogram replayed from `wbl/`; false when
    /// the series is unknown or the timestamp held already.
    fn replay_ooo_hist(&self, r: u64, t: i64, h: &crate::hist::HistValue) -> bool {
        let Some(ms) = self.series.get(r) else {
            return false;
        };
        let inserted = ms.data.lock().insert_ooo_hist(t, h, REPLAYED).inserted;
        inserted
    }

    /// Replays `wbl/` after the WAL (see the module docs): every sample
    /// and histogram goes to its series' out-of-order data. Samples of series the WAL
    /// does not know are counted and skipped.
    pub(crate) fn replay_wbl(&self, dir: &std::path::Path) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        let policy = self.policy();
        let below = self.truncated_before();
        let (mut held, mut late, mut unknown, mut markers) = (0u64, 0u64, 0u64, 0u64);
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        WalLog::replay(dir, |_, rec| {
            match rec {
                Record::Samples(v) => {
                    for s in v {
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
                        held += 1;
                        late += u64::from(s.t < below);
                    }
                }
                Record::Histograms { samples, .. } => {
                    for s in samples {
                        let h = crate::hist::HistValue::Int(std::sync::Arc::new(s.h));
                        if self.replay_ooo_hist(s.r, s.t, &h) {
                            lo = lo.min(s.t);
                            hi = hi.max(s.t);
                            held += 1;
                            late += u64::from(s.t < below);
                        } else {
                            unknown += u64::from(self.series.get(s.r).is_none());
                        }
                    }
                }
                Record::FloatHistograms { samples, .. } => {
                    for s in samples {
                        let h = crate::hist::HistValue::Float(std::sync::Arc::new(s.h));
                        if self.replay_ooo_hist(s.r, s.t, &h) {
                            lo = lo.min(s.t);
                            hi = hi.max(s.t);
                            held += 1;
                            late += u64::from(s.t < below);
                        } else {
                            unknown += u64::from(self.series.get(s.r).is_none());
                        }
                    }
                }
                Record::MmapMarkers(v) => markers += v.len() as u64,
                // A deletion, where it stands among the out-of-order
                // samples (the WAL's copy applied to the rest).
                Record::Tombstones(v) => {
                    for st in v {
                        let Some(ms) = self.series.get(st.r) else {
                            continue;
                        };
                        let mut d = ms.data.lock();
                        for (a, b) in st.intervals {
                            let (n, c) = d.drop_ooo(ms.r, a, b.saturating_add(1));
                            let nh = d.drop_ooo_hist(a, b.saturating_add(1));
                            held = held.saturating_sub(n + nh);
                            self.num_chunks.fetch_sub(c as i64, Ordering::AcqRel);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        self.widen(lo, hi);
        self.note_ooo(held, late);
        tracing::info!(
            dir = %dir.display(),
            samples = held,
            late,
            unknown_series = unknown,
            markers_skipped = markers,
            "out-of-order log replayed"
        );
        Ok(())
    }
}

impl LateFlush<'_> {
    /// Late samples are older than this: the head's truncation point.
    pub fn below(&self) -> i64 {
        self.below
    }

    /// The starts of the aligned ranges of width `width` that hold
    /// out-of-order samples, ascending (a range may turn out empty: chunk spans can
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

    /// A querier over the out-of-order samples alone in `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        Box::new(self.head.late_querier(mint, maxt, self.below))
    }

    /// Drops the out-of-order samples from the series (they are in blocks
    /// now) and the log segments that held them. Returns the samples
    /// dropped.
    pub fn finish(self) -> Result<u64> {
        let head = self.head;
        let (mut samples, mut chunks) = (0u64, 0u64);
        // The out-of-order samples that stay (inside the head's range) are
        // logged again, into the segment this flush started, so that the
        // older segments can go: the log's checkpoint.
        let mut keep: Vec<RefSample> = Vec::new();
        let mut kept = 0u64;
        let mut relog_err = None;
        if !self.empty {
            head.series.for_each(|s| {
                let mut d = s.data.lock();
                let (n, c) = d.drop_ooo(s.r, i64::MIN, self.below);
                samples += n + d.drop_ooo_hist(i64::MIN, self.below);
                chunks += c;
                for x in d.ooo_from(s.r, self.below) {
                    keep.push(RefSample {
                        r: s.r,
                        t: x.t,
                        v: x.v,
                    });
                }
                let hists = d.ooo_hists_from(self.below);
                drop(d);
                if !hists.is_empty() {
                    kept += hists.len() as u64;
                    let recs = crate::hist::records(hists.iter().map(|(t, h)| (s.r, *t, h)));
                    if let Some(w) = &head.wbl {
                        if let Err(e) = w.log(&recs) {
                            relog_err.get_or_insert(e);
                        }
                    }
                }
                if keep.len() >= RELOG_BATCH {
                    kept += keep.len() as u64;
                    if let Some(w) = &head.wbl {
                        if let Err(e) = w.log(&[Record::Samples(std::mem::take(&mut keep))]) {
                            relog_err.get_or_insert(e);
                        }
                    }
                    keep.clear();
                }
            });
        }
        kept += keep.len() as u64;
        if let (Some(w), false) = (&head.wbl, keep.is_empty()) {
            if let Err(e) = w.log(&[Record::Samples(keep)]) {
                relog_err.get_or_insert(e);
            }
        }
        head.num_chunks.fetch_sub(chunks as i64, Ordering::AcqRel);
        head.late.held.store(kept, Ordering::Release);
        head.late.flushed.fetch_add(samples, Ordering::AcqRel);
        let truncated = head.truncated_before();
        if head.min_time() < truncated {
            head.min_time.fetch_max(truncated, Ordering::AcqRel);
        }
        if let Some(e) = relog_err {
            // The older segments still hold everything: keep them.
            return Err(e);
        }
        if let (Some(w), Some(seg)) = (&head.wbl, self.segment) {
            w.sync()?;
            w.truncate(seg)?;
        }
        if samples > 0 {
            tracing::info!(samples, "out-of-order samples flushed");
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
