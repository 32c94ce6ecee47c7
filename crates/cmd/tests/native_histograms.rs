//! Native histograms with the real Prometheus 2.42 (`--enable-feature=
//! native-histograms`), which scrapes them from a protobuf target
//! (`nh_target`): Cairn opens the data directory Prometheus wrote (its WAL
//! holds histogram records) and answers the same histogram queries with
//! the same numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod nh_target;
mod support;

use std::time::{Duration, Instant};

use support::*;

/// Queries that reduce histograms to floats, so both servers' answers
/// compare without the histogram JSON. `histogram_quantile` and
/// `histogram_fraction` are left out: Cairn follows PromQL v3.8, which
/// interpolates inside exponential buckets exponentially, where 2.42
/// interpolates linearly, and so do `rate` and `increase`, whose
/// extrapolation stops at the zero point for histograms too since 2.42
/// (the PromQL test scripts cover v3.8's numbers).
const QUERIES: &[&str] = &[
    "histogram_count(gpu_kernel_latency_seconds)",
    "histogram_sum(gpu_kernel_latency_seconds)",
    "histogram_count(gpu_kernel_latency_seconds offset 4s)",
    "histogram_count(gpu_kernel_latency_seconds) - histogram_count(gpu_kernel_latency_seconds offset 5s)",
    "histogram_sum(sum(gpu_kernel_latency_seconds))",
    "histogram_count(sum by (job) (gpu_kernel_latency_seconds))",
    "histogram_count(gpu_power_watts_dist)",
    "histogram_sum(gpu_power_watts_dist offset 3s)",
    "count_over_time(gpu_kernel_latency_seconds[1m])",
    "count_over_time(gpu_power_watts_dist[1m])",
];

/// `query` at `t` (seconds) on `base`, as sorted `labels value` lines.
fn answer(base: &str, query: &str, t: f64) -> Vec<String> {
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[("query", query), ("time", &t.to_string())],
    );
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    let v = r.json();
    let mut out: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {v}"))
        .iter()
        .map(|s| format!("{} {}", s["metric"], s["value"][1]))
        .collect();
    out.sort();
    out
}

#[test]
fn cairn_opens_a_prometheus_directory_with_native_histograms() {
    let target = nh_target::start();
    let tmp = tempfile::tempdir().unwrap();
    let prom_dir = tmp.path().join("prom");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gpu\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        target.port
    );
    let t;
    let mut want = Vec::new();
    {
        let mut prom = start_prometheus(
            &prom_dir,
            port,
            &config,
            &["--enable-feature=native-histograms"],
        );
        // Twelve scrapes: enough for rates, a new bucket, gauge ups and downs.
        let deadline = Instant::now() + Duration::from_secs(60);
        while target.scrapes.load(std::sync::atomic::Ordering::Acquire) < 12 {
            assert!(Instant::now() < deadline, "Prometheus is not scraping");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(1500));
        t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            .floor();
        for q in QUERIES {
            let a = answer(&base, q, t);
            assert!(!a.is_empty(), "Prometheus answers nothing for {q}");
            want.push(a);
        }
        // Prometheus holds them as native histograms, not classic ones.
        let raw = post_form(
            &format!("{base}/api/v1/query"),
            &[
                ("query", "gpu_kernel_latency_seconds"),
                ("time", &t.to_string()),
            ],
        )
        .json();
        assert!(
            raw["data"]["result"][0]["histogram"][1]["buckets"].is_array(),
            "{raw}"
        );
        assert!(prom.terminate(Duration::from_secs(30)));
    }
    drop(target);
    // Cairn on a copy of Prometheus's directory: the histograms come from
    // Prometheus's WAL records.
    let data = tmp.path().join("cairn-data");
    copy_dir(&prom_dir.join("data"), &data);
    let cport = free_port();
    let cbase = format!("http://127.0.0.1:{cport}");
    {
        let mut c = start_cairn(&data, cport, &[]);
        for (q, w) in QUERIES.iter().zip(&want) {
            assert_eq!(&answer(&cbase, q, t), w, "{q} at {t}");
        }
        assert!(c.terminate(Duration::from_secs(60)));
    }
    // `cairn tsdb compact` cuts the head into blocks: their histogram
    // chunks are what the head held, and `cairn tsdb dump` prints them.
    run(cairn().args(["tsdb", "compact"]).arg(&data));
    assert!(!blocks(&data).is_empty(), "no block cut");
    let dump = run(cairn().args(["tsdb", "dump"]).arg(&data));
    let lines: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("{__name__=\"gpu_kernel_latency_seconds\""))
        .collect();
    assert!(lines.len() >= 36, "{dump}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" {count:") && l.contains(", sum:")),
        "{dump}"
    );
    // Prometheus 2.42 opens Cairn's directory, blocks with histogram
    // chunks included, and gives the same answers.
    let back = tmp.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    copy_dir(&data, &back.join("data"));
    // From the blocks alone: no WAL, no head chunks.
    for d in ["wal", "chunks_head", "wbl"] {
        let _ = std::fs::remove_dir_all(back.join("data").join(d));
    }
    let hist_blocks = blocks(&data)
        .iter()
        .filter(|b| {
            std::fs::read_to_string(data.join(b).join("meta.json"))
                .unwrap()
                .contains("\"numHistogramSamples\"")
        })
        .count();
    assert!(hist_blocks > 0, "no block counts histogram samples");
    let pport = free_port();
    let _p = start_prometheus(
        &back,
        pport,
        "global:\n  scrape_interval: 1h\n",
        &["--enable-feature=native-histograms"],
    );
    let pbase = format!("http://127.0.0.1:{pport}");
    for (q, w) in QUERIES.iter().zip(&want) {
        assert_eq!(
            &answer(&pbase, q, t),
            w,
            "Prometheus on Cairn's blocks: {q} at {t}"
        );
    }
}

/// `query` at `t` as returned, `data.result` sorted by labels.
fn raw(base: &str, query: &str, t: f64) -> Vec<serde_json::Value> {
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[("query", query), ("time", &t.to_string())],
    );
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    let mut v = r.json()["data"]["result"].as_array().cloned().unwrap();
    v.sort_by_key(|s| s["metric"].to_string());
    v
}

/// The result with every bucket's bounds blanked.
fn without_bounds(v: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut v = v.to_vec();
    for s in &mut v {
        if let Some(bs) = s["histogram"][1]["buckets"].as_array_mut() {
            for b in bs {
                b[1] = serde_json::Value::Null;
                b[2] = serde_json::Value::Null;
            }
        }
    }
    v
}

/// Every bucket bound of the result, in order.
fn bounds(v: &[serde_json::Value]) -> Vec<f64> {
    let mut out = Vec::new();
    for s in v {
        for b in s["histogram"][1]["buckets"].as_array().unwrap() {
            for i in [1, 2] {
                out.push(b[i].as_str().unwrap().parse::<f64>().unwrap());
            }
        }
    }
    out
}

/// Prometheus 2.42 remote-writes the histograms it scrapes to Cairn, which
/// answers the same queries with the same numbers and the same histogram
/// JSON; remote read gives them back in both response types, and a second
/// Prometheus federates them from Cairn.
#[test]
fn prometheus_remote_writes_and_reads_native_histograms() {
    let target = nh_target::start();
    let tmp = tempfile::tempdir().unwrap();
    let cport = free_port();
    let cbase = format!("http://127.0.0.1:{cport}");
    let _cairn = start_cairn(&tmp.path().join("cairn"), cport, &[]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gpu\n    static_configs:\n      - targets: ['127.0.0.1:{}']\nremote_write:\n  - url: {cbase}/api/v1/write\n    send_native_histograms: true\n    queue_config:\n      batch_send_deadline: 200ms\n",
        target.port
    );
    let _prom = start_prometheus(
        &tmp.path().join("prom"),
        port,
        &config,
        &["--enable-feature=native-histograms"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while target.scrapes.load(std::sync::atomic::Ordering::Acquire) < 12 {
        assert!(Instant::now() < deadline, "Prometheus is not scraping");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor()
        - 3.0;
    // Wait for the remote write to have caught up with `t`.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = answer(&cbase, "count_over_time(gpu_kernel_latency_seconds[1m])", t);
        if c == answer(&base, "count_over_time(gpu_kernel_latency_seconds[1m])", t) {
            break;
        }
        assert!(Instant::now() < deadline, "Cairn has {c:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    for q in QUERIES {
        let want = answer(&base, q, t);
        assert!(!want.is_empty(), "Prometheus answers nothing for {q}");
        assert_eq!(answer(&cbase, q, t), want, "{q} at {t}");
    }
    // The histograms themselves, as the query API prints them: the same
    // JSON, but for bucket bounds, which may differ in the last digit:
    // Prometheus takes them from a table of constants that is one unit in
    // the last place off 2^(i/2^schema) for some buckets, Cairn computes
    // them.
    for q in ["gpu_kernel_latency_seconds", "gpu_power_watts_dist"] {
        let want = raw(&base, q, t);
        assert!(want[0]["histogram"][1]["buckets"].is_array(), "{want:?}");
        let got = raw(&cbase, q, t);
        assert_eq!(without_bounds(&got), without_bounds(&want), "{q}");
        for (g, w) in bounds(&got).iter().zip(bounds(&want)) {
            let ulp = f64::EPSILON * w.abs().max(f64::MIN_POSITIVE);
            assert!((g - w).abs() <= ulp, "{q}: bound {g} vs Prometheus's {w}");
        }
    }
    let m = get(&format!("{cbase}/metrics")).text();
    assert!(
        m.lines().any(
            |l| l.starts_with("cairn_remote_write_histograms_appended_total ")
                && !l.ends_with(" 0")
        ),
        "no histogram counted: {m}"
    );
    // Remote read gives them back, in both response types (Prometheus 2.42
    // cannot be the client here: its remote-read client reads no
    // histograms, which came in v2.44).
    let sel = "gpu_kernel_latency_seconds{gpu=\"0\"}";
    let want: Vec<(i64, f64)> = {
        let r = post_form(
            &format!("{base}/api/v1/query"),
            &[("query", &format!("{sel}[1m]")), ("time", &t.to_string())],
        )
        .json();
        r["data"]["result"][0]["histograms"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|p| {
                let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (ts, p[1]["count"].as_str().unwrap().parse().unwrap())
            })
            .collect()
    };
    assert!(want.len() >= 5, "{want:?}");
    let (mint, maxt) = (want[0].0, want[want.len() - 1].0);
    assert_eq!(read_samples(&cbase, mint, maxt), want, "SAMPLES");
    assert_eq!(
        read_streamed(&cbase, mint, maxt),
        want,
        "STREAMED_XOR_CHUNKS"
    );

    // Prometheus 2.42 federates them from Cairn: with native histograms on
    // it asks for the protobuf exposition format, which carries them.
    let fport = free_port();
    let fbase = format!("http://127.0.0.1:{fport}");
    let _fed = start_prometheus(
        &tmp.path().join("fed"),
        fport,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=\"gpu_kernel_latency_seconds\"}}']\n    static_configs:\n      - targets: ['127.0.0.1:{cport}']\n"
        ),
        &["--enable-feature=native-histograms"],
    );
    let histograms = |base: &str, at: f64| -> Vec<(i64, serde_json::Value)> {
        let r = post_form(
            &format!("{base}/api/v1/query"),
            &[("query", &format!("{sel}[2m]")), ("time", &at.to_string())],
        )
        .json();
        r["data"]["result"][0]["histograms"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].clone(),
                )
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let fed = loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let f = histograms(&fbase, now);
        if f.len() >= 3 {
            break (now, f);
        }
        assert!(Instant::now() < deadline, "nothing federated: {f:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let ours: std::collections::HashMap<i64, serde_json::Value> =
        histograms(&cbase, fed.0).into_iter().collect();
    for (ts, h) in &fed.1 {
        let mine = ours
            .get(ts)
            .unwrap_or_else(|| panic!("federated sample at {ts} is not Cairn's"));
        let blank = |v: &serde_json::Value| {
            let mut v = v.clone();
            if let Some(bs) = v["buckets"].as_array_mut() {
                for b in bs {
                    b[1] = serde_json::Value::Null;
                    b[2] = serde_json::Value::Null;
                }
            }
            v
        };
        assert_eq!(blank(h), blank(mine), "federated histogram at {ts}");
    }

    // The chunk bytes: Prometheus 2.42 serves its own head chunks through
    // streamed remote read too. Once the target is gone (Prometheus
    // writes its stale markers and sends everything), Cairn's streamed
    // answer for the series, made from the samples Prometheus sent, equals
    // Prometheus's byte for byte: framing, checksums, labels, chunk
    // metadata and histogram chunk data. No decoder is involved, so this
    // also checks Cairn's message layout against Prometheus's own
    // generated code.
    drop(target);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (lo, hi) = (maxt - 600_000, maxt + 600_000);
    let streamed = cairn_proto::read::ResponseType::StreamedXorChunks;
    loop {
        let theirs = post_read(&base, &read_request(lo, hi, streamed));
        let ours = post_read(&cbase, &read_request(lo, hi, streamed));
        if theirs == ours {
            let chunks = raw_chunks(&theirs);
            assert!(
                chunks.iter().any(|c| c.0 == 2),
                "no integer-histogram chunk: {chunks:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "streamed answers differ:\nPrometheus {:?}\nCairn      {:?}",
            raw_chunks(&theirs),
            raw_chunks(&ours)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `(type, min, max, bytes)` of the chunks in a streamed remote-read body.
fn raw_chunks(body: &[u8]) -> Vec<(i32, i64, i64, Vec<u8>)> {
    use prost::Message;
    let mut out = Vec::new();
    let mut frames = cairn_proto::frame::FrameReader::new(body, 1 << 24);
    while let Some(f) = frames.next() {
        let msg = cairn_proto::read::ChunkedReadResponse::decode(f.unwrap()).unwrap();
        for s in msg.chunked_series {
            for c in s.chunks {
                out.push((c.r#type, c.min_time_ms, c.max_time_ms, c.data.to_vec()));
            }
        }
    }
    out
}

fn read_request(mint: i64, maxt: i64, kind: cairn_proto::read::ResponseType) -> Vec<u8> {
    use cairn_proto::read::{LabelMatcher, MatchType, Query, ReadRequest};
    use prost::Message;
    let m = |n: &str, v: &str| LabelMatcher {
        r#type: MatchType::Eq as i32,
        name: n.into(),
        value: v.into(),
    };
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: vec![m("__name__", "gpu_kernel_latency_seconds"), m("gpu", "0")],
            hints: None,
        }],
        accepted_response_types: vec![kind as i32],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn post_read(base: &str, body: &[u8]) -> Vec<u8> {
    let r = post(
        &format!("{base}/api/v1/read"),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Read-Version", "0.1.0"),
        ],
        body,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.body
}

/// `(t, count)` of the integer histograms a SAMPLES response holds.
fn read_samples(base: &str, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    use cairn_proto::histogram::Count;
    use prost::Message;
    let body = post_read(
        base,
        &read_request(mint, maxt, cairn_proto::read::ResponseType::Samples),
    );
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let resp = cairn_proto::read::ReadResponse::decode(raw.as_slice()).unwrap();
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 1);
    assert!(ts[0].samples.is_empty());
    ts[0]
        .histograms
        .iter()
        .map(|h| {
            // The series has integer counts: as Prometheus v3's
            // `ToQueryResult`, they go out as integers with bucket deltas.
            let c = match &h.count {
                Some(Count::CountInt(c)) => *c as f64,
                other => panic!("integer histogram sent as {other:?}: {h:?}"),
            };
            assert!(
                h.positive_counts.is_empty() && !h.positive_deltas.is_empty(),
                "{h:?}"
            );
            (h.timestamp, c)
        })
        .collect()
}

/// `(t, count)` of the histograms in a STREAMED_XOR_CHUNKS response,
/// decoded from its chunks (types 2 and 3).
fn read_streamed(base: &str, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    use prost::Message;
    let body = post_read(
        base,
        &read_request(
            mint,
            maxt,
            cairn_proto::read::ResponseType::StreamedXorChunks,
        ),
    );
    let mut out = Vec::new();
    let mut frames = cairn_proto::frame::FrameReader::new(&body, 1 << 24);
    while let Some(f) = frames.next() {
        let msg = cairn_proto::read::ChunkedReadResponse::decode(f.unwrap()).unwrap();
        for s in msg.chunked_series {
            for c in s.chunks {
                let got: Vec<(i64, f64)> = match c.r#type {
                    2 => cairn_codec::histogram_decode(&c.data)
                        .unwrap()
                        .into_iter()
                        .map(|(t, h)| (t, h.count as f64))
                        .collect(),
                    3 => cairn_codec::float_histogram_decode(&c.data)
                        .unwrap()
                        .into_iter()
                        .map(|(t, h)| (t, h.count))
                        .collect(),
                    other => panic!("chunk type {other}"),
                };
                out.extend(got.into_iter().filter(|(t, _)| *t >= mint && *t <= maxt));
            }
        }
    }
    out
}
