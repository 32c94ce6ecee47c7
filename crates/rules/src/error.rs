//! The rules crate's one error type.

/// Failures of loading rule files.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A rule file could not be read.
    #[error("reading rule file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A glob of `--rule.file` is malformed.
    #[error("rule file pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    /// A rule file does not parse or a group or rule in it is wrong; the
    /// message names the group and rule (and the line where known).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, RulesError>;
