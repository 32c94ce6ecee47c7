//! Writes a block's `chunks/` segment files.
//!
//! Chunks are appended in call order. A new segment is cut when the next
//! chunk (counted with the largest possible 5-byte length prefix, as
//! Prometheus does) would push a non-empty segment past the segment size.
//! Data is buffered; [`ChunkWriter::finish`] flushes, fsyncs every file and
//! the directory. Blocks are made atomic one level up (the block directory is
//! written under a temporary name and renamed), so segments are written in
//! place.

use crate::files::{header, list_numbered, segment_path, sync_dir};
use crate::{
    block_chunk_ref, ChunkRef, ChunksError, Result, FORMAT_V1, MAGIC_CHUNKS, SEGMENT_HEADER_SIZE,
};
use cairn_codec::{crc32c, crc32c_append, varint};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Prometheus's segment size limit: 512 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// Bytes reserved for the length prefix when sizing segments (`MaxVarintLen32`).
const MAX_LEN_FIELD: u64 = 5;

struct Tail {
    path: PathBuf,
    w: BufWriter<File>,
}

/// Writer of block chunk segment files.
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    /// Number of segments created so far.
    segments: u32,
    tail: Option<Tail>,
    /// Bytes in the tail segment.
    n: u64,
    buf: Vec<u8>,
}

impl ChunkWriter {
    /// Creates `dir` (if needed) for a fresh set of segments of at most
    /// [`DEFAULT_SEGMENT_SIZE`] bytes. Fails if `dir` already has segments,
    /// because refs count segments from the first one this writer creates.
    pub fn create(dir: &Path) -> Result<Self> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    /// Like [`ChunkWriter::create`] with a custom segment size (tests use
    /// small ones to exercise cutting). Sizes are capped at 4 GiB so offsets
    /// fit the lower half of a [`ChunkRef`].
    pub fn with_segment_size(dir: &Path, segment_size: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| ChunksError::io(dir, e))?;
        if !list_numbered(dir)?.is_empty() {
            return Err(ChunksError::NotEmpty {
                path: dir.to_path_buf(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_size: segment_size.min(u64::from(u32::MAX)),
            segments: 0,
            tail: None,
            n: 0,
            buf: Vec::with_capacity(16),
        })
    }

    /// Appends one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<ChunkRef> {
        let size = MAX_LEN_FIELD + 1 + data.len() as u64 + 4;
        let needs_cut = self.tail.is_none()
            || (self.n > SEGMENT_HEADER_SIZE as u64 && self.n + size > self.segment_size);
        if needs_cut {
            self.cut()?;
        }
        let offset = u32::try_from(self.n).map_err(|_| ChunksError::ChunkTooLarge {
            path: self.dir.clone(),
            len: data.len(),
        })?;
        if u64::from(offset) + size > u64::from(u32::MAX) {
            return Err(ChunksError::ChunkTooLarge {
                path: self.dir.clone(),
                len: data.len(),
            });
        }
        let r = block_chunk_ref(self.segments - 1, offset);
        self.buf.clear();
        varint::put_uvarint(&mut self.buf, data.len() as u64);
        self.buf.push(encoding);
        let crc = crc32c_append(crc32c(&[encoding]), data);
        let Some(tail) = self.tail.as_mut() else {
            return Err(ChunksError::BadRef {
                chunk_ref: r,
                reason: "no open segment".into(),
            });
        };
        let path = &tail.path;
        tail.w
            .write_all(&self.buf)
            .map_err(|e| ChunksError::io(path, e))?;
        tail.w
            .write_all(data)
            .map_err(|e| ChunksError::io(path, e))?;
        tail.w
            .write_all(&crc.to_be_bytes())
            .map_err(|e| ChunksError::io(path, e))?;
        self.n += (self.buf.len() + data.len() + 4) as u64;
        Ok(r)
    }

    /// Number of segment files created so far.
    pub fn num_segments(&self) -> u32 {
        self.segments
    }

    /// Flushes and fsyncs every segment and the directory.
    pub fn finish(mut self) -> Result<()> {
        self.finalize_tail()?;
        sync_dir(&self.dir)
    }

    fn finalize_tail(&mut self) -> Result<()> {
        if let Some(tail) = self.tail.take() {
            let Tail { path, w } = tail;
            let f = w
                .into_inner()
                .map_err(|e| ChunksError::io(&path, e.into_error()))?;
            f.sync_all().map_err(|e| ChunksError::io(&path, e))?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        self.finalize_tail()?;
        let path = segment_path(&self.dir, self.segments + 1);
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ChunksError::io(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&header(MAGIC_CHUNKS, FORMAT_V1))
            .map_err(|e| ChunksError::io(&path, e))?;
        self.tail = Some(Tail { path, w });
        self.segments += 1;
        self.n = SEGMENT_HEADER_SIZE as u64;
        Ok(())
    }
}
