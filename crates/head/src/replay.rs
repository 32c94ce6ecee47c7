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
//! A long replay (minutes, with millions of series) says how far it has got:
//! an `info!` line at most every [`PROGRESS_EVERY`] with the segments read
//! out of those to read and the series and samples replayed so far, and one
//! at the end with the time taken and the rates.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_storage::{Metadata, MetricType};

use crate::delete;
use crate::disk_chunks::LoadedChunk;
use crate::error::Result;
use crate::head::Head;
use crate::series::{AppendBounds, FullChunk, MemSeries, Placement, Stored, Tx};
use crate::wal_log::{Record, ReplayProgress, WalLog};
use crate::xor;

/// Replayed samples carry append id 0, which every reader sees.
const REPLAYED: Tx = Tx {
    id: 0,
    low_watermark: 1,
};

/// Most time between two progress lines of a replay.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Records replayed between two looks at the clock.
const CLOCK_EVERY: u64 = 64;

/// Counts what a replay did and logs it now and then (see the module docs).
struct Report {
    start: Instant,
    last: Instant,
    records: u64,
    series: u64,
    samples: u64,
    at: ReplayProgress,
}

impl Report {
    fn new() -> Self {
        let now = Instant::now();
        Self {
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

    fn done(&self, chunks: i64, removed: usize, wal_time: Duration) {
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

pub(crate) fn replay(head: &Head, wal_dir: &Path, loaded: Vec<LoadedChunk>) -> Result<()> {
    let mut report = Report::new();
    let min_valid = head.opts.min_valid_time;
    let mut by_series: HashMap<u64, Vec<LoadedChunk>> = HashMap::new();
    for c in loaded.into_iter().filter(|c| c.maxt >= min_valid) {
        by_series.entry(c.series).or_default().push(c);
    }
    let mut refs: HashMap<u64, Arc<MemSeries>> = HashMap::new();
    let mut max_ref = 0u64;
    let mut unknown = 0u64;
    let mut chunks = 0i64;
    let policy = head.policy();
    WalLog::replay(wal_dir, |at, rec| {
        report.record(at);
        match rec {
            Record::Series(v) => {
                for s in v {
                    max_ref = max_ref.max(s.r);
                    let (ms, created) = head.series.insert_replayed(s.r, &s.labels);
                    if created {
                        report.series += 1;
                        head.index.add(ms.r, &ms.labels);
                        ms.logged.store(true, Ordering::Release);
                        if let Some(mut cs) = by_series.remove(&s.r) {
                            cs.sort_by_key(|c| c.mint);
                            let mut d = ms.data.lock();
                            for c in cs {
                                head.widen(c.mint, c.maxt);
                                chunks += 1;
                                d.push_full(FullChunk {
                                    stored: Stored::Disk(c.chunk_ref),
                                    mint: c.mint,
                                    maxt: c.maxt,
                                });
                            }
                        }
                    }
                    refs.insert(s.r, ms);
                }
            }
            Record::Samples(v) => {
                report.samples += v.len() as u64;
                for s in v {
                    let Some(ms) = refs.get(&s.r) else {
                        unknown += 1;
                        continue;
                    };
                    if s.t < min_valid {
                        continue;
                    }
                    let mut d = ms.data.lock();
                    if d.open.is_none() && d.full.last().is_some_and(|c| s.t <= c.maxt) {
                        continue;
                    }
                    let b = AppendBounds {
                        min_valid: i64::MIN,
                        truncated_before: i64::MIN,
                        head_max: head.max_time(),
                        ooo_window: head.opts.ooo_window,
                    };
                    let a = match d.placement(s.t, s.v, &b, None) {
                        Ok(Placement::InOrder) => {
                            d.append_in_order(ms.r, s.t, s.v, REPLAYED, &policy, &head.chunks)
                        }
                        Ok(Placement::Ooo) => d.insert_ooo(s.t, s.v, REPLAYED, &policy),
                        Ok(Placement::Duplicate) | Err(_) => continue,
                    };
                    chunks += a.chunks_created as i64;
                    head.widen(s.t, s.t);
                }
            }
            // Deletions apply where they stand in the WAL: to the samples
            // replayed so far and to the attached chunks (see `delete`).
            Record::Tombstones(v) => {
                for st in v {
                    let Some(ms) = refs.get(&st.r) else {
                        continue;
                    };
                    for (a, b) in st.intervals {
                        chunks += delete::apply(&mut ms.data.lock(), ms.r, &head.chunks, a, b)?;
                        head.tombstones.add(ms.r, a, b);
                    }
                }
            }
            Record::Metadata(v) => {
                let mut g = head.metadata.write();
                for m in v {
                    if let Some(name) = refs.get(&m.r).and_then(|s| s.labels.metric_name()) {
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
    })?;
    let wal_time = report.start.elapsed();
    head.next_ref.fetch_max(max_ref + 1, Ordering::AcqRel);
    head.num_chunks.fetch_add(chunks, Ordering::AcqRel);
    // Series whose newest data is a full chunk need its last value to judge
    // a later append at the same timestamp.
    let mut buf = Vec::new();
    for s in refs.values() {
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
    // Series whose samples all predate `min_valid_time` are dropped.
    let mut removed = 0;
    for s in refs.values() {
        if let Some(gone) = head.series.remove_if(s.r, |s| s.data.lock().is_empty()) {
            head.index.remove(gone.r, &gone.labels);
            removed += 1;
        }
    }
    if unknown > 0 {
        tracing::warn!(unknown, "WAL samples of unknown series skipped");
    }
    if !by_series.is_empty() {
        tracing::warn!(
            series = by_series.len(),
            "head chunks of series unknown to the WAL ignored"
        );
    }
    report.done(chunks, removed, wal_time);
    Ok(())
}
