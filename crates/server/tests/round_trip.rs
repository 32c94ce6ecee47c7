//! Round trips through the HTTP server with MemStorage: remote write 1.0 and
//! 2.0 in, remote read (both response kinds) out; plus health, metrics,
//! storage failure mapping and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/chunk_store.rs"]
mod chunk_store;
#[path = "support/harness.rs"]
mod harness;

use std::sync::{mpsc as smpsc, Arc, Mutex};

use cairn_model::{Labels, Sample};
use cairn_proto::read::{LabelMatcher, Query, ReadHints, ReadRequest};
use cairn_proto::write::{MetricMetadata, MetricType as WireType, WriteRequest};
use cairn_proto::Message;
use cairn_server::{Backend, ServerConfig};
use cairn_storage::MemStorage;
use cairn_storage::{
    Appendable, Appender, Metadata, MetricType, Querier, Queryable, SeriesRef, StorageError,
};
use chunk_store::{ChunkStore, StoredSeries};
use harness::*;

fn matcher(t: i32, n: &str, v: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t,
        name: n.into(),
        value: v.into(),
    }
}

fn query(start: i64, end: i64, ms: Vec<LabelMatcher>) -> Query {
    Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers: ms,
        hints: Some(ReadHints {
            start_ms: start,
            end_ms: end,
            ..Default::default()
        }),
    }
}

fn read_req(queries: Vec<Query>, kinds: Vec<i32>) -> ReadRequest {
    ReadRequest {
        queries,
        accepted_response_types: kinds,
    }
}

/// Samples of a test series: values that exercise XOR (NaN, stale, ints,
/// irregular steps).
fn samples(base: i64, n: usize, seed: f64) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| {
            let t = base + (i as i64) * 15_000 + (i as i64 % 3);
            let v = match i % 17 {
                5 => f64::NAN,
                11 => cairn_model::STALE_NAN,
                _ => seed * (i as f64).sqrt() + (i / 4) as f64,
            };
            (t, v)
        })
        .collect()
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

#[tokio::test]
async fn v1_write_then_both_read_kinds_return_the_same_samples() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let base = now_ms() - 7_200_000;
    let a = samples(base, 300, 1.5);
    let b = samples(base, 10, -2.0);
    let req = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "0")], &a),
            series(&[("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "1")], &b),
            series(&[("__name__", "other")], &[(base, 3.0)]),
        ],
        metadata: vec![MetricMetadata {
            r#type: WireType::Gauge as i32,
            metric_family_name: "DCGM_FI_DEV_GPU_UTIL".into(),
            help: "GPU utilization (in %).".into(),
            unit: "".into(),
        }],
    };
    let r = post_write(
        srv.addr,
        "application/x-protobuf;proto=prometheus.WriteRequest",
        cairn_proto::snappy::compress(&req.encode_to_vec()),
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("311")
    );
    assert_eq!(
        st.metadata().get("DCGM_FI_DEV_GPU_UTIL"),
        Some(&Metadata {
            kind: MetricType::Gauge,
            unit: String::new(),
            help: "GPU utilization (in %).".into(),
        })
    );

    let end = base + 200 * 15_000;
    let queries = vec![
        query(
            base,
            end,
            vec![matcher(0, "__name__", "DCGM_FI_DEV_GPU_UTIL")],
        ),
        query(base, base + 1, vec![matcher(2, "__name__", "oth.*")]),
    ];
    let want = vec![
        (
            0,
            r#"{__name__="DCGM_FI_DEV_GPU_UTIL", gpu="0"}"#.to_string(),
            bits(&a.iter().copied().filter(|s| s.0 <= end).collect::<Vec<_>>()),
        ),
        (
            0,
            r#"{__name__="DCGM_FI_DEV_GPU_UTIL", gpu="1"}"#.to_string(),
            bits(&b),
        ),
        (1, r#"{__name__="other"}"#.to_string(), bits(&[(base, 3.0)])),
    ];
    let samples_resp = post_read(srv.addr, &read_req(queries.clone(), vec![])).await;
    assert_eq!(decode_samples(&samples_resp), want);
    let streamed = post_read(srv.addr, &read_req(queries.clone(), vec![1, 0])).await;
    let (frames, got) = decode_streamed(&streamed);
    assert_eq!(got, want);
    // 201 samples of gpu=0 in range: two chunks of 120 and 81.
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].chunked_series[0].chunks.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn v2_write_with_metadata_round_trips() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let base = now_ms() - 60_000;
    let mut b = cairn_proto::write_v2::SymbolsBuilder::new();
    let s1 = samples(base, 4, 1.0);
    let ts = cairn_proto::write_v2::TimeSeries {
        labels_refs: b.label_refs([("__name__", "DCGM_FI_DEV_POWER_USAGE"), ("gpu", "3")]),
        samples: s1
            .iter()
            .map(|&(timestamp, value)| cairn_proto::write_v2::Sample {
                value,
                timestamp,
                start_timestamp: 0,
            })
            .collect(),
        exemplars: vec![cairn_proto::write_v2::Exemplar {
            labels_refs: b.label_refs([("trace_id", "abc")]),
            value: 1.0,
            timestamp: base,
        }],
        metadata: Some(cairn_proto::write_v2::Metadata {
            r#type: 2,
            help_ref: b.intern("Power draw (in W)."),
            unit_ref: b.intern("watts"),
        }),
        ..Default::default()
    };
    let body = cairn_proto::write_v2::Request {
        symbols: b.build(),
        timeseries: vec![ts],
    };
    let r = post_write(
        srv.addr,
        V2_CT,
        cairn_proto::snappy::compress(&body.encode_to_vec()),
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("4")
    );
    assert_eq!(
        r.header("x-prometheus-remote-write-exemplars-written"),
        Some("0")
    );
    assert_eq!(
        st.metadata()
            .get("DCGM_FI_DEV_POWER_USAGE")
            .map(|m| (m.kind, m.unit.as_str())),
        Some((MetricType::Gauge, "watts"))
    );
    let q = vec![query(base, base + 60_000, vec![matcher(0, "gpu", "3")])];
    let want = vec![(
        0,
        r#"{__name__="DCGM_FI_DEV_POWER_USAGE", gpu="3"}"#.to_string(),
        bits(&s1),
    )];
    assert_eq!(
        decode_samples(&post_read(srv.addr, &read_req(q.clone(), vec![0])).await),
        want
    );
    assert_eq!(
        decode_streamed(&post_read(srv.addr, &read_req(q, vec![1])).await).1,
        want
    );

    let m = send(srv.addr, "GET", "/metrics", &[], vec![]).await;
    assert!(
        m.text()
            .contains("cairn_remote_write_exemplars_received_total 1\n"),
        "{}",
        m.text()
    );
    srv.stop().await;
}

#[tokio::test]
async fn streamed_series_split_over_frames_by_size() {
    let st = MemStorage::new();
    let cfg = ServerConfig {
        read_max_bytes_per_frame: 300,
        read_stream_buffer_frames: 1,
        ..ServerConfig::default()
    };
    let srv = TestServer::start(Arc::new(st.clone()), cfg).await;
    let s = samples(1_000_000, 5000, 3.25);
    st.add(
        Labels::from_pairs([("__name__", "big")]),
        s.iter().map(|&(t, v)| Sample::new(t, v)),
    );
    st.add(
        Labels::from_pairs([("__name__", "small")]),
        [Sample::new(1_000_000, 1.0)],
    );
    let q = vec![query(0, i64::MAX, vec![matcher(2, "__name__", ".+")])];
    let (frames, got) = decode_streamed(&post_read(srv.addr, &read_req(q, vec![1])).await);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].2, bits(&s));
    assert!(frames.len() > 10, "{} frames", frames.len());
    for f in &frames {
        assert_eq!(f.chunked_series.len(), 1);
        let cs = &f.chunked_series[0];
        let total: usize = cs.chunks.iter().map(|c| c.data.len()).sum();
        assert!(
            cs.chunks.len() == 1 || total <= 300,
            "frame of {total} bytes"
        );
    }
    // Series are never revisited: all "big" frames come before "small".
    let names: Vec<String> = frames
        .iter()
        .map(|f| labels_string(&f.chunked_series[0].labels))
        .collect();
    let first_small = names.iter().position(|n| n.contains("small")).unwrap();
    assert_eq!(first_small, names.len() - 1);
    srv.stop().await;
}

#[tokio::test]
async fn read_negotiation_and_bad_requests() {
    let st = MemStorage::new();
    st.add(
        Labels::from_pairs([("__name__", "x")]),
        [Sample::new(5, 1.0)],
    );
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let q = || vec![query(0, 10, vec![matcher(0, "__name__", "x")])];
    let r = post_read(srv.addr, &read_req(q(), vec![7, 0])).await;
    assert_eq!(decode_samples(&r).len(), 1);
    let r = post_read(srv.addr, &read_req(q(), vec![7])).await;
    assert_eq!(r.status.as_u16(), 400);
    assert!(
        r.text().contains("none of the requested response types"),
        "{}",
        r.text()
    );
    let r = post_read(
        srv.addr,
        &read_req(
            vec![query(0, 10, vec![matcher(2, "__name__", "(")])],
            vec![1],
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 400);
    assert!(
        r.text().contains("invalid regular expression"),
        "{}",
        r.text()
    );
    let r = post_read(
        srv.addr,
        &read_req(
            vec![query(0, 10, vec![matcher(9, "__name__", "x")])],
            vec![],
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 400);
    assert!(r.text().contains("unknown label matcher type 9"));
    let r = send(
        srv.addr,
        "POST",
        "/api/v1/read",
        &[("content-encoding", "snappy")],
        vec![1, 2, 3],
    )
    .await;
    assert_eq!(r.status.as_u16(), 400);
    srv.stop().await;
}

#[tokio::test]
async fn a_server_refusing_writes_answers_404_and_keeps_reading() {
    let st = MemStorage::new();
    st.add(
        cairn_model::labels!("__name__" => "up"),
        [cairn_model::Sample::new(1000, 1.0)],
    );
    let why = "remote write is not accepted: this Cairn runs with --mode=query";
    let srv = TestServer::start(
        Arc::new(st.clone()),
        ServerConfig {
            writes_refused: Some(why.into()),
            ..ServerConfig::default()
        },
    )
    .await;
    let req = WriteRequest {
        timeseries: vec![series(&[("__name__", "up")], &[(now_ms(), 0.0)])],
        metadata: vec![],
    };
    let r = post_write(
        srv.addr,
        "application/x-protobuf;proto=prometheus.WriteRequest",
        cairn_proto::snappy::compress(&req.encode_to_vec()),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.text()), (404, format!("{why}\n")));
    let r = send(
        srv.addr,
        "POST",
        "/api/v1/otlp/v1/metrics",
        &[("content-type", "application/x-protobuf")],
        vec![],
    )
    .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.text());
    assert!(r.text().contains("--mode=query"), "{}", r.text());
    // Nothing was stored, and remote read still answers.
    let want = vec![(0, r#"{__name__="up"}"#.to_string(), bits(&[(1000, 1.0)]))];
    let q = query(0, 2000, vec![matcher(0, "__name__", "up")]);
    let got = post_read(srv.addr, &read_req(vec![q], vec![])).await;
    assert_eq!(decode_samples(&got), want);
    srv.stop().await;
}

#[tokio::test]
async fn health_routes_and_methods() {
    let srv = TestServer::start(Arc::new(MemStorage::new()), ServerConfig::default()).await;
    let r = send(srv.addr, "GET", "/-/healthy", &[], vec![]).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "Prometheus Server is Healthy.\n")
    );
    let r = send(srv.addr, "GET", "/-/ready", &[], vec![]).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "Prometheus Server is Ready.\n")
    );
    let r = send(srv.addr, "GET", "/api/v1/write", &[], vec![]).await;
    assert_eq!(r.status.as_u16(), 405);
    let r = send(srv.addr, "GET", "/nope", &[], vec![]).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (404, "404 page not found\n")
    );
    srv.stop().await;
}

/// Commit reports on the sender, then waits on the receiver.
type Gate = (smpsc::Sender<()>, smpsc::Receiver<()>);

/// MemStorage with switchable failures, readiness and a commit gate.
#[derive(Clone, Default)]
struct Faulty {
    mem: MemStorage,
    /// Samples before this timestamp are out of bounds.
    min_valid: i64,
    fail_commit: Option<fn() -> StorageError>,
    ready: bool,
    /// When set, commit reports on the first channel and waits on the second.
    gate: Option<Arc<Mutex<Gate>>>,
}

struct FaultyAppender<'a> {
    inner: Box<dyn Appender + 'a>,
    f: &'a Faulty,
}

impl Appender for FaultyAppender<'_> {
    fn append(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        if t < self.f.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: self.f.min_valid,
            });
        }
        self.inner.append(r, l, t, v)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        m: &Metadata,
    ) -> cairn_storage::Result<SeriesRef> {
        self.inner.update_metadata(r, l, m)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        if let Some(g) = &self.f.gate {
            let g = g.lock().unwrap();
            g.0.send(()).unwrap();
            g.1.recv().unwrap();
        }
        if let Some(f) = self.f.fail_commit {
            return Err(f());
        }
        self.inner.commit()
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        self.inner.rollback()
    }
}

impl Appendable for Faulty {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(FaultyAppender {
            inner: self.mem.appender(),
            f: self,
        })
    }
}

impl Queryable for Faulty {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        self.mem.querier(mint, maxt)
    }
}

impl Backend for Faulty {
    fn ready(&self) -> bool {
        self.ready
    }
    fn stats(&self) -> cairn_server::BackendStats {
        cairn_server::BackendStats {
            head_series: Some(self.mem.num_series() as u64),
            wal_fsync: Some(cairn_server::DurationSummary {
                count: 3,
                sum_seconds: 0.25,
            }),
            compactions: Some(2),
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn storage_errors_map_to_400_or_5xx() {
    let now = now_ms();
    let body = || {
        v1_body(vec![
            series(&[("__name__", "old")], &[(now - 10_000, 1.0), (now, 2.0)]),
            series(&[("__name__", "new")], &[(now, 3.0)]),
        ])
    };
    // Out of bounds: the good samples are stored, 400 says what was refused.
    let f = Faulty {
        min_valid: now - 1,
        ready: true,
        ..Default::default()
    };
    let srv = TestServer::start(Arc::new(f.clone()), ServerConfig::default()).await;
    let r = post_write(srv.addr, V1_CT, body()).await;
    assert_eq!(r.status.as_u16(), 400);
    assert!(
        r.text().contains("out of bounds: sample at"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains(r#"for series {__name__="old"}"#),
        "{}",
        r.text()
    );
    assert_eq!(dump(&f.mem).len(), 2);
    let m = send(srv.addr, "GET", "/metrics", &[], vec![]).await.text();
    assert!(
        m.contains("cairn_remote_write_samples_appended_total 2\n"),
        "{m}"
    );
    assert!(m.contains("cairn_remote_write_samples_rejected_total{reason=\"out_of_bounds\"} 1\n"));
    assert!(m.contains("cairn_head_series 2\n"));
    assert!(m.contains("cairn_wal_fsync_duration_seconds_count 3\n"));
    assert!(m.contains(
        "cairn_http_request_duration_seconds_count{handler=\"/api/v1/write\",code=\"400\"} 1\n"
    ));
    check_with_promtool(&m);
    srv.stop().await;

    // Commit failures are retryable: 500 (I/O) or 503 (closed), nothing stored.
    for (fail, code) in [
        (
            (|| StorageError::Io {
                context: "wal".into(),
                source: std::io::Error::other("disk full"),
            }) as fn() -> StorageError,
            500,
        ),
        ((|| StorageError::Closed) as fn() -> StorageError, 503),
    ] {
        let f = Faulty {
            fail_commit: Some(fail),
            ready: false,
            ..Default::default()
        };
        let srv = TestServer::start(Arc::new(f.clone()), ServerConfig::default()).await;
        let r = post_write(srv.addr, V1_CT, body()).await;
        assert_eq!(r.status.as_u16(), code, "{}", r.text());
        assert_eq!(f.mem.num_series(), 0);
        let r = send(srv.addr, "GET", "/-/ready", &[], vec![]).await;
        assert_eq!(r.status.as_u16(), 503);
        srv.stop().await;
    }
}

/// Runs `promtool check metrics` on the exposition text.
fn check_with_promtool(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: run scripts/install-deps.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let (entered_tx, entered_rx) = smpsc::channel();
    let (release_tx, release_rx) = smpsc::channel();
    let f = Faulty {
        ready: true,
        gate: Some(Arc::new(Mutex::new((entered_tx, release_rx)))),
        ..Default::default()
    };
    let mut srv = TestServer::start(Arc::new(f.clone()), ServerConfig::default()).await;
    let addr = srv.addr;
    let now = now_ms();
    let inflight = tokio::spawn(async move {
        post_write(
            addr,
            V1_CT,
            v1_body(vec![series(&[("__name__", "slow")], &[(now, 1.0)])]),
        )
        .await
    });
    // Wait until the request is inside commit.
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    srv.begin_stop();
    // Once the accept loop has stopped, new connections are refused.
    let mut refused = false;
    for _ in 0..1000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "listener still accepting after shutdown");
    let join = srv.join.take().unwrap();
    assert!(!join.is_finished());
    release_tx.send(()).unwrap();
    let r = inflight.await.unwrap();
    assert_eq!(r.status.as_u16(), 204);
    join.await.unwrap().unwrap();
    assert_eq!(f.mem.num_series(), 1);
}

#[tokio::test]
async fn stored_chunks_are_streamed_untouched_and_out_of_range_ones_skipped() {
    let mut chunks = Vec::new();
    for c in 0..3i64 {
        let mut x = cairn_codec::XorChunk::new();
        for i in 0..50i64 {
            let t = c * 500 + i * 10;
            x.append(t, (t as f64) * 0.5);
        }
        chunks.push(cairn_storage::EncodedChunk {
            min_time: c * 500,
            max_time: c * 500 + 490,
            encoding: 1,
            data: x.bytes().to_vec(),
        });
    }
    // Remote read must send the stored chunks byte for byte.
    let store = ChunkStore {
        series: vec![StoredSeries {
            labels: Labels::from_pairs([("__name__", "stored")]),
            chunks: chunks.iter().map(|c| (c.clone(), Vec::new())).collect(),
        }],
    };
    let srv = TestServer::start(Arc::new(store), ServerConfig::default()).await;
    let q = vec![query(600, 1000, vec![matcher(0, "__name__", "stored")])];
    let (frames, _) = decode_streamed(&post_read(srv.addr, &read_req(q, vec![1])).await);
    assert_eq!(frames.len(), 1);
    let got = &frames[0].chunked_series[0].chunks;
    assert_eq!(got.len(), 2);
    for (g, want) in got.iter().zip(&chunks[1..]) {
        assert_eq!(
            (g.min_time_ms, g.max_time_ms),
            (want.min_time, want.max_time)
        );
        assert_eq!(&g.data[..], &want.data[..]);
    }
    srv.stop().await;
}

#[tokio::test]
async fn stalled_headers_are_cut_off_and_do_not_block_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cfg = ServerConfig {
        header_read_timeout_ms: 200,
        ..ServerConfig::default()
    };
    let srv = TestServer::start(Arc::new(MemStorage::new()), cfg).await;
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /api/v1/write HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408); the read
    // ends instead of hanging.
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "connection with stalled headers still open");
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    srv.stop().await;
}
