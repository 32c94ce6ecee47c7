//! Rule evaluation step by step over an in-memory store: recording rules
//! with rule labels and stale markers, alerts through pending, firing,
//! keep_firing_for and resolved, what is sent to Alertmanager and when,
//! `ALERTS`/`ALERTS_FOR_STATE`, and `for` state restored after a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::path::Path;
use std::sync::Arc;

use cairn_model::{is_stale_nan, Labels, Sample};
use cairn_promql::{Engine, EngineOptions};
use cairn_rules::eval::{AlertState, Context, Group};
use cairn_rules::file;
use cairn_storage::{MemStorage, Queryable, SelectHints, ValueType};

const M: i64 = 60_000;

fn store() -> Arc<MemStorage> {
    let s = MemStorage::new();
    // GPU temperature: gpu 0 hot from minute 10 to 20, gpu 1 never.
    for (gpu, hot) in [("0", true), ("1", false)] {
        let l = Labels::from_pairs([("__name__", "gpu_temp"), ("gpu", gpu), ("job", "dcgm")]);
        s.add(
            l,
            (0..60).map(|i| {
                let v = if hot && (10..20).contains(&i) {
                    95.0
                } else {
                    60.0
                };
                Sample::new(i * M, v)
            }),
        );
    }
    Arc::new(s)
}

fn group(text: &str) -> Group {
    let mut g = file::parse(text, Path::new("r.yml"), M).unwrap();
    Group::new(g.remove(0))
}

fn series(s: &MemStorage, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = s.querier(i64::MIN, i64::MAX).unwrap();
    let m = cairn_model::Matcher::new(cairn_model::MatchType::Equal, "__name__", name).unwrap();
    q.select(&SelectHints::default(), &[m])
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            let mut it = x.iter();
            let mut v = Vec::new();
            while it.next() == ValueType::Float {
                v.push(it.at());
            }
            (x.labels().clone(), v)
        })
        .collect()
}

fn cx<'a>(engine: &'a Engine, s: &'a MemStorage) -> Context<'a> {
    Context {
        engine,
        store: s,
        app: s,
        outage_tolerance: 60 * M,
        grace_period: 10 * M,
        resend_delay: M,
        external_labels: Default::default(),
        external_url: "http://cairn:9090".into(),
    }
}

#[test]
fn recording_rules_write_results_and_stale_markers() {
    let s = store();
    let engine = Engine::new(EngineOptions::default());
    let mut g = group(
        "groups:
  - name: g
    labels: {team: ml}
    rules:
      - record: job:gpu_temp:max
        expr: max by (job) (gpu_temp)
      - record: gpu:hot
        expr: gpu_temp > 90
        labels: {severity: info}
",
    );
    for i in 0..25 {
        g.eval(i * M, &cx(&engine, &s));
    }
    let max = series(&s, "job:gpu_temp:max");
    assert_eq!(max.len(), 1);
    assert_eq!(
        max[0].0,
        Labels::from_pairs([
            ("__name__", "job:gpu_temp:max"),
            ("job", "dcgm"),
            ("team", "ml")
        ])
    );
    assert_eq!(max[0].1.len(), 25);
    assert_eq!(max[0].1[15], (15 * M, 95.0));
    let hot = series(&s, "gpu:hot");
    assert_eq!(hot.len(), 1);
    assert_eq!(hot[0].0.get("severity"), Some("info"));
    assert_eq!(hot[0].0.get("gpu"), Some("0"));
    // Written from minute 10 to 19, then a stale marker at 20.
    let pts = &hot[0].1;
    assert_eq!(pts.first().map(|p| p.0), Some(10 * M));
    assert_eq!(pts.len(), 11);
    assert!(is_stale_nan(pts[10].1) && pts[10].0 == 20 * M, "{pts:?}");
    assert_eq!(g.rules[1].health.as_str(), "ok");
}

#[test]
fn alerts_go_pending_firing_and_resolved() {
    let s = store();
    let engine = Engine::new(EngineOptions::default());
    let mut g = group(
        "groups:
  - name: g
    rules:
      - alert: GpuHot
        expr: gpu_temp > 90
        for: 3m
        labels: {severity: page}
        annotations:
          summary: 'GPU {{ $labels.gpu }} is at {{ $value }}C'
",
    );
    let mut sent = Vec::new();
    for i in 0..=36 {
        let n = g.eval(i * M, &cx(&engine, &s));
        sent.push((i, n));
        let a: Vec<_> = g.rules[0].alerts.values().collect();
        match i {
            0..=9 => assert!(a.is_empty(), "{i}"),
            10..=12 => assert_eq!(a[0].state, AlertState::Pending, "{i}"),
            13..=19 => assert_eq!(a[0].state, AlertState::Firing, "{i}"),
            20..=35 => assert_eq!(a[0].state, AlertState::Inactive, "{i}"),
            _ => assert!(
                a.is_empty(),
                "kept 15 minutes after resolving, then gone: {i}"
            ),
        }
    }
    let a_sent: Vec<i64> = sent
        .iter()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, _)| *i)
        .collect();
    // Firing from 13, re-sent every minute (the resend delay), resolved at 20.
    assert_eq!(a_sent, vec![13, 14, 15, 16, 17, 18, 19, 20]);
    let first = &sent[13].1[0];
    assert_eq!(first.starts_at, 10 * M);
    assert_eq!(first.annotations["summary"], "GPU 0 is at 95C");
    assert_eq!(first.labels.get("alertname"), Some("GpuHot"));
    assert_eq!(first.labels.get("severity"), Some("page"));
    assert_eq!(first.labels.get("__name__"), None);
    assert!(first
        .generator_url
        .starts_with("http://cairn:9090/graph?g0.expr=gpu_temp%20%3E%2090"));
    let resolved = &sent[20].1[0];
    assert_eq!(resolved.ends_at, 20 * M);

    // ALERTS: pending 10..12, firing 13..19, stale after; ALERTS_FOR_STATE
    // holds the activation time.
    let alerts = series(&s, "ALERTS");
    let by_state = |st: &str| {
        alerts
            .iter()
            .find(|x| x.0.get("alertstate") == Some(st))
            .map(|x| x.1.clone())
            .unwrap()
    };
    let pending = by_state("pending");
    assert_eq!(pending.iter().filter(|p| p.1 == 1.0).count(), 3);
    let firing = by_state("firing");
    assert_eq!(firing.iter().filter(|p| p.1 == 1.0).count(), 7);
    assert!(is_stale_nan(firing.last().unwrap().1));
    let fs = series(&s, "ALERTS_FOR_STATE");
    assert_eq!(fs[0].1[0], (10 * M, 600.0));
}

#[test]
fn keep_firing_for_holds_an_alert() {
    let s = store();
    let engine = Engine::new(EngineOptions::default());
    let mut g = group(
        "groups:
  - name: g
    rules:
      - alert: GpuHot
        expr: gpu_temp > 90
        keep_firing_for: 5m
",
    );
    for i in 0..=30 {
        g.eval(i * M, &cx(&engine, &s));
        let a: Vec<_> = g.rules[0].alerts.values().collect();
        match i {
            10..=24 => assert_eq!(a[0].state, AlertState::Firing, "{i}"),
            25..=30 => assert_eq!(a[0].state, AlertState::Inactive, "{i}"),
            _ => assert!(a.is_empty(), "{i}"),
        }
    }
}

#[test]
fn a_restart_restores_the_for_state_and_does_not_fire_again_from_pending() {
    let s = store();
    let engine = Engine::new(EngineOptions::default());
    let text = "groups:
  - name: g
    rules:
      - alert: GpuHot
        expr: gpu_temp > 90
        for: 3m
";
    let mut g = group(text);
    for i in 0..=15 {
        g.eval(i * M, &cx(&engine, &s));
    }
    assert_eq!(
        g.rules[0].alerts.values().next().unwrap().state,
        AlertState::Firing
    );
    // A new process: fresh state, evaluating again two minutes later.
    let mut g = group(text);
    g.eval(17 * M, &cx(&engine, &s));
    let a = g.rules[0].alerts.values().next().unwrap();
    assert_eq!(a.state, AlertState::Firing, "firing again at once");
    assert_eq!(a.active_at, 10 * M, "with the activation time from before");

    // A pending alert restored near its `for` fires only after the grace period.
    let mut g = group(text);
    for i in 10..=11 {
        g.eval(i * M, &cx(&engine, &s));
    }
    let mut g = group(text);
    g.eval(12 * M, &cx(&engine, &s));
    let a = g.rules[0].alerts.values().next().unwrap();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(a.active_at, 12 * M + 10 * M - 3 * M);
}

#[test]
fn errors_mark_the_rule_unhealthy() {
    let s = store();
    let engine = Engine::new(EngineOptions::default());
    let mut g = group(
        "groups:
  - name: g
    rules:
      - record: dup
        expr: label_replace(gpu_temp, \"gpu\", \"x\", \"gpu\", \".*\")
      - record: range
        expr: gpu_temp[5m]
",
    );
    g.eval(5 * M, &cx(&engine, &s));
    assert_eq!(g.rules[0].health.as_str(), "err");
    assert!(
        g.rules[0].last_error.contains("same labelset"),
        "{}",
        g.rules[0].last_error
    );
    assert_eq!(g.rules[1].health.as_str(), "err");
    assert!(
        g.rules[1].last_error.contains("matrix"),
        "{}",
        g.rules[1].last_error
    );
}

/// A recording rule whose result is a native histogram stores a histogram
/// series (Prometheus records them too).
#[test]
fn recording_rules_store_native_histogram_results() {
    let s = MemStorage::new();
    for gpu in ["0", "1"] {
        let l = Labels::from_pairs([("__name__", "gpu_latency"), ("gpu", gpu), ("job", "dcgm")]);
        s.add_float_histograms(
            l,
            (0..10).map(|i| {
                (
                    i * M,
                    Arc::new(cairn_model::FloatHistogram {
                        count: 2.0 * i as f64,
                        sum: i as f64,
                        zero_count: 2.0 * i as f64,
                        zero_threshold: 0.001,
                        ..Default::default()
                    }),
                )
            }),
        );
    }
    let engine = Engine::new(EngineOptions::default());
    let mut g = group(
        "groups:
  - name: g
    rules:
      - record: job:gpu_latency:sum
        expr: sum by (job) (gpu_latency)
",
    );
    for i in 0..10 {
        g.eval(i * M, &cx(&engine, &s));
    }
    assert_eq!(
        g.rules[0].health.as_str(),
        "ok",
        "{}",
        g.rules[0].last_error
    );
    let q = s.querier(i64::MIN, i64::MAX).unwrap();
    let m = cairn_model::Matcher::new(
        cairn_model::MatchType::Equal,
        "__name__",
        "job:gpu_latency:sum",
    )
    .unwrap();
    let set: Vec<_> = q
        .select(&SelectHints::default(), &[m])
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(set.len(), 1);
    let mut it = set[0].iter();
    let mut got = Vec::new();
    while it.next() == ValueType::FloatHistogram {
        let (t, h) = it.at_float_histogram().unwrap();
        got.push((t, h.count));
    }
    let want: Vec<(i64, f64)> = (0..10).map(|i| (i * M, 4.0 * i as f64)).collect();
    assert_eq!(got, want);
}
