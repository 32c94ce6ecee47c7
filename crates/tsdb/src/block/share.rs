//! Shared timestamps between the dense chunks of one block being written.
//!
//! Every series of a scrape target carries the same timestamps: a
//! node-exporter target's 580 series, a GPU pod's 26 DCGM series. A dense
//! chunk whose timestamps are a contiguous run of an earlier chunk's in the
//! same block stores a reference to it instead of its own
//! (docs/format/dense-chunk.md, timestamp flag 2); with a few ms of scrape
//! jitter that takes the timestamps from about 5 bits a sample to almost
//! nothing.
//!
//! Sources are indexed by each pair of consecutive timestamps; a lookup
//! finds where a chunk's first pair sits in a source and checks the whole
//! run exactly. Memory is bounded: at most [`MAX_TIMESTAMPS`] source
//! timestamps are kept (later chunks then keep their own timestamps).

use std::collections::HashMap;

/// Source timestamps kept per block written (about 24 bytes each with the
/// index): 2 million, some 50 MiB, covers every target of a 1,000-node
/// cluster over 2 h of 15 s scrapes.
pub const MAX_TIMESTAMPS: usize = 2_000_000;

/// The sources seen so far in the block being written.
#[derive(Default)]
pub struct TimestampShare {
    /// Source chunk ref → its timestamps.
    sources: HashMap<u64, Vec<i64>>,
    /// (t[i], t[i+1]) → (source ref, i), first source wins.
    pairs: HashMap<(i64, i64), (u64, u32)>,
    kept: usize,
}

impl TimestampShare {
    /// Where a chunk with timestamps `ts` can take them from: the source's
    /// ref and the index of `ts[0]` in it.
    pub fn find(&self, ts: &[i64]) -> Option<(u64, usize)> {
        let (&a, &b) = (ts.first()?, ts.get(1)?);
        let &(r, i) = self.pairs.get(&(a, b))?;
        let src = self.sources.get(&r)?;
        let i = i as usize;
        (src.get(i..i.checked_add(ts.len())?)? == ts).then_some((r, i))
    }

    /// Records the chunk at `r` with timestamps `ts` as a source, while
    /// there is room.
    pub fn add(&mut self, r: u64, ts: Vec<i64>) {
        if ts.len() < 2 || self.kept + ts.len() > MAX_TIMESTAMPS {
            return;
        }
        for (i, w) in ts.windows(2).enumerate() {
            if let [a, b] = w {
                if i == 0 {
                    // This chunk was added because no source held its run:
                    // the next chunk with the same run must find it, not
                    // the source that shares only its beginning.
                    self.pairs.insert((*a, *b), (r, 0));
                } else {
                    self.pairs.entry((*a, *b)).or_insert((r, i as u32));
                }
            }
        }
        self.kept += ts.len();
        self.sources.insert(r, ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_earlier_chunks_are_found_exactly() {
        let mut s = TimestampShare::default();
        let src: Vec<i64> = (0..100).map(|k| k * 15_000 + k % 3).collect();
        s.add(7, src.clone());
        assert_eq!(s.find(&src), Some((7, 0)));
        assert_eq!(s.find(&src[10..60]), Some((7, 10)));
        assert_eq!(s.find(&src[99..]), None, "one sample shares nothing");
        let mut other = src[10..60].to_vec();
        other[20] += 1;
        assert_eq!(s.find(&other), None);
        let longer: Vec<i64> = (90..110).map(|k| k * 15_000 + k % 3).collect();
        assert_eq!(s.find(&longer), None, "runs past the source's end");
        // A second source overlapping the first (another pod of the same
        // target) is found by the chunks that repeat it.
        s.add(9, longer.clone());
        assert_eq!(s.find(&longer), Some((9, 0)));
        assert_eq!(s.find(&src[10..60]), Some((7, 10)));
    }
}
