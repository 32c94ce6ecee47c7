//! Builds remote-write 1.0 requests for a simulated GPU cluster; the
//! [`blocks`] module instead writes the cluster's samples straight into
//! Prometheus-format blocks.
//!
//! Requests are encoded ahead of time, before any timing starts, so the
//! generator spends no CPU on encoding while the server under test works.
//! Like Prometheus's queue manager, series are split into shards by label
//! hash; each shard's requests are in time order and one connection sends
//! one shard's requests sequentially, so no series ever goes out of order.

pub mod blocks;
mod encode;

pub use encode::{encode_write_request, put_uvarint};

use cairn_gpusim::ClusterSpec;

/// What to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub cluster: ClusterSpec,
    /// Number of scrapes per series to send.
    pub scrapes: u64,
    /// Index of the first scrape to send: a long span can be sent in
    /// slices (bounded memory for the pre-encoded requests) that together
    /// are the same data as one run.
    pub first_scrape: u64,
    /// Timestamp of scrape 0, ms.
    pub start_ms: i64,
    /// Samples per request (Prometheus's max_samples_per_send default: 2000).
    pub batch: usize,
    /// Number of shards (one connection each).
    pub shards: usize,
    /// Each target's scrape is late by a deterministic `0..=jitter_ms` ms
    /// (every series of one scrape shares the timestamp, as in
    /// Prometheus); 0 puts every scrape on the interval's grid.
    pub jitter_ms: i64,
}

/// How late the scrape of the target `instance` at `step` is, in
/// `0..=jitter_ms`: deterministic, so slices of one run agree.
pub fn scrape_jitter(seed: u64, instance: &str, step: u64, jitter_ms: i64) -> i64 {
    if jitter_ms <= 0 {
        return 0;
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in instance.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let x = cairn_gpusim::mix(seed ^ cairn_gpusim::mix(h) ^ step);
    (x % (jitter_ms as u64 + 1)) as i64
}

/// One shard's pre-encoded, snappy-compressed requests, in time order.
#[derive(Debug, Default)]
pub struct Shard {
    pub requests: Vec<bytes::Bytes>,
    pub samples: u64,
}

/// Encodes all requests. Returns the shards and the number of distinct
/// series generated (pod churn included).
pub fn build(spec: &LoadSpec) -> (Vec<Shard>, u64) {
    let shards_n = spec.shards.max(1);
    let mut shards: Vec<Shard> = (0..shards_n).map(|_| Shard::default()).collect();
    let mut pending: Vec<Vec<(cairn_model::Labels, i64, f64)>> = vec![Vec::new(); shards_n];
    let mut seen = std::collections::HashSet::new();
    let mut raw = Vec::new();
    let mut enc = snap::raw::Encoder::new();
    for step in spec.first_scrape..spec.first_scrape.saturating_add(spec.scrapes) {
        let t = spec.start_ms + step as i64 * spec.cluster.scrape_interval_ms;
        for s in spec.cluster.series_at(step) {
            let h = s.labels.hash64();
            seen.insert(h);
            let inst = s.labels.get("instance").unwrap_or_default();
            let t = t + scrape_jitter(spec.cluster.seed, inst, step, spec.jitter_ms);
            let shard = (h % shards_n as u64) as usize;
            let v = spec.cluster.value(&s, step);
            let (Some(p), Some(out)) = (pending.get_mut(shard), shards.get_mut(shard)) else {
                continue;
            };
            p.push((s.labels, t, v));
            if p.len() >= spec.batch {
                flush(out, p, &mut raw, &mut enc);
            }
        }
    }
    for (p, out) in pending.iter_mut().zip(shards.iter_mut()) {
        if !p.is_empty() {
            flush(out, p, &mut raw, &mut enc);
        }
    }
    (shards, seen.len() as u64)
}

fn flush(
    shard: &mut Shard,
    p: &mut Vec<(cairn_model::Labels, i64, f64)>,
    raw: &mut Vec<u8>,
    enc: &mut snap::raw::Encoder,
) {
    raw.clear();
    encode_write_request(p, raw);
    let compressed = enc.compress_vec(raw).unwrap_or_default();
    shard.samples += p.len() as u64;
    // `compress_vec` leaves the vector at the worst-case capacity, more than
    // the uncompressed request: keep an exact copy, or the requests of a run
    // take 2.6 times their size (75 instead of 28 bytes per sample).
    shard
        .requests
        .push(bytes::Bytes::copy_from_slice(&compressed));
    p.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples a spec generates, decoded, sorted.
    fn samples(spec: &LoadSpec) -> Vec<(Vec<u8>, i64, u64)> {
        let (shards, _) = build(spec);
        let mut out = Vec::new();
        let mut dec = snap::raw::Decoder::new();
        for r in shards.iter().flat_map(|s| &s.requests) {
            let raw = dec.decompress_vec(r).unwrap();
            let req = <cairn_proto::write::WriteRequest as cairn_proto::Message>::decode(&raw[..])
                .unwrap();
            for ts in req.timeseries {
                let l: Vec<u8> = ts
                    .labels
                    .iter()
                    .flat_map(|l| [&l.name[..], b"=", &l.value[..], b","].concat())
                    .collect();
                for x in ts.samples {
                    out.push((l.clone(), x.timestamp, x.value.to_bits()));
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn slices_add_up_to_one_run() {
        for jitter_ms in [0, 40] {
            let spec = |first_scrape, scrapes| LoadSpec {
                cluster: ClusterSpec {
                    nodes: 2,
                    pod_lifetime_scrapes: 3,
                    ..ClusterSpec::default()
                },
                scrapes,
                first_scrape,
                start_ms: 1_700_000_000_000,
                batch: 500,
                shards: 3,
                jitter_ms,
            };
            let whole = samples(&spec(0, 8));
            let mut parts = samples(&spec(0, 5));
            parts.extend(samples(&spec(5, 3)));
            parts.sort_unstable();
            assert!(!whole.is_empty());
            assert_eq!(whole, parts);
            let off_grid = whole
                .iter()
                .filter(|x| (x.1 - 1_700_000_000_000) % 15_000 != 0)
                .count();
            assert_eq!(off_grid > 0, jitter_ms > 0, "jitter {jitter_ms}");
        }
    }
}
