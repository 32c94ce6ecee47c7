//! Reading the database at a resolution: which blocks answer which part of
//! a query's range.
//!
//! A [`LevelQuerier`] holds one merged querier per resolution present in
//! the range: raw (head and raw blocks), 5m and 1h. The one for a
//! resolution reads that level's blocks where they exist and fills the
//! rest of the range, piece by piece, from the next finer level, down to
//! raw data and the head. `select` picks the coarsest level no coarser than
//! the selection's `hints.resolution` (0 = raw). Label queries read raw
//! data (downsampled blocks hold the same series as their inputs).
//!
//! A querier may be given an extra raw source (`Db::querier_with_raw`:
//! query mode's `--query.store`s, other Cairns' recent data): it joins the
//! head and raw blocks wherever raw data is read, in the raw level and in
//! every gap a coarser level leaves, so that its samples fill gaps and
//! take part in counter folding like local raw samples, and never mix
//! with a level's aggregate points. Local data wins on equal timestamps.
//!
//! Ranges here are closed `[lo, hi]`; block ranges are half-open.

use std::sync::Arc;

use cairn_model::Matcher;
use cairn_storage::{
    Aggregate, MergeQuerier, Querier, Queryable, SampleIterator, SelectHints, Series, SeriesSet,
    ValueType,
};

use crate::block::{Block, BlockHandle, BlockQuerier};
use crate::downsample::{RES_1H, RES_5M};
use crate::encode::xor_encoder;
use crate::meta::BlockMeta;
use crate::Db;

/// Queriers per level over one closed range.
pub(crate) struct LevelQuerier<'d> {
    raw: MergeQuerier<'d>,
    /// `(resolution, querier)`, coarsest first.
    coarse: Vec<(i64, MergeQuerier<'d>)>,
    /// Blocks read from object storage: their selections wait on the
    /// network, not the CPU, so `select_all` runs up to this many (at most
    /// [`REMOTE_THREADS`]) at once whatever its thread budget.
    remote: usize,
}

/// Most threads selecting from blocks in object storage at once.
const REMOTE_THREADS: usize = 16;

impl<'d> LevelQuerier<'d> {
    pub(crate) fn new(db: &'d Db, mint: i64, maxt: i64) -> cairn_storage::Result<Self> {
        Self::with_raw(db, mint, maxt, None)
    }

    /// [`LevelQuerier::new`] with `extra` read wherever raw data is (module
    /// docs).
    pub(crate) fn with_raw(
        db: &'d Db,
        mint: i64,
        maxt: i64,
        extra: Option<&'d dyn Queryable>,
    ) -> cairn_storage::Result<Self> {
        let blocks = db.query_blocks(mint, maxt)?;
        let src = Sources { db, extra };
        let raw = MergeQuerier::new(pieces(src, &blocks, &[], mint, maxt)?, Some(xor_encoder()));
        let mut coarse = Vec::new();
        for (i, res) in [RES_1H, RES_5M].into_iter().enumerate() {
            let has = blocks
                .iter()
                .any(|b| b.meta().resolution() == res && b.meta().overlaps_closed(mint, maxt));
            if has {
                let levels = [RES_1H, RES_5M];
                let finer = levels.get(i..).unwrap_or(&[]);
                let qs = pieces(src, &blocks, finer, mint, maxt)?;
                coarse.push((res, MergeQuerier::new(qs, Some(xor_encoder()))));
            }
        }
        let remote = blocks
            .iter()
            .filter(|b| b.index().is_remote() && b.meta().overlaps_closed(mint, maxt))
            .count();
        Ok(Self {
            raw,
            coarse,
            remote,
        })
    }

    /// The querier for a selection allowed `resolution`, and its level.
    fn pick(&self, resolution: i64) -> (i64, &MergeQuerier<'d>) {
        self.coarse
            .iter()
            .find(|(r, _)| *r <= resolution)
            .map_or((0, &self.raw), |(r, q)| (*r, q))
    }
}

/// Whether a selection reading level `res` gets its counter points
/// adjusted (see [`CounterPoints`]).
fn adjusts_counters(hints: &SelectHints, res: i64) -> bool {
    hints.aggregate == Aggregate::Counter && res > 0
}

/// Where raw data comes from: the database, and an extra source.
#[derive(Clone, Copy)]
struct Sources<'d> {
    db: &'d Db,
    extra: Option<&'d dyn Queryable>,
}

/// The queriers answering `[lo, hi]` from `levels` (coarsest first), each
/// level's blocks where they exist and the next level in the gaps; raw
/// blocks and the head at the bottom.
fn pieces<'d>(
    src: Sources<'d>,
    blocks: &[Arc<Block>],
    levels: &[i64],
    lo: i64,
    hi: i64,
) -> cairn_storage::Result<Vec<Box<dyn Querier + 'd>>> {
    let mut out: Vec<Box<dyn Querier + 'd>> = Vec::new();
    if lo > hi {
        return Ok(out);
    }
    let Some((&res, finer)) = levels.split_first() else {
        raw_pieces(src, blocks, lo, hi, &mut out)?;
        return Ok(out);
    };
    let mine: Vec<(BlockMeta, &Arc<Block>)> = blocks
        .iter()
        .map(|b| (b.meta(), b))
        .filter(|(m, _)| {
            m.resolution() == res && !m.compaction.deletable && m.overlaps_closed(lo, hi)
        })
        .collect();
    // Where the level answers, every block of it is read (blocks of
    // several writers overlap); what it leaves goes to the finer levels.
    let mut cur = lo;
    for (a, z) in level_spans(blocks, res, lo, hi, &src.db.opts.external_labels) {
        if a > cur {
            out.extend(pieces(src, blocks, finer, cur, a - 1)?);
        }
        for (m, b) in &mine {
            let (x, y) = (m.min_time.max(a), (m.max_time - 1).min(z));
            if x <= y {
                out.push(Box::new(BlockQuerier::new(
                    BlockHandle::Shared((*b).clone()),
                    x,
                    y,
                )));
            }
        }
        cur = z.saturating_add(1);
    }
    if cur <= hi && cur >= lo {
        out.extend(pieces(src, blocks, finer, cur, hi)?);
    }
    Ok(out)
}

/// The closed spans of `[lo, hi]`, sorted and disjoint, where level `res`
/// answers: some block of it covers the time, and so does one of every
/// writer that has data there. Writers are told apart by their blocks'
/// external labels (`thanos.labels`; a query Cairn reads several
/// ingesters' blocks from one bucket): where one ingester's level is
/// there and another's is not yet (it downsamples later), both read finer
/// data, so neither's series go missing and no series mixes raw samples
/// with aggregate points.
fn level_spans(
    blocks: &[Arc<Block>],
    res: i64,
    lo: i64,
    hi: i64,
    own: &std::collections::BTreeMap<String, String>,
) -> Vec<(i64, i64)> {
    let metas: Vec<BlockMeta> = blocks
        .iter()
        .map(|b| b.meta())
        .filter(|m| !m.compaction.deletable && m.overlaps_closed(lo, hi))
        .collect();
    // Raw blocks written here carry no `thanos` section and downsampled
    // ones no labels; their copies in the bucket carry this database's
    // external labels: all are this database's.
    let labels: Vec<std::collections::BTreeMap<String, String>> = metas
        .iter()
        .map(|m| match m.thanos.as_ref().map(|t| &t.labels) {
            Some(l) if !l.is_empty() => l.clone(),
            _ => own.clone(),
        })
        .collect();
    let mut writers = labels.clone();
    writers.sort();
    writers.dedup();
    let writer: Vec<usize> = labels
        .iter()
        .map(|l| writers.binary_search(l).unwrap_or(0))
        .collect();
    // Times where coverage can change: block bounds inside the range.
    let mut cuts: Vec<i64> = vec![lo, hi.saturating_add(1)];
    for m in &metas {
        for t in [m.min_time, m.max_time] {
            if t > lo && t <= hi {
                cuts.push(t);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let covers = |m: &BlockMeta, t: i64| m.min_time <= t && t < m.max_time;
    let mut out: Vec<(i64, i64)> = Vec::new();
    for w in cuts.windows(2) {
        let (a, z) = match w {
            [a, b] => (*a, *b - 1),
            _ => continue,
        };
        // Per writer: has data at `a`, has the level at `a`.
        let mut any = vec![false; writers.len()];
        let mut level = vec![false; writers.len()];
        for (m, &w) in metas.iter().zip(&writer) {
            if covers(m, a) {
                if let Some(x) = any.get_mut(w) {
                    *x = true;
                }
                if m.resolution() == res {
                    if let Some(x) = level.get_mut(w) {
                        *x = true;
                    }
                }
            }
        }
        let all_writers =
            level.iter().any(|l| *l) && any.iter().zip(&level).all(|(a, l)| !*a || *l);
        if !all_writers {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1.saturating_add(1) == a => last.1 = z,
            _ => out.push((a, z)),
        }
    }
    out
}

/// The head and the raw blocks over `[lo, hi]`, head first (it wins on
/// equal timestamps), then newer blocks before older ones, then the extra
/// source.
fn raw_pieces<'d>(
    src: Sources<'d>,
    blocks: &[Arc<Block>],
    lo: i64,
    hi: i64,
    out: &mut Vec<Box<dyn Querier + 'd>>,
) -> cairn_storage::Result<()> {
    let head = src.db.head();
    let (hmin, hmax) = (head.min_time(), head.max_time());
    if hmin <= hmax && hmin <= hi && lo <= hmax {
        out.push(Box::new(CountsFromRaw(head.querier(lo, hi)?)));
    }
    for b in blocks.iter().rev() {
        let m = b.meta();
        if m.resolution() == 0 && m.overlaps_closed(lo, hi) {
            out.push(Box::new(CountsFromRaw(Box::new(BlockQuerier::new(
                BlockHandle::Shared(b.clone()),
                lo,
                hi,
            )))));
        }
    }
    if let Some(x) = src.extra {
        out.push(Box::new(CountsFromRaw(x.querier(lo, hi)?)));
    }
    Ok(())
}

impl Db {
    /// A querier over the blocks of one downsampled resolution only (no
    /// gap filling; `cairn tsdb dump --resolution`). Selections read the
    /// aggregate their hints name.
    pub fn level_querier(&self, resolution: i64, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        let qs: Vec<Box<dyn Querier + '_>> = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().resolution() == resolution && b.meta().overlaps_closed(mint, maxt))
            .map(|b| {
                Box::new(BlockQuerier::new(
                    BlockHandle::Shared(b.clone()),
                    mint,
                    maxt,
                )) as Box<dyn Querier>
            })
            .collect();
        Box::new(MergeQuerier::new(qs, None))
    }
}

impl Querier for LevelQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let (res, q) = self.pick(hints.resolution);
        let set = q.select(hints, matchers)?;
        if !adjusts_counters(hints, res) {
            return Ok(set);
        }
        Ok(Box::new(set.map(move |s| {
            s.map(|inner| Box::new(CounterPoints { inner, res }) as Box<dyn Series + 'a>)
        })))
    }

    fn select_all<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
        threads: usize,
    ) -> cairn_storage::Result<Vec<Box<dyn cairn_storage::Series + 'a>>> {
        let (res, q) = self.pick(hints.resolution);
        let threads = threads.max(self.remote.min(REMOTE_THREADS));
        let all = q.select_all(hints, matchers, threads)?;
        if !adjusts_counters(hints, res) {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .map(|inner| Box::new(CounterPoints { inner, res }) as Box<dyn Series + 'a>)
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        self.raw.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        self.raw.label_values(name, matchers)
    }
}

/// Raw data read in place of a downsampled level's counts: a selection
/// asking for [`Aggregate::Count`] at a resolution above 0 sees 1 for each
/// raw sample (stale markers stay stale), so that summing counts raw
/// samples across levels (see [`SelectHints::aggregate`]). Anything else
/// passes through.
struct CountsFromRaw<'d>(Box<dyn Querier + 'd>);

fn wants_counts(h: &SelectHints) -> bool {
    h.aggregate == Aggregate::Count && h.resolution > 0
}

impl Querier for CountsFromRaw<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let set = self.0.select(hints, matchers)?;
        if !wants_counts(hints) {
            return Ok(set);
        }
        Ok(Box::new(set.map(|s| {
            s.map(|inner| Box::new(Ones(inner)) as Box<dyn Series + 'a>)
        })))
    }

    fn select_all<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
        threads: usize,
    ) -> cairn_storage::Result<Vec<Box<dyn Series + 'a>>> {
        let all = self.0.select_all(hints, matchers, threads)?;
        if !wants_counts(hints) {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .map(|inner| Box::new(Ones(inner)) as Box<dyn Series + 'a>)
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        self.0.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        self.0.label_values(name, matchers)
    }
}

/// A series whose float values read as 1 (stale markers kept).
struct Ones<'a>(Box<dyn Series + 'a>);

impl Series for Ones<'_> {
    fn labels(&self) -> &cairn_model::Labels {
        self.0.labels()
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(OnesIter(self.0.iter()))
    }

    fn prefetch(&self, depth: cairn_storage::Prefetch) {
        self.0.prefetch(depth);
    }
}

struct OnesIter<'a>(Box<dyn SampleIterator + 'a>);

impl SampleIterator for OnesIter<'_> {
    fn next(&mut self) -> ValueType {
        self.0.next()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        self.0.seek(t)
    }

    fn at(&self) -> (i64, f64) {
        let (t, v) = self.0.at();
        (t, if cairn_model::is_stale_nan(v) { v } else { 1.0 })
    }

    fn at_t(&self) -> i64 {
        self.0.at_t()
    }

    fn err(&self) -> Option<&cairn_storage::StorageError> {
        self.0.err()
    }
}

/// A counter read at a downsampled level for `rate`, `increase` and
/// `irate`: one point per window (its last sample), with every reset folded
/// into the values from then on (a value below the previous one adds the
/// previous one to everything after). The stored counter points keep both
/// sides of each reset, which makes them unevenly spaced; PromQL's
/// extrapolation reads uneven spacing as gaps, so the points handed to it
/// are the evenly spaced, reset-free equivalent. Applied to the merged
/// series, so the fold carries across blocks and into raw data that fills
/// gaps. NaN values are skipped.
struct CounterPoints<'a> {
    inner: Box<dyn Series + 'a>,
    res: i64,
}

impl Series for CounterPoints<'_> {
    fn labels(&self) -> &cairn_model::Labels {
        self.inner.labels()
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(CounterPointsIter {
            inner: Some(self.inner.iter()),
            res: self.res,
            points: Vec::new(),
            i: 0,
            err: None,
        })
    }

    fn prefetch(&self, depth: cairn_storage::Prefetch) {
        self.inner.prefetch(depth);
    }
}

/// Reads the whole series in bulk on first use (the merged iterator's
/// `read_floats` hands over runs of one source at a time), then serves the
/// folded points from memory.
struct CounterPointsIter<'a> {
    /// The source, until it has been read.
    inner: Option<Box<dyn SampleIterator + 'a>>,
    res: i64,
    points: Vec<cairn_model::Sample>,
    /// Index of the current point plus one (0 before the first).
    i: usize,
    err: Option<cairn_storage::StorageError>,
}

impl CounterPointsIter<'_> {
    fn load(&mut self) {
        let Some(mut it) = self.inner.take() else {
            return;
        };
        let mut raw: Vec<cairn_model::Sample> = Vec::new();
        let mut vt = it.next();
        loop {
            match vt {
                ValueType::Float => vt = it.read_floats(i64::MAX, &mut raw),
                ValueType::None => break,
                // Histograms have no counter points: skipped.
                _ => vt = it.next(),
            }
        }
        if let Some(e) = it.err() {
            self.err = Some(cairn_storage::StorageError::Backend(e.to_string().into()));
        }
        // Fold resets into the values, keep each window's last point.
        let mut offset = 0.0;
        let mut prev: Option<f64> = None;
        for x in raw.iter().filter(|x| !x.v.is_nan()) {
            if let Some(p) = prev {
                if x.v < p {
                    offset += p;
                }
            }
            prev = Some(x.v);
            let point = cairn_model::Sample::new(x.t, x.v + offset);
            let end = crate::downsample::window_end(x.t, self.res);
            match self.points.last_mut() {
                Some(last) if crate::downsample::window_end(last.t, self.res) == end => {
                    *last = point;
                }
                _ => self.points.push(point),
            }
        }
    }
}

impl SampleIterator for CounterPointsIter<'_> {
    fn next(&mut self) -> ValueType {
        self.load();
        if self.i < self.points.len() {
            self.i += 1;
            ValueType::Float
        } else {
            self.i = self.points.len() + 1;
            ValueType::None
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        self.load();
        let from = self.i.saturating_sub(1);
        let rest = self.points.get(from..).unwrap_or(&[]);
        let k = from + rest.partition_point(|p| p.t < t);
        if k < self.points.len() {
            self.i = self.i.max(k + 1);
            ValueType::Float
        } else {
            self.i = self.points.len() + 1;
            ValueType::None
        }
    }

    fn at(&self) -> (i64, f64) {
        self.points
            .get(self.i.wrapping_sub(1))
            .map_or((i64::MIN, f64::NAN), |p| (p.t, p.v))
    }

    fn at_t(&self) -> i64 {
        self.at().0
    }

    fn err(&self) -> Option<&cairn_storage::StorageError> {
        self.err.as_ref()
    }

    fn read_floats(&mut self, maxt: i64, out: &mut Vec<cairn_model::Sample>) -> ValueType {
        let from = self.i.saturating_sub(1);
        let rest = self.points.get(from..).unwrap_or(&[]);
        let k = rest.partition_point(|p| p.t <= maxt);
        out.extend_from_slice(rest.get(..k).unwrap_or(&[]));
        self.i = from + k + 1;
        if self.i <= self.points.len() {
            ValueType::Float
        } else {
            ValueType::None
        }
    }
}
