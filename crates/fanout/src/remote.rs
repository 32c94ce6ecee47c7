//! Another store read over Prometheus's remote read protocol.
//!
//! Each selection is one request: the querier's closed range, the
//! selection's matchers, and `STREAMED_XOR_CHUNKS` as the preferred
//! answer (its frames are checked, chunks decoded: XOR floats and native
//! histograms); a store that only answers `SAMPLES` is read too (floats).
//! Samples outside the range are dropped (chunks may reach past it).
//! Label names and values are answered from a selection, as remote read
//! has no label API.

use std::collections::BTreeSet;
use std::time::Duration;

use cairn_model::{Labels, MatchType, Matcher, Sample};
use cairn_proto::read::{
    ChunkEncoding, ChunkedReadResponse, LabelMatcher, Query, ReadRequest, ReadResponse,
    ResponseType,
};
use cairn_proto::Message;
use cairn_storage::{Querier, Queryable, SelectHints, Series, SeriesSet};

use crate::error::{FanoutError, Result};
use crate::series::MaterializedSeries;

/// Largest answer read from a store.
const MAX_BODY: u64 = 1 << 30;
/// Largest frame of a streamed answer.
const MAX_FRAME: usize = 64 << 20;

/// A store read over remote read (`--query.store`).
pub struct RemoteStore {
    url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish()
    }
}

impl RemoteStore {
    /// A store at `url`: its remote-read endpoint, or a base URL to which
    /// `/api/v1/read` is added. Requests give up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Self {
        let url = url.trim_end_matches('/');
        let url = if url.ends_with("/api/v1/read") {
            url.to_owned()
        } else {
            format!("{url}/api/v1/read")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self { url, agent }
    }

    /// The remote-read endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, reason: impl ToString) -> FanoutError {
        FanoutError::Request {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// The series matching `matchers` with their samples in the closed
    /// range `[mint, maxt]`, sorted by labels.
    pub fn read(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<MaterializedSeries>> {
        let req = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: mint,
                end_timestamp_ms: maxt,
                matchers: matchers.iter().map(proto_matcher).collect(),
                hints: None,
            }],
            accepted_response_types: vec![
                ResponseType::StreamedXorChunks as i32,
                ResponseType::Samples as i32,
            ],
        };
        let body = cairn_proto::snappy::compress(&req.encode_to_vec());
        let mut resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .header("User-Agent", "cairn-query")
            .send(&body[..])
            .map_err(|e| self.err(e))?;
        let status = resp.status().as_u16();
        let streamed = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("x-streamed-protobuf"));
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.err(e))?;
        if status != 200 {
            let text = String::from_utf8_lossy(&bytes);
            return Err(FanoutError::Status {
                url: self.url.clone(),
                status,
                body: text.chars().take(512).collect(),
            });
        }
        decode_read_response(&self.url, &bytes, streamed, mint, maxt)
    }
}

/// Decodes a remote read answer from `url` (`streamed`: the frames of
/// `STREAMED_XOR_CHUNKS`; else a snappy-compressed `SAMPLES` response):
/// its series sorted by labels, each sorted by time with unique
/// timestamps, samples outside the closed range `[mint, maxt]` dropped,
/// series left empty dropped. Malformed input is an error, never a panic.
pub fn decode_read_response(
    url: &str,
    body: &[u8],
    streamed: bool,
    mint: i64,
    maxt: i64,
) -> Result<Vec<MaterializedSeries>> {
    let d = Decoder { url };
    let mut out = if streamed {
        d.decode_streamed(body)?
    } else {
        d.decode_samples(body)?
    };
    for s in &mut out {
        s.normalize();
        s.floats.retain(|x| x.t >= mint && x.t <= maxt);
        s.hists.retain(|h| h.0 >= mint && h.0 <= maxt);
    }
    out.retain(|s| !s.is_empty());
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

struct Decoder<'u> {
    url: &'u str,
}

impl Decoder<'_> {
    fn corrupt(&self, what: impl ToString) -> FanoutError {
        FanoutError::Corrupt {
            url: self.url.to_owned(),
            what: what.to_string(),
        }
    }

    fn decode_streamed(&self, body: &[u8]) -> Result<Vec<MaterializedSeries>> {
        let mut out: Vec<MaterializedSeries> = Vec::new();
        let mut frames = cairn_proto::frame::FrameReader::new(body, MAX_FRAME);
        while let Some(frame) = frames.next() {
            let frame = frame.map_err(|e| self.corrupt(e))?;
            let msg = ChunkedReadResponse::decode(frame).map_err(|e| self.corrupt(e))?;
            for cs in msg.chunked_series {
                let labels = self.labels(&cs.labels)?;
                // A series may continue in the next frame.
                if out.last().is_none_or(|s| s.labels != labels) {
                    out.push(MaterializedSeries {
                        labels,
                        floats: Vec::new(),
                        hists: Vec::new(),
                    });
                }
                let Some(s) = out.last_mut() else { continue };
                for c in cs.chunks {
                    let bad = |e: cairn_codec::CodecError| {
                        self.corrupt(format!("chunk of {}: {e}", s.labels))
                    };
                    match ChunkEncoding::try_from(c.r#type) {
                        Ok(ChunkEncoding::Xor) => {
                            let floats = &mut s.floats;
                            cairn_codec::xor_decode(&c.data, |t, v| floats.push(Sample::new(t, v)))
                                .map_err(bad)?;
                        }
                        Ok(ChunkEncoding::Histogram) => s.hists.extend(
                            cairn_codec::decode_histogram_samples(
                                cairn_codec::ENCODING_HISTOGRAM,
                                &c.data,
                            )
                            .map_err(bad)?,
                        ),
                        Ok(ChunkEncoding::FloatHistogram) => s.hists.extend(
                            cairn_codec::decode_histogram_samples(
                                cairn_codec::ENCODING_FLOAT_HISTOGRAM,
                                &c.data,
                            )
                            .map_err(bad)?,
                        ),
                        _ => {
                            return Err(self.corrupt(format!(
                                "chunk of {} with unknown encoding {}",
                                s.labels, c.r#type
                            )))
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn decode_samples(&self, body: &[u8]) -> Result<Vec<MaterializedSeries>> {
        let raw = cairn_proto::snappy::decompress(body, MAX_BODY as usize)
            .map_err(|e| self.corrupt(e))?;
        let msg = ReadResponse::decode(&raw[..]).map_err(|e| self.corrupt(e))?;
        let mut out = Vec::new();
        for r in msg.results {
            for ts in r.timeseries {
                out.push(MaterializedSeries {
                    labels: self.labels(&ts.labels)?,
                    floats: ts
                        .samples
                        .iter()
                        .map(|x| Sample::new(x.timestamp, x.value))
                        .collect(),
                    hists: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    fn labels(&self, l: &[cairn_proto::write::Label]) -> Result<Labels> {
        let mut pairs = Vec::with_capacity(l.len());
        for x in l {
            let (Ok(n), Ok(v)) = (std::str::from_utf8(&x.name), std::str::from_utf8(&x.value))
            else {
                return Err(self.corrupt("a label that is not UTF-8"));
            };
            pairs.push((n, v));
        }
        pairs.sort_unstable();
        Labels::try_from_sorted(pairs).map_err(|e| self.corrupt(e))
    }
}

fn proto_matcher(m: &Matcher) -> LabelMatcher {
    use cairn_proto::read::MatchType as P;
    let t = match m.kind {
        MatchType::Equal => P::Eq,
        MatchType::NotEqual => P::Neq,
        MatchType::Regex => P::Re,
        MatchType::NotRegex => P::Nre,
    };
    LabelMatcher {
        r#type: t as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

impl Queryable for RemoteStore {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(RemoteQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

struct RemoteQuerier<'a> {
    store: &'a RemoteStore,
    mint: i64,
    maxt: i64,
}

impl RemoteQuerier<'_> {
    fn all(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<MaterializedSeries>> {
        let any;
        let ms = if matchers.is_empty() {
            any = [Matcher::new(MatchType::Regex, "__name__", ".+")
                .map_err(|e| cairn_storage::StorageError::Backend(Box::new(e)))?];
            &any[..]
        } else {
            matchers
        };
        Ok(self.store.read(self.mint, self.maxt, ms)?)
    }
}

impl Querier for RemoteQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let _ = hints;
        let all = self.all(matchers)?;
        Ok(Box::new(
            all.into_iter()
                .map(|s| Ok(Box::new(s) as Box<dyn Series + 'a>)),
        ))
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for s in self.all(matchers)? {
            out.extend(s.labels.iter().map(|l| l.name.to_owned()));
        }
        Ok(out.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for s in self.all(matchers)? {
            if let Some(v) = s.labels.get(name) {
                out.insert(v.to_owned());
            }
        }
        Ok(out.into_iter().collect())
    }
}
