//! Encoding a run in slices: [`SliceEncoder`] walks the run scrape round by
//! scrape round and node by node, and hands out its requests a slice at a
//! time, each slice at most a given number of compressed bytes, so memory
//! holds one slice's requests however long the run is.
//!
//! The requests are exactly those of encoding the whole run at once: a
//! shard's partly filled batch is carried from one slice into the next
//! rather than sent short, so slicing changes neither the requests nor
//! their order within a shard (the order the target sees a series' samples
//! in), only where the run pauses between them.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use cairn_gpusim::SimSeries;
use cairn_model::Labels;

use crate::{encode_write_request, scrape_jitter, LoadSpec, Shard};

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

/// A request encoded but not yet handed out: its shard, body and samples.
type Ready = (usize, Bytes, u64);

/// Samples waiting for a full batch, per shard, and the requests encoded
/// from them but not yet in a slice.
struct Batches {
    pending: Vec<Vec<(Labels, i64, f64)>>,
    /// In the order they were completed; at most one node's worth once a
    /// slice is full.
    ready: VecDeque<Ready>,
    raw: Vec<u8>,
    enc: snap::raw::Encoder,
}

impl Batches {
    /// Adds a sample to shard `shard`'s batch, encoding the batch once it
    /// holds `batch` samples.
    fn push(&mut self, shard: usize, sample: (Labels, i64, f64), batch: usize) {
        let Some(p) = self.pending.get_mut(shard) else {
            return;
        };
        p.push(sample);
        if p.len() >= batch {
            self.flush(shard);
        }
    }

    /// Encodes shard `shard`'s pending samples, if any, as one request.
    fn flush(&mut self, shard: usize) {
        let Some(p) = self.pending.get_mut(shard) else {
            return;
        };
        if p.is_empty() {
            return;
        }
        self.raw.clear();
        encode_write_request(p, &mut self.raw);
        let compressed = self.enc.compress_vec(&self.raw).unwrap_or_default();
        // `compress_vec` leaves the vector at the worst-case capacity, more
        // than the uncompressed request: keep an exact copy, or the
        // requests take 2.6 times their size (75 instead of 28 bytes per
        // sample).
        self.ready
            .push_back((shard, Bytes::copy_from_slice(&compressed), p.len() as u64));
        p.clear();
    }
}

/// Encodes a run's requests slice by slice; see the module docs.
pub struct SliceEncoder {
    spec: LoadSpec,
    shards: usize,
    /// The scrape round and node encoded next.
    step: u64,
    node: usize,
    end: u64,
    batches: Batches,
    /// Whether the last, partly filled batches have been encoded.
    flushed: bool,
    seen: HashSet<u64>,
    series: Vec<SimSeries>,
}

impl SliceEncoder {
    pub fn new(spec: LoadSpec) -> Self {
        let shards = spec.shards.max(1);
        let end = spec.first_scrape.saturating_add(spec.scrapes);
        SliceEncoder {
            shards,
            step: spec.first_scrape,
            node: 0,
            end,
            batches: Batches {
                pending: vec![Vec::new(); shards],
                ready: VecDeque::new(),
                raw: Vec::new(),
                enc: snap::raw::Encoder::new(),
            },
            flushed: false,
            seen: HashSet::new(),
            series: Vec::new(),
            spec,
        }
    }

    /// Number of shards (connections) the requests are split into.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Distinct series encoded so far (pod churn included).
    pub fn distinct_series(&self) -> u64 {
        self.seen.len() as u64
    }

    /// The next slice: requests whose compressed bytes add up to at most
    /// `max_bytes` (a single request larger than that makes a slice of its
    /// own). `None` once the run's every request has been handed out.
    pub fn next_slice(&mut self, max_bytes: usize) -> Option<Slice> {
        let mut slice = Slice::new(self.shards);
        let mut bytes = 0usize;
        loop {
            while let Some((shard, body, samples)) = self.batches.ready.pop_front() {
                if bytes > 0 && bytes.saturating_add(body.len()) > max_bytes {
                    self.batches.ready.push_front((shard, body, samples));
                    return Some(slice);
                }
                bytes += body.len();
                if let Some(out) = slice.shards.get_mut(shard) {
                    out.samples += samples;
                    out.requests.push(body);
                }
            }
            if !self.encode_next() {
                break;
            }
        }
        (bytes > 0).then_some(slice)
    }

    /// Encodes the next node's samples of the current scrape round, or at
    /// the end the partly filled batches. False when nothing is left.
    fn encode_next(&mut self) -> bool {
        if self.step < self.end && self.node < self.spec.cluster.nodes {
            self.encode_node();
            self.node += 1;
            if self.node >= self.spec.cluster.nodes {
                self.node = 0;
                self.step += 1;
            }
            return true;
        }
        if self.flushed {
            return false;
        }
        self.flushed = true;
        for shard in 0..self.shards {
            self.batches.flush(shard);
        }
        true
    }

    /// One node's series at the current step, in the order of
    /// [`cairn_gpusim::ClusterSpec::series_at`] (node after node), into
    /// their shards' batches.
    fn encode_node(&mut self) {
        let step = self.step;
        let cluster = &self.spec.cluster;
        let t0 = self.spec.start_ms + step as i64 * cluster.scrape_interval_ms;
        self.series.clear();
        cluster.node_series(self.node, step, &mut self.series);
        for s in self.series.drain(..) {
            let h = s.labels.hash64();
            self.seen.insert(h);
            let inst = s.labels.get("instance").unwrap_or_default();
            let t = t0 + scrape_jitter(cluster.seed, inst, step, self.spec.jitter_ms);
            let shard = (h % self.shards as u64) as usize;
            let v = cluster.value(&s, step);
            self.batches.push(shard, (s.labels, t, v), self.spec.batch);
        }
    }
}
