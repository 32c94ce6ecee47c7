//! OTLP through a real `cairn serve`, sent by a real OpenTelemetry SDK
//! (the Python SDK with its OTLP/HTTP exporter, installed by
//! `scripts/install-deps.sh`): a counter, an up-down counter, a histogram
//! with the SDK's default buckets, an exponential histogram (a native
//! histogram in Cairn) and an observable gauge come back under
//! the names and labels Prometheus gives them, with `target_info`
//! carrying the other resource attributes; a delta counter is refused
//! with a 400 and not stored, or converted to a counter with
//! `--enable-feature=otlp-deltatocumulative`. The
//! OpenTelemetry JS SDK sends OTLP/JSON, stored the same way.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

fn otel_python() -> PathBuf {
    let venv = std::env::var_os("CAIRN_OTEL_VENV").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/cairn/otel-venv")
        },
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    require_tool(py.to_str().unwrap());
    py
}

const SCRIPT: &str = r#"
import sys
from opentelemetry.sdk.metrics import MeterProvider, Counter
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, AggregationTemporality
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics.view import View, ExponentialBucketHistogramAggregation

def provider(url, temporality=None):
    kw = {}
    if temporality is not None:
        kw["preferred_temporality"] = {Counter: temporality}
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url, **kw), export_interval_millis=3_600_000)
    res = Resource.create({"service.name": "trainer", "service.instance.id": "gpu-node-3", "k8s.namespace.name": "ml"})
    views = [View(instrument_name="kernel.latency", aggregation=ExponentialBucketHistogramAggregation())]
    return MeterProvider(resource=res, metric_readers=[reader], views=views)

url = sys.argv[1]
p = provider(url)
m = p.get_meter("cairn-test")
c = m.create_counter("training.steps", unit="{step}", description="Steps done")
c.add(5, {"model": "llama"})
c.add(7, {"model": "llama"})
ud = m.create_up_down_counter("queue.size")
ud.add(4)
ud.add(-1)
h = m.create_histogram("step.duration", unit="s")
for v in [0.003, 0.02, 0.4, 3.0, 7.5]:
    h.record(v, {"model": "llama"})
e = m.create_histogram("kernel.latency", unit="s")
for v in [0.003, 0.02, 0.4, 3.0, 7.5]:
    e.record(v, {"gpu": "1"})
m.create_observable_gauge("gpu.utilization", callbacks=[lambda o: [Observation(0.87, {"gpu": "0"})]], unit="1")
assert p.force_flush(), "export failed"
p.shutdown()

d = provider(url, AggregationTemporality.DELTA)
d.get_meter("cairn-test").create_counter("delta.events").add(3)
d.force_flush()
d.shutdown()
print("sent")
"#;

fn value(url: &str, q: &str) -> Option<f64> {
    let r = post_form(&format!("{url}/api/v1/query"), &[("query", q)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let res = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert!(res.len() <= 1, "{q}: {res:?}");
    res.first()
        .and_then(|s| s["value"][1].as_str().and_then(|x| x.parse().ok()))
}

#[test]
fn the_opentelemetry_sdk_sends_and_cairn_stores_what_prometheus_would() {
    let py = otel_python();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _p = start_cairn(&tmp.path().join("data"), port, &[]);
    let script = tmp.path().join("send.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(&py)
        .arg(&script)
        .arg(format!("{url}/api/v1/otlp/v1/metrics"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let id = r#"job="trainer",instance="gpu-node-3""#;
    for (q, want) in [
        (
            format!(r#"training_steps_total{{{id},model="llama"}}"#),
            12.0,
        ),
        (format!(r#"queue_size{{{id}}}"#), 3.0),
        (
            format!(r#"step_duration_seconds_bucket{{{id},model="llama",le="0"}}"#),
            0.0,
        ),
        (
            format!(r#"step_duration_seconds_bucket{{{id},model="llama",le="5"}}"#),
            4.0,
        ),
        (
            format!(r#"step_duration_seconds_bucket{{{id},model="llama",le="10"}}"#),
            5.0,
        ),
        (
            format!(r#"step_duration_seconds_bucket{{{id},model="llama",le="+Inf"}}"#),
            5.0,
        ),
        (
            format!(r#"step_duration_seconds_count{{{id},model="llama"}}"#),
            5.0,
        ),
        (
            format!(r#"step_duration_seconds_sum{{{id},model="llama"}}"#),
            10.923,
        ),
        (format!(r#"gpu_utilization_ratio{{{id},gpu="0"}}"#), 0.87),
        // The exponential histogram is a native histogram (of the scale
        // the SDK chose to fit its 160 buckets).
        (
            format!(r#"histogram_count(kernel_latency_seconds{{{id},gpu="1"}})"#),
            5.0,
        ),
        (
            format!(r#"histogram_sum(kernel_latency_seconds{{{id},gpu="1"}})"#),
            10.923,
        ),
        (
            format!(r#"histogram_fraction(0, 1, kernel_latency_seconds{{{id},gpu="1"}})"#),
            0.6,
        ),
        (
            format!(
                r#"target_info{{{id},k8s_namespace_name="ml",telemetry_sdk_language="python"}}"#
            ),
            1.0,
        ),
    ] {
        let got = value(&url, &q);
        let ok = got.is_some_and(|g| (g - want).abs() < 1e-9);
        assert!(ok, "{q}: got {got:?}, want {want}");
    }
    // The delta counter was refused (counted, and answered with a 400),
    // and nothing of it was stored.
    assert_eq!(value(&url, "delta_events_total"), None);
    let m = get(&format!("{url}/metrics")).text();
    assert!(
        m.contains("cairn_otlp_data_points_rejected_total 1\n"),
        "{m}"
    );
    // With Prometheus's opt-in conversion, it is a counter.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _p2 = start_cairn(
        &tmp.path().join("data2"),
        port,
        &["--enable-feature=otlp-deltatocumulative"],
    );
    let out = Command::new(&py)
        .arg(&script)
        .arg(format!("{url}/api/v1/otlp/v1/metrics"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        value(&url, &format!(r#"delta_events_total{{{id}}}"#)),
        Some(3.0)
    );
    let m = get(&format!("{url}/metrics")).text();
    assert!(
        m.contains("cairn_otlp_data_points_rejected_total 0\n"),
        "{m}"
    );
    let md = get(&format!(
        "{url}/api/v1/metadata?metric=training_steps_total"
    ))
    .json();
    assert_eq!(
        md["data"]["training_steps_total"][0]["type"], "counter",
        "{md}"
    );
    assert_eq!(
        md["data"]["training_steps_total"][0]["help"], "Steps done",
        "{md}"
    );
}

/// The OpenTelemetry JS SDK (`tests/otlp-js`, installed by
/// `scripts/install-deps.sh`), whose OTLP/HTTP exporter sends OTLP/JSON:
/// a counter, a histogram, an exponential histogram and an observable
/// gauge arrive as the protobuf ones do.
#[test]
fn the_opentelemetry_js_sdk_sends_otlp_json() {
    let home = std::env::var_os("CAIRN_OTLP_JS").map_or_else(
        || std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cairn/otlp-js"),
        std::path::PathBuf::from,
    );
    let modules = home.join("node_modules");
    assert!(
        modules.join("@opentelemetry/sdk-metrics").exists(),
        "{} is missing: run scripts/install-deps.sh",
        modules.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    // The script beside the installed modules, so that Node finds them.
    std::os::unix::fs::symlink(&modules, tmp.path().join("node_modules")).unwrap();
    let script = tmp.path().join("send.mjs");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/otlp-js/send.mjs"),
        &script,
    )
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _p = start_cairn(&tmp.path().join("data"), port, &[]);
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("{url}/api/v1/otlp/v1/metrics"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = r#"job="inference",instance="gpu-node-9""#;
    for (q, want) in [
        (format!(r#"requests_total{{{id},route="/v1/chat"}}"#), 10.0),
        (
            format!(r#"request_duration_seconds_count{{{id},route="/v1/chat"}}"#),
            4.0,
        ),
        (
            format!(r#"request_duration_seconds_sum{{{id},route="/v1/chat"}}"#),
            3.95,
        ),
        (
            format!(r#"histogram_count(kernel_latency_seconds{{{id},gpu="1"}})"#),
            5.0,
        ),
        (
            format!(r#"histogram_sum(kernel_latency_seconds{{{id},gpu="1"}})"#),
            10.923,
        ),
        (format!(r#"gpu_temperature_celsius{{{id},gpu="1"}}"#), 71.5),
        (
            format!(r#"target_info{{{id},telemetry_sdk_language="nodejs"}}"#),
            1.0,
        ),
    ] {
        let got = value(&url, &q);
        let ok = got.is_some_and(|g| (g - want).abs() < 1e-9);
        assert!(ok, "{q}: got {got:?}, want {want}");
    }
    let m = get(&format!("{url}/metrics")).text();
    assert!(
        m.contains("cairn_otlp_data_points_rejected_total 0\n"),
        "{m}"
    );
}

#[test]
fn wrong_content_type_and_malformed_bodies_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/otlp/v1/metrics");
    let _p = start_cairn(&tmp.path().join("data"), port, &[]);
    let r = post(&url, &[("Content-Type", "text/plain")], b"{}").unwrap();
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(r.text().contains("application/json"), "{}", r.text());
    // OTLP/JSON: a malformed body names the field; an empty request is
    // answered in JSON.
    let r = post(
        &url,
        &[("Content-Type", "application/json")],
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asInt":"seven"}]}}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("dataPoints[0].asInt"), "{}", r.text());
    let r = post(&url, &[("Content-Type", "application/json")], b"{}").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{}");
    // Delta temporality: a 400 that says so, and the rest of the request
    // is stored.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let body = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[
          {{"name":"d","sum":{{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{{"asInt":"2","timeUnixNano":"{now_ns}"}}]}}}},
          {{"name":"g","gauge":{{"dataPoints":[{{"asDouble":7,"timeUnixNano":"{now_ns}"}}]}}}}]}}]}}]}}"#
    );
    let r = post(
        &url,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("delta"), "{}", r.text());
    assert!(r.text().contains("otlp-deltatocumulative"), "{}", r.text());
    let base = url.trim_end_matches("/api/v1/otlp/v1/metrics");
    assert_eq!(value(base, "g"), Some(7.0));
    assert_eq!(value(base, "d_total"), None);
    let r = post(
        &url,
        &[("Content-Type", "application/x-protobuf")],
        &[0xff, 0xff, 0xff],
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(
        &url,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        b"not gzip",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // An empty request is fine.
    let r = post(&url, &[("Content-Type", "application/x-protobuf")], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}
