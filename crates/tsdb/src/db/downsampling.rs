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
        let largest =
            crate::plan::compaction_ranges(self.opts.block_range, self.opts.max_block_duration())
                .last()
                .copied()
                .unwrap_or(self.opts.block_range);
        THANOS_MIN_SPAN.map(|t| t.min(largest))
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
        let span = if every_block {
            [0, 0]
        } else {
            self.downsample_min_span()
        };
        let mut out = Vec::new();
        let mut failed: Vec<(Ulid, i64)> = Vec::new();
        loop {
            let metas: Vec<BlockMeta> = self.blocks.read().iter().map(|b| b.meta()).collect();
            let todo: Vec<Planned> = plan_downsampling(&metas, span)
                .into_iter()
                .filter(|p| !failed.contains(&(p.input.ulid, p.to)))
                .collect();
            if todo.is_empty() {
                break;
            }
            for p in todo {
                match self.downsample_one(&p, &metric_type)? {
                    Some(u) => out.push(u),
                    // Nothing to summarise: do not plan it again this round.
                    None => failed.push((p.input.ulid, p.to)),
                }
            }
        }
        Ok(out)
    }

    fn downsample_one(
        &self,
        p: &Planned,
        metric_type: &(dyn Fn(&str) -> MetricType + Sync),
    ) -> Result<Option<Ulid>> {
        let (mint, maxt) = p.bounds();
        let m = &p.input;
        let job = DownsampleJob {
            from: m.resolution(),
            to: p.to,
            mint,
            maxt,
            sources: m.compaction.sources.clone(),
            parents: vec![BlockDesc {
                ulid: m.ulid,
                min_time: m.min_time,
                max_time: m.max_time,
            }],
            metric_type,
        };
        let meta = if job.from == 0 {
            // Raw data through the database, so the sample at the block's
            // end (the next block's or the head's) closes the last window.
            let q = super::levels::LevelQuerier::new(self, mint, maxt - 1)?;
            downsample(&self.dir, &q, &job)?
        } else {
            let Some(b) = self
                .blocks
                .read()
                .iter()
                .find(|b| b.ulid() == m.ulid)
                .cloned()
            else {
                return Ok(None);
            };
            let q = BlockQuerier::new(BlockHandle::Shared(b), mint, maxt - 1);
            downsample(&self.dir, &q, &job)?
        };
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
