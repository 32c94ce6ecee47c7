//! Command-line flags. Names and defaults follow Prometheus and promtool
//! wherever Prometheus has the same setting, so an operator's muscle memory
//! (and their Kubernetes manifests) carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cairn: a Prometheus-compatible long-term time-series store.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
pub struct Cli {
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info", global = true)]
    pub log_level: String,
    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt", global = true)]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

/// `cairn serve --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ingest and query.
    All,
    /// Ingest only: no query API.
    Ingest,
    /// Query only: no writes, no WAL.
    Query,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Ingest => "ingest",
            Mode::Query => "query",
        }
    }
}

// Parsed once per process: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: remote write/read receiver and Prometheus query API.
    Serve(ServeArgs),
    /// Work with TSDB data directories and blocks (like `promtool tsdb`).
    #[command(subcommand)]
    Tsdb(TsdbCommand),
    /// PromQL tools.
    #[command(subcommand)]
    Promql(PromqlCommand),
}

/// Flags of `cairn serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// What this Cairn does. all: takes remote writes and answers queries. ingest: takes
    /// remote writes (and uploads them with --objstore.config-file) and serves remote read,
    /// for query Cairns' --query.store, but has no query API: /api/v1/query, query_range,
    /// series, labels, label values, query_exemplars and /federate answer 422. query: answers
    /// queries over the bucket and the --query.stores and takes no writes: no WAL, no
    /// uploads, no rules; remote write and OTLP answer 404.
    #[arg(long = "mode", value_enum, default_value_t = Mode::All)]
    pub mode: Mode,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: PathBuf,
    /// How long to retain samples in storage (e.g. 15d, 1y). 0 keeps data until the size limit.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    pub retention_time: String,
    /// How long to keep 5-minute downsampled blocks (0 keeps them until the size limit).
    #[arg(long = "storage.tsdb.retention.resolution-5m", default_value = "90d")]
    pub retention_5m: String,
    /// How long to keep 1-hour downsampled blocks (0 keeps them until the size limit).
    #[arg(long = "storage.tsdb.retention.resolution-1h", default_value = "1y")]
    pub retention_1h: String,
    /// Write 5-minute and 1-hour downsampled blocks in the background (false: raw only,
    /// which with --storage.tsdb.chunk-encoding=xor keeps a data directory that Prometheus can
    /// open).
    #[arg(long = "storage.tsdb.downsample", default_value_t = true, action = clap::ArgAction::Set)]
    pub downsample: bool,
    /// Float chunk encoding of compacted and downsampled blocks: dense (Cairn's own, about a
    /// third of XOR's size; blocks cut from the head stay XOR), xor (every block readable by
    /// Prometheus, promtool and Thanos) or xor2 (Prometheus 3.11+'s XOR2). Reading never
    /// depends on it: a data directory may mix encodings, and compaction re-encodes.
    #[arg(long = "storage.tsdb.chunk-encoding", default_value = "dense")]
    pub chunk_encoding: String,
    /// Maximum number of bytes that blocks may use, all resolutions together (e.g. 512MB).
    /// 0 disables the size limit.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    pub retention_size: String,
    /// Minimum duration of a data block before being persisted.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h")]
    pub min_block_duration: String,
    /// How often the background maintenance round runs: cutting the head into blocks, writing
    /// late samples to blocks, compaction, downsampling, retention (Prometheus: every minute,
    /// fixed). Cairn's own flag.
    #[arg(long = "storage.tsdb.maintenance-interval", default_value = "1m")]
    pub maintenance_interval: String,
    /// Maximum duration compacted blocks may span. Defaults to 10% of the retention period, at most 31d.
    #[arg(long = "storage.tsdb.max-block-duration")]
    pub max_block_duration: Option<String>,
    /// Keep only the last ~104 bytes of each series' open head chunk in memory and the rest in
    /// files under head_spill/ (rebuilt from the WAL after a restart). Takes about 330 bytes
    /// per active series off the resident memory of a GPU-cluster load; false keeps whole open
    /// chunks in memory, as Prometheus does.
    #[arg(long = "storage.tsdb.head-spill", default_value_t = true, action = clap::ArgAction::Set)]
    pub head_spill: bool,
    /// On a graceful shutdown (SIGTERM, SIGINT), seal the head's open chunks into chunks_head/
    /// and write head_snapshot (series, newest values, metadata), so that the next start
    /// attaches the chunk files instead of replaying the WAL. The WAL stays the truth: a
    /// snapshot that does not match it is ignored. Like Prometheus's
    /// memory-snapshot-on-shutdown, in Cairn's own format.
    #[arg(long = "storage.tsdb.head-snapshot", default_value_t = true, action = clap::ArgAction::Set)]
    pub head_snapshot: bool,
    /// How far behind the newest sample a sample may arrive out of order and still be
    /// accepted, as in Prometheus (0s refuses out-of-order samples). Default: the raw
    /// retention (--storage.tsdb.retention.time; any age when that is 0), so a lagging
    /// remote-write shard or a sender catching up after an outage loses nothing Cairn would
    /// keep. Samples older than the head's range are logged to wbl/ and written to blocks
    /// of their own that compaction merges (docs/head.md, "Late samples").
    #[arg(long = "storage.tsdb.out-of-order-time-window")]
    pub ooo_window: Option<String>,
    /// When the WAL is fsynced: `segment` (on segment close and shutdown; an acknowledged
    /// write survives a crash of Cairn but not of the machine) or `always` (before every
    /// acknowledgement; survives power loss, slower).
    #[arg(long = "storage.tsdb.wal-fsync", default_value = "segment")]
    pub wal_fsync: String,
    /// Snappy-compress WAL records, as Prometheus does with this flag (on by default in both):
    /// about a fifth less WAL on a GPU-cluster load. Either setting reads both kinds of record.
    #[arg(long = "storage.tsdb.wal-compression", default_value_t = true, action = clap::ArgAction::Set)]
    pub wal_compression: bool,
    /// How many exemplars the head keeps, of all series together: the newest this many, in a
    /// ring (about 100 bytes each). 0 keeps none. Prometheus's exemplar-storage limit.
    #[arg(long = "storage.exemplars.exemplars-limit", default_value_t = 100_000)]
    pub exemplars_limit: usize,
    /// Most series the head may hold: a write that would create one more is refused (400,
    /// reason series_limit), existing series still take samples. 0: no limit. Guards the
    /// machine's memory against a label explosion (about 0.8 KiB per series).
    #[arg(long = "storage.tsdb.max-series", default_value_t = 0)]
    pub max_series: u64,
    /// Most series of one metric name in the head: stops one runaway metric (a mislabelled
    /// exporter) without stopping the rest. 0: no limit.
    #[arg(long = "storage.tsdb.max-series-per-metric", default_value_t = 0)]
    pub max_series_per_metric: u64,
    /// Remote write and OTLP: most labels one series may carry.
    #[arg(
        long = "web.remote-write-receiver.max-labels-per-series",
        default_value_t = 128
    )]
    pub max_labels_per_series: usize,
    /// Remote write and OTLP: longest label name, in bytes.
    #[arg(
        long = "web.remote-write-receiver.max-label-name-length",
        default_value_t = 1024
    )]
    pub max_label_name_length: usize,
    /// Remote write and OTLP: longest label value, in bytes.
    #[arg(
        long = "web.remote-write-receiver.max-label-value-length",
        default_value_t = 16384
    )]
    pub max_label_value_length: usize,
    /// Remote write: most samples one request may carry (a larger one is refused whole). 0: no
    /// limit. Prometheus sends at most queue_config.max_samples_per_send (2000) per request.
    #[arg(
        long = "web.remote-write-receiver.max-samples-per-request",
        default_value_t = 0
    )]
    pub max_samples_per_request: usize,
    /// Largest request body accepted as sent (compressed), for remote write, remote read and OTLP.
    #[arg(
        long = "web.remote-write-receiver.max-body-size",
        default_value = "16MB"
    )]
    pub max_body_size: String,
    /// Largest request body after decompression.
    #[arg(
        long = "web.remote-write-receiver.max-decompressed-body-size",
        default_value = "32MB"
    )]
    pub max_decompressed_body_size: String,
    /// Address to listen on for the API, remote write/read and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,
    /// Prometheus's web configuration file: TLS (tls_server_config: certificate, key, client
    /// CA and client-auth type, TLS versions), basic authentication of every endpoint
    /// (basic_auth_users with bcrypt hashes) and response headers (http_server_config). Read
    /// at startup; an error names the line.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Enable the admin API endpoints (delete_series, clean_tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// Enable POST /-/reload (reloads the rule files, as SIGHUP does).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Thanos's object-store configuration file (type: S3 with bucket, endpoint, region,
    /// access_key, secret_key, insecure; or type: FILESYSTEM with directory). Every block Cairn
    /// completes is then uploaded to that bucket in Thanos's layout (meta.json last, with the
    /// external labels), blocks a compaction replaced are marked for deletion, and retention
    /// keeps local blocks until they are uploaded. Wrong credentials or a missing bucket stop
    /// the start; an unreachable bucket only delays uploads. See docs/objstore.md.
    #[arg(long = "objstore.config-file")]
    pub objstore_config_file: Option<std::path::PathBuf>,
    /// Bucket retention of raw blocks: uploaded raw blocks ending longer ago are marked for
    /// deletion (and deleted 48h later); 0s keeps them forever. Local retention is
    /// --storage.tsdb.retention.time.
    #[arg(long = "objstore.retention.resolution-raw", default_value = "0s")]
    pub objstore_retention_raw: String,
    /// Bucket retention of 5-minute blocks (0s: forever).
    #[arg(long = "objstore.retention.resolution-5m", default_value = "0s")]
    pub objstore_retention_5m: String,
    /// Bucket retention of 1-hour blocks (0s: forever).
    #[arg(long = "objstore.retention.resolution-1h", default_value = "0s")]
    pub objstore_retention_1h: String,
    /// Bytes of the in-memory cache of bucket objects' byte ranges (index series and
    /// postings, chunks) that queries of blocks held only in the bucket read through (0
    /// caches nothing).
    #[arg(long = "objstore.cache.size", default_value = "256MB")]
    pub objstore_cache_size: String,
    /// Where the index headers of bucket blocks are kept (fetched once per block, at the
    /// first query that reads it). Default: bucket-cache/ in --storage.tsdb.path.
    #[arg(long = "objstore.cache.dir")]
    pub objstore_cache_dir: Option<std::path::PathBuf>,
    /// Requests to the bucket in flight at once for queries, over all queries.
    #[arg(long = "objstore.max-concurrency", default_value_t = 20)]
    pub objstore_max_concurrency: usize,
    /// Bucket blocks kept open between queries (index header parsed, postings offsets in
    /// memory: a few hundred KiB to a few MiB each); beyond it the least recently read are
    /// closed, and reopened from their index header on disk when read again. 0: no limit.
    #[arg(long = "objstore.max-open-blocks", default_value_t = 500)]
    pub objstore_max_open_blocks: usize,
    /// Serve to queries only the bucket blocks whose external labels (meta.json's
    /// thanos.labels) hold NAME=VALUE (repeatable; all must hold), e.g. an ingester serving
    /// its own uploads and not its HA sibling's or other shards'. Default: every block.
    #[arg(long = "objstore.serve-external-label")]
    pub objstore_serve_labels: Vec<String>,
    /// How often the list of the bucket's blocks is refreshed (one LIST, plus a GET of
    /// each new block's meta.json); queries never list the bucket.
    #[arg(long = "objstore.sync-interval", default_value = "1m")]
    pub objstore_sync_interval: String,
    /// The widest block this Cairn compacts its own blocks into once they are only in the
    /// bucket (local retention deleted its copies): ranges ×3 from the block range up to
    /// it, as Thanos's compactor grows bucket blocks up to 14d. Its downsampling of such
    /// blocks waits for the same spans. Local blocks keep --storage.tsdb.max-block-duration.
    /// 0 turns compaction of bucket-only blocks off.
    #[arg(long = "objstore.max-block-duration", default_value = "14d")]
    pub objstore_max_block_duration: String,
    /// Do not serve blocks from the bucket: queries read local blocks only (uploads go
    /// on; blocks only in the bucket are then neither compacted nor downsampled).
    #[arg(long = "objstore.no-query")]
    pub objstore_no_query: bool,
    /// An external label of this Cairn, NAME=VALUE (repeatable): written into uploaded
    /// blocks' meta.json (thanos.labels) and added to alerts sent to Alertmanager.
    #[arg(long = "storage.external-label")]
    pub external_labels: Vec<String>,
    /// The URL under which Cairn is reached (used in alerts' generator URLs). Default:
    /// http:// and the listen address.
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    /// Rule files in Prometheus's format (repeatable; globs allowed). Recording rules append
    /// their results like any write; alerting rules write ALERTS and ALERTS_FOR_STATE and
    /// notify --alertmanager.url. Reloaded on SIGHUP and POST /-/reload.
    #[arg(long = "rule.file")]
    pub rule_files: Vec<String>,
    /// Evaluation interval of rule groups that set none.
    #[arg(long = "rule.evaluation-interval", default_value = "1m")]
    pub rule_evaluation_interval: String,
    /// Alertmanager to send alerts to, through its v2 API (repeatable), e.g.
    /// http://alertmanager:9093.
    #[arg(long = "alertmanager.url")]
    pub alertmanager_urls: Vec<String>,
    /// Max time to tolerate Cairn being down when restoring the 'for' state of alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub for_outage_tolerance: String,
    /// Minimum duration between an alert's restart and its firing, when its 'for' would
    /// otherwise end sooner.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub for_grace_period: String,
    /// Minimum time to wait before resending a firing alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub resend_delay: String,
    /// Accepted for compatibility with Prometheus's flags: Cairn always receives remote writes.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub lookback_delta: String,
    /// Coarsest data queries read unless they ask (`max_source_resolution`): raw, 5m, 1h,
    /// or auto (the coarsest level at most a fifth of a range query's step).
    #[arg(long = "query.max-source-resolution", default_value = "auto")]
    pub max_source_resolution: String,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,
    /// Query mode: another Cairn (or Prometheus) whose data queries read too, over remote
    /// read (STREAMED_XOR_CHUNKS), e.g. the recent, not yet uploaded data of each ingester
    /// (repeatable; a base URL or its /api/v1/read). Answers are merged series by series; a
    /// store that cannot be reached is left out of the answer (logged and counted), as
    /// Thanos's querier answers with a partial response. Stores are read as raw data where
    /// this Cairn reads raw data: downsampled levels from the bucket still answer.
    #[arg(long = "query.store")]
    pub query_stores: Vec<String>,
    /// Query mode: a label that tells HA replicas apart (repeatable), as Thanos's
    /// --query.replica-label: series that differ only in these labels are answered as one,
    /// without them: one replica's samples, with its gaps filled from another, never both.
    #[arg(long = "query.replica-label")]
    pub query_replica_labels: Vec<String>,
    /// Maximum number of samples a single query can load into memory,
    /// counted as Prometheus counts them: the results a query holds at a
    /// time, plus one series' window for range functions.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,
    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,
    /// Comma-separated feature names to enable, as Prometheus's flag takes them. Cairn
    /// knows `promql-delayed-name-removal` (remove `__name__` at the end of a query, not
    /// where a function drops it) and `created-timestamp-zero-ingestion` (a remote write 2.0
    /// sample's start timestamp also goes in as a zero sample at that time, where it lands
    /// in order) and `otlp-deltatocumulative` (OTLP delta sums and histograms are converted
    /// to cumulative ones instead of refused). `promql-experimental-functions`,
    /// `promql-duration-expr` and `promql-extended-range-selectors` are accepted and always
    /// on in Cairn; other names are accepted with a warning.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TsdbCommand {
    /// Import samples from an input file and create blocks from them.
    #[command(name = "create-blocks-from", subcommand)]
    CreateBlocksFrom(CreateBlocksFrom),
    /// Dump samples from a TSDB data directory, one line per sample: `{labels} value timestamp_ms`.
    Dump {
        /// Data directory (blocks and, if present, the WAL).
        #[arg(default_value = "data/")]
        db_path: PathBuf,
        /// Minimum timestamp to dump, in ms.
        #[arg(long = "min-time", default_value_t = i64::MIN, allow_hyphen_values = true)]
        min_time: i64,
        /// Maximum timestamp to dump, in ms.
        #[arg(long = "max-time", default_value_t = i64::MAX, allow_hyphen_values = true)]
        max_time: i64,
        /// Series selector; may be repeated. Defaults to all series.
        #[arg(long = "match")]
        matchers: Vec<String>,
        /// Dump a downsampled level's blocks instead of raw data: 5m or 1h.
        #[arg(long = "resolution")]
        resolution: Option<String>,
        /// With --resolution, which aggregate to print: avg, count, sum, min, max or counter.
        #[arg(long = "aggregate", default_value = "avg")]
        aggregate: String,
    },
    /// Downsample a stopped data directory once: every raw block gets a 5-minute block and
    /// every 5-minute block a 1-hour block, whatever its span.
    Downsample {
        /// Data directory.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Compact a stopped data directory once, as the server does in the background: replay
    /// the WAL and cut the whole head into 2h blocks, compact the blocks until nothing is
    /// left to plan, then downsample and merge levels as the server would.
    ///
    /// Unlike the running server, which keeps the newest 1.5 block ranges in memory, the
    /// whole head is cut: the directory is stopped, and cutting it leaves an empty WAL and
    /// every sample in blocks. The last, partial block ends just after the newest sample,
    /// so a restarted server accepts scrapes at once. Retention is not applied; blocks no
    /// merge touches keep their encoding (head cuts stay XOR). Do not run it on a directory
    /// a server is using.
    Compact {
        /// Chunk encoding of the compacted and downsampled blocks: dense (Cairn only,
        /// smallest), xor (Prometheus's) or xor2.
        #[arg(
            long = "chunk-encoding",
            visible_alias = "storage.tsdb.chunk-encoding",
            default_value = "dense"
        )]
        chunk_encoding: String,
        /// Largest compacted block. Defaults to what the server uses with its default
        /// retention (10% of 15d = 36h); pass the server's
        /// --storage.tsdb.max-block-duration if it had one.
        #[arg(long = "max-block-duration")]
        max_block_duration: Option<String>,
        /// Downsample and merge 5m and 1h levels as the server does
        /// (--storage.tsdb.downsample).
        #[arg(long = "downsample", default_value_t = true, action = clap::ArgAction::Set)]
        downsample: bool,
        /// Data directory.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Export the blocks of a data directory (or a single block) into DST in a chunk
    /// encoding Prometheus, promtool, Thanos and other standard readers understand.
    ///
    /// Each raw block keeps its ULID and meta (time range, compaction level, sources,
    /// parents); its chunks are re-encoded where needed and deleted samples (tombstones)
    /// are left out. Downsampled 5m/1h blocks are skipped: Prometheus cannot read their
    /// aggregate chunks. Only blocks are exported, not the head/WAL: run `cairn tsdb
    /// compact` first to cut it into blocks. Refuses, writing nothing, when DST already
    /// holds one of the blocks.
    Export {
        /// Chunk encoding of the exported blocks: xor (every Prometheus-format reader),
        /// xor2 (Prometheus 3.11+) or dense (Cairn only).
        #[arg(long = "chunk-encoding", default_value = "xor")]
        chunk_encoding: String,
        /// Source: a data directory or one block directory. Only read.
        src: PathBuf,
        /// Destination directory (created if needed).
        dst: PathBuf,
    },
    /// Analyze churn, label pair cardinality and compaction efficiency of a block.
    Analyze {
        /// Data directory.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
        /// Block to analyze (default is the last block).
        block_id: Option<String>,
        /// How many items to show in each list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreateBlocksFrom {
    /// Import samples from OpenMetrics input and produce TSDB blocks.
    Openmetrics {
        /// OpenMetrics file to read samples from.
        input: PathBuf,
        /// Output directory for generated blocks.
        #[arg(default_value = "data/")]
        output: PathBuf,
        /// Maximum duration created blocks may span.
        #[arg(long = "max-block-duration", default_value = "2h")]
        max_block_duration: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PromqlCommand {
    /// Run PromQL test scripts (the .test language of Prometheus's promqltest).
    Test {
        /// Print every failing evaluation with expected and actual results.
        #[arg(short, long)]
        verbose: bool,
        /// Evaluate with `cairn serve`'s engine settings (names removed at once) instead of
        /// those of Prometheus's test engine (delayed name removal), which the scripts of
        /// Prometheus's own test suite assume.
        #[arg(long = "server-defaults")]
        server_defaults: bool,
        /// Script files or directories of *.test files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_parse_with_prometheus_names() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "cairn",
            "serve",
            "--storage.tsdb.path",
            "/tmp/x",
            "--web.listen-address=127.0.0.1:9201",
            "--storage.tsdb.retention.time=30d",
        ])
        .unwrap();
        let Command::Serve(a) = c.command else {
            panic!("not serve")
        };
        assert_eq!(a.tsdb_path, PathBuf::from("/tmp/x"));
        assert_eq!(a.listen_address, "127.0.0.1:9201");
        assert_eq!(a.retention_time, "30d");
        assert_eq!(a.lookback_delta, "5m");
    }

    #[test]
    fn dump_takes_negative_times() {
        let c = Cli::try_parse_from([
            "cairn",
            "tsdb",
            "dump",
            "d",
            "--min-time",
            "-5",
            "--match",
            "up",
        ])
        .unwrap();
        match c.command {
            Command::Tsdb(TsdbCommand::Dump {
                min_time, matchers, ..
            }) => {
                assert_eq!(min_time, -5);
                assert_eq!(matchers, vec!["up".to_string()]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
