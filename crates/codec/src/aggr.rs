//! The aggregate chunk (encoding byte 0xff) of downsampled blocks: up to
//! five sub-chunks (count, sum, min, max, counter) in one chunk, in the
//! layout of Thanos's `AggrChunk` (docs/format/downsample.md).
//!
//! This module only frames sub-chunks; what their points mean is the
//! downsampler's business (`cairn_tsdb::downsample`). Contracts: an absent
//! aggregate is a zero-length entry; every present entry is a float chunk
//! (XOR as Thanos writes them, or XOR2 or Cairn's dense chunk, each with
//! its own encoding byte); exactly five entries, nothing after them.

use crate::varint::{put_uvarint, uvarint};
use crate::{is_float_encoding, CodecError, Encoding};

/// Encoding byte of aggregate chunks (Thanos's `ChunkEncAggr`).
pub const ENCODING_AGGR: u8 = 0xff;

/// The aggregates of a downsampled window, in their on-disk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggrKind {
    /// Raw samples in the window.
    Count = 0,
    /// Their sum.
    Sum = 1,
    /// Their minimum.
    Min = 2,
    /// Their maximum.
    Max = 3,
    /// Raw counter samples kept so that increases and resets survive.
    Counter = 4,
}

impl AggrKind {
    /// All five, in on-disk order.
    pub const ALL: [AggrKind; 5] = [
        AggrKind::Count,
        AggrKind::Sum,
        AggrKind::Min,
        AggrKind::Max,
        AggrKind::Counter,
    ];

    /// Lower-case name, as Thanos spells it.
    pub fn name(self) -> &'static str {
        match self {
            AggrKind::Count => "count",
            AggrKind::Sum => "sum",
            AggrKind::Min => "min",
            AggrKind::Max => "max",
            AggrKind::Counter => "counter",
        }
    }
}

/// One aggregate's float chunk: its encoding byte and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubChunk<'a> {
    /// A float encoding ([`crate::FloatEncoding`]'s bytes).
    pub encoding: u8,
    /// The chunk's bytes.
    pub data: &'a [u8],
}

/// The sub-chunks of one aggregate chunk, indexed by [`AggrKind`];
/// `None` where the aggregate is absent.
pub type AggrParts<'a> = [Option<SubChunk<'a>>; 5];

/// Frames float sub-chunks (by [`AggrKind`] index) as an aggregate
/// chunk's data. An empty one is written as absent.
pub fn encode_aggr(parts: &AggrParts<'_>) -> Vec<u8> {
    let len: usize = parts.iter().flatten().map(|p| p.data.len() + 11).sum();
    let mut out = Vec::with_capacity(len + 5);
    for p in parts {
        match p {
            Some(b) if !b.data.is_empty() => {
                put_uvarint(&mut out, b.data.len() as u64);
                out.push(b.encoding);
                out.extend_from_slice(b.data);
            }
            _ => out.push(0),
        }
    }
    out
}

/// Splits an aggregate chunk's data into its sub-chunks. Errors on a
/// length running past the data, a sub-chunk that is not a float chunk,
/// or bytes after the fifth entry.
pub fn decode_aggr(data: &[u8]) -> Result<AggrParts<'_>, CodecError> {
    let mut parts: AggrParts<'_> = [None; 5];
    let mut off = 0usize;
    for slot in parts.iter_mut() {
        let rest = data.get(off..).unwrap_or(&[]);
        let (len, n) = uvarint(rest).map_err(|e| shift(e, off))?;
        off += n;
        if len == 0 {
            continue;
        }
        let enc = *data.get(off).ok_or(CodecError::Truncated {
            offset: off,
            need: 1,
            have: 0,
        })?;
        if !is_float_encoding(enc) {
            return Err(CodecError::UnsupportedEncoding(Encoding::try_from(enc)?));
        }
        off += 1;
        let have = data.len().saturating_sub(off);
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| off.checked_add(l))
            .filter(|&e| e <= data.len())
            .ok_or(CodecError::Truncated {
                offset: off,
                need: len,
                have,
            })?;
        *slot = data.get(off..end).map(|d| SubChunk {
            encoding: enc,
            data: d,
        });
        off = end;
    }
    if off != data.len() {
        return Err(CodecError::Corruption {
            what: "aggregate chunk",
            expected: format!("{off} bytes (five entries)"),
            found: format!("{} bytes", data.len()),
        });
    }
    Ok(parts)
}

/// Moves a varint error's offset from a sub-slice to the whole chunk.
fn shift(e: CodecError, by: usize) -> CodecError {
    match e {
        CodecError::Truncated { offset, need, have } => CodecError::Truncated {
            offset: offset + by,
            need,
            have,
        },
        CodecError::VarintOverflow { offset } => CodecError::VarintOverflow {
            offset: offset + by,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;
    use crate::{XorChunk, ENCODING_XOR};
    use proptest::prelude::*;

    fn xor(points: &[(i64, f64)]) -> Vec<u8> {
        let mut c = XorChunk::new();
        for &(t, v) in points {
            c.append(t, v);
        }
        c.into_bytes()
    }

    fn x(data: &[u8]) -> SubChunk<'_> {
        SubChunk {
            encoding: ENCODING_XOR,
            data,
        }
    }

    #[test]
    fn layout_matches_the_spec() {
        let count = xor(&[(300_000, 10.0)]);
        let parts: AggrParts<'_> = [Some(x(&count)), None, None, None, None];
        let data = encode_aggr(&parts);
        let mut want = vec![count.len() as u8, ENCODING_XOR];
        want.extend_from_slice(&count);
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(data, want);
        assert_eq!(decode_aggr(&data).unwrap(), parts);
    }

    #[test]
    fn bad_chunks_are_named_errors() {
        // Cut short inside the first sub-chunk.
        let count = xor(&[(1, 1.0), (2, 2.0)]);
        let data = encode_aggr(&[Some(x(&count)), None, None, None, None]);
        assert!(matches!(
            decode_aggr(&data[..4]),
            Err(CodecError::Truncated { .. })
        ));
        // A histogram sub-chunk.
        assert!(matches!(
            decode_aggr(&[1, 2, 0, 0, 0, 0, 0]),
            Err(CodecError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decode_aggr(&[1, 9, 0, 0, 0, 0, 0]),
            Err(CodecError::UnknownEncoding(9))
        ));
        // Trailing bytes.
        assert!(matches!(
            decode_aggr(&[0, 0, 0, 0, 0, 7]),
            Err(CodecError::Corruption { .. })
        ));
        // Too few entries.
        assert!(decode_aggr(&[0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(present in proptest::array::uniform5(any::<bool>()),
                      pts in proptest::collection::vec((0i64..1_000_000, any::<f64>()), 1..50)) {
            let mut sorted = pts.clone();
            sorted.sort_by_key(|p| p.0);
            sorted.dedup_by_key(|p| p.0);
            let sub = xor(&sorted);
            let parts: AggrParts<'_> = std::array::from_fn(|i| present[i].then_some(x(&sub)));
            let data = encode_aggr(&parts);
            prop_assert_eq!(decode_aggr(&data).unwrap(), parts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Lengths may be written as overlong varints, so compare parts.
            if let Ok(parts) = decode_aggr(&data) {
                let again = encode_aggr(&parts);
                prop_assert_eq!(decode_aggr(&again).unwrap(), parts);
            }
        }
    }
}
