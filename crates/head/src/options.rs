//! Options of the head.

use crate::wal_log::WalOptions;

/// Two hours in milliseconds: Prometheus's default block and chunk range.
pub const DEFAULT_CHUNK_RANGE: i64 = 2 * 3600 * 1000;

/// How the head is configured. [`HeadOptions::default`] matches Prometheus.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Width of the time ranges (ms) chunks never cross, aligned to
    /// multiples of it: the range of the blocks cut from the head.
    pub chunk_range: i64,
    /// Out-of-order window in ms; 0 disables out-of-order ingestion.
    /// Samples older than a series' newest one are accepted when they are
    /// no older than the head's max time minus this window.
    pub ooo_window: i64,
    /// The WAL's options; `None` runs without a WAL (nothing survives a
    /// restart except the head chunk files, which are then dropped).
    pub wal: Option<WalOptions>,
    /// The target number of samples per in-order chunk (Prometheus: 120):
    /// chunks are cut on an estimate made when a chunk is a quarter full,
    /// and at twice the target at the latest (see [`crate::cut`]).
    pub samples_per_chunk: usize,
    /// Out-of-order samples kept unencoded per series before they are cut
    /// into an encoded out-of-order chunk (Prometheus: 32).
    pub ooo_capacity: usize,
    /// Samples before this time are already in blocks: replay skips them and
    /// appends before it are out of bounds (Prometheus's `Head.Init`). The
    /// database sets it to the newest block's max time on open.
    pub min_valid_time: i64,
    /// Number of lock stripes of the series maps; rounded up to a power of two.
    pub stripes: usize,
    /// Whether open chunks move their settled bytes to spill files in
    /// `head_spill/` and keep only a small tail in memory (see
    /// `docs/head.md`, "Memory"). On by default.
    pub spill_open_chunks: bool,
    /// Threads that apply the WAL on open (the decoding thread hands each
    /// series' records to one of them by label hash); 1 applies on the
    /// opening thread, which then also decodes. The segments are read on
    /// a thread of their own either way. Default: one less than the
    /// available cores, at least 1 and at most 8. On two cores, after a
    /// crash of a two-hour head, one applying thread was ready in 25 to
    /// 30 s and two in 27 to 71 s; on a young head with nothing in chunk
    /// files two were about 17 % faster (`docs/benchmarks.md`, "Restart
    /// after kill -9").
    pub replay_threads: usize,
    /// Threads that build the series, label sets and index entries when
    /// the head is loaded from its snapshot (`snapshot`), beside the one
    /// reading it. Default: the available cores, at most 8.
    pub snapshot_threads: usize,
    /// Where the WAL replay on open says how far it has got (for
    /// `/api/v1/status/walreplay`; see [`crate::ReplayStatus`]).
    pub replay_status: Option<std::sync::Arc<crate::ReplayStatus>>,
    /// Capacity of the exemplar ring (see `exemplars`): the newest this
    /// many exemplars of all series are kept; 0 keeps none. Prometheus's
    /// `storage.exemplars.max_exemplars`, default 100,000.
    pub max_exemplars: usize,
    /// Most series the head holds: an append that would create one more is
    /// [`cairn_storage::StorageError::SeriesLimit`] (existing series still
    /// take samples). 0: no limit. Checked when a series is created, so
    /// concurrent creations may pass it by a few.
    pub max_series: u64,
    /// Most series of one metric name (`__name__`), likewise
    /// ([`cairn_storage::StorageError::MetricSeriesLimit`]); 0: no limit.
    pub max_series_per_metric: u64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            chunk_range: DEFAULT_CHUNK_RANGE,
            ooo_window: 0,
            wal: Some(WalOptions::default()),
            samples_per_chunk: 120,
            ooo_capacity: 32,
            min_valid_time: i64::MIN,
            stripes: 4096,
            spill_open_chunks: true,
            replay_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).clamp(1, 8)),
            snapshot_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            replay_status: None,
            max_exemplars: crate::exemplars::DEFAULT_MAX_EXEMPLARS,
            max_series: 0,
            max_series_per_metric: 0,
        }
    }
}
