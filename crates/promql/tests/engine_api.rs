//! The engine's public API against an in-memory store: result shapes,
//! errors, and the contract that each selector is read from storage once
//! per query however many steps a range query has.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_model::{labels, Matcher, Sample};
use cairn_promql::{Engine, EngineOptions, QueryValue};
use cairn_storage::{MemStorage, Querier, Queryable, Result, SelectHints, SeriesSet};

struct Counting {
    inner: MemStorage,
    selects: AtomicUsize,
    queriers: AtomicUsize,
}

struct CountingQuerier<'a> {
    inner: Box<dyn Querier + 'a>,
    selects: &'a AtomicUsize,
}

impl Querier for CountingQuerier<'_> {
    fn select<'a>(&'a self, hints: &SelectHints, ms: &[Matcher]) -> Result<SeriesSet<'a>> {
        self.selects.fetch_add(1, Ordering::SeqCst);
        self.inner.select(hints, ms)
    }
    fn label_names(&self, ms: &[Matcher]) -> Result<Vec<String>> {
        self.inner.label_names(ms)
    }
    fn label_values(&self, n: &str, ms: &[Matcher]) -> Result<Vec<String>> {
        self.inner.label_values(n, ms)
    }
}

impl Queryable for Counting {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        self.queriers.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(CountingQuerier {
            inner: self.inner.querier(mint, maxt)?,
            selects: &self.selects,
        }))
    }
}

fn store() -> Counting {
    let st = MemStorage::new();
    for gpu in 0..50 {
        let l = labels!("__name__" => "DCGM_FI_DEV_POWER_USAGE_total", "gpu" => &gpu.to_string());
        st.add(
            l,
            (0..=720).map(|i| Sample::new(i * 15_000, (i * 15 * (gpu + 1)) as f64)),
        );
    }
    Counting {
        inner: st,
        selects: AtomicUsize::new(0),
        queriers: AtomicUsize::new(0),
    }
}

#[test]
fn range_query_selects_each_selector_once() {
    let st = store();
    let engine = Engine::new(EngineOptions::default());
    let r = engine
        .range_query(
            &st,
            "sum(rate(DCGM_FI_DEV_POWER_USAGE_total[5m])) / count(DCGM_FI_DEV_POWER_USAGE_total)",
            600_000,
            10_800_000,
            15_000,
        )
        .unwrap();
    assert_eq!(st.queriers.load(Ordering::SeqCst), 1);
    assert_eq!(
        st.selects.load(Ordering::SeqCst),
        2,
        "one select per selector"
    );
    let QueryValue::Matrix(m) = r.value else {
        panic!("expected a matrix")
    };
    assert_eq!(m.len(), 1);
    let s = m.first().unwrap();
    assert_eq!(s.floats.len(), 681);
    // gpu g grows by g+1 per second; the mean rate is (1+..+50)/50 = 25.5.
    for p in &s.floats {
        assert!((p.f - 25.5).abs() < 1e-9, "{p:?}");
    }
}

#[test]
fn instant_query_shapes_and_errors() {
    let st = store();
    let engine = Engine::new(EngineOptions::default());
    let r = engine
        .instant_query(&st, "topk(2, DCGM_FI_DEV_POWER_USAGE_total)", 3_600_000)
        .unwrap();
    let QueryValue::Vector(v) = r.value else {
        panic!("expected a vector")
    };
    let gpus: Vec<&str> = v.iter().map(|s| s.metric.get("gpu").unwrap()).collect();
    assert_eq!(gpus, ["49", "48"]);
    assert!(v.iter().all(|s| s.t == 3_600_000));

    let r = engine.instant_query(&st, "1 + 2 * 3", 0).unwrap();
    assert_eq!(r.value, QueryValue::Scalar { t: 0, v: 7.0 });

    let r = engine
        .instant_query(&st, "DCGM_FI_DEV_POWER_USAGE_total{gpu=\"0\"}[1m]", 60_000)
        .unwrap();
    let QueryValue::Matrix(m) = r.value else {
        panic!("expected a matrix")
    };
    // (0, 60s] holds the samples at 15s, 30s, 45s and 60s.
    assert_eq!(m.first().unwrap().floats.len(), 4);

    // A non-counter name gets Prometheus's info annotation.
    let st2 = MemStorage::new();
    st2.add(
        labels!("__name__" => "gpu_temp"),
        (0..10).map(|i| Sample::new(i * 15_000, 50.0)),
    );
    let r = engine
        .instant_query(&st2, "rate(gpu_temp[1m])", 120_000)
        .unwrap();
    assert_eq!(r.annotations.infos.len(), 1);

    assert!(engine.range_query(&st, "up[5m]", 0, 10, 1).is_err());
    assert!(engine.range_query(&st, "up", 0, 10, 0).is_err());
    assert!(engine.instant_query(&st, "sum(", 0).is_err());
}
