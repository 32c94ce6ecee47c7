//! Downsampling: 5-minute blocks from raw data, 1-hour blocks from 5-minute
//! blocks (format: docs/format/downsample.md).
//!
//! [`downsample`] streams series by series from any querier: it holds one
//! series' samples (or finer windows) at a time, so its memory follows the
//! largest series, not the block. Which blocks to downsample and when is
//! [`plan_downsampling`]'s business, a pure function over block metas; the
//! `Db` runs both in the background, `cairn tsdb downsample` once.
//!
//! Contracts: output windows are `(k·r, (k+1)·r]`, stamped at their end;
//! the output block over `[mint, maxt)` (meta.json bounds) summarises input
//! samples in `[mint, maxt)`; for a raw block `[a, b)` the caller passes
//! `[a + 1, b + 1)`, so windows close on the block's aligned end.

mod build;
mod decimal_sum;
mod window;

use std::path::Path;

use cairn_codec::FloatEncoding;
use cairn_model::{Labels, Sample};
use cairn_storage::{EncodedChunk, MetricType, Querier, Series, ValueType};
use ulid::Ulid;

use crate::block::{write_block_with, BlockWriteOptions};
use crate::meta::{BlockDesc, BlockMeta};
use crate::{Result, TsdbError};

pub use build::{decode_aggregate, decode_windows, Kept};
pub(crate) use window::window_end;
use window::{CounterThin, Windows};

pub use cairn_storage::{RES_1H, RES_5M};
/// The downsampled levels, finest first, with the level each is made from.
pub const LEVELS: [(i64, i64); 2] = [(RES_5M, 0), (RES_1H, RES_5M)];

/// What one downsampling run reads and writes.
pub struct DownsampleJob<'a> {
    /// Input resolution: 0 for raw samples, else the input blocks'.
    pub from: i64,
    /// Output resolution: coarser than `from`, or equal to it to merge
    /// adjacent blocks of one level into one (their windows kept, their
    /// chunks cut anew).
    pub to: i64,
    /// Output bounds `[mint, maxt)`; input samples outside are ignored.
    pub mint: i64,
    pub maxt: i64,
    /// Raw level-1 blocks the output summarises.
    pub sources: Vec<Ulid>,
    /// The input blocks.
    pub parents: Vec<BlockDesc>,
    /// A metric's type by name (remote-write metadata); `Unknown` keeps
    /// every aggregate.
    pub metric_type: &'a (dyn Fn(&str) -> MetricType + Sync),
    /// Called every [`PROGRESS_SERIES`] series: the caller lets go of the
    /// input blocks' resident pages there, so memory stays flat.
    pub progress: Option<&'a dyn Fn()>,
    /// Encoding of the aggregate chunks' sub-chunks (XOR keeps the blocks
    /// readable by Thanos's store gateway).
    pub encoding: FloatEncoding,
}

/// How often (in series) [`DownsampleJob::progress`] is called.
pub const PROGRESS_SERIES: usize = 2048;

/// Downsamples the series of `q` per `job` into a new block under `parent`.
/// Returns `None` when no series had data. With `job.from > 0`, `q` must
/// yield the input blocks' aggregate chunks through [`Series::chunks`].
pub fn downsample(
    parent: &Path,
    q: &dyn Querier,
    job: &DownsampleJob<'_>,
) -> Result<Option<BlockMeta>> {
    if job.to < job.from || job.to <= 0 {
        return Err(TsdbError::InvalidArgument(format!(
            "cannot downsample resolution {} to {}",
            job.from, job.to
        )));
    }
    let opts = BlockWriteOptions {
        level: 1,
        sources: job.sources.clone(),
        parents: job.parents.clone(),
        resolution: job.to,
        group_by_name: true,
        ..BlockWriteOptions::default()
    };
    let mut buf: Vec<Sample> = Vec::new();
    let mut seen = 0usize;
    let mut produce = |s: &dyn Series, out: &mut Vec<EncodedChunk>| -> Result<()> {
        seen += 1;
        if seen.is_multiple_of(PROGRESS_SERIES) {
            if let Some(p) = job.progress {
                p();
            }
        }
        let t = metric_type(s.labels(), job.metric_type);
        if job.from == 0 {
            from_raw(s, job, t, &mut buf, out)
        } else {
            from_aggregates(s, job, Kept::for_type(t), out)
        }
    };
    write_block_with(parent, q, job.mint, job.maxt, &opts, &mut produce)
}

fn metric_type(l: &Labels, f: &(dyn Fn(&str) -> MetricType + Sync)) -> MetricType {
    l.metric_name().map_or(MetricType::Unknown, f)
}

fn series_err(s: &dyn Series, e: impl std::fmt::Display) -> TsdbError {
    TsdbError::Chunk {
        path: std::path::PathBuf::new(),
        series: s.labels().to_string(),
        source: e.to_string().into(),
    }
}

/// Whether a series of unknown type keeps the counter aggregate: when its
/// name follows the counter conventions, or when it behaves like a counter
/// (it goes down, which for a counter is a reset, in at most one window in
/// [`RESETS_PER_WINDOW_LIMIT`]). A gauge that moves both ways would
/// otherwise keep nearly every raw sample as the two sides of a "reset";
/// `rate` over a gauge means nothing, and reads the averages instead.
fn counter_like(labels: &Labels, samples: &[Sample], windows: usize) -> bool {
    let by_name = labels.metric_name().is_some_and(|n| {
        n.ends_with("_total")
            || n.ends_with("_count")
            || n.ends_with("_sum")
            || n.ends_with("_bucket")
    });
    if by_name {
        return true;
    }
    let mut prev = f64::NAN;
    let mut drops = 0usize;
    for x in samples.iter().filter(|x| !x.v.is_nan()) {
        if x.v < prev {
            drops += 1;
        }
        prev = x.v;
    }
    drops.saturating_mul(RESETS_PER_WINDOW_LIMIT) <= windows
}

/// See [`counter_like`].
const RESETS_PER_WINDOW_LIMIT: usize = 10;

fn from_raw(
    s: &dyn Series,
    job: &DownsampleJob<'_>,
    t: MetricType,
    buf: &mut Vec<Sample>,
    out: &mut Vec<EncodedChunk>,
) -> Result<()> {
    buf.clear();
    let mut it = s.iter();
    let mut vt = it.seek(job.mint);
    while vt != ValueType::None {
        if vt == ValueType::Float {
            vt = it.read_floats(job.maxt - 1, buf);
            if buf.last().is_some_and(|x| x.t >= job.maxt - 1) || vt == ValueType::Float {
                break;
            }
        } else {
            // Native histograms are not downsampled (yet): skipped.
            vt = it.next();
        }
    }
    if let Some(e) = it.err() {
        return Err(series_err(s, e));
    }
    let mut wins = Windows::new(job.to);
    let inside = |x: &&Sample| x.t >= job.mint && x.t < job.maxt;
    for x in buf.iter().filter(inside) {
        wins.push_raw(x.t, x.v);
    }
    wins.finish();
    let mut kept = Kept::for_type(t);
    if t == MetricType::Unknown {
        kept.counter = counter_like(s.labels(), buf, wins.out.len());
    }
    let mut ctr = CounterThin::new(job.to);
    if kept.counter {
        for x in buf.iter().filter(inside) {
            ctr.push(x.t, x.v);
        }
    }
    ctr.finish();
    build::encode_series(&wins.out, &ctr.out, job.to, kept, job.encoding, out)
        .map_err(|e| series_err(s, e))
}

fn from_aggregates(
    s: &dyn Series,
    job: &DownsampleJob<'_>,
    kept: Kept,
    out: &mut Vec<EncodedChunk>,
) -> Result<()> {
    let Some(mut chunks) = s.chunks() else {
        return Err(series_err(s, "downsampled input yields no chunks"));
    };
    let mut wins = Windows::new(job.to);
    let mut ctr = CounterThin::new(job.to);
    let mut kept_in = Kept {
        min_max: false,
        counter: false,
    };
    while let Some(ch) = chunks.next_chunk() {
        let ch = ch?;
        if ch.encoding != cairn_codec::ENCODING_AGGR {
            return Err(series_err(
                s,
                format!("chunk encoding {} in a downsampled block", ch.encoding),
            ));
        }
        let (ws, cs, had) =
            build::decode_chunk(&ch.data, job.from).map_err(|e| series_err(s, e))?;
        kept_in.min_max |= had.min_max;
        kept_in.counter |= had.counter;
        for w in ws.iter().filter(|w| w.t >= job.mint && w.t < job.maxt) {
            wins.push_agg(w);
        }
        for &(t, v) in cs.iter().filter(|c| c.0 >= job.mint && c.0 < job.maxt) {
            ctr.push(t, v);
        }
    }
    wins.finish();
    ctr.finish();
    let kept = Kept {
        min_max: kept.min_max && kept_in.min_max,
        counter: kept.counter && kept_in.counter,
    };
    build::encode_series(&wins.out, &ctr.out, job.to, kept, job.encoding, out)
        .map_err(|e| series_err(s, e))
}

/// One downsampling to do: the input blocks (one raw block, or one block of
/// the finer level) and the output resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub input: BlockMeta,
    pub to: i64,
}

impl Planned {
    /// The output block's meta.json bounds.
    pub fn bounds(&self) -> (i64, i64) {
        let m = &self.input;
        if m.resolution() == 0 {
            (m.min_time.saturating_add(1), m.max_time.saturating_add(1))
        } else {
            (m.min_time, m.max_time)
        }
    }
}

/// Which blocks to downsample: every block of resolution `from` (raw, then
/// 5m) whose sources no block of the next level already covers, once it is
/// done growing: it spans at least `min_span[level]` ms, or (with `settle`
/// above 0) the aligned window of width `settle` (the largest compaction
/// range) holding it ended before the newest raw block began, so
/// compaction will never merge it again. The second rule catches blocks
/// that never reach the span (a gap in the data, a restart): without it
/// they would reach raw retention undownsampled.
pub fn plan_downsampling(metas: &[BlockMeta], min_span: [i64; 2], settle: i64) -> Vec<Planned> {
    let mut out = Vec::new();
    let newest_raw = metas
        .iter()
        .filter(|m| m.resolution() == 0 && !m.compaction.deletable)
        .map(|m| m.min_time)
        .max();
    // A level block over raw [a, b) records [a + 1, b + 1).
    let settled = |m: &BlockMeta| {
        let start = m.min_time - i64::from(m.resolution() > 0);
        settle > 0
            && newest_raw
                .is_some_and(|n| crate::plan::align_down(start, settle).saturating_add(settle) <= n)
    };
    for (i, &(to, from)) in LEVELS.iter().enumerate() {
        let span = min_span.get(i).copied().unwrap_or(i64::MAX);
        let done: Vec<&BlockMeta> = metas
            .iter()
            .filter(|m| m.resolution() == to && !m.compaction.deletable)
            .collect();
        // Blocks planned in this round also feed the next level next round.
        for m in metas
            .iter()
            .filter(|m| m.resolution() == from && !m.compaction.deletable)
        {
            if m.max_time.saturating_sub(m.min_time) < span && !settled(m) {
                continue;
            }
            // Covered when the next level's blocks together hold every
            // source (they may have been merged differently). A block whose
            // sources are covered in part was compacted with new data after
            // its parts were downsampled (out-of-order samples, backfill):
            // downsampling it again would overlap the level's blocks, so it
            // is left as it is and its new samples stay raw-only.
            let held = |s: &Ulid| done.iter().any(|d| d.compaction.sources.contains(s));
            let n = m.compaction.sources.iter().filter(|s| held(s)).count();
            if n > 0 && n < m.compaction.sources.len() {
                tracing::warn!(block = %m.ulid, to, "block partly downsampled already; left as it is");
                continue;
            }
            if n == 0 {
                out.push(Planned {
                    input: m.clone(),
                    to,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod plan_tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use crate::meta::{ThanosDownsample, ThanosMeta};

    const H: i64 = 3_600_000;

    fn raw(id: u128, a: i64, b: i64, sources: &[u128]) -> BlockMeta {
        let mut m = BlockMeta::new(Ulid(id), a, b);
        m.compaction.sources = sources.iter().map(|s| Ulid(*s)).collect();
        m
    }

    fn level(id: u128, res: i64, a: i64, b: i64, sources: &[u128]) -> BlockMeta {
        let mut m = raw(id, a + 1, b + 1, sources);
        m.thanos = Some(ThanosMeta {
            downsample: ThanosDownsample { resolution: res },
            ..ThanosMeta::default()
        });
        m
    }

    #[test]
    fn blocks_are_planned_once_each_level_after_the_other() {
        let metas = vec![raw(1, 0, 18 * H, &[1]), raw(2, 18 * H, 20 * H, &[2])];
        let p = plan_downsampling(&metas, [18 * H, 18 * H], 0);
        // The 2 h block is too short; 1h waits for the 5m block.
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].input.ulid, p[0].to), (Ulid(1), RES_5M));
        assert_eq!(p[0].bounds(), (1, 18 * H + 1));
        let mut metas = metas;
        metas.push(level(3, RES_5M, 0, 18 * H, &[1]));
        let p = plan_downsampling(&metas, [18 * H, 18 * H], 0);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].input.ulid, p[0].to), (Ulid(3), RES_1H));
        assert_eq!(p[0].bounds(), (1, 18 * H + 1));
        metas.push(level(4, RES_1H, 0, 18 * H, &[1]));
        assert!(plan_downsampling(&metas, [18 * H, 18 * H], 0).is_empty());
        // Whatever the span, with a zero minimum (the offline tool).
        assert_eq!(plan_downsampling(&metas, [0, 0], 0).len(), 1);
    }

    #[test]
    fn short_blocks_are_downsampled_once_compaction_is_done_with_them() {
        // A 6 h block left alone in its 18 h window (a gap followed), then
        // a 2 h block beyond the window's end: compaction will never grow
        // the 6 h block, so it is due although shorter than the span.
        let metas = vec![raw(1, 0, 6 * H, &[1]), raw(2, 20 * H, 22 * H, &[2])];
        let p = plan_downsampling(&metas, [18 * H, 18 * H], 18 * H);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].input.ulid, p[0].to), (Ulid(1), RES_5M));
        // Still inside the newest block's window: not yet.
        let metas = vec![raw(1, 0, 6 * H, &[1]), raw(2, 12 * H, 14 * H, &[2])];
        assert!(plan_downsampling(&metas, [18 * H, 18 * H], 18 * H).is_empty());
        // The newest block itself is never settled.
        let metas = vec![raw(2, 20 * H, 22 * H, &[2])];
        assert!(plan_downsampling(&metas, [18 * H, 18 * H], 18 * H).is_empty());
        // Its 5m block is settled the same way.
        let metas = vec![
            raw(1, 0, 6 * H, &[1]),
            raw(2, 20 * H, 22 * H, &[2]),
            level(3, RES_5M, 0, 6 * H, &[1]),
        ];
        let p = plan_downsampling(&metas, [18 * H, 18 * H], 18 * H);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].input.ulid, p[0].to), (Ulid(3), RES_1H));
    }

    #[test]
    fn merged_levels_cover_their_parts_and_partial_coverage_is_left_alone() {
        let metas = vec![
            raw(1, 0, 18 * H, &[1]),
            raw(2, 18 * H, 36 * H, &[2]),
            // One 5m block made of both (merged).
            level(3, RES_5M, 0, 36 * H, &[1, 2]),
            // A raw block compacted with new data after block 1 was
            // downsampled: sources 1 and 9, only 1 covered.
            raw(5, 36 * H, 54 * H, &[1, 9]),
        ];
        let p = plan_downsampling(&metas, [18 * H, 99 * H], 0);
        assert!(p
            .iter()
            .all(|x| x.input.ulid != Ulid(1) && x.input.ulid != Ulid(2)));
        assert!(p.iter().all(|x| x.input.ulid != Ulid(5)), "{p:?}");
    }
}
