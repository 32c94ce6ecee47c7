//! Encoding a run a round at a time on several threads, into exactly the
//! requests of encoding it sample by sample on one.
//!
//! A run is a sequence of units, one node's series at one scrape round,
//! scrape round after scrape round and node after node; a shard's requests
//! are its samples in that order, cut every `batch` samples, and they are
//! handed out in the order they fill up. A round takes the next few units:
//!
//! 1. Threads take the round's units in turn and encode each of a unit's
//!    samples as a TimeSeries message, appended to its shard's part of the
//!    unit ([`Unit`]); generating the series is most of the work.
//! 2. This thread walks the round's samples in the run's order, counting
//!    each shard's, and cuts a request wherever the one-thread encoder
//!    would have ([`Rounds::split`]): which samples go into which request,
//!    and the order the requests are handed out in, are the same.
//! 3. Threads copy each request's messages together and compress them,
//!    and count distinct series, each thread its share of the hashes.
//!
//! What a shard holds after the last request it filled in a round is
//! carried into the next round, as the one-thread encoder carried a partly
//! filled batch. Memory holds one round's messages (16 units a thread,
//! about 200 bytes a sample: 150 KiB a unit) and each shard's carried
//! messages besides the requests.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use cairn_gpusim::SimSeries;

use crate::encode::encode_series;
use crate::{scrape_jitter, LoadSpec, RequestMeta};

/// Units a round gives each thread: enough that threads finishing a unit
/// apart wait little at the end of a round, few enough that a round's
/// messages (about 150 KiB a unit) stay small.
const UNITS_PER_THREAD: usize = 16;

/// A request encoded but not yet handed out: its shard, body, and its
/// samples and scrape rounds.
pub(crate) type Ready = (usize, Bytes, RequestMeta);

/// Where a sample is in a round: its unit, and its index among the unit's
/// samples of its shard.
type Pos = (usize, usize);

/// One node's samples at one scrape round, encoded, per shard.
#[derive(Default)]
struct Unit {
    step: u64,
    node: usize,
    parts: Vec<Part>,
    /// The shard of each sample, in the order the samples were generated.
    order: Vec<usize>,
    /// The series' hashes, per worker (hash modulo workers).
    hashes: Vec<Vec<u64>>,
}

/// A unit's samples of one shard: their TimeSeries messages back to back.
#[derive(Default)]
struct Part {
    raw: Vec<u8>,
    /// Where each sample's message ends in `raw`.
    ends: Vec<usize>,
}

impl Part {
    /// The messages of samples `from..to`.
    fn messages(&self, from: usize, to: usize) -> &[u8] {
        let start = |i: usize| match i.checked_sub(1) {
            None => 0,
            Some(j) => self.ends.get(j).copied().unwrap_or(self.raw.len()),
        };
        self.raw.get(start(from)..start(to)).unwrap_or_default()
    }
}

/// A shard's request not yet full.
#[derive(Default)]
struct Open {
    /// Its messages from earlier rounds.
    carried: Vec<u8>,
    /// Its samples so far, carried ones included.
    samples: u64,
    /// The scrape rounds of its first and latest sample.
    first_step: u64,
    last_step: u64,
    /// Where its samples in this round start.
    from: Pos,
    /// How many of the current unit's samples of the shard have been seen.
    seen: usize,
}

/// Messages to copy together: a request to compress, or what a shard
/// carries into the next round.
struct Job {
    shard: usize,
    carried: Vec<u8>,
    /// Its samples in this round, `from` up to `to`.
    from: Pos,
    to: Pos,
    /// Its samples and their scrape rounds (a request's).
    meta: RequestMeta,
    request: bool,
}

enum Done {
    Request(Ready),
    Carry(usize, Vec<u8>),
}

/// Hashes a series' hash, already well mixed, once more: each worker's set
/// holds the hashes equal to its index modulo the workers, so their low
/// bits alone would fill the table unevenly.
#[derive(Default)]
struct Remix(u64);

impl Hasher for Remix {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = cairn_gpusim::mix(self.0 ^ x);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// What each thread keeps from round to round.
struct Worker {
    series: Vec<SimSeries>,
    /// Its share of the distinct series' hashes.
    seen: HashSet<u64, BuildHasherDefault<Remix>>,
    raw: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
    done: Vec<(usize, Done)>,
}

impl Worker {
    fn new() -> Self {
        Worker {
            series: Vec::new(),
            seen: HashSet::default(),
            raw: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            done: Vec::new(),
        }
    }
}

/// Encodes a run's units round by round; see the module docs.
pub(crate) struct Rounds {
    spec: LoadSpec,
    shards: usize,
    workers: Vec<Worker>,
    units: Vec<Unit>,
    open: Vec<Open>,
}

impl Rounds {
    pub(crate) fn new(spec: LoadSpec, shards: usize, threads: usize) -> Self {
        Rounds {
            spec,
            shards,
            workers: (0..threads.max(1)).map(|_| Worker::new()).collect(),
            units: Vec::new(),
            open: (0..shards).map(|_| Open::default()).collect(),
        }
    }

    pub(crate) fn spec(&self) -> &LoadSpec {
        &self.spec
    }

    pub(crate) fn shards(&self) -> usize {
        self.shards
    }

    pub(crate) fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Units a round takes.
    pub(crate) fn units_per_round(&self) -> usize {
        UNITS_PER_THREAD * self.workers.len()
    }

    /// Distinct series encoded so far.
    pub(crate) fn distinct_series(&self) -> u64 {
        self.workers.iter().map(|w| w.seen.len() as u64).sum()
    }

    /// Encodes the units `(step, node)`, the run's next, and appends the
    /// requests they fill to `ready`, in the order they filled up.
    pub(crate) fn encode(&mut self, units: &[(u64, usize)], ready: &mut VecDeque<Ready>) {
        if units.is_empty() {
            return;
        }
        if self.units.len() < units.len() {
            self.units.resize_with(units.len(), Unit::default);
        }
        let round = self.units.get_mut(..units.len()).unwrap_or_default();
        for (u, &(step, node)) in round.iter_mut().zip(units) {
            (u.step, u.node) = (step, node);
        }
        let slots: Vec<Mutex<&mut Unit>> = round.iter_mut().map(Mutex::new).collect();
        let next = AtomicUsize::new(0);
        let (spec, shards) = (&self.spec, self.shards);
        on_threads(&mut self.workers, |_, workers, w| {
            while let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut unit = slot.lock().unwrap_or_else(PoisonError::into_inner);
                encode_unit(spec, shards, workers, &mut unit, w);
            }
        });
        drop(slots);
        let round = self.units.get(..units.len()).unwrap_or_default();
        let jobs = split(round, &mut self.open, spec.batch);
        self.finish(jobs, units.len(), ready);
    }

    /// Appends every shard's last, partly filled request to `ready`, in
    /// shard order.
    pub(crate) fn flush(&mut self, ready: &mut VecDeque<Ready>) {
        let jobs = self
            .open
            .iter_mut()
            .enumerate()
            .filter(|(_, o)| o.samples > 0)
            .map(|(shard, o)| Job {
                shard,
                carried: std::mem::take(&mut o.carried),
                from: (0, 0),
                to: (0, 0),
                meta: RequestMeta {
                    samples: std::mem::take(&mut o.samples),
                    first_step: o.first_step,
                    last_step: o.last_step,
                },
                request: true,
            })
            .collect();
        self.finish(jobs, 0, ready);
    }

    /// Runs the jobs on the threads, with the hashes of the round's first
    /// `units` units, and hands out their results in order.
    fn finish(&mut self, jobs: Vec<Job>, units: usize, ready: &mut VecDeque<Ready>) {
        let round = self.units.get(..units).unwrap_or_default();
        let count = jobs.len();
        let jobs: Vec<Mutex<Option<Job>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
        let next = AtomicUsize::new(0);
        on_threads(&mut self.workers, |i, _, w| {
            for unit in round {
                if let Some(hashes) = unit.hashes.get(i) {
                    w.seen.extend(hashes);
                }
            }
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = jobs.get(j) else {
                    break;
                };
                let job = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(job) = job {
                    let done = run(job, round, w);
                    w.done.push((j, done));
                }
            }
        });
        let mut results: Vec<Option<Done>> = (0..count).map(|_| None).collect();
        for w in &mut self.workers {
            for (i, done) in w.done.drain(..) {
                if let Some(r) = results.get_mut(i) {
                    *r = Some(done);
                }
            }
        }
        for done in results.into_iter().flatten() {
            match done {
                Done::Request(r) => ready.push_back(r),
                Done::Carry(shard, raw) => {
                    if let Some(o) = self.open.get_mut(shard) {
                        o.carried = raw;
                    }
                }
            }
        }
    }
}

/// Runs `f(i, n, worker)` for each of the `n` workers, each on a thread of
/// its own (the first on this one; one whose thread cannot start runs here
/// after it).
fn on_threads<F>(workers: &mut [Worker], f: F)
where
    F: Fn(usize, usize, &mut Worker) + Sync,
{
    let n = workers.len();
    let Some((first, rest)) = workers.split_first_mut() else {
        return;
    };
    let mut failed = Vec::new();
    std::thread::scope(|s| {
        let f = &f;
        for (i, w) in rest.iter_mut().enumerate() {
            let spawned = std::thread::Builder::new()
                .name("loadgen-encode".into())
                .spawn_scoped(s, move || f(i + 1, n, w));
            if spawned.is_err() {
                failed.push(i + 1);
            }
        }
        f(0, n, first);
    });
    for i in failed {
        if let Some(w) = workers.get_mut(i) {
            f(i, n, w);
        }
    }
}

/// Generates a unit's series and encodes each sample into its shard's part.
fn encode_unit(spec: &LoadSpec, shards: usize, workers: usize, unit: &mut Unit, w: &mut Worker) {
    unit.parts.resize_with(shards, Part::default);
    for p in &mut unit.parts {
        p.raw.clear();
        p.ends.clear();
    }
    unit.hashes.resize_with(workers, Vec::new);
    for h in &mut unit.hashes {
        h.clear();
    }
    unit.order.clear();
    let cluster = &spec.cluster;
    let step = unit.step;
    let t0 = spec.start_ms + step as i64 * cluster.scrape_interval_ms;
    w.series.clear();
    cluster.node_series(unit.node, step, &mut w.series);
    for s in w.series.drain(..) {
        let h = s.labels.hash64();
        let inst = s.labels.get("instance").unwrap_or_default();
        let t = t0 + scrape_jitter(cluster.seed, inst, step, spec.jitter_ms);
        let shard = (h % shards as u64) as usize;
        let v = cluster.value(&s, step);
        if let Some(hashes) = unit.hashes.get_mut((h % workers as u64) as usize) {
            hashes.push(h);
        }
        let Some(part) = unit.parts.get_mut(shard) else {
            continue;
        };
        encode_series(s.labels.encoded(), t, v, &mut part.raw);
        part.ends.push(part.raw.len());
        unit.order.push(shard);
    }
}

/// Cuts the round's samples into requests of `batch` samples per shard,
/// in the order they fill up, and what each shard has left into a job
/// that carries it into the next round; `open` holds each shard's request
/// not yet full, from round to round.
fn split(round: &[Unit], open: &mut [Open], batch: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for o in open.iter_mut() {
        o.from = (0, 0);
    }
    for (u, unit) in round.iter().enumerate() {
        for o in open.iter_mut() {
            o.seen = 0;
        }
        for &shard in &unit.order {
            let Some(o) = open.get_mut(shard) else {
                continue;
            };
            o.seen += 1;
            if o.samples == 0 {
                o.first_step = unit.step;
            }
            o.last_step = unit.step;
            o.samples += 1;
            if o.samples >= batch as u64 {
                jobs.push(Job {
                    shard,
                    carried: std::mem::take(&mut o.carried),
                    from: o.from,
                    to: (u, o.seen),
                    meta: RequestMeta {
                        samples: std::mem::take(&mut o.samples),
                        first_step: o.first_step,
                        last_step: o.last_step,
                    },
                    request: true,
                });
                o.from = (u, o.seen);
            }
        }
    }
    let last = round.len().saturating_sub(1);
    for (shard, o) in open.iter_mut().enumerate() {
        if o.samples > 0 {
            let end = round
                .get(last)
                .and_then(|u| u.parts.get(shard))
                .map_or(0, |p| p.ends.len());
            jobs.push(Job {
                shard,
                carried: std::mem::take(&mut o.carried),
                from: o.from,
                to: (last, end),
                meta: RequestMeta::default(),
                request: false,
            });
        }
    }
    jobs
}

/// Copies a job's messages together after those it carries, and
/// compresses them if it is a request.
fn run(job: Job, round: &[Unit], w: &mut Worker) -> Done {
    let mut raw = if job.request && job.carried.is_empty() {
        let mut scratch = std::mem::take(&mut w.raw);
        scratch.clear();
        scratch
    } else {
        job.carried
    };
    let segments = (job.from.0..=job.to.0).map_while(|u| {
        let part = round.get(u).and_then(|unit| unit.parts.get(job.shard))?;
        let from = if u == job.from.0 { job.from.1 } else { 0 };
        let to = if u == job.to.0 {
            job.to.1
        } else {
            part.ends.len()
        };
        Some(part.messages(from, to))
    });
    raw.reserve(segments.clone().map(<[u8]>::len).sum());
    for s in segments {
        raw.extend_from_slice(s);
    }
    if !job.request {
        return Done::Carry(job.shard, raw);
    }
    w.compressed
        .resize(snap::raw::max_compress_len(raw.len()), 0);
    // The same bytes as `compress_vec` (nothing for an input too large),
    // copied out of the worst-case-sized buffer: a request keeps only its
    // size (28-32 bytes a sample instead of 75).
    let body = match w.snappy.compress(&raw, &mut w.compressed) {
        Ok(n) => Bytes::copy_from_slice(w.compressed.get(..n).unwrap_or_default()),
        Err(_) => Bytes::new(),
    };
    // The largest request's buffer is kept for the next.
    if raw.capacity() > w.raw.capacity() {
        w.raw = raw;
    }
    Done::Request((job.shard, body, job.meta))
}
