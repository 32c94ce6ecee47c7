//! The head's querier: a fixed isolation view over an inclusive time range.
//!
//! `select` evaluates matchers on the in-memory index, keeps the series with
//! a visible sample in range and returns them sorted by labels (refs follow
//! creation order, so the head sorts; large selections are checked and
//! sorted on two threads). Each series' samples are read from a
//! snapshot taken when its iterator is created; what a commit that finished
//! after the querier was created wrote is never visible.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_model::{cmp_encoded, Labels, Matcher};
use cairn_storage::{
    ChunkIterator, Querier, Queryable, Result, SampleIterator, SelectHints, Series, SeriesSet,
};

use crate::head::Head;
use crate::index_adapter::postings_for_matchers;
use crate::isolation::IsoState;
use crate::read::{SnapIter, Snapshot, VecChunks};
use crate::series::MemSeries;

/// A querier over the head.
pub(crate) struct HeadQuerier<'a> {
    head: &'a Head,
    mint: i64,
    maxt: i64,
    iso: IsoState,
}

impl Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(HeadQuerier {
            head: self,
            mint,
            maxt,
            iso: self.iso.reader(),
        }))
    }
}

impl Drop for HeadQuerier<'_> {
    fn drop(&mut self) {
        self.head.iso.release(&self.iso);
    }
}

impl HeadQuerier<'_> {
    fn overlaps_head(&self) -> bool {
        self.mint <= self.maxt
            && self.head.min_time() <= self.maxt
            && self.head.max_time() >= self.mint
    }

    fn snapshot(&self, s: &MemSeries) -> Result<Snapshot> {
        let d = s.data.lock();
        Snapshot::take(s, &d, &self.iso, self.mint, self.maxt)
    }

    /// Matching series with a visible sample in range, sorted by labels.
    fn matching(&self, ms: &[Matcher]) -> Result<Vec<Arc<MemSeries>>> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let refs: Vec<u64> = postings_for_matchers(&self.head.index, ms)?
            .iter()
            .collect();
        // Large selections are checked and sorted in two halves on two
        // threads, then merged.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if refs.len() < PARALLEL_MATCHING || threads < 2 {
            return self.keep_sorted(&refs);
        }
        let (a, b) = refs.split_at(refs.len() / 2);
        let (ra, rb) = std::thread::scope(|sc| {
            let h = sc.spawn(|| self.keep_sorted(b));
            let ra = self.keep_sorted(a);
            (ra, h.join())
        });
        let rb = match rb {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        Ok(merge_sorted(ra?, rb?))
    }

    /// The series of `refs` with a visible sample in range, sorted by labels.
    fn keep_sorted(&self, refs: &[u64]) -> Result<Vec<Arc<MemSeries>>> {
        let mut out = Vec::with_capacity(refs.len());
        for &r in refs {
            let Some(s) = self.head.series.get(r) else {
                continue;
            };
            let quick = {
                let d = s.data.lock();
                Snapshot::quick_has_samples(&d, &self.iso, self.mint, self.maxt)
            };
            let keep = match quick {
                Some(k) => k,
                None => self.snapshot(&s)?.has_samples(&self.head.chunks),
            };
            if keep {
                out.push(s);
            }
        }
        Ok(sort_by_labels(out))
    }
}

/// Fewest matching series that are checked and sorted on two threads.
const PARALLEL_MATCHING: usize = 512;

/// Sorts series by labels. The label sets are copied side by side first:
/// comparing them where they live costs a cache miss on both sides of
/// every comparison, the copy one per series. Label sets are unique, so an
/// unstable sort gives the one order.
fn sort_by_labels(series: Vec<Arc<MemSeries>>) -> Vec<Arc<MemSeries>> {
    if series.len() < 2 {
        return series;
    }
    let mut arena: Vec<u8> =
        Vec::with_capacity(series.iter().map(|s| s.labels.encoded_len()).sum());
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(series.len());
    for s in &series {
        let b = s.labels.encoded();
        spans.push((arena.len(), arena.len() + b.len()));
        arena.extend_from_slice(b);
    }
    let key = |i: usize| {
        spans
            .get(i)
            .and_then(|&(a, b)| arena.get(a..b))
            .unwrap_or(&[])
    };
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_unstable_by(|&i, &j| cmp_encoded(key(i), key(j)));
    let mut slots: Vec<Option<Arc<MemSeries>>> = series.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// Merges two label-sorted lists of distinct series.
fn merge_sorted(a: Vec<Arc<MemSeries>>, b: Vec<Arc<MemSeries>>) -> Vec<Arc<MemSeries>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.labels <= y.labels,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

impl Querier for HeadQuerier<'_> {
    fn select<'a>(&'a self, _hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'a>> {
        let series = self.matching(matchers)?;
        Ok(Box::new(series.into_iter().map(move |s| {
            Ok(Box::new(HeadSeries {
                q: self,
                labels: s.labels.clone(),
                s,
            }) as Box<dyn Series + 'a>)
        })))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.head.index.names());
        }
        let mut names = BTreeSet::new();
        for s in self.matching(matchers)? {
            names.extend(s.labels.iter().map(|l| l.name.to_owned()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.head.index.values(name));
        }
        let mut vals = BTreeSet::new();
        for s in self.matching(matchers)? {
            if let Some(v) = s.labels.get(name) {
                vals.insert(v.to_owned());
            }
        }
        Ok(vals.into_iter().collect())
    }
}

/// One series of a head selection.
struct HeadSeries<'a> {
    q: &'a HeadQuerier<'a>,
    labels: Labels,
    s: Arc<MemSeries>,
}

/// Yields nothing but the error that stopped a snapshot.
struct ErrIter(Option<cairn_storage::StorageError>);

impl SampleIterator for ErrIter {
    fn next(&mut self) -> cairn_storage::ValueType {
        cairn_storage::ValueType::None
    }
    fn seek(&mut self, _t: i64) -> cairn_storage::ValueType {
        cairn_storage::ValueType::None
    }
    fn at(&self) -> (i64, f64) {
        (i64::MIN, f64::NAN)
    }
    fn at_t(&self) -> i64 {
        i64::MIN
    }
    fn err(&self) -> Option<&cairn_storage::StorageError> {
        self.0.as_ref()
    }
}

impl Series for HeadSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        match self.q.snapshot(&self.s) {
            Ok(snap) => Box::new(SnapIter::new(snap, &self.q.head.chunks)),
            Err(e) => Box::new(ErrIter(Some(e))),
        }
    }

    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        let head = self.q.head;
        let r = self.q.snapshot(&self.s).and_then(|snap| {
            snap.encoded_chunks(
                &head.chunks,
                head.opts.chunk_range,
                head.opts.samples_per_chunk,
            )
        });
        Some(Box::new(VecChunks::new(r)))
    }
}
