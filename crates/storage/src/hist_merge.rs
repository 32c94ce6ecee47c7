//! One series' float samples and native histogram samples as one
//! [`SampleIterator`].
//!
//! Why: storages keep the two kinds in different chunks (Prometheus's XOR
//! chunks and its histogram encodings); a series may switch between them.
//! A storage iterates its float chunks as it always does and hands the
//! histogram samples, decoded, to [`WithHistograms`], which interleaves
//! them by time.
//!
//! A storage that decoded integer-count chunks may add each sample's
//! integer form ([`WithHistograms::with_forms`]), which
//! [`SampleIterator::at_histogram`] then gives.
//!
//! Contract: `hists` is sorted by time; samples of the two kinds do not
//! share a timestamp (storages keep one time line per series). If they do,
//! the float is yielded and the histogram skipped.

use std::sync::Arc;

use cairn_model::{FloatHistogram, Histogram, Sample};

use crate::traits::{SampleIterator, ValueType};
use crate::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    Start,
    Float,
    Hist,
    Done,
}

/// A decoded native-histogram sample: its time, the float form queries
/// read, and the integer form when it was stored with integer counts
/// (the same tuple as `cairn_codec::HistSample`, which decodes and encodes
/// chunks of them; this crate knows no chunk encoding).
pub type DecodedHistogram = (i64, Arc<FloatHistogram>, Option<Arc<Histogram>>);

/// A float iterator merged with decoded histogram samples.
pub struct WithHistograms<I> {
    floats: I,
    /// What `floats` is positioned on (`Float` or `None`).
    fv: ValueType,
    hists: Vec<(i64, Arc<FloatHistogram>)>,
    /// Empty, or one entry per `hists` entry: its integer form if any.
    ints: Vec<Option<Arc<Histogram>>>,
    hi: usize,
    cur: Cur,
}

impl<I: SampleIterator> WithHistograms<I> {
    /// Merges `floats` (not advanced yet) with `hists` (sorted by time).
    pub fn new(floats: I, hists: Vec<(i64, Arc<FloatHistogram>)>) -> Self {
        Self {
            floats,
            fv: ValueType::None,
            hists,
            ints: Vec::new(),
            hi: 0,
            cur: Cur::Start,
        }
    }

    /// Merges `floats` with decoded histograms that may carry their
    /// integer form (sorted by time).
    pub fn with_forms(floats: I, decoded: Vec<DecodedHistogram>) -> Self {
        let mut ints = Vec::with_capacity(decoded.len());
        let mut hists = Vec::with_capacity(decoded.len());
        for (t, h, i) in decoded {
            hists.push((t, h));
            ints.push(i);
        }
        let mut it = Self::new(floats, hists);
        it.ints = ints;
        it
    }

    fn pick(&mut self) -> ValueType {
        let ft = (self.fv == ValueType::Float).then(|| self.floats.at_t());
        loop {
            let ht = self.hists.get(self.hi).map(|h| h.0);
            self.cur = match (ft, ht) {
                (Some(a), Some(b)) if a == b => {
                    self.hi += 1;
                    continue;
                }
                (Some(a), Some(b)) if b < a => Cur::Hist,
                (Some(_), _) => Cur::Float,
                (None, Some(_)) => Cur::Hist,
                (None, None) => Cur::Done,
            };
            break;
        }
        self.value_type()
    }

    fn value_type(&self) -> ValueType {
        match self.cur {
            Cur::Float => ValueType::Float,
            Cur::Hist => ValueType::FloatHistogram,
            Cur::Start | Cur::Done => ValueType::None,
        }
    }
}

impl<I: SampleIterator> SampleIterator for WithHistograms<I> {
    fn next(&mut self) -> ValueType {
        match self.cur {
            Cur::Start => self.fv = self.floats.next(),
            Cur::Float => self.fv = self.floats.next(),
            Cur::Hist => self.hi += 1,
            Cur::Done => return ValueType::None,
        }
        self.pick()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.cur == Cur::Done {
            return ValueType::None;
        }
        if self.cur != Cur::Start && self.at_t() >= t {
            return self.value_type();
        }
        if self.cur == Cur::Start || (self.fv == ValueType::Float && self.floats.at_t() < t) {
            self.fv = self.floats.seek(t);
        }
        while self.hists.get(self.hi).is_some_and(|h| h.0 < t) {
            self.hi += 1;
        }
        self.pick()
    }

    fn at(&self) -> (i64, f64) {
        self.floats.at()
    }

    fn at_t(&self) -> i64 {
        match self.cur {
            Cur::Hist => self.hists.get(self.hi).map_or(i64::MIN, |h| h.0),
            _ => self.floats.at_t(),
        }
    }

    fn at_float_histogram(&self) -> Option<(i64, Arc<FloatHistogram>)> {
        match self.cur {
            Cur::Hist => self.hists.get(self.hi).cloned(),
            _ => None,
        }
    }

    fn at_histogram(&self) -> Option<(i64, Arc<Histogram>)> {
        match self.cur {
            Cur::Hist => {
                let t = self.hists.get(self.hi)?.0;
                let h = self.ints.get(self.hi)?.clone()?;
                Some((t, h))
            }
            _ => None,
        }
    }

    fn err(&self) -> Option<&StorageError> {
        self.floats.err()
    }

    fn read_floats(&mut self, maxt: i64, out: &mut Vec<Sample>) -> ValueType {
        // Floats run until the next histogram; the inner iterator's bulk
        // read is used when no histogram comes before `maxt`.
        let next_hist = self.hists.get(self.hi).map_or(i64::MAX, |h| h.0);
        if self.cur == Cur::Float && next_hist > maxt {
            self.fv = self.floats.read_floats(maxt, out);
            return self.pick();
        }
        crate::traits::read_floats_stepwise(self, maxt, out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// Floats from a vector; `1` is the position of the current one plus
    /// one (0: not started).
    struct Floats(Vec<(i64, f64)>, usize);

    impl Floats {
        fn state(&self) -> ValueType {
            if self.1 >= 1 && self.1 <= self.0.len() {
                ValueType::Float
            } else {
                ValueType::None
            }
        }
    }

    impl SampleIterator for Floats {
        fn next(&mut self) -> ValueType {
            self.1 = (self.1 + 1).min(self.0.len() + 1);
            self.state()
        }
        fn seek(&mut self, t: i64) -> ValueType {
            self.1 = self.1.max(1);
            while self.1 <= self.0.len() && self.0[self.1 - 1].0 < t {
                self.1 += 1;
            }
            self.state()
        }
        fn at(&self) -> (i64, f64) {
            self.0[self.1 - 1]
        }
        fn at_t(&self) -> i64 {
            self.0[self.1 - 1].0
        }
    }

    fn h(count: f64) -> Arc<FloatHistogram> {
        Arc::new(FloatHistogram {
            count,
            ..Default::default()
        })
    }

    fn all(mut it: impl SampleIterator) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        loop {
            match it.next() {
                ValueType::Float => out.push((it.at_t(), format!("f{}", it.at().1))),
                ValueType::FloatHistogram => {
                    let (t, x) = it.at_float_histogram().unwrap();
                    out.push((t, format!("h{}", x.count)));
                }
                _ => return out,
            }
        }
    }

    #[test]
    fn interleaves_by_time_and_seeks() {
        let f = Floats(vec![(1, 1.0), (2, 2.0), (6, 6.0)], 0);
        let hs = vec![(3, h(3.0)), (4, h(4.0)), (8, h(8.0))];
        let got = all(WithHistograms::new(f, hs.clone()));
        let want: Vec<(i64, String)> = [
            (1, "f1"),
            (2, "f2"),
            (3, "h3"),
            (4, "h4"),
            (6, "f6"),
            (8, "h8"),
        ]
        .iter()
        .map(|(t, s)| (*t, s.to_string()))
        .collect();
        assert_eq!(got, want);

        let mut it = WithHistograms::new(Floats(vec![(1, 1.0), (2, 2.0), (6, 6.0)], 0), hs);
        assert_eq!(it.seek(4), ValueType::FloatHistogram);
        assert_eq!(it.at_t(), 4);
        assert_eq!(it.seek(3), ValueType::FloatHistogram, "never backwards");
        assert_eq!(it.seek(5), ValueType::Float);
        assert_eq!(it.at(), (6, 6.0));
        let mut out = Vec::new();
        assert_eq!(it.read_floats(100, &mut out), ValueType::FloatHistogram);
        assert_eq!(out, vec![Sample::new(6, 6.0)]);
        assert_eq!(it.next(), ValueType::None);
    }

    #[test]
    fn histograms_only_and_floats_only() {
        let got = all(WithHistograms::new(Floats(vec![], 0), vec![(5, h(1.0))]));
        assert_eq!(got, vec![(5, "h1".to_string())]);
        let got = all(WithHistograms::new(Floats(vec![(5, 2.0)], 0), vec![]));
        assert_eq!(got, vec![(5, "f2".to_string())]);
    }
}
