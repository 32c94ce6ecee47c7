//! Evaluating one group at one time: recording rules write their results,
//! alerting rules move their alerts through Prometheus's states and write
//! `ALERTS` and `ALERTS_FOR_STATE`. Pure with respect to time: the caller
//! says when (`ts`), so tests drive it step by step.
//!
//! Contracts (Prometheus's, `rules/alerting.go` and `rules/recording.go`):
//! - A group's rules run in order at the same `ts`; their output is
//!   appended in one commit, stamped `ts`. Queries run at `ts -
//!   query_offset`.
//! - A series a rule wrote at the previous evaluation and not at this one
//!   gets a stale marker at `ts`, so it ends at once in queries.
//! - Alerts: a result sample makes (or keeps) an alert `pending`; after
//!   `for` it is `firing` (at once with `for: 0`). Without a result a
//!   pending alert is dropped and a firing one is resolved, unless
//!   `keep_firing_for` keeps it firing that much longer. Resolved alerts
//!   are kept 15 minutes so that their resolution reaches Alertmanager.
//! - `ALERTS{alertname, alertstate, <labels>} 1` per active alert and
//!   `ALERTS_FOR_STATE{alertname, <labels>}` = the time it became active
//!   (seconds) for rules with `for`, which is what a restart restores from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use cairn_model::{Labels, STALE_NAN};
use cairn_promql::{Engine, QueryValue, SampleValue};
use cairn_storage::{Appendable, Queryable};

use crate::file::{GroupSpec, RuleKind, RuleSpec};
use crate::template::Data;

/// How long a resolved alert is kept for notification.
pub const RESOLVED_RETENTION: i64 = 15 * 60_000;

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Final labels: the sample's (without `__name__`), the rule's, `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    /// When the condition was last seen gone while `keep_firing_for` held it.
    pub keep_firing_since: Option<i64>,
}

/// A rule's health after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule and what its evaluations left.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub spec: RuleSpec,
    pub health: Health,
    pub last_error: String,
    pub last_eval: Option<i64>,
    pub eval_seconds: f64,
    /// Series written at the last evaluation (for stale markers).
    written: HashSet<Labels>,
    /// Active and recently resolved alerts, by labels.
    pub alerts: BTreeMap<Labels, Alert>,
    /// Whether `for` state was restored (first evaluation after start).
    restored: bool,
}

impl RuleState {
    pub fn new(spec: RuleSpec) -> Self {
        Self {
            spec,
            health: Health::Unknown,
            last_error: String::new(),
            last_eval: None,
            eval_seconds: 0.0,
            written: HashSet::new(),
            alerts: BTreeMap::new(),
            restored: false,
        }
    }

    /// Takes over the state of `old` (same rule after a reload): alerts,
    /// health and written series.
    pub fn inherit(&mut self, old: RuleState) {
        self.health = old.health;
        self.last_error = old.last_error;
        self.last_eval = old.last_eval;
        self.eval_seconds = old.eval_seconds;
        self.written = old.written;
        self.alerts = old.alerts;
        self.restored = old.restored;
    }
}

/// A group with its rules' state.
#[derive(Debug, Clone)]
pub struct Group {
    pub spec: GroupSpec,
    pub rules: Vec<RuleState>,
    pub last_eval: Option<i64>,
    pub eval_seconds: f64,
}

/// What evaluating needs besides the group.
pub struct Context<'a> {
    pub engine: &'a Engine,
    pub store: &'a dyn Queryable,
    pub app: &'a dyn Appendable,
    /// Restore `for` state from `ALERTS_FOR_STATE` samples no older than this (ms).
    pub outage_tolerance: i64,
    /// A restored alert that would fire within this (ms) of the restart
    /// fires only after it.
    pub grace_period: i64,
    /// Alerts are re-sent this often while firing (ms).
    pub resend_delay: i64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// An alert to send to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    /// The resolution time, or how long a firing alert is valid.
    pub ends_at: i64,
    pub generator_url: String,
}

impl Group {
    pub fn new(spec: GroupSpec) -> Self {
        let rules = spec.rules.iter().cloned().map(RuleState::new).collect();
        Self {
            spec,
            rules,
            last_eval: None,
            eval_seconds: 0.0,
        }
    }

    /// Evaluates every rule at `ts` and appends the output; returns the
    /// alerts due for sending.
    pub fn eval(&mut self, ts: i64, cx: &Context<'_>) -> Vec<Notification> {
        let start = Instant::now();
        let qt = ts - self.spec.query_offset;
        let mut out: Vec<(Labels, SampleValue)> = Vec::new();
        let mut notes = Vec::new();
        let interval = self.spec.interval;
        let limit = self.spec.limit;
        for r in &mut self.rules {
            let t0 = Instant::now();
            let res = match &r.spec.kind {
                RuleKind::Recording { record } => {
                    let record = record.clone();
                    eval_recording(r, &record, qt, limit, cx)
                }
                RuleKind::Alerting { .. } => eval_alerting(r, ts, qt, limit, cx),
            };
            let produced = match res {
                Ok(series) => {
                    r.health = Health::Ok;
                    r.last_error.clear();
                    series
                }
                Err(e) => {
                    tracing::warn!(group = %self.spec.name, rule = %r.spec.name(), error = %e, "rule evaluation failed");
                    r.health = Health::Err;
                    r.last_error = e;
                    Vec::new()
                }
            };
            // Stale markers for what this rule wrote last time and not now.
            let now: HashSet<Labels> = produced.iter().map(|s| s.0.clone()).collect();
            for gone in r.written.difference(&now) {
                out.push((gone.clone(), SampleValue::Float(STALE_NAN)));
            }
            r.written = now;
            out.extend(produced);
            if matches!(r.spec.kind, RuleKind::Alerting { .. }) {
                notes.extend(due(r, ts, interval, cx));
            }
            r.last_eval = Some(ts);
            r.eval_seconds = t0.elapsed().as_secs_f64();
        }
        append(cx.app, &out, ts, &self.spec.name);
        self.last_eval = Some(ts);
        self.eval_seconds = start.elapsed().as_secs_f64();
        notes
    }
}

fn append(app: &dyn Appendable, out: &[(Labels, SampleValue)], ts: i64, group: &str) {
    if out.is_empty() {
        return;
    }
    let mut a = app.appender();
    let mut refused = 0usize;
    for (l, v) in out {
        let r = match v {
            SampleValue::Float(f) => a.append(0, l, ts, *f),
            SampleValue::Histogram(h) => a.append_float_histogram(0, l, ts, h),
        };
        match r {
            Ok(_) => {}
            // Out of order or duplicates (a restart re-evaluating a time
            // already written): Prometheus ignores them too.
            Err(e) if e.is_client_error() => refused += 1,
            Err(e) => {
                tracing::warn!(group, error = %e, "appending rule results failed");
                let _ = a.rollback();
                return;
            }
        }
    }
    if let Err(e) = a.commit() {
        tracing::warn!(group, error = %e, "committing rule results failed");
    }
    if refused > 0 {
        tracing::debug!(group, refused, "rule results refused by the storage");
    }
}

/// The expression's instant vector at `t` (a scalar becomes one sample
/// without labels, as Prometheus's rule query function makes it).
fn query(cx: &Context<'_>, expr: &str, t: i64) -> Result<Vec<(Labels, SampleValue)>, String> {
    let r = cx
        .engine
        .instant_query(cx.store, expr, t)
        .map_err(|e| e.to_string())?;
    match r.value {
        QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.metric, s.value)).collect()),
        QueryValue::Scalar { v, .. } => Ok(vec![(Labels::default(), SampleValue::Float(v))]),
        other => Err(format!(
            "rule result is a {}, not an instant vector or scalar",
            other.type_name()
        )),
    }
}

fn eval_recording(
    r: &mut RuleState,
    record: &str,
    t: i64,
    limit: usize,
    cx: &Context<'_>,
) -> Result<Vec<(Labels, SampleValue)>, String> {
    let v = query(cx, &r.spec.expr, t)?;
    let mut seen = HashSet::with_capacity(v.len());
    let mut out = Vec::with_capacity(v.len());
    for (l, f) in v {
        let mut b = l.builder();
        b.set("__name__", record);
        for (k, tpl) in &r.spec.labels {
            // Recording rule labels are plain text (checked at load).
            b.set(k, &tpl.expand(&Data::default())?);
        }
        let l = b.build();
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, f));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn eval_alerting(
    r: &mut RuleState,
    ts: i64,
    t: i64,
    limit: usize,
    cx: &Context<'_>,
) -> Result<Vec<(Labels, SampleValue)>, String> {
    let RuleKind::Alerting {
        alert,
        hold,
        keep_firing_for,
        annotations,
        ..
    } = &r.spec.kind
    else {
        return Ok(Vec::new());
    };
    let (alert, hold, keep_firing_for) = (alert.clone(), *hold, *keep_firing_for);
    let annotations = annotations.clone();
    let v = query(cx, &r.spec.expr, t)?;
    let mut now: HashMap<Labels, (f64, BTreeMap<String, String>)> = HashMap::new();
    for (l, v) in v {
        // A histogram result's value is 0, as Prometheus's alert value is
        // the sample's float.
        let f = match v {
            SampleValue::Float(f) => f,
            SampleValue::Histogram(_) => 0.0,
        };
        let sample: BTreeMap<String, String> = l
            .iter()
            .filter(|x| x.name != "__name__")
            .map(|x| (x.name.to_owned(), x.value.to_owned()))
            .collect();
        let data = Data {
            labels: sample.clone(),
            value: f,
            external_labels: cx.external_labels.clone(),
            external_url: cx.external_url.clone(),
        };
        let mut b = l.builder();
        b.del("__name__");
        for (k, tpl) in &r.spec.labels {
            b.set(k, &tpl.expand(&data)?);
        }
        b.set("alertname", &alert);
        let labels = b.build();
        let mut ann = BTreeMap::new();
        for (k, tpl) in &annotations {
            ann.insert(k.clone(), tpl.expand(&data)?);
        }
        if now.insert(labels, (f, ann)).is_some() {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
    }
    if limit > 0 && now.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} alerts",
            now.len()
        ));
    }
    let restore = hold > 0 && !r.restored;
    let restored = if restore {
        restore_active_at(cx, &alert, ts)
    } else {
        HashMap::new()
    };
    r.restored = true;
    for (labels, (value, ann)) in now.iter() {
        match r.alerts.get_mut(labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = *value;
                a.annotations = ann.clone();
                a.keep_firing_since = None;
            }
            _ => {
                let mut active_at = ts;
                if let Some(&at) = restored.get(labels) {
                    // Prometheus's restore: the pending time before the
                    // outage counts; one that would fire within the grace
                    // period fires at its end instead.
                    active_at = at;
                    let remaining = at + hold - ts;
                    if remaining > 0 && remaining < cx.grace_period {
                        active_at = ts + cx.grace_period - hold;
                    }
                }
                r.alerts.insert(
                    labels.clone(),
                    Alert {
                        labels: labels.clone(),
                        annotations: ann.clone(),
                        state: AlertState::Pending,
                        value: *value,
                        active_at,
                        fired_at: None,
                        resolved_at: None,
                        last_sent_at: None,
                        keep_firing_since: None,
                    },
                );
            }
        }
    }
    let mut remove = Vec::new();
    for (labels, a) in r.alerts.iter_mut() {
        if now.contains_key(labels) {
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            continue;
        }
        match a.state {
            AlertState::Pending => remove.push(labels.clone()),
            AlertState::Firing => {
                let since = *a.keep_firing_since.get_or_insert(ts);
                if keep_firing_for > 0 && ts - since < keep_firing_for {
                    continue;
                }
                a.state = AlertState::Inactive;
                a.resolved_at = Some(ts);
            }
            AlertState::Inactive => {
                if a.resolved_at.is_some_and(|at| ts - at > RESOLVED_RETENTION) {
                    remove.push(labels.clone());
                }
            }
        }
    }
    for l in remove {
        r.alerts.remove(&l);
    }
    let mut out = Vec::new();
    for a in r.alerts.values() {
        if a.state == AlertState::Inactive {
            continue;
        }
        let mut b = a.labels.builder();
        b.set("__name__", "ALERTS");
        b.set("alertstate", a.state.as_str());
        out.push((b.build(), SampleValue::Float(1.0)));
        if hold > 0 {
            let mut b = a.labels.builder();
            b.set("__name__", "ALERTS_FOR_STATE");
            out.push((b.build(), SampleValue::Float(a.active_at as f64 / 1000.0)));
        }
    }
    Ok(out)
}

/// `ALERTS_FOR_STATE` of `alert` as last written within the outage
/// tolerance before `ts`: alert labels to the time it became active (ms).
fn restore_active_at(cx: &Context<'_>, alert: &str, ts: i64) -> HashMap<Labels, i64> {
    let mut out = HashMap::new();
    let tol = cx.outage_tolerance.max(1);
    let q = format!(
        "last_over_time(ALERTS_FOR_STATE{{alertname={}}}[{}ms])",
        serde_json::Value::String(alert.to_owned()),
        tol
    );
    // Just before `ts`: what the previous run wrote, not this evaluation.
    match cx.engine.instant_query(cx.store, &q, ts - 1) {
        Ok(r) => {
            if let QueryValue::Vector(v) = r.value {
                for s in v {
                    if let SampleValue::Float(f) = s.value {
                        let labels = s.metric.without(&["__name__"]);
                        out.insert(labels, (f * 1000.0).round() as i64);
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(alert, error = %e, "restoring alert state failed");
        }
    }
    if !out.is_empty() {
        tracing::info!(alert, alerts = out.len(), "alert 'for' state restored");
    }
    out
}

/// The alerts of `r` due for sending at `ts` (Prometheus's `needsSending`),
/// marked as sent.
fn due(r: &mut RuleState, ts: i64, interval: i64, cx: &Context<'_>) -> Vec<Notification> {
    let resend = cx.resend_delay;
    let valid_for = 4 * resend.max(interval);
    let mut out = Vec::new();
    for a in r.alerts.values_mut() {
        let send = match a.state {
            AlertState::Pending => false,
            AlertState::Inactive => a
                .resolved_at
                .is_some_and(|res| a.last_sent_at.is_none_or(|s| s < res)),
            AlertState::Firing => a.last_sent_at.is_none_or(|s| s + resend <= ts),
        };
        if !send {
            continue;
        }
        a.last_sent_at = Some(ts);
        let ends_at = match (a.state, a.resolved_at) {
            (AlertState::Inactive, Some(res)) => res,
            _ => ts + valid_for,
        };
        let mut labels = a.labels.builder();
        for (k, v) in &cx.external_labels {
            if a.labels.get(k).is_none() {
                labels.set(k, v);
            }
        }
        out.push(Notification {
            labels: labels.build(),
            annotations: a.annotations.clone(),
            starts_at: a.active_at,
            ends_at,
            generator_url: generator_url(&cx.external_url, &r.spec.expr),
        });
    }
    out
}

fn generator_url(base: &str, expr: &str) -> String {
    let mut q = String::new();
    for b in expr.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                q.push(b as char)
            }
            _ => q.push_str(&format!("%{b:02X}")),
        }
    }
    format!("{}/graph?g0.expr={q}&g0.tab=1", base.trim_end_matches('/'))
}
