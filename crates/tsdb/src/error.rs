//! The one error type of the tsdb crate.

use std::path::PathBuf;

/// A boxed error from another crate, kept with its message and source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors raised by blocks, compaction, retention, the `Db` handle and the
/// CLI helpers.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// An I/O call failed on `path`.
    #[error("{op} {path}: {source}", path = .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file held bytes that do not follow its format.
    #[error("corrupt {what} in {path}: expected {expected}, found {found}", path = .path.display())]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        expected: String,
        found: String,
    },
    /// meta.json could not be parsed or written.
    #[error("meta.json {path}: {source}", path = .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The index of a block failed.
    #[error("index {path}: {source}", path = .path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    /// The chunks of a block failed.
    #[error("chunks {path}: {source}", path = .path.display())]
    Chunks {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    /// A chunk failed to decode.
    #[error("chunk of series {series} in {path}: {source}", path = .path.display())]
    Chunk {
        path: PathBuf,
        series: String,
        #[source]
        source: BoxError,
    },
    /// The head failed.
    #[error("head: {0}")]
    Head(#[source] BoxError),
    /// A storage-trait call (querier, appender) failed.
    #[error("storage: {0}")]
    Storage(#[from] cairn_storage::StorageError),
    /// Input text (OpenMetrics) failed to parse.
    #[error("parse error at line {line}: {msg}")]
    Parse { line: usize, msg: String },
    /// Series handed to a block writer were not strictly label-sorted, or
    /// samples not strictly time-ordered.
    #[error("out of order input: {0}")]
    OutOfOrder(String),
    /// An argument made no sense (empty range, unknown block, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The database was closed.
    #[error("database is closed")]
    Closed,
}

impl TsdbError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TsdbError::Io { op, path, source }
    }
}

impl From<TsdbError> for cairn_storage::StorageError {
    fn from(e: TsdbError) -> Self {
        match e {
            TsdbError::Storage(s) => s,
            other => cairn_storage::StorageError::Backend(Box::new(other)),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = TsdbError> = std::result::Result<T, E>;
