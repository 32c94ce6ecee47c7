//! What an operator alerts on, from a running `cairn serve`: per-endpoint
//! handler labels on the request histogram, `process_*`, `cairn_build_info`,
//! head cuts counted apart from compactions, bytes on disk per resolution,
//! and logs in real logfmt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::time::{Duration, Instant};

use cairn_model::Labels;
use support::*;

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn operators_figures_and_logfmt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _c = start_cairn(
        &dir,
        port,
        &[
            "--storage.tsdb.maintenance-interval=1s",
            "--storage.tsdb.downsample=false",
        ],
    );
    // Five hours of one series: more than the head keeps, so it is cut.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 60_000
        * 60_000;
    let l = Labels::from_pairs([("__name__", "gpu_temp"), ("gpu", "0")]);
    let batch: Vec<_> = (0..300i64)
        .map(|i| (l.clone(), now - 5 * 3_600_000 + i * 60_000, 40.0))
        .collect();
    assert_eq!(
        remote_write(&format!("{base}/api/v1/write"), &batch)
            .unwrap()
            .status,
        204
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let t = get(&format!("{base}/metrics")).text();
        if metric(&t, "cairn_tsdb_head_cuts_total").unwrap_or(0.0) >= 1.0 {
            break t;
        }
        assert!(Instant::now() < deadline, "no head cut: {t}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric(&text, "cairn_compactions_total"),
        Some(0.0),
        "{text}"
    );
    assert!(metric(&text, "cairn_tsdb_blocks_bytes{resolution=\"raw\"}").unwrap() > 0.0);
    assert!(metric(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(metric(&text, "process_open_fds").unwrap() > 3.0);
    assert!(metric(&text, "process_cpu_seconds_total").is_some());
    assert!(
        text.lines()
            .any(|l| l.starts_with("cairn_build_info{version=\"") && l.ends_with("} 1")),
        "{text}"
    );

    // The query API's endpoints get their own handler labels.
    let end = now / 1000;
    let r = get(&format!(
        "{base}/api/v1/query_range?query=gpu_temp&start={}&end={end}&step=60",
        end - 3600
    ));
    assert_eq!(r.status, 200);
    let r = get(&format!("{base}/api/v1/label/gpu/values"));
    assert_eq!(r.status, 200);
    let text = get(&format!("{base}/metrics")).text();
    for h in ["/api/v1/query_range", "/api/v1/label/:name/values"] {
        let key =
            format!("cairn_http_request_duration_seconds_count{{handler=\"{h}\",code=\"200\"}}");
        assert_eq!(metric(&text, &key), Some(1.0), "{key} in {text}");
    }

    // Logs are logfmt (the default format).
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("msg=\"HTTP server listening\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("ts=20"), "{line}");
    assert!(line.contains(" level=info caller=cairn_server "), "{line}");
    assert!(line.contains(&format!(" addr=127.0.0.1:{port}")), "{line}");
    assert!(!log.contains('\u{1b}'), "no colour codes in logfmt");
}

#[test]
fn an_unknown_log_format_is_refused() {
    let out = cairn()
        .args(["--log.format=xml", "tsdb", "analyze", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log.format \"xml\""), "{err}");
}
