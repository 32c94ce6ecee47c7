//! The translation, checked series by series against what Prometheus's
//! OTLP receiver makes of the same request (its documented rules; see
//! `translate`).

use std::collections::BTreeMap;

use cairn_model::{is_stale_nan, Labels};
use cairn_proto::otlp::*;
use cairn_storage::{Appender, Metadata, MetricType, SeriesRef};

use super::translate::{ingest, OtlpOutcome};
use crate::ServerConfig;

#[derive(Default)]
struct Rec {
    samples: BTreeMap<String, Vec<(i64, f64)>>,
    hists: BTreeMap<String, Vec<(i64, cairn_model::Histogram)>>,
    meta: BTreeMap<String, (MetricType, String, String)>,
}

impl Appender for Rec {
    fn append(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        self.samples.entry(l.to_string()).or_default().push((t, v));
        Ok(l.hash64() | 1)
    }
    fn append_histogram(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        h: &cairn_model::Histogram,
    ) -> cairn_storage::Result<SeriesRef> {
        self.hists
            .entry(l.to_string())
            .or_default()
            .push((t, h.clone()));
        Ok(l.hash64() | 1)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        m: &Metadata,
    ) -> cairn_storage::Result<SeriesRef> {
        self.meta.insert(
            l.metric_name().unwrap_or("").to_owned(),
            (m.kind, m.unit.clone(), m.help.clone()),
        );
        Ok(r)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
}

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

fn s(x: &str) -> Value {
    Value::StringValue(x.to_owned())
}

const T: u64 = 1_700_000_000_123_000_000;
const T_MS: i64 = 1_700_000_000_123;

fn num(attrs: Vec<KeyValue>, v: NumberValue, flags: u32) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: T - 60_000_000_000,
        time_unix_nano: T,
        value: Some(v),
        exemplars: vec![],
        flags,
    }
}

fn metric(name: &str, unit: &str, data: MetricData) -> Metric {
    Metric {
        name: name.to_owned(),
        description: format!("{name} help"),
        unit: unit.to_owned(),
        data: Some(data),
    }
}

fn request() -> ExportMetricsServiceRequest {
    let metrics = vec![
        metric(
            "gpu.temperature",
            "Cel",
            MetricData::Gauge(Gauge {
                data_points: vec![
                    num(
                        vec![kv("gpu", Value::IntValue(0)), kv("k8s.pod.name", s("p-1"))],
                        NumberValue::AsDouble(61.5),
                        0,
                    ),
                    num(
                        vec![kv("gpu", Value::IntValue(1))],
                        NumberValue::AsDouble(0.0),
                        FLAG_NO_RECORDED_VALUE,
                    ),
                ],
            }),
        ),
        metric(
            "http.server.requests",
            "{request}",
            MetricData::Sum(Sum {
                data_points: vec![num(
                    vec![kv("http.method", s("GET")), kv("http_method", s("x"))],
                    NumberValue::AsInt(42),
                    0,
                )],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        ),
        metric(
            "queue.depth",
            "1",
            MetricData::Sum(Sum {
                data_points: vec![num(vec![], NumberValue::AsInt(-3), 0)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: false,
            }),
        ),
        metric(
            "delta.things",
            "",
            MetricData::Sum(Sum {
                data_points: vec![
                    num(vec![], NumberValue::AsInt(1), 0),
                    num(vec![], NumberValue::AsInt(2), 0),
                ],
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            }),
        ),
        metric(
            "http.server.duration",
            "s",
            MetricData::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: T - 60_000_000_000,
                    time_unix_nano: T,
                    count: 10,
                    sum: Some(4.25),
                    bucket_counts: vec![2, 5, 3],
                    explicit_bounds: vec![0.1, 1.0],
                    exemplars: vec![],
                    flags: 0,
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ),
        metric(
            "rpc.latency",
            "ms",
            MetricData::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: 0,
                    time_unix_nano: T,
                    count: 7,
                    sum: 70.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: 9.0,
                    }],
                    flags: 0,
                }],
            }),
        ),
        metric(
            "exp.hist",
            "s",
            MetricData::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![kv("gpu", s("0"))],
                    start_time_unix_nano: T - 60_000_000_000,
                    time_unix_nano: T,
                    count: 6,
                    sum: Some(4.5),
                    scale: 1,
                    zero_count: 1,
                    positive: Some(ExponentialBuckets {
                        offset: -1,
                        bucket_counts: vec![2, 0, 3],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("dcgm")),
                    kv("service.namespace", s("gpu")),
                    kv("service.instance.id", s("node-7:9400")),
                    kv("host.name", s("node-7")),
                    kv(
                        "cloud.zone",
                        Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue {
                                    value: Some(s("a")),
                                },
                                AnyValue {
                                    value: Some(Value::BoolValue(true)),
                                },
                            ],
                        }),
                    ),
                ],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn a_request_becomes_the_series_prometheus_makes() {
    let mut rec = Rec::default();
    let out = ingest(&request(), &ServerConfig::default(), &mut rec, T_MS).unwrap();
    let id = r#"instance="node-7:9400", job="gpu/dcgm""#;
    let want: Vec<(String, f64)> = vec![
        (
            format!(r#"{{__name__="gpu_temperature_celsius", gpu="0", {id}, k8s_pod_name="p-1"}}"#),
            61.5,
        ),
        (
            format!(r#"{{__name__="http_server_duration_seconds_bucket", {id}, le="+Inf"}}"#),
            10.0,
        ),
        (
            format!(r#"{{__name__="http_server_duration_seconds_bucket", {id}, le="0.1"}}"#),
            2.0,
        ),
        (
            format!(r#"{{__name__="http_server_duration_seconds_bucket", {id}, le="1"}}"#),
            7.0,
        ),
        (
            format!(r#"{{__name__="http_server_duration_seconds_count", {id}}}"#),
            10.0,
        ),
        (
            format!(r#"{{__name__="http_server_duration_seconds_sum", {id}}}"#),
            4.25,
        ),
        (
            format!(r#"{{__name__="http_server_requests_total", http_method="GET;x", {id}}}"#),
            42.0,
        ),
        (format!(r#"{{__name__="queue_depth", {id}}}"#), -3.0),
        (
            format!(r#"{{__name__="rpc_latency_milliseconds", {id}, quantile="0.5"}}"#),
            9.0,
        ),
        (
            format!(r#"{{__name__="rpc_latency_milliseconds_count", {id}}}"#),
            7.0,
        ),
        (
            format!(r#"{{__name__="rpc_latency_milliseconds_sum", {id}}}"#),
            70.0,
        ),
        (
            format!(
                r#"{{__name__="target_info", cloud_zone="[\"a\",true]", host_name="node-7", {id}}}"#
            ),
            1.0,
        ),
    ];
    let stale = format!(r#"{{__name__="gpu_temperature_celsius", gpu="1", {id}}}"#);
    let mut got: Vec<(String, f64)> = Vec::new();
    for (k, v) in &rec.samples {
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        assert_eq!(v[0].0, T_MS, "{k}");
        if *k == stale {
            assert!(is_stale_nan(v[0].1), "{k}");
        } else {
            got.push((k.clone(), v[0].1));
        }
    }
    assert_eq!(got, want);
    // Delta sum (2 points) rejected.
    assert_eq!(out.rejected_points, 2, "{:?}", out.messages);
    assert_eq!(
        out.samples_written,
        (rec.samples.len() + rec.hists.len()) as u64
    );
    // The exponential histogram is a native histogram named as a classic
    // one's base (no `_bucket`), its buckets one index up.
    let (k, v) = rec.hists.iter().next().unwrap();
    assert!(
        k.starts_with("{__name__=\"exp_hist_seconds\"") && k.contains("gpu=\"0\""),
        "{k}"
    );
    assert_eq!(v.len(), 1);
    let h = &v[0].1;
    assert_eq!(
        (v[0].0, h.schema, h.count, h.zero_count, h.sum),
        (T_MS, 1, 6, 1, 4.5)
    );
    assert_eq!(
        h.positive_spans,
        vec![cairn_model::Span {
            offset: 0,
            length: 3
        }]
    );
    assert_eq!(h.positive_buckets, vec![2, -2, 3]);
    assert_eq!(
        rec.meta.get("exp_hist_seconds").map(|m| m.0),
        Some(MetricType::Histogram)
    );
    assert_eq!(
        rec.meta.get("http_server_requests_total"),
        Some(&(
            MetricType::Counter,
            String::new(),
            "http.server.requests help".to_owned()
        ))
    );
    assert_eq!(
        rec.meta
            .get("http_server_duration_seconds")
            .map(|m| (m.0, m.1.as_str())),
        Some((MetricType::Histogram, "seconds"))
    );
    assert_eq!(
        rec.meta.get("queue_depth").map(|m| m.0),
        Some(MetricType::Gauge)
    );
}

#[test]
fn target_info_covers_the_resource_span() {
    let mut req = request();
    // A second gauge point 10 minutes later.
    if let Some(MetricData::Gauge(g)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        let mut p = g.data_points[0].clone();
        p.time_unix_nano += 600_000_000_000;
        g.data_points.push(p);
    }
    let mut rec = Rec::default();
    ingest(&req, &ServerConfig::default(), &mut rec, T_MS + 600_000).unwrap();
    let ti: Vec<i64> = rec
        .samples
        .iter()
        .find(|(k, _)| k.contains("target_info"))
        .map(|(_, v)| v.iter().map(|x| x.0).collect())
        .unwrap();
    let step = 150_000;
    assert_eq!(
        ti,
        vec![
            T_MS,
            T_MS + step,
            T_MS + 2 * step,
            T_MS + 3 * step,
            T_MS + 600_000
        ]
    );
}

#[test]
fn rejected_points_are_reported_in_the_partial_success() {
    use cairn_proto::Message;
    let mut rec = Rec::default();
    let out = ingest(&request(), &ServerConfig::default(), &mut rec, T_MS).unwrap();
    let r = ExportMetricsServiceResponse::decode(&super::response(&out)[..]).unwrap();
    let ps = r.partial_success.unwrap();
    assert_eq!(ps.rejected_data_points, 2);
    assert!(ps.error_message.contains("delta"), "{}", ps.error_message);
    let clean = OtlpOutcome::default();
    assert!(
        ExportMetricsServiceResponse::decode(&super::response(&clean)[..])
            .unwrap()
            .partial_success
            .is_none()
    );
}

#[test]
fn label_limits_apply_to_translated_series() {
    let cfg = ServerConfig {
        max_labels_per_series: 4,
        ..ServerConfig::default()
    };
    let mut rec = Rec::default();
    let out = ingest(&request(), &cfg, &mut rec, T_MS).unwrap();
    // Series with more than 4 labels (the first gauge point has 5, the
    // target_info 5) are rejected point by point; the rest is stored.
    assert!(
        rec.samples.keys().all(|k| k.matches('=').count() <= 4),
        "{:?}",
        rec.samples.keys()
    );
    assert!(out.rejected_points >= 2 + 2, "{out:?}");
    assert!(
        out.messages
            .iter()
            .any(|m| m.contains("more than the limit of 4")),
        "{:?}",
        out.messages
    );
}

#[test]
fn far_apart_points_do_not_make_target_info_explode() {
    // The fuzzer's find: points a year apart made a sample every 150 s.
    let mut req = request();
    if let Some(MetricData::Gauge(g)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        g.data_points[1].time_unix_nano = T - 365 * 86_400 * 1_000_000_000;
    }
    let mut rec = Rec::default();
    ingest(&req, &ServerConfig::default(), &mut rec, T_MS).unwrap();
    let n = rec
        .samples
        .iter()
        .find(|(k, _)| k.contains("target_info"))
        .map_or(0, |(_, v)| v.len());
    assert_eq!(n, 25);
}
