//! Rebuilding the head on open: full chunks from `chunks_head/`, then the
//! WAL (checkpoint, then segments) in order.
//!
//! A Series record creates the series with its logged ref and attaches the
//! full chunks the chunk files hold for that ref. Samples at or before the
//! newest attached chunk are already in it and are skipped; the rest are
//! re-applied with the same rules as a live commit, so a sample a live
//! commit dropped is dropped again. Samples of unknown series are counted
//! and skipped. Chunks of series the WAL no longer knows are dropped with
//! the next truncation.
//!
//! A Tombstones record removes its intervals from the series at that point
//! of the replay, exactly as the live delete did (its intervals never reach
//! samples logged after it; see `delete`).
//!
//! The WAL's segments are read, checked and decompressed on a thread of
//! their own (`cairn_wal::replay_with_progress`); this thread decodes.
//! Replay applies on [`HeadOptions::replay_threads`](crate::HeadOptions)
//! threads: this thread splits each record among shards by the label hash
//! of its series (every ref a label set ever had lands in one shard, so
//! each series' records keep their WAL order); each shard applies its
//! parts on its own thread. Records of different series may then apply in
//! another order than logged, which changes nothing a series holds; what
//! is head-wide and order-dependent (metadata of one metric name logged
//! for two series in different shards, the head's max time that an
//! out-of-order sample is judged against) may differ from a one-thread
//! replay in those edge cases. One thread applies without splitting.
//!
//! After a crash most samples are already in a chunk file: all but those
//! of the open chunks. A shard skips them without locking their series
//! (`refs`: each ref keeps the newest attached chunk's max time until a
//! sample of the series is replayed past it), and prefetches the slots and
//! series of the samples ahead, so that their cache misses overlap.
//!
//! A long replay (minutes, with millions of series) says how far it has got:
//! an `info!` line at most every [`PROGRESS_EVERY`] with the segments read
//! out of those to read and the series and samples replayed so far, and one
//! at the end with the time taken and the rates.

mod refs;
pub(crate) mod status;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_model::Exemplar;
use cairn_storage::{Metadata, MetricType};

use crate::delete;
use crate::disk_chunks::LoadedChunk;
use crate::error::HeadError;
use crate::error::Result;
use crate::head::Head;
use crate::hist::HistValue;
use crate::series::{AppendBounds, ChunkPolicy, FullChunk, Placement, Stored, Tx};
use crate::stripes::MixMap;
use crate::wal_log::{Record, ReplayProgress, WalLog};
use crate::xor;
use refs::{SeriesByRef, NOT_COVERED};

/// Replayed samples carry append id 0, which every reader sees.
const REPLAYED: Tx = Tx {
    id: 0,
    low_watermark: 1,
};

/// Most time between two progress lines of a replay.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How many samples ahead a shard prefetches a series (and twice that
/// its slot).
const PREFETCH_AHEAD: usize = 16;
/// Records replayed between two looks at the clock.
const CLOCK_EVERY: u64 = 64;

/// Counts what a replay did and logs it now and then (see the module docs).
struct Report<'a> {
    /// Shared with `/api/v1/status/walreplay`, when the head was given one.
    status: Option<&'a status::ReplayStatus>,
    /// The WAL segment of the previous record.
    segment: Option<u32>,
    start: Instant,
    last: Instant,
    records: u64,
    series: u64,
    samples: u64,
    at: ReplayProgress,
}

impl<'a> Report<'a> {
    fn new(status: Option<&'a status::ReplayStatus>) -> Self {
        let now = Instant::now();
        Self {
            status,
            segment: None,
            start: now,
            last: now,
            records: 0,
            series: 0,
            samples: 0,
            at: ReplayProgress::default(),
        }
    }

    /// Called before each record is applied.
    fn record(&mut self, at: ReplayProgress) {
        self.at = at;
        self.records += 1;
        if at.segment != self.segment {
            self.segment = at.segment;
            if let (Some(s), Some(range), Some(seg)) = (self.status, at.segments, at.segment) {
                s.reading(range, seg);
            }
        }
        if !self.records.is_multiple_of(CLOCK_EVERY) {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < PROGRESS_EVERY {
            return;
        }
        self.last = now;
        tracing::info!(
            segments_done = at.segments_done,
            segments_total = at.segments_total,
            series = self.series,
            samples = self.samples,
            elapsed_s = (now.duration_since(self.start).as_secs_f64() * 10.0).round() / 10.0,
            "replaying WAL"
        );
    }

    fn done(&self, chunks: i64, in_files: u64, removed: usize, wal_time: Duration) {
        let secs = self.start.elapsed().as_secs_f64();
        let per_s = |n: u64| {
            if secs > 0.0 {
                (n as f64 / secs) as u64
            } else {
                0
            }
        };
        tracing::info!(
            segments = self.at.segments_total,
            series = self.series,
            samples = self.samples,
            samples_in_chunk_files = in_files,
            chunks,
            series_dropped = removed,
            seconds = (secs * 100.0).round() / 100.0,
            wal_seconds = (wal_time.as_secs_f64() * 100.0).round() / 100.0,
            series_per_s = per_s(self.series),
            samples_per_s = per_s(self.samples),
            "WAL replay done"
        );
    }
}

/// One replay worker's share of the series (those whose label hash falls
/// to it) and what it has rebuilt.
struct Shard<'h> {
    head: &'h Head,
    policy: ChunkPolicy,
    min_valid: i64,
    /// Chunks from `chunks_head/` of the shard's series, by ref, until
    /// their Series record attaches them.
    by_series: HashMap<u64, Vec<LoadedChunk>>,
    refs: SeriesByRef,
    chunks: i64,
    /// Samples of refs no Series record named before them.
    unknown: u64,
    /// Samples skipped unlocked: already in an attached chunk.
    in_files: u64,
}

impl Shard<'_> {
    /// Applies a record whose refs all belong to this shard.
    fn apply(&mut self, rec: Record) -> Result<()> {
        let head = self.head;
        match rec {
            Record::Series(v) => {
                for s in v {
                    let (ms, created) = head.series.insert_replayed(s.r, &s.labels);
                    // What this ref's samples may skip unlocked: kept for
                    // a ref named again, none for a ref that joins a series
                    // another ref made (its samples may open a chunk
                    // there, so that ref's skipping ends too).
                    let mut covered = match self.refs.get_covered(s.r) {
                        Some((old, c)) if Arc::ptr_eq(old, &ms) => *c,
                        _ => NOT_COVERED,
                    };
                    if !created && ms.r != s.r {
                        self.refs.set_covered(ms.r, NOT_COVERED);
                    }
                    if created {
                        head.index.add(ms.r, &ms.labels);
                        ms.logged.store(true, Ordering::Release);
                        if let Some(mut cs) = self.by_series.remove(&s.r) {
                            cs.sort_by_key(|c| c.mint);
                            let mut d = ms.data.lock();
                            for c in cs {
                                head.widen(c.mint, c.maxt);
                                self.chunks += 1;
                                if c.encoding == crate::xor::ENCODING_XOR {
                                    d.push_full(FullChunk {
                                        stored: Stored::Disk(c.chunk_ref),
                                        mint: c.mint,
                                        maxt: c.maxt,
                                    });
                                } else {
                                    // A histogram chunk: the WAL's histogram
                                    // samples up to its end are skipped.
                                    d.hist.get_or_insert_with(Default::default).attach(
                                        c.encoding,
                                        c.chunk_ref,
                                        c.mint,
                                        c.maxt,
                                    );
                                }
                            }
                            // Exactly what the locked check below skips
                            // until the series gets an open chunk.
                            if d.open.is_none() {
                                covered = d.full.last().map_or(NOT_COVERED, |c| c.maxt);
                            }
                        }
                    }
                    self.refs.insert(s.r, ms);
                    self.refs.set_covered(s.r, covered);
                }
            }
            Record::Samples(v) => {
                let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                let w = head.series.write_prefetch;
                for (i, s) in v.iter().enumerate() {
                    // Each sample's slot and series are a cache miss of
                    // their own: fetched ahead, the misses overlap.
                    if let Some(x) = v.get(i + 2 * PREFETCH_AHEAD) {
                        self.refs.prefetch_slot(x.r);
                    }
                    if let Some(x) = v.get(i + PREFETCH_AHEAD) {
                        self.refs.prefetch_series(x.r, x.t, w);
                    }
                    let s = *s;
                    let Some((ms, covered)) = self.refs.get_covered(s.r) else {
                        self.unknown += 1;
                        continue;
                    };
                    if s.t < self.min_valid {
                        continue;
                    }
                    // In an attached chunk, and nothing of the series
                    // replayed yet: the check below would skip it too.
                    if s.t <= *covered {
                        self.in_files += 1;
                        continue;
                    }
                    *covered = NOT_COVERED;
                    let mut d = ms.data.lock();
                    if d.open.is_none() && d.full.last().is_some_and(|c| s.t <= c.maxt) {
                        continue;
                    }
                    let b = AppendBounds {
                        min_valid: i64::MIN,
                        truncated_before: i64::MIN,
                        head_max: head.max_time().max(hi),
                        ooo_window: head.opts.ooo_window,
                    };
                    let a = match d.placement(s.t, s.v, &b, None) {
                        Ok(Placement::InOrder) => {
                            d.append_in_order(ms.r, s.t, s.v, REPLAYED, &self.policy, &head.chunks)
                        }
                        Ok(Placement::Ooo) => d.insert_ooo(s.t, s.v, REPLAYED, &self.policy),
                        Ok(Placement::Duplicate | Placement::Late | Placement::Conflict)
                        | Err(_) => continue,
                    };
                    self.chunks += a.chunks_created as i64;
                    lo = lo.min(s.t);
                    hi = hi.max(s.t);
                }
                head.widen(lo, hi);
            }
            // Deletions apply where they stand in the WAL: to the samples
            // replayed so far and to the attached chunks (see `delete`).
            Record::Tombstones(v) => {
                for st in v {
                    self.refs.set_covered(st.r, NOT_COVERED);
                    let Some(ms) = self.refs.get(st.r) else {
                        continue;
                    };
                    for (a, b) in st.intervals {
                        self.chunks +=
                            delete::apply(&mut ms.data.lock(), ms.r, &head.chunks, a, b)?;
                        head.tombstones.add(ms.r, a, b);
                    }
                }
            }
            // Errors (out of order against what the store holds, the
            // store disabled) drop the exemplar, as at commit.
            Record::Exemplars(v) => {
                for e in v {
                    if let Some(ms) = self.refs.get(e.r) {
                        let _ = head.exemplars.add(
                            &ms.labels,
                            Exemplar {
                                labels: e.labels,
                                value: e.v,
                                ts: e.t,
                            },
                        );
                    }
                }
            }
            Record::Histograms { samples, .. } => {
                for s in samples {
                    self.replay_hist(s.r, s.t, HistValue::Int(Arc::new(s.h)));
                }
            }
            Record::FloatHistograms { samples, .. } => {
                for s in samples {
                    self.replay_hist(s.r, s.t, HistValue::Float(Arc::new(s.h)));
                }
            }
            Record::MmapMarkers(_) => {}
            Record::Metadata(v) => {
                let mut g = head.metadata.write();
                for m in v {
                    if let Some(name) = self.refs.get(m.r).and_then(|s| s.labels.metric_name()) {
                        g.insert(
                            name.to_owned(),
                            Metadata {
                                kind: MetricType::from_code(i32::from(m.kind)),
                                unit: m.unit,
                                help: m.help,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// Splits records among the shards: a series goes to the shard of its
/// label hash (so every ref a label set ever had lands in one shard, and
/// its samples stay in WAL order), its samples, tombstones and metadata
/// follow its ref. Refs no Series record named yet are counted as
/// unknown and skipped, as a sequential replay would.
struct Router {
    owner: Owners,
    shards: u32,
    unknown: u64,
    max_ref: u64,
}

/// Ref to shard: a byte per ref for the dense refs heads hand out (one
/// lookup per sample stays in the cache), a map for the rest.
#[derive(Default)]
struct Owners {
    dense: Vec<u8>,
    sparse: MixMap<u64, u32>,
}

/// Refs below this are kept in [`Owners::dense`] (at most 256 MiB).
const DENSE_REFS: u64 = 1 << 28;
const NO_OWNER: u8 = u8::MAX;

impl Owners {
    fn insert(&mut self, r: u64, w: u32) {
        match u8::try_from(w) {
            Ok(w) if r < DENSE_REFS && w != NO_OWNER => {
                let i = r as usize;
                if self.dense.len() <= i {
                    self.dense.resize((i + 1).next_power_of_two(), NO_OWNER);
                }
                if let Some(x) = self.dense.get_mut(i) {
                    *x = w;
                }
            }
            _ => {
                self.sparse.insert(r, w);
            }
        }
    }

    fn get(&self, r: u64) -> Option<u32> {
        if r < DENSE_REFS {
            if let Some(&w) = self.dense.get(r as usize) {
                if w != NO_OWNER {
                    return Some(u32::from(w));
                }
            }
        }
        self.sparse.get(&r).copied()
    }
}

impl Router {
    /// The parts of `rec` for each shard (empty ones left out).
    fn route(&mut self, rec: Record, out: &mut Vec<(u32, Record)>) {
        out.clear();
        let n = self.shards as usize;
        match rec {
            Record::Series(v) => {
                let shards = u64::from(self.shards);
                for s in &v {
                    self.max_ref = self.max_ref.max(s.r);
                    self.owner.insert(s.r, (s.labels.hash64() % shards) as u32);
                }
                let owner = &self.owner;
                split(v, n, |s| owner.get(s.r), Record::Series, out);
            }
            Record::Samples(v) => {
                let owner = &self.owner;
                self.unknown += split(v, n, |s| owner.get(s.r), Record::Samples, out);
            }
            Record::Tombstones(v) => {
                let owner = &self.owner;
                split(v, n, |s| owner.get(s.r), Record::Tombstones, out);
            }
            Record::Metadata(v) => {
                let owner = &self.owner;
                split(v, n, |s| owner.get(s.r), Record::Metadata, out);
            }
            Record::Exemplars(v) => {
                let owner = &self.owner;
                split(v, n, |s| owner.get(s.r), Record::Exemplars, out);
            }
            Record::Histograms { custom, samples } => {
                let owner = &self.owner;
                self.unknown += split(
                    samples,
                    n,
                    |s| owner.get(s.r),
                    |samples| Record::Histograms { custom, samples },
                    out,
                );
            }
            Record::FloatHistograms { custom, samples } => {
                let owner = &self.owner;
                self.unknown += split(
                    samples,
                    n,
                    |s| owner.get(s.r),
                    |samples| Record::FloatHistograms { custom, samples },
                    out,
                );
            }
            // Only Prometheus's out-of-order log holds markers.
            Record::MmapMarkers(_) => {}
        }
    }
}

impl Shard<'_> {
    /// Replays one histogram sample: in order against the series'
    /// histograms (floats from the chunk files may be newer: the WAL holds
    /// each series' samples in time order, so these are not), dropped
    /// when older than the head's lower bound or already held.
    fn replay_hist(&mut self, r: u64, t: i64, h: HistValue) {
        self.refs.set_covered(r, NOT_COVERED);
        let Some(ms) = self.refs.get(r) else {
            self.unknown += 1;
            return;
        };
        if t < self.min_valid {
            return;
        }
        let head = self.head;
        let mut d = ms.data.lock();
        // Covered by the histogram chunks attached from `chunks_head/`.
        if d.hist
            .as_ref()
            .is_some_and(|x| x.open.is_none() && x.full.last().is_some_and(|c| t <= c.maxt))
        {
            return;
        }
        if d.hist_max_time().is_some_and(|m| t <= m) {
            // Older than the replayed histograms: a commit put it with the
            // out-of-order data (it was staged in order, then overtaken),
            // or Prometheus's WAL holds its out-of-order histograms too
            // (its `wbl/` has them again; the timestamp is kept once).
            let oldest = head.max_time().saturating_sub(head.opts.ooo_window);
            if head.opts.ooo_window > 0
                && t >= oldest
                && d.insert_ooo_hist(t, &h, REPLAYED).inserted
            {
                drop(d);
                head.widen(t, t);
            }
            return;
        }
        match d.replay_hist(ms.r, t, &h, &self.policy, &head.chunks) {
            Ok(n) => {
                self.chunks += n as i64;
                drop(d);
                head.widen(t, t);
            }
            Err(e) => tracing::warn!(series = r, t, error = %e, "histogram dropped in replay"),
        }
    }
}

/// Splits `items` among `n` shards by `shard_of`, appending each shard's
/// non-empty part to `out` as a record made by `wrap`; returns how many
/// items had no shard (they are dropped).
fn split<T>(
    items: Vec<T>,
    n: usize,
    shard_of: impl Fn(&T) -> Option<u32>,
    wrap: impl Fn(Vec<T>) -> Record,
    out: &mut Vec<(u32, Record)>,
) -> u64 {
    let mut parts: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    let mut orphans = 0;
    for it in items {
        match shard_of(&it).and_then(|w| parts.get_mut(w as usize)) {
            Some(p) => p.push(it),
            None => orphans += 1,
        }
    }
    out.extend(
        parts
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(w, p)| (w as u32, wrap(p))),
    );
    orphans
}

/// Records queued per worker before the reader waits.
const QUEUE: usize = 16;

/// Replays the WAL in `wal_dir`, then the out-of-order log in `wbl_dir`
/// (see `late`).
pub(crate) fn replay(
    head: &Head,
    wal_dir: &Path,
    loaded: Vec<LoadedChunk>,
    wbl_dir: &Path,
) -> Result<()> {
    let mut report = Report::new(head.opts.replay_status.as_deref());
    let min_valid = head.opts.min_valid_time;
    let workers = head.opts.replay_threads.clamp(1, 64);
    let policy = head.policy();
    let mut shards: Vec<Shard<'_>> = (0..workers)
        .map(|_| Shard {
            head,
            policy,
            min_valid,
            by_series: HashMap::new(),
            refs: SeriesByRef::default(),
            chunks: 0,
            unknown: 0,
            in_files: 0,
        })
        .collect();
    // Chunks go to the shard that will see their series: found by the
    // series' labels, which only the WAL knows, so they are handed over
    // when the router first sees the ref.
    let mut pending: HashMap<u64, Vec<LoadedChunk>> = HashMap::new();
    for c in loaded.into_iter().filter(|c| c.maxt >= min_valid) {
        pending.entry(c.series).or_default().push(c);
    }
    let mut router = Router {
        owner: Owners::default(),
        shards: workers as u32,
        unknown: 0,
        max_ref: 0,
    };
    let mut parts = Vec::new();
    // The reader (this thread) decodes and routes; one thread per shard
    // applies. With one shard everything runs here.
    let count = |report: &mut Report, rec: &Record| match rec {
        Record::Series(v) => report.series += v.len() as u64,
        Record::Samples(v) => report.samples += v.len() as u64,
        _ => {}
    };
    let hand_over = |rec: &Record,
                     pending: &mut HashMap<u64, Vec<LoadedChunk>>|
     -> Vec<(u64, Vec<LoadedChunk>)> {
        match rec {
            Record::Series(v) if !pending.is_empty() => v
                .iter()
                .filter_map(|s| pending.remove(&s.r).map(|c| (s.r, c)))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut torn = None;
    if workers == 1 {
        let Some(shard) = shards.first_mut() else {
            return Ok(());
        };
        // No routing: the one shard takes every record as it is.
        torn = WalLog::replay(wal_dir, |at, rec| {
            report.record(at);
            count(&mut report, &rec);
            if let Record::Series(v) = &rec {
                router.max_ref = v.iter().map(|s| s.r).fold(router.max_ref, u64::max);
            }
            shard.by_series.extend(hand_over(&rec, &mut pending));
            shard.apply(rec)
        })?;
    } else {
        shards = std::thread::scope(|sc| -> Result<Vec<Shard<'_>>> {
            let mut txs = Vec::with_capacity(workers);
            let mut handles = Vec::with_capacity(workers);
            for mut shard in shards {
                let (tx, rx) =
                    std::sync::mpsc::sync_channel::<(Vec<(u64, Vec<LoadedChunk>)>, Record)>(QUEUE);
                txs.push(tx);
                handles.push(sc.spawn(move || -> Result<Shard<'_>> {
                    for (chunks, rec) in rx {
                        shard.by_series.extend(chunks);
                        shard.apply(rec)?;
                    }
                    Ok(shard)
                }));
            }
            let read = WalLog::replay(wal_dir, |at, rec| {
                report.record(at);
                count(&mut report, &rec);
                let mut chunks = hand_over(&rec, &mut pending);
                router.route(rec, &mut parts);
                for (w, r) in parts.drain(..) {
                    let mine: Vec<_> = if chunks.is_empty() {
                        Vec::new()
                    } else {
                        let (m, rest): (Vec<_>, Vec<_>) = chunks
                            .into_iter()
                            .partition(|(r, _)| router.owner.get(*r) == Some(w));
                        chunks = rest;
                        m
                    };
                    let sent = txs
                        .get(w as usize)
                        .is_some_and(|tx| tx.send((mine, r)).is_ok());
                    if !sent {
                        // The worker stopped on an error, reported below.
                        return Err(worker_gone(wal_dir));
                    }
                }
                Ok(())
            });
            drop(txs);
            let mut done = Vec::with_capacity(workers);
            let mut failed = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(shard)) => done.push(shard),
                    Ok(Err(e)) => failed = failed.or(Some(e)),
                    Err(_) => failed = failed.or(Some(worker_panicked(wal_dir))),
                }
            }
            match (failed, read) {
                (Some(e), _) | (None, Err(e)) => Err(e),
                (None, Ok(t)) => {
                    torn = t;
                    Ok(done)
                }
            }
        })?;
    }
    if let (Some(_), Some(s)) = (torn, &head.opts.replay_status) {
        s.corrupted();
    }
    let unknown = router.unknown + shards.iter().map(|s| s.unknown).sum::<u64>();
    let max_ref = router.max_ref;
    let chunks: i64 = shards.iter().map(|s| s.chunks).sum();
    let in_files: u64 = shards.iter().map(|s| s.in_files).sum();
    let unattached: usize = pending.len() + shards.iter().map(|s| s.by_series.len()).sum::<usize>();
    let refs: Vec<SeriesByRef> = shards.into_iter().map(|s| s.refs).collect();
    let wal_time = report.start.elapsed();
    head.next_ref.fetch_max(max_ref + 1, Ordering::AcqRel);
    head.num_chunks.fetch_add(chunks, Ordering::AcqRel);
    // Series whose newest data is a full chunk need its last value to judge
    // a later append at the same timestamp.
    let mut buf = Vec::new();
    for s in refs.iter().flat_map(SeriesByRef::values) {
        let mut d = s.data.lock();
        if d.open.is_some() {
            continue;
        }
        let Some(c) = d.full.last() else { continue };
        let bytes = match &c.stored {
            Stored::Disk(r) => head.chunks.read(s.r, *r)?,
            Stored::Mem(b) => b.to_vec(),
        };
        xor::decode_into(&bytes, &mut buf, s.r)?;
        if let Some(last) = buf.last() {
            d.last_v = last.v;
        }
    }
    // Late samples first: a series may hold nothing else.
    head.replay_wbl(wbl_dir)?;
    // Series whose samples all predate `min_valid_time` are dropped.
    let mut removed = 0;
    for s in refs.iter().flat_map(SeriesByRef::values) {
        if let Some(gone) = head.series.remove_if(s.r, |s| s.data.lock().is_empty()) {
            head.index.remove(gone.r, &gone.labels);
            removed += 1;
        }
    }
    if unknown > 0 {
        tracing::warn!(unknown, "WAL samples of unknown series skipped");
    }
    if unattached > 0 {
        tracing::warn!(
            series = unattached,
            "head chunks of series unknown to the WAL ignored"
        );
    }
    report.done(chunks, in_files, removed, wal_time);
    Ok(())
}

fn worker_gone(dir: &Path) -> HeadError {
    HeadError::Wal {
        op: "replay",
        dir: dir.display().to_string(),
        source: "a replay worker stopped".into(),
    }
}

fn worker_panicked(dir: &Path) -> HeadError {
    HeadError::Wal {
        op: "replay",
        dir: dir.display().to_string(),
        source: "a replay worker panicked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_keep_dense_and_sparse_refs() {
        let mut o = Owners::default();
        o.insert(1, 0);
        o.insert(1000, 3);
        o.insert(DENSE_REFS + 5, 2);
        o.insert(7, 300);
        assert_eq!(o.get(1), Some(0));
        assert_eq!(o.get(1000), Some(3));
        assert_eq!(o.get(DENSE_REFS + 5), Some(2));
        assert_eq!(o.get(7), Some(300));
        assert_eq!(o.get(2), None);
        assert_eq!(o.get(u64::MAX), None);
        o.insert(1, 1);
        assert_eq!(o.get(1), Some(1));
    }
}
