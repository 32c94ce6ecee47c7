//! Shared test helpers: start a server, send requests, build and decode
//! remote write/read bodies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use cairn_proto::read::{ChunkedReadResponse, ReadRequest, ReadResponse};
use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
use cairn_proto::write_v2;
use cairn_proto::Message;
use cairn_server::{Backend, ServerConfig};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use tokio::sync::oneshot;

/// (query index, labels, samples as (t, value bits)).
pub type SeriesOut = (usize, String, Vec<(i64, u64)>);
/// (label pairs, samples) for a v2 request.
pub type V2Series<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

pub const V1_CT: &str = "application/x-protobuf";
pub const V2_CT: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub join: Option<tokio::task::JoinHandle<cairn_server::Result<()>>>,
}

impl TestServer {
    pub async fn start(backend: Arc<dyn Backend>, cfg: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(cairn_server::serve(listener, cfg, backend, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            stop: Some(tx),
            join: Some(join),
        }
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            j.await.unwrap().unwrap();
        }
    }

    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = sender
        .send_request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn post_write(addr: SocketAddr, ct: &str, body: Vec<u8>) -> Resp {
    send(
        addr,
        "POST",
        "/api/v1/write",
        &[("content-type", ct), ("content-encoding", "snappy")],
        body,
    )
    .await
}

pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..TimeSeries::default()
    }
}

pub fn v1_body(ts: Vec<TimeSeries>) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: ts,
        metadata: vec![],
    };
    cairn_proto::snappy::compress(&req.encode_to_vec())
}

pub fn v2_body(ts: &[V2Series<'_>]) -> Vec<u8> {
    let mut b = write_v2::SymbolsBuilder::new();
    let mut out = Vec::new();
    for (labels, samples) in ts {
        out.push(write_v2::TimeSeries {
            labels_refs: b.label_refs(labels.iter().copied()),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| write_v2::Sample {
                    value,
                    timestamp,
                    start_timestamp: 0,
                })
                .collect(),
            ..Default::default()
        });
    }
    let req = write_v2::Request {
        symbols: b.build(),
        timeseries: out,
    };
    cairn_proto::snappy::compress(&req.encode_to_vec())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Posts a read request; returns the raw response.
pub async fn post_read(addr: SocketAddr, req: &ReadRequest) -> Resp {
    send(
        addr,
        "POST",
        "/api/v1/read",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "snappy"),
            ("x-prometheus-remote-read-version", "0.1.0"),
        ],
        cairn_proto::snappy::compress(&req.encode_to_vec()),
    )
    .await
}

/// Decodes a SAMPLES response into (query index, labels, samples).
pub fn decode_samples(r: &Resp) -> Vec<SeriesOut> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    let raw = cairn_proto::snappy::decompress(&r.body, 1 << 30).unwrap();
    let resp = ReadResponse::decode(&raw[..]).unwrap();
    let mut out = Vec::new();
    for (qi, res) in resp.results.iter().enumerate() {
        for ts in &res.timeseries {
            out.push((
                qi,
                labels_string(&ts.labels),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            ));
        }
    }
    out
}

pub fn labels_string(ls: &[Label]) -> String {
    let l = cairn_model::Labels::from_pairs(ls.iter().map(|l| {
        (
            String::from_utf8(l.name.to_vec()).unwrap(),
            String::from_utf8(l.value.to_vec()).unwrap(),
        )
    }));
    l.to_string()
}

/// Decodes a streamed response: frames, then XOR chunks. Returns the
/// frames and the merged (query index, labels, samples) per series.
pub fn decode_streamed(r: &Resp) -> (Vec<ChunkedReadResponse>, Vec<SeriesOut>) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
    );
    let mut frames = Vec::new();
    let mut out: Vec<SeriesOut> = Vec::new();
    let mut fr = cairn_proto::frame::FrameReader::new(&r.body, 1 << 30);
    while let Some(f) = fr.next() {
        let msg = ChunkedReadResponse::decode(f.unwrap()).unwrap();
        for cs in &msg.chunked_series {
            let l = labels_string(&cs.labels);
            let mut samples = Vec::new();
            for c in &cs.chunks {
                assert_eq!(c.r#type, 1, "XOR encoding");
                let mut it = cairn_codec::xor_iter(&c.data);
                let mut first = true;
                while it.next() {
                    let (t, v) = it.at();
                    if first {
                        assert_eq!(t, c.min_time_ms);
                        first = false;
                    }
                    assert!(t <= c.max_time_ms);
                    samples.push((t, v.to_bits()));
                }
                assert!(it.err().is_none());
            }
            let qi = msg.query_index as usize;
            match out.last_mut() {
                Some(last) if last.0 == qi && last.1 == l => last.2.extend(samples),
                _ => out.push((qi, l, samples)),
            }
        }
        frames.push(msg);
    }
    (frames, out)
}

/// Everything in a MemStorage, as (labels, samples as bits).
pub fn dump(st: &cairn_storage::MemStorage) -> Vec<(String, Vec<(i64, u64)>)> {
    use cairn_storage::{Queryable, SelectHints, ValueType};
    let q = st.querier(i64::MIN, i64::MAX).unwrap();
    let m = cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", ".*").unwrap();
    let mut out = Vec::new();
    for s in q.select(&SelectHints::default(), &[m]).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            let (t, x) = it.at();
            v.push((t, x.to_bits()));
        }
        out.push((s.labels().to_string(), v));
    }
    out
}
