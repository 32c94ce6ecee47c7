//! The rule manager: loads rule files, evaluates each group at its interval
//! on a background thread, sends alerts, reloads, and answers
//! `/api/v1/rules` and `/api/v1/alerts`.
//!
//! Contracts:
//! - A group is evaluated at the aligned times `k·interval + offset`, the
//!   offset a hash of its file and name (as Prometheus spreads groups);
//!   the evaluation is stamped with that time, not the wall clock. A group
//!   that falls behind skips the missed times.
//! - One thread evaluates all groups, one after the other.
//! - [`RuleManager::reload`] parses every file first; on any error nothing
//!   changes and the error is returned. Rules that keep their group, file,
//!   name and expression keep their alerts and state.
//! - Every evaluation is reported on [`RuleManager::subscribe`] channels,
//!   so tests wait for evaluations instead of sleeping.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use cairn_promql::{Engine, EngineOptions};
use cairn_storage::{Appendable, Queryable};
use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::eval::{AlertState, Context, Group, RuleState};
use crate::file::{self, RuleKind};
use crate::notifier::Notifier;
use crate::time::rfc3339;

/// How the rules run.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// `--rule.file` patterns.
    pub files: Vec<String>,
    /// Interval of groups without their own (ms).
    pub default_interval: i64,
    pub engine: EngineOptions,
    /// `--rules.alert.for-outage-tolerance` (ms).
    pub outage_tolerance: i64,
    /// `--rules.alert.for-grace-period` (ms).
    pub grace_period: i64,
    /// `--rules.alert.resend-delay` (ms).
    pub resend_delay: i64,
    /// `--alertmanager.url` values.
    pub alertmanagers: Vec<String>,
    /// Base of the alerts' generator URLs.
    pub external_url: String,
    pub external_labels: BTreeMap<String, String>,
}

impl Default for RulesOptions {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            default_interval: 60_000,
            engine: EngineOptions::default(),
            outage_tolerance: 3_600_000,
            grace_period: 600_000,
            resend_delay: 60_000,
            alertmanagers: Vec::new(),
            external_url: String::new(),
            external_labels: BTreeMap::new(),
        }
    }
}

/// Something the manager did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesEvent {
    /// `group` of `file` was evaluated at `ts`.
    Evaluated {
        file: String,
        group: String,
        ts: i64,
    },
    /// The rule files were loaded again (`groups` groups).
    Reloaded { groups: usize },
}

/// The groups, each with the next time it is due.
struct Slot {
    group: Group,
    next: i64,
}

struct Shared {
    opts: RulesOptions,
    store: Arc<dyn Queryable + Send + Sync>,
    app: Arc<dyn Appendable + Send + Sync>,
    engine: Engine,
    notifier: Option<Notifier>,
    slots: Mutex<Vec<Slot>>,
    /// Serialises evaluations with reloads.
    eval: Mutex<()>,
    wake: Condvar,
    stop: Mutex<bool>,
    subs: Mutex<Vec<Sender<RulesEvent>>>,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Whether the last load of the rule files succeeded, and when (ms).
    last_load: Mutex<(bool, i64)>,
}

/// See the module docs.
pub struct RuleManager {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for RuleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager")
            .field("files", &self.shared.opts.files)
            .finish()
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The group's place in its interval (Prometheus spreads groups by a hash).
fn offset(file: &str, name: &str, interval: i64) -> i64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (file, name).hash(&mut h);
    (h.finish() % interval.max(1) as u64) as i64
}

/// The first aligned time of `g` after `now`.
fn next_after(g: &Group, now: i64) -> i64 {
    let iv = g.spec.interval.max(1);
    let off = offset(&g.spec.file.display().to_string(), &g.spec.name, iv);
    ((now - off).div_euclid(iv) + 1) * iv + off
}

impl RuleManager {
    /// Loads the rule files of `opts` (an error if any is wrong) and starts
    /// the notifier; [`RuleManager::start`] starts evaluating.
    pub fn new(
        opts: RulesOptions,
        store: Arc<dyn Queryable + Send + Sync>,
        app: Arc<dyn Appendable + Send + Sync>,
    ) -> Result<Self> {
        Self::with_clock(opts, store, app, Box::new(wall_ms))
    }

    /// [`RuleManager::new`] with a clock of the caller's (ms).
    pub fn with_clock(
        opts: RulesOptions,
        store: Arc<dyn Queryable + Send + Sync>,
        app: Arc<dyn Appendable + Send + Sync>,
        clock: Box<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Self> {
        let groups = load_all(&opts.files, opts.default_interval)?;
        let notifier = if opts.alertmanagers.is_empty() {
            None
        } else {
            Some(Notifier::start(opts.alertmanagers.clone()).map_err(|e| {
                crate::RulesError::Read {
                    path: "notifier thread".into(),
                    source: e,
                }
            })?)
        };
        let now = clock();
        let slots = groups
            .into_iter()
            .map(|spec| {
                let group = Group::new(spec);
                let next = next_after(&group, now);
                Slot { group, next }
            })
            .collect();
        Ok(Self {
            shared: Arc::new(Shared {
                engine: Engine::new(opts.engine.clone()),
                opts,
                store,
                app,
                notifier,
                slots: Mutex::new(slots),
                eval: Mutex::new(()),
                wake: Condvar::new(),
                stop: Mutex::new(false),
                subs: Mutex::new(Vec::new()),
                clock,
                last_load: Mutex::new((true, now)),
            }),
            thread: Mutex::new(None),
        })
    }

    /// Starts the evaluation thread.
    pub fn start(&self) -> std::io::Result<()> {
        let s = self.shared.clone();
        let t = std::thread::Builder::new()
            .name("cairn-rules".into())
            .spawn(move || run(&s))?;
        *self.thread.lock() = Some(t);
        Ok(())
    }

    /// Stops the evaluation thread (and the notifier with the manager).
    pub fn stop(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// A channel receiving every [`RulesEvent`] from now on.
    pub fn subscribe(&self) -> Receiver<RulesEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.shared.subs.lock().push(tx);
        rx
    }

    /// Whether the last load of the rule files (at start or a reload)
    /// succeeded, and when the last successful one was (ms, the manager's
    /// clock): Prometheus's `reloadConfigSuccess` and `lastConfigTime`.
    pub fn last_load(&self) -> (bool, i64) {
        *self.shared.last_load.lock()
    }

    /// Loads the rule files again (see the module docs).
    pub fn reload(&self) -> Result<()> {
        let loaded = load_all(&self.shared.opts.files, self.shared.opts.default_interval);
        {
            let now = (self.shared.clock)();
            let mut l = self.shared.last_load.lock();
            *l = match &loaded {
                Ok(_) => (true, now),
                Err(_) => (false, l.1),
            };
        }
        let specs = loaded?;
        let _e = self.shared.eval.lock();
        let now = (self.shared.clock)();
        let mut slots = self.shared.slots.lock();
        let mut old: BTreeMap<(String, String), Slot> = slots
            .drain(..)
            .map(|s| {
                (
                    (
                        s.group.spec.file.display().to_string(),
                        s.group.spec.name.clone(),
                    ),
                    s,
                )
            })
            .collect();
        for spec in specs {
            let key = (spec.file.display().to_string(), spec.name.clone());
            let mut group = Group::new(spec);
            let next = match old.remove(&key) {
                Some(prev) => {
                    let mut olds: Vec<RuleState> = prev.group.rules;
                    for r in &mut group.rules {
                        if let Some(i) = olds.iter().position(|o| {
                            o.spec.name() == r.spec.name() && o.spec.expr == r.spec.expr
                        }) {
                            r.inherit(olds.swap_remove(i));
                        }
                    }
                    group.last_eval = prev.group.last_eval;
                    if prev.group.spec.interval == group.spec.interval {
                        prev.next
                    } else {
                        next_after(&group, now)
                    }
                }
                None => next_after(&group, now),
            };
            slots.push(Slot { group, next });
        }
        let n = slots.len();
        drop(slots);
        self.shared.wake.notify_all();
        emit(&self.shared, RulesEvent::Reloaded { groups: n });
        tracing::info!(groups = n, "rule files loaded");
        Ok(())
    }

    /// Evaluates every group now at `ts` (for tools and tests; the thread
    /// does the same at each group's times).
    pub fn eval_all_at(&self, ts: i64) {
        let _e = self.shared.eval.lock();
        let mut slots = self.shared.slots.lock();
        for s in slots.iter_mut() {
            eval_slot(&self.shared, s, ts);
        }
    }

    /// Notifications sent, send errors and alerts dropped from a full queue.
    pub fn notifier_counts(&self) -> Option<(u64, u64, u64)> {
        self.shared.notifier.as_ref().map(|n| {
            let s = n.stats();
            let l = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            (l(&s.sent), l(&s.errors), l(&s.dropped))
        })
    }

    /// `/api/v1/rules`'s `data`: `{"groups": [...]}`; `kind` "alert" or
    /// "record" keeps only those rules.
    pub fn rules_json(&self, kind: Option<&str>) -> String {
        let slots = self.shared.slots.lock();
        let groups: Vec<serde_json::Value> = slots
            .iter()
            .map(|s| {
                let g = &s.group;
                let rules: Vec<serde_json::Value> = g
                    .rules
                    .iter()
                    .filter(|r| {
                        !matches!(
                            (kind, &r.spec.kind),
                            (Some("alert"), RuleKind::Recording { .. })
                                | (Some("record"), RuleKind::Alerting { .. })
                        )
                    })
                    .map(rule_json)
                    .collect();
                serde_json::json!({
                    "name": g.spec.name,
                    "file": g.spec.file.display().to_string(),
                    "rules": rules,
                    "interval": g.spec.interval as f64 / 1000.0,
                    "limit": g.spec.limit,
                    "evaluationTime": g.eval_seconds,
                    "lastEvaluation": last_eval(g.last_eval),
                })
            })
            .collect();
        serde_json::json!({ "groups": groups }).to_string()
    }

    /// `/api/v1/alerts`'s `data`: `{"alerts": [...]}` (pending and firing).
    pub fn alerts_json(&self) -> String {
        let slots = self.shared.slots.lock();
        let alerts: Vec<serde_json::Value> = slots
            .iter()
            .flat_map(|s| s.group.rules.iter())
            .flat_map(|r| r.alerts.values())
            .filter(|a| a.state != AlertState::Inactive)
            .map(alert_json)
            .collect();
        serde_json::json!({ "alerts": alerts }).to_string()
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn load_all(patterns: &[String], default_interval: i64) -> Result<Vec<file::GroupSpec>> {
    let mut out = Vec::new();
    for f in file::expand(patterns)? {
        out.extend(file::load(&f, default_interval)?);
    }
    Ok(out)
}

fn emit(s: &Shared, e: RulesEvent) {
    s.subs.lock().retain(|tx| tx.send(e.clone()).is_ok());
}

fn eval_slot(s: &Shared, slot: &mut Slot, ts: i64) {
    let cx = Context {
        engine: &s.engine,
        store: &*s.store,
        app: &*s.app,
        outage_tolerance: s.opts.outage_tolerance,
        grace_period: s.opts.grace_period,
        resend_delay: s.opts.resend_delay,
        external_labels: s.opts.external_labels.clone(),
        external_url: s.opts.external_url.clone(),
    };
    let notes = slot.group.eval(ts, &cx);
    if let Some(n) = &s.notifier {
        n.send(notes);
    }
    emit(
        s,
        RulesEvent::Evaluated {
            file: slot.group.spec.file.display().to_string(),
            group: slot.group.spec.name.clone(),
            ts,
        },
    );
}

fn run(s: &Shared) {
    loop {
        if *s.stop.lock() {
            return;
        }
        let now = (s.clock)();
        let due = {
            let slots = s.slots.lock();
            slots.iter().map(|x| x.next).min()
        };
        match due {
            Some(t) if t <= now => {
                let _e = s.eval.lock();
                let mut slots = s.slots.lock();
                for slot in slots.iter_mut().filter(|x| x.next <= now) {
                    let ts = slot.next;
                    eval_slot(s, slot, ts);
                    // Missed times are skipped, as in Prometheus.
                    slot.next = next_after(&slot.group, (s.clock)().max(ts));
                }
            }
            other => {
                let wait = other.map_or(Duration::from_secs(1), |t| {
                    Duration::from_millis((t - now).clamp(1, 1000) as u64)
                });
                let mut stop = s.stop.lock();
                if !*stop {
                    s.wake.wait_for(&mut stop, wait);
                }
            }
        }
    }
}

fn last_eval(t: Option<i64>) -> String {
    t.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339)
}

fn labels_map(l: &cairn_model::Labels) -> BTreeMap<&str, &str> {
    l.iter().map(|x| (x.name, x.value)).collect()
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as alert values are shown.
fn go_e(v: f64) -> String {
    if !v.is_finite() {
        return cairn_model::format_go_g(v);
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{m}e{sign}{:02}", e.abs())
}

fn alert_json(a: &crate::eval::Alert) -> serde_json::Value {
    let mut v = serde_json::json!({
        "labels": labels_map(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at),
        "value": go_e(a.value),
    });
    if let (Some(obj), Some(kf)) = (v.as_object_mut(), a.keep_firing_since) {
        obj.insert("keepFiringSince".into(), rfc3339(kf).into());
    }
    v
}

fn rule_json(r: &RuleState) -> serde_json::Value {
    // Prometheus's field set: `lastError` only when there is one, and a
    // recording rule's `labels` only when it has some.
    let common = |t: &str| {
        let mut v = serde_json::json!({
            "name": r.spec.name(),
            "query": r.spec.expr,
            "labels": r.spec.raw_labels,
            "health": r.health.as_str(),
            "evaluationTime": r.eval_seconds,
            "lastEvaluation": last_eval(r.last_eval),
            "type": t,
        });
        if let Some(o) = v.as_object_mut() {
            if !r.last_error.is_empty() {
                o.insert("lastError".into(), r.last_error.clone().into());
            }
            if t == "recording" && r.spec.raw_labels.is_empty() {
                o.remove("labels");
            }
        }
        v
    };
    match &r.spec.kind {
        RuleKind::Recording { .. } => common("recording"),
        RuleKind::Alerting {
            hold,
            keep_firing_for,
            raw_annotations,
            ..
        } => {
            let mut v = common("alerting");
            let alerts: Vec<serde_json::Value> = r
                .alerts
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .map(alert_json)
                .collect();
            let state = if alerts.iter().any(|a| a["state"] == "firing") {
                "firing"
            } else if alerts.is_empty() {
                "inactive"
            } else {
                "pending"
            };
            if let Some(o) = v.as_object_mut() {
                o.insert("state".into(), state.into());
                o.insert("duration".into(), (*hold as f64 / 1000.0).into());
                o.insert(
                    "keepFiringFor".into(),
                    (*keep_firing_for as f64 / 1000.0).into(),
                );
                o.insert(
                    "annotations".into(),
                    serde_json::to_value(raw_annotations).unwrap_or_default(),
                );
                o.insert("alerts".into(), alerts.into());
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn alert_values_print_as_go() {
        assert_eq!(super::go_e(1.0), "1e+00");
        assert_eq!(super::go_e(91.5), "9.15e+01");
        assert_eq!(super::go_e(0.001), "1e-03");
    }
}
