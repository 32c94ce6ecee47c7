//! The head's querier: a fixed isolation view over an inclusive time range.
//!
//! `select` evaluates matchers on the in-memory index, keeps the series with
//! a visible sample in range and returns them sorted by labels (refs follow
//! creation order, so the head sorts). Each series' samples are read from a
//! snapshot taken when its iterator is created; what a commit that finished
//! after the querier was created wrote is never visible.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_model::{Labels, Matcher, Sample};
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
        let refs = postings_for_matchers(&self.head.index, ms)?;
        let mut out = Vec::new();
        for r in refs.iter() {
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
        // Label sets are unique: an unstable sort gives the same order.
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// Range queries (`step > 0`) selecting at least this many series have
/// their samples decoded ahead, on two threads.
const PREFETCH_MIN_SERIES: usize = 64;
/// Samples (estimated from chunk counts) decoded ahead per batch: bounds
/// the memory prefetching holds.
const PREFETCH_BATCH_SAMPLES: usize = 256 * 1024;
/// Estimated samples per chunk when sizing batches.
const SAMPLES_PER_CHUNK_GUESS: usize = 120;

impl Querier for HeadQuerier<'_> {
    fn select<'a>(&'a self, hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'a>> {
        let series = self.matching(matchers)?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if hints.step > 0 && cores >= 2 && series.len() >= PREFETCH_MIN_SERIES {
            return Ok(Box::new(Prefetch {
                q: self,
                rest: series.into_iter(),
                ready: std::collections::VecDeque::new(),
            }));
        }
        Ok(Box::new(series.into_iter().map(move |s| {
            Ok(Box::new(HeadSeries {
                q: self,
                labels: s.labels.clone(),
                s,
                pre: None,
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
    /// The samples, when decoded ahead (exactly what a [`SnapIter`] over
    /// the querier's snapshot yields).
    pre: Option<Vec<Sample>>,
}

/// A selection whose samples are decoded ahead in batches, each batch
/// split between this thread and one scoped helper thread. Snapshots are
/// taken here, in selection order, under each series' lock as the lazy path
/// takes them; a series whose decoding fails is handed out undecoded, so
/// that its iterator reports the error as the lazy path would.
struct Prefetch<'a> {
    q: &'a HeadQuerier<'a>,
    rest: std::vec::IntoIter<Arc<MemSeries>>,
    ready: std::collections::VecDeque<(Arc<MemSeries>, Option<Vec<Sample>>)>,
}

/// Every sample a snapshot yields, or `None` when reading it fails.
fn decode_all(snap: Snapshot, disk: &crate::disk_chunks::DiskChunks) -> Option<Vec<Sample>> {
    let mut it = SnapIter::new(snap, disk);
    let mut out = Vec::new();
    while it.next() == cairn_storage::ValueType::Float {
        let (t, v) = it.at();
        out.push(Sample::new(t, v));
    }
    it.err().is_none().then_some(out)
}

impl Prefetch<'_> {
    fn fill(&mut self) {
        let mut batch = Vec::new();
        let mut estimate = 0usize;
        while estimate < PREFETCH_BATCH_SAMPLES {
            let Some(s) = self.rest.next() else { break };
            let snap = {
                let d = s.data.lock();
                estimate += (d.full.len() + 1) * SAMPLES_PER_CHUNK_GUESS;
                Snapshot::take(&s, &d, &self.q.iso, self.q.mint, self.q.maxt)
            };
            batch.push((s, snap.ok()));
        }
        if batch.is_empty() {
            return;
        }
        let disk = &self.q.head.chunks;
        let half = batch.len().div_ceil(2);
        let (mine, theirs) = batch.split_at_mut(half);
        let decode = |part: &mut [(Arc<MemSeries>, Option<Snapshot>)]| -> Vec<Option<Vec<Sample>>> {
            part.iter_mut()
                .map(|(_, snap)| snap.take().and_then(|sn| decode_all(sn, disk)))
                .collect()
        };
        let (a, b) = std::thread::scope(|sc| {
            if theirs.is_empty() {
                return (decode(mine), Vec::new());
            }
            let other = sc.spawn(|| decode(theirs));
            let a = decode(mine);
            // A panicked helper leaves its half to the lazy path.
            (a, other.join().unwrap_or_default())
        });
        let mut decoded = a.into_iter().chain(b);
        for (s, _) in batch {
            self.ready.push_back((s, decoded.next().flatten()));
        }
    }
}

impl<'a> Iterator for Prefetch<'a> {
    type Item = Result<Box<dyn Series + 'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() {
            self.fill();
        }
        let (s, pre) = self.ready.pop_front()?;
        Some(Ok(Box::new(HeadSeries {
            q: self.q,
            labels: s.labels.clone(),
            s,
            pre,
        }) as Box<dyn Series + 'a>))
    }
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
        if let Some(pre) = &self.pre {
            return Box::new(cairn_storage::VecSampleIterator::new(pre));
        }
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

#[cfg(test)]
mod tests {
    use cairn_model::{labels, MatchType};
    use cairn_storage::{Appendable, ValueType};

    use super::*;
    use crate::HeadOptions;

    /// Every selected series with its samples, reading with `hints`.
    fn read(
        head: &Head,
        mint: i64,
        maxt: i64,
        step: i64,
        seek: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let q = head.querier(mint, maxt).unwrap();
        let hints = SelectHints {
            start: mint,
            end: maxt,
            step,
            ..SelectHints::default()
        };
        let ms = [Matcher::new(MatchType::Regex, "__name__", "m.*").unwrap()];
        let mut out = Vec::new();
        for s in q.select(&hints, &ms).unwrap() {
            let s = s.unwrap();
            let mut it = s.iter();
            let mut got = Vec::new();
            let mut vt = it.seek(seek);
            while vt == ValueType::Float {
                got.push(it.at());
                vt = it.next();
            }
            assert!(it.err().is_none());
            out.push((s.labels().clone(), got));
        }
        out
    }

    #[test]
    fn prefetched_selection_equals_lazy_one() {
        let dir = tempfile::tempdir().unwrap();
        let head = Head::open(
            dir.path(),
            HeadOptions {
                chunk_range: 1_000,
                samples_per_chunk: 7,
                stripes: 4,
                ..HeadOptions::default()
            },
        )
        .unwrap();
        let mut app = head.appender();
        for i in 0..(PREFETCH_MIN_SERIES as i64 * 3) {
            let l = labels!("__name__" => &format!("m{}", i % 5), "i" => &i.to_string());
            for t in (i % 11..4_000).step_by(1 + (i % 7) as usize * 13) {
                app.append(0, &l, t, (t * i) as f64 * 0.5).unwrap();
            }
        }
        app.commit().unwrap();
        // Uncommitted appends stay invisible on both paths.
        let mut pending = head.appender();
        pending
            .append(0, &labels!("__name__" => "m1", "i" => "1"), 5_000, 1.0)
            .unwrap();
        for (mint, maxt, seek) in [(0, 10_000, 0), (1_234, 2_345, 0), (500, 3_999, 2_000)] {
            let lazy = read(&head, mint, maxt, 0, seek);
            let pre = read(&head, mint, maxt, 60_000, seek);
            assert!(lazy.len() >= PREFETCH_MIN_SERIES, "{}", lazy.len());
            assert_eq!(lazy, pre, "[{mint}, {maxt}] seek {seek}");
        }
        pending.rollback().unwrap();
    }
}
