//! Adapter over the chunk encoding (cairn-codec's `XorChunk`).
//!
//! The rest of the head only touches chunks through [`Chunk`],
//! [`decode_into`], [`append_decoded`] and [`encode`], so the encoding is swapped in this one
//! file. Contract: timestamps appended to a chunk are strictly increasing.

use cairn_codec::{xor_decode_append, XorChunk};
use cairn_model::Sample;

use crate::error::{HeadError, Result};

/// Prometheus's encoding byte of XOR chunks.
pub(crate) const ENCODING_XOR: u8 = cairn_codec::ENCODING_XOR;

/// An appendable encoded chunk.
pub(crate) type Chunk = XorChunk;

/// Decodes every sample of `data`, a chunk of `series`, into `out` (cleared first).
pub(crate) fn decode_into(data: &[u8], out: &mut Vec<Sample>, series: u64) -> Result<()> {
    out.clear();
    append_decoded(data, out, series)
}

/// Appends every sample of `data`, a chunk of `series`, to `out`; on error
/// `out` is left as it was.
pub(crate) fn append_decoded(data: &[u8], out: &mut Vec<Sample>, series: u64) -> Result<()> {
    match xor_decode_append(data, out, Sample::new) {
        Ok(_) => Ok(()),
        Err(e) => Err(HeadError::Codec {
            series,
            source: e.to_string().into(),
        }),
    }
}

/// Encodes sorted samples (strictly increasing timestamps) into one chunk.
pub(crate) fn encode(samples: &[Sample]) -> Chunk {
    let mut c = XorChunk::new();
    for s in samples {
        c.append(s.t, s.v);
    }
    c
}
