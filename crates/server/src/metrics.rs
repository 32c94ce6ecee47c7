//! The server's own metrics, rendered in Prometheus's text exposition
//! format (version 0.0.4) at `/metrics`.
//!
//! Everything is a fixed set of atomics owned by one [`Metrics`] value per
//! server (no global registry), so recording on the hot path never takes a
//! lock. Request durations are kept per handler and per status code from a
//! fixed list; codes outside the list share the label `code="other"`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::backend::BackendStats;

/// Why a sample was refused; a label value of
/// `cairn_remote_write_samples_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    InvalidLabels,
    LabelLimits,
    OutOfOrder,
    OutOfBounds,
    TooOld,
    Duplicate,
    TooFarInFuture,
    /// Native histograms the storage does not keep.
    NativeHistogram,
    /// Native histograms that are not valid (Prometheus's `Validate`).
    InvalidHistogram,
    SeriesLimit,
    MetricSeriesLimit,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
        RejectReason::InvalidLabels,
        RejectReason::LabelLimits,
        RejectReason::OutOfOrder,
        RejectReason::OutOfBounds,
        RejectReason::TooOld,
        RejectReason::Duplicate,
        RejectReason::TooFarInFuture,
        RejectReason::NativeHistogram,
        RejectReason::InvalidHistogram,
        RejectReason::SeriesLimit,
        RejectReason::MetricSeriesLimit,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::LabelLimits => "label_limits",
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::OutOfBounds => "out_of_bounds",
            RejectReason::TooOld => "too_old",
            RejectReason::Duplicate => "duplicate",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::NativeHistogram => "native_histogram",
            RejectReason::InvalidHistogram => "invalid_histogram",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::MetricSeriesLimit => "series_per_metric_limit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The HTTP handlers, as the `handler` label names them.
/// The `handler` label of an HTTP request, as Prometheus names its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Write,
    Otlp,
    Read,
    Healthy,
    Ready,
    Metrics,
    Memory,
    Reload,
    /// The web UI's pages and assets.
    Ui,
    /// A path of the query API: an index into [`API_HANDLERS`].
    Api(u8),
    Other,
}

/// The query API's routes, labelled as Prometheus labels them.
pub const API_HANDLERS: [&str; 23] = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/:name/values",
    "/api/v1/metadata",
    "/api/v1/query_exemplars",
    "/api/v1/format_query",
    "/api/v1/parse_query",
    "/api/v1/status/buildinfo",
    "/api/v1/status/flags",
    "/api/v1/status/tsdb",
    "/api/v1/status/runtimeinfo",
    "/api/v1/status/config",
    "/api/v1/status/blocks",
    "/api/v1/targets",
    "/api/v1/rules",
    "/api/v1/alerts",
    "/api/v1/alertmanagers",
    "/api/v1/admin/tsdb/delete_series",
    "/api/v1/admin/tsdb/clean_tombstones",
    "/api/v1/admin/tsdb/snapshot",
    "/federate",
];

/// Handlers with a label of their own, before the API's.
const FIXED: [Handler; 10] = [
    Handler::Write,
    Handler::Otlp,
    Handler::Read,
    Handler::Healthy,
    Handler::Ready,
    Handler::Metrics,
    Handler::Memory,
    Handler::Reload,
    Handler::Ui,
    Handler::Other,
];

/// Every handler's slot in the duration table.
const SLOTS: usize = FIXED.len() + API_HANDLERS.len();

impl Handler {
    /// The handler of a query-API `path` (`Other` for paths it does not serve).
    pub fn for_api_path(path: &str) -> Handler {
        if let Some(i) = API_HANDLERS.iter().position(|p| *p == path) {
            return Handler::Api(i as u8);
        }
        let label_values = path
            .strip_prefix("/api/v1/label/")
            .is_some_and(|r| r.ends_with("/values"));
        match API_HANDLERS
            .iter()
            .position(|p| *p == "/api/v1/label/:name/values")
        {
            Some(i) if label_values => Handler::Api(i as u8),
            _ => Handler::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Handler::Write => "/api/v1/write",
            Handler::Otlp => crate::otlp::PATH,
            Handler::Read => "/api/v1/read",
            Handler::Healthy => "/-/healthy",
            Handler::Ready => "/-/ready",
            Handler::Metrics => "/metrics",
            Handler::Memory => "/debug/memory",
            Handler::Reload => "/-/reload",
            Handler::Ui => "/graph",
            Handler::Api(i) => API_HANDLERS.get(usize::from(i)).copied().unwrap_or("other"),
            Handler::Other => "other",
        }
    }

    fn slot(self) -> usize {
        match self {
            Handler::Api(i) => FIXED.len() + usize::from(i),
            h => FIXED.iter().position(|x| *x == h).unwrap_or(0),
        }
    }

    fn of_slot(i: usize) -> Handler {
        match FIXED.get(i) {
            Some(h) => *h,
            None => Handler::Api((i - FIXED.len()) as u8),
        }
    }
}

const CODES: [u16; 11] = [200, 204, 400, 404, 405, 413, 415, 429, 500, 503, 0];
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct HistogramCell {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl HistogramCell {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if s <= le {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// All counters of one server.
pub struct Metrics {
    samples_appended: AtomicU64,
    histograms_appended: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    exemplars_received: AtomicU64,
    otlp_samples: AtomicU64,
    otlp_rejected: AtomicU64,
    exemplars_stored: AtomicU64,
    exemplars_failed: AtomicU64,
    start_zeros: AtomicU64,
    metadata_received: AtomicU64,
    metadata_failed: AtomicU64,
    read_series: AtomicU64,
    read_frames: AtomicU64,
    unauthorized: AtomicU64,
    tls_handshake_failures: AtomicU64,
    /// Bytes held by the connections' write caches (see `ConnState`).
    conn_cache_bytes: std::sync::atomic::AtomicI64,
    durations: Vec<HistogramCell>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All zero.
    pub fn new() -> Self {
        Self {
            samples_appended: AtomicU64::new(0),
            histograms_appended: AtomicU64::new(0),
            rejected: Default::default(),
            exemplars_received: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            otlp_samples: AtomicU64::new(0),
            otlp_rejected: AtomicU64::new(0),
            exemplars_stored: AtomicU64::new(0),
            exemplars_failed: AtomicU64::new(0),
            start_zeros: AtomicU64::new(0),
            metadata_received: AtomicU64::new(0),
            metadata_failed: AtomicU64::new(0),
            read_series: AtomicU64::new(0),
            read_frames: AtomicU64::new(0),
            conn_cache_bytes: std::sync::atomic::AtomicI64::new(0),
            durations: (0..SLOTS * CODES.len())
                .map(|_| HistogramCell::default())
                .collect(),
        }
    }

    pub fn add_appended(&self, n: u64) {
        self.samples_appended.fetch_add(n, Relaxed);
    }
    pub fn add_histograms_appended(&self, n: u64) {
        self.histograms_appended.fetch_add(n, Relaxed);
    }
    pub fn add_rejected(&self, r: RejectReason, n: u64) {
        if let Some(c) = self.rejected.get(r.index()) {
            c.fetch_add(n, Relaxed);
        }
    }
    pub fn add_exemplars(&self, received: u64, stored: u64, failed: u64) {
        self.exemplars_received.fetch_add(received, Relaxed);
        self.exemplars_stored.fetch_add(stored, Relaxed);
        self.exemplars_failed.fetch_add(failed, Relaxed);
    }
    pub fn add_otlp(&self, samples: u64, rejected_points: u64) {
        self.otlp_samples.fetch_add(samples, Relaxed);
        self.otlp_rejected.fetch_add(rejected_points, Relaxed);
    }
    pub fn add_start_zeros(&self, n: u64) {
        self.start_zeros.fetch_add(n, Relaxed);
    }
    pub fn add_metadata(&self, ok: u64, failed: u64) {
        self.metadata_received.fetch_add(ok, Relaxed);
        self.metadata_failed.fetch_add(failed, Relaxed);
    }
    pub fn add_read(&self, series: u64, frames: u64) {
        self.read_series.fetch_add(series, Relaxed);
        self.read_frames.fetch_add(frames, Relaxed);
    }

    /// Adds `delta` to the bytes the connections' write caches hold.
    pub fn add_conn_cache_bytes(&self, delta: i64) {
        self.conn_cache_bytes.fetch_add(delta, Relaxed);
    }

    /// Bytes the connections' write caches hold now.
    pub fn conn_cache_bytes(&self) -> u64 {
        u64::try_from(self.conn_cache_bytes.load(Relaxed)).unwrap_or(0)
    }

    /// Samples appended so far (for tests and logs).
    pub fn appended(&self) -> u64 {
        self.samples_appended.load(Relaxed)
    }

    /// Samples refused for `r` so far.
    pub fn rejected(&self, r: RejectReason) -> u64 {
        self.rejected.get(r.index()).map_or(0, |c| c.load(Relaxed))
    }

    /// Counts a request refused for missing or wrong credentials.
    pub fn add_unauthorized(&self) {
        self.unauthorized.fetch_add(1, Relaxed);
    }

    /// Counts a TLS handshake that failed or timed out.
    pub fn add_tls_handshake_failure(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// Records one request's duration.
    pub fn observe_request(&self, h: Handler, code: u16, d: Duration) {
        let hi = h.slot();
        let ci = CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(CODES.len() - 1);
        if let Some(cell) = self.durations.get(hi * CODES.len() + ci) {
            cell.observe(d);
        }
    }

    /// The exposition text, with the backend's numbers appended.
    pub fn render(&self, stats: &BackendStats) -> String {
        let mut o = String::with_capacity(4096);
        counter(
            &mut o,
            "cairn_remote_write_samples_appended_total",
            "Float samples appended through remote write.",
            self.samples_appended.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_histograms_appended_total",
            "Native histogram samples appended through remote write.",
            self.histograms_appended.load(Relaxed),
        );
        header(
            &mut o,
            "cairn_remote_write_samples_rejected_total",
            "Samples (and histogram samples) refused through remote write, by reason.",
            "counter",
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                o,
                "cairn_remote_write_samples_rejected_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejected(r)
            );
        }
        counter(
            &mut o,
            "cairn_remote_write_exemplars_received_total",
            "Exemplars received through remote write.",
            self.exemplars_received.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_exemplars_stored_total",
            "Exemplars received through remote write and stored (duplicates of a series' newest included, as Prometheus counts them).",
            self.exemplars_stored.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_exemplars_failed_total",
            "Exemplars received through remote write and not stored: invalid labels, out of order, the series had no stored sample, or exemplar storage off.",
            self.exemplars_failed.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_otlp_samples_appended_total",
            "Samples appended through the OTLP receiver (target_info included).",
            self.otlp_samples.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_otlp_data_points_rejected_total",
            "OTLP data points rejected (delta temporality, exponential histograms, invalid names, out of order).",
            self.otlp_rejected.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_start_zero_samples_total",
            "Zero samples appended for remote write 2.0 start timestamps (created-timestamp-zero-ingestion).",
            self.start_zeros.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_metadata_received_total",
            "Metadata entries received through remote write and stored.",
            self.metadata_received.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_write_metadata_failed_total",
            "Metadata entries the storage did not accept.",
            self.metadata_failed.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_read_series_total",
            "Series returned by remote read.",
            self.read_series.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_remote_read_frames_total",
            "Frames sent in streamed remote read responses.",
            self.read_frames.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_http_requests_unauthorized_total",
            "Requests refused with 401 for missing or wrong basic-auth credentials (--web.config.file).",
            self.unauthorized.load(Relaxed),
        );
        counter(
            &mut o,
            "cairn_http_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out (--web.config.file).",
            self.tls_handshake_failures.load(Relaxed),
        );
        self.render_durations(&mut o);
        render_stats(&mut o, stats);
        crate::process::render(&mut o);
        o
    }

    fn render_durations(&self, o: &mut String) {
        header(
            o,
            "cairn_http_request_duration_seconds",
            "Time to produce an HTTP response (streamed bodies: until the first byte), by handler and code.",
            "histogram",
        );
        for hi in 0..SLOTS {
            let h = Handler::of_slot(hi);
            for (ci, code) in CODES.iter().enumerate() {
                let Some(cell) = self.durations.get(hi * CODES.len() + ci) else {
                    continue;
                };
                let count = cell.count.load(Relaxed);
                if count == 0 {
                    continue;
                }
                let code = if *code == 0 {
                    "other".to_owned()
                } else {
                    code.to_string()
                };
                let labels = format!("handler=\"{}\",code=\"{}\"", h.as_str(), code);
                for (b, le) in cell.buckets.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        o,
                        "cairn_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                        b.load(Relaxed)
                    );
                }
                let _ = writeln!(
                    o,
                    "cairn_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
                );
                let sum = cell.sum_nanos.load(Relaxed) as f64 / 1e9;
                let _ = writeln!(
                    o,
                    "cairn_http_request_duration_seconds_sum{{{labels}}} {sum}"
                );
                let _ = writeln!(
                    o,
                    "cairn_http_request_duration_seconds_count{{{labels}}} {count}"
                );
            }
        }
    }
}

/// A label value escaped for the text format.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(o: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, help, "counter");
    let _ = writeln!(o, "{name} {v}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: f64) {
    header(o, name, help, "gauge");
    let _ = writeln!(o, "{name} {v}");
}

fn render_stats(o: &mut String, s: &BackendStats) {
    if let Some(v) = s.head_series {
        gauge(o, "cairn_head_series", "Series in the head.", v as f64);
    }
    if let Some(v) = s.head_chunks {
        gauge(o, "cairn_head_chunks", "Chunks in the head.", v as f64);
    }
    if let Some(v) = s.head_min_time {
        gauge(
            o,
            "cairn_head_min_time_milliseconds",
            "Lowest timestamp in the head.",
            v as f64,
        );
    }
    if let Some(v) = s.head_max_time {
        gauge(
            o,
            "cairn_head_max_time_milliseconds",
            "Highest timestamp in the head.",
            v as f64,
        );
    }
    if let Some(v) = s.blocks {
        gauge(
            o,
            "cairn_blocks_loaded",
            "Persisted blocks loaded.",
            v as f64,
        );
    }
    if let Some(d) = s.wal_fsync {
        header(
            o,
            "cairn_wal_fsync_duration_seconds",
            "Duration of WAL fsyncs.",
            "summary",
        );
        let _ = writeln!(o, "cairn_wal_fsync_duration_seconds_sum {}", d.sum_seconds);
        let _ = writeln!(o, "cairn_wal_fsync_duration_seconds_count {}", d.count);
    }
    if let Some(v) = s.compactions {
        counter(
            o,
            "cairn_compactions_total",
            "Compactions run (merges of blocks; head cuts are cairn_tsdb_head_cuts_total).",
            v,
        );
    }
    if let Some(v) = s.head_cuts {
        counter(
            o,
            "cairn_tsdb_head_cuts_total",
            "Blocks cut from the head.",
            v,
        );
    }
    if let Some(v) = s.downsamplings {
        counter(
            o,
            "cairn_tsdb_downsamplings_total",
            "Downsampled (5m, 1h) blocks written.",
            v,
        );
    }
    if !s.retention_deletions.is_empty() {
        header(
            o,
            "cairn_tsdb_retention_deletions_total",
            "Blocks deleted by retention, by reason.",
            "counter",
        );
        for (reason, v) in &s.retention_deletions {
            let _ = writeln!(
                o,
                "cairn_tsdb_retention_deletions_total{{reason=\"{reason}\"}} {v}"
            );
        }
    }
    if !s.block_bytes.is_empty() {
        header(
            o,
            "cairn_tsdb_blocks_bytes",
            "Bytes of the blocks on disk, by resolution.",
            "gauge",
        );
        for (res, v) in &s.block_bytes {
            let _ = writeln!(o, "cairn_tsdb_blocks_bytes{{resolution=\"{res}\"}} {v}");
        }
    }
    if let Some((sent, errors, dropped)) = s.notifications {
        counter(
            o,
            "cairn_notifications_sent_total",
            "Alerts sent to Alertmanager.",
            sent,
        );
        counter(
            o,
            "cairn_notifications_errors_total",
            "Requests to Alertmanager that failed.",
            errors,
        );
        counter(
            o,
            "cairn_notifications_dropped_total",
            "Alerts dropped because the queue was full.",
            dropped,
        );
    }
    if !s.build_info.is_empty() {
        header(
            o,
            "cairn_build_info",
            "A metric with a constant '1' value labeled by version, revision and branch.",
            "gauge",
        );
        let labels: Vec<String> = s
            .build_info
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let _ = writeln!(o, "cairn_build_info{{{}}} 1", labels.join(","));
    }
    if let Some(v) = s.compactions_failed {
        counter(
            o,
            "cairn_compactions_failed_total",
            "Compactions that failed.",
            v,
        );
    }
    if !s.limits.is_empty() {
        header(
            o,
            "cairn_limit",
            "Configured ingestion limits (0: none); refusals are counted in cairn_remote_write_samples_rejected_total by reason.",
            "gauge",
        );
        for (name, v) in &s.limits {
            let _ = writeln!(o, "cairn_limit{{limit=\"{name}\"}} {v}");
        }
    }
    if let Some(l) = s.out_of_order {
        gauge(
            o,
            "cairn_tsdb_out_of_order_samples",
            "Out-of-order samples (late ones included) held in memory until they are written to blocks.",
            l.late_held as f64,
        );
        counter(
            o,
            "cairn_tsdb_late_samples_appended_total",
            "Late samples (older than the head's range) accepted.",
            l.late_appended_total,
        );
        counter(
            o,
            "cairn_tsdb_out_of_order_samples_flushed_total",
            "Out-of-order samples written to blocks.",
            l.late_flushed_total,
        );
        counter(
            o,
            "cairn_tsdb_out_of_order_conflicts_total",
            "Out-of-order samples dropped because a buffered out-of-order sample had their timestamp and another value (as Prometheus drops them at commit).",
            l.conflicts_total,
        );
    }
    if let Some(u) = s.objstore {
        counter(
            o,
            "cairn_objstore_uploads_total",
            "Blocks uploaded whole to the bucket (meta.json included).",
            u.uploads_total,
        );
        counter(
            o,
            "cairn_objstore_upload_failures_total",
            "Block uploads that failed (retried in the next round).",
            u.upload_failures_total,
        );
        counter(
            o,
            "cairn_objstore_uploaded_bytes_total",
            "Bytes of the blocks uploaded.",
            u.uploaded_bytes_total,
        );
        counter(
            o,
            "cairn_objstore_marked_for_deletion_total",
            "Bucket blocks marked for deletion because an uploaded compaction replaced them.",
            u.marked_for_deletion_total,
        );
        counter(
            o,
            "cairn_objstore_blocks_deleted_total",
            "Blocks deleted from the bucket: marked ones after the delete delay, and abandoned partial uploads.",
            u.deleted_total,
        );
        gauge(
            o,
            "cairn_objstore_blocks_pending",
            "Local blocks not uploaded yet.",
            u.blocks_pending as f64,
        );
    }
    if let Some(b) = s.bucket_store {
        bucket_store_metrics(o, &b);
    }
    if let Some((selects, failures)) = s.query_stores {
        counter(
            o,
            "cairn_query_store_selects_total",
            "Selections sent to the --query.store stores over remote read.",
            selects,
        );
        counter(
            o,
            "cairn_query_store_failures_total",
            "Selections a --query.store failed (answered without it: a partial response).",
            failures,
        );
    }
    if let Some(e) = s.exemplars {
        gauge(
            o,
            "cairn_exemplar_max_exemplars",
            "Capacity of the exemplar ring (--storage.exemplars.exemplars-limit).",
            e.max as f64,
        );
        gauge(
            o,
            "cairn_exemplar_exemplars_in_storage",
            "Exemplars held in the ring.",
            e.held as f64,
        );
        gauge(
            o,
            "cairn_exemplar_series_with_exemplars_in_storage",
            "Series with at least one exemplar in the ring.",
            e.series as f64,
        );
        counter(
            o,
            "cairn_exemplar_exemplars_appended_total",
            "Exemplars added to the ring (replayed ones included).",
            e.appended_total,
        );
        counter(
            o,
            "cairn_exemplar_out_of_order_exemplars_total",
            "Exemplars refused as not newer than their series' newest.",
            e.out_of_order_total,
        );
    }
}

/// `cairn_objstore_store_*`: queries' reads of blocks in the bucket.
fn bucket_store_metrics(o: &mut String, b: &crate::BucketStoreCounts) {
    gauge(
        o,
        "cairn_objstore_store_blocks",
        "Blocks in the bucket that queries may read (meta.json present, no deletion mark).",
        b.blocks as f64,
    );
    gauge(
        o,
        "cairn_objstore_store_blocks_open",
        "Bucket blocks opened by a query (index header loaded).",
        b.blocks_open as f64,
    );
    for (name, help, v) in [
        (
            "cairn_objstore_store_refreshes_total",
            "Listings of the bucket's blocks.",
            b.refreshes_total,
        ),
        (
            "cairn_objstore_store_refresh_failures_total",
            "Listings of the bucket's blocks that failed (the last list is served).",
            b.refresh_failures_total,
        ),
        (
            "cairn_objstore_store_index_headers_fetched_total",
            "Index headers fetched from the bucket.",
            b.index_headers_fetched_total,
        ),
        (
            "cairn_objstore_store_index_header_bytes_total",
            "Bytes fetched for index headers.",
            b.index_header_bytes_total,
        ),
        (
            "cairn_objstore_store_cache_hits_total",
            "Pages of bucket objects read from the cache.",
            b.cache_hits_total,
        ),
        (
            "cairn_objstore_store_cache_misses_total",
            "Reads of bucket objects that missed the cache (each fetches a run of pages).",
            b.cache_misses_total,
        ),
        (
            "cairn_objstore_store_range_requests_total",
            "Ranged GET requests to the bucket.",
            b.range_requests_total,
        ),
        (
            "cairn_objstore_store_range_bytes_total",
            "Bytes fetched by ranged GET requests.",
            b.range_bytes_total,
        ),
    ] {
        counter(o, name, help, v);
    }
    gauge(
        o,
        "cairn_objstore_store_cache_bytes",
        "Bytes held in the page cache of bucket objects.",
        b.cache_bytes as f64,
    );
    gauge(
        o,
        "cairn_objstore_store_cache_capacity_bytes",
        "The page cache's bound (--objstore.cache.size).",
        b.cache_capacity_bytes as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_present_stats_only() {
        let m = Metrics::new();
        m.add_appended(3);
        m.add_rejected(RejectReason::OutOfOrder, 2);
        m.observe_request(Handler::Write, 204, Duration::from_millis(3));
        m.observe_request(Handler::Write, 299, Duration::from_secs(100));
        let text = m.render(&BackendStats {
            head_series: Some(7),
            ..Default::default()
        });
        assert!(text.contains("cairn_remote_write_samples_appended_total 3\n"));
        assert!(
            text.contains("cairn_remote_write_samples_rejected_total{reason=\"out_of_order\"} 2\n")
        );
        assert!(text.contains(
            "cairn_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",code=\"204\",le=\"0.001\"} 0\n"
        ));
        assert!(text.contains(
            "cairn_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",code=\"204\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "cairn_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",code=\"other\",le=\"60\"} 0\n"
        ));
        assert!(text.contains("cairn_head_series 7\n"));
        assert!(!text.contains("cairn_wal_fsync"));
    }

    #[test]
    fn query_api_paths_get_prometheus_handler_labels() {
        for (path, label) in [
            ("/api/v1/query", "/api/v1/query"),
            ("/api/v1/query_range", "/api/v1/query_range"),
            ("/api/v1/label/job/values", "/api/v1/label/:name/values"),
            ("/api/v1/label//values", "/api/v1/label/:name/values"),
            ("/api/v1/status/tsdb", "/api/v1/status/tsdb"),
            ("/federate", "/federate"),
            ("/api/v1/nope", "other"),
            ("/", "other"),
        ] {
            assert_eq!(Handler::for_api_path(path).as_str(), label, "{path}");
        }
        let m = Metrics::new();
        m.observe_request(
            Handler::for_api_path("/api/v1/query_range"),
            200,
            Duration::from_millis(20),
        );
        m.observe_request(Handler::Other, 404, Duration::from_millis(1));
        let text = m.render(&BackendStats::default());
        assert!(text.contains(
            "cairn_http_request_duration_seconds_count{handler=\"/api/v1/query_range\",code=\"200\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "cairn_http_request_duration_seconds_count{handler=\"other\",code=\"404\"} 1\n"
        ));
    }

    #[test]
    fn maintenance_disk_and_build_figures() {
        let text = Metrics::new().render(&BackendStats {
            head_cuts: Some(2),
            compactions: Some(1),
            downsamplings: Some(3),
            retention_deletions: vec![("time", 4), ("size", 0)],
            block_bytes: vec![("raw", 100), ("5m", 10)],
            build_info: vec![("version", "0.1.0".into()), ("revision", "a\"b".into())],
            ..Default::default()
        });
        for line in [
            "cairn_tsdb_head_cuts_total 2\n",
            "cairn_compactions_total 1\n",
            "cairn_tsdb_downsamplings_total 3\n",
            "cairn_tsdb_retention_deletions_total{reason=\"time\"} 4\n",
            "cairn_tsdb_blocks_bytes{resolution=\"5m\"} 10\n",
            "cairn_build_info{version=\"0.1.0\",revision=\"a\\\"b\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
