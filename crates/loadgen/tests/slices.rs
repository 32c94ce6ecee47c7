//! Sending a run in slices: whatever the slice bound, the requests are those
//! the load generator sent when it encoded the whole run at once (checked
//! against that algorithm, kept here as the reference), every series gets
//! the same samples in the same, increasing time order, and no slice holds
//! more compressed bytes than its bound.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use cairn_gpusim::ClusterSpec;
use cairn_loadgen::{
    encode_write_request, scrape_jitter, LoadSpec, Producer, RequestMeta, Slice, SliceEncoder,
};
use cairn_model::Labels;
use support::{decode_request, series_key};

/// A small cluster over a short time, with pod churn inside it, small
/// batches (many requests) and three shards.
fn spec(jitter_ms: i64) -> LoadSpec {
    LoadSpec {
        cluster: ClusterSpec {
            nodes: 3,
            pod_lifetime_scrapes: 4,
            ..ClusterSpec::default()
        },
        scrapes: 9,
        first_scrape: 2,
        start_ms: 1_700_000_000_000,
        batch: 300,
        shards: 3,
        jitter_ms,
    }
}

/// The whole run encoded at once, per shard, as the load generator did
/// before it sent in slices: every series of a scrape round (`series_at`),
/// round after round, batched per shard, the partly filled batches last.
fn reference(spec: &LoadSpec) -> Vec<Vec<Bytes>> {
    let n = spec.shards.max(1);
    let mut out = vec![Vec::new(); n];
    let mut pending: Vec<Vec<(Labels, i64, f64)>> = vec![Vec::new(); n];
    let flush = |out: &mut Vec<Bytes>, p: &mut Vec<(Labels, i64, f64)>| {
        let mut raw = Vec::new();
        encode_write_request(p, &mut raw);
        out.push(Bytes::from(
            snap::raw::Encoder::new().compress_vec(&raw).unwrap(),
        ));
        p.clear();
    };
    for step in spec.first_scrape..spec.first_scrape + spec.scrapes {
        let t = spec.start_ms + step as i64 * spec.cluster.scrape_interval_ms;
        for s in spec.cluster.series_at(step) {
            let h = s.labels.hash64();
            let inst = s.labels.get("instance").unwrap_or_default();
            let t = t + scrape_jitter(spec.cluster.seed, inst, step, spec.jitter_ms);
            let shard = (h % n as u64) as usize;
            let v = spec.cluster.value(&s, step);
            pending[shard].push((s.labels, t, v));
            if pending[shard].len() >= spec.batch {
                flush(&mut out[shard], &mut pending[shard]);
            }
        }
    }
    for (o, p) in out.iter_mut().zip(pending.iter_mut()) {
        if !p.is_empty() {
            flush(o, p);
        }
    }
    out
}

/// Every slice, in order, that a run hands out with slices of at most
/// `max_bytes`.
fn slices(spec: &LoadSpec, max_bytes: usize) -> Vec<Slice> {
    let mut enc = SliceEncoder::new(spec.clone());
    std::iter::from_fn(|| enc.next_slice(max_bytes)).collect()
}

/// [`slices`] encoded on `threads` threads, and the distinct series.
fn slices_on(spec: &LoadSpec, max_bytes: usize, threads: usize) -> (Vec<Slice>, u64) {
    let mut enc = SliceEncoder::with_threads(spec.clone(), threads);
    assert_eq!(enc.threads(), threads);
    let all = std::iter::from_fn(|| enc.next_slice(max_bytes)).collect();
    (all, enc.distinct_series())
}

/// Each shard's requests over all slices, in the order they are sent.
fn per_shard(slices: &[Slice], shards: usize) -> Vec<Vec<Bytes>> {
    let mut out = vec![Vec::new(); shards];
    for slice in slices {
        assert_eq!(slice.shards.len(), shards);
        for (o, s) in out.iter_mut().zip(&slice.shards) {
            o.extend(s.requests.iter().cloned());
        }
    }
    out
}

/// Each series' samples (t, value bits) in the order they are sent.
fn per_series(shards: &[Vec<Bytes>]) -> BTreeMap<String, Vec<(i64, u64)>> {
    let mut out: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for r in shards.iter().flatten() {
        for ts in decode_request(r).timeseries {
            let samples = out.entry(series_key(&ts)).or_default();
            samples.extend(ts.samples.iter().map(|x| (x.timestamp, x.value.to_bits())));
        }
    }
    out
}

/// Bounds from "everything in one slice" down to "one request a slice".
const BOUNDS: [usize; 4] = [usize::MAX, 64 << 10, 10_000, 1];

#[test]
fn sliced_run_sends_todays_requests() {
    for jitter_ms in [0, 40] {
        let spec = spec(jitter_ms);
        let want = reference(&spec);
        assert!(want.iter().all(|s| s.len() > 3), "too few requests a shard");
        for max_bytes in BOUNDS {
            let got = per_shard(&slices(&spec, max_bytes), spec.shards);
            assert_eq!(got, want, "jitter {jitter_ms}, slices of {max_bytes} bytes");
        }
    }
}

#[test]
fn sliced_run_sends_every_series_the_same_samples_in_time_order() {
    let spec = spec(40);
    let whole = per_series(&per_shard(&slices(&spec, usize::MAX), spec.shards));
    let samples: usize = whole.values().map(Vec::len).sum();
    let per_round = spec.cluster.series_at(spec.first_scrape).len();
    assert_eq!(samples, per_round * spec.scrapes as usize);
    // Pods were replaced within the run: more series than in one round.
    assert!(whole.len() > per_round);
    for (series, s) in &whole {
        assert!(
            s.windows(2).all(|w| w[0].0 < w[1].0),
            "{series} out of order: {s:?}"
        );
    }
    for max_bytes in BOUNDS {
        let sliced = slices(&spec, max_bytes);
        assert!(max_bytes == usize::MAX || sliced.len() > 1);
        let got = per_series(&per_shard(&sliced, spec.shards));
        assert_eq!(got.len(), whole.len(), "slices of {max_bytes} bytes");
        for (series, s) in &whole {
            assert_eq!(got.get(series), Some(s), "{series}, slices of {max_bytes}");
        }
    }
}

#[test]
fn slices_honour_their_bound() {
    let spec = spec(0);
    let all = slices(&spec, usize::MAX);
    assert_eq!(all.len(), 1);
    let total = all[0].bytes();
    let largest = all[0]
        .shards
        .iter()
        .flat_map(|s| &s.requests)
        .map(Bytes::len)
        .max()
        .unwrap();
    for max_bytes in [largest, 3 * largest, 10 * largest + 7, total / 2] {
        let sliced = slices(&spec, max_bytes);
        for (i, s) in sliced.iter().enumerate() {
            assert!(s.requests() > 0, "slice {i} of {max_bytes} bytes is empty");
            assert!(
                s.bytes() <= max_bytes,
                "slice {i}: {} bytes over the bound of {max_bytes}",
                s.bytes()
            );
            // A slice ends only where the next request would not fit.
            if let Some(next) = sliced.get(i + 1) {
                let first = next.shards.iter().find_map(|s| s.requests.first());
                let first = first.map_or(0, Bytes::len);
                assert!(s.bytes() + first > max_bytes, "slice {i} ended early");
            }
        }
        assert_eq!(sliced.iter().map(Slice::bytes).sum::<usize>(), total);
        assert_eq!(
            sliced.iter().map(Slice::samples).sum::<u64>(),
            all[0].samples()
        );
        assert!(sliced.len() >= total / max_bytes, "{max_bytes}");
    }
    // Below one request, each request is a slice of its own.
    let single = slices(&spec, 1);
    assert_eq!(single.len(), all[0].requests());
    assert!(single.iter().all(|s| s.requests() == 1));
}

#[test]
fn encoding_ahead_hands_out_the_same_slices() {
    let spec = spec(40);
    let max_bytes = 20_000;
    let mut inline = Producer::inline(SliceEncoder::new(spec.clone()), max_bytes);
    let mut ahead = Producer::ahead(SliceEncoder::new(spec.clone()), max_bytes).unwrap();
    let mut n = 0;
    loop {
        match (inline.next_slice(), ahead.next_slice()) {
            (Some(a), Some(b)) => {
                let (a, b) = (per_shard(&[a], spec.shards), per_shard(&[b], spec.shards));
                assert_eq!(a, b, "slice {n}");
                n += 1;
            }
            (None, None) => break,
            (a, b) => panic!("slice {n}: {} vs {}", a.is_some(), b.is_some()),
        }
    }
    assert!(n > 1);
    let (a, b) = (inline.finish().unwrap(), ahead.finish().unwrap());
    assert_eq!(a.distinct_series, b.distinct_series);
    assert!(a.distinct_series > 0);
}

#[test]
fn encoding_ahead_stops_when_the_sender_does() {
    let mut ahead = Producer::ahead(SliceEncoder::new(spec(0)), 1).unwrap();
    assert!(ahead.next_slice().is_some());
    // The thread is waiting to hand over the next slice: it must end.
    let stats = ahead.finish().unwrap();
    assert!(stats.distinct_series > 0);
}

#[test]
fn encoding_on_several_threads_hands_out_the_same_slices() {
    // 3 nodes by 9 scrapes: one thread encodes 16 nodes a round, so a
    // round ends inside a scrape round and batches are carried across
    // rounds; more threads take the run in one round. Batches of 7 fill
    // several times within a node, those of 5000 span the whole run.
    for (jitter_ms, batch) in [(40, 300), (0, 7), (40, 5000), (0, 0)] {
        let spec = LoadSpec {
            batch,
            ..spec(jitter_ms)
        };
        let want = reference(&spec);
        for max_bytes in [usize::MAX, 20_000, 1] {
            let (one, series) = slices_on(&spec, max_bytes, 1);
            assert_eq!(per_shard(&one, spec.shards), want, "batch {batch}");
            for threads in [2, 3, 5] {
                let (many, n) = slices_on(&spec, max_bytes, threads);
                let what = format!("batch {batch}, {max_bytes} bytes, {threads} threads");
                assert_eq!(n, series, "{what}");
                assert_eq!(many.len(), one.len(), "{what}");
                for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                    let shards = |s: &Slice| -> Vec<(Vec<Bytes>, Vec<RequestMeta>, u64)> {
                        s.shards
                            .iter()
                            .map(|x| (x.requests.clone(), x.meta.clone(), x.samples))
                            .collect()
                    };
                    assert_eq!(shards(a), shards(b), "{what}: slice {i}");
                }
            }
        }
    }
}

#[test]
fn encoding_on_more_threads_than_nodes_and_no_nodes() {
    let spec = LoadSpec {
        cluster: ClusterSpec {
            nodes: 1,
            ..ClusterSpec::default()
        },
        scrapes: 2,
        ..spec(0)
    };
    let (got, _) = slices_on(&spec, usize::MAX, 8);
    assert_eq!(per_shard(&got, spec.shards), reference(&spec));
    let none = LoadSpec {
        cluster: ClusterSpec {
            nodes: 0,
            ..ClusterSpec::default()
        },
        ..spec
    };
    let (got, series) = slices_on(&none, usize::MAX, 4);
    assert!(got.is_empty());
    assert_eq!(series, 0);
}

#[test]
fn each_request_says_its_samples_and_scrape_rounds() {
    for (jitter_ms, batch, threads) in [(40, 300, 1), (0, 7, 3), (40, 5000, 2)] {
        let spec = LoadSpec {
            batch,
            ..spec(jitter_ms)
        };
        let interval = spec.cluster.scrape_interval_ms;
        for max_bytes in [usize::MAX, 20_000] {
            let (all, _) = slices_on(&spec, max_bytes, threads);
            for shard in 0..spec.shards {
                let mut last_step = spec.first_scrape;
                for slice in &all {
                    let s = &slice.shards[shard];
                    assert_eq!(s.meta.len(), s.requests.len());
                    assert_eq!(s.meta.iter().map(|m| m.samples).sum::<u64>(), s.samples);
                    for (r, m) in s.requests.iter().zip(&s.meta) {
                        let req = decode_request(r);
                        // The jitter is below the interval: a sample's step
                        // is its offset from the start, rounded down.
                        let steps: Vec<u64> = req
                            .timeseries
                            .iter()
                            .flat_map(|ts| &ts.samples)
                            .map(|x| ((x.timestamp - spec.start_ms) / interval) as u64)
                            .collect();
                        let what = format!("shard {shard}, batch {batch}, {threads} threads");
                        assert_eq!(steps.len() as u64, m.samples, "{what}");
                        assert_eq!(steps.first(), Some(&m.first_step), "{what}");
                        assert_eq!(steps.iter().max(), Some(&m.last_step), "{what}");
                        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{what}");
                        // In scrape order across requests, slices included.
                        assert!(m.first_step >= last_step, "{what}");
                        last_step = m.last_step;
                    }
                }
            }
        }
    }
}
