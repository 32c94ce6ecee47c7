//! A persisted block: an immutable directory holding `meta.json`, `index`,
//! `chunks/` and `tombstones`, covering `[min_time, max_time)`.
//!
//! Opening a block maps the index and chunk files; queries stream series
//! through postings and decode chunks lazily, so a block is never loaded
//! whole. Only the tombstones file changes after creation (deletions).

mod hist;
pub(crate) use hist::encode_merged as encode_merged_histograms;
mod querier;
mod share;
pub mod writer;

use std::path::{Path, PathBuf};

use cairn_chunks::ChunkReader;
use cairn_index::{postings_for_matchers, ChunkMeta, IndexReader};
use cairn_model::Matcher;
use cairn_storage::{Querier, Queryable};
use parking_lot::RwLock;

use crate::fsutil::dir_size;
use crate::meta::BlockMeta;
use crate::tombstones::{Interval, Tombstones};
use crate::{Result, TsdbError};

pub use querier::{BlockHandle, BlockQuerier};
pub use writer::{
    write_block, write_block_with, BlockWriteOptions, ChunkProducer, TMP_FOR_CREATION,
};

/// An open block.
pub struct Block {
    dir: PathBuf,
    meta: RwLock<BlockMeta>,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: RwLock<Tombstones>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &*self.meta.read())
            .finish()
    }
}

impl Block {
    /// Opens the block in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let meta = BlockMeta::read(dir)?;
        let ip = dir.join("index");
        let index = IndexReader::open(&ip).map_err(|e| TsdbError::Index {
            path: ip.clone(),
            source: Box::new(e),
        })?;
        let cp = dir.join("chunks");
        let chunks = ChunkReader::open(&cp).map_err(|e| TsdbError::Chunks {
            path: cp.clone(),
            source: Box::new(e),
        })?;
        let tombstones = Tombstones::read(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            meta: RwLock::new(meta),
            index,
            chunks,
            tombstones: RwLock::new(tombstones),
        })
    }

    /// A block whose files are read by other means (object storage):
    /// `dir` is where it keeps its local state (meta.json, the index
    /// header, tombstones) and names it in errors.
    pub fn from_parts(
        dir: &Path,
        meta: BlockMeta,
        index: IndexReader,
        chunks: ChunkReader,
        tombstones: Tombstones,
    ) -> Self {
        Self {
            dir: dir.to_owned(),
            meta: RwLock::new(meta),
            index,
            chunks,
            tombstones: RwLock::new(tombstones),
        }
    }

    /// Lets go of the resident pages of the block's mapped index and chunk
    /// files (they fault back in when read again): a long pass over the
    /// block (downsampling) calls it now and then so that its resident
    /// set stays bounded.
    pub fn release_pages(&self) {
        self.index.release_pages();
        self.chunks.release_pages();
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of the block's meta.
    pub fn meta(&self) -> BlockMeta {
        self.meta.read().clone()
    }

    /// The block's id.
    pub fn ulid(&self) -> ulid::Ulid {
        self.meta.read().ulid
    }

    /// The index reader.
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The chunk reader.
    pub fn chunk_reader(&self) -> &ChunkReader {
        &self.chunks
    }

    /// A copy of the tombstones.
    pub fn tombstones(&self) -> Tombstones {
        self.tombstones.read().clone()
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        dir_size(&self.dir)
    }

    /// Marks samples in `[mint, maxt]` of the series matching `matchers` as
    /// deleted, persisting the tombstones file and meta.json's count.
    /// Returns the number of series touched.
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<u64> {
        let ip = self.dir.join("index");
        let ix_err = |e: cairn_index::IndexError| TsdbError::Index {
            path: ip.clone(),
            source: Box::new(e),
        };
        let ps = postings_for_matchers(&self.index, matchers).map_err(ix_err)?;
        let mut chunks: Vec<ChunkMeta> = Vec::new();
        let mut ts = self.tombstones.write();
        let mut next = ts.clone();
        let mut touched = 0;
        for r in ps {
            chunks.clear();
            self.index.series(r, &mut chunks).map_err(ix_err)?;
            let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
                continue;
            };
            if chunks
                .iter()
                .any(|c| c.min_time <= maxt && mint <= c.max_time)
            {
                next.add(
                    r,
                    Interval::new(mint.max(first.min_time), maxt.min(last.max_time)),
                );
                touched += 1;
            }
        }
        if touched == 0 {
            return Ok(0);
        }
        next.write(&self.dir)?;
        let mut m = self.meta.write();
        m.stats.num_tombstones = next.total();
        m.write(&self.dir)?;
        *ts = next;
        Ok(touched)
    }
}

impl Queryable for Block {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(BlockQuerier::new(
            BlockHandle::Borrowed(self),
            mint,
            maxt,
        )))
    }
}
