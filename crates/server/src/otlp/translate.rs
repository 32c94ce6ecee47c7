//! OTLP metrics into Prometheus series, as Prometheus's OTLP receiver
//! turns them by default, appended through one [`Appender`].
//!
//! Per resource: `job` is `service.namespace/service.name` (or the name
//! alone), `instance` is `service.instance.id`; the other resource
//! attributes go to one `target_info` series (value 1, a sample every 150 s
//! from the resource's earliest to its latest point, at most an hour back,
//! and one at the latest), not onto every series. Per point: the attributes become labels
//! (names as `names` makes them; two attributes that make the same name
//! are joined with `;` in key order), the resource's `job` and `instance`
//! win over attributes of those names.
//!
//! - gauges, and sums that are not monotonic, become gauges; monotonic
//!   cumulative sums become counters (`_total`);
//! - explicit-bucket histograms become `_bucket{le}` (cumulative counts,
//!   `+Inf` = the count), `_sum` (when sent) and `_count`;
//! - summaries become `{quantile}`, `_sum` and `_count`;
//! - exponential histograms become native histograms (see `exponential`);
//! - a point flagged "no recorded value" is a stale marker;
//! - delta sums and histograms (exponential ones too) are refused, and the
//!   request answered 400 (after everything else in it is stored), unless
//!   `delta` converted them before; points whose names normalise to
//!   nothing and exponential histograms of scale below -4 are rejected and
//!   reported in the response's partial success; everything else in the
//!   request is stored.
//!
//! Exemplars go with their point (to the first bucket whose bound holds
//! the value, for histograms), with `trace_id` and `span_id` in hex. With
//! `ServerConfig::ingest_start_zero`, a cumulative point's start time goes
//! in as a zero sample first (see `Appender::append_start_zero`).

use std::collections::BTreeMap;

use cairn_model::{format_go_f, Exemplar, Labels, METRIC_NAME, STALE_NAN};
use cairn_proto::otlp::{
    self, AggregationTemporality, AnyValue, ExemplarValue, ExportMetricsServiceRequest, KeyValue,
    MetricData, NumberValue, Value, FLAG_NO_RECORDED_VALUE,
};
use cairn_storage::{Appender, Metadata, MetricType, SeriesRef, StorageError};

use super::names::{self, Kind};
use crate::{ServerConfig, ServerError};

/// Interval of `target_info` samples: half of the default lookback delta.
const TARGET_INFO_EVERY_MS: i64 = 150_000;
/// Most `target_info` samples before the latest one: a request whose
/// points span more than this many intervals (an hour) gets `target_info`
/// over its last hour only, so that far-apart timestamps cannot make it
/// write millions of samples.
const TARGET_INFO_MAX_STEPS: i64 = 24;

/// What one request stored and rejected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OtlpOutcome {
    pub samples_written: u64,
    pub exemplars_written: u64,
    /// Data points rejected (each counted once, whatever series it makes).
    pub rejected_points: u64,
    /// The first few reasons, for the partial-success message.
    pub messages: Vec<String>,
    /// Delta points were refused (conversion is off): the answer is a 400.
    pub delta_refused: bool,
}

impl OtlpOutcome {
    fn reject(&mut self, cfg: &ServerConfig, n: u64, msg: impl FnOnce() -> String) {
        self.rejected_points += n;
        if self.messages.len() < cfg.max_error_messages {
            self.messages.push(msg());
        }
    }
}

fn ms(nanos: u64) -> i64 {
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// An attribute value as a label value: strings as they are, the rest as
/// OpenTelemetry's `AsString` writes them (numbers as JavaScript prints
/// them, lists and maps as JSON, bytes as base64).
fn value_string(v: Option<&AnyValue>) -> String {
    let mut s = String::new();
    push_value(&mut s, v.and_then(|a| a.value.as_ref()), false);
    s
}

fn push_value(s: &mut String, v: Option<&Value>, json: bool) {
    match v {
        None => {
            if json {
                s.push_str("null");
            }
        }
        Some(Value::StringValue(x)) => {
            if json {
                push_json_str(s, x);
            } else {
                s.push_str(x);
            }
        }
        Some(Value::BoolValue(b)) => s.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => s.push_str(&i.to_string()),
        Some(Value::DoubleValue(f)) => {
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                s.push_str(&format!("{f:e}"));
            } else {
                s.push_str(&format_go_f(*f));
            }
        }
        Some(Value::BytesValue(b)) => {
            if json {
                s.push('"');
            }
            push_base64(s, b);
            if json {
                s.push('"');
            }
        }
        Some(Value::ArrayValue(a)) => {
            s.push('[');
            for (i, x) in a.values.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                push_value(s, x.value.as_ref(), true);
            }
            s.push(']');
        }
        Some(Value::KvlistValue(kv)) => {
            s.push('{');
            for (i, x) in kv.values.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                push_json_str(s, &x.key);
                s.push(':');
                push_value(s, x.value.as_ref().and_then(|a| a.value.as_ref()), true);
            }
            s.push('}');
        }
    }
}

fn push_json_str(s: &mut String, x: &str) {
    s.push('"');
    for c in x.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
}

fn push_base64(s: &mut String, b: &[u8]) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= c.len() {
                let k = ((n >> (18 - 6 * i)) & 63) as usize;
                s.push(char::from(A.get(k).copied().unwrap_or(b'A')));
            } else {
                s.push('=');
            }
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// A resource's `job` and `instance`.
fn identity(res: &[KeyValue]) -> (Option<String>, Option<String>) {
    let name = attr(res, SERVICE_NAME).map(|kv| value_string(kv.value.as_ref()));
    let ns = attr(res, SERVICE_NAMESPACE).map(|kv| value_string(kv.value.as_ref()));
    let job = match (ns, name) {
        (Some(ns), Some(n)) if !ns.is_empty() => Some(format!("{ns}/{n}")),
        (_, n) => n,
    };
    let instance = attr(res, SERVICE_INSTANCE_ID).map(|kv| value_string(kv.value.as_ref()));
    (job, instance)
}

/// Label pairs of `attrs` (normalised names, colliding ones joined),
/// then `job`/`instance` over them.
fn base_labels(
    attrs: &[KeyValue],
    job: Option<&str>,
    instance: Option<&str>,
) -> BTreeMap<String, String> {
    let mut by_key: Vec<&KeyValue> = attrs.iter().collect();
    by_key.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for kv in by_key {
        let Some(name) = names::label_name(&kv.key) else {
            continue;
        };
        let v = value_string(kv.value.as_ref());
        out.entry(name)
            .and_modify(|old| {
                old.push(';');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    if let Some(j) = job {
        out.insert("job".to_owned(), j.to_owned());
    }
    if let Some(i) = instance {
        out.insert("instance".to_owned(), i.to_owned());
    }
    out
}

fn labels_with(base: &BTreeMap<String, String>, name: &str, extra: Option<(&str, &str)>) -> Labels {
    let mut pairs: Vec<(&str, &str)> = base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push((METRIC_NAME, name));
    if let Some(e) = extra {
        pairs.push(e);
    }
    Labels::from_pairs(pairs)
}

fn exemplar(e: &otlp::Exemplar) -> Exemplar {
    let mut pairs: Vec<(String, String)> = e
        .filtered_attributes
        .iter()
        .filter_map(|kv| Some((names::label_name(&kv.key)?, value_string(kv.value.as_ref()))))
        .collect();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if !e.trace_id.is_empty() {
        pairs.push(("trace_id".to_owned(), hex(&e.trace_id)));
    }
    if !e.span_id.is_empty() {
        pairs.push(("span_id".to_owned(), hex(&e.span_id)));
    }
    Exemplar {
        labels: Labels::from_pairs(pairs),
        value: match e.value {
            Some(ExemplarValue::AsDouble(v)) => v,
            Some(ExemplarValue::AsInt(i)) => i as f64,
            None => 0.0,
        },
        ts: ms(e.time_unix_nano),
    }
}

/// Appends through `app`, tracking the outcome.
struct Writer<'a> {
    app: &'a mut dyn Appender,
    cfg: &'a ServerConfig,
    max_t: i64,
    out: OtlpOutcome,
}

impl Writer<'_> {
    /// One sample (and its start zero); client errors reject the point
    /// (`Ok(None)`), others fail the request.
    fn sample(
        &mut self,
        labels: &Labels,
        t: i64,
        v: f64,
        start: Option<i64>,
    ) -> Result<Option<SeriesRef>, ServerError> {
        if let Err(msg) = label_limits(labels, self.cfg) {
            self.out.reject(self.cfg, 1, || msg);
            return Ok(None);
        }
        if t > self.max_t.saturating_add(self.cfg.max_future_ms) {
            self.out.reject(self.cfg, 1, || {
                format!("{labels}: sample at {t} is too far in the future")
            });
            return Ok(None);
        }
        let mut r = 0;
        if let (true, Some(st)) = (self.cfg.ingest_start_zero, start) {
            if let Ok(x) = self.app.append_start_zero(0, labels, t, st) {
                r = x;
            }
        }
        match self.app.append(r, labels, t, v) {
            Ok(r) => {
                self.out.samples_written += 1;
                Ok(Some(r))
            }
            Err(e) if e.is_client_error() => {
                self.out.reject(self.cfg, 1, || format!("{labels}: {e}"));
                Ok(None)
            }
            Err(e) => Err(ServerError::Storage(e)),
        }
    }

    /// Appends one native histogram sample; refusals as for [`Self::sample`].
    fn histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &cairn_model::Histogram,
    ) -> Result<Option<SeriesRef>, ServerError> {
        if let Err(msg) = label_limits(labels, self.cfg) {
            self.out.reject(self.cfg, 1, || msg);
            return Ok(None);
        }
        if t > self.max_t.saturating_add(self.cfg.max_future_ms) {
            self.out.reject(self.cfg, 1, || {
                format!("{labels}: sample at {t} is too far in the future")
            });
            return Ok(None);
        }
        match self.app.append_histogram(0, labels, t, h) {
            Ok(r) => {
                self.out.samples_written += 1;
                Ok(Some(r))
            }
            Err(e) if e.is_client_error() || matches!(e, StorageError::HistogramsUnsupported) => {
                self.out.reject(self.cfg, 1, || format!("{labels}: {e}"));
                Ok(None)
            }
            Err(e) => Err(ServerError::Storage(e)),
        }
    }

    fn exemplars(&mut self, r: Option<SeriesRef>, labels: &Labels, es: &[otlp::Exemplar]) {
        let Some(r) = r else { return };
        for e in es {
            match self.app.append_exemplar(r, labels, &exemplar(e)) {
                Ok(_) => self.out.exemplars_written += 1,
                Err(err) => {
                    tracing::debug!(series = %labels, error = %err, "OTLP exemplar not stored")
                }
            }
        }
    }

    fn metadata(&mut self, family: &str, kind: MetricType, m: &otlp::Metric) {
        let meta = Metadata {
            kind,
            unit: names::unit(&m.unit),
            help: m.description.clone(),
        };
        let l = Labels::from_pairs([(METRIC_NAME, family)]);
        if let Err(e) = self.app.update_metadata(0, &l, &meta) {
            tracing::debug!(metric = family, error = %e, "OTLP metadata not stored");
        }
    }
}

/// The remote-write receiver's label limits, applied to a translated
/// series (the same check and messages as remote write's).
fn label_limits(l: &Labels, cfg: &ServerConfig) -> Result<(), String> {
    let pairs = l.iter().map(|p| (p.name.as_bytes(), p.value.as_bytes()));
    crate::write::labels::check_limits(l.len(), pairs, cfg).map_err(|(_, msg)| msg)
}

fn value_of(p: &otlp::NumberDataPoint) -> f64 {
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return STALE_NAN;
    }
    match p.value {
        Some(NumberValue::AsDouble(v)) => v,
        Some(NumberValue::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

fn start_of(nanos: u64) -> Option<i64> {
    (nanos != 0).then(|| ms(nanos))
}

/// Translates and appends `req`; see the module docs.
pub(crate) fn ingest(
    req: &ExportMetricsServiceRequest,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
) -> Result<OtlpOutcome, ServerError> {
    let mut w = Writer {
        app,
        cfg,
        max_t,
        out: OtlpOutcome::default(),
    };
    for rm in &req.resource_metrics {
        let res: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let (job, instance) = identity(res);
        let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let span = metric(&mut w, m, job.as_deref(), instance.as_deref())?;
                if let Some((a, b)) = span {
                    earliest = earliest.min(a);
                    latest = latest.max(b);
                }
            }
        }
        target_info(
            &mut w,
            res,
            job.as_deref(),
            instance.as_deref(),
            earliest,
            latest,
        )?;
    }
    Ok(w.out)
}

/// `target_info` of a resource whose points span `[earliest, latest]`.
fn target_info(
    w: &mut Writer<'_>,
    res: &[KeyValue],
    job: Option<&str>,
    instance: Option<&str>,
    earliest: i64,
    latest: i64,
) -> Result<(), ServerError> {
    if earliest > latest {
        return Ok(());
    }
    let rest: Vec<KeyValue> = res
        .iter()
        .filter(|kv| {
            ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID].contains(&kv.key.as_str())
        })
        .cloned()
        .collect();
    let base = base_labels(&rest, job, instance);
    // Only job and instance: nothing to say.
    if base.keys().all(|k| k == "job" || k == "instance") {
        return Ok(());
    }
    let l = labels_with(&base, "target_info", None);
    let mut t = earliest.max(latest.saturating_sub(TARGET_INFO_MAX_STEPS * TARGET_INFO_EVERY_MS));
    while t < latest {
        w.sample(&l, t, 1.0, None)?;
        t = t.saturating_add(TARGET_INFO_EVERY_MS);
    }
    w.sample(&l, latest, 1.0, None)?;
    Ok(())
}

/// Appends one metric; returns the time span of its points.
fn metric(
    w: &mut Writer<'_>,
    m: &otlp::Metric,
    job: Option<&str>,
    instance: Option<&str>,
) -> Result<Option<(i64, i64)>, ServerError> {
    let cfg = w.cfg;
    let mut span: Option<(i64, i64)> = None;
    let mut seen = |t: i64| {
        span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    };
    let Some(data) = &m.data else {
        return Ok(None);
    };
    let kind = match data {
        MetricData::Gauge(_) => Kind::Gauge,
        MetricData::Sum(s) if s.is_monotonic => Kind::MonotonicCounter,
        MetricData::Sum(_) => Kind::NonMonotonicCounter,
        MetricData::Histogram(_) | MetricData::ExponentialHistogram(_) => Kind::Histogram,
        MetricData::Summary(_) => Kind::Summary,
    };
    let points = match data {
        MetricData::Gauge(g) => g.data_points.len(),
        MetricData::Sum(s) => s.data_points.len(),
        MetricData::Histogram(h) => h.data_points.len(),
        MetricData::ExponentialHistogram(h) => h.data_points.len(),
        MetricData::Summary(s) => s.data_points.len(),
    } as u64;
    let Some(name) = names::metric_name(&m.name, &m.unit, kind) else {
        w.out.reject(cfg, points, || {
            format!("metric {:?}: its name normalises to nothing", m.name)
        });
        return Ok(None);
    };
    let cumulative = |t: i32| t == AggregationTemporality::Cumulative as i32;
    match data {
        MetricData::Gauge(g) => {
            w.metadata(&name, MetricType::Gauge, m);
            for p in &g.data_points {
                let l = labels_with(&base_labels(&p.attributes, job, instance), &name, None);
                let t = ms(p.time_unix_nano);
                let r = w.sample(&l, t, value_of(p), None)?;
                w.exemplars(r, &l, &p.exemplars);
                seen(t);
            }
        }
        MetricData::Sum(s) => {
            if s.is_monotonic && !cumulative(s.aggregation_temporality) {
                w.out.reject(cfg, points, || {
                    format!("metric {:?}: delta or unspecified temporality is not supported for monotonic sums (--enable-feature=otlp-deltatocumulative converts delta ones)", m.name)
                });
                w.out.delta_refused = true;
                return Ok(None);
            }
            let kind = if s.is_monotonic {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            w.metadata(&name, kind, m);
            for p in &s.data_points {
                let l = labels_with(&base_labels(&p.attributes, job, instance), &name, None);
                let t = ms(p.time_unix_nano);
                let start = s
                    .is_monotonic
                    .then(|| start_of(p.start_time_unix_nano))
                    .flatten();
                let r = w.sample(&l, t, value_of(p), start)?;
                w.exemplars(r, &l, &p.exemplars);
                seen(t);
            }
        }
        MetricData::Histogram(h) => {
            if !cumulative(h.aggregation_temporality) {
                w.out.reject(cfg, points, || {
                    format!("metric {:?}: delta or unspecified temporality is not supported for histograms (--enable-feature=otlp-deltatocumulative converts delta ones)", m.name)
                });
                w.out.delta_refused = true;
                return Ok(None);
            }
            w.metadata(&name, MetricType::Histogram, m);
            for p in &h.data_points {
                let base = base_labels(&p.attributes, job, instance);
                let t = ms(p.time_unix_nano);
                let start = start_of(p.start_time_unix_nano);
                histogram_point(w, &base, &name, p, t, start)?;
                seen(t);
            }
        }
        MetricData::Summary(s) => {
            w.metadata(&name, MetricType::Summary, m);
            for p in &s.data_points {
                let base = base_labels(&p.attributes, job, instance);
                let t = ms(p.time_unix_nano);
                let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
                let v = |x: f64| if stale { STALE_NAN } else { x };
                let start = start_of(p.start_time_unix_nano);
                for q in &p.quantile_values {
                    let qs = format_go_f(q.quantile);
                    let l = labels_with(&base, &name, Some(("quantile", &qs)));
                    w.sample(&l, t, v(q.value), None)?;
                }
                let l = labels_with(&base, &format!("{name}_sum"), None);
                w.sample(&l, t, v(p.sum), start)?;
                let l = labels_with(&base, &format!("{name}_count"), None);
                w.sample(&l, t, v(p.count as f64), start)?;
                seen(t);
            }
        }
        MetricData::ExponentialHistogram(h) => {
            if !cumulative(h.aggregation_temporality) {
                w.out.reject(cfg, points, || {
                    format!("metric {:?}: delta or unspecified temporality is not supported for exponential histograms", m.name)
                });
                w.out.delta_refused = true;
                return Ok(None);
            }
            w.metadata(&name, MetricType::Histogram, m);
            for p in &h.data_points {
                let l = labels_with(&base_labels(&p.attributes, job, instance), &name, None);
                let t = ms(p.time_unix_nano);
                match super::exponential::to_native(p) {
                    Ok(nh) => {
                        let r = w.histogram(&l, t, &nh)?;
                        w.exemplars(r, &l, &p.exemplars);
                    }
                    Err(msg) => w.out.reject(cfg, 1, || format!("{l}: {msg}")),
                }
                seen(t);
            }
        }
    }
    Ok(span)
}

fn histogram_point(
    w: &mut Writer<'_>,
    base: &BTreeMap<String, String>,
    name: &str,
    p: &otlp::HistogramDataPoint,
    t: i64,
    start: Option<i64>,
) -> Result<(), ServerError> {
    let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
    let v = |x: f64| if stale { STALE_NAN } else { x };
    let bucket = format!("{name}_bucket");
    // Exemplars go to the first bucket whose bound holds them.
    let mut pending: Vec<(f64, &otlp::Exemplar)> =
        p.exemplars.iter().map(|e| (exemplar(e).value, e)).collect();
    let mut cum = 0u64;
    for (i, bound) in p.explicit_bounds.iter().enumerate() {
        cum = cum.saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
        let le = format_go_f(*bound);
        let l = labels_with(base, &bucket, Some(("le", &le)));
        let r = w.sample(&l, t, v(cum as f64), start)?;
        let (here, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(x, _)| x <= bound);
        pending = rest;
        let here: Vec<otlp::Exemplar> = here.into_iter().map(|(_, e)| e.clone()).collect();
        w.exemplars(r, &l, &here);
    }
    let l = labels_with(base, &bucket, Some(("le", "+Inf")));
    let r = w.sample(&l, t, v(p.count as f64), start)?;
    let rest: Vec<otlp::Exemplar> = pending.into_iter().map(|(_, e)| e.clone()).collect();
    w.exemplars(r, &l, &rest);
    if let Some(sum) = p.sum {
        let l = labels_with(base, &format!("{name}_sum"), None);
        w.sample(&l, t, v(sum), start)?;
    }
    let l = labels_with(base, &format!("{name}_count"), None);
    w.sample(&l, t, v(p.count as f64), start)?;
    Ok(())
}
