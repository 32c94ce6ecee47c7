//! End to end with the real Prometheus (Debian's 2.42) and a real
//! `cairn serve`: Prometheus scrapes a local exporter of DCGM-exporter
//! metrics for 8 GPUs (values move on every scrape) each second and
//! remote-writes into Cairn. What Cairn stored must equal what Prometheus
//! stored locally, series by series and sample by sample. Then a second
//! Prometheus with no local data and `remote_read` pointed at Cairn must read
//! the same samples back through its own query API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_gpusim::{ClusterSpec, Exporter};
use support::*;

/// Serves the DCGM exporter page of one simulated node; every request is a new scrape.
fn start_exporter() -> (u16, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicU64::new(0));
    let s = scrapes.clone();
    std::thread::spawn(move || {
        let spec = ClusterSpec {
            nodes: 1,
            pod_lifetime_scrapes: 0,
            ..Default::default()
        };
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let step = s.fetch_add(1, Ordering::SeqCst);
            let body = spec.render_text(0, step, Exporter::Dcgm);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    (port, scrapes)
}

type Raw = BTreeMap<String, Vec<(i64, String)>>;

/// Raw samples of `{job="dcgm-exporter"}` in (t - range, t], by series.
fn raw(base: &str, t_ms: i64, range: &str) -> Raw {
    let t = format!("{}.{:03}", t_ms / 1000, t_ms % 1000);
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[
            ("query", &format!("{{job=\"dcgm-exporter\"}}[{range}]")),
            ("time", &t),
        ],
    );
    assert_eq!(r.status, 200, "{base}: {}", r.text());
    let v = r.json();
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let pts = s["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64,
                    p[1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.insert(s["metric"].to_string(), pts);
    }
    out
}

#[test]
fn prometheus_remote_write_and_read_through_cairn_serve() {
    require_tool("/usr/bin/prometheus");
    let dir = tempfile::tempdir().unwrap();
    let (exp_port, scrapes) = start_exporter();
    let cairn_port = free_port();
    let _cairn = start_cairn(&dir.path().join("cairn"), cairn_port, &[]);
    let cairn = format!("http://127.0.0.1:{cairn_port}");
    let prom_port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: dcgm-exporter\n    static_configs:\n      - targets: ['127.0.0.1:{exp_port}']\nremote_write:\n  - url: {cairn}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 20ms\n"
    );
    let _prom = start_prometheus(&dir.path().join("prom"), prom_port, &config, &[]);
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Wait (bounded) until Cairn holds at least 8 scrapes of every GPU series.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = post_form(
            &format!("{cairn}/api/v1/query"),
            &[("query", "min(count_over_time(DCGM_FI_DEV_GPU_UTIL[10m]))")],
        );
        let n: f64 = r.json()["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        if n >= 8.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Cairn got {n} scrapes in 90 s (exporter served {})",
            scrapes.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Compare up to a time Cairn has certainly received for every series.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let in_cairn = raw(&cairn, now, "10m");
    let t = in_cairn
        .values()
        .filter_map(|v| v.last().map(|p| p.0))
        .min()
        .expect("series in Cairn");
    let ours = raw(&cairn, t, "10m");
    let theirs = raw(&prom, t, "10m");
    assert!(
        theirs.len() >= 26 * 8,
        "Prometheus has {} series",
        theirs.len()
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "same series"
    );
    let mut samples = 0;
    for (k, p) in &theirs {
        // Prometheus starts remote-writing from the WAL position at start-up, so
        // Cairn may lack a sample scraped before the queue started; everything
        // after Cairn's first sample must be identical.
        let c = &ours[k];
        let first = c.first().map(|x| x.0).unwrap_or(i64::MAX);
        let p: Vec<_> = p.iter().filter(|x| x.0 >= first).cloned().collect();
        assert_eq!(&p, c, "series {k}");
        assert!(c.len() >= 8, "series {k} has {} samples", c.len());
        samples += c.len();
    }
    eprintln!(
        "{} series, {samples} samples identical in Prometheus and Cairn",
        theirs.len()
    );

    // A second Prometheus with no local data reads Cairn through remote_read.
    let reader_port = free_port();
    let reader_cfg = format!(
        "global:\n  scrape_interval: 1h\nremote_read:\n  - url: {cairn}/api/v1/read\n    read_recent: true\n"
    );
    let _reader = start_prometheus(&dir.path().join("reader"), reader_port, &reader_cfg, &[]);
    let read_back = raw(&format!("http://127.0.0.1:{reader_port}"), t, "10m");
    assert_eq!(
        read_back, ours,
        "remote_read through Prometheus returns what Cairn holds"
    );
}
