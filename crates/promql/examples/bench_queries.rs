//! Times typical dashboard queries over an in-memory GPU fleet:
//! `cargo run --release -p cairn-promql --example bench_queries`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
use std::time::Instant;

use cairn_model::{labels, Sample};
use cairn_promql::{Engine, EngineOptions, QueryValue};
use cairn_storage::MemStorage;

fn main() {
    let series = 10_000;
    let samples = 1_440; // 6h at 15s
    let st = MemStorage::new();
    for i in 0..series {
        let host = format!("node{}", i / 8);
        let gpu = (i % 8).to_string();
        let l = labels!("__name__" => "DCGM_FI_DEV_POWER_USAGE_total", "Hostname" => &host, "gpu" => &gpu);
        st.add(
            l,
            (0..samples).map(|k| Sample::new(k * 15_000, (k * (i % 7 + 1)) as f64)),
        );
    }
    let e = Engine::new(EngineOptions::default());
    let end = (samples - 1) * 15_000;
    let queries = [
        "sum(rate(DCGM_FI_DEV_POWER_USAGE_total[5m]))",
        "avg by (Hostname) (rate(DCGM_FI_DEV_POWER_USAGE_total[5m]))",
        "topk(5, rate(DCGM_FI_DEV_POWER_USAGE_total[5m]))",
        "max_over_time(DCGM_FI_DEV_POWER_USAGE_total[1h])",
    ];
    let only = std::env::args().nth(1);
    for q in queries {
        if only.as_deref().is_some_and(|o| !q.contains(o)) {
            continue;
        }
        let t0 = Instant::now();
        let r = e
            .range_query(&st, q, end - 6 * 3_600_000 + 15_000 * 20, end, 60_000)
            .unwrap();
        let n = match &r.value {
            QueryValue::Matrix(m) => m.iter().map(|s| s.floats.len()).sum::<usize>(),
            _ => 0,
        };
        println!(
            "range 6h/60s  {:>8.1} ms  {n:>9} points  {q}",
            t0.elapsed().as_secs_f64() * 1e3
        );
        let t0 = Instant::now();
        let r = e.instant_query(&st, q, end).unwrap();
        let n = match &r.value {
            QueryValue::Vector(v) => v.len(),
            _ => 0,
        };
        println!(
            "instant       {:>8.1} ms  {n:>9} samples {q}",
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
}
