//! Times the issue-4 dashboard queries in-process over a data directory
//! filled by `cairn-loadgen` (e.g. the one `scripts/bench-query.sh` leaves):
//! `cargo run --release -p cairn-promql --example bench_db -- DIR [REPS] [FILTER]`
//! (`THREADS=n` sets the engine's parallelism, `DELAYED=1` turns delayed
//! name removal on, `QUERY=expr` times one
//! expression instead of the dashboard set, `COLD=1` evicts the CPU caches
//! before every run, as the other work between a benchmark's queries does;
//! without it, the process's CPU per run is printed too, a steadier figure
//! than wall time on a busy machine).
//! The range is the script's: from 10 minutes after the first sample (in
//! the blocks or the head) to 15 s before the head's last, half a second
//! off the sample grid, step 60 s.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
use std::time::Instant;

use cairn_promql::{Engine, EngineOptions, QueryValue};
use cairn_tsdb::{Db, DbOptions};

/// The allocator the `cairn` binary uses, so that timings match the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// CPU time of the whole process so far in ms (`/proc/self/stat`, in clock
/// ticks of 10 ms: precise over many runs, unlike a single run's figure).
fn process_cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the line.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * 10.0)
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
    let hmax = db.head().max_time();
    let hmin = db
        .blocks()
        .iter()
        .map(|b| b.meta().min_time)
        .chain([db.head().min_time()])
        .min()
        .unwrap_or(0);
    let start = (hmin / 1000 + 600) * 1000 + 500;
    let end = (hmax / 1000 - 15) * 1000 + 500;
    // THREADS=n overrides the engine's parallelism (default: the CPU count).
    let mut eo = EngineOptions::default();
    if let Some(n) = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()) {
        eo.parallelism = n;
    }
    // DELAYED=1 turns delayed name removal on (`--enable-feature=promql-delayed-name-removal`).
    eo.delayed_name_removal = std::env::var("DELAYED").is_ok();
    let e = Engine::new(eo);
    // QUERY=expr times that expression instead of the dashboard set.
    let custom = std::env::var("QUERY").ok();
    let queries: Vec<&str> = match &custom {
        Some(q) => vec![q.as_str()],
        None => QUERIES.to_vec(),
    };
    // COLD=1 evicts the CPU caches before each run.
    let mut thrash = std::env::var("COLD").ok().map(|_| vec![0u8; 256 << 20]);
    for q in queries {
        if only.as_deref().is_some_and(|o| !q.contains(o)) {
            continue;
        }
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut points = 0;
        let p0 = process_cpu_ms();
        for _ in 0..reps {
            if let Some(b) = thrash.as_mut() {
                // Evict the caches, as other programs running between the
                // queries of a side-by-side benchmark do.
                for (i, x) in b.iter_mut().enumerate().step_by(64) {
                    *x = x.wrapping_add(i as u8);
                }
                std::hint::black_box(&b);
            }
            let t0 = Instant::now();
            let c0 = cpu_ns();
            let r = e
                .range_query(db.as_ref(), q, start, end, 60_000)
                .expect("query");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if let (Some(a), Some(b)) = (c0, cpu_ns()) {
                cpu.push(b.saturating_sub(a) as f64 / 1e6);
            }
            if custom.is_some() {
                if let QueryValue::Matrix(m) = &r.value {
                    if let Some(s) = m.first() {
                        eprintln!("first series, last point: {:?}", s.floats.last());
                    }
                }
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
        // Without COLD, the process's CPU per run (all threads) is a steadier
        // figure than any run's wall time on a busy machine.
        if let (Some(a), Some(b), None) = (p0, process_cpu_ms(), thrash.as_ref()) {
            println!(
                "         process cpu {:.2} ms per run",
                (b - a) / reps as f64
            );
        }
    }
}
