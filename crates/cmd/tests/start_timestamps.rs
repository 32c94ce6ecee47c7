//! Remote write 2.0 start timestamps through a real `cairn serve`: with
//! `--enable-feature=created-timestamp-zero-ingestion` a counter's start
//! goes in as a zero sample where it lands in order (so `increase` sees
//! the counter's first count, as Prometheus's created-timestamp zero
//! ingestion makes it); without it they are accepted and not kept.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_proto::write_v2;
use support::*;

/// Raw samples of `requests_total` as (seconds, value) strings.
fn raw(url: &str, at_s: i64) -> Vec<(String, String)> {
    let r = get(&format!(
        "{url}/api/v1/query?query={}&time={at_s}",
        enc("requests_total[1h]")
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    v["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (p[0].to_string(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

fn send(url: &str, points: &[(i64, i64, f64)]) {
    let mut b = write_v2::SymbolsBuilder::new();
    let ts = write_v2::TimeSeries {
        labels_refs: b.label_refs([("__name__", "requests_total"), ("job", "api")]),
        samples: points
            .iter()
            .map(|&(start_timestamp, timestamp, value)| write_v2::Sample {
                value,
                timestamp,
                start_timestamp,
            })
            .collect(),
        ..Default::default()
    };
    let r = remote_write_v2(
        &format!("{url}/api/v1/write"),
        &write_v2::Request {
            symbols: b.build(),
            timeseries: vec![ts],
        },
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some(points.len().to_string().as_str())
    );
}

#[test]
fn start_timestamps_become_zero_samples_with_the_feature() {
    let base_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600;
    let (s, ms) = (base_s, base_s * 1000);
    let s0 = (s - 30).to_string();
    for (flag, want_zero) in [(true, true), (false, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let extra: &[&str] = if flag {
            &["--enable-feature=created-timestamp-zero-ingestion"]
        } else {
            &[]
        };
        let _p = start_cairn(&tmp.path().join("data"), port, extra);
        // Started 30 s before the first sample; the second request's
        // sample shares the start (out of order now: skipped, not refused);
        // the third comes after a reset with a new start.
        send(
            &url,
            &[(ms - 30_000, ms, 5.0), (ms - 30_000, ms + 15_000, 7.0)],
        );
        send(&url, &[(ms - 30_000, ms + 30_000, 9.0)]);
        send(&url, &[(ms + 40_000, ms + 45_000, 2.0)]);
        let got = raw(&url, s + 60);
        let mut want = vec![
            (s.to_string(), "5".to_owned()),
            ((s + 15).to_string(), "7".to_owned()),
            ((s + 30).to_string(), "9".to_owned()),
            ((s + 45).to_string(), "2".to_owned()),
        ];
        if want_zero {
            want.insert(0, (s0.clone(), "0".to_owned()));
            want.insert(4, ((s + 40).to_string(), "0".to_owned()));
        }
        assert_eq!(got, want, "feature {flag}");
        let m = get(&format!("{url}/metrics")).text();
        let line = format!(
            "cairn_remote_write_start_zero_samples_total {}\n",
            if want_zero { 2 } else { 0 }
        );
        assert!(m.contains(&line), "{line} not in {m}");
    }
}

/// A counter histogram with start timestamps (field 17 of 2.0's
/// `Histogram`): with the feature, each start goes in as an empty
/// histogram (a counter reset) where it lands in order; without it the
/// histograms are taken and the starts not kept.
#[test]
fn histogram_start_timestamps_become_zero_histograms_with_the_feature() {
    use cairn_proto::histogram::{BucketSpan, Count, Histogram, ZeroCount};
    let ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600)
        * 1000;
    let h = |t: i64, st: i64, n: u64| Histogram {
        count: Some(Count::CountInt(n)),
        sum: n as f64,
        schema: 0,
        zero_threshold: 1e-128,
        zero_count: Some(ZeroCount::ZeroCountInt(0)),
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: 1,
        }],
        positive_deltas: vec![n as i64],
        timestamp: t,
        start_timestamp: st,
        ..Default::default()
    };
    for flag in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let extra: &[&str] = if flag {
            &["--enable-feature=created-timestamp-zero-ingestion"]
        } else {
            &[]
        };
        let _p = start_cairn(&tmp.path().join("data"), port, extra);
        let mut b = write_v2::SymbolsBuilder::new();
        let ts = write_v2::TimeSeries {
            labels_refs: b.label_refs([("__name__", "latency_seconds"), ("job", "api")]),
            histograms: vec![
                h(ms, ms - 30_000, 4),
                h(ms + 15_000, ms - 30_000, 6),
                h(ms + 45_000, ms + 40_000, 1),
            ],
            ..Default::default()
        };
        let r = remote_write_v2(
            &format!("{url}/api/v1/write"),
            &write_v2::Request {
                symbols: b.build(),
                timeseries: vec![ts],
            },
        );
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(
            r.header("x-prometheus-remote-write-histograms-written"),
            Some("3")
        );
        let v = get(&format!(
            "{url}/api/v1/query?query={}&time={}",
            enc("latency_seconds[2m]"),
            ms / 1000 + 60
        ))
        .json();
        let got: Vec<(i64, String)> = v["data"]["result"][0]["histograms"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0) as i64,
                    p[1]["count"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut want = vec![
            (ms, "4".to_owned()),
            (ms + 15_000, "6".to_owned()),
            (ms + 45_000, "1".to_owned()),
        ];
        if flag {
            want.insert(0, (ms - 30_000, "0".to_owned()));
            want.insert(3, (ms + 40_000, "0".to_owned()));
        }
        assert_eq!(got, want, "feature {flag}");
    }
}
