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
    "histogram_count(gpu_kernel_latency_seconds) - histogram_count(gpu_kernel_latency_seconds offset 10s)",
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
