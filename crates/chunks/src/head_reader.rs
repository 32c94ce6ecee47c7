//! Head chunk file records (`chunks_head/`) and a read-only reader.
//!
//! A record is: series ref (8 bytes BE), mint (8, BE two's complement),
//! maxt (8), encoding (1), uvarint data length, data, CRC32-Castagnoli (4,
//! BE) over everything from the series ref through the data. A
//! [`HeadChunkRef`] points at the record's first byte. A file ends at its
//! length or at the first run of zero bytes where a record would start
//! (files are preallocated, so a crash leaves zero padding).

use crate::files::{check_crc, list_numbered, open_segment, HEAD_SEGMENT};
use crate::{ChunksError, HeadChunkRef, Result, SEGMENT_HEADER_SIZE};
use cairn_codec::varint;
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Series ref + mint + maxt.
pub(crate) const RECORD_FIXED: usize = 24;
/// Largest record overhead: fixed part, encoding, 5-byte length, CRC.
pub(crate) const MAX_RECORD_META: usize = RECORD_FIXED + 1 + 5 + 4;

/// What startup iteration reports for each head chunk on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadChunkMeta {
    /// The head series the chunk belongs to.
    pub series_ref: u64,
    /// Where the record starts.
    pub chunk_ref: HeadChunkRef,
    /// First sample's timestamp (inclusive).
    pub min_time: i64,
    /// Last sample's timestamp (inclusive).
    pub max_time: i64,
    /// Chunk encoding byte.
    pub encoding: u8,
    /// Sample count from the chunk's 2-byte header (0 if data is shorter).
    pub num_samples: u16,
}

pub(crate) struct Record<'a> {
    pub meta: HeadChunkMeta,
    pub data: &'a [u8],
    pub end: usize,
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// Parses and CRC-checks the record at `off` within the valid bytes `b`.
pub(crate) fn parse_record<'a>(
    path: &Path,
    seq: u32,
    b: &'a [u8],
    off: usize,
) -> Result<Record<'a>> {
    let short = |what: &'static str| {
        ChunksError::corrupt(
            path,
            off,
            what,
            "enough bytes for the record",
            format!("{} bytes left", b.len().saturating_sub(off)),
        )
    };
    let series_ref = be_u64(b, off).ok_or_else(|| short("head chunk record"))?;
    let min_time = be_u64(b, off + 8).ok_or_else(|| short("head chunk record"))? as i64;
    let max_time = be_u64(b, off + 16).ok_or_else(|| short("head chunk record"))? as i64;
    let enc_at = off + RECORD_FIXED;
    let encoding = *b.get(enc_at).ok_or_else(|| short("head chunk encoding"))?;
    let len_at = enc_at + 1;
    let (len, n) = varint::uvarint(b.get(len_at..).unwrap_or(&[])).map_err(|e| {
        ChunksError::corrupt(
            path,
            len_at,
            "head chunk length",
            "a uvarint",
            e.to_string(),
        )
    })?;
    let data_at = len_at + n;
    let data_end = usize::try_from(len)
        .ok()
        .and_then(|l| data_at.checked_add(l));
    let Some(data_end) = data_end.filter(|&e| e.checked_add(4).is_some_and(|x| x <= b.len()))
    else {
        return Err(short("head chunk data"));
    };
    let (Some(covered), Some(sum), Some(data)) = (
        b.get(off..data_end),
        b.get(data_end..data_end + 4),
        b.get(data_at..data_end),
    ) else {
        return Err(short("head chunk data"));
    };
    check_crc(path, off, "head chunk checksum", covered, sum)?;
    let num_samples = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    Ok(Record {
        meta: HeadChunkMeta {
            series_ref,
            chunk_ref: (u64::from(seq) << 32) | off as u64,
            min_time,
            max_time,
            encoding,
            num_samples,
        },
        data,
        end: data_end + 4,
    })
}

/// Walks the records of one file's valid bytes `b`, calling `f` for each;
/// returns the largest maxt seen (`i64::MIN` for none).
pub(crate) fn iterate_file(
    path: &Path,
    seq: u32,
    b: &[u8],
    f: &mut dyn FnMut(HeadChunkMeta) -> Result<()>,
) -> Result<i64> {
    let mut idx = SEGMENT_HEADER_SIZE;
    let mut maxt = i64::MIN;
    while idx < b.len() {
        let rest = b.get(idx..).unwrap_or(&[]);
        // A short all-zero tail, or zero series ref, mint and maxt, mark the
        // preallocated end. Anything else must parse as a record.
        if rest.len() < MAX_RECORD_META && rest.iter().all(|&x| x == 0) {
            break;
        }
        if rest
            .get(..RECORD_FIXED)
            .is_some_and(|h| h.iter().all(|&x| x == 0))
        {
            break;
        }
        let rec = parse_record(path, seq, b, idx)?;
        maxt = maxt.max(rec.meta.max_time);
        f(rec.meta)?;
        idx = rec.end;
    }
    Ok(maxt)
}

pub(crate) struct MappedFile {
    pub path: PathBuf,
    pub map: Mmap,
}

/// Lists, checks (sequential numbering, headers) and maps head chunk files.
/// Zero-length files are skipped by the caller's policy: `skip_empty_last`.
pub(crate) fn open_files(dir: &Path, remove_empty_last: bool) -> Result<BTreeMap<u32, MappedFile>> {
    let mut listed = list_numbered(dir)?;
    if let Some((_, last)) = listed.last() {
        let len = std::fs::metadata(last)
            .map_err(|e| ChunksError::io(last, e))?
            .len();
        if len == 0 {
            if remove_empty_last {
                tracing::warn!(path = %last.display(), "removing empty last head chunk file");
                std::fs::remove_file(last).map_err(|e| ChunksError::io(last, e))?;
            }
            listed.pop();
        }
    }
    for w in listed.windows(2) {
        if let [(a, _), (b, _)] = w {
            if *b != a + 1 {
                return Err(ChunksError::NotSequential {
                    dir: dir.to_path_buf(),
                    prev: *a,
                    next: *b,
                });
            }
        }
    }
    let mut out = BTreeMap::new();
    for (seq, path) in listed {
        let map = open_segment(&path, HEAD_SEGMENT)?;
        out.insert(seq, MappedFile { path, map });
    }
    Ok(out)
}

/// Read-only view of a `chunks_head/` directory (for tools and tests; the
/// head itself uses [`crate::HeadChunkWriter`], which also reads).
pub struct HeadChunkReader {
    files: BTreeMap<u32, MappedFile>,
}

impl HeadChunkReader {
    /// Maps every head chunk file of `dir`; checks numbering and headers.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            files: open_files(dir, false)?,
        })
    }

    /// File numbers present, ascending.
    pub fn file_numbers(&self) -> Vec<u32> {
        self.files.keys().copied().collect()
    }

    /// The encoding byte and data of the chunk at `r`, CRC-checked.
    pub fn chunk(&self, r: HeadChunkRef) -> Result<(u8, &[u8])> {
        chunk_in(&self.files, None, r)
    }

    /// Calls `f` for every chunk, files ascending, records in file order;
    /// stops at the first error (corruption or `f`'s).
    pub fn iterate(&self, mut f: impl FnMut(HeadChunkMeta) -> Result<()>) -> Result<()> {
        for (&seq, mf) in &self.files {
            iterate_file(&mf.path, seq, &mf.map, &mut f)?;
        }
        Ok(())
    }
}

/// Asks the CPU to start loading the first cache lines of the record at
/// `r` (header and the start of the data), so that several chunks' memory
/// latencies overlap; a reference to nothing is ignored.
pub(crate) fn prefetch_in(files: &BTreeMap<u32, MappedFile>, r: HeadChunkRef) {
    let seq = (r >> 32) as u32;
    let off = (r & 0xffff_ffff) as usize;
    if let Some(b) = files.get(&seq).and_then(|mf| mf.map.get(off..)) {
        for line in [0, 64, 128] {
            if let Some(p) = b.get(line) {
                prefetch(p);
            }
        }
    }
}

#[inline(always)]
fn prefetch(p: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and changes no
    // memory, and `p` points into a live mapping anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Looks `r` up in `files`; `limit` caps the valid bytes of one (open) file.
pub(crate) fn chunk_in(
    files: &BTreeMap<u32, MappedFile>,
    limit: Option<(u32, usize)>,
    r: HeadChunkRef,
) -> Result<(u8, &[u8])> {
    let seq = (r >> 32) as u32;
    let off = (r & 0xffff_ffff) as usize;
    let mf = files.get(&seq).ok_or_else(|| ChunksError::BadRef {
        chunk_ref: r,
        reason: format!("head chunk file {seq:06} does not exist"),
    })?;
    if off < SEGMENT_HEADER_SIZE {
        return Err(ChunksError::BadRef {
            chunk_ref: r,
            reason: format!("offset {off} inside the file header"),
        });
    }
    let valid = match limit {
        Some((s, n)) if s == seq => n.min(mf.map.len()),
        _ => mf.map.len(),
    };
    let b = mf.map.get(..valid).unwrap_or(&[]);
    let rec = parse_record(&mf.path, seq, b, off)?;
    Ok((rec.meta.encoding, rec.data))
}
