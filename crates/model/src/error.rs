//! The one error type of the model crate.

/// Errors raised while building model values from untrusted input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// A regular expression in a matcher failed to compile.
    #[error("invalid regular expression {regex:?} for label {name:?}: {reason}")]
    InvalidRegex {
        name: String,
        regex: String,
        reason: String,
    },
    /// A label set was not strictly sorted by name.
    #[error("labels are not sorted: {prev:?} comes before {next:?}")]
    UnsortedLabels { prev: String, next: String },
    /// A label name occurred twice.
    #[error("duplicate label name {name:?}")]
    DuplicateLabel { name: String },
    /// A label name was empty.
    #[error("empty label name")]
    EmptyLabelName,
    /// A label name was not a valid Prometheus label name.
    #[error("invalid label name {name:?}")]
    InvalidLabelName { name: String },
}
