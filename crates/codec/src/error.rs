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
    /// A read wanted more bytes than were left.
    #[error("truncated data: {need} bytes wanted at byte offset {offset}, {have} left")]
    Truncated {
        /// Byte offset of the read that failed.
        offset: usize,
        /// Bytes the read wanted.
        need: u64,
        /// Bytes that were left.
        have: usize,
    },
    /// A length-prefixed string's bytes were not UTF-8.
    #[error("invalid UTF-8 string at byte offset {offset}")]
    NotUtf8 {
        /// Byte offset of the string's first byte (after its length).
        offset: usize,
    },
    /// A varint decoded to more than the field may hold.
    #[error("value {found} at byte offset {offset} does not fit {bits} bits")]
    ValueTooLarge {
        /// Byte offset of the varint's first byte.
        offset: usize,
        /// Width of the field.
        bits: u32,
        /// The value read.
        found: u64,
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
    /// A histogram handed to an encoder cannot be written as asked: its
    /// bucket counts do not match its spans or the chunk's layout, or it
    /// would follow a stale marker in the same chunk.
    #[error("invalid histogram {what}: expected {expected}, found {found}")]
    InvalidHistogram {
        /// What is wrong with it.
        what: &'static str,
        /// What the encoder needs.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// An append-only histogram append needs a new chunk or a recoded one
    /// (Prometheus's `appendOnly` errors: a counter reset, a schema change,
    /// a layout change).
    #[error("histogram not appendable: {reason}")]
    NotAppendable {
        /// Why, in Prometheus's words.
        reason: String,
    },
    /// The chunk already holds the maximum number of samples.
    #[error("chunk is full ({max} samples)")]
    ChunkFull {
        /// The maximum number of samples a chunk header can count.
        max: usize,
    },
}

impl CodecError {
    /// The byte offset where a read failed, for the variants that have one.
    pub fn byte_offset(&self) -> Option<usize> {
        match self {
            CodecError::Truncated { offset, .. }
            | CodecError::NotUtf8 { offset }
            | CodecError::ValueTooLarge { offset, .. }
            | CodecError::VarintOverflow { offset } => Some(*offset),
            CodecError::UnexpectedEof { bit_offset, .. } => Some(bit_offset / 8),
            _ => None,
        }
    }

    /// The same error with its offset moved by `base`, e.g. from a
    /// section's start to the file's.
    pub fn offset_by(mut self, base: usize) -> Self {
        match &mut self {
            CodecError::Truncated { offset, .. }
            | CodecError::NotUtf8 { offset }
            | CodecError::ValueTooLarge { offset, .. }
            | CodecError::VarintOverflow { offset } => *offset = offset.saturating_add(base),
            CodecError::UnexpectedEof { bit_offset, .. } => {
                *bit_offset = bit_offset.saturating_add(base.saturating_mul(8));
            }
            _ => {}
        }
        self
    }

    /// `(expected, found)` wording for a corruption error built from this one.
    pub fn expected_found(&self) -> (String, String) {
        match self {
            CodecError::Truncated { need, have, .. } => (
                format!("{need} more bytes"),
                format!("{have} bytes before the end"),
            ),
            CodecError::UnexpectedEof { what, .. } => (
                format!("a complete {what}"),
                "the end of the data".to_owned(),
            ),
            CodecError::VarintOverflow { .. } => (
                "a varint of at most 64 bits".to_owned(),
                "an overlong varint".to_owned(),
            ),
            CodecError::ValueTooLarge { bits, found, .. } => {
                (format!("a value of at most {bits} bits"), found.to_string())
            }
            CodecError::NotUtf8 { .. } => (
                "a UTF-8 string".to_owned(),
                "invalid UTF-8 bytes".to_owned(),
            ),
            CodecError::Corruption {
                expected, found, ..
            } => (expected.clone(), found.clone()),
            other => ("valid data".to_owned(), other.to_string()),
        }
    }
}
