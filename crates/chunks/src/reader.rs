//! Reads a block's `chunks/` segment files through read-only mmaps.
//!
//! Segments are the directory's numerically named files in ascending order;
//! a [`ChunkRef`]'s segment index is the position in that order (0-based).
//! Every chunk read checks the CRC32-Castagnoli over encoding byte + data.
//!
//! A block held in object storage has no local segment files: its reader
//! ([`ChunkReader::remote`]) reads each chunk record by byte range through a
//! [`RangeRead`], and hands out owned bytes where a mapped reader lends
//! borrowed ones (hence [`Cow`]).

use crate::files::{check_crc, list_numbered, open_segment, BLOCK_SEGMENT};
use crate::{unpack_chunk_ref, ChunkRef, ChunksError, Result, SEGMENT_HEADER_SIZE};
use cairn_codec::{varint, RangeRead};
use memmap2::Mmap;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

enum SegData {
    Mapped(Mmap),
    Remote(Arc<dyn RangeRead>),
}

struct Segment {
    path: PathBuf,
    data: SegData,
}

impl Segment {
    fn len(&self) -> u64 {
        match &self.data {
            SegData::Mapped(m) => m.len() as u64,
            SegData::Remote(r) => r.size(),
        }
    }
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
            segments.push(Segment {
                path,
                data: SegData::Mapped(map),
            });
        }
        Ok(Self { segments })
    }

    /// A reader over segments held in object storage, in segment order;
    /// reads each segment's header to check it.
    pub fn remote(segments: Vec<Arc<dyn RangeRead>>) -> Result<Self> {
        let mut out = Vec::with_capacity(segments.len());
        for src in segments {
            let path = PathBuf::from(src.name());
            let head = src
                .read_at(0, SEGMENT_HEADER_SIZE as u64)
                .map_err(|e| ChunksError::io(&path, e))?;
            if head.len() < SEGMENT_HEADER_SIZE {
                return Err(ChunksError::corrupt(
                    &path,
                    0,
                    BLOCK_SEGMENT.header,
                    format!("at least {SEGMENT_HEADER_SIZE} bytes"),
                    format!("{} bytes", head.len()),
                ));
            }
            crate::files::check_header(&path, &head, BLOCK_SEGMENT.magic, crate::FORMAT_V1)?;
            out.push(Segment {
                path,
                data: SegData::Remote(src),
            });
        }
        Ok(Self { segments: out })
    }

    /// Lets go of the pages of the mapped segments that this process has
    /// read; see `cairn_index::IndexReader::release_pages`.
    pub fn release_pages(&self) {
        for s in &self.segments {
            let SegData::Mapped(map) = &s.data else {
                continue;
            };
            // SAFETY: a read-only shared mapping of an immutable segment
            // file: MADV_DONTNEED drops this process's page-table entries
            // only, and later reads fault in the same bytes from the file,
            // so borrowed chunk slices stay valid and unchanged.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Whether the segments are read by range from object storage.
    pub fn is_remote(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s.data, SegData::Remote(_)))
    }

    /// A hint for segments in object storage: the chunks at `refs` will be
    /// read soon, so they are fetched now in few requests per segment
    /// (chunks less than 64 KiB apart share one). Does nothing for local
    /// segments.
    pub fn prefetch(&self, refs: &[ChunkRef]) {
        let mut by_seg: Vec<Vec<u64>> = vec![Vec::new(); self.segments.len()];
        for &r in refs {
            let (seg, off) = unpack_chunk_ref(r);
            if let Some(v) = by_seg.get_mut(seg as usize) {
                v.push(u64::from(off));
            }
        }
        for (s, mut offs) in self.segments.iter().zip(by_seg) {
            let SegData::Remote(src) = &s.data else {
                continue;
            };
            if offs.is_empty() {
                continue;
            }
            offs.sort_unstable();
            src.prefetch(&cairn_codec::group_ranges(&offs, 64 << 10, 4 << 10));
        }
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    /// The encoding byte and data of the chunk at `r`, CRC-checked. The data
    /// borrows the mmapped file, or is owned when read from object storage.
    pub fn chunk(&self, r: ChunkRef) -> Result<(u8, Cow<'_, [u8]>)> {
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
        match &s.data {
            SegData::Mapped(map) => parse_chunk(&s.path, map, off as usize, 0)
                .map(|(enc, data, _)| (enc, Cow::Borrowed(data))),
            SegData::Remote(src) => remote_chunk(&s.path, src.as_ref(), u64::from(off)),
        }
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

/// Reads the chunk record at `off` of a segment in object storage: its
/// length prefix first, then the record (both reads usually hit one cached
/// page of the source).
fn remote_chunk(path: &Path, src: &dyn RangeRead, off: u64) -> Result<(u8, Cow<'static, [u8]>)> {
    let size = src.size();
    if off >= size {
        return Err(ChunksError::corrupt(
            path,
            off as usize,
            "chunk record",
            format!("an offset below the segment's {size} bytes"),
            off.to_string(),
        ));
    }
    let head = src
        .read_at(off, varint::MAX_VARINT_LEN64 as u64)
        .map_err(|e| ChunksError::io(path, e))?;
    let (len, n) = varint::uvarint(&head).map_err(|e| {
        ChunksError::corrupt(
            path,
            off as usize,
            "chunk length",
            "a uvarint",
            e.to_string(),
        )
    })?;
    let total = (n as u64).saturating_add(len).saturating_add(5);
    if off.saturating_add(total) > size {
        return Err(ChunksError::corrupt(
            path,
            off as usize,
            "chunk record",
            format!("{len} data bytes + 5 within the segment"),
            format!("{} bytes left", size - off),
        ));
    }
    let rec = src
        .read_at(off, total)
        .map_err(|e| ChunksError::io(path, e))?;
    let (enc, data, _) = parse_chunk(path, &rec, 0, off as usize)?;
    Ok((enc, Cow::Owned(data.to_vec())))
}

/// Parses the chunk record at `off` of `b`: returns encoding, data and the
/// offset just past the record. `base` is added to offsets in errors (the
/// position of `b` in its segment, for a record read on its own).
fn parse_chunk<'a>(
    path: &Path,
    b: &'a [u8],
    off: usize,
    base: usize,
) -> Result<(u8, &'a [u8], usize)> {
    let at = off.saturating_add(base);
    let rest = b.get(off..).unwrap_or(&[]);
    let (len, n) = varint::uvarint(rest)
        .map_err(|e| ChunksError::corrupt(path, at, "chunk length", "a uvarint", e.to_string()))?;
    let enc_at = off + n;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| enc_at.checked_add(1)?.checked_add(l)?.checked_add(4));
    let Some(end) = end.filter(|&e| e <= b.len()) else {
        return Err(ChunksError::corrupt(
            path,
            at,
            "chunk record",
            format!("{len} data bytes + 5 within the segment"),
            format!("{} bytes left", b.len().saturating_sub(enc_at)),
        ));
    };
    let (Some(body), Some(sum)) = (b.get(enc_at..end - 4), b.get(end - 4..end)) else {
        return Err(ChunksError::corrupt(
            path,
            at,
            "chunk record",
            "in bounds",
            "out of bounds",
        ));
    };
    check_crc(path, at, "chunk checksum", body, sum)?;
    let (enc, data) = body.split_first().ok_or_else(|| {
        ChunksError::corrupt(path, at, "chunk record", "an encoding byte", "nothing")
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
            let SegData::Mapped(map) = &s.data else {
                self.failed = true;
                return Some(Err(ChunksError::corrupt(
                    &s.path,
                    0,
                    "segment",
                    "a local segment file (walking a segment in object storage is not supported)",
                    "a segment in object storage",
                )));
            };
            if self.off >= map.len() {
                self.seg += 1;
                self.off = SEGMENT_HEADER_SIZE;
                continue;
            }
            let r = crate::block_chunk_ref(self.seg as u32, self.off as u32);
            return Some(match parse_chunk(&s.path, map, self.off, 0) {
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
