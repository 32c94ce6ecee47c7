//! Reading a whole WAL directory back: the newest checkpoint first, then
//! every segment after it, in index order.
//!
//! Contracts:
//! * Segments numbered at or below the newest checkpoint are skipped (they
//!   are already folded into it and merely not deleted yet).
//! * The segments read must be consecutive, starting right after the
//!   checkpoint when there is one; a hole is [`WalError::SegmentGap`].
//! * A damaged tail of the last non-empty segment (a write torn by a crash)
//!   ends the replay there with a `tracing::warn!`, reported in
//!   [`ReplayStats::torn_tail`]; nothing is modified on disk ([`crate::Wal::open`]
//!   truncates it). Damage anywhere else is [`WalError::Corruption`].
//! * Records of types this crate does not decode are skipped and counted.

use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};
use crate::record::{decode, Record};
use crate::segments::{
    check_consecutive, checkpoint_name, damage_or_error, last_nonempty, list, open_reader,
};

/// Callback getting `(segment, offset, record bytes)`.
pub(crate) type SegmentVisitor<'a> = dyn FnMut(u32, u64, &[u8]) -> Result<()> + 'a;
/// Callback getting `((directory, segment), offset, progress, record bytes)`.
type LocatedVisitor<'a> = dyn FnMut((&Path, u32), u64, Progress, &[u8]) -> Result<()> + 'a;

/// How far a replay has got, given with each record by
/// [`replay_with_progress`]: the segments read so far out of all it reads
/// (the newest checkpoint's segments, then the WAL's after it). While a
/// record of the n-th segment (from 0) is handed over, `segments_done` is n.
///
/// Also the WAL's own segment numbers, as Prometheus's
/// `/api/v1/status/walreplay` reports them: the first and last segment
/// after the checkpoint (`None` when there is none) and the one being read
/// (`None` while the checkpoint is read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub segments_done: u32,
    pub segments_total: u32,
    pub segments: Option<(u32, u32)>,
    pub segment: Option<u32>,
}

/// What a replay read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// The checkpoint read first, if any (its index).
    pub checkpoint: Option<u32>,
    /// First and last WAL segment read after the checkpoint, if any.
    pub segments: Option<(u32, u32)>,
    /// Records handed to the callback.
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    pub tombstones: u64,
    pub metadata: u64,
    pub exemplars: u64,
    /// Native-histogram samples, integer and float.
    pub histograms: u64,
    /// Records of unsupported types that were skipped.
    pub unknown_records: u64,
    /// Segment and offset where a torn tail stopped the replay.
    pub torn_tail: Option<(u32, u64)>,
}

/// Reads `segs` (ascending) of `dir` in order, calling `f(segment, offset,
/// record)`. With `tolerate_tail`, damage in the last non-empty segment stops
/// the read and is returned instead of failing.
pub(crate) fn read_segments(
    dir: &Path,
    segs: &[u32],
    tolerate_tail: bool,
    f: &mut SegmentVisitor<'_>,
) -> Result<Option<(u32, u64)>> {
    let last_nonempty = if tolerate_tail {
        last_nonempty(dir, segs)?.map(|(s, _)| s)
    } else {
        None
    };
    for &seg in segs {
        let (path, mut r) = open_reader(dir, seg)?;
        loop {
            let e = match r.next_record() {
                Ok(Some(rec)) => {
                    f(seg, r.record_offset(), &rec)?;
                    continue;
                }
                Ok(None) => break,
                Err(e) => e,
            };
            let (offset, expected, found) = damage_or_error(e, dir, seg, &path)?;
            if last_nonempty == Some(seg) {
                tracing::warn!(
                    segment = seg,
                    offset,
                    expected = %expected,
                    found = %found,
                    "WAL replay stopped at a damaged tail of the last segment"
                );
                return Ok(Some((seg, offset)));
            }
            return Err(WalError::Corruption {
                dir: dir.to_path_buf(),
                segment: seg,
                offset,
                expected,
                found,
            });
        }
    }
    Ok(None)
}

/// Replays raw record bytes: the newest checkpoint, then the segments after
/// it. `f` gets each record's bytes. A missing `dir` replays nothing.
pub fn replay_raw(dir: &Path, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<ReplayStats> {
    replay_raw_located(dir, &mut |_, _, _, rec| f(rec))
}

/// Replays decoded records: the newest checkpoint, then the segments after
/// it (see the module docs). Errors from `f` abort the replay and are
/// returned as they are; wrap foreign errors with [`WalError::consumer`].
pub fn replay(dir: &Path, mut f: impl FnMut(Record) -> Result<()>) -> Result<ReplayStats> {
    replay_with_progress(dir, |_, rec| f(rec))
}

/// [`replay()`], telling `f` with each record how far the replay has got,
/// for progress reports on long replays.
///
/// The segments are read, checked and decompressed on a thread of their
/// own, a few MiB ahead, while this thread decodes and calls `f`: a large
/// replay then takes as long as the slower of the two, not their sum. What
/// `f` sees, and in what order, and what is returned when a segment or
/// `f` fails, are as if one thread did both.
pub fn replay_with_progress(
    dir: &Path,
    mut f: impl FnMut(Progress, Record) -> Result<()>,
) -> Result<ReplayStats> {
    std::thread::scope(|sc| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
        let reader = sc.spawn(move || read_ahead(dir, &tx));
        let mut counts = ReplayStats::default();
        let mut failed = None;
        'batches: for batch in rx.iter() {
            let mut from = 0;
            for loc in &batch.recs {
                let bytes = batch.bytes.get(from..loc.end).unwrap_or_default();
                from = loc.end;
                if let Err(e) = decode_one(&batch.dir, loc, bytes, &mut counts, &mut f) {
                    failed = Some(e);
                    break 'batches;
                }
            }
        }
        // The reader's next hand-over fails, and it stops.
        drop(rx);
        let read = reader.join();
        let mut stats = match (failed, read) {
            (Some(e), _) => return Err(e),
            (None, Ok(r)) => r?,
            (None, Err(_)) => return Err(WalError::consumer("the WAL reading thread panicked")),
        };
        stats.series = counts.series;
        stats.samples = counts.samples;
        stats.tombstones = counts.tombstones;
        stats.metadata = counts.metadata;
        stats.exemplars = counts.exemplars;
        stats.histograms = counts.histograms;
        stats.unknown_records = counts.unknown_records;
        Ok(stats)
    })
}

/// Record bytes handed over at once by [`read_ahead`] (a batch is cut at
/// the first record past this, and where the directory changes).
const BATCH_BYTES: usize = 1 << 20;
/// Batches read ahead of the decoding.
const BATCHES_AHEAD: usize = 4;

/// Consecutive records of one directory, their bytes end to end.
struct Batch {
    dir: PathBuf,
    bytes: Vec<u8>,
    recs: Vec<Loc>,
}

/// Where a record of a [`Batch`] came from, and where its bytes end.
struct Loc {
    seg: u32,
    off: u64,
    at: Progress,
    end: usize,
}

/// Reads every record (see [`replay_raw_located`]) into batches sent to
/// `tx`; stops with an error when the receiver is gone.
fn read_ahead(dir: &Path, tx: &std::sync::mpsc::SyncSender<Batch>) -> Result<ReplayStats> {
    let gone = || WalError::consumer("the WAL decoding stopped");
    let mut cur: Option<Batch> = None;
    let stats = replay_raw_located(dir, &mut |seg, off, at, bytes| {
        if cur
            .as_ref()
            .is_some_and(|b| b.dir != seg.0 || b.bytes.len() >= BATCH_BYTES)
        {
            if let Some(b) = cur.take() {
                tx.send(b).map_err(|_| gone())?;
            }
        }
        let b = cur.get_or_insert_with(|| Batch {
            dir: seg.0.to_path_buf(),
            bytes: Vec::with_capacity(BATCH_BYTES + (BATCH_BYTES >> 2)),
            recs: Vec::new(),
        });
        b.bytes.extend_from_slice(bytes);
        b.recs.push(Loc {
            seg: seg.1,
            off,
            at,
            end: b.bytes.len(),
        });
        Ok(())
    })?;
    if let Some(b) = cur.take() {
        tx.send(b).map_err(|_| gone())?;
    }
    Ok(stats)
}

/// Decodes one record read from `dir`, counts it and hands it to `f`.
fn decode_one(
    dir: &Path,
    loc: &Loc,
    bytes: &[u8],
    counts: &mut ReplayStats,
    f: &mut impl FnMut(Progress, Record) -> Result<()>,
) -> Result<()> {
    match decode(bytes) {
        Ok(rec) => {
            match &rec {
                Record::Series(v) => counts.series += v.len() as u64,
                Record::Samples(v) => counts.samples += v.len() as u64,
                Record::Tombstones(v) => counts.tombstones += v.len() as u64,
                Record::Metadata(v) => counts.metadata += v.len() as u64,
                Record::Exemplars(v) => counts.exemplars += v.len() as u64,
                Record::MmapMarkers(_) => {}
                Record::Histograms { samples, .. } => counts.histograms += samples.len() as u64,
                Record::FloatHistograms { samples, .. } => {
                    counts.histograms += samples.len() as u64
                }
            }
            f(loc.at, rec)
        }
        Err(WalError::UnknownRecordType { .. }) => {
            counts.unknown_records += 1;
            Ok(())
        }
        Err(WalError::RecordCorrupt {
            offset,
            expected,
            found,
        }) => Err(WalError::Corruption {
            dir: dir.to_path_buf(),
            segment: loc.seg,
            offset: loc.off,
            expected,
            found: format!("{found} (byte {offset} of the record)"),
        }),
        Err(e) => Err(e),
    }
}

/// Like [`replay_raw`], but tells `f` the directory and segment each record
/// came from and its offset there.
fn replay_raw_located(dir: &Path, f: &mut LocatedVisitor<'_>) -> Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    if !dir.exists() {
        return Ok(stats);
    }
    let listing = list(dir)?;
    let cp = listing.checkpoints.last().copied();
    let segs: Vec<u32> = listing
        .segments
        .iter()
        .copied()
        .filter(|&s| cp.is_none_or(|c| s > c))
        .collect();
    let cp_dir_segs = match cp {
        Some(c) => {
            let cdir = dir.join(checkpoint_name(c));
            let inner = list(&cdir)?;
            Some((c, cdir, inner.segments))
        }
        None => None,
    };
    let cp_len = cp_dir_segs.as_ref().map_or(0, |(_, _, s)| s.len());
    let total = u32::try_from(cp_len + segs.len()).unwrap_or(u32::MAX);
    // Segments are consecutive (checked before reading), so a segment's
    // position is its distance from the first.
    let range = segs.first().copied().zip(segs.last().copied());
    let at = |base: usize, first: Option<&u32>, seg: u32, in_wal: bool| Progress {
        segments_done: u32::try_from(base)
            .unwrap_or(u32::MAX)
            .saturating_add(seg.saturating_sub(first.copied().unwrap_or(seg))),
        segments_total: total,
        segments: range,
        segment: in_wal.then_some(seg),
    };
    if let Some((c, cdir, inner)) = &cp_dir_segs {
        check_consecutive(cdir, inner)?;
        read_segments(cdir, inner, false, &mut |seg, off, rec| {
            stats.records += 1;
            f((cdir, seg), off, at(0, inner.first(), seg, false), rec)
        })?;
        stats.checkpoint = Some(*c);
    }
    check_consecutive(dir, &segs)?;
    if let (Some(c), Some(&first)) = (cp, segs.first()) {
        if Some(first) != c.checked_add(1) {
            return Err(WalError::SegmentGap {
                dir: dir.to_path_buf(),
                expected: c.saturating_add(1),
                found: first,
            });
        }
    }
    if let (Some(&a), Some(&b)) = (segs.first(), segs.last()) {
        stats.segments = Some((a, b));
    }
    stats.torn_tail = read_segments(dir, &segs, true, &mut |seg, off, rec| {
        stats.records += 1;
        f((dir, seg), off, at(cp_len, segs.first(), seg, true), rec)
    })?;
    Ok(stats)
}
