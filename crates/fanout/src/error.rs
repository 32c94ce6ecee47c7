//! The crate's one error type.

/// What went wrong reading another store.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The request could not be made or answered (connection, timeout).
    #[error("remote read from {url}: {reason}")]
    Request { url: String, reason: String },
    /// The store answered with an error status.
    #[error("remote read from {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// The answer does not decode: framing, protobuf or a chunk.
    #[error("remote read from {url}: corrupt answer: {what}")]
    Corrupt { url: String, what: String },
}

pub type Result<T> = std::result::Result<T, FanoutError>;

impl From<FanoutError> for cairn_storage::StorageError {
    fn from(e: FanoutError) -> Self {
        cairn_storage::StorageError::Backend(Box::new(e))
    }
}
