//! The head snapshot: written on a graceful shutdown so that the next
//! start attaches the chunk files to their series instead of replaying
//! the WAL (docs/format/head_snapshot.md has the bytes and the rules).
//!
//! Contracts:
//! - [`Head::write_snapshot`] is called once appends have stopped (the
//!   server has drained its requests). It seals every open chunk into
//!   `chunks_head/`, fsyncs the chunk files and the WAL, and writes the
//!   file atomically (temporary file, fsync, rename, directory fsync).
//!   It writes nothing when the head holds what the file cannot carry
//!   (out-of-order samples, deletions, chunks kept in memory).
//! - [`load`] uses a snapshot only if the WAL directory and the chunk
//!   files are exactly as they were when it was written; it returns
//!   `Ok(false)` for a stale snapshot (nothing was changed) and an error
//!   for a damaged or mismatching one, after which the caller must set
//!   the head aside (it may be partly built) and replay the WAL. The WAL
//!   is never touched: it stays the truth either way.
//! - The head a snapshot builds holds the same series, chunks, newest
//!   values and metadata as a WAL replay of the same directory would
//!   (`tests/snapshot.rs` compares them).

mod format;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use cairn_storage::{Metadata, MetricType};

pub use format::{
    check, decode, encode, Entry, FormatError, Header, MetaEntry, Reader, SnapshotIoError, Writer,
    MAGIC,
};

use crate::disk_chunks::LoadedChunk;
use crate::error::{HeadError, Result};
use crate::head::Head;
use crate::series::{FullChunk, MemSeries, Stored};

/// The file's name in the data directory.
pub const FILE: &str = "head_snapshot";

/// What writing a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    pub series: u64,
    pub chunks: u64,
    /// Open chunks sealed into the chunk files for it.
    pub sealed: u64,
    pub bytes: u64,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HeadError {
    let context = context.into();
    move |source| HeadError::Io { context, source }
}

fn snap_err(path: &Path, e: SnapshotIoError) -> HeadError {
    match e {
        SnapshotIoError::Io(source) => HeadError::Io {
            context: format!("head snapshot {}", path.display()),
            source,
        },
        SnapshotIoError::Format(f) => HeadError::SnapshotCorrupt {
            path: path.display().to_string(),
            offset: f.offset,
            expected: f.expected,
            found: f.found,
        },
    }
}

fn mismatch(path: &Path, expected: impl Into<String>, found: impl Into<String>) -> HeadError {
    HeadError::SnapshotMismatch {
        path: path.display().to_string(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// The WAL directory's entries, sorted by name: files with their sizes,
/// directories (checkpoints) with 0.
fn wal_listing(dir: &Path) -> Result<Vec<(String, u64)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("listing {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(format!("listing {}", dir.display())))?;
        let md = e
            .metadata()
            .map_err(io_err(format!("stat {}", e.path().display())))?;
        let size = if md.is_dir() { 0 } else { md.len() };
        out.push((e.file_name().to_string_lossy().into_owned(), size));
    }
    out.sort();
    Ok(out)
}

impl Head {
    /// Writes `<data>/head_snapshot` (see the module docs). Returns
    /// `None`, writing nothing, when the head has no WAL or holds what a
    /// snapshot cannot carry.
    pub fn write_snapshot(&self) -> Result<Option<SnapshotStats>> {
        let Some(wal) = &self.wal else {
            return Ok(None);
        };
        let started = Instant::now();
        let path = self.dir.join(FILE);
        // A stale one must not survive whatever happens below.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(format!("removing {}", path.display()))(e))
            }
            _ => {}
        }
        if !self.tombstones.is_empty() {
            tracing::info!("head snapshot not written: the head holds deletions; the next start replays the WAL");
            return Ok(None);
        }
        let mut all = self.series.all();
        all.sort_unstable_by_key(|s| s.r);
        let carried = |s: &MemSeries| {
            let d = s.data.lock();
            d.ooo.is_none() && d.full.iter().all(|c| matches!(c.stored, Stored::Disk(_)))
        };
        if let Some(s) = all.iter().find(|s| !carried(s)) {
            tracing::info!(series = s.r, "head snapshot not written: a series holds out-of-order samples or a chunk in memory; the next start replays the WAL");
            return Ok(None);
        }
        // Truncation leaves chunks ending before this in files it keeps
        // for newer ones: the counts are of chunks at or after it.
        let min_valid = self.min_valid.load(Ordering::Acquire);
        let live = |d: &crate::series::SeriesData| {
            d.full.iter().filter(|c| c.maxt >= min_valid).count() as u64
        };
        let mut sealed = 0u64;
        let mut chunks = 0u64;
        for s in &all {
            let mut d = s.data.lock();
            if d.open.is_some() {
                d.seal_open(s.r, &self.chunks);
                sealed += 1;
                self.num_chunks.fetch_add(1, Ordering::AcqRel);
            }
            chunks += live(&d);
        }
        // A chunk that could not be written stays in memory: not carried.
        if let Some(s) = all.iter().find(|s| !carried(s)) {
            tracing::warn!(series = s.r, "head snapshot not written: sealing an open chunk into the chunk files failed; the next start replays the WAL");
            return Ok(None);
        }
        self.chunks.sync()?;
        wal.sync()?;
        let header = Header {
            wal_files: wal_listing(&self.dir.join("wal"))?,
            chunks,
            min_valid,
            next_ref: self.next_ref.load(Ordering::Acquire),
            series: all.len() as u64,
        };
        let values: Vec<(u64, f64)> = all
            .iter()
            .map(|s| {
                let d = s.data.lock();
                (live(&d), d.last_v)
            })
            .collect();
        let meta: Vec<MetaEntry> = self
            .metadata()
            .into_iter()
            .map(|(name, m)| MetaEntry {
                name,
                kind: m.kind.code(),
                unit: m.unit,
                help: m.help,
            })
            .collect();
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut w = Writer::new(BufWriter::with_capacity(1 << 20, f), &header)
            .map_err(|e| snap_err(&tmp, e))?;
        for (s, &(n, last_v)) in all.iter().zip(&values) {
            w.series(s.r, &s.labels, n, last_v)
                .map_err(|e| snap_err(&tmp, e))?;
        }
        let f = w
            .finish(&meta)
            .map_err(|e| snap_err(&tmp, e))?
            .into_inner()
            .map_err(|e| io_err(format!("writing {}", tmp.display()))(e.into_error()))?;
        f.sync_all()
            .map_err(io_err(format!("fsync {}", tmp.display())))?;
        let bytes = f
            .metadata()
            .map_err(io_err(format!("stat {}", tmp.display())))?
            .len();
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io_err(format!("renaming {}", tmp.display())))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(format!("fsync {}", self.dir.display())))?;
        let stats = SnapshotStats {
            series: all.len() as u64,
            chunks,
            sealed,
            bytes,
        };
        tracing::info!(
            series = stats.series,
            chunks = stats.chunks,
            sealed = stats.sealed,
            bytes = stats.bytes,
            seconds = started.elapsed().as_secs_f64(),
            "head snapshot written"
        );
        Ok(Some(stats))
    }
}

/// How often loading logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Series handed to a builder thread at a time.
const BATCH: usize = 4096;

/// One series to create, with its chunks still in range.
struct Built {
    e: Entry,
    chunks: Vec<LoadedChunk>,
}

fn builder_gone(path: &Path) -> HeadError {
    mismatch(path, "builder threads running", "one stopped early")
}

/// Creates one series with its chunks (not yet indexed); returns it and
/// how many chunks it attached.
fn build(head: &Head, path: &Path, b: Built) -> Result<(Arc<MemSeries>, i64)> {
    let Built { e, chunks } = b;
    let (ms, created) = head.series.insert_replayed(e.r, &e.labels);
    if !created || ms.r != e.r {
        return Err(mismatch(
            path,
            format!("one entry per series (ref {})", e.r),
            format!("labels {:?} already at ref {}", e.labels, ms.r),
        ));
    }
    ms.logged.store(true, Ordering::Release);
    let mut d = ms.data.lock();
    for c in &chunks {
        head.widen(c.mint, c.maxt);
        d.push_full(FullChunk {
            stored: Stored::Disk(c.chunk_ref),
            mint: c.mint,
            maxt: c.maxt,
        });
    }
    d.last_v = e.last_v;
    drop(d);
    Ok((ms, chunks.len() as i64))
}

/// Builds the head from the snapshot at `path` and the chunks `loaded`
/// from `chunks_head/` (see the module contract). `Ok(false)`: the
/// snapshot is stale and nothing was done.
pub(crate) fn load(
    head: &Head,
    path: &Path,
    wal_dir: &Path,
    loaded: &mut [LoadedChunk],
) -> Result<bool> {
    let started = Instant::now();
    let open = || -> Result<(BufReader<File>, u64)> {
        let f = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        let len = f
            .metadata()
            .map_err(io_err(format!("stat {}", path.display())))?
            .len();
        Ok((BufReader::with_capacity(1 << 20, f), len))
    };
    let (src, len) = open()?;
    check(src, len).map_err(|e| snap_err(path, e))?;
    let (src, len) = open()?;
    let (mut rd, h) = Reader::open(src, len).map_err(|e| snap_err(path, e))?;
    let listing = wal_listing(wal_dir)?;
    if listing != h.wal_files {
        tracing::info!(
            path = %path.display(),
            "head snapshot is older than the WAL; replaying the WAL"
        );
        return Ok(false);
    }
    // Chunks the head had truncated away may remain in the files.
    let live = loaded.iter().filter(|c| c.maxt >= h.min_valid).count();
    if h.chunks != live as u64 {
        return Err(mismatch(
            path,
            format!(
                "{} chunks in chunks_head ending at or after {}",
                h.chunks, h.min_valid
            ),
            live.to_string(),
        ));
    }
    // The live chunks first, by series and time; the truncated ones after.
    loaded.sort_unstable_by_key(|c| (c.maxt < h.min_valid, c.series, c.mint));
    let loaded = loaded.get(..live).unwrap_or_default();
    let min_valid = head.opts.min_valid_time.max(h.min_valid);
    let workers = head.opts.replay_threads.clamp(1, 64);
    let mut at = 0usize;
    let mut dropped = 0u64;
    // The reading thread checks each entry against the chunk files and
    // hands batches of series to the builders (one per core): series are
    // independent, so any builder may take any batch.
    let totals = std::thread::scope(|sc| -> Result<(u64, i64)> {
        let mut txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Built>>(4);
            txs.push(tx);
            handles.push(sc.spawn(move || -> Result<(u64, i64)> {
                let (mut series, mut chunks) = (0u64, 0i64);
                let mut built = Vec::with_capacity(BATCH);
                for batch in rx {
                    for b in batch {
                        let (ms, n) = build(head, path, b)?;
                        chunks += n;
                        series += 1;
                        built.push(ms);
                    }
                    // The index has one lock: taken once per batch.
                    head.index.add_all(built.iter().map(|s| (s.r, &s.labels)));
                    built.clear();
                }
                Ok((series, chunks))
            }));
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut next = 0usize;
        let mut logged = Instant::now();
        let read = (|| -> Result<()> {
            while let Some(e) = rd.next_series().map_err(|e| snap_err(path, e))? {
                if let Some(c) = loaded.get(at).filter(|c| c.series < e.r) {
                    return Err(mismatch(
                        path,
                        "every chunk owned by a listed series",
                        format!("a chunk of series {}", c.series),
                    ));
                }
                let first = at;
                while loaded.get(at).is_some_and(|c| c.series == e.r) {
                    at += 1;
                }
                let mine = loaded.get(first..at).unwrap_or_default();
                if mine.len() as u64 != e.chunks {
                    return Err(mismatch(
                        path,
                        format!("{} chunks of series {}", e.chunks, e.r),
                        mine.len().to_string(),
                    ));
                }
                let kept: Vec<LoadedChunk> = mine
                    .iter()
                    .filter(|c| c.maxt >= min_valid)
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    // All its samples predate the blocks' end: a replay
                    // drops it too.
                    dropped += 1;
                    continue;
                }
                batch.push(Built { e, chunks: kept });
                if batch.len() == BATCH {
                    if logged.elapsed() >= PROGRESS_EVERY {
                        logged = Instant::now();
                        tracing::info!(
                            series = next * BATCH,
                            of = h.series,
                            seconds = started.elapsed().as_secs_f64(),
                            "loading the head snapshot"
                        );
                    }
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if txs
                        .get(next % workers)
                        .is_none_or(|tx| tx.send(full).is_err())
                    {
                        return Err(builder_gone(path));
                    }
                    next += 1;
                }
            }
            if !batch.is_empty()
                && txs
                    .get(next % workers)
                    .is_none_or(|tx| tx.send(std::mem::take(&mut batch)).is_err())
            {
                return Err(builder_gone(path));
            }
            Ok(())
        })();
        drop(txs);
        let (mut series, mut chunks) = (0u64, 0i64);
        let mut failed = None;
        for h in handles {
            match h.join() {
                Ok(Ok((s, c))) => {
                    series += s;
                    chunks += c;
                }
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => failed = failed.or(Some(mismatch(path, "a builder thread", "a panic"))),
            }
        }
        match (failed, read) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok((series, chunks)),
        }
    })?;
    let (series, chunks) = totals;
    if at != loaded.len() {
        return Err(mismatch(
            path,
            "every chunk owned by a listed series",
            format!(
                "{} chunks of unlisted series, the first of series {}",
                loaded.len() - at,
                loaded.get(at).map_or(0, |c| c.series)
            ),
        ));
    }
    let meta = rd.metadata().map_err(|e| snap_err(path, e))?;
    {
        let mut g = head.metadata.write();
        for m in meta {
            g.insert(
                m.name,
                Metadata {
                    kind: MetricType::from_code(i32::from(m.kind)),
                    unit: m.unit,
                    help: m.help,
                },
            );
        }
    }
    head.next_ref.fetch_max(h.next_ref, Ordering::AcqRel);
    head.min_valid.fetch_max(h.min_valid, Ordering::AcqRel);
    head.num_chunks.fetch_add(chunks, Ordering::AcqRel);
    tracing::info!(
        series,
        chunks,
        series_dropped = dropped,
        seconds = started.elapsed().as_secs_f64(),
        "head loaded from its snapshot; WAL not replayed"
    );
    Ok(true)
}
