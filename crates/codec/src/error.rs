//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong while decoding or encoding chunk data.
///
/// Decoders never panic on malformed input; they report one of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before the value being decoded was complete.
    #[error("unexpected end of data at bit {bit_offset} while reading {what}")]
    UnexpectedEof {
        /// What was being decoded.
        what: &'static str,
        /// Bit offset (from the start of the decoded slice) where it failed.
        bit_offset: usize,
    },
    /// A varint was longer than 10 bytes or overflowed 64 bits.
    #[error("varint overflows 64 bits at byte offset {offset}")]
    VarintOverflow {
        /// Byte offset of the varint's first byte.
        offset: usize,
    },
    /// The data decodes but is not something a correct writer produces.
    #[error("corrupt {what}: expected {expected}, found {found}")]
    Corruption {
        /// Which structure is corrupt.
        what: &'static str,
        /// What a valid encoding has here.
        expected: String,
        /// What the data has.
        found: String,
    },
    /// The encoding byte names no encoding known to Cairn.
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
    /// The encoding is a valid Prometheus encoding that Cairn does not decode yet.
    #[error("chunk encoding {0:?} is not supported yet")]
    UnsupportedEncoding(crate::Encoding),
    /// The chunk already holds the maximum number of samples.
    #[error("chunk is full ({max} samples)")]
    ChunkFull {
        /// The maximum number of samples a chunk header can count.
        max: usize,
    },
}
