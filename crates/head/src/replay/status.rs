//! How far the WAL replay of an opening head has got, in the WAL's own
//! segment numbers, for Prometheus's `/api/v1/status/walreplay`: shared
//! with whoever serves that (the server answers it while the head is still
//! opening), set by the replay.
//!
//! Contract, as Prometheus's `WALReplayStatus`: `min` and `max` are the
//! first and last segment after the newest checkpoint; `current` is `min`
//! while the first segment is read and the last segment read in full after
//! that. All three are 0 until a segment is read (while the chunk files
//! are scanned and the checkpoint is read). Once the head is open, `max`
//! and `current` are the segment it writes next (Prometheus opens that
//! segment before its replay, so its `max` counts it), and `min` the first
//! segment replayed, or that same segment when none was (an empty WAL, or
//! a head loaded from its snapshot). `corruptions` counts the damaged WAL
//! tails the replay stopped at (a write torn by a crash; the WAL is
//! truncated there when it opens): Prometheus's
//! `prometheus_tsdb_wal_corruptions_total`, its runtime information's
//! `corruptionCount`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// See the module docs.
#[derive(Debug, Default)]
pub struct ReplayStatus {
    /// Whether a segment has been read.
    read: AtomicBool,
    min: AtomicU32,
    max: AtomicU32,
    current: AtomicU32,
    corruptions: AtomicU64,
}

/// A reading of [`ReplayStatus`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayProgressNow {
    pub min: u32,
    pub max: u32,
    pub current: u32,
}

impl ReplayStatus {
    /// The status now.
    pub fn get(&self) -> ReplayProgressNow {
        ReplayProgressNow {
            min: self.min.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            current: self.current.load(Ordering::Relaxed),
        }
    }

    /// Damaged WAL tails found by replays (see the module docs).
    pub fn corruptions(&self) -> u64 {
        self.corruptions.load(Ordering::Relaxed)
    }

    pub(crate) fn corrupted(&self) {
        self.corruptions.fetch_add(1, Ordering::Relaxed);
    }

    /// Segment `seg` of `min..=max` is being read.
    pub(crate) fn reading(&self, (min, max): (u32, u32), seg: u32) {
        self.read.store(true, Ordering::Relaxed);
        self.min.store(min, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
        self.current
            .store(seg.saturating_sub(1).max(min), Ordering::Relaxed);
    }

    /// The head is open and writes segment `next`.
    pub(crate) fn opened(&self, next: u32) {
        if !self.read.load(Ordering::Relaxed) {
            self.min.store(next, Ordering::Relaxed);
        }
        self.max.store(next, Ordering::Relaxed);
        self.current.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_prometheus_numbering() {
        let s = ReplayStatus::default();
        assert_eq!(s.get(), ReplayProgressNow::default());
        s.reading((5, 9), 5);
        assert_eq!((s.get().min, s.get().max, s.get().current), (5, 9, 5));
        s.reading((5, 9), 8);
        assert_eq!(s.get().current, 7);
        s.opened(10);
        assert_eq!((s.get().min, s.get().max, s.get().current), (5, 10, 10));
        let fresh = ReplayStatus::default();
        fresh.opened(3);
        assert_eq!(
            (fresh.get().min, fresh.get().max, fresh.get().current),
            (3, 3, 3)
        );
    }
}
