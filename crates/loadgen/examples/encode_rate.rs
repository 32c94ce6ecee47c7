//! Encodes a run without sending it and prints the encode rate and a
//! digest of every shard's requests, to compare encoders:
//! `cargo run --release -p cairn-loadgen --example encode_rate -- NODES HOURS [SLICE_MIB [THREADS]]`.

use std::time::Instant;

use cairn_gpusim::ClusterSpec;
use cairn_loadgen::{LoadSpec, SliceEncoder};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (nodes, hours, slice_mib) = (arg(1, 200.0) as usize, arg(2, 0.25), arg(3, 256.0));
    let threads = arg(4, 1.0) as usize;
    let scrapes = (hours * 240.0).round().max(1.0) as u64;
    let spec = LoadSpec {
        cluster: ClusterSpec {
            nodes,
            ..ClusterSpec::default()
        },
        scrapes,
        first_scrape: 0,
        start_ms: 1_700_000_000_000,
        batch: 2000,
        shards: 8,
        jitter_ms: 0,
    };
    let mut enc = SliceEncoder::with_threads(spec, threads);
    // FNV-1a over each shard's requests, length-prefixed, in order.
    let mut digest = vec![0xcbf2_9ce4_8422_2325u64; enc.shards()];
    let (mut samples, mut bytes, mut slices) = (0u64, 0usize, 0u64);
    let mut secs = 0.0;
    loop {
        let t = Instant::now();
        let Some(slice) = enc.next_slice((slice_mib * 1048576.0) as usize) else {
            break;
        };
        secs += t.elapsed().as_secs_f64();
        slices += 1;
        samples += slice.samples();
        bytes += slice.bytes();
        for (d, s) in digest.iter_mut().zip(&slice.shards) {
            for r in &s.requests {
                for b in (r.len() as u64).to_le_bytes().iter().chain(r.iter()) {
                    *d = (*d ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    println!(
        "{threads} threads: {samples} samples, {bytes} bytes, {slices} slices, {} series in {secs:.2}s: {:.3} M samples/s",
        enc.distinct_series(),
        samples as f64 / secs / 1e6
    );
    println!("digest {digest:x?}");
}
