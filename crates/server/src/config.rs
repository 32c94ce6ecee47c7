//! Server settings and their defaults.

use std::net::SocketAddr;

/// Limits and settings of the HTTP server. All byte limits are inclusive.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address the caller bound; informational (shown in logs).
    pub listen: SocketAddr,
    /// Largest request body accepted as sent (compressed), in bytes.
    pub max_compressed_body_bytes: usize,
    /// Largest request body after snappy decompression, in bytes.
    pub max_body_bytes: usize,
    /// Most labels one series may carry in a write.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes.
    pub max_label_value_bytes: usize,
    /// Samples more than this many ms ahead of the server's clock are
    /// refused (Prometheus uses 10 minutes).
    pub max_future_ms: i64,
    /// At most this many refusal messages are listed in a 400 body.
    pub max_error_messages: usize,
    /// Remote read: most samples one `SAMPLES` response may hold.
    pub read_sample_limit: usize,
    /// Remote read: target size of one streamed frame's chunk data, in bytes
    /// (a single chunk larger than this still goes out in one frame).
    pub read_max_bytes_per_frame: usize,
    /// Remote read: frames buffered between the storage thread and the socket.
    pub read_stream_buffer_frames: usize,
    /// HTTP/1: a connection that does not finish sending request headers
    /// within this many ms is closed.
    pub header_read_timeout_ms: u64,
    /// Remote write 2.0: a sample's start timestamp is also ingested as a
    /// zero sample at that time (`--enable-feature=created-timestamp-zero-ingestion`,
    /// Prometheus's name); off, start timestamps are accepted and not kept.
    pub ingest_start_zero: bool,
    /// OTLP: delta sums and explicit-bucket histograms are converted to
    /// cumulative ones (`--enable-feature=otlp-deltatocumulative`,
    /// Prometheus's name); off, delta points are refused with a 400.
    pub otlp_delta_to_cumulative: bool,
    /// Most samples (and histogram samples) one remote-write request may
    /// carry; a larger one is refused whole with a 400. 0: no limit.
    pub max_samples_per_request: usize,
    /// `--web.config.file`: TLS, basic authentication, response headers.
    pub web: Option<std::sync::Arc<crate::web_config::WebConfig>>,
    /// `--web.enable-lifecycle`: `POST /-/reload` is served (else 403).
    pub enable_lifecycle: bool,
    /// Remote write and OTLP are answered 404 with this message, when set
    /// (a query-only Cairn, `--mode=query`), as Prometheus answers them
    /// without `--web.enable-remote-write-receiver`.
    pub writes_refused: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9201)),
            max_compressed_body_bytes: 16 << 20,
            max_body_bytes: 32 << 20,
            max_labels_per_series: 128,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 16 << 10,
            max_future_ms: 10 * 60 * 1000,
            max_error_messages: 10,
            read_sample_limit: 50_000_000,
            read_max_bytes_per_frame: 1 << 20,
            read_stream_buffer_frames: 4,
            header_read_timeout_ms: 30_000,
            ingest_start_zero: false,
            otlp_delta_to_cumulative: false,
            max_samples_per_request: 0,
            web: None,
            enable_lifecycle: false,
            writes_refused: None,
        }
    }
}
