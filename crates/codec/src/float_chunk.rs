//! The float chunk encodings a block may hold, behind one interface:
//! Prometheus's XOR (1) and XOR2 (4), and Cairn's dense chunk (0xfe).
//!
//! Readers call [`decode_float_chunk`] whatever the encoding byte says;
//! writers pick a [`FloatEncoding`] and fill a [`FloatChunkBuilder`].
//! Contract: samples pushed to a builder have strictly increasing
//! timestamps; decoders never panic on malformed input.

use crate::dense::{
    dense_decode, dense_decode_with, dense_num_samples, encode_dense, SourceLookup, ENCODING_DENSE,
};
use crate::{
    xor2_decode, xor_decode, CodecError, Xor2Chunk, XorChunk, ENCODING_XOR, ENCODING_XOR2,
};

/// A float chunk encoding a writer can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FloatEncoding {
    /// Prometheus's XOR: what every Prometheus-format reader understands.
    Xor,
    /// Prometheus's XOR2 (Prometheus 3.11 and later read it).
    Xor2,
    /// Cairn's dense chunk: the smallest, read by Cairn only.
    #[default]
    Dense,
}

impl FloatEncoding {
    /// The on-disk encoding byte.
    pub fn byte(self) -> u8 {
        match self {
            FloatEncoding::Xor => ENCODING_XOR,
            FloatEncoding::Xor2 => ENCODING_XOR2,
            FloatEncoding::Dense => ENCODING_DENSE,
        }
    }

    /// The encoding an on-disk byte names, if it is a float encoding.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            ENCODING_XOR => Some(FloatEncoding::Xor),
            ENCODING_XOR2 => Some(FloatEncoding::Xor2),
            ENCODING_DENSE => Some(FloatEncoding::Dense),
            _ => None,
        }
    }

    /// Samples per chunk when a writer re-encodes: Prometheus's 120 for
    /// the XOR family; 480 for dense chunks (two hours at a 15 s scrape),
    /// whose headers cost more and whose compression gains from length.
    pub fn samples_per_chunk(self) -> usize {
        match self {
            FloatEncoding::Xor | FloatEncoding::Xor2 => 120,
            FloatEncoding::Dense => 480,
        }
    }

    /// The name used by `--storage.tsdb.chunk-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            FloatEncoding::Xor => "xor",
            FloatEncoding::Xor2 => "xor2",
            FloatEncoding::Dense => "dense",
        }
    }
}

impl std::str::FromStr for FloatEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xor" => Ok(FloatEncoding::Xor),
            "xor2" => Ok(FloatEncoding::Xor2),
            "dense" => Ok(FloatEncoding::Dense),
            other => Err(format!(
                "unknown chunk encoding {other:?}: expected dense, xor or xor2"
            )),
        }
    }
}

impl std::fmt::Display for FloatEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `enc` is a float chunk encoding Cairn decodes.
pub fn is_float_encoding(enc: u8) -> bool {
    FloatEncoding::from_byte(enc).is_some()
}

/// Decodes a whole float chunk of any supported encoding, calling
/// `f(t, v)` per sample in order; returns the sample count.
pub fn decode_float_chunk(
    enc: u8,
    data: &[u8],
    f: impl FnMut(i64, f64),
) -> Result<usize, CodecError> {
    match enc {
        ENCODING_XOR => xor_decode(data, f),
        ENCODING_XOR2 => xor2_decode(data, f),
        ENCODING_DENSE => dense_decode(data, f),
        other => Err(match crate::Encoding::try_from(other) {
            Ok(e) => CodecError::UnsupportedEncoding(e),
            Err(e) => e,
        }),
    }
}

/// [`decode_float_chunk`] for chunks read from a block: a dense chunk
/// that shares its timestamps finds them through `lookup` (the block's
/// chunk data by reference).
pub fn decode_float_chunk_with(
    enc: u8,
    data: &[u8],
    lookup: &mut SourceLookup<'_>,
    f: impl FnMut(i64, f64),
) -> Result<usize, CodecError> {
    if enc == ENCODING_DENSE {
        return dense_decode_with(data, lookup, f);
    }
    decode_float_chunk(enc, data, f)
}

/// The sample count in a float chunk's header (0 when unreadable or not a
/// float chunk).
pub fn float_chunk_samples(enc: u8, data: &[u8]) -> usize {
    match enc {
        ENCODING_XOR | ENCODING_XOR2 => match data {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        },
        ENCODING_DENSE => dense_num_samples(data).unwrap_or(0),
        _ => 0,
    }
}

/// Builds one chunk of the chosen encoding from samples in time order.
#[derive(Debug)]
pub struct FloatChunkBuilder {
    enc: FloatEncoding,
    xor: XorChunk,
    xor2: Xor2Chunk,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

impl FloatChunkBuilder {
    /// An empty builder.
    pub fn new(enc: FloatEncoding) -> Self {
        Self {
            enc,
            xor: XorChunk::new(),
            xor2: Xor2Chunk::new(),
            ts: Vec::new(),
            vs: Vec::new(),
        }
    }

    /// The encoding being built.
    pub fn encoding(&self) -> FloatEncoding {
        self.enc
    }

    /// Samples pushed since the last [`Self::finish`].
    pub fn len(&self) -> usize {
        match self.enc {
            FloatEncoding::Xor => self.xor.num_samples(),
            FloatEncoding::Xor2 => self.xor2.num_samples(),
            FloatEncoding::Dense => self.ts.len(),
        }
    }

    /// Whether no sample was pushed since the last [`Self::finish`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a sample (timestamp after the previous one).
    pub fn push(&mut self, t: i64, v: f64) {
        match self.enc {
            FloatEncoding::Xor => self.xor.append(t, v),
            FloatEncoding::Xor2 => self.xor2.append(t, v),
            FloatEncoding::Dense => {
                self.ts.push(t);
                self.vs.push(v);
            }
        }
    }

    /// The chunk's bytes; the builder is empty again afterwards.
    pub fn finish(&mut self) -> Result<Vec<u8>, CodecError> {
        match self.enc {
            FloatEncoding::Xor => Ok(std::mem::take(&mut self.xor).into_bytes()),
            FloatEncoding::Xor2 => Ok(std::mem::take(&mut self.xor2).into_bytes()),
            FloatEncoding::Dense => {
                let mut out = Vec::new();
                let r = encode_dense(&self.ts, &self.vs, &mut out);
                self.ts.clear();
                self.vs.clear();
                r.map(|()| out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips_through_the_dispatch() {
        for enc in [
            FloatEncoding::Xor,
            FloatEncoding::Xor2,
            FloatEncoding::Dense,
        ] {
            assert_eq!(FloatEncoding::from_byte(enc.byte()), Some(enc));
            assert_eq!(enc.name().parse::<FloatEncoding>(), Ok(enc));
            let mut b = FloatChunkBuilder::new(enc);
            let want: Vec<(i64, u64)> = (0..200)
                .map(|i| {
                    (
                        1000 + i * 15_000 + i % 7,
                        (f64::from(i as u32) * 0.25).to_bits(),
                    )
                })
                .collect();
            for &(t, v) in &want {
                b.push(t, f64::from_bits(v));
            }
            assert_eq!(b.len(), 200);
            let data = b.finish().unwrap();
            assert!(b.is_empty());
            assert_eq!(float_chunk_samples(enc.byte(), &data), 200);
            let mut got = Vec::new();
            let n =
                decode_float_chunk(enc.byte(), &data, |t, v| got.push((t, v.to_bits()))).unwrap();
            assert_eq!((n, got), (200, want));
        }
        assert!("zstd".parse::<FloatEncoding>().is_err());
        assert!(decode_float_chunk(2, &[0, 0], |_, _| {}).is_err());
        assert!(decode_float_chunk(0x77, &[0, 0], |_, _| {}).is_err());
    }
}
