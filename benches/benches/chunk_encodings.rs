//! Encode and bulk-decode throughput of the float chunk encodings (XOR,
//! XOR2, dense), samples per second, on GPU-exporter-like series.
//!
//! Data: 600 series of 480 samples (2 h at a 15 s scrape, each scrape up to
//! 25 ms late): a third 6-decimal gauges (DCGM profiling fields), a third
//! counters with noisy increments, a third integer gauges. XOR and XOR2
//! are cut every 120 samples as Prometheus cuts them, dense chunks hold
//! all 480. Bytes per sample of each encoding are printed first.

use cairn_codec::{decode_float_chunk, FloatChunkBuilder, FloatEncoding};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const SERIES: usize = 600;
const SAMPLES: usize = 480;

fn series(kind: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = 1000.0;
    (0..SAMPLES)
        .map(|i| {
            let t = 1_700_000_000_000 + i as i64 * 15_000 + (next() % 26) as i64;
            let val = match kind {
                0 => {
                    ((i as f64 / 30.0).sin() * 0.4 + 0.5 + (next() % 1000) as f64 * 1e-4)
                        .mul_add(1e6, 0.0)
                        .round()
                        / 1e6
                }
                1 => {
                    v += (next() % 2000) as f64;
                    v
                }
                _ => (40.0 + (next() % 30) as f64).round(),
            };
            (t, val)
        })
        .collect()
}

fn encode(s: &[(i64, f64)], enc: FloatEncoding) -> Vec<Vec<u8>> {
    let mut b = FloatChunkBuilder::new(enc);
    let mut out = Vec::new();
    for part in s.chunks(enc.samples_per_chunk()) {
        for &(t, v) in part {
            b.push(t, v);
        }
        if let Ok(c) = b.finish() {
            out.push(c);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let inputs: Vec<Vec<(i64, f64)>> = (0..SERIES).map(|i| series(i % 3, i as u64 + 1)).collect();
    let n = (SERIES * SAMPLES) as u64;
    let mut g = c.benchmark_group("chunk_encodings");
    g.throughput(Throughput::Elements(n));
    for enc in [
        FloatEncoding::Xor,
        FloatEncoding::Xor2,
        FloatEncoding::Dense,
    ] {
        let encoded: Vec<Vec<u8>> = inputs.iter().flat_map(|s| encode(s, enc)).collect();
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        eprintln!("{enc}: {:.3} bytes/sample", bytes as f64 / n as f64);
        g.bench_function(format!("{enc}/encode"), |b| {
            b.iter(|| {
                let mut total = 0usize;
                for s in &inputs {
                    total += encode(s, enc).iter().map(Vec::len).sum::<usize>();
                }
                black_box(total)
            })
        });
        g.bench_function(format!("{enc}/decode"), |b| {
            let mut buf: Vec<(i64, f64)> = Vec::with_capacity(SAMPLES);
            b.iter(|| {
                let mut total = 0usize;
                for ch in &encoded {
                    buf.clear();
                    total +=
                        decode_float_chunk(enc.byte(), ch, |t, v| buf.push((t, v))).unwrap_or(0);
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
