//! Native histogram samples of a head series, kept beside its float chunks.
//!
//! Why a store of its own: the float path is tuned to the byte (32-byte
//! chunk entries, spill slots, the snapshot format), and histogram series
//! are few (a GPU cluster's series are nearly all floats). A series that
//! receives histograms gets a boxed [`HistData`]; every other series pays
//! one pointer for the possibility.
//!
//! Contracts:
//! - One time line per series: floats and histograms never share a
//!   timestamp, and in-order appends of either kind must be newer than the
//!   newest sample of both kinds (see `SeriesData::placement`). When the
//!   kind changes, the open chunk of the other kind is closed, as
//!   Prometheus cuts a chunk when the encoding changes, so chunks of the
//!   two kinds never overlap in time.
//! - Chunks are Prometheus's histogram encodings (2: integer counts, 3:
//!   float counts), appended with `cairn_codec`'s appenders, which recode
//!   for new buckets and start a new chunk, with the right counter-reset
//!   header, where Prometheus would (a reset, a schema change, a
//!   gauge/counter switch, a stale marker). Chunks never cross a multiple
//!   of the chunk range, are cut at twice the target sample count as float
//!   chunks are, and once they hold 1 KiB and at least 10 samples
//!   (Prometheus v3's `TargetBytesPerHistogramChunk` and
//!   `MinSamplesPerHistogramChunk`).
//! - Closed histogram chunks go to the head chunk files (`chunks_head/`,
//!   with their encoding byte, as Prometheus writes them), or stay in
//!   memory when writing fails; the open one is in memory.
//! - Histograms older than the series' newest sample (or than the head's
//!   in-order bound) are out of order: within the out-of-order window they
//!   are kept decoded beside the chunks (`HistData::ooo`, see `hist_ooo`),
//!   logged to `wbl/`, and reach blocks as late floats do; outside it they
//!   are refused, as Prometheus v3 does.
//! - All time bounds are inclusive.

use std::borrow::Cow;
use std::sync::Arc;

use cairn_codec::{
    float_histogram_decode, histogram_decode, AppendOutcome, CodecError, FloatHistogramChunk,
    HistogramChunk, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM,
};
use cairn_model::{FloatHistogram, Histogram};
use cairn_storage::{EncodedChunk, StorageError};

use crate::cut::{CutPolicy, OpenState};
use crate::disk_chunks::DiskChunks;
use crate::error::{HeadError, Result};
use crate::series::{AppendBounds, Applied, ChunkPolicy, Placement, SeriesData, Tx};

/// Bytes after which a histogram chunk is cut (with [`MIN_SAMPLES`]).
const TARGET_BYTES: usize = 1024;
/// Samples a histogram chunk holds at least before [`TARGET_BYTES`] cuts it.
const MIN_SAMPLES: usize = 10;

/// A histogram sample's value, integer or float counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HistValue {
    Int(Arc<Histogram>),
    Float(Arc<FloatHistogram>),
}

impl HistValue {
    /// The chunk encoding that holds it.
    pub(crate) fn encoding(&self) -> u8 {
        match self {
            HistValue::Int(_) => ENCODING_HISTOGRAM,
            HistValue::Float(_) => ENCODING_FLOAT_HISTOGRAM,
        }
    }
}

/// Where closed chunks go and are read from: the head's chunk files, as
/// chunks of `series`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Store<'a> {
    pub disk: &'a DiskChunks,
    pub series: u64,
}

impl Store<'_> {
    fn codec(&self, e: CodecError) -> HeadError {
        HeadError::Codec {
            series: self.series,
            source: Box::new(e),
        }
    }
}

/// Where a closed histogram chunk's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum HistBytes {
    /// In the head chunk files, by reference.
    Disk(u64),
    /// In memory: writing them failed, or a deletion rewrote them.
    Mem(Box<[u8]>),
}

/// A closed histogram chunk.
#[derive(Debug, Clone)]
pub(crate) struct HistFull {
    pub encoding: u8,
    pub stored: HistBytes,
    pub mint: i64,
    pub maxt: i64,
}

impl HistFull {
    /// The chunk's bytes (read from the chunk files when there).
    pub(crate) fn bytes<'a>(&'a self, st: Store<'_>) -> Result<Cow<'a, [u8]>> {
        match &self.stored {
            HistBytes::Mem(b) => Ok(Cow::Borrowed(b)),
            HistBytes::Disk(r) => Ok(Cow::Owned(st.disk.read(st.series, *r)?)),
        }
    }
}

#[derive(Debug)]
enum OpenKind {
    Int(HistogramChunk),
    Float(FloatHistogramChunk),
}

impl OpenKind {
    fn encoding(&self) -> u8 {
        match self {
            OpenKind::Int(_) => ENCODING_HISTOGRAM,
            OpenKind::Float(_) => ENCODING_FLOAT_HISTOGRAM,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            OpenKind::Int(c) => c.bytes(),
            OpenKind::Float(c) => c.bytes(),
        }
    }

    fn num_samples(&self) -> usize {
        match self {
            OpenKind::Int(c) => c.num_samples(),
            OpenKind::Float(c) => c.num_samples(),
        }
    }
}

/// The histogram chunk being appended to.
#[derive(Debug)]
pub(crate) struct HistOpen {
    kind: OpenKind,
    pub mint: i64,
    pub maxt: i64,
    next_at: i64,
}

/// A series' histogram chunks, oldest first, not overlapping, and its
/// out-of-order histograms (see `hist_ooo`).
#[derive(Debug, Default)]
pub(crate) struct HistData {
    pub full: Vec<HistFull>,
    pub open: Option<HistOpen>,
    /// Out-of-order histograms, sorted by time, one per timestamp: time,
    /// value and the append id of their commit.
    pub ooo: Vec<(i64, HistValue, u64)>,
}

impl HistData {
    /// Newest timestamp held.
    pub(crate) fn max_time(&self) -> Option<i64> {
        match &self.open {
            Some(o) => Some(o.maxt),
            None => self.full.last().map(|c| c.maxt),
        }
    }

    /// True when it holds no histogram, in order or not.
    pub(crate) fn is_empty(&self) -> bool {
        self.full.is_empty() && self.open.is_none() && self.ooo.is_empty()
    }

    /// Heap bytes held by chunks (chunk bytes kept in memory and list
    /// slots; the out-of-order histograms are counted apart).
    pub(crate) fn heap_bytes(&self) -> usize {
        let full: usize = self
            .full
            .iter()
            .map(|c| match &c.stored {
                HistBytes::Mem(b) => b.len(),
                HistBytes::Disk(_) => 0,
            })
            .sum();
        full + self.full.capacity() * std::mem::size_of::<HistFull>()
            + self.open.as_ref().map_or(0, |o| o.kind.bytes().len())
    }

    /// Closes the open chunk (the next sample, of either kind, starts a new
    /// one): its bytes go to the chunk files (kept in memory if that fails).
    pub(crate) fn close_open(&mut self, st: Store<'_>) {
        if let Some(o) = self.open.take() {
            let encoding = o.kind.encoding();
            let bytes = match o.kind {
                OpenKind::Int(c) => c.into_bytes(),
                OpenKind::Float(c) => c.into_bytes(),
            };
            let stored = match st
                .disk
                .write_encoded(st.series, o.mint, o.maxt, encoding, &bytes)
            {
                Ok(r) => HistBytes::Disk(r),
                Err(e) => {
                    tracing::warn!(series = st.series, error = %e, "histogram chunk kept in memory: writing it to the chunk files failed");
                    HistBytes::Mem(bytes.into_boxed_slice())
                }
            };
            self.full.reserve_exact(1);
            self.full.push(HistFull {
                encoding,
                stored,
                mint: o.mint,
                maxt: o.maxt,
            });
        }
    }

    /// The newest sample, decoded (for duplicate checks; rare).
    pub(crate) fn last(&self, st: Store<'_>) -> Option<(i64, HistValue)> {
        match &self.open {
            Some(o) => decode_values(o.kind.encoding(), o.kind.bytes()).ok()?.pop(),
            None => {
                let c = self.full.last()?;
                let b = c.bytes(st).ok()?;
                decode_values(c.encoding, &b).ok()?.pop()
            }
        }
    }

    /// Appends `h` at `t`, newer than every sample of the series (the
    /// caller checked). Returns the number of chunks created. A histogram
    /// whose buckets do not fit its spans is refused and changes nothing.
    pub(crate) fn append(
        &mut self,
        t: i64,
        h: &HistValue,
        policy: &CutPolicy,
        st: Store<'_>,
    ) -> Result<u64> {
        if let Some(o) = &mut self.open {
            let mut os = OpenState {
                mint: o.mint,
                maxt: o.maxt,
                samples: o.kind.num_samples(),
                next_at: o.next_at,
            };
            let cut = o.kind.encoding() != h.encoding()
                || policy.cuts_before(&mut os, t)
                || (o.kind.bytes().len() >= TARGET_BYTES && o.kind.num_samples() >= MIN_SAMPLES);
            o.next_at = os.next_at;
            if cut {
                self.close_open(st);
            }
        }
        let Some(o) = &mut self.open else {
            // A new chunk; its counter-reset header is judged against the
            // chunk before it when that one holds the same encoding.
            let prev = self
                .full
                .last()
                .filter(|c| c.encoding == h.encoding() && c.maxt < t);
            let prev = prev.map(|c| c.bytes(st)).transpose()?;
            let codec = |e| st.codec(e);
            let kind = match h {
                HistValue::Int(h) => {
                    let prev = prev
                        .map(|b| HistogramChunk::from_bytes(b.to_vec()))
                        .transpose()
                        .map_err(codec)?;
                    let mut c = HistogramChunk::new();
                    c.append(prev.as_ref(), t, h, false).map_err(codec)?;
                    OpenKind::Int(c)
                }
                HistValue::Float(h) => {
                    let prev = prev
                        .map(|b| FloatHistogramChunk::from_bytes(b.to_vec()))
                        .transpose()
                        .map_err(codec)?;
                    let mut c = FloatHistogramChunk::new();
                    c.append(prev.as_ref(), t, h, false).map_err(codec)?;
                    OpenKind::Float(c)
                }
            };
            self.open = Some(HistOpen {
                kind,
                mint: t,
                maxt: t,
                next_at: policy.start(t).next_at,
            });
            return Ok(1);
        };
        let codec = |e| st.codec(e);
        let next = match (&mut o.kind, h) {
            (OpenKind::Int(c), HistValue::Int(h)) => {
                match c.append(None, t, h, false).map_err(codec)? {
                    AppendOutcome::NewChunk(n) => Some(OpenKind::Int(n)),
                    AppendOutcome::Appended | AppendOutcome::Recoded => None,
                }
            }
            (OpenKind::Float(c), HistValue::Float(h)) => {
                match c.append(None, t, h, false).map_err(codec)? {
                    AppendOutcome::NewChunk(n) => Some(OpenKind::Float(n)),
                    AppendOutcome::Appended | AppendOutcome::Recoded => None,
                }
            }
            // Closed above when the encoding differs.
            _ => {
                return Err(codec(CodecError::NotAppendable {
                    reason: "histogram encoding changed".into(),
                }))
            }
        };
        match next {
            None => {
                o.maxt = t;
                Ok(0)
            }
            Some(kind) => {
                self.close_open(st);
                self.open = Some(HistOpen {
                    kind,
                    mint: t,
                    maxt: t,
                    next_at: policy.start(t).next_at,
                });
                Ok(1)
            }
        }
    }

    /// Drops the chunks that end before `t`; returns how many.
    pub(crate) fn truncate_before(&mut self, t: i64) -> usize {
        let before = self.full.len() + usize::from(self.open.is_some());
        self.full.retain(|c| c.maxt >= t);
        if self.open.as_ref().is_some_and(|o| o.maxt < t) {
            self.open = None;
        }
        before - self.full.len() - usize::from(self.open.is_some())
    }

    /// The same chunks without the samples in `[a, b]` (inclusive): chunks
    /// that hold some are re-encoded (those left empty go), the rest kept
    /// as they are; the open chunk, if rewritten, is closed. `None` when
    /// nothing is in range. Returns the new data and the change in the
    /// number of chunks.
    pub(crate) fn without(&self, a: i64, b: i64, st: Store<'_>) -> Result<Option<(HistData, i64)>> {
        use cairn_codec::{encode_float_histograms, encode_histograms};
        let touched = |mint: i64, maxt: i64| maxt >= a && mint <= b;
        if !self.full.iter().any(|c| touched(c.mint, c.maxt))
            && !self.open.as_ref().is_some_and(|o| touched(o.mint, o.maxt))
        {
            return Ok(None);
        }
        let keep = |t: &i64| *t < a || *t > b;
        let rewrite = |enc: u8, bytes: &[u8]| -> std::result::Result<Vec<HistFull>, CodecError> {
            let parts = match enc {
                ENCODING_HISTOGRAM => {
                    let s: Vec<_> = histogram_decode(bytes)?
                        .into_iter()
                        .filter(|(t, _)| keep(t))
                        .collect();
                    encode_histograms(&s)?
                }
                _ => {
                    let s: Vec<_> = float_histogram_decode(bytes)?
                        .into_iter()
                        .filter(|(t, _)| keep(t))
                        .collect();
                    encode_float_histograms(&s)?
                }
            };
            Ok(parts
                .into_iter()
                .map(|(mint, maxt, b)| HistFull {
                    encoding: enc,
                    stored: HistBytes::Mem(b.into_boxed_slice()),
                    mint,
                    maxt,
                })
                .collect())
        };
        // Out-of-order histograms are carried over whole: the caller
        // drops those in range (`SeriesData::drop_ooo_hist`).
        let mut out = HistData {
            ooo: self.ooo.clone(),
            ..HistData::default()
        };
        let before = self.full.len() + usize::from(self.open.is_some());
        let codec = |e| st.codec(e);
        for c in &self.full {
            if touched(c.mint, c.maxt) {
                out.full
                    .extend(rewrite(c.encoding, &c.bytes(st)?).map_err(codec)?);
            } else {
                out.full.push(c.clone());
            }
        }
        if let Some(o) = &self.open {
            if touched(o.mint, o.maxt) {
                out.full
                    .extend(rewrite(o.kind.encoding(), o.kind.bytes()).map_err(codec)?);
            } else {
                let kind = match &o.kind {
                    OpenKind::Int(c) => OpenKind::Int(
                        HistogramChunk::from_bytes(c.bytes().to_vec()).map_err(codec)?,
                    ),
                    OpenKind::Float(c) => OpenKind::Float(
                        FloatHistogramChunk::from_bytes(c.bytes().to_vec()).map_err(codec)?,
                    ),
                };
                out.open = Some(HistOpen {
                    kind,
                    mint: o.mint,
                    maxt: o.maxt,
                    next_at: o.next_at,
                });
            }
        }
        let after = out.full.len() + usize::from(out.open.is_some());
        Ok(Some((out, after as i64 - before as i64)))
    }

    /// The chunks overlapping `[mint, maxt]`, as stored (copies; those in
    /// the chunk files read back), oldest first.
    pub(crate) fn chunks_in(
        &self,
        mint: i64,
        maxt: i64,
        st: Store<'_>,
    ) -> Result<Vec<EncodedChunk>> {
        let mut out = Vec::new();
        for c in self
            .full
            .iter()
            .filter(|c| c.maxt >= mint && c.mint <= maxt)
        {
            out.push(EncodedChunk {
                min_time: c.mint,
                max_time: c.maxt,
                encoding: c.encoding,
                data: c.bytes(st)?.into_owned(),
            });
        }
        if let Some(o) = self
            .open
            .as_ref()
            .filter(|o| o.maxt >= mint && o.mint <= maxt)
        {
            out.push(EncodedChunk {
                min_time: o.mint,
                max_time: o.maxt,
                encoding: o.kind.encoding(),
                data: o.kind.bytes().to_vec(),
            });
        }
        Ok(out)
    }

    /// Attaches a chunk found in the chunk files when the head opens
    /// (older than everything the series holds; the caller sorts them).
    pub(crate) fn attach(&mut self, encoding: u8, chunk_ref: u64, mint: i64, maxt: i64) {
        self.full.push(HistFull {
            encoding,
            stored: HistBytes::Disk(chunk_ref),
            mint,
            maxt,
        });
    }
}

/// The samples of a histogram chunk up to `cut` (inclusive), re-encoded
/// in its encoding: what a reader that may not see the newer ones gets.
pub(crate) fn reencode_until(
    enc: u8,
    data: &[u8],
    cut: i64,
) -> std::result::Result<Vec<EncodedChunk>, CodecError> {
    use cairn_codec::{encode_float_histograms, encode_histograms};
    let parts = match enc {
        ENCODING_HISTOGRAM => {
            let s: Vec<_> = histogram_decode(data)?
                .into_iter()
                .filter(|(t, _)| *t <= cut)
                .collect();
            encode_histograms(&s)?
        }
        _ => {
            let s: Vec<_> = float_histogram_decode(data)?
                .into_iter()
                .filter(|(t, _)| *t <= cut)
                .collect();
            encode_float_histograms(&s)?
        }
    };
    Ok(parts
        .into_iter()
        .map(|(min_time, max_time, data)| EncodedChunk {
            min_time,
            max_time,
            encoding: enc,
            data,
        })
        .collect())
}

/// WAL records of histograms `(series, t, value)`: integer and float,
/// exponential and custom-bucket ones in records of their own, each in
/// the order given.
pub(crate) fn records<'a>(
    items: impl IntoIterator<Item = (u64, i64, &'a HistValue)>,
) -> Vec<crate::wal_log::Record> {
    use crate::wal_log::{Record, RefFloatHistogramSample, RefHistogramSample};
    let (mut ints, mut int_custom, mut floats, mut float_custom) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, t, h) in items {
        match h {
            HistValue::Int(h) => {
                let s = RefHistogramSample {
                    r,
                    t,
                    h: (**h).clone(),
                };
                if h.uses_custom_buckets() {
                    int_custom.push(s);
                } else {
                    ints.push(s);
                }
            }
            HistValue::Float(h) => {
                let s = RefFloatHistogramSample {
                    r,
                    t,
                    h: (**h).clone(),
                };
                if h.uses_custom_buckets() {
                    float_custom.push(s);
                } else {
                    floats.push(s);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (custom, samples) in [(false, ints), (true, int_custom)] {
        if !samples.is_empty() {
            out.push(Record::Histograms { custom, samples });
        }
    }
    for (custom, samples) in [(false, floats), (true, float_custom)] {
        if !samples.is_empty() {
            out.push(Record::FloatHistograms { custom, samples });
        }
    }
    out
}

/// Decoded histograms (sorted) as chunks, each run of integer or float
/// ones in its own encoding (`cairn_codec::encode_histogram_runs`).
pub(crate) fn encode_decoded(
    s: &[cairn_storage::DecodedHistogram],
) -> Result<Vec<EncodedChunk>, CodecError> {
    Ok(cairn_codec::encode_histogram_runs(s)?
        .into_iter()
        .map(|(encoding, (min_time, max_time, data))| EncodedChunk {
            min_time,
            max_time,
            encoding,
            data,
        })
        .collect())
}

/// Decodes a histogram chunk of encoding `enc` into its samples.
pub(crate) fn decode_values(enc: u8, data: &[u8]) -> Result<Vec<(i64, HistValue)>, CodecError> {
    Ok(match enc {
        ENCODING_HISTOGRAM => histogram_decode(data)?
            .into_iter()
            .map(|(t, h)| (t, HistValue::Int(Arc::new(h))))
            .collect(),
        ENCODING_FLOAT_HISTOGRAM => float_histogram_decode(data)?
            .into_iter()
            .map(|(t, h)| (t, HistValue::Float(Arc::new(h))))
            .collect(),
        _ => return Err(CodecError::UnknownEncoding(enc)),
    })
}

/// The same value, the counter-reset hint aside (a decoded sample's hint
/// comes from its chunk, not from what was appended).
pub(crate) fn same_value(a: &HistValue, b: &HistValue) -> bool {
    use cairn_model::CounterResetHint as Hint;
    match (a, b) {
        (HistValue::Int(a), HistValue::Int(b)) => {
            Histogram {
                counter_reset_hint: Hint::Unknown,
                ..(**a).clone()
            } == Histogram {
                counter_reset_hint: Hint::Unknown,
                ..(**b).clone()
            }
        }
        (HistValue::Float(a), HistValue::Float(b)) => {
            FloatHistogram {
                counter_reset_hint: Hint::Unknown,
                ..(**a).clone()
            } == FloatHistogram {
                counter_reset_hint: Hint::Unknown,
                ..(**b).clone()
            }
        }
        _ => false,
    }
}

impl SeriesData {
    /// Where a histogram at `t` goes, following Prometheus's rules as
    /// [`SeriesData::placement`] does for floats: newer than the series'
    /// newest sample (of either kind) and than what the caller `staged`
    /// for it already, in order; the newest histogram's timestamp again is
    /// a duplicate (same histogram: nothing to do) or an error; older ones
    /// go out of order when the window is on (see `hist_ooo`), else are
    /// out of bounds or out of order.
    pub(crate) fn hist_placement(
        &self,
        t: i64,
        h: &HistValue,
        b: &AppendBounds,
        staged: Option<i64>,
        st: Store<'_>,
    ) -> Result<Placement, StorageError> {
        if t >= b.min_valid {
            match self.max_time().max(staged) {
                None => return Ok(Placement::InOrder),
                Some(m) if t > m => return Ok(Placement::InOrder),
                Some(_) if staged == Some(t) => {
                    return Err(StorageError::OutOfOrderSample { t });
                }
                Some(m) if t == m => {
                    let last = self.hist.as_ref().and_then(|d| d.last(st));
                    return match last {
                        Some((lt, v)) if lt == t && same_value(&v, h) => Ok(Placement::Duplicate),
                        _ => Err(StorageError::DuplicateHistogramForTimestamp { t }),
                    };
                }
                Some(_) => {}
            }
        }
        if b.ooo_window > 0 {
            return self.hist_ooo_placement(t, h, b);
        }
        if t < b.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: b.min_valid,
            });
        }
        Err(StorageError::OutOfOrderSample { t })
    }

    /// Appends a histogram that [`Self::hist_placement`] let in; the
    /// float chunk being filled, if any, is closed first.
    pub(crate) fn append_hist(
        &mut self,
        series: u64,
        t: i64,
        h: &HistValue,
        tx: Tx,
        policy: &ChunkPolicy,
        disk: &DiskChunks,
    ) -> Result<Applied> {
        let mut applied = Applied::default();
        let st = Store { disk, series };
        let hist = self.hist.get_or_insert_with(Default::default);
        // Appended before the float chunk is closed: a refused histogram
        // changes nothing.
        let probe_ok = hist.max_time().is_none_or(|m| m < t);
        if !probe_ok {
            return Err(st.codec(CodecError::NotAppendable {
                reason: format!("histogram at {t} is not newer than the series' newest"),
            }));
        }
        applied.chunks_created = hist.append(t, h, &policy.cut, st)?;
        if let Some(mut o) = self.open.take() {
            self.cut_open(series, &mut o, disk);
        }
        while self.txs.first().is_some_and(|x| x.0 < tx.low_watermark) {
            self.txs.remove(0);
        }
        if self.txs.last().is_none_or(|x| x.0 != tx.id) {
            self.txs.push((tx.id, t));
        }
        Ok(applied)
    }

    /// Appends a replayed histogram (see `replay`): newer than the series'
    /// histograms, whatever its floats hold; the float chunk being filled
    /// is closed when it ends before `t`. Returns the chunks created.
    pub(crate) fn replay_hist(
        &mut self,
        series: u64,
        t: i64,
        h: &HistValue,
        policy: &ChunkPolicy,
        disk: &DiskChunks,
    ) -> Result<u64> {
        let hist = self.hist.get_or_insert_with(Default::default);
        let n = hist.append(t, h, &policy.cut, Store { disk, series })?;
        if self.open.as_ref().is_some_and(|o| o.maxt() < t) {
            if let Some(mut o) = self.open.take() {
                self.cut_open(series, &mut o, disk);
            }
        }
        Ok(n)
    }
}
