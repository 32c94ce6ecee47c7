//! Block write throughput: N series × 120 samples (one full chunk each,
//! 15s scrape interval) from an in-memory source, encoded to XOR chunks and
//! written as a complete block (chunks, index, tombstones, meta.json, with
//! fsyncs). Reported as samples per second; also prints bytes per sample of
//! the resulting block.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::time::Duration;

use cairn_model::{Labels, Sample};
use cairn_storage::{MemStorage, Queryable};
use cairn_tsdb::{write_block, BlockWriteOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SAMPLES: i64 = 120;
const STEP: i64 = 15_000;

fn source(n: usize) -> MemStorage {
    let mem = MemStorage::new();
    for i in 0..n {
        let l = Labels::from_pairs([
            (
                "__name__",
                format!(
                    "DCGM_FI_DEV_{}",
                    ["GPU_UTIL", "FB_USED", "POWER_USAGE", "GPU_TEMP"][i % 4]
                ),
            ),
            ("Hostname", format!("node-{:04}", i / 32)),
            ("gpu", format!("{}", (i / 4) % 8)),
            ("job", "dcgm".to_string()),
        ]);
        let mut v = (i % 97) as f64;
        mem.add(
            l,
            (0..SAMPLES).map(|k| {
                v += ((k * 7 + i as i64) % 5) as f64 * 0.25;
                Sample::new(k * STEP, v)
            }),
        );
    }
    mem
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_write");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for n in [1_000usize, 10_000] {
        let mem = source(n);
        g.throughput(Throughput::Elements(n as u64 * SAMPLES as u64));
        let mut printed = false;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                let q = mem.querier(0, SAMPLES * STEP).unwrap();
                let m = write_block(
                    dir.path(),
                    &*q,
                    0,
                    SAMPLES * STEP + 1,
                    &BlockWriteOptions::default(),
                )
                .unwrap()
                .unwrap();
                if !printed {
                    let bdir = dir.path().join(m.ulid.to_string());
                    let size: u64 = ["index", "chunks/000001"]
                        .iter()
                        .map(|f| std::fs::metadata(bdir.join(f)).unwrap().len())
                        .sum();
                    println!(
                        "block_write/{n}: {} bytes on disk, {:.2} bytes/sample",
                        size,
                        size as f64 / m.stats.num_samples as f64
                    );
                    printed = true;
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
