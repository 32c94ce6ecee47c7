//! `cairn serve`: starts the HTTP server, opens the database (replaying the
//! WAL) while `/-/healthy` already answers and `/-/ready` says 503, serves
//! until SIGTERM or SIGINT, then drains in-flight requests and closes the
//! database (which syncs the WAL).
//!
//! Until the database is open, writes get 503 (the sender retries) and
//! queries fail, as with Prometheus during WAL replay.

use std::sync::Arc;

use anyhow::Context;
use cairn_api::{
    AdminError, AdminSource, Api, ApiConfig, BuildInfo, MetadataSource, TsdbStats, TsdbStatsSource,
};
use cairn_promql::{EngineOptions, SourceResolution};
use cairn_server::{Backend, BackendStats, ServerConfig};
use cairn_storage::{Appendable, Appender, Metadata, Querier, Queryable};
use cairn_tsdb::{Db, DbOptions};

use crate::cli::{Mode, ServeArgs};
use crate::engine::PromqlEngine;
use crate::units::{parse_bytes, parse_duration_ms};

mod bucket;
mod config_yaml;
mod view;

/// The database as the server, the API and the engine see it; empty until
/// the database has opened.
#[derive(Default)]
pub struct DbBackend {
    db: std::sync::OnceLock<(Arc<Db>, Arc<DbCounters>)>,
    /// The rule manager, when rule files are given.
    rules: std::sync::OnceLock<Arc<cairn_rules::RuleManager>>,
    /// The ingestion limits the flags set, for `/metrics`.
    limits: std::sync::OnceLock<Vec<(&'static str, u64)>>,
    /// The shipper and its counts, with `--objstore.config-file`.
    shipper: std::sync::OnceLock<(Arc<cairn_objstore::Shipper>, Arc<ShipperCounters>)>,
    /// The bucket's blocks served to queries, with `--objstore.config-file`.
    store: std::sync::OnceLock<Arc<cairn_objstore::BucketStore>>,
    /// Requests to `--query.store`s, when there are any.
    query_stores: std::sync::OnceLock<Arc<cairn_fanout::StoreCounts>>,
}

/// Counts of the shipper's work, fed by its event channel.
#[derive(Default)]
pub struct ShipperCounters {
    uploads: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    marked: std::sync::atomic::AtomicU64,
    deleted: std::sync::atomic::AtomicU64,
}

impl ShipperCounters {
    /// Subscribes to `s`'s events and counts them on a thread of its own.
    fn watch(s: &cairn_objstore::Shipper) -> Arc<Self> {
        use cairn_objstore::ShipperEvent as E;
        use std::sync::atomic::Ordering::Relaxed;
        let c = Arc::new(Self::default());
        let rx = s.subscribe();
        let counters = c.clone();
        let _ = std::thread::Builder::new()
            .name("cairn-shipper-events".into())
            .spawn(move || {
                while let Ok(e) = rx.recv() {
                    match e {
                        E::Uploaded { bytes, .. } => {
                            counters.uploads.fetch_add(1, Relaxed);
                            counters.bytes.fetch_add(bytes, Relaxed);
                        }
                        E::UploadFailed { .. } => {
                            counters.failures.fetch_add(1, Relaxed);
                        }
                        E::MarkedForDeletion { .. } => {
                            counters.marked.fetch_add(1, Relaxed);
                        }
                        E::Deleted { .. } | E::PartialDeleted { .. } => {
                            counters.deleted.fetch_add(1, Relaxed);
                        }
                    }
                }
            });
        c
    }
}

impl DbBackend {
    fn set_limits(&self, limits: Vec<(&'static str, u64)>) {
        let _ = self.limits.set(limits);
    }

    fn get(&self) -> Option<&(Arc<Db>, Arc<DbCounters>)> {
        self.db.get()
    }

    fn db(&self) -> cairn_storage::Result<&Arc<Db>> {
        self.get()
            .map(|x| &x.0)
            .ok_or(cairn_storage::StorageError::Closed)
    }
}

/// Refuses every sample while the database is still opening.
struct NotReadyAppender;

impl Appender for NotReadyAppender {
    fn append(
        &mut self,
        _: u64,
        _: &cairn_model::Labels,
        _: i64,
        _: f64,
    ) -> cairn_storage::Result<u64> {
        Err(cairn_storage::StorageError::Closed)
    }
    fn update_metadata(
        &mut self,
        _: u64,
        _: &cairn_model::Labels,
        _: &Metadata,
    ) -> cairn_storage::Result<u64> {
        Err(cairn_storage::StorageError::Closed)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        Err(cairn_storage::StorageError::Closed)
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
}

/// Counts of the database's background work, fed by its event channel.
#[derive(Default)]
pub struct DbCounters {
    pub compactions: std::sync::atomic::AtomicU64,
    pub compactions_failed: std::sync::atomic::AtomicU64,
    pub head_cuts: std::sync::atomic::AtomicU64,
    pub downsamplings: std::sync::atomic::AtomicU64,
    /// Retention deletions by time, size, and of deletable blocks.
    pub retention: [std::sync::atomic::AtomicU64; 3],
}

impl DbCounters {
    /// Subscribes to `db`'s events and counts them on a thread of its own,
    /// which ends when the database closes its event channel.
    pub fn watch(db: &Db) -> Arc<Self> {
        let c = Arc::new(Self::default());
        let rx = db.subscribe();
        let counters = c.clone();
        let _ = std::thread::Builder::new()
            .name("cairn-db-events".into())
            .spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                while let Ok(e) = rx.recv() {
                    match e {
                        cairn_tsdb::DbEvent::BlockCut { .. } => {
                            counters.head_cuts.fetch_add(1, Relaxed);
                        }
                        cairn_tsdb::DbEvent::Compacted { .. } => {
                            counters.compactions.fetch_add(1, Relaxed);
                        }
                        cairn_tsdb::DbEvent::Downsampled { .. } => {
                            counters.downsamplings.fetch_add(1, Relaxed);
                        }
                        cairn_tsdb::DbEvent::RetentionDeleted { reason, .. } => {
                            let i = match reason {
                                cairn_tsdb::RetentionReason::Time => 0,
                                cairn_tsdb::RetentionReason::Size => 1,
                                cairn_tsdb::RetentionReason::Deletable => 2,
                            };
                            if let Some(c) = counters.retention.get(i) {
                                c.fetch_add(1, Relaxed);
                            }
                        }
                        cairn_tsdb::DbEvent::Failed { .. } => {
                            counters.compactions_failed.fetch_add(1, Relaxed);
                        }
                        _ => {}
                    }
                }
            });
        c
    }
}

impl Appendable for DbBackend {
    fn appender(&self) -> Box<dyn Appender + '_> {
        match self.get() {
            Some((db, _)) => db.appender(),
            None => Box::new(NotReadyAppender),
        }
    }
}

impl Queryable for DbBackend {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        self.db()?.querier(mint, maxt)
    }

    fn downsampled(&self) -> bool {
        self.get().is_some_and(|(db, _)| db.downsampled())
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<cairn_model::Matcher>],
    ) -> cairn_storage::Result<Vec<cairn_storage::SeriesExemplars>> {
        self.db()?.exemplars(start, end, selectors)
    }
}

/// The rule manager as the API sees it.
struct RulesView(Arc<cairn_rules::RuleManager>);

impl cairn_api::RulesSource for RulesView {
    fn rules(&self, kind: Option<&str>) -> String {
        self.0.rules_json(kind)
    }
    fn alerts(&self) -> String {
        self.0.alerts_json()
    }
}

impl Backend for DbBackend {
    fn ready(&self) -> bool {
        self.get().is_some()
    }

    fn reload(&self) -> Option<Result<(), String>> {
        let m = self.rules.get()?;
        Some(m.reload().map_err(|e| e.to_string()))
    }

    fn stats(&self) -> BackendStats {
        let Some((db, counters)) = self.get() else {
            return BackendStats::default();
        };
        let h = db.head().stats_with_limit(0);
        let empty = h.min_time > h.max_time;
        BackendStats {
            head_series: Some(h.num_series),
            head_chunks: Some(h.num_chunks),
            head_min_time: (!empty).then_some(h.min_time),
            head_max_time: (!empty).then_some(h.max_time),
            blocks: Some(db.blocks().len() as u64),
            wal_fsync: db
                .head()
                .wal_fsync_durations()
                .map(|(count, sum_seconds)| cairn_server::DurationSummary { count, sum_seconds }),
            compactions: Some(
                counters
                    .compactions
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            compactions_failed: Some(
                counters
                    .compactions_failed
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            head_cuts: Some(
                counters
                    .head_cuts
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            downsamplings: Some(
                counters
                    .downsamplings
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            retention_deletions: ["time", "size", "deletable"]
                .into_iter()
                .zip(&counters.retention)
                .map(|(r, c)| (r, c.load(std::sync::atomic::Ordering::Relaxed)))
                .collect(),
            block_bytes: {
                let mut by = [("raw", 0u64), ("5m", 0), ("1h", 0)];
                for b in db.blocks() {
                    let i = match b.meta().resolution() {
                        0 => 0,
                        r if r <= 300_000 => 1,
                        _ => 2,
                    };
                    if let Some(x) = by.get_mut(i) {
                        x.1 += b.size();
                    }
                }
                by.to_vec()
            },
            notifications: self.rules.get().and_then(|m| m.notifier_counts()),
            build_info: vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                (
                    "revision",
                    option_env!("CAIRN_GIT_REVISION")
                        .unwrap_or("unknown")
                        .to_owned(),
                ),
                ("branch", "main".to_owned()),
            ],
            limits: self.limits.get().cloned().unwrap_or_default(),
            out_of_order: Some({
                let l = db.head().late_stats();
                cairn_server::OutOfOrderCounts {
                    late_held: l.held,
                    late_appended_total: l.appended_total,
                    late_flushed_total: l.flushed_total,
                    conflicts_total: l.conflicts_total,
                }
            }),
            objstore: self.shipper.get().map(|(s, c)| {
                use std::sync::atomic::Ordering::Relaxed;
                cairn_server::ObjstoreCounts {
                    uploads_total: c.uploads.load(Relaxed),
                    upload_failures_total: c.failures.load(Relaxed),
                    uploaded_bytes_total: c.bytes.load(Relaxed),
                    marked_for_deletion_total: c.marked.load(Relaxed),
                    deleted_total: c.deleted.load(Relaxed),
                    blocks_pending: db
                        .blocks()
                        .iter()
                        .filter(|b| !s.is_uploaded(&b.meta().ulid))
                        .count() as u64,
                }
            }),
            query_stores: self.query_stores.get().map(|c| {
                use std::sync::atomic::Ordering::Relaxed;
                (c.selects.load(Relaxed), c.failures.load(Relaxed))
            }),
            bucket_store: self.store.get().map(|st| {
                use std::sync::atomic::Ordering::Relaxed;
                let (blocks, open) = st.block_counts();
                let c = st.cache_stats();
                cairn_server::BucketStoreCounts {
                    blocks: blocks as u64,
                    blocks_open: open as u64,
                    refreshes_total: st.stats.refreshes.load(Relaxed),
                    refresh_failures_total: st.stats.refresh_failures.load(Relaxed),
                    index_headers_fetched_total: st.stats.headers_fetched.load(Relaxed),
                    index_header_bytes_total: st.stats.header_bytes.load(Relaxed),
                    cache_hits_total: c.hits.load(Relaxed),
                    cache_misses_total: c.misses.load(Relaxed),
                    cache_bytes: st.cache_bytes(),
                    cache_capacity_bytes: st.cache_capacity(),
                    range_requests_total: c.requests.load(Relaxed),
                    range_bytes_total: c.fetched_bytes.load(Relaxed),
                }
            }),
            exemplars: Some({
                let e = db.head().exemplar_stats();
                cairn_server::ExemplarCounts {
                    max: e.max_exemplars,
                    held: e.exemplars,
                    series: e.series,
                    appended_total: e.appended_total,
                    out_of_order_total: e.out_of_order_total,
                }
            }),
        }
    }

    fn memory(&self) -> Option<cairn_server::MemoryReport> {
        let (db, _) = self.get()?;
        let m = db.head().memory();
        Some(cairn_server::MemoryReport {
            series: m.series,
            components: m.components().to_vec(),
            details: vec![
                ("(of which) storage.open_chunk_bytes", m.open_chunk_bytes),
                (
                    "(in files) storage.open_chunk_spilled",
                    m.open_chunk_spilled,
                ),
                ("(in files) storage.spill_slots", m.spill_slot_bytes),
            ],
        })
    }
}

impl MetadataSource for DbBackend {
    fn metadata(&self) -> Vec<(String, Metadata)> {
        self.get()
            .map(|(db, _)| db.head().metadata())
            .unwrap_or_default()
    }
}

impl TsdbStatsSource for DbBackend {
    fn blocks(&self) -> Vec<cairn_api::BlockInfo> {
        let Some((db, _)) = self.get() else {
            return Vec::new();
        };
        db.blocks()
            .iter()
            .map(|b| {
                let m = b.meta();
                cairn_api::BlockInfo {
                    ulid: m.ulid.to_string(),
                    min_time: m.min_time,
                    max_time: m.max_time,
                    num_samples: m.stats.num_samples,
                    num_series: m.stats.num_series,
                    num_chunks: m.stats.num_chunks,
                    level: m.compaction.level,
                    resolution: m.resolution(),
                    bytes: b.size(),
                    hints: m.compaction.hints.clone(),
                }
            })
            .collect()
    }

    fn block_metas(&self) -> Vec<serde_json::Value> {
        let Some((db, _)) = self.get() else {
            return Vec::new();
        };
        db.blocks()
            .iter()
            .filter_map(|b| {
                let mut v = serde_json::to_value(b.meta()).ok()?;
                // Thanos's section is not part of Prometheus's BlockMeta.
                if let Some(o) = v.as_object_mut() {
                    o.remove("thanos");
                }
                Some(v)
            })
            .collect()
    }

    fn tsdb_stats(&self, limit: usize) -> TsdbStats {
        let Some((db, _)) = self.get() else {
            return TsdbStats::default();
        };
        let h = db.head().stats_with_limit(limit);
        let c = h.cardinality;
        let conv =
            |v: Vec<cairn_head::NameCount>| v.into_iter().map(|x| (x.name, x.count)).collect();
        let empty = h.min_time > h.max_time;
        TsdbStats {
            num_series: h.num_series,
            num_label_pairs: c.num_label_pairs,
            chunk_count: h.num_chunks,
            min_time: if empty { i64::MAX } else { h.min_time },
            max_time: if empty { i64::MIN } else { h.max_time },
            series_count_by_metric_name: conv(c.series_count_by_metric_name),
            label_value_count_by_label_name: conv(c.label_value_count_by_label_name),
            memory_in_bytes_by_label_name: conv(c.memory_in_bytes_by_label_name),
            series_count_by_label_value_pair: conv(c.series_count_by_label_value_pair),
        }
    }
}

impl AdminSource for DbBackend {
    fn delete_series(
        &self,
        sets: &[Vec<cairn_model::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), AdminError> {
        for set in sets {
            self.db()?
                .delete_series(set, mint, maxt)
                .map_err(AdminError::db)?;
        }
        Ok(())
    }

    fn clean_tombstones(&self) -> Result<(), AdminError> {
        self.db()?
            .clean_tombstones()
            .map(|_| ())
            .map_err(AdminError::db)
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, AdminError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}-{:016x}",
            utc_stamp(now.as_secs() as i64),
            now.as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15
        );
        let db = self.db()?;
        let dir = db.dir().join("snapshots").join(&name);
        db.snapshot(&dir, !skip_head).map_err(AdminError::db)?;
        Ok(name)
    }
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time, as Prometheus names snapshots.
fn utc_stamp(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = cairn_model::time::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn dur(name: &str, v: &str) -> anyhow::Result<i64> {
    parse_duration_ms(v).map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

/// The flags as `/api/v1/status/flags` reports them.
fn flag_list(a: &ServeArgs) -> Vec<(String, String)> {
    vec![
        (
            "objstore.config-file".into(),
            a.objstore_config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("storage.external-label".into(), a.external_labels.join(",")),
        ("query.store".into(), a.query_stores.join(",")),
        (
            "objstore.max-block-duration".into(),
            a.objstore_max_block_duration.clone(),
        ),
        (
            "objstore.serve-external-label".into(),
            a.objstore_serve_labels.join(","),
        ),
        (
            "query.replica-label".into(),
            a.query_replica_labels.join(","),
        ),
        (
            "objstore.retention.resolution-raw".into(),
            a.objstore_retention_raw.clone(),
        ),
        (
            "objstore.retention.resolution-5m".into(),
            a.objstore_retention_5m.clone(),
        ),
        (
            "objstore.retention.resolution-1h".into(),
            a.objstore_retention_1h.clone(),
        ),
        (
            "storage.tsdb.path".into(),
            a.tsdb_path.display().to_string(),
        ),
        (
            "storage.tsdb.retention.time".into(),
            a.retention_time.clone(),
        ),
        (
            "storage.tsdb.retention.resolution-5m".into(),
            a.retention_5m.clone(),
        ),
        (
            "storage.tsdb.retention.resolution-1h".into(),
            a.retention_1h.clone(),
        ),
        ("storage.tsdb.downsample".into(), a.downsample.to_string()),
        (
            "storage.tsdb.chunk-encoding".into(),
            a.chunk_encoding.clone(),
        ),
        (
            "storage.tsdb.retention.size".into(),
            a.retention_size.clone(),
        ),
        (
            "storage.tsdb.min-block-duration".into(),
            a.min_block_duration.clone(),
        ),
        (
            "web.config.file".into(),
            a.web_config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "storage.tsdb.maintenance-interval".into(),
            a.maintenance_interval.clone(),
        ),
        (
            "storage.tsdb.max-block-duration".into(),
            a.max_block_duration.clone().unwrap_or_default(),
        ),
        (
            "storage.tsdb.out-of-order-time-window".into(),
            a.ooo_window
                .clone()
                .unwrap_or_else(|| a.retention_time.clone()),
        ),
        ("storage.tsdb.head-spill".into(), a.head_spill.to_string()),
        (
            "storage.tsdb.head-snapshot".into(),
            a.head_snapshot.to_string(),
        ),
        ("storage.tsdb.wal-fsync".into(), a.wal_fsync.clone()),
        (
            "storage.tsdb.wal-compression".into(),
            a.wal_compression.to_string(),
        ),
        (
            "storage.exemplars.exemplars-limit".into(),
            a.exemplars_limit.to_string(),
        ),
        ("storage.tsdb.max-series".into(), a.max_series.to_string()),
        (
            "storage.tsdb.max-series-per-metric".into(),
            a.max_series_per_metric.to_string(),
        ),
        (
            "web.remote-write-receiver.max-labels-per-series".into(),
            a.max_labels_per_series.to_string(),
        ),
        (
            "web.remote-write-receiver.max-label-name-length".into(),
            a.max_label_name_length.to_string(),
        ),
        (
            "web.remote-write-receiver.max-label-value-length".into(),
            a.max_label_value_length.to_string(),
        ),
        (
            "web.remote-write-receiver.max-samples-per-request".into(),
            a.max_samples_per_request.to_string(),
        ),
        (
            "web.remote-write-receiver.max-body-size".into(),
            a.max_body_size.clone(),
        ),
        (
            "web.remote-write-receiver.max-decompressed-body-size".into(),
            a.max_decompressed_body_size.clone(),
        ),
        ("web.listen-address".into(), a.listen_address.clone()),
        (
            "web.enable-admin-api".into(),
            a.enable_admin_api.to_string(),
        ),
        (
            "web.enable-remote-write-receiver".into(),
            (a.mode != Mode::Query).to_string(),
        ),
        ("mode".into(), a.mode.name().into()),
        ("query.lookback-delta".into(), a.lookback_delta.clone()),
        ("query.timeout".into(), a.query_timeout.clone()),
        (
            "query.max-source-resolution".into(),
            a.max_source_resolution.clone(),
        ),
        ("query.max-samples".into(), a.query_max_samples.to_string()),
        (
            "query.max-concurrency".into(),
            a.query_max_concurrency.to_string(),
        ),
        ("enable-feature".into(), a.enable_feature.join(",")),
    ]
}

/// The maintenance round's period (positive).
fn maintenance_interval(a: &ServeArgs) -> anyhow::Result<std::time::Duration> {
    let ms = dur("storage.tsdb.maintenance-interval", &a.maintenance_interval)?;
    if ms <= 0 {
        anyhow::bail!(
            "--storage.tsdb.maintenance-interval {:?} must be positive",
            a.maintenance_interval
        );
    }
    Ok(std::time::Duration::from_millis(ms as u64))
}

/// The out-of-order window: the flag's value, or by default the raw
/// retention (any sample Cairn would still keep is taken; no time retention:
/// any age).
fn ooo_window(a: &ServeArgs) -> anyhow::Result<i64> {
    if let Some(v) = &a.ooo_window {
        return dur("storage.tsdb.out-of-order-time-window", v);
    }
    let r = dur("storage.tsdb.retention.time", &a.retention_time)?;
    Ok(if r > 0 { r } else { i64::MAX })
}

/// Runs the server until a termination signal.
/// The database options and the default source resolution the flags ask for.
fn storage_options(a: &ServeArgs) -> anyhow::Result<(DbOptions, SourceResolution)> {
    let mut opts = DbOptions {
        block_range: dur("storage.tsdb.min-block-duration", &a.min_block_duration)?,
        retention_time: dur("storage.tsdb.retention.time", &a.retention_time)?,
        retention_size: parse_bytes(&a.retention_size)
            .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.size: {e}"))?,
        max_block_duration: a
            .max_block_duration
            .as_deref()
            .map(|v| dur("storage.tsdb.max-block-duration", v))
            .transpose()?,
        ooo_window: ooo_window(a)?,
        maintenance_interval: Some(maintenance_interval(a)?),
        downsample: a.downsample,
        spill_open_chunks: a.head_spill,
        max_exemplars: a.exemplars_limit,
        max_series: a.max_series,
        max_series_per_metric: a.max_series_per_metric,
        retention_5m: dur("storage.tsdb.retention.resolution-5m", &a.retention_5m)?,
        retention_1h: dur("storage.tsdb.retention.resolution-1h", &a.retention_1h)?,
        remote_max_block_duration: dur(
            "objstore.max-block-duration",
            &a.objstore_max_block_duration,
        )?
        .max(0),
        chunk_encoding: a
            .chunk_encoding
            .parse()
            .map_err(|e| anyhow::anyhow!("--storage.tsdb.chunk-encoding: {e}"))?,
        ..DbOptions::default()
    };
    let max_source_resolution = SourceResolution::parse(&a.max_source_resolution)
        .with_context(|| {
            format!(
                "--query.max-source-resolution {:?} is not raw, auto or a duration such as 5m or 1h",
                a.max_source_resolution
            )
        })?;
    if a.mode == Mode::Query {
        // Nothing is written: no WAL to replay or keep.
        opts.wal = None;
    }
    if let Some(w) = opts.wal.as_mut() {
        w.compress = a.wal_compression;
        w.fsync = match a.wal_fsync.as_str() {
            "segment" => cairn_head::FsyncPolicy::Never,
            "always" => cairn_head::FsyncPolicy::Always,
            other => {
                anyhow::bail!("--storage.tsdb.wal-fsync: {other:?} is not one of segment, always")
            }
        };
    }
    Ok((opts, max_source_resolution))
}

/// `--storage.external-label` values as a map.
fn external_labels(a: &ServeArgs) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    label_pairs("storage.external-label", &a.external_labels)
}

/// The NAME=VALUE pairs of flag `--{flag}`: label names not starting with
/// `__`, values not empty, each name once.
fn label_pairs(
    flag: &str,
    list: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for l in list {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--{flag} {l:?} is not NAME=VALUE"))?;
        let valid = !k.is_empty()
            && k.chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid || k.starts_with("__") || v.is_empty() {
            anyhow::bail!(
                "--{flag} {l:?}: the name must be a label name not starting with __, the value not empty"
            );
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            anyhow::bail!("--{flag} {k} is given twice");
        }
    }
    Ok(out)
}

/// Flags that make no sense in `--mode`: refused at start, naming both.
fn check_mode(a: &ServeArgs) -> anyhow::Result<()> {
    match a.mode {
        Mode::All => Ok(()),
        Mode::Ingest => {
            if !a.query_stores.is_empty() || !a.query_replica_labels.is_empty() {
                anyhow::bail!(
                    "--query.store and --query.replica-label shape the query API, which --mode=ingest does not have"
                );
            }
            Ok(())
        }
        Mode::Query => {
            if !a.rule_files.is_empty() {
                anyhow::bail!(
                    "--rule.file: rules write their results, and --mode=query takes no writes; evaluate them on an ingester (--mode=all)"
                );
            }
            if a.objstore_config_file.is_none() && a.query_stores.is_empty() {
                anyhow::bail!(
                    "--mode=query has no data of its own: give --objstore.config-file, --query.store or both"
                );
            }
            if a.objstore_no_query {
                anyhow::bail!(
                    "--objstore.no-query: --mode=query reads the bucket only to answer queries"
                );
            }
            Ok(())
        }
    }
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    check_mode(&a)?;
    let (mut opts, max_source_resolution) = storage_options(&a)?;
    // Shared with /api/v1/status/walreplay, which answers while the WAL
    // is replayed.
    let replay_status = Arc::new(cairn_head::ReplayStatus::default());
    opts.replay_status = Some(replay_status.clone());
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let storage_retention =
        crate::units::format_retention(opts.retention_time, opts.retention_size);
    let ext_labels = external_labels(&a)?;
    std::fs::create_dir_all(&a.tsdb_path)
        .with_context(|| format!("creating {}", a.tsdb_path.display()))?;
    let bucket = bucket::open_bucket(&a)?;
    // A query-only Cairn reads the bucket and owns nothing in it.
    let shipper = match &bucket {
        Some((b, _)) if a.mode != Mode::Query => Some(bucket::shipper(&a, &ext_labels, b.clone())?),
        _ => None,
    };
    let store = match &bucket {
        Some((b, reachable)) if !a.objstore_no_query => {
            // An uploading Cairn compacts and downsamples its own blocks
            // once they are only in the bucket.
            let owner = shipper.as_ref().map(|_| ext_labels.clone());
            let st = bucket::bucket_store(&a, b.clone(), *reachable, owner)?;
            if let Some(s) = &shipper {
                st.follow(s.subscribe())
                    .context("starting the bucket's block list refresh")?;
            }
            Some(st)
        }
        _ => None,
    };
    if let Some(s) = &shipper {
        // Local blocks stay until they are in the bucket, and, where
        // queries read the bucket, until the bucket's block list has them
        // (so no query finds a block in neither place).
        let (s, st) = (s.clone(), store.clone());
        opts.retention_hold = Some(cairn_tsdb::RetentionHold(Arc::new(move |m| {
            s.holds(m)
                || st
                    .as_ref()
                    .is_some_and(|st| s.is_uploaded(&m.ulid) && !st.serves(&m.ulid))
        })));
    }
    if let Some(st) = &store {
        opts.remote_blocks = Some(cairn_tsdb::RemoteBlocks(st.clone()));
    }
    // Its uploaded copies carry these; its local blocks none.
    opts.external_labels = ext_labels.clone();
    let web = match &a.web_config_file {
        None => None,
        Some(p) => Some(std::sync::Arc::new(
            cairn_server::web_config::WebConfig::load(p)
                .map_err(|e| anyhow::anyhow!("--web.config.file: {e}"))?,
        )),
    };
    // A query-only Cairn's head is empty: nothing to snapshot or flush.
    let head_snapshot = a.head_snapshot && a.mode != Mode::Query;
    let flush_late = a.mode != Mode::Query;
    let lookback = dur("query.lookback-delta", &a.lookback_delta)?;
    let timeout_ms = dur("query.timeout", &a.query_timeout)?;
    let listen: std::net::SocketAddr = a.listen_address.parse().with_context(|| {
        format!(
            "--web.listen-address {:?} is not HOST:PORT",
            a.listen_address
        )
    })?;

    std::fs::create_dir_all(&a.tsdb_path)
        .with_context(|| format!("creating {}", a.tsdb_path.display()))?;
    let features = Features::parse(&a.enable_feature);
    let backend = Arc::new(DbBackend::default());
    if let Some(s) = &shipper {
        let _ = backend.shipper.set((s.clone(), ShipperCounters::watch(s)));
    }
    if let Some(st) = store {
        let _ = backend.store.set(st);
    }

    // What queries read: this Cairn's data, with --query.store's merged
    // in and --query.replica-label's replicas merged into one.
    let view: Arc<dyn Queryable> = view::query_view(&a, backend.clone(), timeout_ms);
    let engine = PromqlEngine::new(
        view.clone(),
        EngineOptions {
            lookback_delta: lookback,
            max_samples: a.query_max_samples,
            timeout: std::time::Duration::from_millis(timeout_ms.max(0) as u64),
            delayed_name_removal: features.delayed_name_removal,
            max_source_resolution,
            ..EngineOptions::default()
        },
        a.query_max_concurrency,
    );
    let api = Api::new(
        ApiConfig {
            query_timeout: std::time::Duration::from_millis(timeout_ms.max(0) as u64),
            lookback_delta_ms: lookback,
            flags: flag_list(&a),
            config_yaml: config_yaml::config_yaml(&config_yaml::Settings {
                evaluation_interval_ms: dur(
                    "rule.evaluation-interval",
                    &a.rule_evaluation_interval,
                )?,
                external_labels: &ext_labels,
                alertmanager_urls: &a.alertmanager_urls,
                rule_files: &a.rule_files,
                ooo_window_ms: ooo_window(&a)?,
                max_exemplars: a.exemplars_limit as u64,
            }),
            alertmanagers: a
                .alertmanager_urls
                .iter()
                .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/')))
                .collect(),
            build: BuildInfo {
                version: env!("CARGO_PKG_VERSION").into(),
                revision: option_env!("CAIRN_GIT_REVISION")
                    .unwrap_or("unknown")
                    .into(),
                branch: "main".into(),
                build_user: "cairn".into(),
                build_date: String::new(),
                go_version: "none (Rust)".into(),
            },
            start_time_ms: start_ms,
            storage_retention,
        },
        view.clone(),
    )
    .with_engine(Arc::new(engine))
    .with_metadata(backend.clone())
    .with_stats(backend.clone())
    .with_wal_replay({
        let rs = replay_status.clone();
        Arc::new(move || {
            let s = rs.get();
            (s.min, s.max, s.current)
        })
    })
    .with_runtime({
        let b = backend.clone();
        Arc::new(move || {
            let (reload_success, last_config_ms) =
                b.rules.get().map_or((true, start_ms), |m| m.last_load());
            cairn_api::RuntimeState {
                reload_success,
                last_config_ms,
                corruptions: replay_status.corruptions(),
            }
        })
    });
    let api = if a.enable_admin_api {
        api.with_admin(backend.clone())
    } else {
        api
    };
    let api = if a.mode == Mode::Ingest {
        api.without_queries(
            "unavailable: this Cairn runs with --mode=ingest (no query API); query a Cairn that reads it with --query.store",
        )
    } else {
        api
    };
    // Rule files are checked now: a wrong one stops the start.
    let api = if a.rule_files.is_empty() {
        api
    } else {
        let m = Arc::new(
            cairn_rules::RuleManager::new(
                cairn_rules::RulesOptions {
                    files: a.rule_files.clone(),
                    default_interval: dur("rule.evaluation-interval", &a.rule_evaluation_interval)?,
                    engine: EngineOptions {
                        lookback_delta: lookback,
                        max_samples: a.query_max_samples,
                        timeout: std::time::Duration::from_millis(timeout_ms.max(0) as u64),
                        delayed_name_removal: features.delayed_name_removal,
                        ..EngineOptions::default()
                    },
                    outage_tolerance: dur(
                        "rules.alert.for-outage-tolerance",
                        &a.for_outage_tolerance,
                    )?,
                    grace_period: dur("rules.alert.for-grace-period", &a.for_grace_period)?,
                    resend_delay: dur("rules.alert.resend-delay", &a.resend_delay)?,
                    alertmanagers: a.alertmanager_urls.clone(),
                    external_url: a
                        .external_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{listen}")),
                    external_labels: ext_labels.clone(),
                },
                backend.clone(),
                backend.clone(),
            )
            .map_err(|e| anyhow::anyhow!("--rule.file: {e}"))?,
        );
        let _ = backend.rules.set(m.clone());
        api.with_rules(Arc::new(RulesView(m)))
    };

    let size = |flag: &str, v: &str| -> anyhow::Result<usize> {
        let n = parse_bytes(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
        usize::try_from(n).map_err(|_| anyhow::anyhow!("--{flag}: {v} is too large"))
    };
    let cfg = ServerConfig {
        listen,
        ingest_start_zero: features.start_zero,
        otlp_delta_to_cumulative: features.otlp_delta,
        max_labels_per_series: a.max_labels_per_series,
        max_label_name_bytes: a.max_label_name_length,
        max_label_value_bytes: a.max_label_value_length,
        max_samples_per_request: a.max_samples_per_request,
        max_compressed_body_bytes: size(
            "web.remote-write-receiver.max-body-size",
            &a.max_body_size,
        )?,
        max_body_bytes: size(
            "web.remote-write-receiver.max-decompressed-body-size",
            &a.max_decompressed_body_size,
        )?,
        web,
        enable_lifecycle: a.enable_lifecycle,
        writes_refused: (a.mode == Mode::Query).then(|| {
            "remote write is not accepted: this Cairn runs with --mode=query (no WAL); write to an ingester".to_owned()
        }),
        ..ServerConfig::default()
    };
    backend.set_limits(vec![
        ("max_series", a.max_series),
        ("max_series_per_metric", a.max_series_per_metric),
        ("max_labels_per_series", a.max_labels_per_series as u64),
        ("max_label_name_length", a.max_label_name_length as u64),
        ("max_label_value_length", a.max_label_value_length as u64),
        ("max_samples_per_request", a.max_samples_per_request as u64),
        ("max_body_size", cfg.max_compressed_body_bytes as u64),
        ("max_decompressed_body_size", cfg.max_body_bytes as u64),
        ("exemplars_limit", a.exemplars_limit as u64),
    ]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let path = a.tsdb_path.clone();
    let shared = backend.clone();
    let server_backend = backend.clone();
    let backend_for_hup = backend.clone();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        // Open (and replay) the database while the server already answers
        // health checks; a failure to open stops the server.
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
        let opening = tokio::task::spawn_blocking(move || {
            tracing::info!(path = %path.display(), "opening storage");
            match Db::open(&path, opts) {
                Ok(db) => {
                    let counters = DbCounters::watch(&db);
                    if let Some(s) = &shipper {
                        let events = db.subscribe();
                        let db = db.clone();
                        let blocks = move || {
                            db.blocks()
                                .iter()
                                .map(|b| (b.dir().to_path_buf(), b.meta()))
                                .collect()
                        };
                        if let Err(e) = s.spawn(events, bucket::SHIPPER_INTERVAL, blocks) {
                            tracing::error!(error = %e, "starting the shipper failed; blocks are not uploaded");
                        }
                    }
                    let _ = shared.db.set((db, counters));
                    tracing::info!("storage ready");
                    if let Some(m) = shared.rules.get() {
                        if let Err(e) = m.start() {
                            tracing::error!(error = %e, "starting rule evaluation failed");
                        }
                    }
                }
                Err(e) => {
                    let _ = failed_tx.send(anyhow::Error::new(e).context(format!("opening {}", path.display())));
                }
            }
        });
        // SIGHUP reloads the rule files, as in Prometheus.
        if let Some(m) = backend_for_hup.rules.get().cloned() {
            if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        let m = m.clone();
                        let r = tokio::task::spawn_blocking(move || m.reload()).await;
                        match r {
                            Ok(Ok(())) => tracing::info!("rule files reloaded on SIGHUP"),
                            Ok(Err(e)) => tracing::error!(error = %e, "reloading rule files failed; the previous rules stay"),
                            Err(e) => tracing::error!(error = %e, "reloading rule files failed"),
                        }
                    }
                });
            }
        }
        let (err_tx, mut err_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
        let shutdown = async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("received termination signal; draining requests"),
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("received termination signal; draining requests")
                },
                Ok(e) = failed_rx => { let _ = err_tx.send(e); },
            }
        };
        let served = cairn_server::serve_with_api(listener, cfg, server_backend, Some(Arc::new(api)), shutdown)
            .await
            .context("serving HTTP");
        let _ = opening.await;
        if let Ok(e) = err_rx.try_recv() {
            return Err(e);
        }
        served
    });
    if let Some(m) = backend.rules.get() {
        m.stop();
    }
    if let Some((db, _)) = backend.get() {
        tracing::info!("closing storage");
        db.close();
        // Late samples into blocks now: the next start need not replay
        // them from wbl/ (and a head holding them writes no snapshot).
        if let Err(e) = if flush_late {
            db.flush_late().map(drop)
        } else {
            Ok(())
        } {
            tracing::warn!(error = %e, "writing late samples to blocks failed; wbl/ keeps them");
        }
        if head_snapshot {
            // Requests are drained and maintenance has stopped: nothing
            // appends any more.
            if let Err(e) = db.head().write_snapshot() {
                tracing::warn!(error = %e, "head snapshot failed; the next start replays the WAL");
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["cairn", "serve"];
        argv.extend_from_slice(extra);
        match <crate::cli::Cli as clap::Parser>::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Serve(a),
                ..
            }) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wal_compression_is_on_unless_turned_off() {
        let (o, _) = storage_options(&args(&[])).unwrap();
        assert!(o.wal.unwrap().compress);
        let (o, _) = storage_options(&args(&["--storage.tsdb.wal-compression=false"])).unwrap();
        assert!(!o.wal.unwrap().compress);
    }

    #[test]
    fn downsampling_flags_reach_the_database_and_the_engine() {
        let (o, r) = storage_options(&args(&[])).unwrap();
        assert!(o.downsample);
        assert_eq!(
            (o.retention_5m, o.retention_1h),
            (90 * 86_400_000, 365 * 86_400_000)
        );
        assert_eq!(r, SourceResolution::Auto);
        assert_eq!(o.chunk_encoding, cairn_tsdb::FloatEncoding::Dense);
        let (o, _) = storage_options(&args(&["--storage.tsdb.chunk-encoding=xor"])).unwrap();
        assert_eq!(o.chunk_encoding, cairn_tsdb::FloatEncoding::Xor);
        let e = storage_options(&args(&["--storage.tsdb.chunk-encoding=gzip"])).unwrap_err();
        assert!(e.to_string().contains("chunk-encoding"), "{e}");
        let (o, r) = storage_options(&args(&[
            "--storage.tsdb.downsample=false",
            "--storage.tsdb.retention.resolution-5m=30d",
            "--storage.tsdb.retention.resolution-1h=0",
            "--query.max-source-resolution=raw",
        ]))
        .unwrap();
        assert!(!o.downsample);
        assert_eq!((o.retention_5m, o.retention_1h), (30 * 86_400_000, 0));
        assert_eq!(r, SourceResolution::Raw);
        let e = storage_options(&args(&["--query.max-source-resolution=fast"])).unwrap_err();
        assert!(
            e.to_string().contains("--query.max-source-resolution"),
            "{e}"
        );
        let e =
            storage_options(&args(&["--storage.tsdb.retention.resolution-5m=soon"])).unwrap_err();
        assert!(e.to_string().contains("resolution-5m"), "{e}");
    }

    #[test]
    fn modes_refuse_flags_they_cannot_honour() {
        let msg = |f: &[&str]| check_mode(&args(f)).unwrap_err().to_string();
        assert!(check_mode(&args(&["--query.store=http://a"])).is_ok());
        assert!(msg(&["--mode=ingest", "--query.store=http://a"]).contains("--mode=ingest"));
        assert!(msg(&["--mode=ingest", "--query.replica-label=r"]).contains("--mode=ingest"));
        assert!(msg(&["--mode=query"]).contains("no data of its own"));
        assert!(check_mode(&args(&["--mode=query", "--query.store=http://a"])).is_ok());
        assert!(msg(&[
            "--mode=query",
            "--query.store=http://a",
            "--rule.file=r.yml"
        ])
        .contains("--rule.file"));
        let bucket = ["--mode=query", "--objstore.config-file=b.yml"];
        assert!(check_mode(&args(&bucket)).is_ok());
        assert!(msg(&[bucket[0], bucket[1], "--objstore.no-query"]).contains("--objstore.no-query"));
        // No WAL where nothing is written.
        let (o, _) = storage_options(&args(&bucket)).unwrap();
        assert!(o.wal.is_none());
        let (o, _) = storage_options(&args(&["--mode=ingest"])).unwrap();
        assert!(o.wal.is_some());
    }

    #[test]
    fn not_ready_until_the_database_is_set() {
        let b = DbBackend::default();
        assert!(!b.ready());
        let mut app = b.appender();
        let l = cairn_model::Labels::from_pairs([("__name__", "x")]);
        assert!(matches!(
            app.append(0, &l, 1, 1.0),
            Err(cairn_storage::StorageError::Closed)
        ));
        assert!(matches!(
            app.commit(),
            Err(cairn_storage::StorageError::Closed)
        ));
        assert!(b.querier(0, 1).is_err());
        assert_eq!(b.stats(), BackendStats::default());
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            dir.path(),
            DbOptions {
                maintenance_interval: None,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let _ = b.db.set((db.clone(), DbCounters::watch(&db)));
        assert!(b.ready());
        assert!(b.querier(0, 1).is_ok());
        db.close();
    }

    #[test]
    fn snapshot_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101T000000Z");
        assert_eq!(super::utc_stamp(1_512_940_344), "20171210T211224Z");
        assert_eq!(super::utc_stamp(1_795_305_600), "20261122T000000Z");
    }
}

/// The `--enable-feature` names Cairn acts on.
#[derive(Debug, Default, Clone, Copy)]
struct Features {
    delayed_name_removal: bool,
    start_zero: bool,
    otlp_delta: bool,
}

impl Features {
    /// Reads the flag's names; unknown ones are logged and ignored, as
    /// Prometheus does.
    fn parse(names: &[String]) -> Self {
        let mut f = Self::default();
        for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match n {
                "promql-delayed-name-removal" => {
                    f.delayed_name_removal = true;
                    tracing::info!("experimental delayed name removal enabled");
                }
                "created-timestamp-zero-ingestion" => {
                    f.start_zero = true;
                    tracing::info!("remote write 2.0 start timestamps ingested as zero samples");
                }
                "otlp-deltatocumulative" => {
                    f.otlp_delta = true;
                    tracing::info!("OTLP delta sums and histograms converted to cumulative");
                }
                // PromQL's experimental functions and syntax are always
                // on in Cairn (docs/conformance.md).
                "promql-experimental-functions"
                | "promql-duration-expr"
                | "promql-extended-range-selectors" => {
                    tracing::info!(option = n, "always enabled in Cairn");
                }
                other => tracing::warn!(option = other, "unknown option for --enable-feature"),
            }
        }
        f
    }
}
