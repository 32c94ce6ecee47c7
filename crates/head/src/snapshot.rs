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
//!   (deletions, chunks kept in memory). Native-histogram chunks are
//!   listed with their encoding; out-of-order samples and histograms stay
//!   in `wbl/` (all of them are logged there again first, since a sample
//!   overtaken at commit is in the WAL only), which loading replays after
//!   the snapshot, and their series are listed even without a chunk. The
//!   exemplar ring is carried whole.
//! - [`load`] uses a snapshot only if the WAL directory and the chunk
//!   files are exactly as they were when it was written (names and
//!   lengths: the chunk files are not read, the snapshot lists every
//!   chunk, and a chunk's checksum is checked when a query reads it, as
//!   for every head chunk); it returns
//!   `Ok(false)` for a stale snapshot (nothing was changed) and an error
//!   for a damaged or mismatching one, after which the caller must set
//!   the head aside (it may be partly built) and replay the WAL. The WAL
//!   is never touched: it stays the truth either way.
//! - The head a snapshot builds holds the same series, chunks, newest
//!   values, metadata and exemplars as a WAL replay of the same directory
//!   would
//!   (`tests/snapshot.rs` compares them).

mod format;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use cairn_storage::{Metadata, MetricType};

pub use format::{
    build_labels, check, decode, encode, Entry, ExemplarEntry, FormatError, Header, MetaEntry,
    RawEntry, Reader, SnapChunk, Snapshot, SnapshotIoError, Writer, FLAG_OOO, MAGIC, MAGIC_V2,
    MAGIC_V3,
};

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
        SnapshotIoError::Format(f) => format_err(path, f),
    }
}

fn format_err(path: &Path, f: FormatError) -> HeadError {
    HeadError::SnapshotCorrupt {
        path: path.display().to_string(),
        offset: f.offset,
        expected: f.expected,
        found: f.found,
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
            d.full.iter().all(|c| matches!(c.stored, Stored::Disk(_)))
                && d.hist.as_ref().is_none_or(|h| {
                    h.full
                        .iter()
                        .all(|c| matches!(c.stored, crate::hist::HistBytes::Disk(_)))
                })
        };
        if let Some(s) = all.iter().find(|s| !carried(s)) {
            tracing::info!(series = s.r, "head snapshot not written: a series holds a chunk in memory; the next start replays the WAL");
            return Ok(None);
        }
        // Out-of-order data stays in `wbl/`, which loading replays: all of
        // it is logged there again (a sample overtaken at commit went to
        // the WAL only), then the log is synced below.
        self.relog_ooo()?;
        // Truncation leaves chunks ending before this in files it keeps
        // for newer ones: only chunks at or after it are listed.
        let min_valid = self.min_valid.load(Ordering::Acquire);
        let live = |d: &crate::series::SeriesData| -> Vec<SnapChunk> {
            d.full
                .iter()
                .filter(|c| c.maxt >= min_valid)
                .filter_map(|c| match c.stored {
                    Stored::Disk(chunk_ref) => Some(SnapChunk {
                        chunk_ref,
                        mint: c.mint,
                        maxt: c.maxt,
                    }),
                    _ => None,
                })
                .collect()
        };
        let live_hist = |d: &crate::series::SeriesData| -> Vec<(u8, SnapChunk)> {
            d.hist.as_ref().map_or_else(Vec::new, |h| {
                h.full
                    .iter()
                    .filter(|c| c.maxt >= min_valid)
                    .filter_map(|c| match c.stored {
                        crate::hist::HistBytes::Disk(chunk_ref) => Some((
                            c.encoding,
                            SnapChunk {
                                chunk_ref,
                                mint: c.mint,
                                maxt: c.maxt,
                            },
                        )),
                        crate::hist::HistBytes::Mem(_) => None,
                    })
                    .collect()
            })
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
            if let Some(h) = d.hist.as_mut().filter(|h| h.open.is_some()) {
                h.close_open(crate::hist::Store {
                    disk: &self.chunks,
                    series: s.r,
                });
                sealed += 1;
            }
            chunks += (live(&d).len() + live_hist(&d).len()) as u64;
        }
        // A chunk that could not be written stays in memory: not carried.
        if let Some(s) = all.iter().find(|s| !carried(s)) {
            tracing::warn!(series = s.r, "head snapshot not written: sealing an open chunk into the chunk files failed; the next start replays the WAL");
            return Ok(None);
        }
        // Finalized, the files keep the lengths listed here.
        let chunk_files = self.chunks.finish_and_list()?;
        self.chunks.sync()?;
        wal.sync()?;
        if let Some(w) = &self.wbl {
            w.sync()?;
        }
        let header = Header {
            wal_files: wal_listing(&self.dir.join("wal"))?,
            chunk_files,
            chunks,
            min_valid,
            next_ref: self.next_ref.load(Ordering::Acquire),
            series: all.len() as u64,
        };

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
        let exemplars: Vec<ExemplarEntry> = self
            .exemplars
            .all()
            .into_iter()
            .map(|(series, e)| ExemplarEntry {
                series,
                ts: e.ts,
                value: e.value,
                labels: e.labels,
            })
            .collect();
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut w = Writer::new(BufWriter::with_capacity(1 << 20, f), &header)
            .map_err(|e| snap_err(&tmp, e))?;
        for s in &all {
            let (listed, last_v, hist, ooo) = {
                let d = s.data.lock();
                let ooo = d.ooo.is_some() || d.ooo_hist_bounds().is_some();
                (live(&d), d.last_v, live_hist(&d), ooo)
            };
            w.series(s.r, &s.labels, &listed, last_v, &hist, ooo)
                .map_err(|e| snap_err(&tmp, e))?;
        }
        let f = w
            .finish(&meta, &exemplars)
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

/// Entries read but not yet built: label pairs borrowed from the file's
/// bytes, chunks, histogram chunks, and where each entry's pairs, chunks
/// and histogram chunks end.
#[derive(Default)]
struct Batch<'a> {
    entries: Vec<(RawEntry, usize, usize, usize)>,
    pairs: Vec<(&'a str, &'a str)>,
    chunks: Vec<SnapChunk>,
    hist: Vec<(u8, SnapChunk)>,
}

fn builder_gone(path: &Path) -> HeadError {
    mismatch(path, "builder threads running", "one stopped early")
}

/// What one builder did.
#[derive(Default)]
struct Built {
    series: u64,
    chunks: i64,
    dropped: u64,
}

/// Creates the series of one batch with their chunks still in range
/// (`min_valid`) and indexes them; every chunk must lie in a listed file.
fn build(
    head: &Head,
    path: &Path,
    b: &Batch<'_>,
    files: &[(u32, u64, i64)],
    min_valid: i64,
    out: &mut Built,
    made: &mut Vec<Arc<MemSeries>>,
) -> Result<()> {
    let (mut p0, mut c0, mut h0) = (0usize, 0usize, 0usize);
    for &(e, p1, c1, h1) in &b.entries {
        let pairs = b.pairs.get(p0..p1).unwrap_or_default();
        let chunks = b.chunks.get(c0..c1).unwrap_or_default();
        let hist = b.hist.get(h0..h1).unwrap_or_default();
        (p0, c0, h0) = (p1, c1, h1);
        for c in chunks.iter().chain(hist.iter().map(|x| &x.1)) {
            let seq = (c.chunk_ref >> 32) as u32;
            let off = c.chunk_ref & 0xffff_ffff;
            let inside = files
                .binary_search_by_key(&seq, |f| f.0)
                .ok()
                .and_then(|i| files.get(i))
                .is_some_and(|f| off < f.1);
            if !inside {
                return Err(mismatch(
                    path,
                    format!("chunks of series {} inside the listed chunk files", e.r),
                    format!("file {seq} offset {off}"),
                ));
            }
        }
        if !chunks
            .iter()
            .chain(hist.iter().map(|x| &x.1))
            .any(|c| c.maxt >= min_valid)
            && !e.ooo
        {
            // All its samples predate the blocks' end: a replay drops it too.
            // (A series with out-of-order data gets it back from `wbl/`.)
            out.dropped += 1;
            continue;
        }
        let labels = build_labels(e.offset, pairs).map_err(|f| format_err(path, f))?;
        let (ms, created) = head.series.insert_replayed(e.r, &labels);
        if !created || ms.r != e.r {
            return Err(mismatch(
                path,
                format!("one entry per series (ref {})", e.r),
                format!("labels {labels:?} already at ref {}", ms.r),
            ));
        }
        ms.logged.store(true, Ordering::Release);
        let mut d = ms.data.lock();
        for c in chunks.iter().filter(|c| c.maxt >= min_valid) {
            head.widen(c.mint, c.maxt);
            d.push_full(FullChunk {
                stored: Stored::Disk(c.chunk_ref),
                mint: c.mint,
                maxt: c.maxt,
            });
            out.chunks += 1;
        }
        for (enc, c) in hist.iter().filter(|x| x.1.maxt >= min_valid) {
            head.widen(c.mint, c.maxt);
            d.hist
                .get_or_insert_with(Default::default)
                .attach(*enc, c.chunk_ref, c.mint, c.maxt);
            out.chunks += 1;
        }
        d.last_v = e.last_v;
        drop(d);
        out.series += 1;
        made.push(ms);
    }
    // The index has one lock: taken once per batch.
    head.index.add_all(made.iter().map(|s| (s.r, &s.labels)));
    made.clear();
    Ok(())
}

/// Maps the snapshot file.
fn map(path: &Path) -> Result<memmap2::Mmap> {
    let f = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: read-only mapping of a file in the data directory, which this
    // process owns; nothing writes or truncates it while it is mapped (it
    // is deleted only after loading). External modification of the data
    // directory is outside the contract, as for every database.
    unsafe { memmap2::Mmap::map(&f) }.map_err(io_err(format!("mapping {}", path.display())))
}

/// Builds the head from the snapshot at `path` (see the module contract);
/// the head's chunk files were opened without being read. `Ok(false)`: the
/// snapshot is stale and nothing was done.
pub(crate) fn load(head: &Head, path: &Path, wal_dir: &Path) -> Result<bool> {
    let started = Instant::now();
    let bytes = map(path)?;
    check(&bytes).map_err(|e| format_err(path, e))?;
    let (mut rd, h) = Reader::open(&bytes).map_err(|e| format_err(path, e))?;
    let listing = wal_listing(wal_dir)?;
    if listing != h.wal_files {
        tracing::info!(
            path = %path.display(),
            "head snapshot is older than the WAL; replaying the WAL"
        );
        return Ok(false);
    }
    let on_disk = head.chunks.listing()?;
    let listed: Vec<(u32, u64)> = h.chunk_files.iter().map(|&(s, n, _)| (s, n)).collect();
    if on_disk != listed {
        tracing::info!(
            path = %path.display(),
            "head snapshot does not match the chunk files; replaying the WAL"
        );
        return Ok(false);
    }
    let files = &h.chunk_files;
    head.series
        .reserve(usize::try_from(h.series).unwrap_or(0).min(bytes.len() / 12));
    let min_valid = head.opts.min_valid_time.max(h.min_valid);
    let workers = head.opts.snapshot_threads.clamp(1, 64);
    // The reading thread only parses (label strings are borrowed from the
    // mapping); builders, one per core, make the label sets, series and
    // index entries: series are independent, so any builder may take any
    // batch.
    let totals = std::thread::scope(|sc| -> Result<Built> {
        let mut txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch<'_>>(4);
            txs.push(tx);
            handles.push(sc.spawn(move || -> Result<Built> {
                let mut out = Built::default();
                let mut made = Vec::with_capacity(BATCH);
                for batch in rx {
                    build(head, path, &batch, files, min_valid, &mut out, &mut made)?;
                }
                Ok(out)
            }));
        }
        let mut next = 0usize;
        let mut logged = Instant::now();
        let read = (|| -> Result<()> {
            let mut batch = Batch::default();
            loop {
                let e = rd
                    .next_raw(&mut batch.pairs, &mut batch.chunks, &mut batch.hist)
                    .map_err(|e| format_err(path, e))?;
                let done = e.is_none();
                if let Some(e) = e {
                    batch.entries.push((
                        e,
                        batch.pairs.len(),
                        batch.chunks.len(),
                        batch.hist.len(),
                    ));
                }
                if batch.entries.len() == BATCH || (done && !batch.entries.is_empty()) {
                    if logged.elapsed() >= PROGRESS_EVERY {
                        logged = Instant::now();
                        tracing::info!(
                            series = next * BATCH,
                            of = h.series,
                            seconds = started.elapsed().as_secs_f64(),
                            "loading the head snapshot"
                        );
                    }
                    if txs
                        .get(next % workers)
                        .is_none_or(|tx| tx.send(std::mem::take(&mut batch)).is_err())
                    {
                        return Err(builder_gone(path));
                    }
                    next += 1;
                }
                if done {
                    return Ok(());
                }
            }
        })();
        drop(txs);
        let mut total = Built::default();
        let mut failed = None;
        for h in handles {
            match h.join() {
                Ok(Ok(b)) => {
                    total.series += b.series;
                    total.chunks += b.chunks;
                    total.dropped += b.dropped;
                }
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => failed = failed.or(Some(mismatch(path, "a builder thread", "a panic"))),
            }
        }
        match (failed, read) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(total),
        }
    })?;
    let (meta, exemplars) = rd.finish().map_err(|e| format_err(path, e))?;
    // Oldest first, as the ring held them: a smaller ring keeps the newest.
    for e in exemplars {
        let ex = cairn_model::Exemplar {
            labels: e.labels,
            value: e.value,
            ts: e.ts,
        };
        if let Err(err) = head.exemplars.add(&e.series, ex) {
            tracing::debug!(error = %err, "snapshot exemplar not kept");
        }
    }
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
    for &(seq, _, maxt) in files {
        head.chunks.set_file_maxt(seq, maxt)?;
    }
    head.next_ref.fetch_max(h.next_ref, Ordering::AcqRel);
    head.min_valid.fetch_max(h.min_valid, Ordering::AcqRel);
    head.num_chunks.fetch_add(totals.chunks, Ordering::AcqRel);
    tracing::info!(
        series = totals.series,
        chunks = totals.chunks,
        series_dropped = totals.dropped,
        seconds = started.elapsed().as_secs_f64(),
        "head loaded from its snapshot; WAL not replayed"
    );
    Ok(true)
}
