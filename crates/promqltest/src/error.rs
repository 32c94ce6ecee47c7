//! The one error type of the script runner.

/// What can stop a run of scripts (a failing eval is not an error: it is
/// counted in the summary).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// Reading a script or writing the report failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = TestError> = std::result::Result<T, E>;
