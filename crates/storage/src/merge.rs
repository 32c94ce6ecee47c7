//! Merging several label-sorted series sets into one.
//!
//! A database answers a query from many sources at once (blocks and the
//! head), each producing its own label-sorted [`SeriesSet`]. This module
//! combines them into one label-sorted set in a single streaming pass
//! (a k-way merge that holds one peeked series per source, never a whole
//! set). [`MergeQuerier`]'s `select_all`, for callers that collect the whole
//! selection anyway, instead collects each source's set on its own thread
//! and merges the collected sets the same way.
//!
//! Contracts:
//! - Input sets must be sorted by [`Labels`] order with each label set once;
//!   the output is then sorted the same way with each label set once.
//! - Series with equal labels in several sets become one series. Its sample
//!   iterator yields the union of the sources' samples in increasing time
//!   order; when several sources hold a sample at the same timestamp, the
//!   one from the set listed *first* wins and the others are dropped.
//! - [`Series::chunks`] of a combined series is `None` unless every source
//!   offers chunks. Chunks that overlap no other chunk pass through
//!   untouched; a run of overlapping chunks is replaced by chunks that the
//!   caller's [`ChunkEncoder`] builds from the deduplicated samples of the
//!   run's inclusive time span (samples are limited to the querier bounds of
//!   the sources, as their iterators are).
//! - The first error from any source ends the merged set (it is yielded as
//!   an item and nothing follows).

use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

use cairn_model::{FloatHistogram, Labels, Matcher, Sample};

use crate::traits::*;
use crate::{Result, StorageError};

/// A run of time-ordered, deduplicated samples of one kind, to encode.
#[derive(Debug, Clone, Copy)]
pub enum EncodeInput<'a> {
    Floats(&'a [Sample]),
    /// Native histograms, as iterators give them (float form, and the
    /// integer form where they have one).
    Histograms(&'a [crate::DecodedHistogram]),
}

/// Builds encoded chunks from a run of samples. Injected by the caller
/// because this crate knows no chunk encoding.
pub type ChunkEncoder = Arc<dyn Fn(EncodeInput<'_>) -> Result<Vec<EncodedChunk>> + Send + Sync>;

/// Merges label-sorted sets; see the module docs. `encoder` re-encodes
/// overlapping chunks; without one, a combined series offers no chunks.
pub fn merge_series_sets<'a>(
    sets: Vec<SeriesSet<'a>>,
    encoder: Option<ChunkEncoder>,
) -> SeriesSet<'a> {
    if sets.len() == 1 {
        if let Some(s) = sets.into_iter().next() {
            return s;
        }
        return Box::new(std::iter::empty());
    }
    let heads = sets.iter().map(|_| None).collect();
    Box::new(MergeSet {
        sets,
        heads,
        started: false,
        done: false,
        encoder,
    })
}

struct MergeSet<'a> {
    sets: Vec<SeriesSet<'a>>,
    heads: Vec<Option<Box<dyn Series + 'a>>>,
    started: bool,
    done: bool,
    encoder: Option<ChunkEncoder>,
}

impl<'a> MergeSet<'a> {
    /// Refills the head of set `i`. Returns an error to surface.
    fn refill(&mut self, i: usize) -> Result<()> {
        if let (Some(set), Some(slot)) = (self.sets.get_mut(i), self.heads.get_mut(i)) {
            *slot = match set.next() {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => return Err(e),
            };
        }
        Ok(())
    }
}

impl<'a> Iterator for MergeSet<'a> {
    type Item = Result<Box<dyn Series + 'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            for i in 0..self.sets.len() {
                if let Err(e) = self.refill(i) {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        // Find the smallest label set among the heads.
        let mut min: Option<&Labels> = None;
        for s in self.heads.iter().flatten() {
            let l = s.labels();
            if min.is_none_or(|m| l.cmp(m) == Ordering::Less) {
                min = Some(l);
            }
        }
        let min = match min {
            Some(m) => m.clone(),
            None => {
                self.done = true;
                return None;
            }
        };
        let mut parts: Vec<Box<dyn Series + 'a>> = Vec::new();
        for i in 0..self.heads.len() {
            let take = matches!(self.heads.get(i), Some(Some(s)) if *s.labels() == min);
            if take {
                if let Some(s) = self.heads.get_mut(i).and_then(Option::take) {
                    parts.push(s);
                }
                if let Err(e) = self.refill(i) {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        if parts.len() == 1 {
            return parts.pop().map(Ok);
        }
        Some(Ok(Box::new(MergedSeries {
            labels: min,
            parts,
            encoder: self.encoder.clone(),
        })))
    }
}

/// One series combined from several sources with equal labels; the
/// earliest source wins on equal timestamps.
pub struct MergedSeries<'a> {
    labels: Labels,
    parts: Vec<Box<dyn Series + 'a>>,
    encoder: Option<ChunkEncoder>,
}

impl<'a> MergedSeries<'a> {
    /// Combines `parts` (all with labels `labels`), earliest part first.
    pub fn new(
        labels: Labels,
        parts: Vec<Box<dyn Series + 'a>>,
        encoder: Option<ChunkEncoder>,
    ) -> Self {
        Self {
            labels,
            parts,
            encoder,
        }
    }
}

impl Series for MergedSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(MergeSampleIterator::new(
            self.parts.iter().map(|p| p.iter()).collect(),
        ))
    }

    fn prefetch(&self, depth: crate::Prefetch) {
        for p in &self.parts {
            p.prefetch(depth);
        }
    }

    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        let encoder = self.encoder.clone()?;
        let mut its = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            its.push(p.chunks()?);
        }
        let heads = its.iter().map(|_| None).collect();
        Some(Box::new(MergeChunkIterator {
            series: self,
            its,
            heads,
            started: false,
            failed: false,
            pending: VecDeque::new(),
            encoder,
        }))
    }
}

/// Merges sample iterators; the lowest-index iterator wins on equal
/// timestamps.
pub struct MergeSampleIterator<'a> {
    its: Vec<Box<dyn SampleIterator + 'a>>,
    /// Whether each iterator is positioned on a sample.
    live: Vec<bool>,
    /// What each iterator is positioned on.
    kinds: Vec<ValueType>,
    cur: Option<usize>,
    started: bool,
    err_at: Option<usize>,
}

impl<'a> MergeSampleIterator<'a> {
    /// Merges `its`, which must all be unstarted.
    pub fn new(its: Vec<Box<dyn SampleIterator + 'a>>) -> Self {
        let live = vec![false; its.len()];
        let kinds = vec![ValueType::None; its.len()];
        Self {
            its,
            live,
            kinds,
            cur: None,
            started: false,
            err_at: None,
        }
    }

    fn note(&mut self, i: usize, vt: ValueType) {
        let on = vt != ValueType::None;
        if let Some(l) = self.live.get_mut(i) {
            *l = on;
        }
        if let Some(k) = self.kinds.get_mut(i) {
            *k = vt;
        }
        if !on && self.err_at.is_none() && self.its.get(i).is_some_and(|it| it.err().is_some()) {
            self.err_at = Some(i);
        }
    }

    fn pick(&mut self) -> ValueType {
        if self.err_at.is_some() {
            self.cur = None;
            return ValueType::None;
        }
        let mut best: Option<(usize, i64)> = None;
        for (i, it) in self.its.iter().enumerate() {
            if !self.live.get(i).copied().unwrap_or(false) {
                continue;
            }
            let t = it.at_t();
            if best.is_none_or(|(_, bt)| t < bt) {
                best = Some((i, t));
            }
        }
        self.cur = best.map(|b| b.0);
        self.kind()
    }

    /// What the current iterator is positioned on.
    fn kind(&self) -> ValueType {
        self.cur
            .and_then(|c| self.kinds.get(c).copied())
            .unwrap_or(ValueType::None)
    }
}

impl SampleIterator for MergeSampleIterator<'_> {
    fn next(&mut self) -> ValueType {
        if !self.started {
            self.started = true;
            for i in 0..self.its.len() {
                let vt = match self.its.get_mut(i) {
                    Some(it) => it.next(),
                    None => ValueType::None,
                };
                self.note(i, vt);
            }
            return self.pick();
        }
        let Some(c) = self.cur else {
            return ValueType::None;
        };
        let t = self.its.get(c).map(|it| it.at_t()).unwrap_or(i64::MAX);
        for i in 0..self.its.len() {
            if !self.live.get(i).copied().unwrap_or(false) {
                continue;
            }
            let vt = match self.its.get_mut(i) {
                Some(it) if it.at_t() <= t => it.next(),
                _ => continue,
            };
            self.note(i, vt);
        }
        self.pick()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.started {
            match self.cur {
                None => return ValueType::None,
                Some(c) => {
                    if self.its.get(c).is_some_and(|it| it.at_t() >= t) {
                        return self.kind();
                    }
                }
            }
        }
        let first = !self.started;
        self.started = true;
        for i in 0..self.its.len() {
            if !first && !self.live.get(i).copied().unwrap_or(false) {
                continue;
            }
            let vt = match self.its.get_mut(i) {
                Some(it) => it.seek(t),
                None => ValueType::None,
            };
            self.note(i, vt);
        }
        self.pick()
    }

    fn at(&self) -> (i64, f64) {
        self.cur
            .and_then(|c| self.its.get(c))
            .map(|it| it.at())
            .unwrap_or((i64::MIN, f64::NAN))
    }

    fn at_t(&self) -> i64 {
        self.cur
            .and_then(|c| self.its.get(c))
            .map_or(i64::MIN, |it| it.at_t())
    }

    fn at_float_histogram(&self) -> Option<(i64, Arc<FloatHistogram>)> {
        self.cur
            .and_then(|c| self.its.get(c))
            .and_then(|it| it.at_float_histogram())
    }

    fn at_histogram(&self) -> Option<(i64, Arc<cairn_model::Histogram>)> {
        self.cur
            .and_then(|c| self.its.get(c))
            .and_then(|it| it.at_histogram())
    }

    fn err(&self) -> Option<&StorageError> {
        self.err_at
            .and_then(|i| self.its.get(i))
            .and_then(|it| it.err())
    }

    /// Hands runs to the sources' own bulk reads: while the current source
    /// is strictly ahead of every other, it alone supplies the samples up
    /// to just before the next source's sample. Ties and histogram samples
    /// are stepped over one at a time, as [`Self::next`] does.
    fn read_floats(&mut self, maxt: i64, out: &mut Vec<Sample>) -> ValueType {
        loop {
            let Some(c) = self.cur else {
                return ValueType::None;
            };
            let t = self.at_t();
            let kind = self.kind();
            if t > maxt || kind != ValueType::Float {
                return kind;
            }
            let mut bound = i64::MAX;
            for (i, it) in self.its.iter().enumerate() {
                if i != c && self.live.get(i).copied().unwrap_or(false) {
                    bound = bound.min(it.at_t());
                }
            }
            if bound > t {
                let limit = maxt.min(bound - 1);
                if let Some(it) = self.its.get_mut(c) {
                    let vt = it.read_floats(limit, out);
                    self.note(c, vt);
                    // A histogram next ends the read at the loop's top.
                    self.pick();
                    continue;
                }
            }
            let (t, v) = self.at();
            out.push(Sample::new(t, v));
            if self.next() == ValueType::None {
                return ValueType::None;
            }
        }
    }
}

struct MergeChunkIterator<'s, 'a> {
    series: &'s MergedSeries<'a>,
    its: Vec<Box<dyn ChunkIterator + 's>>,
    heads: Vec<Option<EncodedChunk>>,
    started: bool,
    failed: bool,
    pending: VecDeque<EncodedChunk>,
    encoder: ChunkEncoder,
}

impl MergeChunkIterator<'_, '_> {
    fn refill(&mut self, i: usize) -> Result<()> {
        if let (Some(it), Some(slot)) = (self.its.get_mut(i), self.heads.get_mut(i)) {
            *slot = match it.next_chunk() {
                None => None,
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => return Err(e),
            };
        }
        Ok(())
    }

    /// Index of the head chunk with the smallest min time (lowest index on ties).
    fn earliest(&self) -> Option<usize> {
        let mut best: Option<(usize, i64)> = None;
        for (i, c) in self.heads.iter().enumerate() {
            if let Some(c) = c {
                if best.is_none_or(|(_, t)| c.min_time < t) {
                    best = Some((i, c.min_time));
                }
            }
        }
        best.map(|b| b.0)
    }

    fn step(&mut self) -> Result<Option<EncodedChunk>> {
        if !self.started {
            self.started = true;
            for i in 0..self.its.len() {
                self.refill(i)?;
            }
        }
        let Some(i) = self.earliest() else {
            return Ok(None);
        };
        let Some(first) = self.heads.get_mut(i).and_then(Option::take) else {
            return Ok(None);
        };
        self.refill(i)?;
        let (gmin, mut gmax) = (first.min_time, first.max_time);
        let mut overlapped = false;
        loop {
            let mut hit = None;
            for (j, c) in self.heads.iter().enumerate() {
                if c.as_ref().is_some_and(|c| c.min_time <= gmax) {
                    hit = Some(j);
                    break;
                }
            }
            let Some(j) = hit else { break };
            if let Some(c) = self.heads.get_mut(j).and_then(Option::take) {
                gmax = gmax.max(c.max_time);
                overlapped = true;
            }
            self.refill(j)?;
        }
        if !overlapped {
            return Ok(Some(first));
        }
        // Runs of floats and of histograms, each encoded on its own so
        // that the chunks of the two kinds do not overlap.
        let mut it = self.series.iter();
        let mut samples = Vec::new();
        let mut hists = Vec::new();
        let mut vt = it.seek(gmin);
        while vt != ValueType::None {
            if it.at_t() > gmax {
                break;
            }
            match vt {
                ValueType::Histogram | ValueType::FloatHistogram => {
                    if let Some((t, h)) = it.at_float_histogram() {
                        if !samples.is_empty() {
                            self.pending
                                .extend((self.encoder)(EncodeInput::Floats(&samples))?);
                            samples.clear();
                        }
                        hists.push((t, h, it.at_histogram().map(|x| x.1)));
                    }
                }
                _ => {
                    if !hists.is_empty() {
                        self.pending
                            .extend((self.encoder)(EncodeInput::Histograms(&hists))?);
                        hists.clear();
                    }
                    let (t, v) = it.at();
                    samples.push(Sample::new(t, v));
                }
            }
            vt = it.next();
        }
        if let Some(e) = it.err() {
            return Err(StorageError::Backend(e.to_string().into()));
        }
        if !samples.is_empty() {
            self.pending
                .extend((self.encoder)(EncodeInput::Floats(&samples))?);
        }
        if !hists.is_empty() {
            self.pending
                .extend((self.encoder)(EncodeInput::Histograms(&hists))?);
        }
        Ok(self.pending.pop_front())
    }
}

impl ChunkIterator for MergeChunkIterator<'_, '_> {
    fn next_chunk(&mut self) -> Option<Result<EncodedChunk>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(Ok(c));
            }
            match self.step() {
                Ok(Some(c)) => return Some(Ok(c)),
                Ok(None) => {
                    // A run may re-encode to nothing (all samples outside the
                    // bounds); keep going while sources still have chunks.
                    if self.heads.iter().all(Option::is_none) {
                        return None;
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// A collected selection.
type SeriesList<'a> = Vec<Box<dyn Series + 'a>>;

/// A querier over several queriers: selections are merged (earliest querier
/// wins on equal timestamps), label names and values are unioned.
pub struct MergeQuerier<'a> {
    queriers: Vec<Box<dyn Querier + 'a>>,
    encoder: Option<ChunkEncoder>,
}

impl<'a> MergeQuerier<'a> {
    /// Merges `queriers`, highest priority first.
    pub fn new(queriers: Vec<Box<dyn Querier + 'a>>, encoder: Option<ChunkEncoder>) -> Self {
        Self { queriers, encoder }
    }
}

impl Querier for MergeQuerier<'_> {
    fn select<'b>(&'b self, hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'b>> {
        let mut sets = Vec::with_capacity(self.queriers.len());
        for q in &self.queriers {
            sets.push(q.select(hints, matchers)?);
        }
        Ok(merge_series_sets(sets, self.encoder.clone()))
    }

    /// Each source's series are collected on one of up to `threads` threads
    /// (a thread takes the next source when it is done with one), then
    /// merged here as [`Self::select`] merges them.
    fn select_all<'b>(
        &'b self,
        hints: &SelectHints,
        matchers: &[Matcher],
        threads: usize,
    ) -> Result<Vec<Box<dyn Series + 'b>>> {
        let n = self.queriers.len();
        let workers = threads.min(n);
        if workers <= 1 {
            return self.select(hints, matchers)?.collect();
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done: Vec<(usize, Result<SeriesList<'b>>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                let Some(q) = self.queriers.get(i) else {
                    return done;
                };
                done.push((i, q.select_all(hints, matchers, 1)));
            }
        };
        let mut lists: Vec<Option<Result<SeriesList<'b>>>> =
            std::iter::repeat_with(|| None).take(n).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
            let mut all = work();
            for h in handles {
                match h.join() {
                    Ok(d) => all.extend(d),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            for (i, r) in all {
                if let Some(slot) = lists.get_mut(i) {
                    *slot = Some(r);
                }
            }
        });
        let mut sets: Vec<SeriesSet<'b>> = Vec::with_capacity(n);
        for l in lists {
            // Every index was taken by some worker.
            let l = l.unwrap_or_else(|| Ok(Vec::new()))?;
            sets.push(Box::new(l.into_iter().map(Ok)));
        }
        merge_series_sets(sets, self.encoder.clone()).collect()
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for q in &self.queriers {
            out.extend(q.label_names(matchers)?);
        }
        Ok(out.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for q in &self.queriers {
            out.extend(q.label_values(name, matchers)?);
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::VecSeries;
    use cairn_model::labels;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const FAKE: u8 = 0xEE;

    /// Test encoding: 16 bytes per sample, little endian.
    fn fake_encode_input(i: EncodeInput<'_>) -> Result<Vec<EncodedChunk>> {
        match i {
            EncodeInput::Floats(s) => fake_encode(s),
            EncodeInput::Histograms(_) => Ok(Vec::new()),
        }
    }

    fn fake_encode(s: &[Sample]) -> Result<Vec<EncodedChunk>> {
        let mut out = Vec::new();
        for part in s.chunks(3) {
            let mut data = Vec::new();
            for x in part {
                data.extend_from_slice(&x.t.to_le_bytes());
                data.extend_from_slice(&x.v.to_le_bytes());
            }
            if let (Some(a), Some(b)) = (part.first(), part.last()) {
                out.push(EncodedChunk {
                    min_time: a.t,
                    max_time: b.t,
                    encoding: FAKE,
                    data,
                });
            }
        }
        Ok(out)
    }

    fn fake_decode(c: &EncodedChunk) -> Vec<(i64, f64)> {
        assert_eq!(c.encoding, FAKE);
        c.data
            .chunks(16)
            .map(|b| {
                let t = i64::from_le_bytes(b[..8].try_into().unwrap());
                let v = f64::from_le_bytes(b[8..].try_into().unwrap());
                (t, v)
            })
            .collect()
    }

    /// A series that also offers (fake-encoded) chunks.
    struct ChunkedSeries {
        inner: VecSeries,
        chunks: Vec<EncodedChunk>,
    }

    struct VecChunks(std::vec::IntoIter<EncodedChunk>);
    impl ChunkIterator for VecChunks {
        fn next_chunk(&mut self) -> Option<Result<EncodedChunk>> {
            self.0.next().map(Ok)
        }
    }

    impl Series for ChunkedSeries {
        fn labels(&self) -> &Labels {
            self.inner.labels()
        }
        fn iter(&self) -> Box<dyn SampleIterator + '_> {
            self.inner.iter()
        }
        fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
            Some(Box::new(VecChunks(self.chunks.clone().into_iter())))
        }
    }

    type Src = Vec<(String, Vec<(i64, f64)>)>;

    fn make_set(src: &Src, chunked: bool) -> SeriesSet<'static> {
        let v: Vec<Result<Box<dyn Series>>> = src
            .iter()
            .map(|(n, s)| {
                let samples: Vec<Sample> = s.iter().map(|&(t, v)| Sample::new(t, v)).collect();
                let vs = VecSeries::new(labels!("__name__" => n.as_str()), samples.clone());
                let b: Box<dyn Series> = if chunked {
                    Box::new(ChunkedSeries {
                        inner: vs,
                        chunks: fake_encode(&samples).unwrap(),
                    })
                } else {
                    Box::new(vs)
                };
                Ok(b)
            })
            .collect();
        Box::new(v.into_iter())
    }

    fn drain(it: &mut dyn SampleIterator) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            v.push(it.at());
        }
        v
    }

    /// The expected merge: first source wins on equal timestamps.
    fn model(srcs: &[Src]) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
        let mut m: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for src in srcs {
            for (n, s) in src {
                let e = m.entry(labels!("__name__" => n.as_str())).or_default();
                for &(t, v) in s {
                    e.entry(t).or_insert(v);
                }
            }
        }
        m
    }

    fn arb_src() -> impl Strategy<Value = Src> {
        proptest::collection::btree_map(
            "[a-e]",
            proptest::collection::btree_map(0i64..60, -100i32..100, 1..12),
            0..5,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(n, s)| (n, s.into_iter().map(|(t, v)| (t, f64::from(v))).collect()))
                .collect()
        })
    }

    #[test]
    fn equal_timestamps_take_the_first_set() {
        let a: Src = vec![("x".into(), vec![(1, 1.0), (3, 3.0)])];
        let b: Src = vec![
            ("x".into(), vec![(1, 10.0), (2, 20.0)]),
            ("y".into(), vec![(5, 5.0)]),
        ];
        let m = merge_series_sets(vec![make_set(&a, false), make_set(&b, false)], None);
        let got: Vec<_> = m
            .map(|s| {
                let s = s.unwrap();
                let v = drain(&mut *s.iter());
                (s.labels().clone(), v)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    labels!("__name__" => "x"),
                    vec![(1, 1.0), (2, 20.0), (3, 3.0)]
                ),
                (labels!("__name__" => "y"), vec![(5, 5.0)]),
            ]
        );
    }

    #[test]
    fn non_overlapping_chunks_pass_through_untouched() {
        let a: Src = vec![("x".into(), vec![(1, 1.0), (2, 2.0)])];
        let b: Src = vec![("x".into(), vec![(10, 1.0), (11, 2.0)])];
        let enc: ChunkEncoder = Arc::new(|_: EncodeInput<'_>| panic!("must not re-encode"));
        let mut m = merge_series_sets(vec![make_set(&a, true), make_set(&b, true)], Some(enc));
        let s = m.next().unwrap().unwrap();
        let mut ci = s.chunks().unwrap();
        let mut spans = vec![];
        while let Some(c) = ci.next_chunk() {
            let c = c.unwrap();
            spans.push((c.min_time, c.max_time));
        }
        assert_eq!(spans, vec![(1, 2), (10, 11)]);
    }

    #[test]
    fn errors_end_the_set() {
        let bad: SeriesSet<'static> = Box::new(vec![Err(StorageError::Canceled)].into_iter());
        let a: Src = vec![("x".into(), vec![(1, 1.0)])];
        let mut m = merge_series_sets(vec![make_set(&a, false), bad], None);
        assert!(matches!(m.next(), Some(Err(StorageError::Canceled))));
        assert!(m.next().is_none());
    }

    proptest! {
        #[test]
        fn select_all_on_threads_matches_a_model(srcs in proptest::collection::vec(arb_src(), 1..5), threads in 1usize..4) {
            let want = model(&srcs);
            let stores: Vec<crate::memory::MemStorage> = srcs
                .iter()
                .map(|src| {
                    let m = crate::memory::MemStorage::new();
                    for (n, smp) in src {
                        m.add(labels!("__name__" => n.as_str()), smp.iter().map(|&(t, v)| Sample::new(t, v)));
                    }
                    m
                })
                .collect();
            let qs: Vec<Box<dyn Querier>> = stores.iter().map(|m| m.querier(0, 100).unwrap()).collect();
            let mq = MergeQuerier::new(qs, None);
            let all = mq.select_all(&SelectHints::default(), &[], threads).unwrap();
            let got: Vec<(Labels, Vec<(i64, f64)>)> = all.iter().map(|s| (s.labels().clone(), drain(&mut *s.iter()))).collect();
            let want: Vec<(Labels, Vec<(i64, f64)>)> = want.into_iter().map(|(l, m)| (l, m.into_iter().collect())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn merge_matches_a_model(srcs in proptest::collection::vec(arb_src(), 1..4), chunked in any::<bool>(), seek_to in 0i64..70) {
            let want = model(&srcs);
            let sets = srcs.iter().map(|s| make_set(s, chunked)).collect();
            let enc: ChunkEncoder = Arc::new(fake_encode_input);
            let merged: Vec<Box<dyn Series>> = merge_series_sets(sets, Some(enc)).map(|s| s.unwrap()).collect();
            let got_labels: Vec<Labels> = merged.iter().map(|s| s.labels().clone()).collect();
            let want_labels: Vec<Labels> = want.keys().cloned().collect();
            prop_assert_eq!(got_labels, want_labels);
            for s in &merged {
                let w: Vec<(i64, f64)> = want[s.labels()].iter().map(|(&t, &v)| (t, v)).collect();
                prop_assert_eq!(drain(&mut *s.iter()), w.clone());
                // seek lands on the first sample at or after the target, then continues.
                let mut it = s.iter();
                let ws: Vec<(i64, f64)> = w.iter().copied().filter(|x| x.0 >= seek_to).collect();
                if it.seek(seek_to) == ValueType::Float {
                    let mut got = vec![it.at()];
                    got.extend(drain(&mut *it));
                    prop_assert_eq!(got, ws.clone());
                } else {
                    prop_assert!(ws.is_empty());
                }
                // Bulk reads in pieces give the same samples as stepping.
                let mut it = s.iter();
                let mut got: Vec<(i64, f64)> = vec![];
                let mut buf = vec![];
                let mut vt = it.seek(seek_to);
                let mut maxt = seek_to;
                while vt == ValueType::Float {
                    vt = it.read_floats(maxt, &mut buf);
                    maxt += 7;
                }
                got.extend(buf.iter().map(|x| (x.t, x.v)));
                prop_assert_eq!(got, ws);
                match s.chunks() {
                    None => prop_assert!(!chunked),
                    Some(mut ci) => {
                        let mut got = vec![];
                        let mut last_max = i64::MIN;
                        while let Some(c) = ci.next_chunk() {
                            let c = c.unwrap();
                            prop_assert!(c.min_time > last_max, "chunks overlap");
                            last_max = c.max_time;
                            let d = fake_decode(&c);
                            prop_assert_eq!(d.first().map(|x| x.0), Some(c.min_time));
                            prop_assert_eq!(d.last().map(|x| x.0), Some(c.max_time));
                            got.extend(d);
                        }
                        prop_assert_eq!(got, w);
                    }
                }
            }
        }
    }

    /// Histogram samples of the merged iterators come through with their
    /// kind, time and value, and end a bulk float read.
    #[test]
    fn merging_keeps_histograms() {
        use crate::{VecSampleIterator, WithHistograms};
        let a = [Sample::new(1, 1.0), Sample::new(3, 3.0)];
        let b = [Sample::new(4, 4.0)];
        let h = Arc::new(FloatHistogram {
            count: 7.0,
            ..Default::default()
        });
        let mk = || {
            MergeSampleIterator::new(vec![
                Box::new(WithHistograms::new(
                    VecSampleIterator::new(&a),
                    vec![(2, h.clone())],
                )),
                Box::new(VecSampleIterator::new(&b)),
            ])
        };
        let mut it = mk();
        let mut got = Vec::new();
        loop {
            match it.next() {
                ValueType::Float => got.push((it.at_t(), it.at().1)),
                ValueType::FloatHistogram => {
                    let (t, x) = it.at_float_histogram().unwrap();
                    assert_eq!(t, it.at_t());
                    got.push((t, -x.count));
                }
                _ => break,
            }
        }
        assert_eq!(got, vec![(1, 1.0), (2, -7.0), (3, 3.0), (4, 4.0)]);
        let mut it = mk();
        assert_eq!(it.next(), ValueType::Float);
        let mut out = Vec::new();
        assert_eq!(it.read_floats(10, &mut out), ValueType::FloatHistogram);
        assert_eq!(out, vec![Sample::new(1, 1.0)]);
        assert_eq!(it.seek(2), ValueType::FloatHistogram);
        assert_eq!(it.seek(3), ValueType::Float);
        out.clear();
        assert_eq!(it.read_floats(10, &mut out), ValueType::None);
        assert_eq!(out, vec![Sample::new(3, 3.0), Sample::new(4, 4.0)]);
    }
}
