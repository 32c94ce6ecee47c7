//! A table of malformed or partly bad remote write requests, each with its
//! exact status and a message substring; afterwards the server must still
//! serve and hold exactly the good data.

#[path = "support/harness.rs"]
mod harness;

use std::sync::Arc;

use cairn_proto::write::{Label, WriteRequest};
use cairn_proto::Message;
use cairn_server::ServerConfig;
use cairn_storage::MemStorage;
use harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Case {
    name: &'static str,
    ct: &'static str,
    encoding: &'static str,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn raw_v1(req: WriteRequest) -> Vec<u8> {
    cairn_proto::snappy::compress(&req.encode_to_vec())
}

fn cases(now: i64) -> Vec<Case> {
    let good = v1_body(vec![series(
        &[("__name__", "ok"), ("job", "a")],
        &[(now, 1.0)],
    )]);
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 3);
    // 100,000 labels in one series, next to a good series.
    let mut many = vec![Label::new("__name__", "wide")];
    for i in 0..100_000 {
        many.push(Label::new(&format!("l{i:06}"), "v"));
    }
    let mut wide = series(&[], &[(now, 1.0)]);
    wide.labels = many;
    let mut bad_utf8 = series(&[("__name__", "utf")], &[(now, 1.0)]);
    bad_utf8.labels.push(Label {
        name: bytes::Bytes::from_static(b"job"),
        value: bytes::Bytes::from_static(b"\xff\xfe"),
    });
    // Count 1, but no observation in any bucket.
    let mut hist = series(&[("__name__", "hist")], &[]);
    hist.histograms.push(cairn_proto::histogram::Histogram {
        count: Some(cairn_proto::histogram::Count::CountInt(1)),
        timestamp: now,
        ..Default::default()
    });
    vec![
        Case {
            name: "wrong content type",
            ct: "application/json",
            encoding: "snappy",
            body: good.clone(),
            status: 415,
            message: "unsupported content type",
        },
        Case {
            name: "unknown proto message",
            ct: "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            encoding: "snappy",
            body: good.clone(),
            status: 415,
            message: "unsupported protobuf message",
        },
        Case {
            name: "gzip encoding",
            ct: V1_CT,
            encoding: "gzip",
            body: good.clone(),
            status: 415,
            message: "only snappy",
        },
        Case {
            name: "truncated snappy",
            ct: V1_CT,
            encoding: "snappy",
            body: truncated,
            status: 400,
            message: "snappy",
        },
        Case {
            name: "garbage protobuf",
            ct: V1_CT,
            encoding: "snappy",
            body: cairn_proto::snappy::compress(&[0x0a, 0xff, 0xff, 0x03, 0x01]),
            status: 400,
            message: "protobuf",
        },
        Case {
            name: "snappy bomb over the decompressed limit",
            ct: V1_CT,
            encoding: "snappy",
            body: cairn_proto::snappy::compress(&vec![0u8; (2 << 20) + 1]),
            status: 413,
            message: "exceeds the limit of 2097152 bytes",
        },
        Case {
            name: "unsorted labels",
            ct: V1_CT,
            encoding: "snappy",
            body: v1_body(vec![series(
                &[("job", "a"), ("__name__", "x")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "labels are not sorted",
        },
        Case {
            name: "duplicate labels",
            ct: V1_CT,
            encoding: "snappy",
            body: v1_body(vec![series(
                &[("__name__", "x"), ("a", "1"), ("a", "2")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "duplicate label name \"a\"",
        },
        Case {
            name: "empty label name",
            ct: V1_CT,
            encoding: "snappy",
            body: v1_body(vec![series(&[("", "v"), ("__name__", "x")], &[(now, 1.0)])]),
            status: 400,
            message: "empty label name",
        },
        Case {
            name: "missing metric name",
            ct: V1_CT,
            encoding: "snappy",
            body: v1_body(vec![series(&[("job", "a")], &[(now, 1.0)])]),
            status: 400,
            message: "has no metric name",
        },
        Case {
            name: "invalid UTF-8 value",
            ct: V1_CT,
            encoding: "snappy",
            body: raw_v1(WriteRequest {
                timeseries: vec![bad_utf8],
                metadata: vec![],
            }),
            status: 400,
            message: "not valid UTF-8",
        },
        Case {
            name: "100,000 labels next to a good series",
            ct: V1_CT,
            encoding: "snappy",
            body: raw_v1(WriteRequest {
                timeseries: vec![wide, series(&[("__name__", "narrow")], &[(now, 5.0)])],
                metadata: vec![],
            }),
            status: 400,
            message: "has 100001 labels, more than the limit of 128",
        },
        Case {
            name: "far-future timestamp next to a good sample",
            ct: V2_CT,
            encoding: "snappy",
            body: v2_body(&[(
                vec![("__name__", "future")],
                vec![(now, 1.0), (now + 3_600_000, 2.0)],
            )]),
            status: 400,
            message: "too far in the future",
        },
        Case {
            name: "invalid native histogram",
            ct: V1_CT,
            encoding: "snappy",
            body: raw_v1(WriteRequest {
                timeseries: vec![hist],
                metadata: vec![],
            }),
            status: 400,
            message: "invalid native histogram at",
        },
        Case {
            name: "NaN and stale NaN values are valid",
            ct: V1_CT,
            encoding: "snappy",
            body: v1_body(vec![series(
                &[("__name__", "nan")],
                &[(now, f64::NAN), (now + 1, cairn_model::STALE_NAN)],
            )]),
            status: 204,
            message: "",
        },
        Case {
            name: "v2 odd label references",
            ct: V2_CT,
            encoding: "snappy",
            body: cairn_proto::snappy::compress(
                &cairn_proto::write_v2::Request {
                    symbols: vec![bytes::Bytes::new(), bytes::Bytes::from_static(b"__name__")],
                    timeseries: vec![cairn_proto::write_v2::TimeSeries {
                        labels_refs: vec![1],
                        samples: vec![cairn_proto::write_v2::Sample {
                            value: 1.0,
                            timestamp: now,
                            start_timestamp: 0,
                        }],
                        ..Default::default()
                    }],
                }
                .encode_to_vec(),
            ),
            status: 400,
            message: "odd number of label references",
        },
        Case {
            name: "v2 symbol out of range",
            ct: V2_CT,
            encoding: "snappy",
            body: cairn_proto::snappy::compress(
                &cairn_proto::write_v2::Request {
                    symbols: vec![bytes::Bytes::new()],
                    timeseries: vec![cairn_proto::write_v2::TimeSeries {
                        labels_refs: vec![0, 7],
                        ..Default::default()
                    }],
                }
                .encode_to_vec(),
            ),
            status: 400,
            message: "symbol reference 7 out of range",
        },
    ]
}

#[tokio::test]
async fn malformed_requests_get_exact_statuses_and_data_stays_intact() {
    let st = MemStorage::new();
    let cfg = ServerConfig {
        max_body_bytes: 2 << 20,
        ..ServerConfig::default()
    };
    let srv = TestServer::start(Arc::new(st.clone()), cfg).await;
    let now = now_ms();
    for c in cases(now) {
        let r = send(
            srv.addr,
            "POST",
            "/api/v1/write",
            &[("content-type", c.ct), ("content-encoding", c.encoding)],
            c.body,
        )
        .await;
        assert_eq!(
            r.status.as_u16(),
            c.status,
            "{}: body {:?}",
            c.name,
            r.text()
        );
        assert!(
            r.text().contains(c.message),
            "{}: body {:?} lacks {:?}",
            c.name,
            r.text(),
            c.message
        );
    }
    // The server still serves, and holds exactly the good data.
    let r = post_write(
        srv.addr,
        V1_CT,
        v1_body(vec![series(&[("__name__", "after")], &[(now, 9.0)])]),
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text());
    let got = dump(&st);
    let names: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        names,
        vec![
            r#"{__name__="after"}"#,
            r#"{__name__="future"}"#,
            r#"{__name__="nan"}"#,
            r#"{__name__="narrow"}"#,
        ]
    );
    assert_eq!(got[1].1, vec![(now, 1.0f64.to_bits())]);
    assert_eq!(
        got[2].1,
        vec![
            (now, f64::NAN.to_bits()),
            (now + 1, cairn_model::STALE_NAN_BITS)
        ]
    );
    assert_eq!(got[3].1, vec![(now, 5.0f64.to_bits())]);
    srv.stop().await;
}

#[tokio::test]
async fn partial_write_reports_counts_in_headers() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let now = now_ms();
    let r = post_write(
        srv.addr,
        V2_CT,
        v2_body(&[
            (vec![("__name__", "a")], vec![(now, 1.0), (now + 1, 2.0)]),
            (vec![("job", "nameless")], vec![(now, 1.0)]),
            (vec![("__name__", "b")], vec![(now + 7_200_000, 1.0)]),
        ]),
    )
    .await;
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("2")
    );
    assert_eq!(
        r.header("x-prometheus-remote-write-histograms-written"),
        Some("0")
    );
    assert_eq!(
        r.header("x-prometheus-remote-write-exemplars-written"),
        Some("0")
    );
    assert!(
        r.text().starts_with("refused 2 samples (2 written):"),
        "{}",
        r.text()
    );
    assert_eq!(dump(&st).len(), 1);
    srv.stop().await;
}

/// A 100 MB body is refused by its Content-Length before it is read, and
/// a chunked body as soon as it passes the limit.
#[tokio::test]
async fn hundred_megabyte_bodies_are_refused_early() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    for chunked in [false, true] {
        let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let head = if chunked {
            "POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-encoding: snappy\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
        } else {
            format!("POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-encoding: snappy\r\ncontent-length: {}\r\n\r\n", 100 << 20)
        };
        s.write_all(head.as_bytes()).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let writer = tokio::spawn(async move {
            let block = vec![0u8; 1 << 20];
            let mut sent = 0usize;
            for _ in 0..100 {
                let r = if chunked {
                    let mut framed = format!("{:x}\r\n", block.len()).into_bytes();
                    framed.extend_from_slice(&block);
                    framed.extend_from_slice(b"\r\n");
                    wr.write_all(&framed).await
                } else {
                    wr.write_all(&block).await
                };
                if r.is_err() {
                    break;
                }
                sent += block.len();
            }
            sent
        });
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        while !resp.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed without a response");
            resp.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&resp).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "chunked={chunked}: {text}"
        );
        drop(rd);
        let sent = writer.await.unwrap();
        assert!(
            sent < 100 << 20,
            "chunked={chunked}: server read all {sent} bytes"
        );
    }
    // Still serving.
    let r = send(srv.addr, "GET", "/-/healthy", &[], vec![]).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(st.num_series(), 0);
    srv.stop().await;
}
