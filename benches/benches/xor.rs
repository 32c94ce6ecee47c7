//! XOR chunk encode and decode throughput (samples/s).
//!
//! Data: 1,000 chunks of 120 samples each (Prometheus's chunk size), from
//! three realistic shapes: a counter at a regular 15 s scrape interval, a
//! gauge with float noise and millisecond jitter, and a constant series.
//! Throughput is reported per sample.

use cairn_codec::{xor_decode, xor_iter, XorChunk};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const CHUNKS: usize = 1000;
const PER_CHUNK: usize = 120;

fn series(kind: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0f64;
    (0..PER_CHUNK)
        .map(|i| {
            match kind {
                0 => {
                    t += 15_000;
                    v += (next() % 100) as f64;
                }
                1 => {
                    t += 15_000 + (next() % 20) as i64 - 10;
                    v = 60.0 + (i as f64 / 10.0).sin() * 10.0 + (next() % 1000) as f64 * 1e-4;
                }
                _ => {
                    t += 15_000;
                    v = 1.0;
                }
            }
            (t, v)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let inputs: Vec<Vec<(i64, f64)>> = (0..CHUNKS).map(|i| series(i % 3, i as u64 + 1)).collect();
    let encoded: Vec<Vec<u8>> = inputs
        .iter()
        .map(|s| {
            let mut ch = XorChunk::new();
            for &(t, v) in s {
                ch.append(t, v);
            }
            ch.into_bytes()
        })
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    eprintln!(
        "xor bench: {} samples in {} bytes ({:.2} bytes/sample)",
        CHUNKS * PER_CHUNK,
        bytes,
        bytes as f64 / (CHUNKS * PER_CHUNK) as f64
    );

    let mut g = c.benchmark_group("xor");
    g.throughput(Throughput::Elements((CHUNKS * PER_CHUNK) as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for s in &inputs {
                let mut ch = XorChunk::new();
                for &(t, v) in s {
                    ch.append(t, v);
                }
                total += ch.bytes().len();
            }
            black_box(total)
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            for e in &encoded {
                let mut it = xor_iter(e);
                while it.next() {
                    sum = sum.wrapping_add(it.at().0);
                }
            }
            black_box(sum)
        })
    });
    g.bench_function("decode_bulk", |b| {
        let mut out: Vec<(i64, f64)> = Vec::with_capacity(PER_CHUNK);
        b.iter(|| {
            let mut sum = 0i64;
            for e in &encoded {
                out.clear();
                let _ = xor_decode(e, |t, v| out.push((t, v)));
                sum = sum.wrapping_add(out.iter().map(|p| p.0).sum::<i64>());
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
