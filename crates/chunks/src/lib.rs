//! Chunk segment files: block `chunks/` and the head's `chunks_head/`.
//!
//! * [`ChunkWriter`] / [`ChunkReader`]: the numbered segment files
//!   (`000001`, `000002`, ...) inside a persisted block's `chunks/`
//!   directory, in Prometheus's format (see `docs/format/chunks.md`). A
//!   [`ChunkRef`] is `(segment_index << 32) | byte_offset`, where the segment
//!   index is the 0-based position of the file in name order (file `000001`
//!   is index 0), exactly as Prometheus.
//! * [`HeadChunkWriter`] / [`HeadChunkReader`]: the head's memory-mapped
//!   chunk files in `chunks_head/` (see `docs/format/head_chunks.md`). A
//!   [`HeadChunkRef`] is `(file_sequence << 32) | record_offset`, where the
//!   file sequence is the file's number itself (file `000001` is 1), as
//!   Prometheus's `ChunkDiskMapperRef`.
//!
//! Every read verifies the chunk's CRC32-Castagnoli and reports damage as
//! [`ChunksError::Corruption`]; nothing here panics on bad file contents.

mod error;
mod files;
mod head;
mod head_reader;
mod reader;
mod writer;

pub use error::{ChunksError, Result};
pub use head::{HeadChunkOptions, HeadChunkWriter, MAX_HEAD_CHUNK_FILE_SIZE};
pub use head_reader::{HeadChunkMeta, HeadChunkReader};
pub use reader::{ChunkIter, ChunkReader};
pub use writer::{ChunkWriter, DEFAULT_SEGMENT_SIZE};

/// Reference to a chunk in a block: `(segment_index << 32) | byte_offset`.
pub type ChunkRef = u64;
/// Reference to a chunk in `chunks_head/`: `(file_sequence << 32) | record_offset`.
pub type HeadChunkRef = u64;

/// Magic number opening every block chunk segment file.
pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Magic number opening every head chunk file.
pub const MAGIC_HEAD_CHUNKS: u32 = 0x0130_BC91;
/// The only format version of both file kinds.
pub const FORMAT_V1: u8 = 1;
/// Magic (4) + version (1) + padding (3).
pub const SEGMENT_HEADER_SIZE: usize = 8;

/// Packs a block chunk reference.
pub fn block_chunk_ref(segment_index: u32, offset: u32) -> ChunkRef {
    (u64::from(segment_index) << 32) | u64::from(offset)
}

/// Splits a block chunk reference into `(segment_index, offset)`.
pub fn unpack_chunk_ref(r: ChunkRef) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}
