//! Remote read: both response kinds.
//!
//! The response kind is the first entry of `accepted_response_types` that
//! this server implements (`SAMPLES` when the list is empty); a request that
//! accepts neither gets a 400. Queries run on a blocking thread because the
//! storage traits are synchronous.
//!
//! - `SAMPLES`: every query's series with raw samples, in one snappy
//!   compressed `ReadResponse`; the total sample count is limited.
//! - `STREAMED_XOR_CHUNKS`: frames (see [`cairn_proto::frame`]) of one
//!   series each, sent while the storage is still being read, through a
//!   bounded channel so memory stays constant whatever the result size. A
//!   series' chunks come from [`cairn_storage::Series::chunks`] when the
//!   storage has them (chunks entirely outside the query range are skipped;
//!   others go out untouched, so they may hold samples outside the range, as
//!   with Prometheus), else samples are re-encoded into XOR chunks of at most
//!   120 samples. A series whose chunks exceed the frame size limit is split
//!   over several consecutive frames.

use std::sync::Arc;

use bytes::Bytes;
use cairn_model::{FloatHistogram, Labels, MatchType, Matcher};
use cairn_proto::read::{
    Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label, Query, QueryResult,
    ReadRequest, ReadResponse, ResponseType, Sample, TimeSeries,
};
use cairn_proto::Message;
use cairn_storage::{SelectHints, Series, ValueType};
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::{ServerConfig, ServerError};

/// Samples per re-encoded chunk, Prometheus's target.
const SAMPLES_PER_CHUNK: usize = 120;

/// Decodes a snappy-compressed `ReadRequest` and picks the response kind.
pub fn decode_request(
    compressed: &[u8],
    cfg: &ServerConfig,
) -> Result<(ReadRequest, ResponseType), ServerError> {
    let raw = cairn_proto::snappy::decompress(compressed, cfg.max_body_bytes)?;
    let req = ReadRequest::decode(&raw[..]).map_err(cairn_proto::ProtoError::from)?;
    let kind = negotiate(&req.accepted_response_types)?;
    // Validate every query up front so errors become a status, not a
    // broken stream.
    for q in &req.queries {
        matchers(q)?;
    }
    Ok((req, kind))
}

fn negotiate(accepted: &[i32]) -> Result<ResponseType, ServerError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    for a in accepted {
        if let Ok(t) = ResponseType::try_from(*a) {
            return Ok(t);
        }
    }
    Err(ServerError::BadRequest(format!(
        "none of the requested response types {accepted:?} is supported; supported are SAMPLES (0) and STREAMED_XOR_CHUNKS (1)"
    )))
}

fn matchers(q: &Query) -> Result<Vec<Matcher>, ServerError> {
    q.matchers
        .iter()
        .map(|m| {
            let kind = match m.r#type {
                0 => MatchType::Equal,
                1 => MatchType::NotEqual,
                2 => MatchType::Regex,
                3 => MatchType::NotRegex,
                t => {
                    return Err(ServerError::BadRequest(format!(
                        "unknown label matcher type {t}"
                    )))
                }
            };
            Matcher::new(kind, m.name.clone(), m.value.clone())
                .map_err(|e| ServerError::BadRequest(e.to_string()))
        })
        .collect()
}

fn hints(q: &Query) -> SelectHints {
    let mut h = SelectHints {
        start: q.start_timestamp_ms,
        end: q.end_timestamp_ms,
        ..SelectHints::default()
    };
    if let Some(x) = &q.hints {
        h.step = x.step_ms;
        h.range = x.range_ms;
        if !x.func.is_empty() {
            h.func = Some(x.func.clone());
        }
    }
    h
}

fn proto_labels(l: &Labels) -> Vec<Label> {
    l.iter().map(|x| Label::new(x.name, x.value)).collect()
}

fn proto_spans(v: &[cairn_model::Span]) -> Vec<cairn_proto::histogram::BucketSpan> {
    v.iter()
        .map(|s| cairn_proto::histogram::BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn proto_reset_hint(h: cairn_model::CounterResetHint) -> i32 {
    use cairn_model::CounterResetHint as H;
    use cairn_proto::histogram::ResetHint;
    (match h {
        H::Unknown => ResetHint::Unknown,
        H::CounterReset => ResetHint::Yes,
        H::NotCounterReset => ResetHint::No,
        H::Gauge => ResetHint::Gauge,
    }) as i32
}

/// An integer native histogram as remote read's `Histogram` message:
/// integer counts, delta-encoded buckets (Prometheus's `FromIntHistogram`).
fn int_histogram_proto(t: i64, h: &cairn_model::Histogram) -> cairn_proto::histogram::Histogram {
    use cairn_proto::histogram::{Count, ZeroCount};
    cairn_proto::histogram::Histogram {
        count: Some(Count::CountInt(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(ZeroCount::ZeroCountInt(h.zero_count)),
        negative_spans: proto_spans(&h.negative_spans),
        negative_deltas: h.negative_buckets.clone(),
        positive_spans: proto_spans(&h.positive_spans),
        positive_deltas: h.positive_buckets.clone(),
        reset_hint: proto_reset_hint(h.counter_reset_hint),
        timestamp: t,
        custom_values: h.custom_values.clone(),
        ..Default::default()
    }
}

/// A float native histogram as remote read's `Histogram` message: float
/// counts, absolute bucket counts (Prometheus's `FromFloatHistogram`).
fn histogram_proto(t: i64, h: &FloatHistogram) -> cairn_proto::histogram::Histogram {
    use cairn_proto::histogram::{Count, ZeroCount};
    let spans = proto_spans;
    cairn_proto::histogram::Histogram {
        count: Some(Count::CountFloat(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(ZeroCount::ZeroCountFloat(h.zero_count)),
        negative_spans: spans(&h.negative_spans),
        negative_counts: h.negative_buckets.clone(),
        positive_spans: spans(&h.positive_spans),
        positive_counts: h.positive_buckets.clone(),
        reset_hint: proto_reset_hint(h.counter_reset_hint),
        timestamp: t,
        custom_values: h.custom_values.clone(),
        ..Default::default()
    }
}

/// Answers all queries with raw samples; returns the uncompressed
/// `ReadResponse` bytes.
pub fn samples_response(
    backend: &dyn Backend,
    req: &ReadRequest,
    cfg: &ServerConfig,
    metrics: &Metrics,
) -> Result<Vec<u8>, ServerError> {
    let mut resp = ReadResponse::default();
    let mut total = 0usize;
    let mut nseries = 0u64;
    for q in &req.queries {
        let ms = matchers(q)?;
        let querier = backend.querier(q.start_timestamp_ms, q.end_timestamp_ms)?;
        let mut result = QueryResult::default();
        for s in querier.select(&hints(q), &ms)? {
            let s = s?;
            let mut samples = Vec::new();
            let mut histograms = Vec::new();
            let mut it = s.iter();
            loop {
                match it.next() {
                    ValueType::Float => {
                        let (t, v) = it.at();
                        if t < q.start_timestamp_ms || t > q.end_timestamp_ms {
                            continue;
                        }
                        samples.push(Sample {
                            value: v,
                            timestamp: t,
                        });
                    }
                    ValueType::Histogram | ValueType::FloatHistogram => {
                        // Integer histograms go out with integer counts
                        // and bucket deltas, float ones with float counts,
                        // as Prometheus's `ToQueryResult` sends them.
                        let t = it.at_t();
                        if t < q.start_timestamp_ms || t > q.end_timestamp_ms {
                            continue;
                        }
                        if let Some((t, h)) = it.at_histogram() {
                            histograms.push(int_histogram_proto(t, &h));
                        } else if let Some((t, h)) = it.at_float_histogram() {
                            histograms.push(histogram_proto(t, &h));
                        }
                    }
                    ValueType::None => break,
                }
            }
            if let Some(e) = it.err() {
                return Err(ServerError::Internal(format!(
                    "reading series {}: {e}",
                    s.labels()
                )));
            }
            total += samples.len() + histograms.len();
            if total > cfg.read_sample_limit {
                return Err(ServerError::BadRequest(format!(
                    "exceeded sample limit ({})",
                    cfg.read_sample_limit
                )));
            }
            nseries += 1;
            result.timeseries.push(TimeSeries {
                labels: proto_labels(s.labels()),
                samples,
                histograms,
                ..TimeSeries::default()
            });
        }
        resp.results.push(result);
    }
    metrics.add_read(nseries, 0);
    Ok(resp.encode_to_vec())
}

/// Streams framed chunked responses into `tx`. Runs on a blocking thread;
/// stops early (without error) when the receiver is gone.
pub fn stream_chunks(
    backend: Arc<dyn Backend>,
    req: ReadRequest,
    cfg: ServerConfig,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut w = FrameSink {
        tx,
        max: cfg.read_max_bytes_per_frame.max(1),
        frames: 0,
        series: 0,
    };
    let r = stream_all(&*backend, &req, &mut w);
    metrics.add_read(w.series, w.frames);
    match r {
        Ok(()) | Err(StreamEnd::ReceiverGone) => {}
        Err(StreamEnd::Failed(e)) => {
            tracing::warn!(error = %e, "remote read stream failed");
            let _ =
                w.tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }
}

enum StreamEnd {
    ReceiverGone,
    Failed(ServerError),
}

impl<E: Into<ServerError>> From<E> for StreamEnd {
    fn from(e: E) -> Self {
        StreamEnd::Failed(e.into())
    }
}

struct FrameSink {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    max: usize,
    frames: u64,
    series: u64,
}

impl FrameSink {
    fn send(&mut self, labels: &[Label], chunks: Vec<Chunk>, qi: usize) -> Result<(), StreamEnd> {
        let msg = ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: labels.to_vec(),
                chunks,
            }],
            query_index: qi as i64,
        };
        let payload = msg.encode_to_vec();
        let mut buf = Vec::with_capacity(payload.len() + 14);
        cairn_proto::frame::write_frame(&payload, &mut buf);
        self.frames += 1;
        self.tx
            .blocking_send(Ok(Bytes::from(buf)))
            .map_err(|_| StreamEnd::ReceiverGone)
    }
}

fn stream_all(
    backend: &dyn Backend,
    req: &ReadRequest,
    w: &mut FrameSink,
) -> Result<(), StreamEnd> {
    for (qi, q) in req.queries.iter().enumerate() {
        let ms = matchers(q)?;
        let (mint, maxt) = (q.start_timestamp_ms, q.end_timestamp_ms);
        let querier = backend.querier(mint, maxt)?;
        for s in querier.select(&hints(q), &ms)? {
            let s = s?;
            stream_series(&*s, mint, maxt, qi, w)?;
        }
    }
    Ok(())
}

/// Sends one series as one or more frames.
fn stream_series(
    s: &dyn Series,
    mint: i64,
    maxt: i64,
    qi: usize,
    w: &mut FrameSink,
) -> Result<(), StreamEnd> {
    let labels = proto_labels(s.labels());
    let mut pending: Vec<Chunk> = Vec::new();
    let mut pending_bytes = 0usize;
    let mut sent_any = false;
    let mut push =
        |c: Chunk, w: &mut FrameSink, pending: &mut Vec<Chunk>| -> Result<(), StreamEnd> {
            if !pending.is_empty() && pending_bytes + c.data.len() > w.max {
                w.send(&labels, std::mem::take(pending), qi)?;
                sent_any = true;
                pending_bytes = 0;
            }
            pending_bytes += c.data.len();
            pending.push(c);
            Ok(())
        };
    if let Some(mut chunks) = s.chunks() {
        while let Some(c) = chunks.next_chunk() {
            let c = c?;
            if c.max_time < mint || c.min_time > maxt {
                continue;
            }
            // XOR and native-histogram chunks go out as stored (the
            // protocol's chunk types 1, 2 and 3 are the encoding bytes).
            if matches!(
                c.encoding,
                cairn_codec::ENCODING_XOR
                    | cairn_codec::ENCODING_HISTOGRAM
                    | cairn_codec::ENCODING_FLOAT_HISTOGRAM
            ) {
                let chunk = Chunk {
                    min_time_ms: c.min_time,
                    max_time_ms: c.max_time,
                    r#type: i32::from(c.encoding),
                    data: Bytes::from(c.data),
                };
                push(chunk, w, &mut pending)?;
                continue;
            }
            // XOR2 and dense chunks are re-encoded as XOR, which every
            // remote-read client understands, 120 samples at a time.
            let mut cur = cairn_codec::XorChunk::new();
            let (mut cmin, mut cmax) = (0i64, 0i64);
            let mut full: Vec<Chunk> = Vec::new();
            cairn_codec::decode_float_chunk(c.encoding, &c.data, |t, v| {
                if cur.num_samples() == 0 {
                    cmin = t;
                }
                cur.append(t, v);
                cmax = t;
                if cur.num_samples() >= SAMPLES_PER_CHUNK {
                    full.push(xor_chunk(std::mem::take(&mut cur), cmin, cmax));
                }
            })
            .map_err(|e| {
                StreamEnd::Failed(ServerError::Internal(format!(
                    "reading series {}: {e}",
                    s.labels()
                )))
            })?;
            if cur.num_samples() > 0 {
                full.push(xor_chunk(cur, cmin, cmax));
            }
            for x in full {
                push(x, w, &mut pending)?;
            }
        }
    } else {
        let mut it = s.iter();
        let mut cur = cairn_codec::XorChunk::new();
        let (mut cmin, mut cmax) = (0i64, 0i64);
        // A run of histograms, sent as float-histogram chunks when floats
        // resume or the series ends.
        let mut hists: Vec<(i64, FloatHistogram)> = Vec::new();
        let hist_chunks = |hs: &mut Vec<(i64, FloatHistogram)>| -> Result<Vec<Chunk>, StreamEnd> {
            let cs = cairn_codec::encode_float_histograms(hs).map_err(|e| {
                StreamEnd::Failed(ServerError::Internal(format!(
                    "encoding the histograms of series {}: {e}",
                    s.labels()
                )))
            })?;
            hs.clear();
            Ok(cs
                .into_iter()
                .map(|(min, max, data)| Chunk {
                    min_time_ms: min,
                    max_time_ms: max,
                    r#type: ChunkEncoding::FloatHistogram as i32,
                    data: Bytes::from(data),
                })
                .collect())
        };
        loop {
            match it.next() {
                ValueType::Histogram | ValueType::FloatHistogram => {
                    let Some((t, h)) = it.at_float_histogram() else {
                        continue;
                    };
                    if t < mint || t > maxt {
                        continue;
                    }
                    if cur.num_samples() > 0 {
                        let full = std::mem::take(&mut cur);
                        push(xor_chunk(full, cmin, cmax), w, &mut pending)?;
                    }
                    hists.push((t, (*h).clone()));
                }
                ValueType::Float => {
                    let (t, v) = it.at();
                    if t < mint || t > maxt {
                        continue;
                    }
                    if !hists.is_empty() {
                        for c in hist_chunks(&mut hists)? {
                            push(c, w, &mut pending)?;
                        }
                    }
                    if cur.num_samples() == 0 {
                        cmin = t;
                    }
                    cur.append(t, v);
                    cmax = t;
                    if cur.num_samples() >= SAMPLES_PER_CHUNK {
                        let full = std::mem::take(&mut cur);
                        push(xor_chunk(full, cmin, cmax), w, &mut pending)?;
                    }
                }
                ValueType::None => break,
            }
        }
        if let Some(e) = it.err() {
            return Err(StreamEnd::Failed(ServerError::Internal(format!(
                "reading series {}: {e}",
                s.labels()
            ))));
        }
        if cur.num_samples() > 0 {
            push(xor_chunk(cur, cmin, cmax), w, &mut pending)?;
        }
        if !hists.is_empty() {
            for c in hist_chunks(&mut hists)? {
                push(c, w, &mut pending)?;
            }
        }
    }
    if !pending.is_empty() {
        w.send(&labels, pending, qi)?;
        sent_any = true;
    }
    if sent_any {
        w.series += 1;
    }
    Ok(())
}

fn xor_chunk(c: cairn_codec::XorChunk, min: i64, max: i64) -> Chunk {
    Chunk {
        min_time_ms: min,
        max_time_ms: max,
        r#type: ChunkEncoding::Xor as i32,
        data: Bytes::from(c.into_bytes()),
    }
}
