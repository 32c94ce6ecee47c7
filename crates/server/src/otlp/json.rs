//! OTLP/JSON: the JSON encoding of `ExportMetricsServiceRequest` that
//! OTLP/HTTP allows beside protobuf (`Content-Type: application/json`),
//! decoded into the same messages as the protobuf body.
//!
//! The encoding is protobuf's JSON mapping with OTLP's exceptions:
//! - field names in lowerCamelCase; the original snake_case names are
//!   accepted too, as the mapping requires of a parser;
//! - 64-bit integers as JSON numbers or decimal strings; doubles as numbers
//!   or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - enums (`aggregationTemporality`) as integers (names accepted too);
//! - `traceId` and `spanId` in hex, not base64; `bytesValue` in base64;
//! - unknown fields are ignored.
//!
//! Malformed input is a [`ServerError::BadRequest`] naming the field's
//! path; nothing is appended then. Nesting is bounded by `serde_json`'s
//! recursion limit.

use base64::Engine as _;
use cairn_proto::otlp::*;
use serde_json::Value as J;

use crate::ServerError;

type R<T> = Result<T, ServerError>;

fn bad(path: &str, what: &str) -> ServerError {
    ServerError::BadRequest(format!("malformed OTLP/JSON request: {path}: {what}"))
}

/// Field `camel` (or `snake`) of object `o`; `None` when absent or null.
fn get<'a>(o: &'a J, camel: &str, snake: &str) -> Option<&'a J> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

fn obj<'a>(v: &'a J, path: &str) -> R<&'a serde_json::Map<String, J>> {
    v.as_object().ok_or_else(|| bad(path, "expected an object"))
}

fn list<'a>(o: &'a J, camel: &str, snake: &str, path: &str) -> R<&'a [J]> {
    match get(o, camel, snake) {
        None => Ok(&[]),
        Some(v) => v
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| bad(&format!("{path}.{camel}"), "expected an array")),
    }
}

fn string(o: &J, camel: &str, snake: &str, path: &str) -> R<String> {
    match get(o, camel, snake) {
        None => Ok(String::new()),
        Some(J::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(&format!("{path}.{camel}"), "expected a string")),
    }
}

fn u64_of(v: &J, path: &str) -> R<u64> {
    match v {
        J::Number(n) => n
            .as_u64()
            .ok_or_else(|| bad(path, "expected an unsigned integer")),
        J::String(s) => s
            .parse()
            .map_err(|_| bad(path, "expected an unsigned integer")),
        _ => Err(bad(path, "expected an unsigned integer")),
    }
}

fn i64_of(v: &J, path: &str) -> R<i64> {
    match v {
        J::Number(n) => n.as_i64().ok_or_else(|| bad(path, "expected an integer")),
        J::String(s) => s.parse().map_err(|_| bad(path, "expected an integer")),
        _ => Err(bad(path, "expected an integer")),
    }
}

fn f64_of(v: &J, path: &str) -> R<f64> {
    match v {
        J::Number(n) => n.as_f64().ok_or_else(|| bad(path, "expected a number")),
        J::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            s => s.parse().map_err(|_| bad(path, "expected a number")),
        },
        _ => Err(bad(path, "expected a number")),
    }
}

fn u64_field(o: &J, camel: &str, snake: &str, path: &str) -> R<u64> {
    get(o, camel, snake).map_or(Ok(0), |v| u64_of(v, &format!("{path}.{camel}")))
}

fn f64_opt(o: &J, camel: &str, snake: &str, path: &str) -> R<Option<f64>> {
    get(o, camel, snake)
        .map(|v| f64_of(v, &format!("{path}.{camel}")))
        .transpose()
}

fn u32_field(o: &J, camel: &str, snake: &str, path: &str) -> R<u32> {
    let v = u64_field(o, camel, snake, path)?;
    u32::try_from(v).map_err(|_| bad(&format!("{path}.{camel}"), "out of range"))
}

fn i32_field(o: &J, camel: &str, snake: &str, path: &str) -> R<i32> {
    let p = format!("{path}.{camel}");
    match get(o, camel, snake) {
        None => Ok(0),
        Some(v) => i32::try_from(i64_of(v, &p)?).map_err(|_| bad(&p, "out of range")),
    }
}

fn bool_field(o: &J, camel: &str, snake: &str, path: &str) -> R<bool> {
    match get(o, camel, snake) {
        None => Ok(false),
        Some(J::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(&format!("{path}.{camel}"), "expected true or false")),
    }
}

fn hex(o: &J, camel: &str, snake: &str, path: &str) -> R<Vec<u8>> {
    let p = format!("{path}.{camel}");
    let s = string(o, camel, snake, path)?;
    if s.len() % 2 != 0 {
        return Err(bad(&p, "expected hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| bad(&p, "expected hex digits"))
        })
        .collect()
}

fn temporality(o: &J, path: &str) -> R<i32> {
    let p = format!("{path}.aggregationTemporality");
    match get(o, "aggregationTemporality", "aggregation_temporality") {
        None => Ok(0),
        Some(J::String(s)) if s.starts_with("AGGREGATION_TEMPORALITY_") => Ok(match s.as_str() {
            "AGGREGATION_TEMPORALITY_DELTA" => AggregationTemporality::Delta as i32,
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => AggregationTemporality::Cumulative as i32,
            _ => 0,
        }),
        Some(v) => i32::try_from(i64_of(v, &p)?).map_err(|_| bad(&p, "out of range")),
    }
}

fn any_value(v: &J, path: &str) -> R<AnyValue> {
    obj(v, path)?;
    let value = if let Some(s) = get(v, "stringValue", "string_value") {
        Some(Value::StringValue(
            s.as_str()
                .ok_or_else(|| bad(path, "stringValue: expected a string"))?
                .to_owned(),
        ))
    } else if let Some(b) = get(v, "boolValue", "bool_value") {
        Some(Value::BoolValue(b.as_bool().ok_or_else(|| {
            bad(path, "boolValue: expected true or false")
        })?))
    } else if let Some(i) = get(v, "intValue", "int_value") {
        Some(Value::IntValue(i64_of(i, &format!("{path}.intValue"))?))
    } else if let Some(d) = get(v, "doubleValue", "double_value") {
        Some(Value::DoubleValue(f64_of(
            d,
            &format!("{path}.doubleValue"),
        )?))
    } else if let Some(a) = get(v, "arrayValue", "array_value") {
        let p = format!("{path}.arrayValue");
        let values = list(a, "values", "values", &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| any_value(x, &format!("{p}.values[{i}]")))
            .collect::<R<Vec<_>>>()?;
        Some(Value::ArrayValue(ArrayValue { values }))
    } else if let Some(k) = get(v, "kvlistValue", "kvlist_value") {
        let p = format!("{path}.kvlistValue");
        Some(Value::KvlistValue(KeyValueList {
            values: key_values(k, "values", "values", &p)?,
        }))
    } else if let Some(b) = get(v, "bytesValue", "bytes_value") {
        let s = b
            .as_str()
            .ok_or_else(|| bad(path, "bytesValue: expected base64"))?;
        Some(Value::BytesValue(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| bad(path, "bytesValue: expected base64"))?,
        ))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn key_values(o: &J, camel: &str, snake: &str, path: &str) -> R<Vec<KeyValue>> {
    list(o, camel, snake, path)?
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            let p = format!("{path}.{camel}[{i}]");
            obj(kv, &p)?;
            Ok(KeyValue {
                key: string(kv, "key", "key", &p)?,
                value: get(kv, "value", "value")
                    .map(|v| any_value(v, &format!("{p}.value")))
                    .transpose()?,
            })
        })
        .collect()
}

fn exemplars(o: &J, path: &str) -> R<Vec<Exemplar>> {
    list(o, "exemplars", "exemplars", path)?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = format!("{path}.exemplars[{i}]");
            obj(e, &p)?;
            let value = if let Some(d) = get(e, "asDouble", "as_double") {
                Some(ExemplarValue::AsDouble(f64_of(d, &p)?))
            } else if let Some(n) = get(e, "asInt", "as_int") {
                Some(ExemplarValue::AsInt(i64_of(n, &p)?))
            } else {
                None
            };
            Ok(Exemplar {
                filtered_attributes: key_values(
                    e,
                    "filteredAttributes",
                    "filtered_attributes",
                    &p,
                )?,
                time_unix_nano: u64_field(e, "timeUnixNano", "time_unix_nano", &p)?,
                value,
                span_id: hex(e, "spanId", "span_id", &p)?,
                trace_id: hex(e, "traceId", "trace_id", &p)?,
            })
        })
        .collect()
}

/// The fields every data point has: attributes, start and time, flags.
struct Common {
    attributes: Vec<KeyValue>,
    start: u64,
    time: u64,
    flags: u32,
}

fn common(o: &J, p: &str) -> R<Common> {
    obj(o, p)?;
    Ok(Common {
        attributes: key_values(o, "attributes", "attributes", p)?,
        start: u64_field(o, "startTimeUnixNano", "start_time_unix_nano", p)?,
        time: u64_field(o, "timeUnixNano", "time_unix_nano", p)?,
        flags: u32_field(o, "flags", "flags", p)?,
    })
}

fn number_points(o: &J, path: &str) -> R<Vec<NumberDataPoint>> {
    list(o, "dataPoints", "data_points", path)?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = format!("{path}.dataPoints[{i}]");
            let c = common(d, &p)?;
            let value = if let Some(x) = get(d, "asDouble", "as_double") {
                Some(NumberValue::AsDouble(f64_of(x, &format!("{p}.asDouble"))?))
            } else if let Some(x) = get(d, "asInt", "as_int") {
                Some(NumberValue::AsInt(i64_of(x, &format!("{p}.asInt"))?))
            } else {
                None
            };
            Ok(NumberDataPoint {
                attributes: c.attributes,
                start_time_unix_nano: c.start,
                time_unix_nano: c.time,
                value,
                exemplars: exemplars(d, &p)?,
                flags: c.flags,
            })
        })
        .collect()
}

fn u64s(o: &J, camel: &str, snake: &str, path: &str) -> R<Vec<u64>> {
    list(o, camel, snake, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| u64_of(v, &format!("{path}.{camel}[{i}]")))
        .collect()
}

fn f64s(o: &J, camel: &str, snake: &str, path: &str) -> R<Vec<f64>> {
    list(o, camel, snake, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| f64_of(v, &format!("{path}.{camel}[{i}]")))
        .collect()
}

fn histogram_points(o: &J, path: &str) -> R<Vec<HistogramDataPoint>> {
    list(o, "dataPoints", "data_points", path)?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = format!("{path}.dataPoints[{i}]");
            let c = common(d, &p)?;
            Ok(HistogramDataPoint {
                attributes: c.attributes,
                start_time_unix_nano: c.start,
                time_unix_nano: c.time,
                count: u64_field(d, "count", "count", &p)?,
                sum: f64_opt(d, "sum", "sum", &p)?,
                bucket_counts: u64s(d, "bucketCounts", "bucket_counts", &p)?,
                explicit_bounds: f64s(d, "explicitBounds", "explicit_bounds", &p)?,
                exemplars: exemplars(d, &p)?,
                flags: c.flags,
            })
        })
        .collect()
}

fn buckets(o: &J, camel: &str, path: &str) -> R<Option<ExponentialBuckets>> {
    get(o, camel, camel)
        .map(|b| {
            let p = format!("{path}.{camel}");
            obj(b, &p)?;
            Ok(ExponentialBuckets {
                offset: i32_field(b, "offset", "offset", &p)?,
                bucket_counts: u64s(b, "bucketCounts", "bucket_counts", &p)?,
            })
        })
        .transpose()
}

fn exponential_points(o: &J, path: &str) -> R<Vec<ExponentialHistogramDataPoint>> {
    list(o, "dataPoints", "data_points", path)?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = format!("{path}.dataPoints[{i}]");
            let c = common(d, &p)?;
            Ok(ExponentialHistogramDataPoint {
                attributes: c.attributes,
                start_time_unix_nano: c.start,
                time_unix_nano: c.time,
                count: u64_field(d, "count", "count", &p)?,
                sum: f64_opt(d, "sum", "sum", &p)?,
                scale: i32_field(d, "scale", "scale", &p)?,
                zero_count: u64_field(d, "zeroCount", "zero_count", &p)?,
                positive: buckets(d, "positive", &p)?,
                negative: buckets(d, "negative", &p)?,
                flags: c.flags,
                exemplars: exemplars(d, &p)?,
                zero_threshold: f64_opt(d, "zeroThreshold", "zero_threshold", &p)?.unwrap_or(0.0),
            })
        })
        .collect()
}

fn summary_points(o: &J, path: &str) -> R<Vec<SummaryDataPoint>> {
    list(o, "dataPoints", "data_points", path)?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = format!("{path}.dataPoints[{i}]");
            let c = common(d, &p)?;
            let quantile_values = list(d, "quantileValues", "quantile_values", &p)?
                .iter()
                .enumerate()
                .map(|(j, q)| {
                    let qp = format!("{p}.quantileValues[{j}]");
                    obj(q, &qp)?;
                    Ok(ValueAtQuantile {
                        quantile: f64_opt(q, "quantile", "quantile", &qp)?.unwrap_or(0.0),
                        value: f64_opt(q, "value", "value", &qp)?.unwrap_or(0.0),
                    })
                })
                .collect::<R<Vec<_>>>()?;
            Ok(SummaryDataPoint {
                attributes: c.attributes,
                start_time_unix_nano: c.start,
                time_unix_nano: c.time,
                count: u64_field(d, "count", "count", &p)?,
                sum: f64_opt(d, "sum", "sum", &p)?.unwrap_or(0.0),
                quantile_values,
                flags: c.flags,
            })
        })
        .collect()
}

fn metric(m: &J, path: &str) -> R<Metric> {
    obj(m, path)?;
    let data = if let Some(g) = get(m, "gauge", "gauge") {
        let p = format!("{path}.gauge");
        obj(g, &p)?;
        Some(MetricData::Gauge(Gauge {
            data_points: number_points(g, &p)?,
        }))
    } else if let Some(s) = get(m, "sum", "sum") {
        let p = format!("{path}.sum");
        obj(s, &p)?;
        Some(MetricData::Sum(Sum {
            data_points: number_points(s, &p)?,
            aggregation_temporality: temporality(s, &p)?,
            is_monotonic: bool_field(s, "isMonotonic", "is_monotonic", &p)?,
        }))
    } else if let Some(h) = get(m, "histogram", "histogram") {
        let p = format!("{path}.histogram");
        obj(h, &p)?;
        Some(MetricData::Histogram(Histogram {
            data_points: histogram_points(h, &p)?,
            aggregation_temporality: temporality(h, &p)?,
        }))
    } else if let Some(h) = get(m, "exponentialHistogram", "exponential_histogram") {
        let p = format!("{path}.exponentialHistogram");
        obj(h, &p)?;
        Some(MetricData::ExponentialHistogram(ExponentialHistogram {
            data_points: exponential_points(h, &p)?,
            aggregation_temporality: temporality(h, &p)?,
        }))
    } else if let Some(s) = get(m, "summary", "summary") {
        let p = format!("{path}.summary");
        obj(s, &p)?;
        Some(MetricData::Summary(Summary {
            data_points: summary_points(s, &p)?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: string(m, "name", "name", path)?,
        description: string(m, "description", "description", path)?,
        unit: string(m, "unit", "unit", path)?,
        data,
    })
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub(super) fn decode(body: &[u8]) -> R<ExportMetricsServiceRequest> {
    let root: J = serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed OTLP/JSON request: {e}")))?;
    obj(&root, "$")?;
    let resource_metrics = list(&root, "resourceMetrics", "resource_metrics", "$")?
        .iter()
        .enumerate()
        .map(|(i, rm)| {
            let p = format!("$.resourceMetrics[{i}]");
            obj(rm, &p)?;
            let resource = get(rm, "resource", "resource")
                .map(|r| -> R<Resource> {
                    let rp = format!("{p}.resource");
                    obj(r, &rp)?;
                    Ok(Resource {
                        attributes: key_values(r, "attributes", "attributes", &rp)?,
                    })
                })
                .transpose()?;
            let scope_metrics = list(rm, "scopeMetrics", "scope_metrics", &p)?
                .iter()
                .enumerate()
                .map(|(j, sm)| {
                    let sp = format!("{p}.scopeMetrics[{j}]");
                    obj(sm, &sp)?;
                    let scope = get(sm, "scope", "scope")
                        .map(|s| -> R<InstrumentationScope> {
                            let scp = format!("{sp}.scope");
                            obj(s, &scp)?;
                            Ok(InstrumentationScope {
                                name: string(s, "name", "name", &scp)?,
                                version: string(s, "version", "version", &scp)?,
                                attributes: key_values(s, "attributes", "attributes", &scp)?,
                            })
                        })
                        .transpose()?;
                    let metrics = list(sm, "metrics", "metrics", &sp)?
                        .iter()
                        .enumerate()
                        .map(|(k, m)| metric(m, &format!("{sp}.metrics[{k}]")))
                        .collect::<R<Vec<_>>>()?;
                    Ok(ScopeMetrics {
                        scope,
                        metrics,
                        schema_url: string(sm, "schemaUrl", "schema_url", &sp)?,
                    })
                })
                .collect::<R<Vec<_>>>()?;
            Ok(ResourceMetrics {
                resource,
                scope_metrics,
                schema_url: string(rm, "schemaUrl", "schema_url", &p)?,
            })
        })
        .collect::<R<Vec<_>>>()?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

/// The JSON form of an `ExportMetricsServiceResponse`.
pub(super) fn response(rejected: u64, message: &str) -> Vec<u8> {
    let v = if rejected == 0 {
        serde_json::json!({})
    } else {
        serde_json::json!({
            "partialSuccess": {
                "rejectedDataPoints": rejected.to_string(),
                "errorMessage": message,
            }
        })
    };
    v.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    /// The JSON shape the OpenTelemetry SDKs' OTLP/JSON exporters send.
    const BODY: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"trainer"}},
        {"key":"replicas","value":{"intValue":"3"}},
        {"key":"tags","value":{"arrayValue":{"values":[{"boolValue":true},{"doubleValue":1.5}]}}}]},
      "scopeMetrics":[{"scope":{"name":"s","version":"1"},"metrics":[
        {"name":"steps","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
          "dataPoints":[{"asInt":"12","timeUnixNano":"1700000000000000000","startTimeUnixNano":1699999990000000000,
            "attributes":[{"key":"model","value":{"stringValue":"llama"}}],
            "exemplars":[{"asDouble":1,"timeUnixNano":"1700000000000000000","traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"}]}]}},
        {"name":"temp","gauge":{"dataPoints":[{"asDouble":"NaN","timeUnixNano":"1700000000000000000","flags":1}]}},
        {"name":"lat","histogram":{"aggregation_temporality":2,"dataPoints":[{"count":"3","sum":1.5,
          "bucketCounts":["1","2"],"explicitBounds":[0.5],"timeUnixNano":"1700000000000000000"}]}},
        {"name":"exp","exponentialHistogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE",
          "dataPoints":[{"count":"3","scale":2,"zeroCount":"1","positive":{"offset":-1,"bucketCounts":["2"]},"timeUnixNano":"1700000000000000000"}]}},
        {"name":"q","summary":{"dataPoints":[{"count":"2","sum":3,"quantileValues":[{"quantile":0.5,"value":1}]}]}}
      ]}]}]}"#;

    #[test]
    fn decodes_what_sdks_send() {
        let r = decode(BODY.as_bytes()).unwrap();
        let rm = &r.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attrs[1].value.as_ref().unwrap().value,
            Some(Value::IntValue(3))
        );
        let ms = &rm.scope_metrics[0].metrics;
        assert_eq!(ms.len(), 5);
        let Some(MetricData::Sum(s)) = &ms[0].data else {
            panic!("{:?}", ms[0].data)
        };
        assert!(s.is_monotonic);
        assert_eq!(s.aggregation_temporality, 2);
        let p = &s.data_points[0];
        assert_eq!(p.value, Some(NumberValue::AsInt(12)));
        assert_eq!(p.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(p.start_time_unix_nano, 1_699_999_990_000_000_000);
        assert_eq!(
            p.exemplars[0].span_id,
            vec![0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        assert_eq!(p.exemplars[0].trace_id.len(), 16);
        let Some(MetricData::Gauge(g)) = &ms[1].data else {
            panic!()
        };
        assert!(matches!(g.data_points[0].value, Some(NumberValue::AsDouble(x)) if x.is_nan()));
        assert_eq!(g.data_points[0].flags, 1);
        let Some(MetricData::Histogram(h)) = &ms[2].data else {
            panic!()
        };
        assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
        assert_eq!(
            h.aggregation_temporality, 2,
            "snake_case names are read too"
        );
        let Some(MetricData::ExponentialHistogram(e)) = &ms[3].data else {
            panic!()
        };
        assert_eq!(e.aggregation_temporality, 2);
        assert_eq!(e.data_points[0].positive.as_ref().unwrap().offset, -1);
        let Some(MetricData::Summary(q)) = &ms[4].data else {
            panic!()
        };
        assert_eq!(q.data_points[0].quantile_values[0].value, 1.0);
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        for (body, want) in [
            ("[1]", "$: expected an object"),
            (
                r#"{"resourceMetrics":{}}"#,
                "$.resourceMetrics: expected an array",
            ),
            (
                r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asInt":"x"}]}}]}]}]}"#,
                "metrics[0].gauge.dataPoints[0].asInt: expected an integer",
            ),
            (
                r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"dataPoints":[{"exemplars":[{"spanId":"zz"}]}]}}]}]}]}"#,
                "spanId: expected hex digits",
            ),
            ("{\"resourceMetrics\":[", "malformed OTLP/JSON request"),
        ] {
            let e = decode(body.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn responses_are_json() {
        assert_eq!(response(0, ""), b"{}");
        let v: J = serde_json::from_slice(&response(2, "delta")).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "2");
        assert_eq!(v["partialSuccess"]["errorMessage"], "delta");
    }

    proptest::proptest! {
        /// Whatever the bytes (a real body with bytes changed, or noise),
        /// decoding answers a request or a named error, never a panic.
        #[test]
        fn never_panics(
            flips in proptest::collection::vec((0usize..2000, proptest::num::u8::ANY), 0..8),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let mut b = BODY.as_bytes().to_vec();
            for (at, x) in flips {
                let i = at % b.len();
                b[i] = x;
            }
            let _ = decode(&b);
            let _ = decode(&noise);
        }
    }
}
