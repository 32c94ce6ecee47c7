//! Head append throughput, in samples per second, with the WAL on (no
//! fsync per commit, as Prometheus's default):
//! - `one_series`: batches of 1,000 samples into a single series;
//! - `1M_series`: 1,000,000 distinct DCGM-exporter-style series, created in a
//!   first pass (reported separately), then one sample per series per
//!   commit of 10,000 series (a remote-write batch), cycling over all 1M.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use cairn_benches::dcgm_labels;
use cairn_head::{Head, HeadOptions};
use cairn_model::Labels;
use cairn_storage::Appendable;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn open(dir: &std::path::Path) -> Head {
    Head::open(dir, HeadOptions::default()).expect("open head")
}

fn one_series(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = open(dir.path());
    let l = dcgm_labels(0);
    let t = AtomicI64::new(0);
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("one_series_1000_per_commit", |b| {
        b.iter(|| {
            let mut app = head.appender();
            let mut r = 0;
            for _ in 0..1000 {
                let ts = t.fetch_add(1, Ordering::Relaxed);
                r = app.append(r, &l, ts, ts as f64).expect("append");
            }
            app.commit().expect("commit");
        })
    });
    g.finish();
}

const N: usize = 1_000_000;
const BATCH: usize = 10_000;

fn million_series(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = open(dir.path());
    let labels: Vec<Labels> = (0..N).map(dcgm_labels).collect();
    let mut refs = vec![0u64; N];
    let start = Instant::now();
    for (lb, rb) in labels.chunks(BATCH).zip(refs.chunks_mut(BATCH)) {
        let mut app = head.appender();
        for (l, r) in lb.iter().zip(rb.iter_mut()) {
            *r = app.append(0, l, 0, 1.0).expect("append");
        }
        app.commit().expect("commit");
    }
    let el = start.elapsed();
    eprintln!(
        "head_append/1M_series_create: {} series in {:.2?} = {:.0} samples/s (series creation included)",
        N,
        el,
        N as f64 / el.as_secs_f64()
    );
    let mut next = 0usize;
    let mut round = 1i64;
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("1M_series_10k_per_commit", |b| {
        b.iter(|| {
            let mut app = head.appender();
            for i in next..next + BATCH {
                let ts = round * 15_000;
                app.append(refs[i], &labels[i], ts, round as f64)
                    .expect("append");
            }
            app.commit().expect("commit");
            next += BATCH;
            if next >= N {
                next = 0;
                round += 1;
            }
        })
    });
    g.finish();
    eprintln!("head_append: {} series in head", head.stats().num_series);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = one_series, million_series
}
criterion_main!(benches);
