//! Writing a block from any querier.
//!
//! The writer streams: a first pass over the selection collects the symbol
//! table (the index needs every string before the first series), a second
//! pass writes each series' chunks and index entry. Chunks from
//! [`Series::chunks`] are copied as they are when they lie inside the block's
//! `[mint, maxt)`; chunks that cross a bound, use another encoding, or
//! series without chunks are (re-)encoded from samples, cutting a chunk every
//! `samples_per_chunk` samples, or where the head would cut it when
//! [`BlockWriteOptions::head_chunk_range`] is set (backfill: promtool appends
//! through a head). Everything goes to `<ulid>.tmp-for-creation`,
//! each file is fsynced, `meta.json` is written last, and the directory is
//! renamed into place atomically.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cairn_chunks::ChunkWriter;
use cairn_codec::{
    decode_aggr, decode_float_chunk, dense_share, dense_shared_source, dense_timestamps,
    float_chunk_samples, is_float_encoding, FloatChunkBuilder, FloatEncoding, ENCODING_AGGR,
    ENCODING_DENSE,
};
use cairn_head::cut::{CutPolicy, Cutter};
use cairn_index::{ChunkMeta, IndexWriter};
use cairn_model::{Labels, MatchType, Matcher};
use cairn_storage::{EncodedChunk, Querier, SelectHints, Series, ValueType};
use ulid::Ulid;

use crate::fsutil::sync_dir;
use crate::meta::{BlockDesc, BlockMeta, ThanosDownsample, ThanosMeta};
use crate::tombstones::Tombstones;
use crate::{Result, TsdbError};

mod grouped;

/// Suffix of a block directory under construction.
pub const TMP_FOR_CREATION: &str = ".tmp-for-creation";

/// How to write a block.
#[derive(Debug, Clone)]
pub struct BlockWriteOptions {
    /// The new block's id; a fresh one when `None`.
    pub ulid: Option<Ulid>,
    /// Compaction level (1 for head cuts and backfill).
    pub level: u32,
    /// Level-1 ancestors; the new block itself when empty.
    pub sources: Vec<Ulid>,
    /// Blocks merged into this one.
    pub parents: Vec<BlockDesc>,
    /// Samples per re-encoded chunk (Prometheus: 120): a fixed split, or the
    /// head's target when `head_chunk_range` is set.
    pub samples_per_chunk: usize,
    /// Cut re-encoded samples as the head cuts them (see
    /// [`cairn_head::cut`]) with this chunk range, instead of every
    /// `samples_per_chunk` samples. promtool's backfill appends through a
    /// head whose chunk range is twice the block duration.
    pub head_chunk_range: Option<i64>,
    /// Record the samples' own bounds (`[first, last + 1)`) in meta.json
    /// instead of the requested range, as promtool's block writer does.
    pub tight_bounds: bool,
    /// Resolution written to meta.json's `thanos.downsample` (ms); 0 for
    /// raw blocks, which get no `thanos` section.
    pub resolution: i64,
    /// Encoding of the float chunks: chunks already in it pass through,
    /// others are re-encoded. XOR by default (head cuts, backfill);
    /// compaction writes the configured `--storage.tsdb.chunk-encoding`.
    /// Dense chunks are cut every [`FloatEncoding::samples_per_chunk`]
    /// samples instead of `samples_per_chunk`.
    pub encoding: FloatEncoding,
    /// meta.json `compaction.hints` (Prometheus's `from-out-of-order`).
    pub hints: Vec<String>,
    /// Write the chunks grouped by metric name (names in order, each
    /// name's series in label order) instead of in series order, so that
    /// one metric's chunks are contiguous even where labels sort before
    /// `__name__` (DCGM's `Hostname`, `UUID`): a query reading a block by
    /// byte range from a bucket fetches its metric's bytes, not every
    /// page of the block. The index is the same. Costs a selection per
    /// metric name and about 30 bytes a series plus 24 a chunk while the
    /// block is written (`writer/grouped.rs`); blocks of more than
    /// [`GROUP_MAX_SERIES`] series are written in series order. The
    /// source must answer the same series in every pass (blocks do; a
    /// head being appended to may not, so head cuts keep series order).
    pub group_by_name: bool,
}

/// Above this many series a block is written in series order whatever
/// [`BlockWriteOptions::group_by_name`] says (the grouping's bookkeeping
/// would pass 100 MiB).
pub const GROUP_MAX_SERIES: usize = 2_000_000;

impl Default for BlockWriteOptions {
    fn default() -> Self {
        Self {
            ulid: None,
            level: 1,
            sources: Vec::new(),
            parents: Vec::new(),
            samples_per_chunk: 120,
            head_chunk_range: None,
            tight_bounds: false,
            resolution: 0,
            encoding: FloatEncoding::Xor,
            hints: Vec::new(),
            group_by_name: false,
        }
    }
}

/// A matcher that selects every series.
pub(crate) fn match_all() -> Matcher {
    // `.*` is a valid regex, so this cannot fail; fall back to a != "" match.
    Matcher::new(MatchType::Regex, "__name__", ".*")
        .unwrap_or_else(|_| Matcher::equal("__name__", ""))
}

/// Writes the samples of `q` in `[mint, maxt)` (maxt exclusive) as a new
/// block under `parent`. `q` must cover at least `[mint, maxt - 1]`.
/// Returns `None` (and leaves nothing behind) when there were no samples.
pub fn write_block(
    parent: &Path,
    q: &dyn Querier,
    mint: i64,
    maxt: i64,
    opts: &BlockWriteOptions,
) -> Result<Option<BlockMeta>> {
    let mut produce =
        |s: &dyn Series, out: &mut Vec<EncodedChunk>| collect_chunks(s, mint, maxt, opts, out);
    write_block_with(parent, q, mint, maxt, opts, &mut produce)
}

/// Makes one series' chunks for a block: the series as the source querier
/// yields it, and the list to append the chunks to (in time order).
pub type ChunkProducer<'p> = dyn FnMut(&dyn Series, &mut Vec<EncodedChunk>) -> Result<()> + 'p;

/// [`write_block`] with the chunks of each series made by `produce`
/// (the downsampler writes aggregate chunks this way). A series for which
/// `produce` makes no chunk is left out.
pub fn write_block_with(
    parent: &Path,
    q: &dyn Querier,
    mint: i64,
    maxt: i64,
    opts: &BlockWriteOptions,
    produce: &mut ChunkProducer<'_>,
) -> Result<Option<BlockMeta>> {
    if maxt <= mint {
        return Err(TsdbError::InvalidArgument(format!(
            "empty block range [{mint}, {maxt})"
        )));
    }
    // Not `unwrap_or_default`: Ulid's default is the nil id.
    let ulid = match opts.ulid {
        Some(u) => u,
        None => Ulid::new(),
    };
    let tmp = parent.join(format!("{ulid}{TMP_FOR_CREATION}"));
    let result = write_into(&tmp, q, mint, maxt, ulid, opts, produce);
    match result {
        Ok(Some(meta)) => {
            let dst = parent.join(ulid.to_string());
            std::fs::rename(&tmp, &dst).map_err(TsdbError::io("rename", &tmp))?;
            sync_dir(parent)?;
            tracing::debug!(%ulid, mint = meta.min_time, maxt = meta.max_time, series = meta.stats.num_series, "wrote block");
            Ok(Some(meta))
        }
        other => {
            let _ = std::fs::remove_dir_all(&tmp);
            other
        }
    }
}

struct Counts {
    series: u64,
    chunks: u64,
    samples: u64,
    hist_samples: u64,
    min_t: i64,
    max_t: i64,
}

fn write_into(
    tmp: &Path,
    q: &dyn Querier,
    mint: i64,
    maxt: i64,
    ulid: Ulid,
    opts: &BlockWriteOptions,
    produce: &mut ChunkProducer<'_>,
) -> Result<Option<BlockMeta>> {
    let _ = std::fs::remove_dir_all(tmp);
    std::fs::create_dir_all(tmp).map_err(TsdbError::io("create dir", tmp))?;
    let hints = SelectHints {
        start: mint,
        end: maxt - 1,
        ..SelectHints::default()
    };
    let all = [match_all()];

    // Pass 1: symbols, gathered in a hash set (a B-tree made ten million
    // series of a dozen labels cost billions of string comparisons), then
    // sorted once.
    let mut seen: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
    let mut plan = opts.group_by_name.then(grouped::Plan::default);
    for s in q.select(&hints, &all)? {
        let s = s?;
        if let Some(p) = plan.as_mut() {
            p.add(s.labels());
        }
        for l in s.labels() {
            if !seen.contains(l.name) {
                seen.insert(l.name.to_owned());
            }
            if !seen.contains(l.value) {
                seen.insert(l.value.to_owned());
            }
        }
    }
    let mut sorted: Vec<&str> = seen.iter().map(String::as_str).collect();
    sorted.sort_unstable();

    let index_path = tmp.join("index");
    let chunks_dir = tmp.join("chunks");
    let ix_err = |p: &PathBuf| {
        let p = p.clone();
        move |e: cairn_index::IndexError| TsdbError::Index {
            path: p,
            source: Box::new(e),
        }
    };
    let mut cw = ChunkWriter::create(&chunks_dir).map_err(|e| TsdbError::Chunks {
        path: chunks_dir.clone(),
        source: Box::new(e),
    })?;
    let mut ix = IndexWriter::create(&index_path).map_err(ix_err(&index_path))?;
    for s in sorted {
        ix.add_symbol(s).map_err(ix_err(&index_path))?;
    }

    // Pass 2: chunks and series.
    let mut w = SeriesWriter {
        cw: &mut cw,
        chunks_dir: &chunks_dir,
        seen: &seen,
        produce,
        share: super::share::TimestampShare::default(),
        pending: Vec::new(),
        c: Counts {
            series: 0,
            chunks: 0,
            samples: 0,
            hist_samples: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
        },
    };
    if let Some(plan) = plan.and_then(grouped::Plan::finish) {
        grouped::write(q, &hints, &plan, &mut w, &mut ix, &index_path)?;
    } else {
        let mut prev: Option<Labels> = None;
        for s in q.select(&hints, &all)? {
            let s = s?;
            let labels = s.labels().clone();
            if prev.as_ref().is_some_and(|p| *p >= labels) {
                return Err(TsdbError::OutOfOrder(format!(
                    "series {labels} after {}",
                    prev.as_ref().map(|p| p.to_string()).unwrap_or_default()
                )));
            }
            if let Some(metas) = w.write(&*s)? {
                ix.add_series(&labels, &metas)
                    .map_err(ix_err(&index_path))?;
                w.c.series += 1;
            }
            prev = Some(labels);
        }
    }
    let c = w.c;
    cw.finish().map_err(|e| TsdbError::Chunks {
        path: chunks_dir.clone(),
        source: Box::new(e),
    })?;
    ix.finish().map_err(ix_err(&index_path))?;
    if c.series == 0 {
        return Ok(None);
    }
    Tombstones::new().write(tmp)?;
    let (bmin, bmax) = if opts.tight_bounds {
        (c.min_t, c.max_t.saturating_add(1))
    } else {
        (mint, maxt)
    };
    let mut meta = BlockMeta::new(ulid, bmin, bmax);
    meta.stats.num_series = c.series;
    meta.stats.num_chunks = c.chunks;
    meta.stats.num_samples = c.samples;
    meta.stats.num_histogram_samples = c.hist_samples;
    meta.stats.num_float_samples = c.samples - c.hist_samples;
    meta.compaction.level = opts.level;
    if !opts.sources.is_empty() {
        meta.compaction.sources = opts.sources.clone();
    }
    meta.compaction.parents = opts.parents.clone();
    meta.compaction.hints = opts.hints.clone();
    if opts.resolution > 0 {
        meta.thanos = Some(ThanosMeta {
            downsample: ThanosDownsample {
                resolution: opts.resolution,
            },
            source: "cairn".to_owned(),
            ..ThanosMeta::default()
        });
    }
    meta.write(tmp)?;
    sync_dir(tmp)?;
    Ok(Some(meta))
}

/// Writes series' chunks to the block's chunk files and counts them.
pub(crate) struct SeriesWriter<'w, 'p> {
    cw: &'w mut ChunkWriter,
    chunks_dir: &'w Path,
    /// The symbols of the first pass.
    seen: &'w HashSet<String, foldhash::fast::RandomState>,
    produce: &'w mut ChunkProducer<'p>,
    share: super::share::TimestampShare,
    pending: Vec<EncodedChunk>,
    c: Counts,
}

impl SeriesWriter<'_, '_> {
    /// Writes the chunks of `s` and returns their index entries; `None`
    /// when the series has none, or appeared after the symbol pass (left
    /// out, with a warning).
    pub(crate) fn write(&mut self, s: &dyn Series) -> Result<Option<Vec<ChunkMeta>>> {
        let labels = s.labels();
        if labels
            .iter()
            .any(|l| !self.seen.contains(l.name) || !self.seen.contains(l.value))
        {
            tracing::warn!(series = %labels, "series appeared after the symbol pass; left out of the block");
            return Ok(None);
        }
        self.pending.clear();
        (self.produce)(s, &mut self.pending)?;
        if self.pending.is_empty() {
            return Ok(None);
        }
        let mut metas = Vec::with_capacity(self.pending.len());
        for ch in &self.pending {
            // A dense chunk takes its timestamps from an earlier chunk of
            // the block when they are a run of its (block/share.rs).
            let (data, source) = match share_timestamps(&self.share, ch) {
                Ok(x) => x,
                Err(e) => {
                    return Err(TsdbError::Chunk {
                        path: self.chunks_dir.to_path_buf(),
                        series: labels.to_string(),
                        source: Box::new(e),
                    })
                }
            };
            let r = self
                .cw
                .write_chunk(ch.encoding, data.as_deref().unwrap_or(&ch.data))
                .map_err(|e| TsdbError::Chunks {
                    path: self.chunks_dir.to_path_buf(),
                    source: Box::new(e),
                })?;
            if let Some(ts) = source {
                self.share.add(r, ts);
            }
            metas.push(ChunkMeta {
                min_time: ch.min_time,
                max_time: ch.max_time,
                chunk_ref: r,
            });
            let c = &mut self.c;
            c.chunks += 1;
            let n = chunk_samples(ch.encoding, &ch.data);
            c.samples += n;
            if super::hist::is_histogram_encoding(ch.encoding) {
                c.hist_samples += n;
            }
            c.min_t = c.min_t.min(ch.min_time);
            c.max_t = c.max_t.max(ch.max_time);
        }
        Ok(Some(metas))
    }

    /// Counts one more series in the block.
    pub(crate) fn count_series(&mut self) {
        self.c.series += 1;
    }
}

/// For a dense chunk: its rewrite sharing an earlier chunk's timestamps,
/// or else its timestamps, to offer as a source once written.
#[allow(clippy::type_complexity)]
fn share_timestamps(
    share: &super::share::TimestampShare,
    ch: &EncodedChunk,
) -> std::result::Result<(Option<Vec<u8>>, Option<Vec<i64>>), cairn_codec::CodecError> {
    if ch.encoding != ENCODING_DENSE || dense_shared_source(&ch.data)?.is_some() {
        return Ok((None, None));
    }
    let ts = dense_timestamps(&ch.data)?;
    match share.find(&ts) {
        Some((r, i)) => Ok((Some(dense_share(&ch.data, r, i)?), None)),
        None => Ok((None, Some(ts))),
    }
}

/// Sample count from a chunk header; for an aggregate chunk, its count
/// entry's (the number of windows).
pub(crate) fn chunk_samples(encoding: u8, data: &[u8]) -> u64 {
    if super::hist::is_histogram_encoding(encoding) {
        return super::hist::histogram_chunk_samples(data);
    }
    if encoding == ENCODING_AGGR {
        return match decode_aggr(data) {
            Ok([Some(count), ..]) => float_chunk_samples(count.encoding, count.data) as u64,
            _ => 0,
        };
    }
    float_chunk_samples(encoding, data) as u64
}

/// The series' chunks inside `[mint, maxt)`, passing through what can be
/// and re-encoding the rest.
fn collect_chunks(
    s: &dyn Series,
    mint: i64,
    maxt: i64,
    opts: &BlockWriteOptions,
    out: &mut Vec<EncodedChunk>,
) -> Result<()> {
    let per_chunk = match opts.encoding {
        FloatEncoding::Dense => opts.encoding.samples_per_chunk(),
        _ => opts.samples_per_chunk.max(1),
    };
    let mut enc = Encoder::new(
        match opts.head_chunk_range {
            Some(r) => Cut::Head(Cutter::new(CutPolicy {
                chunk_range: r.max(1),
                samples_per_chunk: per_chunk,
            })),
            None => Cut::Every(per_chunk),
        },
        opts.encoding,
    );
    let chunk_err = |e: Box<dyn std::error::Error + Send + Sync>| TsdbError::Chunk {
        path: PathBuf::new(),
        series: s.labels().to_string(),
        source: e,
    };
    if let Some(mut it) = s.chunks() {
        while let Some(ch) = it.next_chunk() {
            let ch = ch?;
            if ch.max_time < mint || ch.min_time >= maxt {
                continue;
            }
            let inside = ch.min_time >= mint && ch.max_time < maxt;
            if super::hist::is_histogram_encoding(ch.encoding) {
                // Histogram chunks pass through; one crossing a bound is
                // re-encoded, in its own encoding, for its part inside.
                enc.flush(out);
                if inside {
                    out.push(ch);
                } else {
                    out.extend(
                        super::hist::reencode_range(&ch, mint, maxt)
                            .map_err(|e| chunk_err(Box::new(e)))?,
                    );
                }
                continue;
            }
            if inside && ch.encoding == opts.encoding.byte() {
                // What was re-encoded so far ends first, so chunks stay in
                // time order.
                enc.flush(out);
                out.push(ch);
                continue;
            }
            if !is_float_encoding(ch.encoding) {
                return Err(chunk_err(
                    format!("unsupported chunk encoding {}", ch.encoding).into(),
                ));
            }
            decode_float_chunk(ch.encoding, &ch.data, |t, v| {
                if t >= mint && t < maxt {
                    enc.push(t, v, out);
                }
            })
            .map_err(|e| chunk_err(Box::new(e)))?;
            if let Some(e) = enc.failed.take() {
                return Err(chunk_err(Box::new(e)));
            }
            // Cut as the head cuts: a source chunk ends a chunk. Otherwise
            // re-encoded samples run on into full-size chunks (dense chunks
            // hold four of Prometheus's).
            if opts.head_chunk_range.is_some() {
                enc.flush(out);
            }
        }
        enc.flush(out);
        return enc
            .failed
            .take()
            .map_or(Ok(()), |e| Err(chunk_err(Box::new(e))));
    }
    let mut it = s.iter();
    let mut vt = it.seek(mint);
    // Histograms of a run between floats, encoded when the run ends.
    let mut hists: Vec<cairn_storage::DecodedHistogram> = Vec::new();
    while vt != ValueType::None {
        if it.at_t() >= maxt {
            break;
        }
        match vt {
            ValueType::Histogram | ValueType::FloatHistogram => {
                if let Some((t, h)) = it.at_float_histogram() {
                    enc.flush(out);
                    hists.push((t, h, it.at_histogram().map(|x| x.1)));
                }
            }
            _ => {
                if !hists.is_empty() {
                    out.extend(
                        super::hist::encode_merged(&hists).map_err(|e| chunk_err(Box::new(e)))?,
                    );
                    hists.clear();
                }
                let (t, v) = it.at();
                enc.push(t, v, out);
            }
        }
        vt = it.next();
    }
    if !hists.is_empty() {
        out.extend(super::hist::encode_merged(&hists).map_err(|e| chunk_err(Box::new(e)))?);
    }
    if let Some(e) = it.err() {
        return Err(chunk_err(e.to_string().into()));
    }
    enc.flush(out);
    enc.failed
        .take()
        .map_or(Ok(()), |e| Err(chunk_err(Box::new(e))))
}

/// Where [`Encoder`] cuts.
enum Cut {
    /// Every so many samples.
    Every(usize),
    /// Where the head would.
    Head(Cutter),
}

/// Cuts chunks of one encoding from time-ordered samples.
struct Encoder {
    cut: Cut,
    cur: FloatChunkBuilder,
    first: i64,
    last: i64,
    /// The first encoding error (dense chunks refuse malformed input);
    /// checked by the caller after each batch.
    failed: Option<cairn_codec::CodecError>,
}

impl Encoder {
    fn new(cut: Cut, encoding: FloatEncoding) -> Self {
        Self {
            cut,
            cur: FloatChunkBuilder::new(encoding),
            first: 0,
            last: i64::MIN,
            failed: None,
        }
    }

    fn push(&mut self, t: i64, v: f64, out: &mut Vec<EncodedChunk>) {
        if !self.cur.is_empty() && t <= self.last {
            return; // duplicates or disorder from a misbehaving source: keep the first
        }
        let starts_chunk = match &mut self.cut {
            Cut::Every(n) => self.cur.len() >= *n,
            Cut::Head(c) => c.push(t),
        };
        if starts_chunk {
            self.emit(out);
        }
        if self.cur.is_empty() {
            self.first = t;
        }
        self.cur.push(t, v);
        self.last = t;
    }

    /// Ends the current chunk: the next sample starts a new one.
    fn flush(&mut self, out: &mut Vec<EncodedChunk>) {
        self.emit(out);
        if let Cut::Head(c) = &mut self.cut {
            c.reset();
        }
    }

    fn emit(&mut self, out: &mut Vec<EncodedChunk>) {
        if self.cur.is_empty() {
            return;
        }
        match self.cur.finish() {
            Ok(data) => out.push(EncodedChunk {
                min_time: self.first,
                max_time: self.last,
                encoding: self.cur.encoding().byte(),
                data,
            }),
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
    }
}
