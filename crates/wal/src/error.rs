//! The one error type of the WAL crate.
//!
//! Every variant names where it happened (directory, segment, byte offset) so
//! an operator can find the damaged file. Damaged bytes are always
//! [`WalError::Corruption`] (inside a segment's page/fragment layer, or a
//! record that failed to decode while replaying a segment) or
//! [`WalError::RecordCorrupt`] (a record handed to [`crate::record::decode`]
//! on its own).

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = WalError> = std::result::Result<T, E>;

/// Errors raised by the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed on `path`.
    #[error("WAL i/o error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A segment's bytes do not follow the page/fragment format, or a record
    /// inside it does not decode. `offset` is the byte offset inside the
    /// segment file where the bad fragment or record starts.
    #[error(
        "corrupt WAL segment {segment:08} in {} at offset {offset}: expected {expected}, found {found}",
        dir.display()
    )]
    Corruption {
        dir: PathBuf,
        segment: u32,
        offset: u64,
        expected: String,
        found: String,
    },
    /// A record's bytes do not follow its type's encoding. `offset` is the
    /// byte offset inside the record.
    #[error("corrupt WAL record at byte {offset}: expected {expected}, found {found}")]
    RecordCorrupt {
        offset: usize,
        expected: String,
        found: String,
    },
    /// A record whose type byte this crate does not decode (exemplars,
    /// histograms, mmap markers, ...). Replay skips these and counts them.
    #[error("unknown WAL record type {found}")]
    UnknownRecordType { found: u8 },
    /// A segment uses a feature this crate cannot read (zstd-compressed
    /// records, written by newer Prometheus versions).
    #[error("WAL segment {segment:08} in {} at offset {offset}: unsupported {what}", dir.display())]
    Unsupported {
        dir: PathBuf,
        segment: u32,
        offset: u64,
        what: String,
    },
    /// Segment numbers in a directory are not consecutive, so records are
    /// missing.
    #[error("WAL segments in {} are not consecutive: expected {expected:08}, found {found:08}", dir.display())]
    SegmentGap {
        dir: PathBuf,
        expected: u32,
        found: u32,
    },
    /// A checkpoint was requested over a range that leaves a hole after the
    /// previous checkpoint, or other misuse of the checkpoint API.
    #[error("bad WAL checkpoint request in {}: {reason}", dir.display())]
    Checkpoint { dir: PathBuf, reason: String },
    /// The options passed to [`crate::Wal::open`] are unusable.
    #[error("invalid WAL options: {reason}")]
    InvalidOptions { reason: String },
    /// An earlier write failed part-way; the in-memory position no longer
    /// matches the file, so the log refuses further writes until reopened.
    #[error("WAL in {} is unusable after an earlier write error: {reason}", dir.display())]
    Poisoned { dir: PathBuf, reason: String },
    /// The replay callback returned an error of its own.
    #[error("WAL replay consumer failed: {source}")]
    Consumer {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl WalError {
    /// Wraps an error raised by a replay callback.
    pub fn consumer(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        WalError::Consumer { source: e.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            source,
        }
    }
}
