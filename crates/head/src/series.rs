//! One series held by the head: its full chunks (on disk, or in memory when
//! writing them failed), its open chunk, its out-of-order samples and the
//! append ids of its recent samples (see [`crate::isolation`]).
//!
//! Contracts:
//! - In-order chunks are sorted, do not overlap, and never cross a multiple
//!   of the chunk range; they are cut where Prometheus cuts them (see
//!   [`crate::cut`]), so a chunk holds at most `2 × samples_per_chunk`
//!   samples.
//! - All time bounds are inclusive.
//! - Out-of-order samples live apart (a sorted buffer with append ids, then
//!   encoded chunks that may overlap anything); readers merge them in, and
//!   where an out-of-order sample and an in-order one share a timestamp the
//!   in-order one wins.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cairn_model::{Labels, Sample};
use cairn_storage::StorageError;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::cut::{CutPolicy, OpenState};
use crate::disk_chunks::DiskChunks;
use crate::hist::HistData;
use crate::isolation::IsoState;
use crate::xor::{self, Chunk};

/// Where a full in-order chunk's bytes are.
///
/// Sixteen bytes: the rare in-memory case is boxed twice so that the common
/// one does not pay for a slice's length (see [`FullChunk`]).
#[derive(Debug)]
pub(crate) enum Stored {
    /// In the head chunk files, by reference.
    Disk(u64),
    /// Kept in memory because writing it to the chunk files failed.
    Mem(Box<Box<[u8]>>),
}

impl Stored {
    /// Chunk bytes kept in memory.
    pub(crate) fn mem(bytes: &[u8]) -> Self {
        Stored::Mem(Box::new(bytes.into()))
    }
}

/// A full in-order chunk: 32 bytes, held in a list with no spare capacity
/// (see [`SeriesData::push_full`]), since every series of the head keeps a
/// few of them.
#[derive(Debug)]
pub(crate) struct FullChunk {
    pub stored: Stored,
    pub mint: i64,
    pub maxt: i64,
}

/// The chunk being appended to.
///
/// Its settled front may live in a spill slot (see [`crate::spill`]):
/// `chunk.drained()` bytes in `slot`, the rest in `chunk`'s buffer, which
/// then stays within [`SPILL_TAIL`] bytes. [`OpenChunk::bytes_into`] puts
/// the two together; [`OpenChunk::release`] frees the slot, and every path
/// that drops an open chunk goes through it.
#[derive(Debug)]
pub(crate) struct OpenChunk {
    pub chunk: Chunk,
    pub mint: i64,
    /// First timestamp that goes into the next chunk: the end of the chunk
    /// range at first, moved earlier by the estimate (see [`crate::cut`]).
    pub next_at: i64,
    /// Spill slot of the drained prefix; 0 when nothing was spilled.
    pub slot: u64,
}

/// Bytes of an open chunk kept in memory when spilling: the settled front
/// is spilled before an append could grow the buffer past this, its
/// initial capacity. 104 bytes is what glibc's 112-byte block holds, so
/// the buffer costs 112 bytes; each spill then moves about 84 bytes
/// (20 are kept free for the next sample), one write every ~20 samples.
pub(crate) const SPILL_TAIL: usize = 104;

impl OpenChunk {
    pub(crate) fn new(mint: i64, next_at: i64) -> Self {
        Self {
            chunk: Chunk::with_capacity(SPILL_TAIL),
            mint,
            next_at,
            slot: 0,
        }
    }

    /// Newest timestamp (the chunk's encoder keeps it; an open chunk always
    /// holds a sample).
    pub(crate) fn maxt(&self) -> i64 {
        self.chunk.last().map_or(self.mint, |(t, _)| t)
    }

    /// The whole chunk's bytes (spilled prefix and buffer) into `out`,
    /// replacing its contents.
    pub(crate) fn bytes_into(&self, disk: &DiskChunks, out: &mut Vec<u8>) -> crate::Result<()> {
        out.clear();
        if self.chunk.drained() == 0 {
            out.extend_from_slice(self.chunk.bytes());
            return Ok(());
        }
        let spill = disk.spill().ok_or_else(|| crate::HeadError::Io {
            context: "reading a spilled open chunk".into(),
            source: std::io::Error::other("spilling is off"),
        })?;
        spill.read(self.slot, self.chunk.drained(), out)?;
        self.chunk.join(out);
        Ok(())
    }

    /// The whole chunk's bytes (see [`OpenChunk::bytes_into`]).
    pub(crate) fn to_bytes(&self, disk: &DiskChunks) -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.bytes_into(disk, &mut out)?;
        Ok(out)
    }

    /// Moves the settled front of the buffer to the spill slot when the
    /// next append could outgrow [`SPILL_TAIL`]. `per_chunk` is the target
    /// number of samples per chunk, to size the slot once. A failed write
    /// keeps the bytes in memory (the buffer grows) and is reported once.
    fn spill_if_full(&mut self, disk: &DiskChunks, series: u64, per_chunk: usize) {
        let Some(spill) = disk.spill() else { return };
        let len = self.chunk.bytes().len();
        if len + cairn_codec::XOR_MAX_SAMPLE_BYTES <= SPILL_TAIL {
            return;
        }
        let n = self.chunk.settled();
        let at = self.chunk.drained();
        let Some(bytes) = self.chunk.bytes().get(..n) else {
            return;
        };
        let samples = self.chunk.num_samples().max(1);
        let so_far = at + len;
        // Expected final size, with an eighth to spare.
        let want = so_far * samples.max(per_chunk) / samples * 9 / 8;
        match spill.write(&mut self.slot, at, bytes, want) {
            Ok(()) => {
                self.chunk.drain_front(n);
                // A buffer that grew (a rewritten chunk, failed spills)
                // goes back to the tail's size.
                if self.chunk.capacity() > 2 * SPILL_TAIL {
                    self.chunk.shrink_to(SPILL_TAIL);
                }
            }
            Err(e) => spill.report_failure(series, &e),
        }
    }

    /// Frees the spill slot; the chunk is being dropped or replaced.
    pub(crate) fn release(&mut self, disk: &DiskChunks) {
        if self.slot != 0 {
            if let Some(spill) = disk.spill() {
                spill.free(self.slot);
            }
            self.slot = 0;
        }
    }
}

/// Out-of-order data of a series.
#[derive(Debug, Default)]
pub(crate) struct Ooo {
    /// Unencoded samples sorted by time, each with its append id.
    pub buf: Vec<(i64, f64, u64)>,
    /// Encoded chunks, each sorted; they may overlap each other.
    pub chunks: Vec<(Chunk, i64, i64)>,
}

/// The mutable part of a series.
#[derive(Debug, Default)]
pub(crate) struct SeriesData {
    pub full: Vec<FullChunk>,
    pub open: Option<OpenChunk>,
    /// Value of the newest in-order sample.
    pub last_v: f64,
    /// Runs of recent in-order samples: (append id, first timestamp).
    pub txs: SmallVec<[(u64, i64); 1]>,
    pub ooo: Option<Box<Ooo>>,
    /// Native histogram chunks, for the few series that have them.
    pub hist: Option<Box<HistData>>,
}

/// A series of the head.
///
/// `repr(C)` with the pin count first puts it on the cache line of the
/// `Arc`'s reference counts: pinning a series for an appender then costs
/// one cache miss, not two.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct MemSeries {
    /// Appenders holding staged samples for this series; truncation never
    /// drops a series while this is non-zero.
    pub pending: AtomicU32,
    /// Whether the series' record is in the WAL.
    pub logged: AtomicBool,
    pub r: u64,
    pub labels: Labels,
    pub data: Mutex<SeriesData>,
}

/// Where a sample goes, decided by [`SeriesData::placement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    InOrder,
    Ooo,
    /// Out of order and older than the last truncation (a range already
    /// in blocks): kept with the out-of-order data, logged to the
    /// out-of-order log, and written to blocks of its own (see `late`).
    Late,
    /// Same timestamp and value as a stored sample: nothing to do.
    Duplicate,
    /// Out of order, with the timestamp of a buffered out-of-order sample
    /// but another value: dropped and counted, as Prometheus drops it at
    /// commit (only the newest in-order sample refuses a conflict).
    Conflict,
}

/// The head-wide figures an append is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendBounds {
    /// Oldest in-order timestamp accepted (see `Head::appendable_min_valid_time`).
    pub min_valid: i64,
    /// Oldest timestamp the head holds at all (the last truncation point).
    pub truncated_before: i64,
    pub head_max: i64,
    pub ooo_window: i64,
}

/// Settings a series needs to append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkPolicy {
    pub cut: CutPolicy,
    pub ooo_capacity: usize,
}

/// The commit a sample belongs to: its append id and the isolation low
/// watermark when the commit started applying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tx {
    pub id: u64,
    pub low_watermark: u64,
}

/// What an append changed, for head-wide counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Applied {
    pub chunks_created: u64,
    /// Whether an out-of-order insert added the sample (false: a sample
    /// with its timestamp was buffered already).
    pub inserted: bool,
    /// Not added, and the buffered sample has another value.
    pub conflict: bool,
}

impl MemSeries {
    pub(crate) fn new(r: u64, labels: Labels) -> Self {
        Self {
            r,
            labels,
            pending: AtomicU32::new(0),
            logged: AtomicBool::new(false),
            data: Mutex::new(SeriesData::default()),
        }
    }

    pub(crate) fn pin(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn unpin(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn is_pinned(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Hints the CPU to bring the series' memory (with the `Arc`'s counts
    /// before it) into the cache, for writing when `w` (see [`prefetch_line`]):
    /// appenders call it a few samples ahead so that the misses of
    /// consecutive samples overlap. Reads nothing.
    pub(crate) fn prefetch(&self, w: bool) {
        let start = (self as *const Self).cast::<u8>().wrapping_sub(16);
        let len = std::mem::size_of::<Self>() + 16;
        let mut off = 0;
        while off < len {
            prefetch_line(start.wrapping_add(off), w);
            off += 64;
        }
    }
}

/// Whether the CPU has PREFETCHW (CPUID leaf 0x8000_0001, ECX bit 8), which
/// fetches a line ready to be written: without it a line another core last
/// wrote arrives shared and the first store to it waits again. False under
/// Miri, which has no CPUID.
pub(crate) fn has_prefetchw() -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[allow(unused_unsafe)]
    // SAFETY: every x86-64 CPU has CPUID, and leaf 0x8000_0001 is only read
    // when the highest extended leaf includes it.
    unsafe {
        use std::arch::x86_64::__cpuid;
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && (__cpuid(0x8000_0001).ecx >> 8) & 1 == 1
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    false
}

/// Prefetches the cache line holding `p` (no-op off x86-64, and under Miri,
/// which runs no inline assembly); with `w`, for writing, which callers may
/// only ask for when [`has_prefetchw`] is true.
#[inline(always)]
pub(crate) fn prefetch_line(p: *const u8, w: bool) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if w {
        // SAFETY: a prefetch never faults and changes no memory or flags;
        // `p` need not point to anything valid. The caller checked that the
        // CPU has the instruction.
        unsafe {
            std::arch::asm!("prefetchw byte ptr [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
        }
    } else {
        // SAFETY: as above; SSE is part of x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
        }
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = (p, w);
}

/// Prefetches the cache lines of `len` bytes from `p`, at most `max_lines`
/// of them (a hint: nothing is read).
#[inline]
pub(crate) fn prefetch_bytes(p: *const u8, len: usize, max_lines: usize) {
    const LINE: usize = 64;
    let lines = len.div_ceil(LINE).min(max_lines);
    for i in 0..lines {
        prefetch_line(p.wrapping_add(i * LINE), false);
    }
}

/// Prefetches the record of `s`: its `Arc`'s reference counts (just
/// before the value), pin count, labels handle, lock and chunk-list and
/// open-chunk headers. Readers call it a few series ahead.
#[inline]
pub(crate) fn prefetch_record(s: &std::sync::Arc<MemSeries>) {
    const COUNTS: usize = 16;
    let p = std::sync::Arc::as_ptr(s).cast::<u8>().wrapping_sub(COUNTS);
    prefetch_bytes(p, COUNTS + std::mem::size_of::<MemSeries>(), 6);
}

impl SeriesData {
    /// Appends a full chunk, growing the list by exactly one: cuts are
    /// rare (one per series every ~120 samples), slack would be per series.
    pub(crate) fn push_full(&mut self, c: FullChunk) {
        self.full.reserve_exact(1);
        self.full.push(c);
    }

    /// Newest in-order timestamp, float or histogram, if any.
    pub(crate) fn max_time(&self) -> Option<i64> {
        let f = self.float_max_time();
        match &self.hist {
            Some(h) => f.max(h.max_time()),
            None => f,
        }
    }

    /// Newest in-order float timestamp, if any.
    pub(crate) fn float_max_time(&self) -> Option<i64> {
        match &self.open {
            Some(o) => Some(o.maxt()),
            None => self.full.last().map(|c| c.maxt),
        }
    }

    /// Newest histogram timestamp, if any.
    pub(crate) fn hist_max_time(&self) -> Option<i64> {
        self.hist.as_ref().and_then(|h| h.max_time())
    }

    /// The address of the open chunk's last byte (0 without one): where
    /// the next in-order append writes. Appenders note it while staging
    /// and prefetch it a few samples ahead of applying; it is only a hint
    /// and may be stale by then.
    pub(crate) fn append_hint(&self) -> usize {
        self.open.as_ref().map_or(0, |o| {
            let b = o.chunk.bytes();
            (b.as_ptr() as usize).wrapping_add(b.len().saturating_sub(1))
        })
    }

    /// Newest timestamp held, in order or not.
    pub(crate) fn max_time_all(&self) -> Option<i64> {
        let a = self.max_time();
        let b = self.ooo.as_ref().and_then(|o| {
            let x = o.buf.last().map(|s| s.0);
            let y = o.chunks.iter().map(|c| c.2).max();
            x.max(y)
        });
        a.max(b).max(self.ooo_hist_bounds().map(|x| x.2))
    }

    /// True when the series holds no sample.
    pub(crate) fn is_empty(&self) -> bool {
        self.full.is_empty()
            && self.open.is_none()
            && self
                .ooo
                .as_ref()
                .is_none_or(|o| o.buf.is_empty() && o.chunks.is_empty())
            && self.hist.as_ref().is_none_or(|h| h.is_empty())
    }

    /// Decides where a sample goes, following Prometheus's rules: newer
    /// than the series' newest sample goes in order; the same timestamp is a
    /// no-op with the same value and an error otherwise; older samples go to
    /// the out-of-order buffer when within the window, else are rejected.
    /// `staged` is the newest sample the caller already staged for the series.
    pub(crate) fn placement(
        &self,
        t: i64,
        v: f64,
        b: &AppendBounds,
        staged: Option<(i64, f64)>,
    ) -> Result<Placement, StorageError> {
        // A histogram at or after `t`: the float is a duplicate of a
        // histogram's timestamp, or out of order.
        let hist_newer = self.hist_max_time().is_some_and(|h| t <= h);
        if hist_newer && self.hist_max_time() == Some(t) {
            return Err(StorageError::DuplicateSampleForTimestamp { t });
        }
        if t >= b.min_valid && !hist_newer {
            let mut newest = self.float_max_time().map(|m| (m, self.last_v));
            if let Some((st, sv)) = staged {
                if newest.is_none_or(|(m, _)| st > m) {
                    newest = Some((st, sv));
                }
            }
            match newest {
                None => return Ok(Placement::InOrder),
                Some((m, _)) if t > m => return Ok(Placement::InOrder),
                Some((m, lv)) if t == m => {
                    return if lv.to_bits() == v.to_bits() {
                        Ok(Placement::Duplicate)
                    } else {
                        Err(StorageError::DuplicateSampleForTimestamp { t })
                    };
                }
                Some(_) => {}
            }
        }
        if b.ooo_window > 0 {
            if t < b.head_max.saturating_sub(b.ooo_window) {
                return Err(StorageError::TooOldSample { t });
            }
            if let Some(o) = &self.ooo {
                if let Ok(i) = o.buf.binary_search_by_key(&t, |s| s.0) {
                    let same = o.buf.get(i).is_some_and(|s| s.1.to_bits() == v.to_bits());
                    return Ok(if same {
                        Placement::Duplicate
                    } else {
                        Placement::Conflict
                    });
                }
            }
            return Ok(if t < b.truncated_before {
                Placement::Late
            } else {
                Placement::Ooo
            });
        }
        if t < b.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: b.min_valid,
            });
        }
        Err(StorageError::OutOfOrderSample { t })
    }

    /// Appends an in-order sample (the caller checked [`Self::placement`]),
    /// cutting a new chunk where Prometheus would (see [`crate::cut`]).
    /// Full chunks go to `disk`; if that fails they stay in memory.
    pub(crate) fn append_in_order(
        &mut self,
        series: u64,
        t: i64,
        v: f64,
        tx: Tx,
        policy: &ChunkPolicy,
        disk: &DiskChunks,
    ) -> Applied {
        let mut applied = Applied::default();
        if let Some(h) = &mut self.hist {
            // The kind changed: the histogram chunk ends here.
            h.close_open(crate::hist::Store { disk, series });
        }
        let must_cut = self.open.as_mut().is_some_and(|o| {
            let mut st = OpenState {
                mint: o.mint,
                maxt: o.maxt(),
                samples: o.chunk.num_samples(),
                next_at: o.next_at,
            };
            let cut = policy.cut.cuts_before(&mut st, t);
            o.next_at = st.next_at;
            cut
        });
        if must_cut {
            if let Some(mut o) = self.open.take() {
                self.cut_open(series, &mut o, disk);
            }
        }
        let open = self.open.get_or_insert_with(|| {
            applied.chunks_created += 1;
            OpenChunk::new(t, policy.cut.start(t).next_at)
        });
        open.spill_if_full(disk, series, policy.cut.samples_per_chunk);
        open.chunk.append(t, v);
        self.last_v = v;
        // Forget runs every reader can see. The current id is still open,
        // so it is never below the low watermark.
        while self.txs.first().is_some_and(|x| x.0 < tx.low_watermark) {
            self.txs.remove(0);
        }
        if self.txs.last().is_none_or(|x| x.0 != tx.id) {
            self.txs.push((tx.id, t));
        }
        applied
    }

    /// Moves the open chunk `o`, just taken off, to the full chunks: into
    /// the chunk files, or kept in memory if writing them fails.
    pub(crate) fn cut_open(&mut self, series: u64, o: &mut OpenChunk, disk: &DiskChunks) {
        let bytes = o.to_bytes(disk);
        o.release(disk);
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                // Only an unreadable spill file gets here: the WAL still has
                // the samples, but this run cannot serve them.
                tracing::error!(series, error = %e, "reading a spilled open chunk failed; dropping the chunk");
                return;
            }
        };
        let stored = match disk.write(series, o.mint, o.maxt(), &bytes) {
            Ok(r) => Stored::Disk(r),
            Err(e) => {
                tracing::error!(series, error = %e, "writing a full head chunk failed; keeping it in memory");
                Stored::mem(&bytes)
            }
        };
        self.push_full(FullChunk {
            stored,
            mint: o.mint,
            maxt: o.maxt(),
        });
    }

    /// Writes the open chunk to the chunk files as a full chunk, as if it
    /// had filled up (the head snapshot needs every sample in a file).
    pub(crate) fn seal_open(&mut self, series: u64, disk: &DiskChunks) {
        if let Some(mut o) = self.open.take() {
            self.cut_open(series, &mut o, disk);
        }
    }

    /// Drops the open chunk, freeing its spill slot.
    pub(crate) fn drop_open(&mut self, disk: &DiskChunks) {
        if let Some(mut o) = self.open.take() {
            o.release(disk);
        }
    }

    /// Inserts an out-of-order sample (the caller checked [`Self::placement`]).
    /// The buffer is encoded into a chunk once it holds `ooo_capacity`
    /// samples that every reader can see.
    pub(crate) fn insert_ooo(&mut self, t: i64, v: f64, tx: Tx, policy: &ChunkPolicy) -> Applied {
        let mut applied = Applied::default();
        let o = self.ooo.get_or_insert_with(Default::default);
        match o.buf.binary_search_by_key(&t, |s| s.0) {
            Ok(i) => {
                applied.conflict = o.buf.get(i).is_some_and(|s| s.1.to_bits() != v.to_bits());
                return applied;
            }
            Err(i) => o.buf.insert(i, (t, v, tx.id)),
        }
        applied.inserted = true;
        if o.buf.len() >= policy.ooo_capacity {
            // Encode the samples every reader sees; samples of commits still
            // being applied keep their append ids in the buffer.
            let samples: Vec<Sample> = o
                .buf
                .iter()
                .filter(|s| s.2 < tx.low_watermark)
                .map(|s| Sample::new(s.0, s.1))
                .collect();
            if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                let (mint, maxt) = (first.t, last.t);
                o.chunks.push((xor::encode(&samples), mint, maxt));
                o.buf.retain(|s| s.2 >= tx.low_watermark);
                applied.chunks_created += 1;
            }
        }
        applied
    }

    /// Largest in-order timestamp visible under `iso` (`i64::MAX` when all are).
    pub(crate) fn visible_cut(&self, iso: &IsoState) -> i64 {
        for &(id, t) in &self.txs {
            if !iso.visible(id) {
                return t.saturating_sub(1);
            }
        }
        i64::MAX
    }

    /// Drops data older than `mint`: whole in-order chunks ending before it
    /// and out-of-order samples in `[late_below, mint)` (those older than
    /// `late_below`, the previous truncation point, are late samples not
    /// yet in blocks: they stay). Returns the number of chunks dropped.
    pub(crate) fn truncate(
        &mut self,
        series: u64,
        mint: i64,
        late_below: i64,
        disk: &DiskChunks,
    ) -> u64 {
        let before = self.full.len();
        self.full.retain(|c| c.maxt >= mint);
        self.full.shrink_to_fit();
        let mut dropped = (before - self.full.len()) as u64;
        if self.open.as_ref().is_some_and(|o| o.maxt() < mint) {
            self.drop_open(disk);
            self.txs.clear();
            dropped += 1;
        }
        dropped += self.drop_ooo(series, late_below, mint).1;
        self.drop_ooo_hist(late_below, mint);
        if let Some(h) = &mut self.hist {
            dropped += h.truncate_before(mint) as u64;
            if h.is_empty() {
                self.hist = None;
            }
        }
        dropped
    }

    /// Drops the out-of-order samples in `[lo, hi)`, re-encoding chunks
    /// that hold samples on both sides. Returns the samples and the chunks
    /// dropped. A chunk that fails to decode is kept whole (and logged).
    pub(crate) fn drop_ooo(&mut self, series: u64, lo: i64, hi: i64) -> (u64, u64) {
        let Some(o) = self.ooo.as_mut() else {
            return (0, 0);
        };
        if lo >= hi {
            return (0, 0);
        }
        let n = o.buf.len();
        o.buf.retain(|s| s.0 < lo || s.0 >= hi);
        let mut samples = (n - o.buf.len()) as u64;
        let mut chunks = 0u64;
        let mut kept = Vec::with_capacity(o.chunks.len());
        for (c, cmin, cmax) in std::mem::take(&mut o.chunks) {
            if cmax < lo || cmin >= hi {
                kept.push((c, cmin, cmax));
                continue;
            }
            let mut all = Vec::new();
            match xor::decode_into(c.bytes(), &mut all, series) {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(series, error = %e, "undecodable out-of-order chunk kept");
                    kept.push((c, cmin, cmax));
                    continue;
                }
            };
            let rest: Vec<Sample> = all
                .iter()
                .copied()
                .filter(|s| s.t < lo || s.t >= hi)
                .collect();
            samples += (all.len() - rest.len()) as u64;
            match (rest.first(), rest.last()) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a.t, b.t);
                    kept.push((xor::encode(&rest), a, b));
                }
                _ => chunks += 1,
            }
        }
        o.chunks = kept;
        if o.buf.is_empty() && o.chunks.is_empty() {
            self.ooo = None;
        }
        (samples, chunks)
    }

    /// Every out-of-order sample at or after `from`, sorted, one per
    /// timestamp (a chunk that fails to decode is skipped and logged).
    pub(crate) fn ooo_from(&self, series: u64, from: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        let Some(o) = &self.ooo else { return out };
        let mut buf = Vec::new();
        for (c, _, cmax) in &o.chunks {
            if *cmax < from {
                continue;
            }
            match xor::decode_into(c.bytes(), &mut buf, series) {
                Ok(()) => out.extend(buf.iter().filter(|s| s.t >= from)),
                Err(e) => tracing::error!(series, error = %e, "undecodable out-of-order chunk"),
            }
        }
        out.extend(
            o.buf
                .iter()
                .filter(|s| s.0 >= from)
                .map(|s| Sample::new(s.0, s.1)),
        );
        out.sort_by_key(|s| s.t);
        out.dedup_by_key(|s| s.t);
        out
    }

    /// Oldest timestamp held, in order or not.
    pub(crate) fn min_time_all(&self) -> Option<i64> {
        let a = self
            .full
            .first()
            .map(|c| c.mint)
            .or(self.open.as_ref().map(|o| o.mint));
        let b = self.ooo.as_ref().and_then(|o| {
            let x = o.buf.first().map(|s| s.0);
            let y = o.chunks.iter().map(|c| c.1).min();
            match (x, y) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            }
        });
        let c = self.ooo_hist_bounds().map(|x| x.1);
        [a, b, c].into_iter().flatten().min()
    }

    /// Time spans `(mint, maxt)`, inclusive, that hold the out-of-order
    /// samples older than `below` (a chunk's span may include gaps).
    pub(crate) fn late_spans(&self, below: i64, out: &mut Vec<(i64, i64)>) {
        self.late_hist_spans(below, out);
        let Some(o) = &self.ooo else { return };
        for s in o.buf.iter().take_while(|s| s.0 < below) {
            out.push((s.0, s.0));
        }
        for (_, cmin, cmax) in &o.chunks {
            if *cmin < below {
                out.push((*cmin, (*cmax).min(below.saturating_sub(1))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::Isolation;

    #[test]
    fn visible_cut_follows_the_first_invisible_run() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _) = DiskChunks::open(dir.path(), None, true).unwrap();
        let policy = ChunkPolicy {
            cut: CutPolicy {
                chunk_range: 1000,
                samples_per_chunk: 120,
            },
            ooo_capacity: 4,
        };
        let iso = Isolation::default();
        let mut d = SeriesData::default();
        let a = iso.begin_append();
        for t in 0..3 {
            d.append_in_order(
                1,
                t,
                0.0,
                Tx {
                    id: a,
                    low_watermark: iso.low_watermark(),
                },
                &policy,
                &disk,
            );
        }
        iso.close_append(a);
        let b = iso.begin_append();
        d.append_in_order(
            1,
            10,
            0.0,
            Tx {
                id: b,
                low_watermark: iso.low_watermark(),
            },
            &policy,
            &disk,
        );
        let during = iso.reader();
        iso.close_append(b);
        let after = iso.reader();
        let c = iso.begin_append();
        d.append_in_order(
            1,
            20,
            0.0,
            Tx {
                id: c,
                low_watermark: iso.low_watermark(),
            },
            &policy,
            &disk,
        );
        d.insert_ooo(
            5,
            0.0,
            Tx {
                id: c,
                low_watermark: iso.low_watermark(),
            },
            &policy,
        );
        iso.close_append(c);
        assert_eq!(d.visible_cut(&during), 9);
        assert_eq!(d.visible_cut(&after), 19);
        let o = d.ooo.as_ref().unwrap();
        assert!(
            !after.visible(o.buf[0].2),
            "the ooo sample of a later commit is hidden"
        );
        iso.release(&during);
        iso.release(&after);
        // With no reader left, old runs are forgotten on the next append.
        let e = iso.begin_append();
        d.append_in_order(
            1,
            30,
            0.0,
            Tx {
                id: e,
                low_watermark: iso.low_watermark(),
            },
            &policy,
            &disk,
        );
        iso.close_append(e);
        assert_eq!(d.txs.len(), 1);
        assert_eq!(d.visible_cut(&iso.reader()), i64::MAX);
    }

    #[test]
    fn placement_rules() {
        let mut d = SeriesData::default();
        let b = AppendBounds {
            min_valid: 100,
            truncated_before: 50,
            head_max: 1000,
            ooo_window: 0,
        };
        assert!(matches!(
            d.placement(99, 1.0, &b, None),
            Err(StorageError::OutOfBounds { .. })
        ));
        assert_eq!(d.placement(100, 1.0, &b, None).unwrap(), Placement::InOrder);
        d.open = Some(OpenChunk::new(500, 1000));
        d.last_v = 2.0;
        assert!(matches!(
            d.placement(400, 1.0, &b, None),
            Err(StorageError::OutOfOrderSample { t: 400 })
        ));
        assert_eq!(
            d.placement(500, 2.0, &b, None).unwrap(),
            Placement::Duplicate
        );
        assert!(matches!(
            d.placement(500, 3.0, &b, None),
            Err(StorageError::DuplicateSampleForTimestamp { t: 500 })
        ));
        assert_eq!(
            d.placement(600, 1.0, &b, Some((700, 1.0)))
                .unwrap_err()
                .to_string(),
            StorageError::OutOfOrderSample { t: 600 }.to_string()
        );
        let w = AppendBounds {
            ooo_window: 600,
            ..b
        };
        assert_eq!(d.placement(400, 1.0, &w, None).unwrap(), Placement::Ooo);
        assert!(matches!(
            d.placement(399, 1.0, &w, None),
            Err(StorageError::TooOldSample { t: 399 })
        ));
        // Older than the last truncation, within the window: late.
        let wide = AppendBounds {
            ooo_window: 10_000,
            ..b
        };
        assert_eq!(d.placement(40, 1.0, &wide, None).unwrap(), Placement::Late);
        assert_eq!(d.placement(50, 1.0, &wide, None).unwrap(), Placement::Ooo);
        // A buffered out-of-order timestamp: the same value is a no-op,
        // another value a conflict (dropped, not refused).
        let policy = ChunkPolicy {
            cut: CutPolicy {
                chunk_range: 1000,
                samples_per_chunk: 120,
            },
            ooo_capacity: 32,
        };
        let tx = Tx {
            id: 1,
            low_watermark: 1,
        };
        assert!(d.insert_ooo(40, 1.0, tx, &policy).inserted);
        assert!(!d.insert_ooo(40, 5.0, tx, &policy).inserted);
        assert_eq!(
            d.placement(40, 1.0, &wide, None).unwrap(),
            Placement::Duplicate
        );
        assert_eq!(
            d.placement(40, 2.0, &wide, None).unwrap(),
            Placement::Conflict
        );
    }

    #[test]
    fn dropping_out_of_order_ranges_reencodes_straddling_chunks() {
        let mut d = SeriesData::default();
        let policy = ChunkPolicy {
            cut: CutPolicy {
                chunk_range: 1000,
                samples_per_chunk: 120,
            },
            ooo_capacity: 4,
        };
        let tx = Tx {
            id: 0,
            low_watermark: 1,
        };
        for t in [10, 20, 30, 40, 50, 60] {
            d.insert_ooo(t, t as f64, tx, &policy);
        }
        // One chunk of 10..40, 50 and 60 buffered.
        assert_eq!(d.ooo.as_ref().map(|o| o.chunks.len()), Some(1));
        let mut spans = Vec::new();
        d.late_spans(35, &mut spans);
        assert_eq!(spans, vec![(10, 34)]);
        assert_eq!(d.drop_ooo(7, 20, 35), (2, 0));
        let o = d.ooo.as_ref().unwrap();
        assert_eq!((o.chunks[0].1, o.chunks[0].2), (10, 40));
        let mut got = Vec::new();
        xor::decode_into(o.chunks[0].0.bytes(), &mut got, 7).unwrap();
        assert_eq!(got.iter().map(|s| s.t).collect::<Vec<_>>(), vec![10, 40]);
        assert_eq!(d.min_time_all(), Some(10));
        assert_eq!(d.drop_ooo(7, i64::MIN, 100), (4, 1));
        assert!(d.ooo.is_none());
    }
}
