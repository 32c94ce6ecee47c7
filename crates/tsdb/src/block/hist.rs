//! Native histogram chunks (Prometheus's encodings 2 and 3) in blocks:
//! counting their samples, re-encoding the part of one inside a range,
//! decoding them for queries, and encoding merged samples.
//!
//! Blocks keep histogram chunks as they were written (the head's chunks
//! pass through, as float chunks do); only a chunk that crosses a block
//! boundary, or overlapping chunks being merged, are re-encoded. Merged
//! samples come from iterators with their integer form where they had
//! one, so a merge writes runs of integer histograms as integer chunks
//! (encoding 2) and the rest as float-histogram chunks (encoding 3). All ranges here are `[mint, maxt)`, as block ranges are.

use cairn_codec::{
    encode_float_histograms, encode_histograms, float_histogram_decode, histogram_decode,
    CodecError, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM,
};
use cairn_storage::EncodedChunk;

/// Whether `encoding` is one of the histogram encodings.
pub(crate) fn is_histogram_encoding(encoding: u8) -> bool {
    encoding == ENCODING_HISTOGRAM || encoding == ENCODING_FLOAT_HISTOGRAM
}

/// The sample count a histogram chunk's header gives (0 when too short).
pub(crate) fn histogram_chunk_samples(data: &[u8]) -> u64 {
    match data {
        [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    }
}

fn chunks(v: Vec<cairn_codec::histogram::HistChunkBytes>, encoding: u8) -> Vec<EncodedChunk> {
    v.into_iter()
        .map(|(min_time, max_time, data)| EncodedChunk {
            min_time,
            max_time,
            encoding,
            data,
        })
        .collect()
}

/// The samples of histogram chunk `c` inside `[mint, maxt)`, re-encoded
/// in its own encoding.
pub(crate) fn reencode_range(
    c: &EncodedChunk,
    mint: i64,
    maxt: i64,
) -> Result<Vec<EncodedChunk>, CodecError> {
    let inside = |t: &i64| *t >= mint && *t < maxt;
    Ok(match c.encoding {
        ENCODING_HISTOGRAM => {
            let s: Vec<_> = histogram_decode(&c.data)?
                .into_iter()
                .filter(|(t, _)| inside(t))
                .collect();
            chunks(encode_histograms(&s)?, ENCODING_HISTOGRAM)
        }
        _ => {
            let s: Vec<_> = float_histogram_decode(&c.data)?
                .into_iter()
                .filter(|(t, _)| inside(t))
                .collect();
            chunks(encode_float_histograms(&s)?, ENCODING_FLOAT_HISTOGRAM)
        }
    })
}

/// Merged histogram samples (sorted) as chunks: runs of integer ones as
/// integer chunks, runs of float ones as float-histogram chunks.
pub(crate) fn encode_merged(
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
