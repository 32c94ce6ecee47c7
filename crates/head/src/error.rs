//! The head's one error type.
//!
//! Append-time rejections (out of order, out of bounds, duplicates) are not
//! here: they are [`StorageError`] values, because the remote-write handler
//! maps exactly those to client errors. [`HeadError`] covers what goes wrong
//! underneath: the WAL, the head chunk files, corrupt data found on replay.

use cairn_storage::StorageError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Failures of the head's backing files and of replay.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The write-ahead log failed (open, log, checkpoint, truncate, replay).
    #[error("wal {op} in {dir}: {source}")]
    Wal {
        op: &'static str,
        dir: String,
        #[source]
        source: BoxError,
    },
    /// The head chunk files (`chunks_head/`) failed.
    #[error("head chunks {op} in {dir}: {source}")]
    Chunks {
        op: &'static str,
        dir: String,
        #[source]
        source: BoxError,
    },
    /// A chunk's bytes could not be decoded.
    #[error("decoding a chunk of series {series}: {source}")]
    Codec {
        series: u64,
        #[source]
        source: BoxError,
    },
    /// Evaluating matchers on the head's index failed.
    #[error("selecting {{{matchers}}} on the head index: {source}")]
    Index {
        matchers: String,
        #[source]
        source: cairn_index::IndexError,
    },
    /// The head snapshot's bytes are damaged.
    #[error(
        "head snapshot {path} is damaged at byte {offset}: expected {expected}, found {found}"
    )]
    SnapshotCorrupt {
        path: String,
        offset: u64,
        expected: String,
        found: String,
    },
    /// The head snapshot does not describe the chunk files beside it.
    #[error(
        "head snapshot {path} does not match the chunk files: expected {expected}, found {found}"
    )]
    SnapshotMismatch {
        path: String,
        expected: String,
        found: String,
    },
    /// A series without any label cannot be stored.
    #[error("empty label set")]
    EmptyLabels,
    /// The head's options are unusable.
    #[error("invalid head option {name}: {reason}")]
    InvalidOption { name: &'static str, reason: String },
}

impl From<HeadError> for StorageError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Io { context, source } => StorageError::Io { context, source },
            other => StorageError::Backend(Box::new(other)),
        }
    }
}

/// Result alias for the head's own operations.
pub type Result<T, E = HeadError> = std::result::Result<T, E>;
