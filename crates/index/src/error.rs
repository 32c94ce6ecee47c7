//! The one error type of the index crate.

use std::path::PathBuf;

/// Everything that can go wrong writing or reading an index file.
///
/// Reader errors name the file and the byte offset involved; corruption is
/// reported with what the format demands (`expected`) and what the file holds
/// (`found`).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// An I/O call on `path` failed.
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the index magic number.
    #[error("{path}: not an index file: magic expected {expected:#010x}, found {found:#010x}")]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    /// The file carries a format version this crate cannot read.
    #[error("{path}: unsupported index format version {found} (readable: 1 and 2)")]
    UnsupportedVersion { path: PathBuf, found: u8 },
    /// A section's CRC32-Castagnoli does not match its bytes.
    #[error(
        "{path}: checksum mismatch in {section} at offset {offset}: expected {expected:#010x}, found {found:#010x}"
    )]
    Checksum {
        path: PathBuf,
        section: &'static str,
        offset: u64,
        expected: u32,
        found: u32,
    },
    /// Bytes that violate the format: truncation, bad lengths, unknown
    /// symbols, unsorted tables and the like.
    #[error("{path}: corrupt {section} at offset {offset}: expected {expected}, found {found}")]
    Corrupt {
        path: PathBuf,
        section: &'static str,
        offset: u64,
        expected: String,
        found: String,
    },
    /// A series reference that does not point at a series entry.
    #[error("{path}: series {series} not found: {reason}")]
    SeriesNotFound {
        path: PathBuf,
        series: u64,
        reason: String,
    },
    /// The writer was fed input out of order (symbols, series, chunks).
    #[error("{path}: out-of-order {what}: {prev} must sort before {next}")]
    OutOfOrder {
        path: PathBuf,
        what: &'static str,
        prev: String,
        next: String,
    },
    /// The writer was given a value the format cannot hold.
    #[error("{path}: invalid {what}: {reason}")]
    InvalidInput {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
