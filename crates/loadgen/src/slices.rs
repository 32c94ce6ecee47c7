//! Encoding a run in slices: [`SliceEncoder`] walks the run scrape round by
//! scrape round and node by node, and hands out its requests a slice at a
//! time, each slice at most a given number of compressed bytes, so memory
//! holds one slice's requests however long the run is.
//!
//! The requests are exactly those of encoding the whole run at once: a
//! shard's partly filled batch is carried from one slice into the next
//! rather than sent short, so slicing changes neither the requests nor
//! their order within a shard (the order the target sees a series' samples
//! in), only where the run pauses between them. Nodes are encoded a round
//! of several at a time, on one thread or more (see `round.rs`), into
//! the same requests.

use std::collections::VecDeque;

use crate::round::{Ready, Rounds};
use crate::{LoadSpec, Shard};

/// The requests of one slice of a run, per shard, each shard's in time order.
#[derive(Debug)]
pub struct Slice {
    pub shards: Vec<Shard>,
}

impl Slice {
    fn new(shards: usize) -> Self {
        Slice {
            shards: (0..shards).map(|_| Shard::default()).collect(),
        }
    }

    /// Compressed bytes of all its requests.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .flat_map(|s| &s.requests)
            .map(|r| r.len())
            .sum()
    }

    /// Samples in all its requests.
    pub fn samples(&self) -> u64 {
        self.shards.iter().map(|s| s.samples).sum()
    }

    /// Number of requests.
    pub fn requests(&self) -> usize {
        self.shards.iter().map(|s| s.requests.len()).sum()
    }
}

/// Encodes a run's requests slice by slice; see the module docs.
pub struct SliceEncoder {
    rounds: Rounds,
    /// The scrape round and node encoded next.
    step: u64,
    node: usize,
    end: u64,
    /// Requests encoded but not yet in a slice, in the order they filled
    /// up; at most one round's once a slice is full.
    ready: VecDeque<Ready>,
    /// Whether the last, partly filled batches have been encoded.
    flushed: bool,
    units: Vec<(u64, usize)>,
}

impl SliceEncoder {
    /// Encodes on this thread alone.
    pub fn new(spec: LoadSpec) -> Self {
        Self::with_threads(spec, 1)
    }

    /// Encodes on `threads` threads (this one and `threads - 1` more,
    /// started for each round of nodes); the requests are the same for
    /// any number of threads.
    pub fn with_threads(spec: LoadSpec, threads: usize) -> Self {
        let shards = spec.shards.max(1);
        let end = spec.first_scrape.saturating_add(spec.scrapes);
        SliceEncoder {
            step: spec.first_scrape,
            node: 0,
            end,
            ready: VecDeque::new(),
            flushed: false,
            units: Vec::new(),
            rounds: Rounds::new(spec, shards, threads),
        }
    }

    /// Number of threads encoding.
    pub fn threads(&self) -> usize {
        self.rounds.threads()
    }

    /// Number of shards (connections) the requests are split into.
    pub fn shards(&self) -> usize {
        self.rounds.shards()
    }

    /// Distinct series encoded so far (pod churn included).
    pub fn distinct_series(&self) -> u64 {
        self.rounds.distinct_series()
    }

    /// The next slice: requests whose compressed bytes add up to at most
    /// `max_bytes` (a single request larger than that makes a slice of its
    /// own). `None` once the run's every request has been handed out.
    pub fn next_slice(&mut self, max_bytes: usize) -> Option<Slice> {
        let mut slice = Slice::new(self.shards());
        let mut bytes = 0usize;
        loop {
            while let Some((shard, body, meta)) = self.ready.pop_front() {
                if bytes > 0 && bytes.saturating_add(body.len()) > max_bytes {
                    self.ready.push_front((shard, body, meta));
                    return Some(slice);
                }
                bytes += body.len();
                if let Some(out) = slice.shards.get_mut(shard) {
                    out.samples += meta.samples;
                    out.requests.push(body);
                    out.meta.push(meta);
                }
            }
            if !self.encode_next() {
                break;
            }
        }
        (bytes > 0).then_some(slice)
    }

    /// Encodes the next round of nodes (see [`crate::round`]), or at the
    /// end the partly filled batches. False when nothing is left.
    fn encode_next(&mut self) -> bool {
        let nodes = self.rounds.spec().cluster.nodes;
        self.units.clear();
        while self.units.len() < self.rounds.units_per_round()
            && self.step < self.end
            && self.node < nodes
        {
            self.units.push((self.step, self.node));
            self.node += 1;
            if self.node >= nodes {
                self.node = 0;
                self.step += 1;
            }
        }
        if !self.units.is_empty() {
            self.rounds.encode(&self.units, &mut self.ready);
            return true;
        }
        if self.flushed {
            return false;
        }
        self.flushed = true;
        self.rounds.flush(&mut self.ready);
        true
    }
}
