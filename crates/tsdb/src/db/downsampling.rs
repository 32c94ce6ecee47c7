//! The database's downsampling pass: every raw block that compaction has
//! finished with gets a 5-minute block, every 5-minute block a 1-hour block
//! (docs/format/downsample.md), one block at a time, streaming.

use std::collections::HashMap;

use cairn_storage::MetricType;
use ulid::Ulid;

use super::{Db, DbEvent};
use crate::block::{BlockHandle, BlockQuerier};
use crate::downsample::{downsample, plan_downsampling, DownsampleJob, Planned};
use crate::meta::{BlockDesc, BlockMeta};
use crate::Result;

/// Thanos's waits before downsampling: raw blocks spanning 40 h, 5-minute
/// blocks spanning 10 days.
pub(crate) const THANOS_MIN_SPAN: [i64; 2] = [40 * super::HOUR, 10 * super::DAY];

impl Db {
    /// The span a block must reach before it is downsampled, per level:
    /// Thanos's waits, or the largest block compaction makes when that is
    /// smaller (a block never grows past it, so waiting longer would mean
    /// never).
    pub(crate) fn downsample_min_span(&self) -> [i64; 2] {
        let largest = self.largest_compaction_range();
        THANOS_MIN_SPAN.map(|t| t.min(largest))
    }

    /// The widest block raw compaction makes.
    fn largest_compaction_range(&self) -> i64 {
        crate::plan::compaction_ranges(self.opts.block_range, self.opts.max_block_duration())
            .last()
            .copied()
            .unwrap_or(self.opts.block_range)
    }

    /// Downsamples every block that is due (see
    /// [`crate::downsample::plan_downsampling`]) until none is left; with
    /// `every_block`, whatever its span (`cairn tsdb downsample`). Returns
    /// the new blocks. Does nothing when downsampling is off.
    pub fn downsample_now(&self, every_block: bool) -> Result<Vec<Ulid>> {
        if !self.opts.downsample {
            return Ok(Vec::new());
        }
        let _g = self.maint.lock();
        let types: HashMap<String, MetricType> = self
            .head
            .metadata()
            .into_iter()
            .map(|(k, m)| (k, m.kind))
            .collect();
        let metric_type = |name: &str| types.get(name).copied().unwrap_or_default();
        let (span, settle) = if every_block {
            ([0, 0], 0)
        } else {
            (self.downsample_min_span(), self.largest_compaction_range())
        };
        // Owned blocks only in the remote source grow by the remote
        // ranges: their spans and settling are measured against those.
        let remote_largest = self.remote_ranges().last().copied().unwrap_or(0);
        let remote_span = THANOS_MIN_SPAN.map(|t| t.min(remote_largest));
        let mut out = Vec::new();
        // Inputs that summarised to nothing: not planned again this round.
        let mut empty: Vec<(Ulid, i64)> = Vec::new();
        // One remote input a round (`db/bucket.rs`): it reads the bucket
        // under the maintenance lock.
        let mut remote_budget = 1usize;
        loop {
            let local: Vec<BlockMeta> = self.blocks.read().iter().map(|b| b.meta()).collect();
            let remote = if every_block {
                Vec::new()
            } else {
                self.owned_remote()
            };
            let is_local = |u: &Ulid| local.iter().any(|m| m.ulid == *u);
            let mut all = local.clone();
            all.extend(remote.iter().cloned());
            let mut todo: Vec<Planned> = plan_downsampling(&all, span, settle)
                .into_iter()
                .filter(|p| is_local(&p.input.ulid))
                .collect();
            todo.retain(|p| !empty.contains(&(p.input.ulid, p.to)));
            if !remote.is_empty() && remote_budget > 0 {
                let next = plan_downsampling(&all, remote_span, remote_largest)
                    .into_iter()
                    .find(|p| !is_local(&p.input.ulid) && !empty.contains(&(p.input.ulid, p.to)));
                if let Some(p) = next {
                    remote_budget -= 1;
                    todo.push(p);
                }
            }
            if todo.is_empty() {
                break;
            }
            for p in todo {
                match self.downsample_one(&p, &metric_type)? {
                    Some(u) => out.push(u),
                    None => empty.push((p.input.ulid, p.to)),
                }
            }
        }
        Ok(out)
    }

    /// Merges adjacent blocks of each downsampled level as compaction merges
    /// raw blocks (the leveled planner of `plan.rs`, ×3 ranges up to a
    /// tenth of the level's retention, at most 31 days), so that a level's
    /// chunks span up to [`crate::downsample`]'s chunk length and its index
    /// is shared by many windows. Returns the new blocks.
    pub fn compact_levels(&self) -> Result<Vec<Ulid>> {
        if !self.opts.downsample {
            return Ok(Vec::new());
        }
        let _g = self.maint.lock();
        let mut out = Vec::new();
        for (res, keep) in [
            (crate::downsample::RES_5M, self.opts.retention_5m),
            (crate::downsample::RES_1H, self.opts.retention_1h),
        ] {
            let max = if keep > 0 { keep / 10 } else { i64::MAX };
            let ranges =
                crate::plan::compaction_ranges(self.opts.block_range, max.min(31 * super::DAY));
            loop {
                // Planned on the raw bounds the blocks summarise: a level's
                // block over raw [a, b) records [a + 1, b + 1).
                let mut metas: Vec<BlockMeta> =
                    self.blocks.read().iter().map(|b| b.meta()).collect();
                metas.extend(self.owned_remote());
                let metas: Vec<BlockMeta> = metas
                    .into_iter()
                    .filter(|m| m.resolution() == res)
                    .map(|mut m| {
                        m.min_time -= 1;
                        m.max_time -= 1;
                        m
                    })
                    .collect();
                let group = crate::plan::plan(&metas, &ranges);
                if group.len() < 2 {
                    break;
                }
                // Merging reads aggregate chunks in time order and cannot
                // combine two blocks' windows: overlapping blocks of a level
                // (which the planner puts first) stay as they are.
                let mut spans: Vec<(i64, i64)> = metas
                    .iter()
                    .filter(|m| group.contains(&m.ulid))
                    .map(|m| (m.min_time, m.max_time))
                    .collect();
                spans.sort_unstable();
                if spans.windows(2).any(|w| matches!(w, [a, b] if b.0 < a.1)) {
                    tracing::warn!(
                        resolution = res,
                        "overlapping blocks in a downsampled level; not merged"
                    );
                    break;
                }
                match self.merge_level(res, &group)? {
                    Some(u) => out.push(u),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    fn merge_level(&self, res: i64, ids: &[Ulid]) -> Result<Option<Ulid>> {
        let Some(m) = self.merge_inputs(ids)? else {
            return Ok(None);
        };
        let no_type = |_: &str| MetricType::Unknown;
        let release = || m.blocks.iter().for_each(|b| b.release_pages());
        let job = DownsampleJob {
            from: res,
            to: res,
            mint: m.mint,
            maxt: m.maxt,
            sources: m.sources.clone(),
            parents: m.parents.clone(),
            // The inputs already dropped what their types did not need.
            metric_type: &no_type,
            progress: Some(&release),
            encoding: self.opts.chunk_encoding,
        };
        // The blocks do not overlap, so the merge passes their aggregate
        // chunks through in time order.
        let meta = downsample(&self.dir, &m.querier(), &job)?;
        self.finish_merge(meta.map(|x| x.ulid), &m, 1)
    }

    fn downsample_one(
        &self,
        p: &Planned,
        metric_type: &(dyn Fn(&str) -> MetricType + Sync),
    ) -> Result<Option<Ulid>> {
        let (mint, maxt) = p.bounds();
        let m = &p.input;
        // The blocks read: the input and whatever raw block the range
        // reaches into (the next block's first sample).
        let inputs: Vec<std::sync::Arc<crate::block::Block>> = self
            .blocks
            .read()
            .iter()
            .filter(|b| {
                b.ulid() == m.ulid
                    || (m.resolution() == 0
                        && b.meta().resolution() == 0
                        && b.meta().overlaps_closed(mint, maxt - 1))
            })
            .cloned()
            .collect();
        let release = || inputs.iter().for_each(|b| b.release_pages());
        let job = DownsampleJob {
            from: m.resolution(),
            to: p.to,
            mint,
            maxt,
            sources: m.compaction.sources.clone(),
            parents: vec![BlockDesc::of(m)],
            metric_type,
            progress: Some(&release),
            encoding: self.opts.chunk_encoding,
        };
        let meta = if job.from == 0 {
            // Raw data through the database, so the sample at the block's
            // end (the next block's or the head's) closes the last window.
            let q = super::levels::LevelQuerier::new(self, mint, maxt - 1)?;
            downsample(&self.dir, &q, &job)?
        } else {
            let Some(b) = self.find_block(m.ulid)? else {
                return Ok(None);
            };
            let q = BlockQuerier::new(BlockHandle::Shared(b), mint, maxt - 1);
            downsample(&self.dir, &q, &job)?
        };
        release();
        let Some(meta) = meta else { return Ok(None) };
        self.add_block(&meta.ulid)?;
        self.events.emit(DbEvent::Downsampled {
            ulid: meta.ulid,
            input: m.ulid,
            resolution: p.to,
        });
        Ok(Some(meta.ulid))
    }
}
