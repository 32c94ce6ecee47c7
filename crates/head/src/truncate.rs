//! Truncation: once a time range is persisted in a block, the head drops it.
//!
//! `truncate(mint)` removes in-order chunks that end before `mint` and
//! out-of-order samples between the previous truncation point and `mint`
//! (older ones are late samples, not in any block yet: see `late`), removes series left without samples
//! (unless an appender has staged samples for them), rejects later appends
//! before `mint`, checkpoints the WAL (series still held, samples at or
//! after `mint`) and drops head chunk files that only hold older chunks.
//! Removing series also empties the sorted-order cache, whose entries
//! hold their series: a removed series' memory is returned at once.

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::head::Head;

impl Head {
    /// Drops all data before `mint` (inclusive bound of what is kept).
    pub fn truncate(&self, mint: i64) -> Result<()> {
        let _g = self.truncating.lock();
        let prev = self.min_valid.fetch_max(mint, Ordering::AcqRel);
        let late_below = prev.min(mint);
        let mut dropped_chunks = 0i64;
        let mut empty = Vec::new();
        let mut new_max = i64::MIN;
        let mut late_min = i64::MAX;
        self.series.for_each(|s| {
            let mut d = s.data.lock();
            dropped_chunks += d.truncate(s.r, mint, late_below, &self.chunks) as i64;
            if d.is_empty() {
                empty.push(s.r);
            } else if let Some(m) = d.max_time_all() {
                new_max = new_max.max(m);
                if d.ooo.is_some() || d.ooo_hist_bounds().is_some() {
                    if let Some(m) = d.min_time_all() {
                        late_min = late_min.min(m);
                    }
                }
            }
        });
        self.num_chunks.fetch_sub(dropped_chunks, Ordering::AcqRel);
        let mut removed = 0usize;
        for r in empty {
            let gone = self
                .series
                .remove_if(r, |s| !s.is_pinned() && s.data.lock().is_empty());
            if let Some(s) = gone {
                self.index.remove(s.r, &s.labels);
                removed += 1;
            }
        }
        if removed > 0 {
            // Cached label orders hold the removed series alive (and would
            // keep their memory until evicted); queries rebuild them.
            self.orders.clear();
        }
        // Conservative bounds: the head holds nothing before `mint`, and
        // concurrent commits only widen them again.
        if self.index.num_series() == 0 || new_max == i64::MIN {
            self.min_time.store(i64::MAX, Ordering::Release);
            self.max_time.store(i64::MIN, Ordering::Release);
        } else {
            // Late samples keep the bound below `mint`.
            self.min_time
                .fetch_max(mint.min(late_min), Ordering::AcqRel);
        }
        if let Some(wal) = &self.wal {
            wal.checkpoint(|r| self.series.get(r).is_some(), mint)?;
        }
        self.chunks.truncate(mint)?;
        tracing::debug!(mint, removed, dropped_chunks, "head truncated");
        Ok(())
    }
}
