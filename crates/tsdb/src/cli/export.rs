//! `export`: copies the blocks of a data directory (or one block) into
//! another directory in a chunk encoding standard readers understand, so
//! that Prometheus, promtool, Thanos or any Prometheus-format reader can
//! open them (XOR by default; dense chunks are Cairn's own).
//!
//! Contract:
//! - Every raw block keeps its ULID and its meta: `[minTime, maxTime)`,
//!   compaction level, sources and parents. Only its chunks change: chunks
//!   already in the target encoding pass through, others are re-encoded.
//!   Tombstones are applied: deleted samples are left out and the copy has
//!   no tombstones (a block left empty by them is skipped).
//! - Downsampled (5m, 1h) blocks are skipped with a message: they hold
//!   Cairn's aggregate chunks, which Prometheus cannot read. So are blocks
//!   marked deletable and blocks already merged into another block of the
//!   source (leftovers of an interrupted compaction), which Cairn itself
//!   deletes on open.
//! - Blocks only: the head (WAL, head chunks) is not exported; run
//!   `cairn tsdb compact` first to cut it into blocks.
//! - Nothing is written when a block to export already exists in the
//!   destination: the export refuses up front, naming the blocks. Each
//!   block is written to a temporary directory and renamed into place, so
//!   an interrupted export leaves only whole blocks (delete them, or the
//!   destination, to run it again).
//! - The source is only read: it is not opened as a database.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_codec::FloatEncoding;
use ulid::Ulid;

use crate::block::{write_block, Block, BlockHandle, BlockQuerier, BlockWriteOptions};
use crate::cli::analyze::resolution_name;
use crate::fsutil::dir_size;
use crate::meta::META_FILENAME;
use crate::{Result, TsdbError};

/// How `cairn tsdb export` writes blocks.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Float chunk encoding of the exported blocks (`--chunk-encoding`).
    pub encoding: FloatEncoding,
    /// Samples per re-encoded chunk (Prometheus: 120; dense chunks use
    /// their own length).
    pub samples_per_chunk: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            encoding: FloatEncoding::Xor,
            samples_per_chunk: 120,
        }
    }
}

/// What one export did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Blocks written to the destination, same ULIDs as in the source.
    pub exported: Vec<Ulid>,
    /// Blocks left out, with why.
    pub skipped: Vec<(Ulid, String)>,
    /// Samples written.
    pub samples: u64,
    /// Bytes of the exported blocks in the source and in the destination.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The block directories of `src`: `src` itself when it holds a
/// `meta.json`, else its `<ulid>/` subdirectories holding one, sorted.
fn source_blocks(src: &Path) -> Result<Vec<PathBuf>> {
    if src.join(META_FILENAME).is_file() {
        return Ok(vec![src.to_owned()]);
    }
    if !src.is_dir() {
        return Err(TsdbError::InvalidArgument(format!(
            "{} is neither a data directory nor a block",
            src.display()
        )));
    }
    let mut out = Vec::new();
    let rd = std::fs::read_dir(src).map_err(TsdbError::io("read dir", src))?;
    for e in rd {
        let e = e.map_err(TsdbError::io("read dir", src))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if Ulid::from_string(&name).is_ok() && e.path().join(META_FILENAME).is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Exports the blocks of `src` (a data directory or one block directory)
/// into `dst` (created if needed), printing one line per block written or
/// skipped and a summary to `out`.
pub fn export(
    src: &Path,
    dst: &Path,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<ExportSummary> {
    let werr = |e| TsdbError::Io {
        op: "write",
        path: "<export output>".into(),
        source: e,
    };
    let start = std::time::Instant::now();
    let dirs = source_blocks(src)?;
    let single = dirs.len() == 1 && dirs.first().is_some_and(|d| d == src);
    let blocks = dirs
        .iter()
        .map(|d| Block::open(d))
        .collect::<Result<Vec<Block>>>()?;
    if let (Ok(a), Ok(b)) = (src.canonicalize(), dst.canonicalize()) {
        let src_dir = if single {
            a.parent().map(Path::to_path_buf).unwrap_or(a)
        } else {
            a
        };
        if src_dir == b {
            return Err(TsdbError::InvalidArgument(format!(
                "the destination {} is the source's directory: export into another directory",
                dst.display()
            )));
        }
    }
    // Raw blocks merged into another raw block of the source are leftovers
    // that Cairn deletes on open; exporting them would duplicate samples.
    // (A downsampled block's parents are the finer blocks it summarises,
    // which stay.)
    let merged: HashSet<Ulid> = blocks
        .iter()
        .map(|b| b.meta())
        .filter(|m| m.resolution() == 0)
        .flat_map(|m| m.compaction.parents.into_iter().map(|p| p.ulid))
        .collect();
    let mut sum = ExportSummary::default();
    let mut todo = Vec::new();
    for b in &blocks {
        let m = b.meta();
        let why = if m.resolution() > 0 {
            Some(format!(
                "downsampled ({}): aggregate chunks that Prometheus cannot read",
                resolution_name(m.resolution())
            ))
        } else if m.compaction.deletable {
            Some("marked deletable".to_owned())
        } else if merged.contains(&m.ulid) {
            Some("already merged into another block of the source".to_owned())
        } else {
            None
        };
        match why {
            Some(w) => sum.skipped.push((m.ulid, w)),
            None => todo.push(b),
        }
    }
    let clash: Vec<String> = todo
        .iter()
        .map(|b| b.ulid())
        .filter(|u| {
            let p = dst.join(u.to_string());
            p.exists()
                || dst
                    .join(format!("{u}{}", crate::block::TMP_FOR_CREATION))
                    .exists()
        })
        .map(|u| u.to_string())
        .collect();
    if !clash.is_empty() {
        return Err(TsdbError::InvalidArgument(format!(
            "{} already holds block(s) {}: nothing exported (remove them or choose another destination)",
            dst.display(),
            clash.join(", ")
        )));
    }
    std::fs::create_dir_all(dst).map_err(TsdbError::io("create dir", dst))?;
    if !single && src.join("wal").is_dir() && dir_size(&src.join("wal")) > 0 {
        writeln!(
            out,
            "note: the head (wal/) of {} is not exported; run `cairn tsdb compact` first to cut it into blocks",
            src.display()
        )
        .map_err(werr)?;
    }
    for (u, why) in &sum.skipped {
        writeln!(out, "SKIP {u}: {why}").map_err(werr)?;
    }
    for b in todo {
        let m = b.meta();
        let wopts = BlockWriteOptions {
            ulid: Some(m.ulid),
            level: m.compaction.level,
            sources: m.compaction.sources.clone(),
            parents: m.compaction.parents.clone(),
            samples_per_chunk: opts.samples_per_chunk,
            encoding: opts.encoding,
            group_by_name: true,
            ..BlockWriteOptions::default()
        };
        let written = {
            let q = BlockQuerier::new(BlockHandle::Borrowed(b), m.min_time, m.max_time - 1);
            write_block(dst, &q, m.min_time, m.max_time, &wopts)?
        };
        let Some(w) = written else {
            writeln!(out, "SKIP {}: no samples left after deletions", m.ulid).map_err(werr)?;
            sum.skipped
                .push((m.ulid, "no samples left after deletions".to_owned()));
            continue;
        };
        let size = dir_size(&dst.join(w.ulid.to_string()));
        sum.exported.push(w.ulid);
        sum.samples += w.stats.num_samples;
        sum.bytes_before += b.size();
        sum.bytes_after += size;
        writeln!(
            out,
            "BLOCK {} level {} [{}, {}) series {} samples {} bytes {} -> {} ({})",
            w.ulid,
            w.compaction.level,
            w.min_time,
            w.max_time,
            w.stats.num_series,
            w.stats.num_samples,
            b.size(),
            size,
            opts.encoding
        )
        .map_err(werr)?;
    }
    // promtool 2.42's dump wants a wal/ directory in a data directory;
    // Prometheus makes one anyway.
    let wal = dst.join("wal");
    if !wal.exists() {
        std::fs::create_dir_all(&wal).map_err(TsdbError::io("create dir", &wal))?;
    }
    writeln!(
        out,
        "exported {} blocks ({} skipped) to {} in {:.1}s: {} samples, bytes {} -> {}",
        sum.exported.len(),
        sum.skipped.len(),
        dst.display(),
        start.elapsed().as_secs_f64(),
        sum.samples,
        sum.bytes_before,
        sum.bytes_after,
    )
    .map_err(werr)?;
    Ok(sum)
}
