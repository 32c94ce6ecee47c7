//! What the server needs from storage: appends, queries, and a few numbers
//! for `/metrics` and `/-/ready`.
//!
//! The numbers come through [`Backend::stats`], whose default reports
//! nothing; a storage that knows its head size or fsync timings overrides
//! it, and `/metrics` shows whichever values are present.

use cairn_storage::{Appendable, MemStorage, Queryable};

/// A summary of observed durations (count and total seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DurationSummary {
    pub count: u64,
    pub sum_seconds: f64,
}

/// Numbers a backend may report; `None` means "not known", not zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendStats {
    /// Series in the in-memory head.
    pub head_series: Option<u64>,
    /// Chunks in the head.
    pub head_chunks: Option<u64>,
    /// Lowest and highest sample timestamps in the head (ms).
    pub head_min_time: Option<i64>,
    pub head_max_time: Option<i64>,
    /// Persisted blocks.
    pub blocks: Option<u64>,
    /// WAL fsync durations.
    pub wal_fsync: Option<DurationSummary>,
    /// Compactions run (merges of blocks; head cuts apart) and failed
    /// maintenance rounds.
    pub compactions: Option<u64>,
    pub compactions_failed: Option<u64>,
    /// Head cuts into blocks, and downsampled blocks written.
    pub head_cuts: Option<u64>,
    pub downsamplings: Option<u64>,
    /// Blocks deleted by retention, by reason (`time`, `size`, ...).
    pub retention_deletions: Vec<(&'static str, u64)>,
    /// Bytes of the blocks on disk by resolution (`raw`, `5m`, `1h`).
    pub block_bytes: Vec<(&'static str, u64)>,
    /// Alerts sent to Alertmanager, failed sends, alerts dropped from a
    /// full queue; `None` without an Alertmanager.
    pub notifications: Option<(u64, u64, u64)>,
    /// `cairn_build_info` labels (version, revision, ...).
    pub build_info: Vec<(&'static str, String)>,
    /// The exemplar store, when the storage keeps one.
    pub exemplars: Option<ExemplarCounts>,
    /// Uploads to object storage, when a bucket is configured.
    pub objstore: Option<ObjstoreCounts>,
    /// Queries' reads of blocks in the bucket, when a bucket is configured.
    pub bucket_store: Option<BucketStoreCounts>,
    /// Selections sent to `--query.store`s and how many failed, when
    /// there are any.
    pub query_stores: Option<(u64, u64)>,
    /// Late and out-of-order samples, when the storage takes them.
    pub out_of_order: Option<OutOfOrderCounts>,
    /// Configured ingestion limits by name (0: none), shown as
    /// `cairn_limit{limit="..."}`.
    pub limits: Vec<(&'static str, u64)>,
}

/// What the shipper has done since start (`--objstore.config-file`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjstoreCounts {
    pub uploads_total: u64,
    pub upload_failures_total: u64,
    pub uploaded_bytes_total: u64,
    pub marked_for_deletion_total: u64,
    /// Marked blocks and abandoned partial uploads deleted from the bucket.
    pub deleted_total: u64,
    /// Local blocks not in the bucket yet.
    pub blocks_pending: u64,
}

/// What serving the bucket's blocks to queries has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketStoreCounts {
    /// Blocks in the bucket that queries may read (meta.json present, not
    /// marked for deletion).
    pub blocks: u64,
    /// Of those, opened by a query (index header loaded).
    pub blocks_open: u64,
    pub refreshes_total: u64,
    pub refresh_failures_total: u64,
    pub index_headers_fetched_total: u64,
    pub index_header_bytes_total: u64,
    pub cache_hits_total: u64,
    pub cache_misses_total: u64,
    pub cache_bytes: u64,
    pub cache_capacity_bytes: u64,
    pub range_requests_total: u64,
    pub range_bytes_total: u64,
}

/// What the storage's exemplar store holds and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExemplarCounts {
    /// Capacity (`--storage.exemplars.exemplars-limit`).
    pub max: u64,
    /// Exemplars held, and series they belong to.
    pub held: u64,
    pub series: u64,
    /// Added since start, and refused as out of order.
    pub appended_total: u64,
    pub out_of_order_total: u64,
}

/// Out-of-order samples (late ones included) and their conflicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutOfOrderCounts {
    /// Out-of-order samples held in memory, not yet in blocks.
    pub late_held: u64,
    /// Late samples accepted since start.
    pub late_appended_total: u64,
    /// Out-of-order samples written to blocks since start.
    pub late_flushed_total: u64,
    /// Out-of-order samples dropped for a buffered timestamp with another value.
    pub conflicts_total: u64,
}

/// Memory the storage holds, by component, for `/debug/memory`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Series the figures are divided by (the head's series).
    pub series: u64,
    /// Component name and bytes.
    pub components: Vec<(&'static str, u64)>,
    /// Figures shown beside the components but not added to them, named
    /// with what they are: `(of which) storage.x` for the part of a
    /// component in use, `(in files) storage.x` for what the storage keeps
    /// in files instead of memory.
    pub details: Vec<(&'static str, u64)>,
}

/// Storage as the server sees it.
pub trait Backend: Appendable + Queryable + Send + Sync + 'static {
    /// Numbers for `/metrics`. Called once per scrape; must be cheap.
    fn stats(&self) -> BackendStats {
        BackendStats::default()
    }

    /// Memory by component for `/debug/memory`; may walk every series, so
    /// it is only called on request. `None`: not known.
    fn memory(&self) -> Option<MemoryReport> {
        None
    }

    /// False while the storage is not ready to serve (WAL replay, say);
    /// `/-/ready` then answers 503.
    fn ready(&self) -> bool {
        true
    }

    /// `POST /-/reload`: reloads configuration (rule files). `None`:
    /// nothing to reload; `Some(Err(message))`: the reload failed.
    fn reload(&self) -> Option<Result<(), String>> {
        None
    }
}

impl Backend for MemStorage {
    fn stats(&self) -> BackendStats {
        BackendStats {
            head_series: Some(self.num_series() as u64),
            ..BackendStats::default()
        }
    }
}
