//! Adapter over the chunk encoding (cairn-codec's `XorChunk`).
//!
//! The rest of the head only touches chunks through [`Chunk`],
//! [`decode_into`] and [`encode`], so the encoding is swapped in this one
//! file. Contract: timestamps appended to a chunk are strictly increasing.

use cairn_codec::{xor_iter, XorChunk};
use cairn_model::Sample;

use crate::error::{HeadError, Result};

/// Prometheus's encoding byte of XOR chunks.
pub(crate) const ENCODING_XOR: u8 = cairn_codec::ENCODING_XOR;

/// An appendable encoded chunk.
pub(crate) type Chunk = XorChunk;

/// Decodes every sample of `data`, a chunk of `series`, into `out` (cleared first).
pub(crate) fn decode_into(data: &[u8], out: &mut Vec<Sample>, series: u64) -> Result<()> {
    out.clear();
    let mut it = xor_iter(data);
    while it.next() {
        let (t, v) = it.at();
        out.push(Sample::new(t, v));
    }
    match it.err() {
        Some(e) => Err(HeadError::Codec {
            series,
            source: e.to_string().into(),
        }),
        None => Ok(()),
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
