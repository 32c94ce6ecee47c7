//! Evaluation strategies against each other: columnar kernels and rows
//! computed at load against step-wise kernels and kept points, range
//! queries step by step against instant queries, one thread against
//! several. The same queries over the same generated data must give
//! bit-identical results, the same annotations and the same errors.

use cairn_model::{labels, Sample, STALE_NAN};
use cairn_storage::MemStorage;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Gauges, counters with resets, gaps, stale markers, odd values.
fn store(seed: u64) -> MemStorage {
    store_hosts(seed, 3)
}

/// [`store`] with `hosts` hosts of 4 GPUs each.
fn store_hosts(seed: u64, hosts: usize) -> MemStorage {
    let st = MemStorage::new();
    let mut r = Lcg(seed);
    for h in 0..hosts {
        for g in 0..4 {
            let host = format!("h{h}");
            let gpu = g.to_string();
            let mut gauge = Vec::new();
            let mut counter = Vec::new();
            let mut other = Vec::new();
            let mut c = 0.0;
            let interval = 10_000 + 5_000 * r.below(3) as i64;
            let mut t = r.below(20_000) as i64;
            while t < 3_600_000 {
                let gap = r.below(40) == 0;
                if !gap {
                    let v = match r.below(50) {
                        0 => STALE_NAN,
                        1 => f64::NAN,
                        2 => 1e308,
                        3 => -7.25,
                        _ => r.below(1000) as f64 / 8.0,
                    };
                    gauge.push(Sample::new(t, v));
                    c = if r.below(60) == 0 {
                        0.0
                    } else {
                        c + r.below(100) as f64
                    };
                    counter.push(Sample::new(t, c));
                    other.push(Sample::new(t, r.below(500) as f64 + 1.0));
                } else {
                    t += r.below(600_000) as i64;
                }
                t += interval;
            }
            st.add(
                labels!("__name__" => "m_gauge", "host" => &host, "gpu" => &gpu),
                gauge,
            );
            st.add(
                labels!("__name__" => "m_total", "host" => &host, "gpu" => &gpu),
                counter,
            );
            st.add(
                labels!("__name__" => "m_other", "host" => &host, "gpu" => &gpu),
                other,
            );
        }
        st.add(
            labels!("__name__" => "by_host", "host" => &format!("h{h}")),
            (0..360).map(|k| Sample::new(k * 10_000, (k % 7) as f64)),
        );
        // A classic histogram whose buckets are sometimes not monotonic.
        let mut counts = [0.0f64; 4];
        let mut series: [Vec<Sample>; 4] = Default::default();
        for k in 0..360i64 {
            let mut acc = 0.0;
            for (i, c) in counts.iter_mut().enumerate() {
                acc += r.below(5) as f64;
                *c = (*c).max(acc) + if r.below(97) == 0 { -3.0 } else { 0.0 };
                if let Some(s) = series.get_mut(i) {
                    s.push(Sample::new(k * 10_000 + h as i64, *c));
                }
            }
        }
        // A target and its info series, whose data label changes halfway
        // (a stale marker ends the old one).
        let host = format!("h{h}");
        st.add(
            labels!("__name__" => "node_up", "instance" => &host, "job" => "gpu"),
            (0..360).map(|k| Sample::new(k * 10_000 + 7, 1.0)),
        );
        st.add(
            labels!("__name__" => "target_info", "instance" => &host, "job" => "gpu", "rack" => "r1"),
            (0..180)
                .map(|k| Sample::new(k * 10_000, 1.0))
                .chain([Sample::new(1_800_000, STALE_NAN)]),
        );
        st.add(
            labels!("__name__" => "target_info", "instance" => &host, "job" => "gpu", "rack" => "r2"),
            (181..360).map(|k| Sample::new(k * 10_000 + 3, 1.0)),
        );
        for (le, s) in ["0.1", "1", "10", "+Inf"].iter().zip(series) {
            st.add(
                labels!("__name__" => "m_bucket", "host" => &format!("h{h}"), "le" => *le),
                s,
            );
        }
    }
    st
}

const QUERIES: [&str; 61] = [
    "histogram_quantile(0.9, sum by (le) (rate(m_bucket[5m])))",
    "histogram_quantile(0.5, rate(m_bucket[5m]))",
    "histogram_quantile(1.5, sum by (host, le) (m_bucket))",
    "histogram_quantile(0.75, m_bucket)",
    "histogram_quantile(0.9, m_gauge)",
    "m_gauge",
    "-m_gauge",
    "m_gauge * 2",
    "2 - m_gauge",
    "1 + 2 * 3",
    "sum by (host) (m_gauge)",
    "avg by (host) (m_gauge)",
    "avg(m_gauge)",
    "min without (gpu) (m_gauge)",
    "max by (host) (m_gauge)",
    "count(m_gauge)",
    "group by (host) (m_gauge)",
    "stddev by (host) (m_gauge)",
    "stdvar(m_gauge)",
    "rate(m_total[5m])",
    "sum by (host) (rate(m_total[5m]))",
    "increase(m_total[2m])",
    "irate(m_total[1m])",
    "delta(m_gauge[3m])",
    "last_over_time(m_gauge[2m])",
    "max_over_time(m_gauge[10m])",
    "resets(m_total[10m])",
    "changes(m_gauge[5m])",
    "deriv(m_gauge[5m])",
    "rate(m_gauge[5m])",
    "sum by (host) (m_gauge) / sum by (host) (m_gauge + m_other)",
    "m_gauge / on (host, gpu) m_other",
    "m_gauge - ignoring (gpu) by_host",
    "1 - avg by (host) (rate(m_total[5m]))",
    "sum by (__name__) (m_gauge)",
    "sum by (__name__) (rate(m_total[5m]))",
    "sum(m_gauge offset 3m)",
    "avg(m_gauge @ 1200)",
    "m_gauge{gpu=\"1\"} + m_gauge{gpu=\"2\"}",
    "sum without (gpu) (last_over_time(m_gauge[2m]))",
    "by_host + on (host) group by (host) (m_gauge)",
    "m_gauge > 100",
    "m_gauge >= bool 100",
    "100 < m_gauge",
    "100 != bool m_gauge",
    "rate(m_total[5m]) > 0",
    "sum by (host) (rate(m_total[5m])) <= 2",
    "sum by (host) (m_gauge > 50)",
    "sum by (__name__) (m_gauge == bool 1e308)",
    "(m_gauge < 3) * 2",
    "1 > bool 2",
    "m_gauge > m_other",
    "count(m_gauge != m_gauge)",
    "info(node_up)",
    "sum by (rack) (info(node_up, {rack=~\"r.*\"}))",
    "info(node_up offset 5m)",
    "increase(m_total[2m] anchored)",
    "rate(m_total[5m] smoothed)",
    "resets(m_total[10m] anchored) + changes(m_gauge[3m] anchored)",
    "m_other smoothed",
    "delta(m_gauge[4m] smoothed offset 1m)",
];

/// Queries the columnar path must take (not fall back on).
const FAST: [&str; 10] = [
    "histogram_quantile(0.9, sum by (le) (rate(m_bucket[5m])))",
    "histogram_quantile(0.75, m_bucket)",
    "sum by (host) (m_gauge)",
    "sum by (host) (rate(m_total[5m]))",
    "sum by (host) (m_gauge) / sum by (host) (m_gauge + m_other)",
    "1 - avg by (host) (rate(m_total[5m]))",
    "m_gauge / on (host, gpu) m_other",
    "avg(m_gauge @ 1200)",
    "sum by (host) (rate(m_total[5m])) > 0",
    "100 >= bool sum by (host) (m_gauge)",
];

fn same(a: &Result<QueryResult>, b: &Result<QueryResult>) -> bool {
    match (a, b) {
        (Err(x), Err(y)) => x.to_string() == y.to_string(),
        (Ok(x), Ok(y)) => {
            let (QueryValue::Matrix(mx), QueryValue::Matrix(my)) = (&x.value, &y.value) else {
                return false;
            };
            x.annotations == y.annotations
                && mx.len() == my.len()
                && mx.iter().zip(my.iter()).all(|(p, q)| {
                    p.metric == q.metric
                        && p.floats.len() == q.floats.len()
                        && p.floats
                            .iter()
                            .zip(q.floats.iter())
                            .all(|(u, v)| u.t == v.t && u.f.to_bits() == v.f.to_bits())
                })
        }
        _ => false,
    }
}

const FAST_PLAN: PlanOptions = PlanOptions {
    columnar: true,
    rows_at_load: true,
};
const SLOW_PLAN: PlanOptions = PlanOptions {
    columnar: false,
    rows_at_load: false,
};

fn range(
    e: &Engine,
    st: &MemStorage,
    q: &str,
    (start, end, step): (i64, i64, i64),
    p: PlanOptions,
) -> Result<QueryResult> {
    let expr = parse(q).unwrap();
    e.range_with(st, &expr, start, end, step, p)
        .map(|r| r.result)
}

const RANGES: [(i64, i64, i64); 4] = [
    (0, 3_600_000, 60_000),
    (600_000, 3_500_000, 15_000),
    (7_000, 1_000_000, 37_000),
    (1_800_000, 1_800_000, 60_000),
];

#[test]
fn columnar_equals_stepwise() {
    for delayed in [false, true] {
        let e = Engine::new(EngineOptions {
            delayed_name_removal: delayed,
            ..EngineOptions::default()
        });
        for seed in 1..=4u64 {
            let st = store(seed);
            for r in RANGES {
                for q in QUERIES {
                    let fast = range(&e, &st, q, r, FAST_PLAN);
                    for p in [
                        SLOW_PLAN,
                        PlanOptions {
                            columnar: true,
                            rows_at_load: false,
                        },
                        PlanOptions {
                            columnar: false,
                            rows_at_load: true,
                        },
                    ] {
                        let slow = range(&e, &st, q, r, p);
                        assert!(
                            same(&fast, &slow),
                            "seed {seed} {q} {r:?} {p:?} delayed {delayed}:\ncolumnar {fast:?}\nother {slow:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Each step of a range query equals the instant query at its time: the
/// columnar kernels over many steps against one-step evaluation.
#[test]
fn range_steps_equal_instant_queries() {
    let e = Engine::default();
    let st = store(5);
    for (start, end, step) in [(600_000, 3_000_000, 240_000), (7_000, 1_000_000, 111_000)] {
        for q in QUERIES {
            let Ok(r) = e.range_query(&st, q, start, end, step) else {
                continue;
            };
            let QueryValue::Matrix(m) = r.value else {
                panic!("{q}: not a matrix");
            };
            let mut t = start;
            while t <= end {
                let want: Vec<(cairn_model::Labels, u64)> = match e.instant_query(&st, q, t) {
                    Ok(QueryResult {
                        value: QueryValue::Vector(v),
                        ..
                    }) => {
                        let mut v: Vec<_> = v
                            .into_iter()
                            .filter_map(|s| {
                                let f = s.f()?;
                                Some((s.metric, f.to_bits()))
                            })
                            .collect();
                        v.sort_by(|a, b| a.0.cmp(&b.0));
                        v
                    }
                    Ok(QueryResult {
                        value: QueryValue::Scalar { v, .. },
                        ..
                    }) => vec![(cairn_model::Labels::empty(), v.to_bits())],
                    other => panic!("{q} at {t}: {other:?}"),
                };
                let got: Vec<(cairn_model::Labels, u64)> = m
                    .iter()
                    .filter_map(|s| {
                        let p = s.floats.iter().find(|p| p.t == t)?;
                        Some((s.metric.clone(), p.f.to_bits()))
                    })
                    .collect();
                assert_eq!(got, want, "{q} at {t}");
                t += step;
            }
        }
    }
}

#[test]
fn columnar_path_is_taken() {
    let st = store(7);
    let e = Engine::default();
    for q in FAST {
        // With points kept, and with rows computed at load (what queries do).
        for rows_at_load in [false, true] {
            let expr = parse(q).unwrap();
            let p = PlanOptions {
                columnar: true,
                rows_at_load,
            };
            let run = e.range_with(&st, &expr, 0, 3_600_000, 60_000, p).unwrap();
            let QueryValue::Matrix(m) = &run.result.value else {
                panic!("{q}: not a matrix");
            };
            assert!(!m.is_empty(), "{q}: empty");
            for (node, ran) in run.plan.nodes.iter().zip(&run.ran) {
                if matches!(node.kind, Kind::Binary { .. } | Kind::Aggregate { .. }) {
                    assert_eq!(
                        *ran,
                        Some(Mode::Columnar),
                        "{q} (rows {rows_at_load}): {node:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn declining_kernels_fall_back_per_node() {
    let st = store(3);
    let e = Engine::default();
    // Several m_gauge series per host match one by_host series: the
    // columnar kernel declines, the step-wise one decides (an error).
    let expr = parse("m_gauge - ignoring (gpu) by_host").unwrap();
    let r = e.range_with(&st, &expr, 0, 3_600_000, 60_000, FAST_PLAN);
    assert!(r.is_err());
    // With delayed name removal, `or` mixes series whose names are kept
    // and series whose names are pending removal: the sum's groups mix
    // both, its fold declines, and that node alone runs step-wise.
    let e = Engine::new(EngineOptions {
        delayed_name_removal: true,
        ..EngineOptions::default()
    });
    let q = "sum by (host) (m_gauge or rate(m_total[5m]))";
    let expr = parse(q).unwrap();
    let run = e
        .range_with(&st, &expr, 0, 3_600_000, 60_000, FAST_PLAN)
        .unwrap();
    let modes: Vec<_> = run
        .plan
        .nodes
        .iter()
        .zip(&run.ran)
        .filter(|(n, _)| matches!(n.kind, Kind::Binary { .. } | Kind::Aggregate { .. }))
        .map(|(n, m)| (n.mode, *m))
        .collect();
    assert_eq!(
        modes,
        vec![
            (Mode::StepWise, Some(Mode::StepWise)),
            (Mode::Columnar, Some(Mode::StepWise)),
        ]
    );
    let slow = range(&e, &st, q, (0, 3_600_000, 60_000), SLOW_PLAN);
    assert!(same(&Ok(run.result), &slow));
}

/// A queryable that counts the selections made through it, each taking
/// `delay` (a slow store, such as a bucket) first.
struct Counting<'a> {
    inner: &'a MemStorage,
    selects: AtomicUsize,
    delay: std::time::Duration,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a MemStorage, delay: std::time::Duration) -> Self {
        Self {
            inner,
            selects: AtomicUsize::new(0),
            delay,
        }
    }
}

impl cairn_storage::Queryable for Counting<'_> {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> cairn_storage::Result<Box<dyn cairn_storage::Querier + '_>> {
        Ok(Box::new(CountingQuerier {
            inner: self.inner.querier(mint, maxt)?,
            selects: &self.selects,
            delay: self.delay,
        }))
    }
}

struct CountingQuerier<'a> {
    inner: Box<dyn cairn_storage::Querier + 'a>,
    selects: &'a AtomicUsize,
    delay: std::time::Duration,
}

impl cairn_storage::Querier for CountingQuerier<'_> {
    fn select<'b>(
        &'b self,
        hints: &cairn_storage::SelectHints,
        matchers: &[cairn_model::Matcher],
    ) -> cairn_storage::Result<cairn_storage::SeriesSet<'b>> {
        self.selects.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        self.inner.select(hints, matchers)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[cairn_model::Matcher],
    ) -> cairn_storage::Result<Vec<String>> {
        self.inner.label_values(name, matchers)
    }

    fn label_names(&self, matchers: &[cairn_model::Matcher]) -> cairn_storage::Result<Vec<String>> {
        self.inner.label_names(matchers)
    }
}

/// Reading the data counts against the timeout: a store slower than the
/// timeout fails the query with `Timeout` (before the evaluator's first
/// step), where a fast one answers under the same timeout.
#[test]
fn a_slow_store_times_the_query_out() {
    let st = store(3);
    let e = Engine::new(EngineOptions {
        timeout: std::time::Duration::from_millis(300),
        ..EngineOptions::default()
    });
    let q = parse("sum by (host) (m_gauge) / sum by (host) (m_gauge + m_other)").unwrap();
    let fast = Counting::new(&st, std::time::Duration::ZERO);
    assert!(e
        .range_with(&fast, &q, 0, 3_600_000, 60_000, FAST_PLAN)
        .is_ok());
    let slow = Counting::new(&st, std::time::Duration::from_millis(200));
    for p in [FAST_PLAN, SLOW_PLAN] {
        let r = e.range_with(&slow, &q, 0, 3_600_000, 60_000, p);
        assert!(
            matches!(r, Err(PromqlError::Timeout)),
            "{p:?}: {:?}",
            r.map(|_| ())
        );
        let r = e.instant_with(&slow, &q, 3_600_000, p);
        assert!(
            matches!(r, Err(PromqlError::Timeout)),
            "{p:?}: {:?}",
            r.map(|_| ())
        );
    }
}

#[test]
fn every_selection_is_read_once() {
    let st = store(2);
    let e = Engine::default();
    for (q, selections) in [
        (
            "sum by (host) (m_gauge) / sum by (host) (m_gauge + m_other)",
            2,
        ),
        ("rate(m_total[5m]) / rate(m_total[5m])", 1),
        ("m_gauge - ignoring (gpu) by_host", 2),
        ("topk(3, max_over_time(m_gauge[10m])) and m_gauge", 2),
        ("max_over_time(rate(m_total[5m])[10m:1m])", 1),
    ] {
        for p in [FAST_PLAN, SLOW_PLAN] {
            let c = Counting::new(&st, std::time::Duration::ZERO);
            let expr = parse(q).unwrap();
            let run = e.range_with(&c, &expr, 0, 3_600_000, 60_000, p);
            assert_eq!(c.selects.load(Ordering::Relaxed), selections, "{q} {p:?}");
            if let Ok(run) = run {
                assert_eq!(run.plan.selections.len(), selections, "{q}");
            }
        }
    }
}

#[test]
fn sample_limits_agree_around_the_boundary() {
    let st = store(1);
    for max in [
        1, 10, 30, 60, 100, 200, 400, 800, 1_600, 3_200, 6_400, 100_000,
    ] {
        let e = Engine::new(EngineOptions {
            max_samples: max,
            ..EngineOptions::default()
        });
        for q in [
            "sum by (host) (rate(m_total[5m]))",
            "rate(m_total[5m])",
            "max_over_time(m_gauge[10m])",
            "avg by (host) (m_gauge)",
        ] {
            let r = (0, 3_600_000, 60_000);
            let fast = range(&e, &st, q, r, FAST_PLAN);
            let slow = range(&e, &st, q, r, SLOW_PLAN);
            assert!(
                same(&fast, &slow),
                "max_samples {max} {q}:\ncolumnar {fast:?}\nstep-wise {slow:?}"
            );
        }
    }
}

#[test]
fn parallel_reads_equal_serial_ones() {
    // 25 hosts x 4 GPUs: 100 series per metric, enough for several threads.
    let st = store_hosts(11, 25);
    let serial = Engine::new(EngineOptions {
        parallelism: 1,
        ..EngineOptions::default()
    });
    let parallel = Engine::new(EngineOptions {
        parallelism: 3,
        ..EngineOptions::default()
    });
    // The last range has enough (series x step) cells for aggregations
    // to fold their steps on several threads.
    for r in [
        (0, 3_600_000, 60_000),
        (7_000, 1_000_000, 37_000),
        (0, 3_600_000, 5_000),
    ] {
        for q in QUERIES {
            for p in [FAST_PLAN, SLOW_PLAN] {
                if p.columnar != FAST_PLAN.columnar && r.2 == 5_000 {
                    // Long and step-wise only: slow, and nothing parallel
                    // that the other ranges do not cover.
                    continue;
                }
                let a = range(&serial, &st, q, r, p);
                let b = range(&parallel, &st, q, r, p);
                assert!(
                    same(&a, &b),
                    "{q} {r:?} {p:?}:\nserial {a:?}\nparallel {b:?}"
                );
            }
        }
    }
}
