//! The crate's single error type.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = ChunksError> = std::result::Result<T, E>;

/// Errors of the chunk segment files.
#[derive(Debug, Error)]
pub enum ChunksError {
    /// An operating-system call failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// File contents are not what a correct writer produces (bad magic,
    /// version, truncated record, checksum mismatch, ...).
    #[error("corrupt {what} in {path} at offset {offset}: expected {expected}, found {found}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged structure in that file.
        offset: u64,
        /// Which structure is damaged.
        what: &'static str,
        /// What a valid file has there.
        expected: String,
        /// What the file has.
        found: String,
    },
    /// A chunk reference that points at no file of this reader.
    #[error("chunk ref {chunk_ref:#x} is invalid: {reason}")]
    BadRef {
        /// The reference.
        chunk_ref: u64,
        /// Why it does not resolve.
        reason: String,
    },
    /// A block chunk directory to create already holds segment files.
    #[error("chunk directory {path} already contains segment files")]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A chunk is too large for the format (its offset or length would not fit).
    #[error("chunk of {len} bytes cannot be stored in {path}")]
    ChunkTooLarge {
        /// The directory written to.
        path: PathBuf,
        /// Chunk data length.
        len: usize,
    },
    /// Head chunk files have a gap in their numbering.
    #[error("head chunk files in {dir} are not sequential: {prev:06} is followed by {next:06}")]
    NotSequential {
        /// The `chunks_head` directory.
        dir: PathBuf,
        /// The file before the gap.
        prev: u32,
        /// The file after the gap.
        next: u32,
    },
}

impl ChunksError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ChunksError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: &Path,
        offset: usize,
        what: &'static str,
        expected: impl ToString,
        found: impl ToString,
    ) -> Self {
        ChunksError::Corruption {
            path: path.to_path_buf(),
            offset: offset as u64,
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// For [`ChunksError::Corruption`], the number in the damaged file's name
    /// (e.g. 3 for `000003`), so callers can drop that file and later ones.
    pub fn corrupt_file_number(&self) -> Option<u32> {
        match self {
            ChunksError::Corruption { path, .. } => path.file_name()?.to_str()?.parse().ok(),
            _ => None,
        }
    }
}
