//! The storage error type, shared by every implementation of the traits.

use cairn_model::ModelError;

/// Errors an implementation of the storage traits reports.
///
/// The append-time variants mirror Prometheus's, because remote write maps
/// them to status codes: they are the sender's fault and must not be retried.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("out of order sample at {t}")]
    OutOfOrderSample { t: i64 },
    #[error(
        "out of bounds: sample at {t} is older than the head's minimum valid time {min_valid}"
    )]
    OutOfBounds { t: i64, min_valid: i64 },
    #[error("too old sample at {t}: outside the out-of-order window")]
    TooOldSample { t: i64 },
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateSampleForTimestamp { t: i64 },
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] ModelError),
    #[error("start timestamp {st} is not before its sample's timestamp {t}")]
    StartTimestampNotBefore { st: i64, t: i64 },
    #[error("start timestamp {st} is not after the series' newest sample")]
    OutOfOrderStart { st: i64 },
    #[error("this storage does not ingest start timestamps as zero samples")]
    StartZeroUnsupported,
    #[error("the limit of {limit} series is reached: new series are refused (existing ones still accepted)")]
    SeriesLimit { limit: u64 },
    #[error("the limit of {limit} series per metric is reached for {metric:?}: its new series are refused")]
    MetricSeriesLimit { metric: String, limit: u64 },
    #[error("out of order exemplar at {ts}")]
    OutOfOrderExemplar { ts: i64 },
    #[error("exemplar labels have {len} UTF-8 characters, exceeding the limit of 128")]
    ExemplarLabelsTooLong { len: usize },
    #[error("this storage does not keep native histograms")]
    HistogramsUnsupported,
    #[error("invalid native histogram: {reason}")]
    InvalidHistogram { reason: String },
    #[error("duplicate sample for timestamp {t} with a different histogram")]
    DuplicateHistogramForTimestamp { t: i64 },
    #[error("exemplar storage is disabled")]
    ExemplarStorageDisabled,
    #[error("series {series} not found")]
    SeriesNotFound { series: u64 },
    #[error("storage is closed")]
    Closed,
    #[error("query canceled")]
    Canceled,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A failure of the backing store that has no variant of its own here;
    /// the source keeps the implementation's error with its context.
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// True for errors that are the caller's fault (bad or late data), which
    /// a sender must not retry.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            StorageError::OutOfOrderSample { .. }
                | StorageError::OutOfBounds { .. }
                | StorageError::TooOldSample { .. }
                | StorageError::DuplicateSampleForTimestamp { .. }
                | StorageError::InvalidLabels(_)
                | StorageError::OutOfOrderExemplar { .. }
                | StorageError::SeriesLimit { .. }
                | StorageError::MetricSeriesLimit { .. }
                | StorageError::ExemplarLabelsTooLong { .. }
                | StorageError::InvalidHistogram { .. }
                | StorageError::DuplicateHistogramForTimestamp { .. }
        )
    }
}
