//! Reading one series: a snapshot of its chunks taken under the series lock,
//! then a sample iterator and a chunk iterator over that snapshot.
//!
//! The snapshot holds chunk references for full chunks (their bytes are read
//! from the chunk files on demand), a copy of the open chunk's bytes, the
//! visible out-of-order samples (decoded, sorted) and the isolation cut: the
//! largest in-order timestamp the querier may see. Samples are bounded to
//! the querier's inclusive `[mint, maxt]`.

use cairn_model::Sample;
use cairn_storage::{
    read_floats_stepwise, ChunkIterator, EncodedChunk, Result, SampleIterator, StorageError,
    ValueType,
};

use crate::cut::{CutPolicy, Cutter};
use crate::disk_chunks::DiskChunks;
use crate::hist;
use crate::isolation::IsoState;
use crate::series::{MemSeries, SeriesData, Stored};
use crate::xor::{self, ENCODING_XOR};

/// The out-of-order samples of `d` in `[mint, maxt]` visible under `iso`,
/// sorted, one per timestamp.
fn ooo_samples(
    series: u64,
    d: &SeriesData,
    iso: &IsoState,
    mint: i64,
    maxt: i64,
) -> Result<Vec<Sample>> {
    let mut ooo = Vec::new();
    let Some(o) = &d.ooo else {
        return Ok(ooo);
    };
    let mut buf = Vec::new();
    for (c, cmin, cmax) in &o.chunks {
        if *cmax < mint || *cmin > maxt {
            continue;
        }
        xor::decode_into(c.bytes(), &mut buf, series).map_err(StorageError::from)?;
        ooo.extend(buf.iter().filter(|s| s.t >= mint && s.t <= maxt));
    }
    ooo.extend(
        o.buf
            .iter()
            .filter(|s| s.0 >= mint && s.0 <= maxt && iso.visible(s.2))
            .map(|s| Sample::new(s.0, s.1)),
    );
    // Stable: among equal timestamps the older (chunked) sample stays first.
    ooo.sort_by_key(|s| s.t);
    ooo.dedup_by_key(|s| s.t);
    Ok(ooo)
}

/// Where a snapshot chunk's bytes are.
#[derive(Debug, Clone)]
enum Src {
    Disk(u64),
    Mem(Vec<u8>),
}

#[derive(Debug, Clone)]
struct SnapChunk {
    src: Src,
    mint: i64,
    maxt: i64,
}

/// A consistent view of one series for one querier.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    series: u64,
    chunks: Vec<SnapChunk>,
    ooo: Vec<Sample>,
    /// Native histogram chunks overlapping the range (copies; see `hist`).
    hist: Vec<EncodedChunk>,
    /// The visible out-of-order histograms in range, sorted (see `hist_ooo`).
    ooo_hist: Vec<cairn_storage::DecodedHistogram>,
    /// Inclusive bounds, with the isolation cut applied to `maxt` for
    /// in-order data.
    mint: i64,
    maxt: i64,
    cut: i64,
}

impl Snapshot {
    /// Takes a snapshot of `d` for `[mint, maxt]` under `iso`. With
    /// `late_below`, only the out-of-order samples older than it (late
    /// samples, see `late`) are in it.
    pub(crate) fn take(
        series: &MemSeries,
        d: &SeriesData,
        disk: &DiskChunks,
        iso: &IsoState,
        mint: i64,
        maxt: i64,
        late_below: Option<i64>,
    ) -> Result<Self> {
        let cut = d.visible_cut(iso);
        if let Some(below) = late_below {
            let maxt = maxt.min(below.saturating_sub(1));
            return Ok(Self {
                series: series.r,
                chunks: Vec::new(),
                ooo: ooo_samples(series.r, d, iso, mint, maxt)?,
                hist: Vec::new(),
                ooo_hist: d.ooo_hists_visible(iso, mint, maxt),
                mint,
                maxt,
                cut,
            });
        }
        let in_max = maxt.min(cut);
        let mut chunks = Vec::new();
        for c in &d.full {
            if c.maxt < mint || c.mint > in_max {
                continue;
            }
            let src = match &c.stored {
                Stored::Disk(r) => Src::Disk(*r),
                Stored::Mem(b) => Src::Mem(b.to_vec()),
            };
            chunks.push(SnapChunk {
                src,
                mint: c.mint,
                maxt: c.maxt,
            });
        }
        if let Some(o) = &d.open {
            if o.maxt() >= mint && o.mint <= in_max {
                chunks.push(SnapChunk {
                    src: Src::Mem(o.to_bytes(disk)?),
                    mint: o.mint,
                    maxt: o.maxt(),
                });
            }
        }
        let hist = d
            .hist
            .as_ref()
            .map(|h| {
                h.chunks_in(
                    mint,
                    in_max,
                    hist::Store {
                        disk,
                        series: series.r,
                    },
                )
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            series: series.r,
            chunks,
            ooo: ooo_samples(series.r, d, iso, mint, maxt)?,
            hist,
            ooo_hist: d.ooo_hists_visible(iso, mint, maxt),
            mint,
            maxt,
            cut,
        })
    }

    /// Whether `d` has a sample visible under `iso` in `[mint, maxt]`,
    /// decided from chunk bounds alone (they are real sample times), without
    /// copying anything; `None` when only decoding can tell.
    pub(crate) fn quick_has_samples(
        d: &SeriesData,
        iso: &IsoState,
        mint: i64,
        maxt: i64,
        late_below: Option<i64>,
    ) -> Option<bool> {
        if d.ooo.is_some() || d.hist.is_some() {
            return None;
        }
        if late_below.is_some() {
            return Some(false);
        }
        let in_max = maxt.min(d.visible_cut(iso));
        let bounds = d
            .full
            .iter()
            .map(|c| (c.mint, c.maxt))
            .chain(d.open.iter().map(|o| (o.mint, o.maxt())));
        let mut overlap = false;
        for (cmin, cmax) in bounds {
            if (cmin >= mint && cmin <= in_max) || (cmax >= mint && cmax <= in_max) {
                return Some(true);
            }
            overlap |= cmax >= mint && cmin <= in_max;
        }
        if overlap {
            None
        } else {
            Some(false)
        }
    }

    /// True when the snapshot may hold no sample in range; cheap check
    /// first (chunk bounds are real samples), decoding only when unsure.
    pub(crate) fn has_samples(&self, disk: &DiskChunks) -> bool {
        if !self.ooo.is_empty() || !self.ooo_hist.is_empty() {
            return true;
        }
        let in_max = self.maxt.min(self.cut);
        if self.hist.iter().any(|c| {
            (c.min_time >= self.mint && c.min_time <= in_max)
                || (c.max_time >= self.mint && c.max_time <= in_max)
        }) || !self.hist_samples().is_empty()
        {
            return true;
        }
        let sure = self.chunks.iter().any(|c| {
            (c.mint >= self.mint && c.mint <= in_max) || (c.maxt >= self.mint && c.maxt <= in_max)
        });
        if sure {
            return true;
        }
        if self.chunks.is_empty() {
            return false;
        }
        let mut it = SnapIter::new(self.clone(), disk);
        it.next() != ValueType::None
    }

    /// The snapshot's samples as encoded chunks: stored chunks untouched
    /// when possible, re-encoded where the isolation cut falls inside a chunk
    /// or out-of-order samples must be merged in.
    pub(crate) fn encoded_chunks(
        &self,
        disk: &DiskChunks,
        cut: CutPolicy,
    ) -> Result<Vec<EncodedChunk>> {
        let mut out = self.float_chunks(disk, cut)?;
        if !self.ooo_hist.is_empty() {
            // Out-of-order histograms merged in: re-encoded, each run of
            // integer or float histograms in its own encoding.
            let merged = hist::encode_decoded(&self.hist_samples()).map_err(|e| {
                StorageError::from(crate::HeadError::Codec {
                    series: self.series,
                    source: Box::new(e),
                })
            })?;
            out.extend(merged);
            out.sort_by_key(|c| c.min_time);
        } else if !self.hist.is_empty() {
            out.extend(self.hist_chunks()?);
            out.sort_by_key(|c| c.min_time);
        }
        Ok(out)
    }

    /// The histogram samples in range and visible, decoded, oldest first,
    /// in-order and out-of-order ones merged (the in-order one kept where
    /// both have a timestamp).
    pub(crate) fn hist_samples(&self) -> Vec<cairn_storage::DecodedHistogram> {
        let in_max = self.maxt.min(self.cut);
        let mut out = Vec::new();
        for c in &self.hist {
            match cairn_codec::decode_histogram_samples(c.encoding, &c.data) {
                Ok(v) => out.extend(
                    v.into_iter()
                        .filter(|(t, _, _)| *t >= self.mint && *t <= in_max),
                ),
                // Chunks the head wrote itself: not expected to fail.
                Err(e) => {
                    tracing::error!(series = self.series, error = %e, "undecodable histogram chunk skipped")
                }
            }
        }
        if !self.ooo_hist.is_empty() {
            out.extend(self.ooo_hist.iter().cloned());
            // Stable: the in-order sample, first in, stays.
            out.sort_by_key(|x| x.0);
            out.dedup_by_key(|x| x.0);
        }
        out
    }

    /// The histogram chunks, as stored when wholly visible; a chunk the
    /// isolation cut falls in is re-encoded up to the cut.
    fn hist_chunks(&self) -> Result<Vec<EncodedChunk>> {
        let mut out = Vec::new();
        for c in &self.hist {
            if c.max_time <= self.cut {
                out.push(c.clone());
                continue;
            }
            let chunks = hist::reencode_until(c.encoding, &c.data, self.cut).map_err(|e| {
                StorageError::from(crate::HeadError::Codec {
                    series: self.series,
                    source: Box::new(e),
                })
            })?;
            out.extend(chunks);
        }
        Ok(out)
    }

    /// The float samples as encoded chunks (see [`Self::encoded_chunks`]).
    fn float_chunks(&self, disk: &DiskChunks, cut: CutPolicy) -> Result<Vec<EncodedChunk>> {
        let mut out = Vec::new();
        if self.ooo.is_empty() {
            for c in &self.chunks {
                if c.maxt <= self.cut {
                    out.push(EncodedChunk {
                        min_time: c.mint,
                        max_time: c.maxt,
                        encoding: ENCODING_XOR,
                        data: chunk_bytes(disk, self.series, &c.src)?,
                    });
                } else {
                    let mut buf = Vec::new();
                    xor::decode_into(
                        &chunk_bytes(disk, self.series, &c.src)?,
                        &mut buf,
                        self.series,
                    )
                    .map_err(StorageError::from)?;
                    buf.retain(|s| s.t <= self.cut);
                    encode_runs(&buf, cut, &mut out);
                }
            }
            return Ok(out);
        }
        let mut it = SnapIter::new(self.clone(), disk);
        let mut all = Vec::new();
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            all.push(Sample::new(t, v));
        }
        if let Some(e) = it.err.take() {
            return Err(e);
        }
        encode_runs(&all, cut, &mut out);
        Ok(out)
    }
}

/// Encodes sorted samples into chunks cut as the head cuts them (see
/// [`crate::cut`]): a prefix of a head chunk stays one chunk, and merged
/// out-of-order samples are cut as if they had arrived in order.
fn encode_runs(s: &[Sample], cut: CutPolicy, out: &mut Vec<EncodedChunk>) {
    let mut cutter = Cutter::new(cut);
    let mut start = 0;
    for (i, x) in s.iter().enumerate() {
        if cutter.push(x.t) && i > start {
            push_run(s.get(start..i).unwrap_or(&[]), out);
            start = i;
        }
    }
    push_run(s.get(start..).unwrap_or(&[]), out);
}

fn push_run(part: &[Sample], out: &mut Vec<EncodedChunk>) {
    if let (Some(first), Some(last)) = (part.first(), part.last()) {
        out.push(EncodedChunk {
            min_time: first.t,
            max_time: last.t,
            encoding: ENCODING_XOR,
            data: xor::encode(part).bytes().to_vec(),
        });
    }
}

fn chunk_bytes(disk: &DiskChunks, series: u64, src: &Src) -> Result<Vec<u8>> {
    match src {
        Src::Disk(r) => Ok(disk.read(series, *r)?),
        Src::Mem(b) => Ok(b.clone()),
    }
}

/// Sample iterator over a [`Snapshot`]: in-order chunks decoded one at a
/// time, merged with the out-of-order samples; on equal timestamps the
/// in-order sample wins.
pub(crate) struct SnapIter<'a> {
    snap: Snapshot,
    disk: &'a DiskChunks,
    /// Next chunk to decode.
    ci: usize,
    buf: Vec<Sample>,
    bi: usize,
    oi: usize,
    cur: Option<Sample>,
    done: bool,
    err: Option<StorageError>,
}

impl<'a> SnapIter<'a> {
    pub(crate) fn new(snap: Snapshot, disk: &'a DiskChunks) -> Self {
        // The file chunks are read in turn: start loading them all now.
        disk.prefetch(snap.chunks.iter().filter_map(|c| match c.src {
            Src::Disk(r) => Some(r),
            Src::Mem(_) => None,
        }));
        Self {
            snap,
            disk,
            ci: 0,
            // Allocated on first use: bulk reads mostly decode straight
            // into the caller's buffer.
            buf: Vec::new(),
            bi: 0,
            oi: 0,
            cur: None,
            done: false,
            err: None,
        }
    }

    fn in_max(&self) -> i64 {
        self.snap.maxt.min(self.snap.cut)
    }

    /// Next in-order sample at or after `t` without consuming it.
    fn peek_in_order(&mut self, t: i64) -> Option<Sample> {
        let lo = t.max(self.snap.mint);
        loop {
            while let Some(s) = self.buf.get(self.bi) {
                if s.t < lo {
                    self.bi += 1;
                    continue;
                }
                if s.t > self.in_max() {
                    return None;
                }
                return Some(*s);
            }
            // Load the next chunk that can hold a sample >= lo.
            loop {
                let c = self.snap.chunks.get(self.ci)?;
                self.ci += 1;
                if c.maxt >= lo {
                    // In-memory bytes are decoded in place; only file
                    // chunks are read out first.
                    self.buf.clear();
                    if let Err(e) = decode_chunk(self.disk, self.snap.series, &c.src, &mut self.buf)
                    {
                        self.err = Some(e);
                        return None;
                    }
                    self.bi = 0;
                    break;
                }
            }
        }
    }

    fn peek_ooo(&mut self, t: i64) -> Option<Sample> {
        while let Some(s) = self.snap.ooo.get(self.oi) {
            if s.t < t {
                self.oi += 1;
                continue;
            }
            return Some(*s);
        }
        None
    }

    /// Moves to the first sample with timestamp >= `t`.
    fn advance_to(&mut self, t: i64) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        let a = self.peek_in_order(t);
        if self.err.is_some() {
            self.done = true;
            self.cur = None;
            return ValueType::None;
        }
        let b = self.peek_ooo(t);
        let pick = match (a, b) {
            (Some(a), Some(b)) if b.t < a.t => {
                self.oi += 1;
                Some(b)
            }
            (Some(a), Some(b)) => {
                if b.t == a.t {
                    self.oi += 1;
                }
                self.bi += 1;
                Some(a)
            }
            (Some(a), None) => {
                self.bi += 1;
                Some(a)
            }
            (None, Some(b)) => {
                self.oi += 1;
                Some(b)
            }
            (None, None) => None,
        };
        self.cur = pick;
        match pick {
            Some(_) => ValueType::Float,
            None => {
                self.done = true;
                ValueType::None
            }
        }
    }
}

/// Appends the samples of one snapshot chunk to `out` (unchanged on error);
/// file chunks are decoded in place.
fn decode_chunk(disk: &DiskChunks, series: u64, src: &Src, out: &mut Vec<Sample>) -> Result<()> {
    let r = match src {
        Src::Mem(b) => xor::append_decoded(b, out, series),
        Src::Disk(r) => disk
            .with_chunk(series, *r, |b| xor::append_decoded(b, out, series))
            .and_then(|x| x),
    };
    r.map_err(StorageError::from)
}

impl SnapIter<'_> {
    fn exhausted(&mut self) -> ValueType {
        self.done = true;
        self.cur = None;
        ValueType::None
    }
}

impl SampleIterator for SnapIter<'_> {
    fn next(&mut self) -> ValueType {
        // Fast path: no out-of-order samples, and the next sample of the
        // decoded chunk follows the current one (it is larger, so above
        // `mint`) and is inside the bound.
        if self.snap.ooo.is_empty() && !self.done && self.cur.is_some() {
            if let Some(s) = self.buf.get(self.bi) {
                if s.t <= self.in_max() {
                    self.bi += 1;
                    self.cur = Some(*s);
                    return ValueType::Float;
                }
            }
        }
        let from = match self.cur {
            Some(c) => c.t.saturating_add(1),
            None => i64::MIN,
        };
        self.advance_to(from)
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        if let Some(c) = self.cur {
            if c.t >= t {
                return ValueType::Float;
            }
        }
        self.advance_to(t)
    }

    fn at(&self) -> (i64, f64) {
        self.cur.map_or((i64::MIN, f64::NAN), |s| (s.t, s.v))
    }

    fn at_t(&self) -> i64 {
        self.at().0
    }

    fn err(&self) -> Option<&StorageError> {
        self.err.as_ref()
    }

    /// Without out-of-order samples, whole chunks that end inside the
    /// bound are decoded straight into `out`; the rest goes through the
    /// decoded chunk buffer, leaving the iterator where `next` would.
    fn read_floats(&mut self, maxt: i64, out: &mut Vec<Sample>) -> ValueType {
        let cur = match self.cur {
            Some(c) if self.snap.ooo.is_empty() && !self.done => c,
            _ => return read_floats_stepwise(self, maxt, out),
        };
        if cur.t > maxt {
            return ValueType::Float;
        }
        out.push(cur);
        let in_max = self.in_max();
        let lim = maxt.min(in_max);
        loop {
            // The decoded samples up to `lim` go over in one copy.
            let rest = self.buf.get(self.bi..).unwrap_or(&[]);
            let k = rest.partition_point(|s| s.t <= lim);
            out.extend_from_slice(rest.get(..k).unwrap_or(&[]));
            self.bi += k;
            if let Some(&s) = self.buf.get(self.bi) {
                self.bi += 1;
                if s.t > in_max {
                    return self.exhausted();
                }
                self.cur = Some(s);
                return ValueType::Float;
            }
            // Later chunks only hold samples after `cur`, so above `mint`.
            let Some(c) = self.snap.chunks.get(self.ci) else {
                return self.exhausted();
            };
            self.ci += 1;
            self.buf.clear();
            self.bi = 0;
            let into = if c.maxt <= lim {
                &mut *out
            } else {
                &mut self.buf
            };
            if let Err(e) = decode_chunk(self.disk, self.snap.series, &c.src, into) {
                self.err = Some(e);
                return self.exhausted();
            }
        }
    }
}

/// Chunk iterator over precomputed encoded chunks.
pub(crate) struct VecChunks {
    chunks: std::vec::IntoIter<EncodedChunk>,
    err: Option<StorageError>,
}

impl VecChunks {
    pub(crate) fn new(r: Result<Vec<EncodedChunk>>) -> Self {
        match r {
            Ok(v) => Self {
                chunks: v.into_iter(),
                err: None,
            },
            Err(e) => Self {
                chunks: Vec::new().into_iter(),
                err: Some(e),
            },
        }
    }
}

impl ChunkIterator for VecChunks {
    fn next_chunk(&mut self) -> Option<Result<EncodedChunk>> {
        if let Some(e) = self.err.take() {
            return Some(Err(e));
        }
        self.chunks.next().map(Ok)
    }
}
