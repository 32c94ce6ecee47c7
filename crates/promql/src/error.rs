//! The one error type of the PromQL crate.
//!
//! Messages of the evaluation variants match Prometheus's text where the
//! conformance scripts check them (`expect fail msg: ...`), so `Display`
//! of [`PromqlError::Eval`] is the bare message.

/// Everything that can go wrong parsing or evaluating a query.
#[derive(Debug, thiserror::Error)]
pub enum PromqlError {
    /// The query text did not parse.
    #[error("{0}")]
    Parse(String),
    /// Evaluation failed with a Prometheus-style message.
    #[error("{0}")]
    Eval(String),
    /// The query touched more samples than `max_samples` allows.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran past its timeout.
    #[error("query timed out in query execution")]
    Timeout,
    /// The storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] cairn_storage::StorageError),
}

/// Result alias for this crate.
pub type Result<T, E = PromqlError> = std::result::Result<T, E>;

/// Shorthand for an evaluation error.
pub(crate) fn eval_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(PromqlError::Eval(msg.into()))
}
