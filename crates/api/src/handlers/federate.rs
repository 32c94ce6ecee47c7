//! `/federate`: the latest sample of every matching series within the
//! lookback, in the text exposition format, or in the protobuf one
//! (delimited `io.prometheus.client.MetricFamily`) when the `Accept` header
//! asks for it, as a Prometheus with native histograms on does.
//!
//! Native histograms travel in the protobuf format only, as Prometheus
//! federates them: a family of type `HISTOGRAM` (`GAUGE_HISTOGRAM` for a
//! gauge histogram) with float counts, beside the `UNTYPED` family of the
//! same name's floats. The text format has no place for them: there, a
//! series whose latest sample is a histogram is left out. Custom-bucket
//! histograms (schema −53) have no field in the exposition format and are
//! left out of both. Stale markers are never federated.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_model::exposition::push_label_set;
use cairn_model::{is_stale_nan, CounterResetHint, FloatHistogram, Labels};
use cairn_proto::exposition as pb;
use cairn_storage::{SelectHints, ValueType};
use prost::Message;

use crate::params::{match_sets, Params};
use crate::reply::{respond, Fail};
use crate::{Api, ApiResponse};

use super::now_ms;

/// A series' latest sample.
enum Latest {
    Float(i64, f64),
    Histogram(i64, Arc<FloatHistogram>),
}

/// Whether an `Accept` header asks for the delimited protobuf format.
pub(crate) fn wants_protobuf(accept: &str) -> bool {
    accept.contains("application/vnd.google.protobuf")
        && accept.contains("io.prometheus.client.MetricFamily")
}

impl Api {
    pub(crate) fn federate(&self, p: &Params, accept: &str) -> ApiResponse {
        let sets = match match_sets(p) {
            Ok(s) => s,
            Err(e) => return respond(Err(e)),
        };
        let now = now_ms();
        let mut series: BTreeMap<Labels, Latest> = BTreeMap::new();
        let mut run = || -> Result<(), Fail> {
            let q = self
                .storage
                .querier(now - self.cfg.lookback_delta_ms, now)?;
            let hints = SelectHints {
                start: now - self.cfg.lookback_delta_ms,
                end: now,
                ..Default::default()
            };
            for ms in &sets {
                for s in q.select(&hints, ms)? {
                    let s = s?;
                    let mut it = s.iter();
                    let mut last = None;
                    loop {
                        match it.next() {
                            ValueType::Float => {
                                let (t, v) = it.at();
                                last = Some(Latest::Float(t, v));
                            }
                            ValueType::None => break,
                            _ => {
                                last = it
                                    .at_float_histogram()
                                    .map(|(t, h)| Latest::Histogram(t, h))
                            }
                        }
                    }
                    let keep = match &last {
                        Some(Latest::Float(_, v)) => !is_stale_nan(*v),
                        Some(Latest::Histogram(_, h)) => {
                            !is_stale_nan(h.sum) && !h.uses_custom_buckets()
                        }
                        None => false,
                    };
                    if let (true, Some(l)) = (keep, last) {
                        series.insert(s.labels().clone(), l);
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            return respond(Err(e));
        }
        if wants_protobuf(accept) {
            protobuf(series)
        } else {
            text(series)
        }
    }
}

fn text(series: BTreeMap<Labels, Latest>) -> ApiResponse {
    let mut by_name: BTreeMap<String, Vec<(Labels, i64, f64)>> = BTreeMap::new();
    for (l, latest) in series {
        if let Latest::Float(t, v) = latest {
            let n = l.metric_name().unwrap_or("").to_owned();
            by_name.entry(n).or_default().push((l, t, v));
        }
    }
    let mut out = String::new();
    for (name, list) in by_name {
        out.push_str(&format!("# TYPE {name} untyped\n"));
        for (l, t, v) in list {
            out.push_str(&name);
            let rest = l.without(&["__name__"]);
            push_label_set(&mut out, rest.iter().map(|x| (x.name, x.value)));
            out.push(' ');
            // The text exposition's number format (Go's shortest `'g'`,
            // as `expfmt` writes it).
            out.push_str(&cairn_model::format_go_g(v));
            out.push(' ');
            out.push_str(&t.to_string());
            out.push('\n');
        }
    }
    ApiResponse {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: out.into_bytes(),
    }
}

fn spans(v: &[cairn_model::Span]) -> Vec<pb::BucketSpan> {
    v.iter()
        .map(|s| pb::BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn protobuf(series: BTreeMap<Labels, Latest>) -> ApiResponse {
    // Families by (name, type), in name order; floats first.
    let mut families: BTreeMap<(String, i32), Vec<pb::Metric>> = BTreeMap::new();
    for (l, latest) in series {
        let name = l.metric_name().unwrap_or("").to_owned();
        let label: Vec<pb::LabelPair> = l
            .iter()
            .filter(|x| x.name != "__name__")
            .map(|x| pb::LabelPair {
                name: x.name.to_owned(),
                value: x.value.to_owned(),
            })
            .collect();
        let (kind, metric) = match latest {
            Latest::Float(t, v) => (
                pb::MetricType::Untyped,
                pb::Metric {
                    label,
                    untyped: Some(pb::Untyped { value: v }),
                    timestamp_ms: t,
                    histogram: None,
                },
            ),
            Latest::Histogram(t, h) => (
                if h.counter_reset_hint == CounterResetHint::Gauge {
                    pb::MetricType::GaugeHistogram
                } else {
                    pb::MetricType::Histogram
                },
                pb::Metric {
                    label,
                    untyped: None,
                    timestamp_ms: t,
                    histogram: Some(pb::Histogram {
                        sample_count_float: h.count,
                        sample_sum: h.sum,
                        schema: h.schema,
                        zero_threshold: h.zero_threshold,
                        zero_count_float: h.zero_count,
                        negative_span: spans(&h.negative_spans),
                        negative_count: h.negative_buckets.clone(),
                        positive_span: spans(&h.positive_spans),
                        positive_count: h.positive_buckets.clone(),
                        ..Default::default()
                    }),
                },
            ),
        };
        families
            .entry((name, kind as i32))
            .or_default()
            .push(metric);
    }
    let mut body = Vec::new();
    for ((name, kind), metric) in families {
        let f = pb::MetricFamily {
            name,
            help: String::new(),
            r#type: kind,
            metric,
        };
        // Writing into a Vec cannot fail.
        let _ = f.encode_length_delimited(&mut body);
    }
    ApiResponse {
        status: 200,
        content_type: pb::CONTENT_TYPE,
        body,
    }
}
