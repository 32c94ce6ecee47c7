//! Times the issue-4 dashboard queries in-process over a data directory
//! filled by `cairn-loadgen` (e.g. the one `scripts/bench-query.sh` leaves):
//! `cargo run --release -p cairn-promql --example bench_db -- DIR [REPS] [FILTER]`
//! (`THREADS=n` sets the engine's parallelism).
//! The range is the script's: from 10 minutes after the head's first sample
//! to 15 s before its last, half a second off the sample grid, step 60 s.
use std::time::Instant;

use cairn_promql::{Engine, EngineOptions, QueryValue};
use cairn_tsdb::{Db, DbOptions};

const QUERIES: [&str; 7] = [
    "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)",
    "sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_RX_BYTES[5m]))",
    "sum by (Hostname) (DCGM_FI_DEV_FB_USED) / sum by (Hostname) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
    "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
    "sum by (namespace) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))",
    "topk(10, max_over_time(DCGM_FI_DEV_GPU_TEMP[10m]))",
    "histogram_quantile(0.9, sum by (le) (rate(kubelet_pod_start_duration_seconds_bucket[5m])))",
];

/// This thread's CPU time in ns (Linux `schedstat`), when readable: less
/// noisy than wall time on a machine shared with other work.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: bench_db DIR [REPS] [FILTER]");
    let reps: usize = args.next().map_or(5, |r| r.parse().expect("REPS"));
    let only = args.next();
    let opts = DbOptions {
        maintenance_interval: None,
        ..DbOptions::default()
    };
    let t0 = Instant::now();
    let db = Db::open(std::path::Path::new(&dir), opts).expect("open db");
    eprintln!("opened in {:.1} s", t0.elapsed().as_secs_f64());
    let (hmin, hmax) = (db.head().min_time(), db.head().max_time());
    let start = (hmin / 1000 + 600) * 1000 + 500;
    let end = (hmax / 1000 - 15) * 1000 + 500;
    // THREADS=n overrides the engine's parallelism (default: the CPU count).
    let mut eo = EngineOptions::default();
    if let Some(n) = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()) {
        eo.parallelism = n;
    }
    let e = Engine::new(eo);
    for q in QUERIES {
        if only.as_deref().is_some_and(|o| !q.contains(o)) {
            continue;
        }
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut points = 0;
        for _ in 0..reps {
            let t0 = Instant::now();
            let c0 = cpu_ns();
            let r = e
                .range_query(db.as_ref(), q, start, end, 60_000)
                .expect("query");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if let (Some(a), Some(b)) = (c0, cpu_ns()) {
                cpu.push(b.saturating_sub(a) as f64 / 1e6);
            }
            points = match &r.value {
                QueryValue::Matrix(m) => m.iter().map(|s| s.floats.len()).sum::<usize>(),
                _ => 0,
            };
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let med = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let cmed = cpu.get(cpu.len() / 2).copied().unwrap_or(f64::NAN);
        println!("{med:>8.1} ms (cpu {cmed:>6.1} ms) median of {reps}  {points:>7} points  {q}");
    }
}
