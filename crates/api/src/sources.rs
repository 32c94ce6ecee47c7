//! What the API asks of the rest of the system besides storage and the
//! engine: metric metadata, head statistics and the admin operations. Each
//! is optional; the binary wires the database in (`crates/cmd`).

use cairn_model::Matcher;
use cairn_storage::Metadata;

/// Metric metadata known to the store (fed by remote write).
pub trait MetadataSource: Send + Sync {
    /// Metric name and its metadata entries.
    fn metadata(&self) -> Vec<(String, Metadata)>;
}

/// Head statistics for /api/v1/status/tsdb.
#[derive(Debug, Clone, Default)]
pub struct TsdbStats {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// One persisted block, for `/api/v1/status/blocks` (Cairn's own).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockInfo {
    pub ulid: String,
    /// `[min_time, max_time)`, ms.
    pub min_time: i64,
    pub max_time: i64,
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// Compaction level (1 for head cuts).
    pub level: u32,
    /// Downsampling resolution in ms; 0 for raw blocks.
    pub resolution: i64,
    /// Bytes on disk.
    pub bytes: u64,
    /// meta.json's compaction hints (`from-out-of-order`).
    pub hints: Vec<String>,
}

/// Supplies /api/v1/status/tsdb (and Cairn's /api/v1/status/blocks).
pub trait TsdbStatsSource: Send + Sync {
    /// Statistics with each top list cut to `limit` entries.
    fn tsdb_stats(&self, limit: usize) -> TsdbStats;
    /// The persisted blocks, oldest first.
    fn blocks(&self) -> Vec<BlockInfo> {
        Vec::new()
    }
    /// The persisted blocks' `meta.json` as Prometheus's `tsdb.BlockMeta`
    /// marshals it (no `thanos` section), oldest first: for
    /// /api/v1/status/tsdb/blocks.
    fn block_metas(&self) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

/// Why an admin operation failed. Every kind answers 500 `internal` with
/// the error's own text, as Prometheus answers a failed TSDB call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The storage refused the call (e.g. the database is not open yet).
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// The database failed the operation (I/O, corruption, ...).
    #[error(transparent)]
    Db(Box<dyn std::error::Error + Send + Sync>),
}

impl AdminError {
    /// Wraps the database's own error.
    pub fn db(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AdminError::Db(Box::new(e))
    }
}

/// The admin operations of `/api/v1/admin/tsdb/*`, backed by the database.
pub trait AdminSource: Send + Sync {
    /// Marks samples of matching series in `[mint, maxt]` deleted.
    fn delete_series(
        &self,
        matchers: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), AdminError>;
    /// Rewrites blocks without their deleted data.
    fn clean_tombstones(&self) -> Result<(), AdminError>;
    /// Writes a snapshot and returns its directory name (under `<data>/snapshots/`).
    fn snapshot(&self, skip_head: bool) -> Result<String, AdminError>;
}

/// The rule manager's view for `/api/v1/rules` and `/api/v1/alerts`.
pub trait RulesSource: Send + Sync {
    /// The `data` of `/api/v1/rules` (`{"groups": [...]}`); `kind` is the
    /// `type` parameter (`alert` or `record`).
    fn rules(&self, kind: Option<&str>) -> String;
    /// The `data` of `/api/v1/alerts` (`{"alerts": [...]}`).
    fn alerts(&self) -> String;
}
