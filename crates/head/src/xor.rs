//! Adapter over the chunk encoding (cairn-codec's `XorChunk`).
//!
//! The rest of the head only touches chunks through [`Chunk`],
//! [`decode_into`], [`append_decoded`] and [`encode`], so the encoding is swapped in this one
//! file. Contract: timestamps appended to a chunk are strictly increasing.

use cairn_codec::{xor_decode, XorChunk};
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
    let before = out.len();
    if let [a, b, ..] = data {
        out.reserve(usize::from(u16::from_be_bytes([*a, *b])));
    }
    match xor_decode(data, |t, v| out.push(Sample::new(t, v))) {
        Ok(_) => Ok(()),
        Err(e) => {
            out.truncate(before);
            Err(HeadError::Codec {
                series,
                source: e.to_string().into(),
            })
        }
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
