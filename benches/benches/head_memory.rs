//! Heap bytes per active series in the head, for 1,000,000 series with
//! DCGM-exporter-style labels, measured with a counting global allocator:
//! live bytes after creating the series (one sample each) and after 121
//! samples each (one full chunk moved to chunks_head/ plus an open chunk),
//! divided by the number of series. The criterion measurement itself is the
//! time to create 100k series in a fresh head; the memory figures are printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_head::{Head, HeadOptions};
use cairn_model::Labels;
use cairn_storage::Appendable;
use criterion::{criterion_group, criterion_main, Criterion};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const METRICS: [&str; 20] = [
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
];

/// Series `i` of a cluster of 8-GPU hosts exporting 20 DCGM metrics.
fn dcgm_labels(i: usize) -> Labels {
    let metric = METRICS[i % METRICS.len()];
    let gpu = (i / METRICS.len()) % 8;
    let host = i / (METRICS.len() * 8);
    Labels::from_pairs([
        ("__name__", metric.to_owned()),
        ("gpu", gpu.to_string()),
        ("UUID", format!("GPU-{host:08x}-7c1e-4b2a-9d3f-{gpu:012x}")),
        ("device", format!("nvidia{gpu}")),
        ("modelName", "NVIDIA H100 80GB HBM3".to_owned()),
        ("Hostname", format!("gpu-node-{host:05}")),
        ("DCGM_FI_DRIVER_VERSION", "535.129.03".to_owned()),
        ("container", "trainer".to_owned()),
        ("namespace", format!("team-{}", host % 40)),
        (
            "pod",
            format!("train-job-{}-worker-{}", host / 16, host % 16),
        ),
        (
            "instance",
            format!(
                "10.{}.{}.{}:9400",
                host / 65536,
                (host / 256) % 256,
                host % 256
            ),
        ),
        ("job", "dcgm-exporter".to_owned()),
    ])
}

const N: usize = 1_000_000;
const BATCH: usize = 10_000;

/// Creates series `0..refs.len()` with one sample at `t0`, recording refs.
fn create(head: &Head, refs: &mut [u64], t0: i64) {
    for (bi, rb) in refs.chunks_mut(BATCH).enumerate() {
        let mut app = head.appender();
        for (k, r) in rb.iter_mut().enumerate() {
            *r = app
                .append(0, &dcgm_labels(bi * BATCH + k), t0, 0.0)
                .expect("append");
        }
        app.commit().expect("commit");
    }
}

/// Appends `samples` more samples to every series, by ref, 15 s apart.
fn more(head: &Head, refs: &[u64], t0: i64, samples: i64) {
    let none = Labels::empty();
    for k in 0..samples {
        for rb in refs.chunks(BATCH) {
            let mut app = head.appender();
            for &r in rb {
                app.append(r, &none, t0 + k * 15_000, k as f64)
                    .expect("append");
            }
            app.commit().expect("commit");
        }
    }
}

fn memory(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut refs = vec![0u64; N];
    let base = LIVE.load(Ordering::Relaxed);
    let head = Head::open(dir.path(), HeadOptions::default()).expect("open");
    create(&head, &mut refs, 0);
    let one = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    let label_bytes: usize = (0..1000)
        .map(|i| dcgm_labels(i).encoded_len())
        .sum::<usize>()
        / 1000;
    eprintln!(
        "head_memory: 1M series, 1 sample each: {} MiB live, {} bytes/series (label set encoding alone: {} bytes)",
        one >> 20,
        one / N,
        label_bytes
    );
    more(&head, &refs, 15_000, 120);
    let full = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    eprintln!(
        "head_memory: 1M series, 121 samples each (1 chunk in chunks_head/ + open chunk): {} MiB live, {} bytes/series; {} chunks",
        full >> 20,
        full / N,
        head.stats().num_chunks
    );
    drop(head);

    // Timed part: creating 100,000 series in a fresh head (one sample each).
    let mut g = c.benchmark_group("head_memory");
    g.throughput(criterion::Throughput::Elements(100_000));
    g.bench_function("create_100k_dcgm_series", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = tempfile::tempdir().expect("tempdir");
                let h = Head::open(d.path(), HeadOptions::default()).expect("open");
                let mut refs = vec![0u64; 100_000];
                let st = Instant::now();
                create(&h, &mut refs, 0);
                total += st.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    targets = memory
}
criterion_main!(benches);
