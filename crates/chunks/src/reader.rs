//! Reads a block's `chunks/` segment files through read-only mmaps.
//!
//! Segments are the directory's numerically named files in ascending order;
//! a [`ChunkRef`]'s segment index is the position in that order (0-based).
//! Every chunk read checks the CRC32-Castagnoli over encoding byte + data.

use crate::files::{check_crc, list_numbered, open_segment, BLOCK_SEGMENT};
use crate::{unpack_chunk_ref, ChunkRef, ChunksError, Result, SEGMENT_HEADER_SIZE};
use cairn_codec::varint;
use memmap2::Mmap;
use std::path::{Path, PathBuf};

struct Segment {
    path: PathBuf,
    map: Mmap,
}

/// Read-only view of a block's chunk segments.
pub struct ChunkReader {
    segments: Vec<Segment>,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field(
                "segments",
                &self.segments.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ChunkReader {
    /// Maps every segment of `dir` and checks each header.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut segments = Vec::new();
        for (_, path) in list_numbered(dir)? {
            let map = open_segment(&path, BLOCK_SEGMENT)?;
            segments.push(Segment { path, map });
        }
        Ok(Self { segments })
    }

    /// Lets go of the pages of the mapped segments that this process has
    /// read; see `cairn_index::IndexReader::release_pages`.
    pub fn release_pages(&self) {
        for s in &self.segments {
            // SAFETY: a read-only shared mapping of an immutable segment
            // file: MADV_DONTNEED drops this process's page-table entries
            // only, and later reads fault in the same bytes from the file,
            // so borrowed chunk slices stay valid and unchanged.
            let _ = unsafe { s.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|s| s.map.len() as u64).sum()
    }

    /// The encoding byte and data of the chunk at `r`, CRC-checked. The data
    /// borrows the mmapped file.
    pub fn chunk(&self, r: ChunkRef) -> Result<(u8, &[u8])> {
        let (seg, off) = unpack_chunk_ref(r);
        let s = self
            .segments
            .get(seg as usize)
            .ok_or_else(|| ChunksError::BadRef {
                chunk_ref: r,
                reason: format!(
                    "segment index {seg} but only {} segments",
                    self.segments.len()
                ),
            })?;
        if (off as usize) < SEGMENT_HEADER_SIZE {
            return Err(ChunksError::BadRef {
                chunk_ref: r,
                reason: format!("offset {off} inside the segment header"),
            });
        }
        parse_chunk(&s.path, &s.map, off as usize).map(|(enc, data, _)| (enc, data))
    }

    /// Walks every chunk of every segment in file order.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            reader: self,
            seg: 0,
            off: SEGMENT_HEADER_SIZE,
            failed: false,
        }
    }
}

/// Parses the chunk record at `off`: returns encoding, data and the offset
/// just past the record.
fn parse_chunk<'a>(path: &Path, b: &'a [u8], off: usize) -> Result<(u8, &'a [u8], usize)> {
    let rest = b.get(off..).unwrap_or(&[]);
    let (len, n) = varint::uvarint(rest)
        .map_err(|e| ChunksError::corrupt(path, off, "chunk length", "a uvarint", e.to_string()))?;
    let enc_at = off + n;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| enc_at.checked_add(1)?.checked_add(l)?.checked_add(4));
    let Some(end) = end.filter(|&e| e <= b.len()) else {
        return Err(ChunksError::corrupt(
            path,
            off,
            "chunk record",
            format!("{len} data bytes + 5 within the segment"),
            format!("{} bytes left", b.len().saturating_sub(enc_at)),
        ));
    };
    let (Some(body), Some(sum)) = (b.get(enc_at..end - 4), b.get(end - 4..end)) else {
        return Err(ChunksError::corrupt(
            path,
            off,
            "chunk record",
            "in bounds",
            "out of bounds",
        ));
    };
    check_crc(path, off, "chunk checksum", body, sum)?;
    let (enc, data) = body.split_first().ok_or_else(|| {
        ChunksError::corrupt(path, off, "chunk record", "an encoding byte", "nothing")
    })?;
    Ok((*enc, data, end))
}

/// Sequential walk over all chunks of a [`ChunkReader`]: yields
/// `(ref, encoding, data)`; after the first error it yields nothing more.
pub struct ChunkIter<'a> {
    reader: &'a ChunkReader,
    seg: usize,
    off: usize,
    failed: bool,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = Result<(ChunkRef, u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let s = self.reader.segments.get(self.seg)?;
            if self.off >= s.map.len() {
                self.seg += 1;
                self.off = SEGMENT_HEADER_SIZE;
                continue;
            }
            let r = crate::block_chunk_ref(self.seg as u32, self.off as u32);
            return Some(match parse_chunk(&s.path, &s.map, self.off) {
                Ok((enc, data, end)) => {
                    self.off = end;
                    Ok((r, enc, data))
                }
                Err(e) => {
                    self.failed = true;
                    Err(e)
                }
            });
        }
    }
}
