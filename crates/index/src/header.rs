//! The local index header of an index held in object storage.
//!
//! A query over a block in a bucket needs the index's symbol table (to
//! turn series entries into labels) and its postings offset table (to find
//! the postings list of a label pair) before it reads anything else; both
//! are small next to the series and postings sections. The index header
//! keeps exactly those locally, fetched once per block:
//! `docs/format/index-header.md`. It is a *sparse copy* of the index file:
//! the same length, the file header (magic, version), symbol table,
//! postings offset table and TOC written at their own offsets, holes
//! everywhere else. So the index reader parses it with its ordinary code
//! (every section's checksum is checked on open) and the holes take no
//! disk space; series entries and postings lists come from the bucket by
//! byte range ([`crate::IndexReader::open_sparse`]).
//!
//! Written atomically: a temporary file in the same directory, renamed
//! into place. It is not fsynced: the header is a cache of bytes that stay
//! in the bucket, and a header torn by a crash fails its length or
//! checksum checks when opened and is fetched again.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cairn_codec::{ByteCursor, RangeRead};

use crate::format::{Toc, HEADER_LEN, TOC_LEN};
use crate::{IndexError, Result};

/// Fetches the sections of `source` (an index file) that an index header
/// keeps and writes the header to `path`. Returns the number of bytes
/// fetched (what the header holds).
pub fn write_index_header(source: &dyn RangeRead, path: &Path) -> Result<u64> {
    let name = std::path::PathBuf::from(source.name());
    let len = source.size();
    let fetch_io = |source| IndexError::Io {
        path: name.clone(),
        op: "range read",
        source,
    };
    let corrupt = |section, offset, expected: String, found: String| IndexError::Corrupt {
        path: name.clone(),
        section,
        offset,
        expected,
        found,
    };
    if len < (HEADER_LEN + TOC_LEN) as u64 {
        return Err(corrupt(
            "file",
            0,
            format!("at least {} bytes", HEADER_LEN + TOC_LEN),
            format!("{len} bytes"),
        ));
    }
    let toc_off = len - TOC_LEN as u64;
    let toc_bytes = source.read_at(toc_off, TOC_LEN as u64).map_err(fetch_io)?;
    let toc = Toc::decode(&toc_bytes).map_err(|(expected, found)| IndexError::Checksum {
        path: name.clone(),
        section: "table of contents",
        offset: toc_off,
        expected,
        found,
    })?;
    // The symbol table ends where the series begin, the postings offset
    // table at the TOC: both are fetched at once (a remote source does it
    // in one concurrent call) before being read piece by piece.
    let mut ahead = Vec::new();
    if toc.symbols != 0 && toc.series > toc.symbols && toc.series <= toc_off {
        ahead.push((0, toc.series));
    }
    if toc.postings_table != 0 && toc.postings_table < toc_off {
        ahead.push((toc.postings_table, toc_off - toc.postings_table));
    }
    source.prefetch(&ahead);
    let mut pieces = vec![
        (0, source.read_at(0, HEADER_LEN as u64).map_err(fetch_io)?),
        (toc_off, toc_bytes),
    ];
    for (section, off) in [
        ("symbol table", toc.symbols),
        ("postings offset table", toc.postings_table),
    ] {
        if off == 0 {
            continue;
        }
        if off.saturating_add(8) > toc_off {
            return Err(corrupt(
                section,
                off,
                format!("a section below the TOC at {toc_off}"),
                off.to_string(),
            ));
        }
        let head = source.read_at(off, 4).map_err(fetch_io)?;
        let n = ByteCursor::new(&head).be32().map_err(|e| {
            let (expected, found) = e.expected_found();
            corrupt(section, off, expected, found)
        })?;
        let total = 8 + u64::from(n);
        if off + total > toc_off {
            return Err(corrupt(
                section,
                off,
                format!("{n} bytes and a checksum below the TOC at {toc_off}"),
                format!("{} bytes", toc_off - off),
            ));
        }
        pieces.push((off, source.read_at(off, total).map_err(fetch_io)?));
    }

    let fetched = pieces.iter().map(|(_, b)| b.len() as u64).sum();
    let io = |op| {
        let path = path.to_path_buf();
        move |source| IndexError::Io { path, op, source }
    };
    let tmp = path.with_extension("tmp");
    {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("create"))?;
        f.set_len(len).map_err(io("truncate"))?;
        for (off, bytes) in &pieces {
            f.write_all_at(bytes, *off).map_err(io("write"))?;
        }
    }
    std::fs::rename(&tmp, path).map_err(io("rename"))?;
    Ok(fetched)
}
