//! `compact`: the server's background block work, run once over a stopped
//! data directory.
//!
//! 1. The directory is opened without background work; the head replays
//!    its WAL.
//! 2. The whole head is cut into blocks: every aligned `block_range`
//!    (2 h) the head covers becomes a level-1 XOR block, as the server cuts
//!    them, but unlike the server (which keeps the newest 1.5 ranges in
//!    memory) the last, partial range is cut too. That block ends just
//!    after the newest sample (`[start, newest + 1)`, as Prometheus's
//!    snapshot of a head does), not at the range's end: a block's end is
//!    where a restarted server starts accepting samples, so ending it at
//!    the range's end would reject the scrapes of a server restarted
//!    inside that range. The head is then truncated, which checkpoints the
//!    WAL without the cut samples, so nothing is replayed twice.
//! 3. Raw blocks are compacted until the planner has nothing left to
//!    merge (the server's leveled plan: ×3 ranges up to the maximum block
//!    duration, the newest block left alone), written in the chosen chunk
//!    encoding; then, when downsampling is on (the server's default), the
//!    blocks that are due are downsampled and each level merged, as
//!    `Db::maintain` does. Retention is not applied: an offline command
//!    deletes no data.
//!
//! Blocks that no merge touches keep their encoding (a head cut stays XOR,
//! as on the server).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use cairn_codec::FloatEncoding;
use cairn_storage::Queryable;
use ulid::Ulid;

use crate::block::{write_block, Block, BlockWriteOptions};
use crate::cli::analyze::{encoding_name, encodings_line, resolution_name};
use crate::cli::dump::cli_db_options;
use crate::fsutil::dir_size;
use crate::plan::align_down;
use crate::{Db, DbOptions, Result, TsdbError};

const DAY: i64 = 24 * 3_600_000;

/// How `cairn tsdb compact` runs.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Float chunk encoding of the blocks compaction and downsampling write
    /// (`--chunk-encoding`).
    pub encoding: FloatEncoding,
    /// Largest compacted block (ms); `None`: the server's default, a tenth
    /// of the default 15-day retention (36 h).
    pub max_block_duration: Option<i64>,
    /// Downsample and merge levels as the server does (`--downsample`).
    pub downsample: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            encoding: FloatEncoding::Dense,
            max_block_duration: None,
            downsample: true,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactSummary {
    /// Blocks cut from the head (level 1, XOR).
    pub cut: Vec<Ulid>,
    /// New blocks still in the directory at the end (cut, compacted or
    /// downsampled), sorted by min time.
    pub written: Vec<Ulid>,
    /// Blocks before and after (every resolution).
    pub blocks_before: usize,
    pub blocks_after: usize,
    /// Raw samples in blocks before (plus those cut from the head) and
    /// after.
    pub samples_before: u64,
    pub samples_after: u64,
    /// Size of the data directory (blocks, WAL, head chunks) before and
    /// after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// [`compact_with`] with the server's defaults and `encoding`.
pub fn compact(dir: &Path, encoding: FloatEncoding, out: &mut dyn Write) -> Result<CompactSummary> {
    compact_with(
        dir,
        &CompactOptions {
            encoding,
            ..CompactOptions::default()
        },
        out,
    )
}

/// Cuts the head of the stopped data directory `dir` into blocks and
/// compacts (and downsamples) its blocks as the server would; prints one
/// line per new block and a summary to `out`.
pub fn compact_with(
    dir: &Path,
    opts: &CompactOptions,
    out: &mut dyn Write,
) -> Result<CompactSummary> {
    if !dir.is_dir() {
        return Err(TsdbError::InvalidArgument(format!(
            "{} is not a data directory",
            dir.display()
        )));
    }
    let defaults = DbOptions::default();
    let db_opts = DbOptions {
        chunk_encoding: opts.encoding,
        downsample: opts.downsample,
        // The server's default: a tenth of its default retention.
        max_block_duration: Some(
            opts.max_block_duration
                .unwrap_or((defaults.retention_time / 10).min(31 * DAY)),
        ),
        retention_5m: defaults.retention_5m,
        retention_1h: defaults.retention_1h,
        ..cli_db_options()
    };
    let werr = |e| TsdbError::Io {
        op: "write",
        path: "<compact output>".into(),
        source: e,
    };
    let start = std::time::Instant::now();
    let mut sum = CompactSummary {
        bytes_before: dir_size(dir),
        ..CompactSummary::default()
    };

    // 1-2. Replay the WAL and cut the whole head.
    {
        let db = Db::open(dir, db_opts.clone())?;
        let blocks = db.blocks();
        sum.blocks_before = blocks.len();
        sum.samples_before = raw_samples(&blocks);
        sum.cut = cut_whole_head(&db)?;
        db.close();
    }
    // 3. Reopen with the cut blocks and compact as the server does.
    let db = Db::open(dir, db_opts)?;
    sum.samples_before += db
        .blocks()
        .iter()
        .filter(|b| sum.cut.contains(&b.ulid()))
        .map(|b| b.meta().stats.num_samples)
        .sum::<u64>();
    let mut new = sum.cut.clone();
    new.extend(db.compact_now()?);
    new.extend(db.downsample_now(false)?);
    new.extend(db.compact_levels()?);
    db.close();

    let blocks = db.blocks();
    sum.blocks_after = blocks.len();
    sum.samples_after = raw_samples(&blocks);
    // Blocks merged away again are gone; report what is left of the new ones.
    let mut kept: Vec<&Arc<Block>> = blocks.iter().filter(|b| new.contains(&b.ulid())).collect();
    kept.sort_by_key(|b| (b.meta().resolution(), b.meta().min_time));
    for b in kept {
        let m = b.meta();
        sum.written.push(m.ulid);
        let what = if sum.cut.contains(&m.ulid) {
            "cut"
        } else if m.resolution() > 0 {
            "downsampled"
        } else {
            "compacted"
        };
        writeln!(
            out,
            "BLOCK {} {what} level {} resolution {} [{}, {}) series {} samples {} bytes {} encodings {}",
            m.ulid,
            m.compaction.level,
            resolution_name(m.resolution()),
            m.min_time,
            m.max_time,
            m.stats.num_series,
            m.stats.num_samples,
            b.size(),
            encodings_line(&chunk_encodings(b)?),
        )
        .map_err(werr)?;
    }
    drop(blocks);
    drop(db);
    sum.bytes_after = dir_size(dir);
    writeln!(
        out,
        "compacted {} in {:.1}s: {} new blocks ({} cut from the head); blocks {} -> {}, raw samples {} -> {}, bytes {} -> {}",
        dir.display(),
        start.elapsed().as_secs_f64(),
        sum.written.len(),
        sum.cut.len(),
        sum.blocks_before,
        sum.blocks_after,
        sum.samples_before,
        sum.samples_after,
        sum.bytes_before,
        sum.bytes_after,
    )
    .map_err(werr)?;
    Ok(sum)
}

fn raw_samples(blocks: &[Arc<Block>]) -> u64 {
    blocks
        .iter()
        .map(|b| b.meta())
        .filter(|m| m.resolution() == 0)
        .map(|m| m.stats.num_samples)
        .sum()
}

/// Cuts everything the head holds into blocks: aligned `block_range`
/// ranges, the last one ending just after the newest sample; truncates the
/// head (and so checkpoints the WAL) after each. The blocks are not added
/// to `db`'s list: reopen the directory to see them.
fn cut_whole_head(db: &Db) -> Result<Vec<Ulid>> {
    let head = db.head();
    let r = db.options().block_range;
    let (hmin, hmax) = (head.min_time(), head.max_time());
    let mut out = Vec::new();
    if hmin > hmax {
        return Ok(out);
    }
    let end = hmax.saturating_add(1);
    let mut last_mint = i64::MIN;
    loop {
        let (lo, hi) = (head.min_time(), head.max_time());
        if lo > hi || lo >= end {
            break;
        }
        let mint = align_down(lo, r);
        if mint <= last_mint {
            // The head kept data below a range it was truncated past.
            tracing::warn!(mint, lo, "head min time did not advance after a cut");
            break;
        }
        last_mint = mint;
        let maxt = mint.saturating_add(r).min(end);
        let meta = {
            let q = head.querier(mint, maxt - 1)?;
            // As the server cuts: the head's chunks pass through; anything
            // re-encoded is cut as the head cuts, in XOR.
            let o = BlockWriteOptions {
                samples_per_chunk: db.options().samples_per_chunk,
                head_chunk_range: Some(r),
                ..BlockWriteOptions::default()
            };
            write_block(db.dir(), &*q, mint, maxt, &o)?
        };
        if let Some(m) = meta {
            out.push(m.ulid);
        }
        head.truncate(maxt)
            .map_err(|e| TsdbError::Head(Box::new(e)))?;
    }
    Ok(out)
}

/// Chunks per encoding in block `b`, most common first.
pub fn chunk_encodings(b: &Block) -> Result<Vec<(String, u64)>> {
    use cairn_index::{ChunkMeta, IndexLike};
    let ixe = |e: cairn_index::IndexError| TsdbError::Index {
        path: b.dir().join("index"),
        source: Box::new(e),
    };
    let ix = b.index();
    let mut counts: BTreeMap<u8, u64> = BTreeMap::new();
    let mut cm: Vec<ChunkMeta> = Vec::new();
    for r in ix.all_postings().map_err(ixe)? {
        cm.clear();
        let l = ix.series(r, &mut cm).map_err(ixe)?;
        for c in &cm {
            let (enc, _) = b
                .chunk_reader()
                .chunk(c.chunk_ref)
                .map_err(|e| TsdbError::Chunk {
                    path: b.dir().join("chunks"),
                    series: l.to_string(),
                    source: Box::new(e),
                })?;
            *counts.entry(enc).or_default() += 1;
        }
    }
    let mut v: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(e, n)| (encoding_name(e), n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}
