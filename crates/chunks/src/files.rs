//! Shared plumbing for numbered segment files: naming, listing, headers,
//! opening (size check, mmap, header check) and directory fsync.

use crate::{ChunksError, Result, SEGMENT_HEADER_SIZE};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// `dir/000042` for 42.
pub(crate) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:06}"))
}

/// Files of `dir` whose names are decimal numbers, sorted by number.
pub(crate) fn list_numbered(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| ChunksError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| ChunksError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(n) = name.parse::<u32>() else { continue };
        out.push((n, entry.path()));
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// The 8-byte header: magic, version, three zero bytes.
pub(crate) fn header(magic: u32, version: u8) -> [u8; SEGMENT_HEADER_SIZE] {
    let [m0, m1, m2, m3] = magic.to_be_bytes();
    [m0, m1, m2, m3, version, 0, 0, 0]
}

/// Checks a file's header against `magic` and `version`.
pub(crate) fn check_header(path: &Path, b: &[u8], magic: u32, version: u8) -> Result<()> {
    let Some(&[m0, m1, m2, m3, v, ..]) = b.get(..SEGMENT_HEADER_SIZE) else {
        return Err(ChunksError::corrupt(
            path,
            0,
            "segment header",
            format!("at least {SEGMENT_HEADER_SIZE} bytes"),
            format!("{} bytes", b.len()),
        ));
    };
    let m = u32::from_be_bytes([m0, m1, m2, m3]);
    if m != magic {
        return Err(ChunksError::corrupt(
            path,
            0,
            "segment magic",
            format!("{magic:#010x}"),
            format!("{m:#010x}"),
        ));
    }
    if v != version {
        return Err(ChunksError::corrupt(
            path,
            4,
            "segment format version",
            version,
            v,
        ));
    }
    Ok(())
}

/// Which kind of segment file [`open_segment`] opens: its magic number and
/// how errors name its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentKind {
    pub magic: u32,
    /// What a file too short for its header is called in the error.
    pub header: &'static str,
}

/// A block's `chunks/` segment.
pub(crate) const BLOCK_SEGMENT: SegmentKind = SegmentKind {
    magic: crate::MAGIC_CHUNKS,
    header: "segment header",
};

/// A `chunks_head/` file.
pub(crate) const HEAD_SEGMENT: SegmentKind = SegmentKind {
    magic: crate::MAGIC_HEAD_CHUNKS,
    header: "head chunk file header",
};

/// Maps a whole segment file of `kind` read-only after checking that it
/// holds at least a header (an empty file cannot be mapped) and that the
/// header has the kind's magic and format version 1.
pub(crate) fn open_segment(path: &Path, kind: SegmentKind) -> Result<Mmap> {
    let len = std::fs::metadata(path)
        .map_err(|e| ChunksError::io(path, e))?
        .len();
    if len < SEGMENT_HEADER_SIZE as u64 {
        return Err(ChunksError::corrupt(
            path,
            0,
            kind.header,
            format!("at least {SEGMENT_HEADER_SIZE} bytes"),
            format!("{len} bytes"),
        ));
    }
    let map = map_file(path, None)?;
    check_header(path, &map, kind.magic, crate::FORMAT_V1)?;
    Ok(map)
}

/// Checks that `sum` (4 bytes, big-endian) is the CRC32-Castagnoli of
/// `covered`, the checksummed part of the record `what` at `off` in `path`.
pub(crate) fn check_crc(
    path: &Path,
    off: usize,
    what: &'static str,
    covered: &[u8],
    sum: &[u8],
) -> Result<()> {
    let want = <[u8; 4]>::try_from(sum).map_or(0, u32::from_be_bytes);
    let got = cairn_codec::crc32c(covered);
    if want != got {
        return Err(ChunksError::corrupt(
            path,
            off,
            what,
            format!("{want:#010x}"),
            format!("{got:#010x}"),
        ));
    }
    Ok(())
}

/// Maps `path` read-only, `len` bytes (the file's length when `None`).
pub(crate) fn map_file(path: &Path, len: Option<usize>) -> Result<Mmap> {
    let f = File::open(path).map_err(|e| ChunksError::io(path, e))?;
    let mut opts = memmap2::MmapOptions::new();
    if let Some(len) = len {
        opts.len(len);
    }
    // SAFETY: the mapping is read-only and private to this process's view of
    // files that Cairn owns; Cairn never shrinks a file while a mapping of it
    // is alive (files are unmapped before being truncated or deleted), so
    // reads stay within the file. External modification of the data directory
    // is outside the contract, as for every database.
    unsafe { opts.map(&f) }.map_err(|e| ChunksError::io(path, e))
}

/// fsyncs a directory so that file creations and deletions in it persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| ChunksError::io(dir, e))?;
    f.sync_all().map_err(|e| ChunksError::io(dir, e))
}
