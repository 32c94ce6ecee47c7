//! Heap bytes per active series in the head, for 1,000,000 series with
//! DCGM-exporter-style labels, measured with a counting global allocator:
//! live bytes after creating the series (one sample each) and after 121
//! samples each (one full chunk moved to chunks_head/ plus an open chunk),
//! divided by the number of series. The criterion measurement itself is the
//! time to create 100k series in a fresh head; the memory figures are printed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_benches::dcgm_labels;
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
