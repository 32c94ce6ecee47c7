//! A storage whose series hold pre-encoded chunks, as the head and blocks
//! do: remote read must answer from the chunks (reading samples panics).
#![allow(clippy::panic)] // test code: failing means panicking
#![allow(dead_code)]

use cairn_model::{Labels, Matcher};
use cairn_server::Backend;
use cairn_storage::{
    Appendable, Appender, ChunkIterator, EncodedChunk, Querier, Queryable, SampleIterator,
    SelectHints, Series, SeriesSet,
};

/// One stored series: labels and its chunks, each with the samples it
/// holds (for the test's expectations; empty where the test does not need
/// them).
pub struct StoredSeries {
    pub labels: Labels,
    pub chunks: Vec<(EncodedChunk, Vec<(i64, f64)>)>,
}

/// The storage: series selected by their matchers, in the order given.
pub struct ChunkStore {
    pub series: Vec<StoredSeries>,
}

struct ChunkSeries<'a>(&'a StoredSeries);

impl Series for ChunkSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.0.labels
    }
    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        panic!("remote read must use the stored chunks, not re-encode samples")
    }
    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        struct It<'a>(std::slice::Iter<'a, (EncodedChunk, Vec<(i64, f64)>)>);
        impl ChunkIterator for It<'_> {
            fn next_chunk(&mut self) -> Option<cairn_storage::Result<EncodedChunk>> {
                self.0.next().map(|c| Ok(c.0.clone()))
            }
        }
        Some(Box::new(It(self.0.chunks.iter())))
    }
}

impl Querier for &ChunkStore {
    fn select<'a>(
        &'a self,
        _h: &SelectHints,
        m: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let m = m.to_vec();
        Ok(Box::new(
            self.series
                .iter()
                .filter(move |s| {
                    m.iter()
                        .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
                })
                .map(|s| Ok(Box::new(ChunkSeries(s)) as Box<dyn Series + 'a>)),
        ))
    }
    fn label_names(&self, _m: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(vec![])
    }
    fn label_values(&self, _n: &str, _m: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(vec![])
    }
}

impl Queryable for ChunkStore {
    fn querier(&self, _mint: i64, _maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(self))
    }
}

impl Appendable for ChunkStore {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(cairn_server::write::DiscardAppender)
    }
}

impl Backend for ChunkStore {}
