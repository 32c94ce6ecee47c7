//! `analyze`: what a block holds and how well it compresses — series,
//! chunks, samples, bytes per sample and the label names and pairs with the
//! highest cardinality (the questions `promtool tsdb analyze` answers).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use cairn_index::{ChunkMeta, IndexLike};
use ulid::Ulid;

use crate::block::Block;
use crate::{Result, TsdbError};

/// Figures about one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockAnalysis {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
    /// 0 for raw data, else the downsampled window width in ms.
    pub resolution: i64,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    /// Bytes of chunk data (without framing) per sample.
    pub bytes_per_sample: f64,
    pub label_names: u64,
    /// Distinct label pairs.
    pub postings: u64,
    /// Label pairs summed over all series.
    pub postings_entries: u64,
    /// Label names by number of distinct values, highest first (top 20).
    pub highest_cardinality_labels: Vec<(String, u64)>,
    /// Metric names by number of series, highest first (top 20).
    pub highest_cardinality_metrics: Vec<(String, u64)>,
    /// Label pairs by number of series, highest first (top 20).
    pub most_common_pairs: Vec<(String, u64)>,
    /// Chunks per encoding (`xor`, `xor2`, `dense`, `aggr`, or the
    /// encoding byte in hex), most common first.
    pub encodings: Vec<(String, u64)>,
}

fn top(m: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(20);
    v
}

/// Analyses one open block, reading its index and every chunk header.
pub fn analyze_block(b: &Block) -> Result<BlockAnalysis> {
    let ip = b.dir().join("index");
    let ixe = |e: cairn_index::IndexError| TsdbError::Index {
        path: ip.clone(),
        source: Box::new(e),
    };
    let ix = b.index();
    let meta = b.meta();
    let names = ix.label_names().map_err(ixe)?;
    let mut by_name = Vec::new();
    let mut postings = 0u64;
    for n in &names {
        let vals = ix.label_values(n).map_err(ixe)?;
        postings += vals.len() as u64;
        by_name.push((n.clone(), vals.len() as u64));
    }
    let mut pairs: HashMap<String, u64> = HashMap::new();
    let mut metrics: BTreeMap<String, u64> = BTreeMap::new();
    let (mut series, mut chunks, mut samples, mut bytes, mut entries) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut cm: Vec<ChunkMeta> = Vec::new();
    let mut encodings: BTreeMap<u8, u64> = BTreeMap::new();
    for r in ix.all_postings().map_err(ixe)? {
        cm.clear();
        let l = ix.series(r, &mut cm).map_err(ixe)?;
        series += 1;
        for x in l.iter() {
            entries += 1;
            *pairs.entry(format!("{}={}", x.name, x.value)).or_default() += 1;
        }
        if let Some(n) = l.metric_name() {
            *metrics.entry(n.to_owned()).or_default() += 1;
        }
        for c in &cm {
            let (enc, data) =
                b.chunk_reader()
                    .chunk(c.chunk_ref)
                    .map_err(|e| TsdbError::Chunk {
                        path: b.dir().join("chunks"),
                        series: l.to_string(),
                        source: Box::new(e),
                    })?;
            chunks += 1;
            *encodings.entry(enc).or_default() += 1;
            bytes += data.len() as u64;
            samples += crate::block::writer::chunk_samples(enc, &data);
        }
    }
    Ok(BlockAnalysis {
        ulid: meta.ulid,
        min_time: meta.min_time,
        max_time: meta.max_time,
        resolution: meta.resolution(),
        series,
        chunks,
        samples,
        bytes_per_sample: if samples == 0 {
            0.0
        } else {
            bytes as f64 / samples as f64
        },
        label_names: names.len() as u64,
        postings,
        postings_entries: entries,
        highest_cardinality_labels: top(by_name),
        highest_cardinality_metrics: top(metrics),
        most_common_pairs: top(pairs),
        encodings: top(encodings.into_iter().map(|(e, n)| (encoding_name(e), n))),
    })
}

/// Analyses block `block` of `dir` (the newest when `None`) and prints a report.
pub fn analyze(dir: &Path, block: Option<Ulid>, out: &mut dyn Write) -> Result<BlockAnalysis> {
    let mut metas = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(TsdbError::io("read dir", dir))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(u) = Ulid::from_string(&name) {
            if e.path().join(crate::meta::META_FILENAME).exists() {
                metas.push(u);
            }
        }
    }
    metas.sort();
    let id = match block {
        Some(u) if metas.contains(&u) => u,
        Some(u) => {
            return Err(TsdbError::InvalidArgument(format!(
                "block {u} not found in {}",
                dir.display()
            )))
        }
        None => *metas
            .last()
            .ok_or_else(|| TsdbError::InvalidArgument(format!("no blocks in {}", dir.display())))?,
    };
    let b = Block::open(&dir.join(id.to_string()))?;
    let a = analyze_block(&b)?;
    let werr = |e| TsdbError::Io {
        op: "write",
        path: "<analyze output>".into(),
        source: e,
    };
    let mut w = |s: String| writeln!(out, "{s}").map_err(werr);
    w(format!("Block ID: {}", a.ulid))?;
    w(format!("Duration: {}ms", a.max_time - a.min_time))?;
    w(format!("Resolution: {}", resolution_name(a.resolution)))?;
    w(format!("Series: {}", a.series))?;
    w(format!("Chunks: {}", a.chunks))?;
    w(format!("Chunk encodings: {}", encodings_line(&a.encodings)))?;
    if a.resolution > 0 {
        // Samples of a downsampled block are windows with aggregates.
        w(format!("Samples (windows): {}", a.samples))?;
        w(format!("Bytes per window: {:.3}", a.bytes_per_sample))?;
    } else {
        w(format!("Samples: {}", a.samples))?;
        w(format!("Bytes per sample: {:.3}", a.bytes_per_sample))?;
    }
    w(format!("Label names: {}", a.label_names))?;
    w(format!("Postings (unique label pairs): {}", a.postings))?;
    w(format!(
        "Postings entries (total label pairs): {}",
        a.postings_entries
    ))?;
    for (title, list) in [
        ("Most common label pairs", &a.most_common_pairs),
        ("Highest cardinality labels", &a.highest_cardinality_labels),
        (
            "Highest cardinality metric names",
            &a.highest_cardinality_metrics,
        ),
    ] {
        w(String::new())?;
        w(format!("{title}:"))?;
        for (k, n) in list {
            w(format!("{n} {k}"))?;
        }
    }
    Ok(a)
}

/// The name of a chunk encoding byte: `xor`, `xor2`, `dense`, `aggr`
/// (downsampled aggregates), or the byte in hex.
pub fn encoding_name(enc: u8) -> String {
    match cairn_codec::FloatEncoding::from_byte(enc) {
        Some(e) => e.name().to_owned(),
        None if enc == cairn_codec::ENCODING_AGGR => "aggr".to_owned(),
        None => format!("0x{enc:02x}"),
    }
}

/// `dense 12, xor 3` (or `none`): chunks per encoding as [`BlockAnalysis`]
/// lists them.
pub fn encodings_line(encodings: &[(String, u64)]) -> String {
    if encodings.is_empty() {
        return "none".to_owned();
    }
    encodings
        .iter()
        .map(|(e, n)| format!("{e} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `raw`, `5m`, `1h`, or the width in ms for other resolutions.
pub fn resolution_name(r: i64) -> String {
    match r {
        0 => "raw".to_owned(),
        crate::downsample::RES_5M => "5m".to_owned(),
        crate::downsample::RES_1H => "1h".to_owned(),
        other => format!("{other}ms"),
    }
}
