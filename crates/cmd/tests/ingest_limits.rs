//! Ingestion limits through a real `cairn serve`, set by flags: series
//! limits (head-wide and per metric name), label limits and samples per
//! request. A refusal is a 400 whose body names the limit and the series;
//! what is within the limits is stored; `/metrics` shows the limits and
//! counts refusals by reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_model::Labels;
use support::*;

fn series(name: &str, i: usize, t: i64) -> (Labels, i64, f64) {
    (
        Labels::from_pairs([("__name__", name.to_owned()), ("i", i.to_string())]),
        t,
        1.0,
    )
}

fn count(url: &str, q: &str) -> usize {
    let r = post_form(&format!("{url}/api/v1/query"), &[("query", q)]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["result"].as_array().map_or(0, Vec::len)
}

#[test]
fn limits_set_by_flags_refuse_with_named_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _p = start_cairn(
        &tmp.path().join("data"),
        port,
        &[
            "--storage.tsdb.max-series=5",
            "--storage.tsdb.max-series-per-metric=3",
            "--web.remote-write-receiver.max-labels-per-series=3",
            "--web.remote-write-receiver.max-samples-per-request=20",
        ],
    );
    let write = format!("{url}/api/v1/write");
    let t = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 60)
        * 1000;

    // Four series of a (one over its limit), two of b.
    let mut batch: Vec<_> = (0..4).map(|i| series("a", i, t)).collect();
    batch.extend((0..2).map(|i| series("b", i, t)));
    let r = remote_write(&write, &batch).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let body = r.text();
    assert!(
        body.contains("series per metric") && body.contains(r#"i="3""#),
        "{body}"
    );
    assert_eq!(count(&url, "a"), 3);
    assert_eq!(count(&url, "b"), 2);

    // Five series: a new metric is refused, existing series still accepted.
    let r = remote_write(&write, &[series("c", 0, t), series("a", 0, t + 1000)]).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("limit of 5 series"), "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("1")
    );
    assert_eq!(count(&url, "c"), 0);

    // Too many labels.
    let l = Labels::from_pairs([("__name__", "a"), ("i", "0"), ("x", "1"), ("y", "2")]);
    let r = remote_write(&write, &[(l, t + 2000, 1.0)]).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("more than the limit of 3"),
        "{}",
        r.text()
    );

    // Too many samples: the whole request is refused, nothing stored.
    let many: Vec<_> = (0..21).map(|k| series("a", 1, t + 10_000 + k)).collect();
    let r = remote_write(&write, &many).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("more than 20 samples"), "{}", r.text());
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[("query", "count_over_time(a{i=\"1\"}[10m])")],
    );
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "1",
        "{}",
        r.text()
    );

    let m = get(&format!("{url}/metrics")).text();
    for line in [
        "cairn_limit{limit=\"max_series\"} 5\n",
        "cairn_limit{limit=\"max_series_per_metric\"} 3\n",
        "cairn_limit{limit=\"max_labels_per_series\"} 3\n",
        "cairn_limit{limit=\"max_samples_per_request\"} 20\n",
        "cairn_remote_write_samples_rejected_total{reason=\"series_limit\"} 1\n",
        "cairn_remote_write_samples_rejected_total{reason=\"series_per_metric_limit\"} 1\n",
        "cairn_remote_write_samples_rejected_total{reason=\"label_limits\"} 1\n",
    ] {
        assert!(m.contains(line), "{line} not in {m}");
    }
}

/// Resident memory of a process, from /proc, in bytes.
fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A DCGM-like series with long label values, so that a stored series costs
/// well over a kilobyte.
fn gpu_series(name: &str, host: usize, gpu: usize, t: i64) -> (Labels, i64, f64) {
    (
        Labels::from_pairs([
            ("__name__", name.to_owned()),
            (
                "Hostname",
                format!("gpu-node-{host:06}.cluster.example.internal"),
            ),
            (
                "UUID",
                format!("GPU-{host:08x}-{gpu:04x}-4c1e-9d2a-7f3b5e6a8c{gpu:02}"),
            ),
            ("gpu", gpu.to_string()),
            ("modelName", "NVIDIA H100 80GB HBM3".to_owned()),
            ("namespace", format!("team-{}", host % 97)),
            ("pod", format!("trainer-{host}-{gpu}-7d9f8b6c5-x2k4p")),
            ("container", "trainer".to_owned()),
        ]),
        t,
        (host * 8 + gpu) as f64,
    )
}

/// A sender that creates series without bound (a mislabelled exporter) is
/// stopped at `--storage.tsdb.max-series`: the server's memory stays where
/// it was when the limit was reached, every earlier series keeps taking
/// samples, and each refusal says why.
#[test]
fn an_unbounded_sender_is_stopped_at_the_series_limit_with_bounded_memory() {
    const LIMIT: usize = 20_000;
    const STORM_REQUESTS: usize = 100;
    const PER_REQUEST: usize = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let p = start_cairn(
        &tmp.path().join("data"),
        port,
        &[&format!("--storage.tsdb.max-series={LIMIT}")],
    );
    let pid = p.child.id();
    let write = format!("{url}/api/v1/write");
    let t0 = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600)
        * 1000;

    // The limit is reached by well-behaved series.
    for chunk in 0..LIMIT / PER_REQUEST {
        let batch: Vec<_> = (0..PER_REQUEST)
            .map(|k| {
                let i = chunk * PER_REQUEST + k;
                gpu_series("DCGM_FI_DEV_GPU_UTIL", i / 8, i % 8, t0)
            })
            .collect();
        let r = remote_write(&write, &batch).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    // A few refused requests first, so that buffers the refusals use exist
    // before the baseline is taken.
    let storm = |round: usize, t: i64| -> (Vec<(Labels, i64, f64)>, usize) {
        // New series from a runaway exporter, plus one sample for an earlier
        // series in every request.
        let mut batch: Vec<_> = (0..PER_REQUEST)
            .map(|k| {
                gpu_series(
                    "DCGM_FI_DEV_FB_USED",
                    1_000_000 + round * PER_REQUEST + k,
                    0,
                    t,
                )
            })
            .collect();
        let known = round % LIMIT;
        batch.push(gpu_series("DCGM_FI_DEV_GPU_UTIL", known / 8, known % 8, t));
        (batch, known)
    };
    let mut round = 0;
    let mut send = |t: i64| {
        let (batch, _) = storm(round, t);
        round += 1;
        let r = remote_write(&write, &batch).unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
        let body = r.text();
        assert!(
            body.contains(&format!("limit of {LIMIT} series"))
                && body.contains("DCGM_FI_DEV_FB_USED"),
            "{body}"
        );
        assert_eq!(
            r.header("x-prometheus-remote-write-samples-written"),
            Some("1"),
            "the earlier series' sample is taken"
        );
    };
    for i in 0..5 {
        send(t0 + 1000 + i);
    }
    let before = rss(pid);
    for i in 5..STORM_REQUESTS as i64 {
        send(t0 + 1000 + i);
    }
    let after = rss(pid);
    let refused = STORM_REQUESTS * PER_REQUEST;
    // Had they been stored, the refused series would cost far more than
    // this (at least a few hundred bytes each: their labels alone are over
    // 200 bytes).
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS {} KiB before, {} KiB after {refused} refused series",
        before >> 10,
        after >> 10
    );
    assert!(
        growth < 8 << 20,
        "RSS grew by {} KiB while {refused} series were refused ({} KiB before)",
        growth >> 10,
        before >> 10
    );

    // The head holds exactly the limit; the runaway metric is absent.
    let r = get(&format!("{url}/api/v1/status/tsdb"));
    assert_eq!(
        r.json()["data"]["headStats"]["numSeries"],
        LIMIT as u64,
        "{}",
        r.text()
    );
    assert_eq!(count(&url, "DCGM_FI_DEV_FB_USED"), 0);
    // Every earlier series still takes samples: a full round of them now.
    for chunk in 0..LIMIT / PER_REQUEST {
        let batch: Vec<_> = (0..PER_REQUEST)
            .map(|k| {
                let i = chunk * PER_REQUEST + k;
                gpu_series("DCGM_FI_DEV_GPU_UTIL", i / 8, i % 8, t0 + 60_000)
            })
            .collect();
        let r = remote_write(&write, &batch).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            (
                "query",
                "count(count_over_time(DCGM_FI_DEV_GPU_UTIL[2m]) >= 2)",
            ),
            ("time", &((t0 + 61_000) as f64 / 1000.0).to_string()),
        ],
    );
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        LIMIT.to_string(),
        "{}",
        r.text()
    );
    // The refusals are counted by reason.
    let m = get(&format!("{url}/metrics")).text();
    let line =
        format!("cairn_remote_write_samples_rejected_total{{reason=\"series_limit\"}} {refused}\n");
    assert!(m.contains(&line), "{line} not in the metrics");
}
