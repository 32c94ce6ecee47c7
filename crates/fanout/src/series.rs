//! A series read whole into memory: float samples and decoded native
//! histograms, each sorted by time with unique timestamps.

use cairn_model::{Labels, Sample};
use cairn_storage::{DecodedHistogram, SampleIterator, Series, VecSampleIterator, WithHistograms};

/// A series held in memory (what a remote store or the deduplication
/// hands to queries).
#[derive(Debug, Clone)]
pub struct MaterializedSeries {
    pub labels: Labels,
    /// Sorted by time, unique timestamps.
    pub floats: Vec<Sample>,
    /// Sorted by time, unique timestamps, none shared with `floats`.
    pub hists: Vec<DecodedHistogram>,
}

impl MaterializedSeries {
    /// Reads `s` whole; fails with the iterator's error.
    pub fn read(s: &dyn Series) -> cairn_storage::Result<Self> {
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        let mut it = s.iter();
        loop {
            match it.next() {
                cairn_storage::ValueType::None => break,
                cairn_storage::ValueType::Float => {
                    let (t, v) = it.at();
                    floats.push(Sample::new(t, v));
                }
                _ => {
                    if let Some((t, h)) = it.at_float_histogram() {
                        let int = it.at_histogram().map(|(_, i)| i);
                        hists.push((t, h, int));
                    }
                }
            }
        }
        if let Some(e) = it.err() {
            return Err(cairn_storage::StorageError::Backend(e.to_string().into()));
        }
        Ok(Self {
            labels: s.labels().clone(),
            floats,
            hists,
        })
    }

    /// Whether it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.floats.is_empty() && self.hists.is_empty()
    }

    /// Sorts both kinds by time and keeps the first sample of each
    /// timestamp (floats before histograms).
    pub fn normalize(&mut self) {
        self.floats.sort_by_key(|s| s.t);
        self.floats.dedup_by_key(|s| s.t);
        self.hists.sort_by_key(|h| h.0);
        self.hists.dedup_by_key(|h| h.0);
        if !self.floats.is_empty() && !self.hists.is_empty() {
            let floats = &self.floats;
            self.hists
                .retain(|h| floats.binary_search_by_key(&h.0, |s| s.t).is_err());
        }
    }
}

impl Series for MaterializedSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        if self.hists.is_empty() {
            return Box::new(VecSampleIterator::new(&self.floats));
        }
        Box::new(WithHistograms::with_forms(
            VecSampleIterator::new(&self.floats),
            self.hists.clone(),
        ))
    }
}
