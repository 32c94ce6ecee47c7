//! Exemplars through a real `cairn serve`: sent with remote write 1.0 and
//! 2.0, served by `/api/v1/query_exemplars` as Prometheus serves them,
//! kept across `kill -9` (the WAL) and a graceful restart; and end to end
//! with the real Prometheus (Debian's 2.42), which scrapes exemplars from
//! an OpenMetrics page and remote-writes them: Cairn must answer what
//! Prometheus answers, and each must read the other's WAL exemplar records
//! (Cairn started on Prometheus's data directory and Prometheus on
//! Cairn's answer the same).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_proto::write::{Exemplar, Label, Sample, TimeSeries, WriteRequest};
use cairn_proto::write_v2;
use prost::Message;
use support::*;

const NAME: &str = "rpc_duration_seconds_bucket";

fn post_v1(url: &str, req: &WriteRequest) -> Resp {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    post(
        &format!("{url}/api/v1/write"),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    )
    .unwrap()
}

fn ex(trace: &str, value: f64, timestamp: i64) -> Exemplar {
    Exemplar {
        labels: vec![Label::new("trace_id", trace)],
        value,
        timestamp,
    }
}

fn series(le: &str, samples: &[(i64, f64)], exemplars: Vec<Exemplar>) -> TimeSeries {
    TimeSeries {
        labels: vec![Label::new("__name__", NAME), Label::new("le", le)],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars,
        histograms: vec![],
    }
}

fn query_exemplars(url: &str, query: &str, start_s: i64, end_s: i64) -> serde_json::Value {
    let r = get(&format!(
        "{url}/api/v1/query_exemplars?query={}&start={start_s}&end={end_s}",
        enc(query)
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    v["data"].clone()
}

#[test]
fn remote_write_exemplars_are_served_and_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut p = start_cairn(&dir, port, &[]);
    // Whole seconds, in the recent past (the head accepts them).
    let base = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600)
        * 1000;

    let req = WriteRequest {
        timeseries: vec![
            series(
                "0.5",
                &[(base, 1.0), (base + 15_000, 2.0)],
                vec![ex("aa", 0.25, base), ex("bb", 0.5, base + 15_000)],
            ),
            series(
                "1",
                &[(base, 3.0)],
                // The second is older than the first: out of order, not
                // stored, and the request still succeeds.
                vec![ex("cc", 0.75, base), ex("dd", 0.75, base - 1000)],
            ),
            // Exemplars without samples, as Prometheus sends them: stored
            // for a series that exists, not for one that does not.
            series("0.5", &[], vec![ex("bb", 0.5, base + 15_000)]),
            series("9", &[], vec![ex("zz", 0.5, base)]),
        ],
        metadata: vec![],
    };
    let r = post_v1(&url, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("3")
    );
    // aa, bb, cc, and bb again (a duplicate of the newest: skipped, and
    // counted as written, as Prometheus counts it).
    assert_eq!(
        r.header("x-prometheus-remote-write-exemplars-written"),
        Some("4")
    );

    // 2.0: one more exemplar for le="0.5" and one for a new series.
    let mut b = write_v2::SymbolsBuilder::new();
    let s05 = b.label_refs([("__name__", NAME), ("le", "0.5")]);
    let s2 = b.label_refs([("__name__", NAME), ("le", "2")]);
    let sample = |timestamp, value| write_v2::Sample {
        value,
        timestamp,
        start_timestamp: 0,
    };
    let mk = |refs: Vec<u32>, t: i64, v: f64, trace: &str, b: &mut write_v2::SymbolsBuilder| {
        write_v2::TimeSeries {
            labels_refs: refs,
            samples: vec![sample(t, v)],
            exemplars: vec![write_v2::Exemplar {
                labels_refs: b.label_refs([("trace_id", trace), ("span_id", "s1")]),
                value: 1.5,
                timestamp: t,
            }],
            ..Default::default()
        }
    };
    let t05 = mk(s05, base + 30_000, 4.0, "ee", &mut b);
    let t2 = mk(s2, base + 30_000, 5.0, "ff", &mut b);
    let r = remote_write_v2(
        &format!("{url}/api/v1/write"),
        &write_v2::Request {
            symbols: b.build(),
            timeseries: vec![t05, t2],
        },
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-exemplars-written"),
        Some("2")
    );

    let s = base / 1000;
    let want = serde_json::json!([
        {"seriesLabels": {"__name__": NAME, "le": "0.5"}, "exemplars": [
            {"labels": {"trace_id": "aa"}, "value": "0.25", "timestamp": s},
            {"labels": {"trace_id": "bb"}, "value": "0.5", "timestamp": s + 15},
            {"labels": {"span_id": "s1", "trace_id": "ee"}, "value": "1.5", "timestamp": s + 30}
        ]},
        {"seriesLabels": {"__name__": NAME, "le": "1"}, "exemplars": [
            {"labels": {"trace_id": "cc"}, "value": "0.75", "timestamp": s}
        ]},
        {"seriesLabels": {"__name__": NAME, "le": "2"}, "exemplars": [
            {"labels": {"span_id": "s1", "trace_id": "ff"}, "value": "1.5", "timestamp": s + 30}
        ]}
    ]);
    let all = query_exemplars(&url, NAME, s - 60, s + 60);
    assert_eq!(all, want);
    // Selection: by any selector of the query, and by the time range.
    let q = format!("sum(rate({NAME}{{le=\"2\"}}[5m])) + {NAME}{{le=\"1\"}}");
    assert_eq!(
        query_exemplars(&url, &q, s - 60, s + 60),
        serde_json::json!([want[1], want[2]])
    );
    let late = query_exemplars(&url, NAME, s + 15, s + 60);
    assert_eq!(late.as_array().unwrap().len(), 2);
    assert_eq!(late[0]["exemplars"].as_array().unwrap().len(), 2);
    assert_eq!(
        query_exemplars(&url, "nothing_here", s - 60, s + 60),
        serde_json::json!([])
    );
    let bad = get(&format!(
        "{url}/api/v1/query_exemplars?query={}&start={}&end={}",
        enc(NAME),
        s + 10,
        s
    ));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let m = get(&format!("{url}/metrics")).text();
    assert!(
        m.contains("cairn_remote_write_exemplars_stored_total 6\n"),
        "{m}"
    );
    assert!(
        m.contains("cairn_remote_write_exemplars_failed_total 2\n"),
        "{m}"
    );
    for line in [
        "cairn_exemplar_max_exemplars 100000\n",
        "cairn_exemplar_exemplars_in_storage 5\n",
        "cairn_exemplar_series_with_exemplars_in_storage 3\n",
        "cairn_exemplar_exemplars_appended_total 5\n",
        "cairn_exemplar_out_of_order_exemplars_total 1\n",
    ] {
        assert!(m.contains(line), "{line} not in {m}");
    }

    // kill -9: the WAL brings them back.
    p.kill9();
    let mut p = start_cairn(&dir, port, &[]);
    assert_eq!(query_exemplars(&url, NAME, s - 60, s + 60), want);
    // A graceful stop writes the head snapshot, which carries them.
    assert!(p.terminate(Duration::from_secs(60)), "cairn did not stop");
    assert!(dir.join("head_snapshot").exists());
    let _p = start_cairn(&dir, port, &[]);
    assert!(
        !dir.join("head_snapshot").exists(),
        "the snapshot was not read"
    );
    assert_eq!(query_exemplars(&url, NAME, s - 60, s + 60), want);
}

#[test]
fn exemplars_limit_zero_stores_none() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _p = start_cairn(
        &tmp.path().join("data"),
        port,
        &["--storage.exemplars.exemplars-limit=0"],
    );
    let base = 1_000
        * (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 60);
    let req = WriteRequest {
        timeseries: vec![series("0.5", &[(base, 1.0)], vec![ex("aa", 0.25, base)])],
        metadata: vec![],
    };
    let r = post_v1(&url, &req);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("1")
    );
    assert_eq!(
        r.header("x-prometheus-remote-write-exemplars-written"),
        Some("0")
    );
    let s = base / 1000;
    assert_eq!(
        query_exemplars(&url, NAME, s - 60, s + 60),
        serde_json::json!([])
    );
}

/// Serves an OpenMetrics page with a histogram whose buckets carry
/// exemplars (a new trace id on every scrape, no timestamp: Prometheus
/// stamps them with the scrape time).
fn start_openmetrics_exporter() -> (u16, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicU64::new(0));
    let s = scrapes.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let n = s.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                "# TYPE rpc_duration_seconds histogram\n\
                 rpc_duration_seconds_bucket{{le=\"0.1\"}} {a} # {{trace_id=\"a{n}\"}} 0.05\n\
                 rpc_duration_seconds_bucket{{le=\"1\"}} {b} # {{trace_id=\"b{n}\",span_id=\"s{n}\"}} 0.{d}\n\
                 rpc_duration_seconds_bucket{{le=\"+Inf\"}} {b}\n\
                 rpc_duration_seconds_sum {sum}\n\
                 rpc_duration_seconds_count {b}\n\
                 # EOF\n",
                a = n * 3,
                b = n * 5,
                d = n % 9 + 1,
                sum = n as f64 * 1.25,
            );
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    (port, scrapes)
}

#[test]
fn prometheus_remote_writes_exemplars_and_cairn_answers_as_prometheus() {
    require_tool("/usr/bin/prometheus");
    let dir = tempfile::tempdir().unwrap();
    let (exp_port, scrapes) = start_openmetrics_exporter();
    let cairn_port = free_port();
    let mut cairn_p = start_cairn(&dir.path().join("cairn"), cairn_port, &[]);
    let cairn = format!("http://127.0.0.1:{cairn_port}");
    let prom_port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: rpc\n    static_configs:\n      - targets: ['127.0.0.1:{exp_port}']\nremote_write:\n  - url: {cairn}/api/v1/write\n    send_exemplars: true\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 20ms\n"
    );
    let mut prom_p = start_prometheus(
        &dir.path().join("prom"),
        prom_port,
        &config,
        &["--enable-feature=exemplar-storage"],
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let start_s = 0;
    let end_s = 4_000_000_000i64;

    // Wait (bounded) until Cairn holds at least 8 exemplars of each bucket.
    let deadline = Instant::now() + Duration::from_secs(90);
    let count = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["exemplars"].as_array().unwrap().len())
            .collect()
    };
    loop {
        let v = query_exemplars(&cairn, "rpc_duration_seconds_bucket", start_s, end_s);
        let n = count(&v);
        if n.len() == 2 && n.iter().all(|&k| k >= 8) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Cairn holds {n:?} exemplars after 90 s (exporter served {} scrapes)",
            scrapes.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Compare over a window both have in full: up to the newest exemplar
    // Cairn holds (Prometheus may have newer ones not yet sent).
    let c = query_exemplars(&cairn, "rpc_duration_seconds_bucket", start_s, end_s);
    let newest = c
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exemplars"].as_array().unwrap().iter())
        .map(|e| e["timestamp"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let until = format!("{newest:.3}");
    let q = |base: &str| {
        let r = get(&format!(
            "{base}/api/v1/query_exemplars?query={}&start=0&end={until}",
            enc("rpc_duration_seconds_bucket")
        ));
        assert_eq!(r.status, 200, "{base}: {}", r.text());
        r.json()["data"].clone()
    };
    let (from_prom, from_cairn) = (q(&prom), q(&cairn));
    assert_eq!(count(&from_cairn).len(), 2);
    assert_eq!(from_cairn, from_prom, "Cairn and Prometheus differ");

    // Prometheus on a copy of Cairn's data directory, after kill -9 (the
    // exemplars are only in Cairn's WAL).
    cairn_p.kill9();
    let p2 = dir.path().join("prom-on-cairn");
    copy_dir(&dir.path().join("cairn"), &p2.join("data"));
    let p2_port = free_port();
    let _p2 = start_prometheus(
        &p2,
        p2_port,
        "global:\n  scrape_interval: 1h\n",
        &["--enable-feature=exemplar-storage"],
    );
    assert_eq!(
        q(&format!("http://127.0.0.1:{p2_port}")),
        from_cairn,
        "Prometheus on Cairn's data directory"
    );

    // Cairn on a copy of Prometheus's, after it stopped.
    assert!(
        prom_p.terminate(Duration::from_secs(60)),
        "prometheus did not stop"
    );
    let c2 = dir.path().join("cairn-on-prom");
    copy_dir(&dir.path().join("prom").join("data"), &c2);
    let c2_port = free_port();
    let _c2 = start_cairn(&c2, c2_port, &[]);
    assert_eq!(
        q(&format!("http://127.0.0.1:{c2_port}")),
        from_prom,
        "Cairn on Prometheus's data directory"
    );
}
