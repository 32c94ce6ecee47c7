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
