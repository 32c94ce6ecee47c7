//! The chunk encoder handed to series merging: XOR chunks of at most 120
//! samples, so re-encoded overlaps look like what the head would cut.

use std::sync::Arc;

use cairn_codec::{XorChunk, ENCODING_XOR};
use cairn_model::Sample;
use cairn_storage::{ChunkEncoder, EncodedChunk};

/// Samples per chunk when re-encoding (Prometheus's target).
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

/// [`encode_xor`] as a [`ChunkEncoder`].
pub fn xor_encoder() -> ChunkEncoder {
    Arc::new(|s: &[Sample]| Ok(encode_xor(s)))
}
