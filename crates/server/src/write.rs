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
//! out-of-bounds samples, native histograms), so the sender does not retry
//! data that can never be accepted. A storage failure that is not the
//! sender's fault rolls the whole request back and answers 5xx so the sender
//! retries. The `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! headers report what was stored, on every response that got that far.
//! Exemplars are counted but not stored (the storage traits have no
//! exemplar API), so `Exemplars-Written` is 0.

mod labels;
mod series_cache;

pub use series_cache::{SeriesCache, SharedSeriesCache};

use std::sync::Arc;

use std::fmt::Write as _;

use bytes::Bytes;
use cairn_model::Labels;
use cairn_proto::write::{self, Item, MetadataView, WriteRequestView};
use cairn_proto::{write_v2, Message};
use cairn_storage::{Appender, Metadata, MetricType, SeriesRef, StorageError};

use crate::metrics::{Metrics, RejectReason};
use crate::{ServerConfig, ServerError};

/// Which remote write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireVersion {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// Picks the message type from a `Content-Type` header. A missing header
/// means 1.0, as Prometheus assumes for old senders.
pub fn parse_content_type(ct: Option<&str>) -> Result<WireVersion, ServerError> {
    let ct = ct.map(str::trim).unwrap_or("");
    if ct.is_empty() {
        return Ok(WireVersion::V1);
    }
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(ServerError::UnsupportedMediaType(format!(
            "unsupported content type {ct:?}: expected application/x-protobuf"
        )));
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return Err(ServerError::UnsupportedMediaType(format!(
                "malformed content type parameter {p:?} in {ct:?}"
            )));
        };
        if k.trim().eq_ignore_ascii_case("proto") {
            return match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Ok(WireVersion::V1),
                "io.prometheus.write.v2.Request" => Ok(WireVersion::V2),
                other => Err(ServerError::UnsupportedMediaType(format!(
                    "unsupported protobuf message {other:?}: accepted are prometheus.WriteRequest and io.prometheus.write.v2.Request"
                ))),
            };
        }
    }
    Ok(WireVersion::V1)
}

/// Accepts `snappy` or no `Content-Encoding`.
pub fn check_content_encoding(enc: Option<&str>) -> Result<(), ServerError> {
    match enc.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(()),
        Some(e) => Err(ServerError::UnsupportedMediaType(format!(
            "unsupported content encoding {e:?}: only snappy is accepted"
        ))),
    }
}

/// What one request stored and refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    pub samples_written: u64,
    pub histograms_written: u64,
    pub exemplars_written: u64,
    pub exemplars_received: u64,
    pub samples_refused: u64,
    pub metadata_stored: u64,
    pub metadata_failed: u64,
    /// Up to `max_error_messages` refusal messages.
    pub messages: Vec<String>,
    /// Refusal messages beyond those kept.
    pub messages_dropped: u64,
    refused_by: Vec<(RejectReason, u64)>,
    refusals: u64,
}

impl WriteOutcome {
    fn refuse(
        &mut self,
        cfg: &ServerConfig,
        r: RejectReason,
        n: u64,
        msg: impl FnOnce() -> String,
    ) {
        self.refusals += 1;
        self.samples_refused += n;
        match self.refused_by.iter_mut().find(|(x, _)| *x == r) {
            Some((_, c)) => *c += n,
            None if n > 0 => self.refused_by.push((r, n)),
            None => {}
        }
        if self.messages.len() < cfg.max_error_messages {
            self.messages.push(msg());
        } else {
            self.messages_dropped += 1;
        }
    }

    /// Samples refused for reason `r`.
    pub fn refused(&self, r: RejectReason) -> u64 {
        self.refused_by
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, c)| *c)
    }

    /// The 400 body when something was refused, else `None`.
    pub fn refusal_message(&self) -> Option<String> {
        if self.refusals == 0 {
            return None;
        }
        let mut s = format!(
            "refused {} samples ({} written):",
            self.samples_refused, self.samples_written
        );
        for m in &self.messages {
            s.push_str("\n  ");
            s.push_str(m);
        }
        if self.messages_dropped > 0 {
            let _ = write!(s, "\n  ... and {} more", self.messages_dropped);
        }
        Some(s)
    }

    /// Adds the counts to the server's metrics.
    pub fn record(&self, m: &Metrics) {
        m.add_appended(self.samples_written);
        for (r, n) in &self.refused_by {
            m.add_rejected(*r, *n);
        }
        m.add_exemplars(self.exemplars_received);
        m.add_metadata(self.metadata_stored, self.metadata_failed);
    }
}

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
            ingest_v1(
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
            ingest_v2(&req, cfg, app, max_t)
        }
    }
}

/// Where a planned series' labels are kept until its samples are appended.
#[derive(Debug, Clone, Copy)]
enum LabelsAt {
    /// Entry `i` of the connection's series cache.
    Cache(u32),
    /// Entry `i` of [`Plan::owned`] (requests decoded without a cache).
    Owned(u32),
}

/// One step of a 1.0 request, kept in request order so that what is refused
/// is reported in the order the series came.
#[derive(Debug)]
enum Step {
    Series {
        at: LabelsAt,
        /// Reference hint (0 for none).
        hint: SeriesRef,
        /// The series' samples are `Plan::samples[start..end]`.
        start: usize,
        end: usize,
        histograms: usize,
        /// Raw-label hash to enter the series' reference under in the
        /// shared cache (a series new to both caches).
        share: Option<u64>,
    },
    Refuse {
        reason: RejectReason,
        n: u64,
        msg: String,
    },
}

/// A decoded part of a 1.0 request, appended in one
/// [`Appender::append_batch`] call so the storage can overlap its work
/// across series.
#[derive(Debug, Default)]
struct Plan {
    steps: Vec<Step>,
    samples: Vec<(i64, f64)>,
    owned: Vec<Labels>,
    results: Vec<cairn_storage::Result<SeriesRef>>,
}

impl Plan {
    fn push_series(
        &mut self,
        at: LabelsAt,
        hint: SeriesRef,
        samples: &[(i64, f64)],
        histograms: usize,
        share: Option<u64>,
    ) {
        let start = self.samples.len();
        self.samples.extend_from_slice(samples);
        self.steps.push(Step::Series {
            at,
            hint,
            start,
            end: self.samples.len(),
            histograms,
            share,
        });
    }

    fn labels<'a>(&'a self, cache: Option<&'a SeriesCache>, at: LabelsAt) -> Option<&'a Labels> {
        match at {
            LabelsAt::Cache(i) => cache?.entry(i).map(|e| &e.labels),
            LabelsAt::Owned(i) => self.owned.get(i as usize),
        }
    }

    /// Appends the planned samples (all but those past `max_t`) in one
    /// batch, then accounts for each step in order, updates the caches'
    /// references, and empties the plan.
    fn run(
        &mut self,
        mut cache: Option<&mut SeriesCache>,
        shared: Option<&SharedSeriesCache>,
        cfg: &ServerConfig,
        app: &mut dyn Appender,
        max_t: i64,
        out: &mut WriteOutcome,
    ) -> Result<(), ServerError> {
        let mut results = std::mem::take(&mut self.results);
        {
            let ro = cache.as_deref();
            let mut batch = Vec::with_capacity(self.samples.len());
            for step in &self.steps {
                let Step::Series {
                    at,
                    hint,
                    start,
                    end,
                    ..
                } = step
                else {
                    continue;
                };
                let Some(l) = self.labels(ro, *at) else {
                    continue;
                };
                for &(t, v) in self.samples.get(*start..*end).unwrap_or_default() {
                    if t <= max_t {
                        batch.push((*hint, l, t, v));
                    }
                }
            }
            app.append_batch(&batch, &mut results);
        }
        let mut res = results.drain(..);
        let mut updates: Vec<(LabelsAt, SeriesRef, Option<u64>)> = Vec::new();
        for step in &self.steps {
            match step {
                Step::Refuse { reason, n, msg } => out.refuse(cfg, *reason, *n, || msg.clone()),
                Step::Series {
                    at,
                    hint,
                    start,
                    end,
                    histograms,
                    share,
                } => {
                    let Some(labels) = self.labels(cache.as_deref(), *at) else {
                        continue;
                    };
                    let samples = self.samples.get(*start..*end).unwrap_or_default();
                    let r = account_samples(labels, *hint, samples, &mut res, cfg, max_t, out)?;
                    refuse_histograms(labels, *histograms, cfg, out);
                    updates.push((*at, r, *share));
                }
            }
        }
        drop(res);
        for (at, r, share) in updates {
            if let (Some(s), Some(h)) = (shared, share) {
                if let Some(l) = self.labels(cache.as_deref(), at) {
                    s.insert(h, l.clone(), r);
                }
            }
            if let (Some(c), LabelsAt::Cache(i)) = (cache.as_deref_mut(), at) {
                if r != 0 {
                    c.set_ref(i, r);
                }
            }
        }
        self.results = results;
        self.clear();
        Ok(())
    }

    /// Forgets every step, keeping the buffers.
    fn clear(&mut self) {
        self.steps.clear();
        self.samples.clear();
        self.owned.clear();
        self.results.clear();
    }
}

/// Accounts for one series' samples given the results of appending those
/// not past `max_t`, in order; returns the series reference (the `hint`
/// when no sample was stored).
fn account_samples(
    labels: &Labels,
    hint: SeriesRef,
    samples: &[(i64, f64)],
    results: &mut impl Iterator<Item = cairn_storage::Result<SeriesRef>>,
    cfg: &ServerConfig,
    max_t: i64,
    out: &mut WriteOutcome,
) -> Result<SeriesRef, ServerError> {
    let mut r = hint;
    // One message per series and reason: the first refused sample's error.
    let mut refused: Vec<(RejectReason, u64, String)> = Vec::new();
    for &(t, _) in samples {
        if t > max_t {
            note(&mut refused, RejectReason::TooFarInFuture, || {
                format!(
                    "out of bounds: sample at {t} is too far in the future (server time + {} ms)",
                    cfg.max_future_ms
                )
            });
            continue;
        }
        let Some(res) = results.next() else {
            return Err(ServerError::Internal(format!(
                "the appender returned fewer results than samples for series {labels}"
            )));
        };
        match res {
            Ok(x) => {
                r = x;
                out.samples_written += 1;
            }
            Err(e) if e.is_client_error() => {
                note(&mut refused, reject_reason(&e), || e.to_string());
            }
            Err(e) => return Err(ServerError::Storage(e)),
        }
    }
    emit_refusals(labels, refused, cfg, out);
    Ok(r)
}

fn ingest_v1(
    raw: &[u8],
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
    mut cache: Option<&mut SeriesCache>,
    shared: Option<&SharedSeriesCache>,
    plan: &mut Plan,
) -> Result<WriteOutcome, ServerError> {
    // A request that failed half way left its steps behind.
    plan.clear();
    let mut out = WriteOutcome::default();
    let mut scratch = Vec::new();
    let mut pairs = Vec::new();
    let mut samples = Vec::new();
    let mut view = WriteRequestView::new(raw);
    while let Some(item) = view.next() {
        let body = match item? {
            Item::Series(b) => b,
            Item::Metadata(md) => {
                store_v1_metadata(&md, app, &mut out);
                continue;
            }
        };
        // With a cache: decode the samples, and the labels only when their
        // raw bytes are not cached.
        let mut key = None;
        if let Some(c) = cache.as_deref_mut() {
            let rs = write::decode_series_samples(body, &mut samples)?;
            if let Some(run) = rs.labels {
                let mut h = 0;
                let hit = c.find_next(run).or_else(|| {
                    h = series_cache::hash_raw(run);
                    c.find(h, run)
                });
                if let Some(i) = hit {
                    out.exemplars_received += rs.counts.exemplars as u64;
                    let hint = c.entry(i).map_or(0, |e| e.r);
                    plan.push_series(
                        LabelsAt::Cache(i),
                        hint,
                        &samples,
                        rs.counts.histograms,
                        None,
                    );
                    continue;
                }
                if let Some((labels, hint)) = shared.and_then(|s| s.get(h, run)) {
                    out.exemplars_received += rs.counts.exemplars as u64;
                    if c.is_full() {
                        // The insert clears the cache: append what refers to it first.
                        plan.run(Some(&mut *c), shared, cfg, app, max_t, &mut out)?;
                    }
                    let i = c.insert(h, run, labels, hint);
                    plan.push_series(
                        LabelsAt::Cache(i),
                        hint,
                        &samples,
                        rs.counts.histograms,
                        None,
                    );
                    continue;
                }
                key = Some((h, run));
            }
        }
        let counts = write::decode_series(body, &mut pairs, &mut samples)?;
        let n = (samples.len() + counts.histograms) as u64;
        out.exemplars_received += counts.exemplars as u64;
        let labels = match labels::validate(pairs.iter().copied(), cfg, &mut scratch) {
            Ok(l) => l,
            Err((reason, msg)) => {
                plan.steps.push(Step::Refuse { reason, n, msg });
                continue;
            }
        };
        let (at, share) = match (cache.as_deref_mut(), key) {
            (Some(c), Some((h, run))) => {
                if c.is_full() {
                    plan.run(Some(&mut *c), shared, cfg, app, max_t, &mut out)?;
                }
                (
                    LabelsAt::Cache(c.insert(h, run, labels, 0)),
                    shared.map(|_| h),
                )
            }
            _ => {
                let i = u32::try_from(plan.owned.len()).unwrap_or(u32::MAX);
                plan.owned.push(labels);
                (LabelsAt::Owned(i), None)
            }
        };
        plan.push_series(at, 0, &samples, counts.histograms, share);
    }
    plan.run(cache, shared, cfg, app, max_t, &mut out)?;
    Ok(out)
}

fn ingest_v2(
    req: &write_v2::Request,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
) -> Result<WriteOutcome, ServerError> {
    let mut out = WriteOutcome::default();
    let syms = write_v2::Symbols::new(&req.symbols);
    let mut resolved = Vec::new();
    let mut scratch = Vec::new();
    for ts in &req.timeseries {
        let n = (ts.samples.len() + ts.histograms.len()) as u64;
        out.exemplars_received += ts.exemplars.len() as u64;
        if let Err(e) = syms.resolve_pairs(&ts.labels_refs, &mut resolved) {
            out.refuse(cfg, RejectReason::InvalidLabels, n, || {
                format!("series with unresolvable label references: {e}")
            });
            continue;
        }
        let pairs = resolved.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes()));
        let labels = match labels::validate(pairs, cfg, &mut scratch) {
            Ok(l) => l,
            Err((reason, msg)) => {
                out.refuse(cfg, reason, n, || msg);
                continue;
            }
        };
        let samples = ts.samples.iter().map(|s| (s.timestamp, s.value));
        let r = append_samples(&labels, 0, samples, cfg, app, max_t, &mut out)?;
        refuse_histograms(&labels, ts.histograms.len(), cfg, &mut out);
        if let Some(md) = &ts.metadata {
            store_v2_metadata(md, &syms, r, &labels, app, &mut out);
        }
    }
    Ok(out)
}

/// Appends one series' samples starting from the reference hint `r` (0 for
/// none); returns the series reference (0 if none).
fn append_samples(
    labels: &Labels,
    mut r: SeriesRef,
    samples: impl Iterator<Item = (i64, f64)>,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
    out: &mut WriteOutcome,
) -> Result<SeriesRef, ServerError> {
    // One message per series and reason: the first refused sample's error.
    let mut refused: Vec<(RejectReason, u64, String)> = Vec::new();
    for (t, v) in samples {
        if t > max_t {
            note(&mut refused, RejectReason::TooFarInFuture, || {
                format!(
                    "out of bounds: sample at {t} is too far in the future (server time + {} ms)",
                    cfg.max_future_ms
                )
            });
            continue;
        }
        match app.append(r, labels, t, v) {
            Ok(x) => {
                r = x;
                out.samples_written += 1;
            }
            Err(e) if e.is_client_error() => {
                note(&mut refused, reject_reason(&e), || e.to_string());
            }
            Err(e) => return Err(ServerError::Storage(e)),
        }
    }
    emit_refusals(labels, refused, cfg, out);
    Ok(r)
}

fn reject_reason(e: &StorageError) -> RejectReason {
    match e {
        StorageError::OutOfOrderSample { .. } => RejectReason::OutOfOrder,
        StorageError::OutOfBounds { .. } => RejectReason::OutOfBounds,
        StorageError::TooOldSample { .. } => RejectReason::TooOld,
        StorageError::DuplicateSampleForTimestamp { .. } => RejectReason::Duplicate,
        _ => RejectReason::InvalidLabels,
    }
}

/// Reports one series' noted refusals.
fn emit_refusals(
    labels: &Labels,
    refused: Vec<(RejectReason, u64, String)>,
    cfg: &ServerConfig,
    out: &mut WriteOutcome,
) {
    for (reason, n, msg) in refused {
        out.refuse(cfg, reason, n, || {
            if n > 1 {
                format!("{msg} for series {labels} ({n} samples refused)")
            } else {
                format!("{msg} for series {labels}")
            }
        });
    }
}

fn note(v: &mut Vec<(RejectReason, u64, String)>, r: RejectReason, msg: impl FnOnce() -> String) {
    match v.iter_mut().find(|(x, _, _)| *x == r) {
        Some((_, n, _)) => *n += 1,
        None => v.push((r, 1, msg())),
    }
}

fn refuse_histograms(labels: &Labels, n: usize, cfg: &ServerConfig, out: &mut WriteOutcome) {
    if n == 0 {
        return;
    }
    out.refuse(cfg, RejectReason::NativeHistogram, n as u64, || {
        format!("native histograms are not supported: {n} histogram samples refused for series {labels}")
    });
}

fn store_v1_metadata(md: &MetadataView<'_>, app: &mut dyn Appender, out: &mut WriteOutcome) {
    let (Ok(name), Ok(help), Ok(unit)) = (
        cairn_proto::utf8(md.metric_family_name),
        cairn_proto::utf8(md.help),
        cairn_proto::utf8(md.unit),
    ) else {
        out.metadata_failed += 1;
        return;
    };
    if name.is_empty() {
        out.metadata_failed += 1;
        return;
    }
    let labels = Labels::from_pairs([(cairn_model::METRIC_NAME, name)]);
    let meta = Metadata {
        kind: MetricType::from_code(md.r#type),
        unit: unit.to_owned(),
        help: help.to_owned(),
    };
    match app.update_metadata(0, &labels, &meta) {
        Ok(_) => out.metadata_stored += 1,
        Err(e) => {
            tracing::debug!(metric = name, error = %e, "remote write metadata not stored");
            out.metadata_failed += 1;
        }
    }
}

fn store_v2_metadata(
    md: &write_v2::Metadata,
    syms: &write_v2::Symbols<'_>,
    r: SeriesRef,
    labels: &Labels,
    app: &mut dyn Appender,
    out: &mut WriteOutcome,
) {
    if md.r#type == 0 && md.help_ref == 0 && md.unit_ref == 0 {
        return;
    }
    let (Ok(help), Ok(unit)) = (syms.get(md.help_ref), syms.get(md.unit_ref)) else {
        out.metadata_failed += 1;
        return;
    };
    let meta = Metadata {
        kind: MetricType::from_code(md.r#type),
        unit: unit.to_owned(),
        help: help.to_owned(),
    };
    match app.update_metadata(r, labels, &meta) {
        Ok(_) => out.metadata_stored += 1,
        Err(e) => {
            tracing::debug!(series = %labels, error = %e, "remote write metadata not stored");
            out.metadata_failed += 1;
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

#[cfg(test)]
mod tests {
    //! The 1.0 path appends a whole request through `append_batch`; the 2.0
    //! path still appends sample by sample. Fed the same series, both must
    //! store the same samples and report the same outcome, messages and
    //! their order included.

    use super::*;
    use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
    use proptest::prelude::*;

    /// Records appends; refuses negative timestamps (out of order) and 13
    /// (duplicate); fails for good at 20.
    #[derive(Default)]
    struct Recorder(Vec<(Labels, i64, u64)>);

    impl Appender for Recorder {
        fn append(
            &mut self,
            _r: SeriesRef,
            l: &Labels,
            t: i64,
            v: f64,
        ) -> cairn_storage::Result<SeriesRef> {
            match t {
                20 => return Err(StorageError::Closed),
                13 => return Err(StorageError::DuplicateSampleForTimestamp { t }),
                t if t < 0 => return Err(StorageError::OutOfOrderSample { t }),
                _ => {}
            }
            self.0.push((l.clone(), t, v.to_bits()));
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

    type Series = (Vec<(String, String)>, Vec<i64>);

    fn v1_body(series: &[Series]) -> Vec<u8> {
        let ts = series
            .iter()
            .map(|(ls, ts)| TimeSeries {
                labels: ls.iter().map(|(n, v)| Label::new(n, v)).collect(),
                samples: ts
                    .iter()
                    .map(|&t| Sample {
                        value: t as f64 * 0.5,
                        timestamp: t,
                    })
                    .collect(),
                ..TimeSeries::default()
            })
            .collect();
        let raw = WriteRequest {
            timeseries: ts,
            metadata: vec![],
        }
        .encode_to_vec();
        cairn_proto::snappy::compress(&raw)
    }

    fn v2_body(series: &[Series]) -> Vec<u8> {
        let mut symbols: Vec<String> = vec![String::new()];
        let mut sym = |s: &str| -> u32 {
            match symbols.iter().position(|x| x == s) {
                Some(i) => i as u32,
                None => {
                    symbols.push(s.to_owned());
                    (symbols.len() - 1) as u32
                }
            }
        };
        let ts: Vec<write_v2::TimeSeries> = series
            .iter()
            .map(|(ls, ts)| write_v2::TimeSeries {
                labels_refs: ls.iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
                samples: ts
                    .iter()
                    .map(|&t| write_v2::Sample {
                        value: t as f64 * 0.5,
                        timestamp: t,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let raw = write_v2::Request {
            symbols: symbols.into_iter().map(Bytes::from).collect(),
            timeseries: ts,
        }
        .encode_to_vec();
        cairn_proto::snappy::compress(&raw)
    }

    fn series_strategy() -> impl Strategy<Value = Series> {
        // Few names and values so series repeat within a request; unsorted
        // and duplicate names occur. Timestamps cover every refusal.
        (
            proptest::collection::vec(("(__name__|a|b)", "(x|y)"), 1..4),
            proptest::collection::vec(
                prop_oneof![8 => -2i64..50, 1 => Just(13i64), 1 => Just(100i64)],
                0..4,
            ),
        )
    }

    fn run(version: WireVersion, body: &[u8], cached: bool) -> (String, Vec<(Labels, i64, u64)>) {
        let cfg = ServerConfig {
            max_error_messages: 3,
            ..ServerConfig::default()
        };
        // Timestamps above 50 are too far in the future.
        let now = 50 - cfg.max_future_ms;
        let mut app = Recorder::default();
        let res = if cached {
            ingest_with(
                version,
                body,
                &cfg,
                &mut app,
                now,
                &mut WriteScratch::cached(),
            )
        } else {
            ingest(version, body, &cfg, &mut app, now)
        };
        let res = match res {
            Ok(o) => format!(
                "{} {} {}",
                o.samples_written,
                o.samples_refused,
                o.refusal_message().unwrap_or_default()
            ),
            Err(e) => format!("error {e}"),
        };
        (res, app.0)
    }

    #[test]
    fn batch_refusals_in_request_order() {
        let s = |ls: &[(&str, &str)], ts: &[i64]| -> Series {
            (
                ls.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                ts.to_vec(),
            )
        };
        let req = vec![
            s(&[("__name__", "up")], &[1, 2]),
            s(&[("b", "x"), ("a", "y")], &[3]), // unsorted labels
            s(&[("__name__", "up")], &[-1, 13, 100, 4]), // ooo, dup, future, good
            s(&[("__name__", "down")], &[5]),
        ];
        let body = v1_body(&req);
        let (out, stored) = run(WireVersion::V1, &body, true);
        assert_eq!(stored.len(), 4, "{stored:?}");
        let msg = out.split("\n  ").collect::<Vec<_>>();
        assert_eq!(msg[0], "4 4 refused 4 samples (4 written):", "{out}");
        assert!(msg[1].contains("sorted"), "{out}");
        assert!(msg[2].starts_with("out of order"), "{out}");
        assert!(msg[3].contains("duplicate"), "{out}");
        assert!(msg[4].starts_with("... and 1 more"), "{out}");
        assert_eq!(
            run(WireVersion::V1, &body, false),
            (out.clone(), stored.clone())
        );
        assert_eq!(run(WireVersion::V2, &v2_body(&req), false), (out, stored));

        // A storage failure that is not the sender's fault fails the request.
        let body = v1_body(&[s(&[("__name__", "up")], &[1, 20, 2])]);
        let (out, _) = run(WireVersion::V1, &body, true);
        assert!(out.starts_with("error storage:"), "{out}");
    }

    #[test]
    fn metadata_types_map_by_name_from_both_protocols() {
        use write::MetricType as V1;
        use write_v2::MetricType as V2;
        for (v1, v2, want) in [
            (V1::Unknown, V2::Unspecified, MetricType::Unknown),
            (V1::Counter, V2::Counter, MetricType::Counter),
            (V1::Gauge, V2::Gauge, MetricType::Gauge),
            (V1::Histogram, V2::Histogram, MetricType::Histogram),
            (
                V1::GaugeHistogram,
                V2::GaugeHistogram,
                MetricType::GaugeHistogram,
            ),
            (V1::Summary, V2::Summary, MetricType::Summary),
            (V1::Info, V2::Info, MetricType::Info),
            (V1::StateSet, V2::StateSet, MetricType::StateSet),
        ] {
            assert_eq!(MetricType::from_code(v1 as i32), want);
            assert_eq!(MetricType::from_code(v2 as i32), want);
        }
    }

    proptest! {
        #[test]
        fn v1_batch_matches_v2_one_by_one(
            req in proptest::collection::vec(series_strategy(), 0..12),
            cached in any::<bool>(),
        ) {
            let v1 = run(WireVersion::V1, &v1_body(&req), cached);
            let v2 = run(WireVersion::V2, &v2_body(&req), false);
            if v1.0.starts_with("error") {
                // Rolled back: what was staged does not matter.
                prop_assert_eq!(v1.0, v2.0);
            } else {
                prop_assert_eq!(v1, v2);
            }
        }
    }
}
