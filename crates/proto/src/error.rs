//! The one error type of the proto crate.

/// Errors raised while decoding untrusted wire data.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The snappy block header or body was malformed.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// The decompressed size announced by the snappy header is over the limit.
    #[error("decompressed body of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    /// The protobuf message was malformed.
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The zero-copy decoder found malformed protobuf.
    #[error("protobuf: {0}")]
    Malformed(&'static str),
    /// A string field held bytes that are not UTF-8.
    #[error("invalid UTF-8 after {valid_up_to} valid bytes")]
    InvalidUtf8 { valid_up_to: usize },
    /// A remote write 2.0 reference pointed outside the symbol table.
    #[error("symbol reference {index} out of range (table has {len} symbols)")]
    SymbolOutOfRange { index: u32, len: usize },
    /// A remote write 2.0 label reference list had an odd length.
    #[error("odd number of label references ({len})")]
    OddLabelRefs { len: usize },
    /// A streamed-read frame's checksum did not match its payload.
    #[error(
        "frame at offset {offset}: CRC32C mismatch: expected {expected:#010x}, found {found:#010x}"
    )]
    FrameChecksum {
        offset: usize,
        expected: u32,
        found: u32,
    },
    /// A streamed-read frame was cut short or its length prefix was bad.
    #[error("frame at offset {offset}: {reason}")]
    FrameTruncated { offset: usize, reason: &'static str },
    /// A streamed-read frame announced more bytes than allowed.
    #[error("frame at offset {offset}: length {len} exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        offset: usize,
        len: u64,
        limit: usize,
    },
}
