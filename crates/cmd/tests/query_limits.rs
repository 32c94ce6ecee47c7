//! Query limits of `cairn serve`: a query over `--query.max-samples` or
//! `--query.timeout` fails with Prometheus's error type and message, and the
//! server stays healthy and keeps answering other queries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_model::Labels;
use support::*;

fn load(url: &str, base: i64) {
    let mut batch = Vec::new();
    for s in 0..200 {
        let l = Labels::from_pairs([("__name__", "limits_test"), ("series", &s.to_string())]);
        for i in 0..100 {
            batch.push((l.clone(), base + i * 15_000, i as f64));
        }
    }
    let r = remote_write(&format!("{url}/api/v1/write"), &batch).unwrap();
    assert_eq!(r.status / 100, 2, "{}", r.text());
}

#[test]
fn limits_fail_queries_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _c = start_cairn(
        &dir.path().join("d"),
        port,
        &["--query.max-samples=5000", "--query.max-concurrency=2"],
    );
    let url = format!("http://127.0.0.1:{port}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3_600_000) / 1000 * 1000;
    load(&url, base);
    let t = ((base + 100 * 15_000) / 1000).to_string();

    // 200 series x 100 samples in one range vector: over 5000 samples.
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[("query", "limits_test[30m]"), ("time", &t)],
    );
    assert_eq!(r.status, 422, "status {}", r.status);
    let v = r.json();
    assert_eq!(v["errorType"], "execution");
    assert_eq!(
        v["error"],
        "query processing would load too many samples into memory in query execution"
    );

    // A query within the limit still works, and the server is healthy.
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[("query", "count(limits_test)"), ("time", &t)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "200");
    assert_eq!(get(&format!("{url}/-/healthy")).status, 200);

    // A per-request timeout far below the query's cost times out with Prometheus's error.
    let start = (base / 1000).to_string();
    let r = post_form(
        &format!("{url}/api/v1/query_range"),
        &[
            ("query", "sum(rate(limits_test[5m])) + sum(rate(limits_test[10m])) + sum(rate(limits_test[1m]))"),
            ("start", &start),
            ("end", &t),
            ("step", "1"),
            ("timeout", "0.000001"),
        ],
    );
    assert_eq!(r.status, 503, "status {}", r.status);
    let v = r.json();
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in query execution");
    assert_eq!(get(&format!("{url}/-/ready")).status, 200);

    // Self-metrics of the running server include the storage's numbers.
    let m = get(&format!("{url}/metrics")).text();
    for name in [
        "cairn_remote_write_samples_appended_total 20000",
        "cairn_head_series 200",
        "cairn_wal_fsync_duration_seconds_count",
        "cairn_compactions_total 0",
    ] {
        assert!(m.contains(name), "/metrics lacks {name}");
    }
}
