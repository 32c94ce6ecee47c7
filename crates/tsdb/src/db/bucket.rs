//! Maintenance of the blocks this database owns that are only in its
//! remote source (a bucket it uploads to, after local retention deleted
//! its copies): they are compacted, downsampled and merged by level as
//! local blocks are, so that a bucket fed by a Cairn with a short local
//! retention still ends up with long blocks and downsampled levels.
//!
//! Contracts:
//! - Inputs are read through [`BlockSource::open_owned`](super::BlockSource)
//!   (by byte range); outputs are written to the local directory like any
//!   other block, whoever uploads local blocks uploads them, and that
//!   uploader retires the remote inputs (Cairn's shipper marks a bucket
//!   block for deletion once an upload's sources cover its own). Nothing
//!   here deletes from the source.
//! - An owned block covered by a local block (same resolution, sources
//!   all among the local block's) is not offered again (the source's
//!   contract), so a round never compacts the same inputs twice.
//! - Raw remote blocks are compacted with ranges up to
//!   `remote_max_block_duration` (the bucket's, not the local retention's
//!   tenth), and downsampled by the same rules as local blocks, measured
//!   against those ranges.
//! - At most one remote compaction and one remote downsampling a
//!   maintenance round: they read from the bucket while holding the
//!   maintenance lock, which head cuts wait for.

use std::sync::Arc;

use ulid::Ulid;

use super::Db;
use crate::block::Block;
use crate::meta::BlockMeta;
use crate::plan::{compaction_ranges, plan};
use crate::{Result, TsdbError};

impl Db {
    /// The metas of the owned blocks that are only in the remote source.
    pub(crate) fn owned_remote(&self) -> Vec<BlockMeta> {
        match &self.opts.remote_blocks {
            Some(src) => src.0.owned(&self.blocks()),
            None => Vec::new(),
        }
    }

    /// The block `id`: an open local one, or an owned remote one.
    pub(crate) fn find_block(&self, id: Ulid) -> Result<Option<Arc<Block>>> {
        if let Some(b) = self.blocks.read().iter().find(|b| b.ulid() == id) {
            return Ok(Some(b.clone()));
        }
        match &self.opts.remote_blocks {
            Some(src) => src.0.open_owned(id).map_err(TsdbError::Storage),
            None => Ok(None),
        }
    }

    /// The compaction ranges of owned remote blocks, smallest first.
    pub(crate) fn remote_ranges(&self) -> Vec<i64> {
        compaction_ranges(
            self.opts.block_range,
            self.opts
                .remote_max_block_duration
                .max(self.opts.block_range),
        )
    }

    /// Compacts one group of owned raw blocks that are only in the remote
    /// source, planned by the leveled planner over ranges up to
    /// [`DbOptions::remote_max_block_duration`](super::DbOptions). One
    /// group a round: reading from a bucket is slow, and head cuts wait
    /// for the maintenance lock; the next round takes the next group.
    /// The result is a local block. Returns it.
    pub fn compact_remote(&self) -> Result<Vec<Ulid>> {
        if self.opts.remote_max_block_duration <= 0 || self.opts.remote_blocks.is_none() {
            return Ok(Vec::new());
        }
        let _g = self.maint.lock();
        let metas: Vec<BlockMeta> = self
            .owned_remote()
            .into_iter()
            .filter(|m| m.resolution() == 0)
            .collect();
        let group = plan(&metas, &self.remote_ranges());
        if group.is_empty() {
            return Ok(Vec::new());
        }
        tracing::info!(blocks = ?group, "compacting blocks held only in the bucket");
        Ok(self.compact_blocks(&group)?.into_iter().collect())
    }
}
