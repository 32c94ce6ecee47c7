//! An in-memory store for tests and for developing against the traits.
//!
//! It keeps every series in a sorted map behind one lock; it is simple, not
//! fast. Appends are staged per appender and applied on commit. Samples at a
//! timestamp that already exists replace the old value (the PromQL test
//! scripts rely on that); otherwise samples may arrive in any order.
//! Native histogram samples (added with
//! [`MemStorage::add_float_histograms`], or appended: validated, integer
//! ones kept as their float conversion) live in the same time line as
//! floats: a float and a histogram at the same timestamp replace each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cairn_model::{FloatHistogram, Histogram, Labels, Matcher, Sample};
use parking_lot::RwLock;

use crate::traits::*;
use crate::Result;

#[derive(Default)]
struct Inner {
    series: BTreeMap<Labels, Vec<Sample>>,
    /// Histogram samples per series, by timestamp; their slot in `series`
    /// holds a NaN placeholder.
    hists: HashMap<Labels, BTreeMap<i64, Arc<FloatHistogram>>>,
    metadata: HashMap<String, Metadata>,
}

/// A shared in-memory store. Cloning shares the data.
#[derive(Clone, Default)]
pub struct MemStorage {
    inner: Arc<RwLock<Inner>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to a series directly, bypassing appenders.
    pub fn add(&self, labels: Labels, samples: impl IntoIterator<Item = Sample>) {
        let mut g = self.inner.write();
        let mut times = Vec::new();
        let s = g.series.entry(labels.clone()).or_default();
        for x in samples {
            times.push(x.t);
            insert(s, x);
        }
        if let Some(h) = g.hists.get_mut(&labels) {
            for t in times {
                h.remove(&t);
            }
        }
    }

    /// Adds native histogram samples to a series directly; a histogram
    /// replaces any sample at the same timestamp.
    pub fn add_float_histograms(
        &self,
        labels: Labels,
        samples: impl IntoIterator<Item = (i64, Arc<FloatHistogram>)>,
    ) {
        let mut g = self.inner.write();
        let mut added = Vec::new();
        let s = g.series.entry(labels.clone()).or_default();
        for (t, h) in samples {
            insert(s, Sample::new(t, f64::NAN));
            added.push((t, h));
        }
        let hm = g.hists.entry(labels).or_default();
        hm.extend(added);
    }

    /// Drops all data.
    pub fn clear(&self) {
        let mut g = self.inner.write();
        g.series.clear();
        g.hists.clear();
        g.metadata.clear();
    }

    /// Metadata recorded per metric name.
    pub fn metadata(&self) -> HashMap<String, Metadata> {
        self.inner.read().metadata.clone()
    }

    /// Number of series held.
    pub fn num_series(&self) -> usize {
        self.inner.read().series.len()
    }
}

fn insert(s: &mut Vec<Sample>, x: Sample) {
    match s.binary_search_by_key(&x.t, |p| p.t) {
        Ok(i) => {
            if let Some(p) = s.get_mut(i) {
                *p = x;
            }
        }
        Err(i) => s.insert(i, x),
    }
}

fn matches_all(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or("")))
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

struct MemQuerier<'a> {
    store: &'a MemStorage,
    mint: i64,
    maxt: i64,
}

impl Querier for MemQuerier<'_> {
    fn select<'a>(&'a self, _hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'a>> {
        let g = self.store.inner.read();
        let mut out: Vec<Result<Box<dyn Series + 'a>>> = Vec::new();
        for (l, s) in g.series.iter() {
            if !matches_all(l, matchers) {
                continue;
            }
            let lo = s.partition_point(|p| p.t < self.mint);
            let hi = s.partition_point(|p| p.t <= self.maxt);
            if lo >= hi {
                continue;
            }
            let samples = s.get(lo..hi).map(<[Sample]>::to_vec).unwrap_or_default();
            let mut series = VecSeries::new(l.clone(), samples);
            if let Some(hm) = g.hists.get(l) {
                if !hm.is_empty() {
                    series.hists = series
                        .samples
                        .iter()
                        .map(|p| hm.get(&p.t).cloned())
                        .collect();
                }
            }
            out.push(Ok(Box::new(series)));
        }
        Ok(Box::new(out.into_iter()))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let g = self.store.inner.read();
        let mut names = std::collections::BTreeSet::new();
        for (l, s) in g.series.iter() {
            if matches_all(l, matchers) && s.iter().any(|p| p.t >= self.mint && p.t <= self.maxt) {
                names.extend(l.iter().map(|x| x.name.to_owned()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let g = self.store.inner.read();
        let mut vals = std::collections::BTreeSet::new();
        for (l, s) in g.series.iter() {
            if matches_all(l, matchers) && s.iter().any(|p| p.t >= self.mint && p.t <= self.maxt) {
                if let Some(v) = l.get(name) {
                    vals.insert(v.to_owned());
                }
            }
        }
        Ok(vals.into_iter().collect())
    }
}

/// A series backed by a vector of samples.
#[derive(Debug, Clone)]
pub struct VecSeries {
    labels: Labels,
    samples: Vec<Sample>,
    /// Empty, or per sample the histogram that sample stands for.
    hists: Vec<Option<Arc<FloatHistogram>>>,
}

impl VecSeries {
    /// `samples` must be sorted by time with unique timestamps.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Self {
            labels,
            samples,
            hists: Vec::new(),
        }
    }
}

impl Series for VecSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(VecSampleIterator {
            s: &self.samples,
            h: &self.hists,
            pos: 0,
        })
    }
}

/// Iterates a sorted slice of samples.
pub struct VecSampleIterator<'a> {
    s: &'a [Sample],
    /// Empty, or per sample its histogram.
    h: &'a [Option<Arc<FloatHistogram>>],
    /// Index of the current sample + 1; 0 before the first `next`.
    pos: usize,
}

impl<'a> VecSampleIterator<'a> {
    pub fn new(s: &'a [Sample]) -> Self {
        Self { s, h: &[], pos: 0 }
    }

    /// The value type of the sample at `pos` (1-based).
    fn kind(&self) -> ValueType {
        match self.h.get(self.pos.wrapping_sub(1)) {
            Some(Some(_)) => ValueType::FloatHistogram,
            _ => ValueType::Float,
        }
    }
}

impl SampleIterator for VecSampleIterator<'_> {
    fn next(&mut self) -> ValueType {
        if self.pos < self.s.len() {
            self.pos += 1;
            self.kind()
        } else {
            self.pos = self.s.len() + 1;
            ValueType::None
        }
    }
    fn seek(&mut self, t: i64) -> ValueType {
        if self.pos > self.s.len() {
            return ValueType::None;
        }
        if self.pos > 0 && self.s.get(self.pos - 1).is_some_and(|x| x.t >= t) {
            return self.kind();
        }
        let start = self.pos.saturating_sub(1);
        let rest = self.s.get(start..).unwrap_or(&[]);
        let i = start + rest.partition_point(|x| x.t < t);
        self.pos = i + 1;
        if i < self.s.len() {
            self.kind()
        } else {
            ValueType::None
        }
    }
    fn at(&self) -> (i64, f64) {
        self.s
            .get(self.pos.wrapping_sub(1))
            .map(|x| (x.t, x.v))
            .unwrap_or((i64::MIN, f64::NAN))
    }
    fn at_t(&self) -> i64 {
        self.at().0
    }
    fn at_float_histogram(&self) -> Option<(i64, Arc<FloatHistogram>)> {
        let h = self.h.get(self.pos.wrapping_sub(1))?.clone()?;
        Some((self.at_t(), h))
    }
}

struct MemAppender<'a> {
    store: &'a MemStorage,
    /// Staged samples in append order; a histogram's sample value is a
    /// NaN placeholder.
    staged: Vec<(Labels, Sample, Option<Arc<FloatHistogram>>)>,
    meta: Vec<(String, Metadata)>,
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender {
            store: self,
            staged: Vec::new(),
            meta: Vec::new(),
        })
    }
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, _r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        self.staged.push((labels.clone(), Sample::new(t, v), None));
        Ok(labels.hash64() | 1)
    }
    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &Histogram,
    ) -> Result<SeriesRef> {
        h.validate()
            .map_err(|e| crate::StorageError::InvalidHistogram {
                reason: e.to_string(),
            })?;
        self.append_float_histogram(r, labels, t, &h.to_float())
    }
    fn append_float_histogram(
        &mut self,
        _r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        h.validate()
            .map_err(|e| crate::StorageError::InvalidHistogram {
                reason: e.to_string(),
            })?;
        let placeholder = Sample::new(t, f64::NAN);
        self.staged
            .push((labels.clone(), placeholder, Some(Arc::new(h.clone()))));
        Ok(labels.hash64() | 1)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &Metadata,
    ) -> Result<SeriesRef> {
        if let Some(n) = labels.metric_name() {
            self.meta.push((n.to_owned(), meta.clone()));
        }
        Ok(r)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let mut g = self.store.inner.write();
        for (l, s, hist) in self.staged {
            match hist {
                Some(h) => {
                    g.hists.entry(l.clone()).or_default().insert(s.t, h);
                }
                None => {
                    if let Some(h) = g.hists.get_mut(&l) {
                        h.remove(&s.t);
                    }
                }
            }
            insert(g.series.entry(l).or_default(), s);
        }
        for (n, m) in self.meta {
            g.metadata.insert(n, m);
        }
        Ok(())
    }
    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{labels, MatchType};

    #[test]
    fn appends_become_visible_on_commit_and_select_is_sorted_and_bounded() {
        let st = MemStorage::new();
        let mut app = st.appender();
        app.append(0, &labels!("__name__" => "b"), 10, 1.0).unwrap();
        app.append(0, &labels!("__name__" => "a"), 20, 2.0).unwrap();
        app.append(0, &labels!("__name__" => "a"), 5, 3.0).unwrap();
        assert_eq!(st.num_series(), 0);
        app.commit().unwrap();
        let q = st.querier(0, 15).unwrap();
        let all: Vec<_> = q
            .select(
                &SelectHints::default(),
                &[Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()],
            )
            .unwrap()
            .map(|s| {
                let s = s.unwrap();
                let mut it = s.iter();
                let mut v = vec![];
                while it.next() == ValueType::Float {
                    v.push(it.at());
                }
                (s.labels().to_string(), v)
            })
            .collect();
        assert_eq!(
            all,
            vec![
                (r#"{__name__="a"}"#.to_string(), vec![(5, 3.0)]),
                (r#"{__name__="b"}"#.to_string(), vec![(10, 1.0)]),
            ]
        );
    }

    #[test]
    fn histograms_share_the_time_line_with_floats() {
        let st = MemStorage::new();
        let l = labels!("__name__" => "h");
        let h = Arc::new(FloatHistogram {
            count: 3.0,
            ..Default::default()
        });
        st.add(l.clone(), [Sample::new(0, 1.0), Sample::new(20, 2.0)]);
        st.add_float_histograms(l.clone(), [(10, h.clone()), (20, h.clone())]);
        let q = st.querier(0, 100).unwrap();
        let set: Vec<_> = q
            .select(&SelectHints::default(), &[Matcher::equal("__name__", "h")])
            .unwrap()
            .collect();
        assert_eq!(set.len(), 1);
        let s = set.into_iter().next().unwrap().unwrap();
        let mut it = s.iter();
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (0, 1.0));
        assert!(it.at_float_histogram().is_none());
        assert_eq!(it.next(), ValueType::FloatHistogram);
        assert_eq!(it.at_float_histogram().map(|x| x.0), Some(10));
        assert_eq!(it.seek(15), ValueType::FloatHistogram);
        assert_eq!(it.at_t(), 20);
        assert_eq!(it.next(), ValueType::None);
    }

    #[test]
    fn appended_histograms_are_validated_and_replace_floats_in_order() {
        let st = MemStorage::new();
        let l = labels!("__name__" => "h");
        let int = Histogram {
            count: 3,
            sum: 1.0,
            positive_spans: vec![cairn_model::Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1, 1],
            ..Default::default()
        };
        let mut app = st.appender();
        app.append(0, &l, 10, 1.0).unwrap();
        app.append_histogram(0, &l, 10, &int).unwrap();
        app.append_histogram(0, &l, 20, &int).unwrap();
        app.append(0, &l, 20, 2.0).unwrap();
        let bad = Histogram {
            count: 4,
            ..int.clone()
        };
        assert!(matches!(
            app.append_histogram(0, &l, 30, &bad),
            Err(crate::StorageError::InvalidHistogram { .. })
        ));
        assert_eq!(st.num_series(), 0);
        app.commit().unwrap();
        let q = st.querier(0, 100).unwrap();
        let s = q
            .select(&SelectHints::default(), &[Matcher::equal("__name__", "h")])
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let mut it = s.iter();
        assert_eq!(it.next(), ValueType::FloatHistogram);
        let (t, h) = it.at_float_histogram().unwrap();
        assert_eq!((t, &*h), (10, &int.to_float()));
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (20, 2.0));
        assert_eq!(it.next(), ValueType::None);
    }

    #[test]
    fn seek_never_moves_back() {
        let s = [
            Sample::new(1, 1.0),
            Sample::new(5, 2.0),
            Sample::new(9, 3.0),
        ];
        let mut it = VecSampleIterator::new(&s);
        assert_eq!(it.seek(4), ValueType::Float);
        assert_eq!(it.at(), (5, 2.0));
        assert_eq!(it.seek(2), ValueType::Float);
        assert_eq!(it.at(), (5, 2.0));
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (9, 3.0));
        assert_eq!(it.seek(10), ValueType::None);
        assert_eq!(it.next(), ValueType::None);
    }
}
