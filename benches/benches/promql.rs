//! PromQL range and instant queries over an in-memory head filled with the
//! simulated GPU cluster (`crates/gpusim`: 20 nodes, 2 h at 15 s, pods
//! replaced every hour; about 16,000 active series and 7.8 million
//! samples): the dashboard queries of `scripts/bench-query.sh`, over the
//! last 110 minutes at a 60 s step, and a few instant queries.
//!
//! `cargo bench -p cairn-benches --bench promql` (`PROMQL_NODES=n` for
//! another cluster size). With `PROMQL_ONCE=1` each query runs once and
//! nothing is timed: for counting instructions, repeatable on a busy
//! machine, with `PROMQL_THREADS=1 valgrind --tool=callgrind
//! --toggle-collect='*Engine*_query*'`. The engine's public API is all it
//! uses, so the same file runs against an older revision for a
//! before/after comparison.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::time::Duration;

use cairn_gpusim::ClusterSpec;
use cairn_head::{Head, HeadOptions};
use cairn_promql::{Engine, EngineOptions};
use cairn_storage::Appendable;
use criterion::{criterion_group, criterion_main, Criterion};

const QUERIES: [(&str, &str); 7] = [
    ("avg_by_host", "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)"),
    (
        "rate_sum_by_host",
        "sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_RX_BYTES[5m]))",
    ),
    (
        "fb_used_ratio",
        "sum by (Hostname) (DCGM_FI_DEV_FB_USED) / sum by (Hostname) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
    ),
    (
        "node_cpu_busy",
        "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
    ),
    (
        "energy_by_namespace",
        "sum by (namespace) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))",
    ),
    ("topk_max_temp", "topk(10, max_over_time(DCGM_FI_DEV_GPU_TEMP[10m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.9, sum by (le) (rate(kubelet_pod_start_duration_seconds_bucket[5m])))",
    ),
];

const STEP: i64 = 60_000;
const SCRAPES: u64 = 480;

/// A head holding `nodes` nodes of the cluster for 2 hours.
fn head(dir: &std::path::Path, nodes: usize) -> (Head, i64) {
    let head = Head::open(dir, HeadOptions::default()).expect("open head");
    let spec = ClusterSpec {
        nodes,
        ..ClusterSpec::default()
    };
    let start = 1_700_000_000_000i64;
    for step in 0..SCRAPES {
        let t = start + step as i64 * spec.scrape_interval_ms;
        let mut app = head.appender();
        for s in spec.series_at(step) {
            let v = spec.value(&s, step);
            app.append(0, &s.labels, t, v).expect("append");
        }
        app.commit().expect("commit");
    }
    (head, start)
}

fn queries(c: &mut Criterion) {
    let nodes = std::env::var("PROMQL_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let (head, start) = head(dir.path(), nodes);
    let end = start + (SCRAPES as i64 - 1) * 15_000;
    let mut opts = EngineOptions::default();
    // PROMQL_THREADS=n sets the engine's parallelism (1 for callgrind,
    // which follows the calling thread).
    if let Some(n) = std::env::var("PROMQL_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.parallelism = n;
    }
    let engine = Engine::new(opts);
    let (qstart, qend) = (start + 600_000 + 500, end - 15_000 + 500);
    if std::env::var("PROMQL_ONCE").is_ok() {
        // A query first whose count includes everything before it (the
        // head's fill), so the counted queries' own counts stand alone.
        let _ = engine.instant_query(&head, "vector(1)", qend);
        for (name, q) in QUERIES {
            let r = engine.range_query(&head, q, qstart, qend, STEP);
            let i = engine.instant_query(&head, q, qend);
            eprintln!("{name}: range ok {}, instant ok {}", r.is_ok(), i.is_ok());
        }
        return;
    }
    let mut g = c.benchmark_group("promql_range_2h_60s");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for (name, q) in QUERIES {
        g.bench_function(name, |b| {
            b.iter(|| {
                engine
                    .range_query(&head, q, qstart, qend, STEP)
                    .expect("query")
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("promql_instant");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    for (name, q) in QUERIES {
        g.bench_function(name, |b| {
            b.iter(|| engine.instant_query(&head, q, qend).expect("query"))
        });
    }
    g.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
