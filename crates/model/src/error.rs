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
    /// A duration was the empty string.
    #[error("empty duration string")]
    EmptyDuration,
    /// A duration did not follow Prometheus's syntax (a term without a
    /// number or a unit, units out of order or repeated).
    #[error("not a valid duration string: {input:?}")]
    InvalidDuration { input: String },
    /// A duration term had a unit other than y, w, d, h, m, s and ms.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownDurationUnit { unit: String, input: String },
    /// A duration was longer than Prometheus's largest (about 292 years).
    #[error("duration out of range")]
    DurationOutOfRange { input: String },
    /// A number of seconds whose nanoseconds do not fit an `i64`.
    #[error("cannot parse {input:?} to a valid duration. It overflows int64")]
    SecondsOverflow { input: String },
}
