//! Delta temporality into cumulative, for `--enable-feature=otlp-deltatocumulative`
//! (Prometheus's name for the same opt-in): the receiver keeps a running
//! total per stream and rewrites delta sums and explicit-bucket histograms
//! into cumulative ones before translating them.
//!
//! A stream is one series of one metric: the resource's attributes, the
//! scope, the metric's name and unit and the point's attributes (hashed).
//! Contracts:
//! - A point adds its delta to the stream's total and carries the stream's
//!   first start time; points must come in time order per stream: one not
//!   newer than the stream's last is dropped (and reported).
//! - A histogram whose bounds differ from the stream's starts the stream
//!   over (a new cumulative series from that point).
//! - Exponential histograms are not converted (they stay delta, and are
//!   refused as such).
//! - State is bounded: at most `max_streams` streams; when full, streams
//!   not written for an hour go, and a new stream beyond the bound is
//!   refused until some do. The state lives in memory only: after a
//!   restart, totals start again from zero (Prometheus's processor does
//!   the same).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use cairn_proto::otlp::{
    AggregationTemporality, ExportMetricsServiceRequest, KeyValue, MetricData, NumberValue,
};
use cairn_proto::Message;
use parking_lot::Mutex;

/// An hour, in nanoseconds: streams idle longer may be evicted.
const IDLE_NS: u64 = 3_600_000_000_000;

#[derive(Debug)]
enum Total {
    Sum(f64),
    Hist {
        bounds: Vec<u64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug)]
struct Stream {
    start: u64,
    last: u64,
    total: Total,
}

/// The running totals; see the module docs.
#[derive(Debug)]
pub struct DeltaState {
    streams: Mutex<HashMap<u64, Stream>>,
    max_streams: usize,
}

/// What converting one request dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub points: u64,
    pub messages: Vec<String>,
}

impl DeltaState {
    /// Empty state keeping at most `max_streams` streams.
    pub fn new(max_streams: usize) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            max_streams: max_streams.max(1),
        }
    }

    /// Streams held.
    pub fn len(&self) -> usize {
        self.streams.lock().len()
    }

    /// True when no stream is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rewrites `req`'s delta sums and explicit-bucket histograms as
    /// cumulative ones, dropping the points that cannot be added.
    pub fn convert(&self, req: &mut ExportMetricsServiceRequest) -> Dropped {
        let mut dropped = Dropped::default();
        let mut g = self.streams.lock();
        for rm in &mut req.resource_metrics {
            let res = rm
                .resource
                .as_ref()
                .map(|r| encode_attrs(&r.attributes))
                .unwrap_or_default();
            for sm in &mut rm.scope_metrics {
                let scope = sm
                    .scope
                    .as_ref()
                    .map(|s| format!("{}\u{1}{}", s.name, s.version))
                    .unwrap_or_default();
                for m in &mut sm.metrics {
                    let base = (&res, &scope, &m.name, &m.unit);
                    let delta = AggregationTemporality::Delta as i32;
                    match &mut m.data {
                        Some(MetricData::Sum(s)) if s.aggregation_temporality == delta => {
                            s.aggregation_temporality = AggregationTemporality::Cumulative as i32;
                            let name = m.name.clone();
                            s.data_points.retain_mut(|p| {
                                let key = stream_key(base, 's', &p.attributes);
                                let v = match p.value {
                                    Some(NumberValue::AsDouble(x)) => x,
                                    Some(NumberValue::AsInt(x)) => x as f64,
                                    None => 0.0,
                                };
                                let t = p.time_unix_nano;
                                let start = p.start_time_unix_nano;
                                match self.add(
                                    &mut g,
                                    key,
                                    t,
                                    start,
                                    |tot| match tot {
                                        Some(Total::Sum(x)) => Some(Total::Sum(*x + v)),
                                        _ => None,
                                    },
                                    || Total::Sum(v),
                                ) {
                                    Ok((st, Total::Sum(x))) => {
                                        p.value = Some(NumberValue::AsDouble(*x));
                                        p.start_time_unix_nano = st;
                                        true
                                    }
                                    Ok(_) => true,
                                    Err(why) => {
                                        dropped.note(&name, why);
                                        false
                                    }
                                }
                            });
                        }
                        Some(MetricData::Histogram(h)) if h.aggregation_temporality == delta => {
                            h.aggregation_temporality = AggregationTemporality::Cumulative as i32;
                            let name = m.name.clone();
                            h.data_points.retain_mut(|p| {
                                let key = stream_key(base, 'h', &p.attributes);
                                let bounds: Vec<u64> =
                                    p.explicit_bounds.iter().map(|b| b.to_bits()).collect();
                                let (counts, count, sum) =
                                    (p.bucket_counts.clone(), p.count, p.sum.unwrap_or(0.0));
                                let fresh = || Total::Hist {
                                    bounds: bounds.clone(),
                                    counts: counts.clone(),
                                    count,
                                    sum,
                                };
                                let add = |tot: &Total| match tot {
                                    Total::Hist {
                                        bounds: b,
                                        counts: c,
                                        count: n,
                                        sum: s,
                                    } if *b == bounds && c.len() == counts.len() => {
                                        Some(Total::Hist {
                                            bounds: b.clone(),
                                            counts: c
                                                .iter()
                                                .zip(&counts)
                                                .map(|(a, d)| a.saturating_add(*d))
                                                .collect(),
                                            count: n.saturating_add(count),
                                            sum: s + sum,
                                        })
                                    }
                                    _ => None,
                                };
                                let t = p.time_unix_nano;
                                let start = p.start_time_unix_nano;
                                match self.add(
                                    &mut g,
                                    key,
                                    t,
                                    start,
                                    |tot| tot.and_then(add),
                                    fresh,
                                ) {
                                    Ok((
                                        st,
                                        Total::Hist {
                                            counts, count, sum, ..
                                        },
                                    )) => {
                                        p.bucket_counts = counts.clone();
                                        p.count = *count;
                                        if p.sum.is_some() {
                                            p.sum = Some(*sum);
                                        }
                                        p.start_time_unix_nano = st;
                                        true
                                    }
                                    Ok(_) => true,
                                    Err(why) => {
                                        dropped.note(&name, why);
                                        false
                                    }
                                }
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        dropped
    }

    /// Adds a point at `t` to stream `key`: `add` combines it with the
    /// stream's total (`None`: start the stream over with `fresh`).
    /// Returns the stream's start and new total.
    fn add<'a>(
        &self,
        g: &'a mut HashMap<u64, Stream>,
        key: u64,
        t: u64,
        start: u64,
        add: impl FnOnce(Option<&Total>) -> Option<Total>,
        fresh: impl FnOnce() -> Total,
    ) -> Result<(u64, &'a Total), &'static str> {
        if !g.contains_key(&key) && g.len() >= self.max_streams {
            g.retain(|_, s| s.last.saturating_add(IDLE_NS) >= t);
            if g.len() >= self.max_streams {
                return Err("too many delta streams to convert");
            }
        }
        let first = if start == 0 { t } else { start };
        let s = match g.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Stream {
                start: first,
                last: t,
                total: fresh(),
            }),
            std::collections::hash_map::Entry::Occupied(e) => {
                let s = e.into_mut();
                if t <= s.last {
                    return Err("a delta point not newer than its stream's last");
                }
                match add(Some(&s.total)) {
                    Some(tot) => s.total = tot,
                    None => {
                        s.total = fresh();
                        s.start = first;
                    }
                }
                s.last = t;
                s
            }
        };
        Ok((s.start, &s.total))
    }
}

impl Dropped {
    fn note(&mut self, metric: &str, why: &str) {
        self.points += 1;
        if self.messages.len() < 10 {
            self.messages
                .push(format!("metric {metric:?}: {why}: dropped"));
        }
    }
}

fn encode_attrs(attrs: &[KeyValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for kv in attrs {
        kv.encode_length_delimited(&mut out).unwrap_or(());
    }
    out
}

fn stream_key(
    (res, scope, name, unit): (&Vec<u8>, &String, &String, &String),
    kind: char,
    attrs: &[KeyValue],
) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (res, scope, name, unit, kind).hash(&mut h);
    encode_attrs(attrs).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use cairn_proto::otlp::*;

    fn sum_req(points: &[(u64, u64, i64)]) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "events".into(),
                        data: Some(MetricData::Sum(Sum {
                            data_points: points
                                .iter()
                                .map(|&(start, t, v)| NumberDataPoint {
                                    start_time_unix_nano: start,
                                    time_unix_nano: t,
                                    value: Some(NumberValue::AsInt(v)),
                                    ..Default::default()
                                })
                                .collect(),
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn sums(r: &ExportMetricsServiceRequest) -> Vec<(u64, u64, f64)> {
        let Some(MetricData::Sum(s)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!()
        };
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        s.data_points
            .iter()
            .map(|p| match p.value {
                Some(NumberValue::AsDouble(x)) => (p.start_time_unix_nano, p.time_unix_nano, x),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn delta_sums_become_running_totals_across_requests() {
        let st = DeltaState::new(10);
        let mut a = sum_req(&[(0, 10, 3), (10, 20, 2)]);
        assert_eq!(st.convert(&mut a), Dropped::default());
        // An unknown start (0) becomes the first point's time.
        assert_eq!(sums(&a), vec![(10, 10, 3.0), (10, 20, 5.0)]);
        let mut b = sum_req(&[(20, 30, 4), (25, 25, 9)]);
        let d = st.convert(&mut b);
        assert_eq!(d.points, 1, "the point older than the stream's last");
        assert_eq!(sums(&b), vec![(10, 30, 9.0)]);
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn histograms_add_per_bucket_and_restart_on_new_bounds() {
        let st = DeltaState::new(10);
        let req = |t: u64, bounds: Vec<f64>, counts: Vec<u64>| ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "lat".into(),
                        data: Some(MetricData::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: t,
                                start_time_unix_nano: t - 10,
                                count: counts.iter().sum(),
                                sum: Some(1.0),
                                bucket_counts: counts,
                                explicit_bounds: bounds,
                                ..Default::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let point = |r: &ExportMetricsServiceRequest| {
            let Some(MetricData::Histogram(h)) =
                &r.resource_metrics[0].scope_metrics[0].metrics[0].data
            else {
                panic!()
            };
            let p = &h.data_points[0];
            (
                p.start_time_unix_nano,
                p.bucket_counts.clone(),
                p.count,
                p.sum,
            )
        };
        let mut a = req(20, vec![1.0], vec![1, 2]);
        st.convert(&mut a);
        let mut b = req(30, vec![1.0], vec![3, 0]);
        st.convert(&mut b);
        assert_eq!(point(&b), (10, vec![4, 2], 6, Some(2.0)));
        let mut c = req(40, vec![2.0], vec![1, 1]);
        st.convert(&mut c);
        assert_eq!(
            point(&c),
            (30, vec![1, 1], 2, Some(1.0)),
            "new bounds: a new start"
        );
    }

    #[test]
    fn the_stream_bound_is_kept() {
        let st = DeltaState::new(2);
        for (i, t) in [(1, 10u64), (2, 10), (3, 10)] {
            let mut r = sum_req(&[(0, t, 1)]);
            if let Some(MetricData::Sum(s)) =
                &mut r.resource_metrics[0].scope_metrics[0].metrics[0].data
            {
                s.data_points[0].attributes = vec![KeyValue {
                    key: "i".into(),
                    value: Some(AnyValue {
                        value: Some(Value::IntValue(i)),
                    }),
                }];
            }
            let d = st.convert(&mut r);
            assert_eq!(d.points, u64::from(i == 3), "stream {i}");
        }
        assert_eq!(st.len(), 2);
    }
}
