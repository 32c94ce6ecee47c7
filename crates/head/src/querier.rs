//! The head's querier: a fixed isolation view over an inclusive time range.
//!
//! `select` evaluates matchers on the in-memory index, keeps the series with
//! a visible sample in range and returns them sorted by labels (refs follow
//! creation order, so the head sorts; large selections are checked and
//! sorted on two threads, and their label order is kept for the next query
//! asking for the same set of series: see `sorted_order`). Each series'
//! samples are read from a snapshot taken when its iterator is created; what
//! a commit that finished after the querier was created wrote is never
//! visible.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_model::{sort_key, Labels, Matcher};
use cairn_storage::{
    ChunkIterator, Prefetch, Querier, Queryable, Result, SampleIterator, SelectHints, Series,
    SeriesExemplars, SeriesSet,
};

use crate::head::Head;
use crate::index_adapter::postings_for_matchers;
use crate::isolation::IsoState;
use crate::read::{SnapIter, Snapshot, VecChunks};
use crate::series::{prefetch_bytes, prefetch_record, MemSeries, Stored};
use crate::sorted_order::{self, Order};

/// How many series ahead of the one being checked a cached selection
/// prefetches series records.
const PREFETCH_AHEAD: usize = 4;

/// A querier over the head.
pub(crate) struct HeadQuerier<'a> {
    head: &'a Head,
    mint: i64,
    maxt: i64,
    iso: IsoState,
    /// Only the late samples, those older than this (see `late`).
    late_below: Option<i64>,
}

impl Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(HeadQuerier {
            head: self,
            mint,
            maxt,
            iso: self.iso.reader(),
            late_below: None,
        }))
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>> {
        Ok(self.exemplars.select(start, end, selectors))
    }
}

impl Head {
    /// A querier over the late samples alone (out-of-order samples older
    /// than `below`) in `[mint, maxt]`: what a late flush writes.
    pub(crate) fn late_querier(&self, mint: i64, maxt: i64, below: i64) -> HeadQuerier<'_> {
        HeadQuerier {
            head: self,
            mint,
            maxt,
            iso: self.iso.reader(),
            late_below: Some(below),
        }
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
        Snapshot::take(
            s,
            &d,
            &self.head.chunks,
            &self.iso,
            self.mint,
            self.maxt,
            self.late_below,
        )
    }

    /// Matching series with a visible sample in range, sorted by labels.
    ///
    /// A large selection's label order comes from the head's cache of
    /// recent orders, or is found and stored there (see `sorted_order`).
    fn matching(&self, ms: &[Matcher]) -> Result<Vec<Arc<MemSeries>>> {
        if !self.overlaps_head() {
            return Ok(Vec::new());
        }
        let refs: Vec<u64> = postings_for_matchers(&self.head.index, ms)?
            .iter()
            .collect();
        if refs.len() >= sorted_order::MIN_REFS {
            let order = match self.head.orders.get(&refs) {
                Some(o) => Some(o),
                None => self.order_of(&refs),
            };
            if let Some(o) = order {
                return self.keep_in_order(&o);
            }
        }
        // Large selections are checked and sorted in two halves on two
        // threads, then merged.
        if refs.len() < PARALLEL_MATCHING || self.head.select_threads < 2 {
            return Ok(self.keep_sorted(&refs)?.series);
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

    /// The label order of all of `refs` (ascending), stored in the head's
    /// cache; `None` when a ref has no series right now (one being created
    /// or removed): such a set is neither ordered nor stored.
    fn order_of(&self, refs: &[u64]) -> Option<Arc<Order>> {
        let all = refs
            .iter()
            .map(|&r| self.head.series.get(r))
            .collect::<Option<Vec<_>>>()?;
        let sorted = if all.len() < PARALLEL_MATCHING || self.head.select_threads < 2 {
            sort_by_labels(all).series
        } else {
            let mut a = all;
            let b = a.split_off(a.len() / 2);
            let (ka, kb) = std::thread::scope(|sc| {
                let h = sc.spawn(|| sort_by_labels(b));
                let ka = sort_by_labels(a);
                (ka, h.join())
            });
            match kb {
                Ok(kb) => merge_sorted(ka, kb),
                Err(p) => std::panic::resume_unwind(p),
            }
        };
        let order = Arc::new(Order::new(refs.to_vec(), sorted)?);
        self.head.orders.insert(order.clone());
        Some(order)
    }

    /// The series of `order` with a visible sample in range, in its order;
    /// a large one is checked in two halves on two threads. Series the
    /// head removed since the order was stored are empty for ever (see
    /// `sorted_order`), so the visibility check drops them.
    fn keep_in_order(&self, order: &Order) -> Result<Vec<Arc<MemSeries>>> {
        let all = order.series();
        let keep = |part: &[Arc<MemSeries>]| -> Result<Vec<Arc<MemSeries>>> {
            let mut out = Vec::with_capacity(part.len());
            for (i, s) in part.iter().enumerate() {
                // The records a few series on, while this one is checked.
                if let Some(next) = part.get(i + PREFETCH_AHEAD) {
                    prefetch_record(next);
                }
                if self.visible(s)? {
                    out.push(s.clone());
                }
            }
            Ok(out)
        };
        if all.len() < PARALLEL_MATCHING || self.head.select_threads < 2 {
            return keep(all);
        }
        let (a, b) = all.split_at(all.len() / 2);
        let (ra, rb) = std::thread::scope(|sc| {
            let h = sc.spawn(|| keep(b));
            (keep(a), h.join())
        });
        let mut out = ra?;
        match rb {
            Ok(rb) => out.extend(rb?),
            Err(p) => std::panic::resume_unwind(p),
        }
        Ok(out)
    }

    /// Whether `s` has a sample in range that this querier sees.
    fn visible(&self, s: &MemSeries) -> Result<bool> {
        let quick = {
            let d = s.data.lock();
            Snapshot::quick_has_samples(&d, &self.iso, self.mint, self.maxt, self.late_below)
        };
        match quick {
            Some(k) => Ok(k),
            None => Ok(self.snapshot(s)?.has_samples(&self.head.chunks)),
        }
    }

    /// The series of `refs` with a visible sample in range, sorted by labels.
    fn keep_sorted(&self, refs: &[u64]) -> Result<Keyed> {
        let mut out = Vec::with_capacity(refs.len());
        for &r in refs {
            let Some(s) = self.head.series.get(r) else {
                continue;
            };
            if self.visible(&s)? {
                out.push(s);
            }
        }
        Ok(sort_by_labels(out))
    }
}

/// Fewest matching series that are checked and sorted on two threads.
const PARALLEL_MATCHING: usize = 512;

/// Series sorted by labels, with the sort key ([`sort_key`]) of each.
struct Keyed {
    series: Vec<Arc<MemSeries>>,
    keys: Vec<u8>,
    /// Where each series' key lies in `keys`.
    spans: Vec<(usize, usize)>,
}

impl Keyed {
    fn key(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|&(a, b)| self.keys.get(a..b))
            .unwrap_or(&[])
    }
}

/// Sorts series by labels. Each label set is turned into a key whose byte
/// order is the label order, side by side in one buffer: comparisons are
/// then `memcmp`s of memory in cache instead of decoding two sets where
/// they live. The keys of series of one selection usually share a long
/// prefix (the metric name and common labels): the sort looks first at
/// eight bytes after the prefix all keys share, and only compares whole
/// keys when those are equal. Label sets are unique, so an unstable sort
/// gives the one order.
fn sort_by_labels(series: Vec<Arc<MemSeries>>) -> Keyed {
    // A key is at most twice the encoding's length (each string gains a
    // two-byte end for its one-byte length; NUL bytes, a rare case, are
    // written twice): no reallocation while the keys are written.
    let mut keys: Vec<u8> =
        Vec::with_capacity(series.iter().map(|s| 2 * s.labels.encoded_len()).sum());
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(series.len());
    for s in &series {
        let a = keys.len();
        sort_key(s.labels.encoded(), &mut keys);
        spans.push((a, keys.len()));
    }
    let key = |i: usize| {
        spans
            .get(i)
            .and_then(|&(a, b)| keys.get(a..b))
            .unwrap_or(&[])
    };
    let first = key(0);
    let shared = (1..series.len())
        .map(|i| first.iter().zip(key(i)).take_while(|(x, y)| x == y).count())
        .min()
        .unwrap_or(0);
    let prefix8 = |i: usize| -> u64 {
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(key(i).iter().skip(shared)) {
            *d = *s;
        }
        u64::from_be_bytes(b)
    };
    let mut order: Vec<(u64, u32)> = (0..series.len()).map(|i| (prefix8(i), i as u32)).collect();
    order.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb).then_with(|| {
            let (ka, kb) = (key(a as usize), key(b as usize));
            ka.get(shared..).cmp(&kb.get(shared..))
        })
    });
    let mut slots: Vec<Option<Arc<MemSeries>>> = series.into_iter().map(Some).collect();
    let mut sorted = Vec::with_capacity(slots.len());
    let mut sorted_spans = Vec::with_capacity(slots.len());
    for (_, i) in order {
        let i = i as usize;
        if let (Some(s), Some(&sp)) = (slots.get_mut(i).and_then(Option::take), spans.get(i)) {
            sorted.push(s);
            sorted_spans.push(sp);
        }
    }
    Keyed {
        series: sorted,
        keys,
        spans: sorted_spans,
    }
}

/// Merges two label-sorted lists of distinct series.
fn merge_sorted(a: Keyed, b: Keyed) -> Vec<Arc<MemSeries>> {
    let mut out = Vec::with_capacity(a.series.len() + b.series.len());
    let (mut i, mut j) = (0, 0);
    let (mut sa, mut sb) = (a.series.iter(), b.series.iter());
    loop {
        let take_a = match (i < a.series.len(), j < b.series.len()) {
            (true, true) => a.key(i) <= b.key(j),
            (true, false) => true,
            (false, true) => false,
            (false, false) => return out,
        };
        if take_a {
            out.extend(sa.next().cloned());
            i += 1;
        } else {
            out.extend(sb.next().cloned());
            j += 1;
        }
    }
}

impl Querier for HeadQuerier<'_> {
    fn select<'a>(&'a self, _hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'a>> {
        let series = self.matching(matchers)?;
        Ok(Box::new(series.into_iter().map(move |s| {
            Ok(Box::new(HeadSeries { q: self, s }) as Box<dyn Series + 'a>)
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
    /// Its labels are the series' own (no copy, not even a reference count).
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
        &self.s.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        match self.q.snapshot(&self.s) {
            Ok(snap) => {
                let hists = snap.hist_samples();
                let it = SnapIter::new(snap, &self.q.head.chunks);
                if hists.is_empty() {
                    Box::new(it)
                } else {
                    Box::new(cairn_storage::WithHistograms::with_forms(it, hists))
                }
            }
            Err(e) => Box::new(ErrIter(Some(e))),
        }
    }

    /// `Record`: the lines of the series' record (reference counts, lock,
    /// chunk list and open chunk headers). `Contents`: its labels and, if
    /// its lock is free, the chunk list, the open chunk's bytes and the
    /// file chunks in range.
    fn prefetch(&self, depth: Prefetch) {
        match depth {
            Prefetch::Record => prefetch_record(&self.s),
            Prefetch::Contents => {
                // The labels (their `Arc`'s counts sit just before them):
                // the reader clones them, aggregations read them.
                let l = self.s.labels.encoded();
                prefetch_bytes(l.as_ptr().wrapping_sub(16), l.len() + 16, 6);
                let Some(d) = self.s.data.try_lock() else {
                    return;
                };
                let (mint, maxt) = (self.q.mint, self.q.maxt);
                prefetch_bytes(
                    d.full.as_ptr().cast::<u8>(),
                    std::mem::size_of_val(d.full.as_slice()),
                    4,
                );
                if let Some(o) = &d.open {
                    let b = o.chunk.bytes();
                    prefetch_bytes(b.as_ptr(), b.len(), 8);
                }
                let refs: smallvec::SmallVec<[u64; 8]> = d
                    .full
                    .iter()
                    .filter_map(|c| match c.stored {
                        Stored::Disk(r) if c.maxt >= mint && c.mint <= maxt => Some(r),
                        _ => None,
                    })
                    .collect();
                // The chunk files' lock is not taken under the series lock.
                drop(d);
                self.q.head.chunks.prefetch(refs.into_iter());
            }
        }
    }

    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        let head = self.q.head;
        let r = self
            .q
            .snapshot(&self.s)
            .and_then(|snap| snap.encoded_chunks(&head.chunks, head.policy().cut));
        Some(Box::new(VecChunks::new(r)))
    }
}
