//! The chunk encoder handed to series merging: XOR chunks of at most 120
//! samples. Merging passes chunks that overlap nothing through untouched and
//! re-encodes runs of overlapping chunks with this, which is what
//! Prometheus's compactor does (its chunk-series merger re-encodes overlaps
//! with a fixed split at 120 samples, not with the head's cutting policy).

use std::sync::Arc;

use cairn_codec::{XorChunk, ENCODING_XOR};
use cairn_model::Sample;
use cairn_storage::{ChunkEncoder, EncodeInput, EncodedChunk, StorageError};

/// Samples per chunk when re-encoding overlaps (Prometheus's split).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Encodes time-ordered samples into XOR chunks of `SAMPLES_PER_CHUNK`.
pub fn encode_xor(samples: &[Sample]) -> Vec<EncodedChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let mut c = XorChunk::new();
            for s in part {
                c.append(s.t, s.v);
            }
            Some(EncodedChunk {
                min_time: first.t,
                max_time: last.t,
                encoding: ENCODING_XOR,
                data: c.into_bytes(),
            })
        })
        .collect()
}

/// [`encode_xor`] as a [`ChunkEncoder`]; native histograms become
/// histogram chunks of their kind (see `block::hist`).
pub fn xor_encoder() -> ChunkEncoder {
    Arc::new(|i: EncodeInput<'_>| match i {
        EncodeInput::Floats(s) => Ok(encode_xor(s)),
        EncodeInput::Histograms(h) => crate::block::encode_merged_histograms(h)
            .map_err(|e| StorageError::Backend(Box::new(e))),
    })
}
