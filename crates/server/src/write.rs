//! Remote write 1.0 and 2.0 ingestion.
//!
//! Flow: pick the protocol from `Content-Type` (415 when unknown), accept
//! only `Content-Encoding: snappy` or none (415 otherwise), limit and
//! decompress the body (413 / 400), decode the protobuf (400), then append
//! through one appender per request. A 1.0 request is first decoded whole
//! into a plan (labels through the series caches, samples, refusals in
//! request order) and then appended in one [`Appender::append_batch`] call,
//! which lets the storage overlap its work across series; 2.0 requests are
//! appended series by series. Both report the same outcome for the same data.
//!
//! Partial writes follow remote write 2.0's rule for both protocols: samples
//! that can be stored are stored and committed, and the response is a 400
//! whose body lists what was refused (bad labels, limits, out-of-order or
//! out-of-bounds samples, invalid native histograms, or any native
//! histogram when the storage keeps none), so the sender does not retry
//! data that can never be accepted. A storage failure that is not the
//! sender's fault rolls the whole request back and answers 5xx so the sender
//! retries. The `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! headers report what was stored, on every response that got that far.
//! Native histograms are decoded, validated as Prometheus does and appended
//! after their series' float samples (see `histograms`). Exemplars are
//! appended after their series' samples in the same appender; one that
//! cannot be stored is counted, never refused (see `exemplars`).
//!
//! Layout: `http` (content type and encoding), `v1` (the plan path), `v2`
//! (series by series), `outcome` (what was stored and refused, and the
//! refusal rules both share), `histograms` (wire histograms to Cairn's,
//! validation), `labels` (label validation), `series_cache`.

mod exemplars;
mod histograms;
mod http;
pub(crate) mod labels;
mod outcome;
mod series_cache;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_histograms;
mod v1;
mod v2;

pub use http::{check_content_encoding, parse_content_type, WireVersion};
pub use outcome::WriteOutcome;
pub use series_cache::{SeriesCache, SharedSeriesCache};

use std::sync::Arc;

use bytes::Bytes;
use cairn_model::{FloatHistogram, Histogram, Labels};
use cairn_proto::{write_v2, Message};
use cairn_storage::{Appender, Metadata, SeriesRef};

use crate::{ServerConfig, ServerError};
use v1::Plan;

/// State a connection keeps between its write requests: the buffer the
/// body is decompressed into and the series cache (see [`SeriesCache`]).
#[derive(Debug, Default)]
pub struct WriteScratch {
    raw: Vec<u8>,
    cache: Option<SeriesCache>,
    shared: Option<Arc<SharedSeriesCache>>,
    /// Emptied after each request; kept for its buffers.
    plan: Plan,
}

impl WriteScratch {
    /// Scratch state with a series cache of the default size and a shared
    /// cache of its own.
    pub fn cached() -> Self {
        Self::with_shared(Arc::new(SharedSeriesCache::default()))
    }

    /// Scratch state with a series cache of the default size backed by the
    /// server's `shared` cache.
    pub fn with_shared(shared: Arc<SharedSeriesCache>) -> Self {
        Self {
            raw: Vec::new(),
            cache: Some(SeriesCache::default()),
            shared: Some(shared),
            plan: Plan::default(),
        }
    }

    /// The series cache, if this scratch keeps one.
    pub fn cache(&self) -> Option<&SeriesCache> {
        self.cache.as_ref()
    }

    /// Bytes held between requests: the connection's series cache and
    /// buffers (see [`SeriesCache::heap_bytes`]).
    pub fn heap_bytes(&self) -> u64 {
        self.raw.capacity() as u64 + self.cache.as_ref().map_or(0, SeriesCache::heap_bytes)
    }
}

/// Decompresses and decodes a body, then appends it through `app`. On `Err`
/// the caller must roll back; on `Ok` it commits (the outcome may still list
/// refusals). `now_ms` is the server clock, for the future-timestamp limit.
pub fn ingest(
    version: WireVersion,
    compressed: &[u8],
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    now_ms: i64,
) -> Result<WriteOutcome, ServerError> {
    ingest_with(
        version,
        compressed,
        cfg,
        app,
        now_ms,
        &mut WriteScratch::default(),
    )
}

/// [`ingest`] reusing a connection's [`WriteScratch`].
pub fn ingest_with(
    version: WireVersion,
    compressed: &[u8],
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    now_ms: i64,
    scratch: &mut WriteScratch,
) -> Result<WriteOutcome, ServerError> {
    let max_t = now_ms.saturating_add(cfg.max_future_ms);
    match version {
        WireVersion::V1 => {
            cairn_proto::snappy::decompress_into(compressed, cfg.max_body_bytes, &mut scratch.raw)?;
            v1::ingest_v1(
                &scratch.raw,
                cfg,
                app,
                max_t,
                scratch.cache.as_mut(),
                scratch.shared.as_deref(),
                &mut scratch.plan,
            )
        }
        WireVersion::V2 => {
            let raw = Bytes::from(cairn_proto::snappy::decompress(
                compressed,
                cfg.max_body_bytes,
            )?);
            let req = write_v2::Request::decode(raw).map_err(cairn_proto::ProtoError::from)?;
            v2::ingest_v2(&req, cfg, app, max_t)
        }
    }
}

/// An appender that keeps nothing: lets fuzzers and benchmarks run the whole
/// decode-and-validate path without storage.
pub struct DiscardAppender;

impl Appender for DiscardAppender {
    fn append(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        _t: i64,
        _v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        Ok(l.hash64() | 1)
    }
    fn append_histogram(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        _t: i64,
        _h: &Histogram,
    ) -> cairn_storage::Result<SeriesRef> {
        Ok(l.hash64() | 1)
    }
    fn append_float_histogram(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        _t: i64,
        _h: &FloatHistogram,
    ) -> cairn_storage::Result<SeriesRef> {
        Ok(l.hash64() | 1)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        _l: &Labels,
        _m: &Metadata,
    ) -> cairn_storage::Result<SeriesRef> {
        Ok(r)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
}

/// Runs the full request decoding and validation (headers, snappy,
/// protobuf, labels, the series caches) of a write without storage, for
/// fuzzing and benchmarks. The future-timestamp limit is off (no clock is read).
pub fn check_write_body(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    cfg: &ServerConfig,
) -> Result<WriteOutcome, ServerError> {
    let v = parse_content_type(content_type)?;
    check_content_encoding(content_encoding)?;
    // With a fresh series cache, so fuzzing also covers the cached path
    // (a series repeated within one body is a cache hit).
    ingest_with(
        v,
        body,
        cfg,
        &mut DiscardAppender,
        i64::MAX,
        &mut WriteScratch::cached(),
    )
}
