//! Builds remote-write 1.0 requests for a simulated GPU cluster; the
//! [`blocks`] module instead writes the cluster's samples straight into
//! Prometheus-format blocks.
//!
//! Like Prometheus's queue manager, series are split into shards by label
//! hash; each shard's requests are in time order and one connection sends
//! one shard's requests sequentially, so no series ever goes out of order.
//! A run is encoded in slices of a bounded size ([`slices`]), so memory
//! holds one or two slices' requests however long the run is; by default
//! a slice is encoded before it is sent, while the connections are idle,
//! so the generator spends no CPU on encoding while the server under test
//! works ([`producer`] can encode the next slice on a thread instead). A
//! slice can be encoded on several threads
//! ([`SliceEncoder::with_threads`]), into the same requests.
//!
//! [`send`] sends them and records which requests each connection got
//! acknowledged; [`ack`] turns that into a time up to which every sample
//! was acknowledged, which [`verify_acked`] checks a server still holds
//! after it was killed during ingest and restarted.

pub mod ack;
pub mod blocks;
mod encode;
pub mod producer;
pub mod query;
mod round;
pub mod send;
pub mod slices;
pub mod verify_acked;

pub use encode::{encode_series, encode_write_request, put_uvarint};
pub use producer::{EncodeStats, Producer, ProducerError};
pub use slices::{Slice, SliceEncoder};

use cairn_gpusim::ClusterSpec;

/// What to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub cluster: ClusterSpec,
    /// Number of scrapes per series to send.
    pub scrapes: u64,
    /// Index of the first scrape to send: a long span can be sent in
    /// parts, by several runs, that together are the same data as one run.
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
    /// What each request holds, one per request, in the same order.
    pub meta: Vec<RequestMeta>,
    pub samples: u64,
}

/// What one request holds: its samples, and the scrape rounds (steps) of
/// its first and last sample. A shard's samples go out scrape round after
/// scrape round, so a request's samples are of steps `first_step..=last_step`,
/// and the next request of the shard starts at `last_step` or later.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta {
    pub samples: u64,
    pub first_step: u64,
    pub last_step: u64,
}

/// Encodes all requests at once, as one slice. Returns the shards and the
/// number of distinct series generated (pod churn included).
pub fn build(spec: &LoadSpec) -> (Vec<Shard>, u64) {
    let mut encoder = SliceEncoder::new(spec.clone());
    let shards = match encoder.next_slice(usize::MAX) {
        Some(slice) => slice.shards,
        None => (0..encoder.shards()).map(|_| Shard::default()).collect(),
    };
    (shards, encoder.distinct_series())
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
