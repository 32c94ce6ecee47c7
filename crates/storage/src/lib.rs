//! Storage traits that the PromQL engine, the HTTP server and remote read
//! program against, with an in-memory implementation for tests.
//!
//! Contracts shared by every implementation:
//! - Time bounds are inclusive on both ends: a querier over `[mint, maxt]`
//!   returns samples with `mint <= t <= maxt`.
//! - [`Querier::select`] yields series sorted by [`Labels`](cairn_model::Labels) order, each label
//!   set once, and each series' samples in strictly increasing time order.
//! - Sample iterators follow Prometheus's chunk iterator protocol: `next` and
//!   `seek` return the [`ValueType`] of the sample they land on, or
//!   [`ValueType::None`] when exhausted (then [`SampleIterator::err`] tells
//!   whether it ended on an error).

mod error;
mod heap_size;
mod hist_merge;
mod memory;
mod merge;
mod traits;

pub use error::StorageError;
pub use heap_size::hash_table_bytes;
pub use hist_merge::{DecodedHistogram, WithHistograms};
pub use memory::{MemStorage, VecSampleIterator, VecSeries};
pub use merge::{
    merge_series_sets, ChunkEncoder, EncodeInput, MergeQuerier, MergeSampleIterator, MergedSeries,
};
pub use traits::read_floats_stepwise;
pub use traits::{
    Aggregate, Appendable, Appender, ChunkIterator, EncodedChunk, Metadata, MetricType, Prefetch,
    Querier, Queryable, SampleIterator, SelectHints, Series, SeriesExemplars, SeriesRef, SeriesSet,
    ValueType, RES_1H, RES_5M,
};

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
