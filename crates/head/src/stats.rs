//! Head statistics, including the cardinality lists of Prometheus's
//! `/api/v1/status/tsdb`.

use std::sync::atomic::Ordering;

use crate::head::Head;
use crate::postings::CardinalityStats;

/// A summary of what the head holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadStats {
    pub num_series: u64,
    /// In-order chunks (full and open) plus encoded out-of-order chunks.
    pub num_chunks: u64,
    /// Inclusive time bounds; `i64::MAX`/`i64::MIN` when empty.
    pub min_time: i64,
    pub max_time: i64,
    /// Top-10 lists and label-pair count, from the postings.
    pub cardinality: CardinalityStats,
}

impl Head {
    /// Current statistics (top-10 cardinality lists).
    pub fn stats(&self) -> HeadStats {
        self.stats_with_limit(10)
    }

    /// Current statistics with top-`limit` cardinality lists.
    pub fn stats_with_limit(&self, limit: usize) -> HeadStats {
        HeadStats {
            num_series: self.index.num_series(),
            num_chunks: self.num_chunks.load(Ordering::Acquire).max(0) as u64,
            min_time: self.min_time(),
            max_time: self.max_time(),
            cardinality: self.index.cardinality(limit),
        }
    }
}

impl Head {
    /// The WAL's fsyncs so far and their total duration in seconds; `None`
    /// when the head runs without a WAL.
    pub fn wal_fsync_durations(&self) -> Option<(u64, f64)> {
        self.wal.as_ref().map(|w| w.fsync_durations())
    }
}
