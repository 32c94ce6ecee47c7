//! Querying one block: postings → series → lazily decoded chunks.
//!
//! Contracts: the querier range is closed `[mint, maxt]`; series are yielded
//! in label order (block series references follow label order); samples
//! outside the range or inside a tombstone interval are hidden. A series'
//! `chunks()` passes the stored chunks through (they may reach past the
//! range) unless tombstones hide part of the range, in which case it offers
//! none and callers re-encode from the filtered samples.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_codec::{
    decode_float_chunk_with, dense_shared_source, encode_dense, is_float_encoding, CodecError,
    ENCODING_AGGR, ENCODING_DENSE,
};
use cairn_index::{postings_for_matchers, ChunkMeta, IndexLike};
use cairn_model::{Labels, Matcher, Sample};
use cairn_storage::{
    Aggregate, ChunkIterator, EncodedChunk, Querier, SampleIterator, SelectHints, Series,
    SeriesSet, StorageError, ValueType,
};

use super::Block;
use crate::tombstones::Intervals;
use crate::TsdbError;

/// A borrowed or shared block: the `Db` hands queriers shared blocks so
/// that a block replaced by compaction stays readable until they finish.
pub enum BlockHandle<'b> {
    Borrowed(&'b Block),
    Shared(Arc<Block>),
}

impl std::ops::Deref for BlockHandle<'_> {
    type Target = Block;
    fn deref(&self) -> &Block {
        match self {
            BlockHandle::Borrowed(b) => b,
            BlockHandle::Shared(b) => b,
        }
    }
}

/// A querier over one block.
pub struct BlockQuerier<'b> {
    block: BlockHandle<'b>,
    mint: i64,
    maxt: i64,
}

impl<'b> BlockQuerier<'b> {
    /// Over the closed range `[mint, maxt]`.
    pub fn new(block: BlockHandle<'b>, mint: i64, maxt: i64) -> Self {
        Self { block, mint, maxt }
    }
}

fn ix_err(b: &Block, e: cairn_index::IndexError) -> StorageError {
    TsdbError::Index {
        path: b.dir().join("index"),
        source: Box::new(e),
    }
    .into()
}

impl Querier for BlockQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let b: &Block = &self.block;
        let meta = b.meta();
        let aggr = (meta.resolution() > 0).then_some(hints.aggregate);
        let hists = aggr.is_none() && meta.stats.may_hold_histograms();
        let ps = postings_for_matchers(b.index(), matchers).map_err(|e| ix_err(b, e))?;
        let (mint, maxt) = (self.mint, self.maxt);
        let tomb = b.tombstones();
        // A series' labels and the chunks it has in range, without those
        // deleted; `None` when nothing is left.
        let read = move |r: u64| -> Option<cairn_storage::Result<Picked>> {
            let mut chunks = Vec::new();
            let labels = match b.index().series(r, &mut chunks) {
                Ok(l) => l,
                Err(e) => return Some(Err(ix_err(b, e))),
            };
            chunks.retain(|c| c.min_time <= maxt && mint <= c.max_time);
            let deleted = tomb.get(r).cloned().filter(|iv| !iv.is_empty());
            if let Some(d) = &deleted {
                chunks.retain(|c| !d.covers(c.min_time, c.max_time));
            }
            (!chunks.is_empty()).then_some(Ok((labels, chunks, deleted)))
        };
        let boxed = move |p: cairn_storage::Result<Picked>| {
            p.map(|(labels, chunks, deleted)| {
                Box::new(BlockSeries {
                    block: b,
                    labels,
                    chunks,
                    mint,
                    maxt,
                    deleted,
                    aggr,
                    hists,
                }) as Box<dyn Series + 'a>
            })
        };
        if b.index().is_remote() || b.chunk_reader().is_remote() {
            // A block in object storage: every series entry, then every
            // chunk the selection reads, fetched ahead in few concurrent
            // requests rather than one round trip at a time.
            let refs: Vec<u64> = ps.iter().collect();
            b.index().prefetch_series(&refs);
            let picked: Vec<_> = refs.into_iter().filter_map(read).collect();
            let chunk_refs: Vec<u64> = picked
                .iter()
                .flatten()
                .flat_map(|(_, cs, _)| cs.iter().map(|c| c.chunk_ref))
                .collect();
            b.chunk_reader().prefetch(&chunk_refs);
            return Ok(Box::new(picked.into_iter().map(boxed)));
        }
        let iter = ps.into_iter().filter_map(read).map(boxed);
        Ok(Box::new(iter))
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let b: &Block = &self.block;
        if matchers.is_empty() {
            return b.index().label_names().map_err(|e| ix_err(b, e));
        }
        let mut out = BTreeSet::new();
        for s in self.select(&SelectHints::default(), matchers)? {
            out.extend(s?.labels().iter().map(|l| l.name.to_owned()));
        }
        Ok(out.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let b: &Block = &self.block;
        if matchers.is_empty() {
            return b.index().label_values(name).map_err(|e| ix_err(b, e));
        }
        let mut out = BTreeSet::new();
        for s in self.select(&SelectHints::default(), matchers)? {
            if let Some(v) = s?.labels().get(name) {
                out.insert(v.to_owned());
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// A selected series' labels, chunks in range and deleted intervals.
type Picked = (Labels, Vec<ChunkMeta>, Option<Intervals>);

struct BlockSeries<'b> {
    block: &'b Block,
    labels: Labels,
    chunks: Vec<ChunkMeta>,
    mint: i64,
    maxt: i64,
    deleted: Option<Intervals>,
    /// For a downsampled block, the aggregate read in place of samples.
    aggr: Option<Aggregate>,
    /// Whether the block may hold histogram chunks (see
    /// `BlockStats::may_hold_histograms`): only then are the series'
    /// chunks checked for them.
    hists: bool,
}

impl BlockSeries<'_> {
    /// Decodes a loaded chunk: XOR samples, or the chosen aggregate's
    /// points of an aggregate chunk.
    fn decode(&self, enc: u8, data: &[u8], f: impl FnMut(i64, f64)) -> Result<usize, CodecError> {
        match (enc, self.aggr) {
            // Histogram chunks hold no floats: `hist_samples` reads them.
            (e, _) if super::hist::is_histogram_encoding(e) => Ok(0),
            (ENCODING_AGGR, Some(a)) => crate::downsample::decode_aggregate(data, a, f),
            _ => {
                // A dense chunk may share its timestamps with another chunk
                // of the block (docs/format/dense-chunk.md).
                let cr = self.block.chunk_reader();
                let mut lookup = |r: u64| match cr.chunk(r) {
                    Ok((ENCODING_DENSE, d)) => Some(d),
                    _ => None,
                };
                decode_float_chunk_with(enc, data, &mut lookup, f)
            }
        }
    }

    /// A chunk as consumers of [`Series::chunks`] get it: self-contained.
    /// A dense chunk that shares its timestamps with another chunk of the
    /// block is rewritten with its own, since the reference means nothing
    /// outside this block.
    fn standalone(&self, c: &ChunkMeta, enc: u8, data: &[u8]) -> cairn_storage::Result<Vec<u8>> {
        if enc != ENCODING_DENSE || !matches!(dense_shared_source(data), Ok(Some(_))) {
            return Ok(data.to_vec());
        }
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        self.decode(enc, data, |t, v| {
            ts.push(t);
            vs.push(v);
        })
        .and_then(|_| encode_dense(&ts, &vs, &mut out))
        .map_err(|e| {
            StorageError::from(TsdbError::Chunk {
                path: self.block.dir().join("chunks"),
                series: self.labels.to_string(),
                source: format!("chunk at ref {}: {e}", c.chunk_ref).into(),
            })
        })?;
        Ok(out)
    }

    /// The float samples' iterator (histogram chunks skipped).
    fn float_iter(&self) -> BlockSampleIterator<'_, '_> {
        BlockSampleIterator {
            s: self,
            next_chunk: 0,
            buf: Vec::new(),
            bi: 0,
            touched: false,
            pending: None,
            at: (i64::MIN, f64::NAN),
            done: false,
            err: None,
        }
    }

    /// The histogram samples in the querier's bounds, decoded, without
    /// those deleted; empty when the series has no histogram chunk.
    fn hist_samples(&self) -> cairn_storage::Result<Vec<cairn_storage::DecodedHistogram>> {
        let mut out = Vec::new();
        for c in &self.chunks {
            let (enc, data) = self.load(c)?;
            if !super::hist::is_histogram_encoding(enc) {
                continue;
            }
            let v = cairn_codec::decode_histogram_samples(enc, &data).map_err(|e| {
                StorageError::from(TsdbError::Chunk {
                    path: self.block.dir().join("chunks"),
                    series: self.labels.to_string(),
                    source: format!("chunk at ref {}: {e}", c.chunk_ref).into(),
                })
            })?;
            out.extend(v.into_iter().filter(|(t, _, _)| {
                *t >= self.mint
                    && *t <= self.maxt
                    && !self.deleted.as_ref().is_some_and(|d| d.contains(*t))
            }));
        }
        Ok(out)
    }

    fn load(&self, c: &ChunkMeta) -> cairn_storage::Result<(u8, Cow<'_, [u8]>)> {
        let (enc, data) = self.block.chunk_reader().chunk(c.chunk_ref).map_err(|e| {
            StorageError::from(TsdbError::Chunk {
                path: self.block.dir().join("chunks"),
                series: self.labels.to_string(),
                source: Box::new(e),
            })
        })?;
        let readable = is_float_encoding(enc)
            || super::hist::is_histogram_encoding(enc)
            || (enc == ENCODING_AGGR && self.aggr.is_some());
        if !readable {
            return Err(TsdbError::Chunk {
                path: self.block.dir().join("chunks"),
                series: self.labels.to_string(),
                source: format!("unsupported chunk encoding {enc} at ref {}", c.chunk_ref).into(),
            }
            .into());
        }
        Ok((enc, data))
    }
}

impl Series for BlockSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        if self.hists {
            match self.hist_samples() {
                Ok(h) if !h.is_empty() => {
                    return Box::new(cairn_storage::WithHistograms::with_forms(
                        self.float_iter(),
                        h,
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    let mut it = self.float_iter();
                    it.fail(e);
                    return Box::new(it);
                }
            }
        }
        Box::new(self.float_iter())
    }

    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        if self.deleted.as_ref().is_some_and(|d| {
            d.as_slice()
                .iter()
                .any(|iv| iv.mint <= self.maxt && self.mint <= iv.maxt)
        }) {
            return None;
        }
        Some(Box::new(BlockChunks { s: self, i: 0 }))
    }
}

struct BlockChunks<'s, 'b> {
    s: &'s BlockSeries<'b>,
    i: usize,
}

impl ChunkIterator for BlockChunks<'_, '_> {
    fn next_chunk(&mut self) -> Option<cairn_storage::Result<EncodedChunk>> {
        let c = self.s.chunks.get(self.i)?;
        self.i += 1;
        Some(self.s.load(c).and_then(|(encoding, data)| {
            Ok(EncodedChunk {
                min_time: c.min_time,
                max_time: c.max_time,
                encoding,
                data: self.s.standalone(c, encoding, &data)?,
            })
        }))
    }
}

/// Iterates a block series' samples. Each chunk is decoded whole with the
/// bulk decoder into `buf` when the iterator enters it, so stepping, seeking
/// inside a chunk and bulk reads all work on decoded samples.
struct BlockSampleIterator<'s, 'b> {
    s: &'s BlockSeries<'b>,
    /// The next chunk (index into `s.chunks`) to decode.
    next_chunk: usize,
    /// The current chunk's samples; `bi` is the next one to yield.
    buf: Vec<Sample>,
    bi: usize,
    /// Whether a tombstone interval overlaps the current chunk.
    touched: bool,
    /// A decoding error of the current chunk, surfaced once the samples
    /// decoded before it are used up.
    pending: Option<StorageError>,
    at: (i64, f64),
    done: bool,
    err: Option<StorageError>,
}

impl BlockSampleIterator<'_, '_> {
    fn fail(&mut self, e: StorageError) -> ValueType {
        self.err = Some(e);
        self.done = true;
        ValueType::None
    }

    fn chunk_err(&self, e: cairn_codec::CodecError) -> StorageError {
        TsdbError::Chunk {
            path: self.s.block.dir().join("chunks"),
            series: self.s.labels.to_string(),
            source: Box::new(e),
        }
        .into()
    }

    fn untouched(&self, c: &ChunkMeta) -> bool {
        self.s.deleted.as_ref().is_none_or(|d| {
            !d.as_slice()
                .iter()
                .any(|iv| iv.mint <= c.max_time && c.min_time <= iv.maxt)
        })
    }

    /// Decodes the next chunk into `buf`. False when there is none (or
    /// loading it failed, which ends the iterator).
    fn enter_next_chunk(&mut self) -> bool {
        let s = self.s;
        let Some(c) = s.chunks.get(self.next_chunk) else {
            return false;
        };
        self.next_chunk += 1;
        self.buf.clear();
        self.bi = 0;
        self.touched = !self.untouched(c);
        let (enc, data) = match s.load(c) {
            Ok(d) => d,
            Err(e) => {
                self.fail(e);
                return false;
            }
        };
        let buf = &mut self.buf;
        if let Err(e) = s.decode(enc, &data, |t, v| buf.push(Sample::new(t, v))) {
            self.pending = Some(self.chunk_err(e));
        }
        true
    }
}

impl SampleIterator for BlockSampleIterator<'_, '_> {
    fn next(&mut self) -> ValueType {
        let s = self.s;
        while !self.done {
            if let Some(&smp) = self.buf.get(self.bi) {
                self.bi += 1;
                if smp.t < s.mint {
                    continue;
                }
                if smp.t > s.maxt {
                    self.done = true;
                    break;
                }
                if self.touched && s.deleted.as_ref().is_some_and(|d| d.contains(smp.t)) {
                    continue;
                }
                self.at = (smp.t, smp.v);
                return ValueType::Float;
            }
            if let Some(e) = self.pending.take() {
                return self.fail(e);
            }
            if !self.enter_next_chunk() {
                self.done = true;
            }
        }
        ValueType::None
    }

    /// The rest of the current chunk is copied, whole chunks inside the
    /// bounds (and untouched by deletions) are decoded straight into `out`;
    /// the rest is stepped through.
    fn read_floats(&mut self, maxt: i64, out: &mut Vec<Sample>) -> ValueType {
        let s = self.s;
        let lim = maxt.min(s.maxt);
        loop {
            let (t, v) = self.at;
            if t > maxt {
                return ValueType::Float;
            }
            out.push(Sample::new(t, v));
            if !self.touched {
                // Samples after `at` are past the querier's `mint`.
                let rest = self.buf.get(self.bi..).unwrap_or(&[]);
                let k = rest.partition_point(|x| x.t <= lim);
                if let Some(last) = rest.get(..k).and_then(|r| r.last()) {
                    self.at = (last.t, last.v);
                    out.extend_from_slice(rest.get(..k).unwrap_or(&[]));
                    self.bi += k;
                }
            }
            if self.bi >= self.buf.len() && self.pending.is_none() {
                while let Some(c) = s.chunks.get(self.next_chunk) {
                    if !(c.min_time >= s.mint && c.max_time <= lim && self.untouched(c)) {
                        break;
                    }
                    self.next_chunk += 1;
                    let (enc, data) = match s.load(c) {
                        Ok(d) => d,
                        Err(e) => return self.fail(e),
                    };
                    let before = out.len();
                    let mut last = None;
                    if let Err(e) = s.decode(enc, &data, |t, v| {
                        out.push(Sample::new(t, v));
                        last = Some((t, v));
                    }) {
                        out.truncate(before);
                        let e = self.chunk_err(e);
                        return self.fail(e);
                    }
                    if let Some(l) = last {
                        self.at = l;
                    }
                }
            }
            match self.next() {
                ValueType::Float => {}
                other => return other,
            }
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        let started = self.bi > 0 || self.next_chunk > 0;
        if started && self.at.0 >= t {
            return ValueType::Float;
        }
        if self.buf.last().is_none_or(|l| l.t < t) {
            // Nothing at or after t in the current chunk: skip whole chunks
            // that end before t without decoding them.
            self.buf.clear();
            self.bi = 0;
            self.pending = None;
            while self
                .s
                .chunks
                .get(self.next_chunk)
                .is_some_and(|c| c.max_time < t)
            {
                self.next_chunk += 1;
            }
        } else {
            let rest = self.buf.get(self.bi..).unwrap_or(&[]);
            self.bi += rest.partition_point(|x| x.t < t);
        }
        loop {
            match self.next() {
                ValueType::None => return ValueType::None,
                vt if self.at.0 >= t => return vt,
                _ => {}
            }
        }
    }

    fn at(&self) -> (i64, f64) {
        self.at
    }

    fn at_t(&self) -> i64 {
        self.at.0
    }

    fn err(&self) -> Option<&StorageError> {
        self.err.as_ref()
    }
}
