//! Remote read's `STREAMED_XOR_CHUNKS` over a storage whose series hold
//! Cairn's dense chunks (0xfe) and XOR2 chunks (4), as compacted blocks do:
//! every chunk that goes out is XOR (1), with at most 120 samples, its
//! min/max times are its first and last sample, and the samples decode bit
//! for bit to the source's. XOR chunks pass through untouched; chunks
//! entirely outside the query are skipped, others are sent whole.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/chunk_store.rs"]
mod chunk_store;
#[path = "support/harness.rs"]
mod harness;

use std::sync::Arc;

use cairn_codec::{FloatChunkBuilder, FloatEncoding};
use cairn_model::{Labels, STALE_NAN};
use cairn_proto::read::{ChunkedReadResponse, LabelMatcher, Query, ReadHints, ReadRequest};
use cairn_server::ServerConfig;
use cairn_storage::EncodedChunk;
use chunk_store::{ChunkStore, StoredSeries};
use harness::*;

/// Values that exercise every corner of the encoders: decimals, integers,
/// counters with resets, NaN, stale markers, negative and huge numbers.
fn value(i: i64, seed: i64) -> f64 {
    match (i + seed) % 41 {
        7 => f64::NAN,
        13 => STALE_NAN,
        19 => -1.5e300,
        23 => 0.1 + 0.2,
        _ if seed % 2 == 0 => ((i % 97) * 3 + seed) as f64 * 0.25,
        _ => (i * (i % 13)) as f64 + 1.0 / (1 + i % 7) as f64,
    }
}

/// Samples from `t0`, 15 s apart with a millisecond jitter.
fn run_of(t0: i64, n: i64, seed: i64) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| (t0 + i * 15_000 + (i * 7 + seed) % 5, value(i, seed)))
        .collect()
}

fn chunk(enc: FloatEncoding, s: &[(i64, f64)]) -> (EncodedChunk, Vec<(i64, f64)>) {
    let mut b = FloatChunkBuilder::new(enc);
    for &(t, v) in s {
        b.push(t, v);
    }
    let data = b.finish().unwrap();
    let c = EncodedChunk {
        min_time: s[0].0,
        max_time: s[s.len() - 1].0,
        encoding: enc.byte(),
        data,
    };
    (c, s.to_vec())
}

/// Splits `s` into chunks of `sizes` samples, all of `enc`.
fn chunks(
    enc: FloatEncoding,
    s: &[(i64, f64)],
    sizes: &[usize],
) -> Vec<(EncodedChunk, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        out.push(chunk(enc, &s[at..at + n]));
        at += n;
    }
    assert_eq!(at, s.len());
    out
}

const H: i64 = 3_600_000;

fn store() -> ChunkStore {
    // Dense: 480-sample chunks (what compaction writes), one long odd one,
    // and short tails.
    let dense = run_of(0, 480 * 3 + 1001 + 7, 1);
    let xor2 = run_of(0, 120 * 4 + 33, 2);
    let mixed = run_of(0, 120 + 480 + 120 + 250, 4);
    let mut mixed_chunks = chunks(FloatEncoding::Xor, &mixed[..120], &[120]);
    mixed_chunks.extend(chunks(FloatEncoding::Dense, &mixed[120..600], &[480]));
    mixed_chunks.extend(chunks(FloatEncoding::Xor2, &mixed[600..720], &[120]));
    mixed_chunks.extend(chunks(FloatEncoding::Dense, &mixed[720..], &[1, 249]));
    ChunkStore {
        series: vec![
            StoredSeries {
                labels: Labels::from_pairs([("__name__", "dense"), ("gpu", "0")]),
                chunks: chunks(FloatEncoding::Dense, &dense, &[480, 480, 480, 1001, 7]),
            },
            StoredSeries {
                labels: Labels::from_pairs([("__name__", "mixed"), ("gpu", "1")]),
                chunks: mixed_chunks,
            },
            StoredSeries {
                labels: Labels::from_pairs([("__name__", "xor2"), ("gpu", "2")]),
                chunks: chunks(FloatEncoding::Xor2, &xor2, &[120, 120, 120, 120, 33]),
            },
        ],
    }
}

fn read_request(mint: i64, maxt: i64) -> ReadRequest {
    ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: vec![LabelMatcher {
                r#type: 2,
                name: "__name__".into(),
                value: ".+".into(),
            }],
            hints: Some(ReadHints {
                start_ms: mint,
                end_ms: maxt,
                ..Default::default()
            }),
        }],
        accepted_response_types: vec![1],
    }
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// What the server must send for `st` and `[mint, maxt]`, per series: the
/// chunks that overlap the range, XOR ones byte for byte, the others cut
/// into runs of 120 samples (a short run at the end of each source chunk).
/// Each expected chunk: (min, max, samples, Some(bytes) when passed through).
type Want = Vec<(i64, i64, Vec<(i64, u64)>, Option<Vec<u8>>)>;

fn expected(st: &ChunkStore, mint: i64, maxt: i64) -> Vec<(String, Want)> {
    let mut out = Vec::new();
    for s in &st.series {
        let mut want: Want = Vec::new();
        for (c, samples) in &s.chunks {
            if c.max_time < mint || c.min_time > maxt {
                continue;
            }
            if c.encoding == 1 {
                want.push((c.min_time, c.max_time, bits(samples), Some(c.data.clone())));
                continue;
            }
            for run in samples.chunks(120) {
                want.push((run[0].0, run[run.len() - 1].0, bits(run), None));
            }
        }
        if !want.is_empty() {
            out.push((s.labels.to_string(), want));
        }
    }
    out
}

/// Checks every frame and chunk of a streamed answer against `want`.
fn check(frames: &[ChunkedReadResponse], want: &[(String, Want)]) {
    let mut got: Vec<(String, Want)> = Vec::new();
    for f in frames {
        assert_eq!(f.query_index, 0);
        assert_eq!(f.chunked_series.len(), 1, "one series per frame");
        let cs = &f.chunked_series[0];
        let l = labels_string(&cs.labels);
        assert!(!cs.chunks.is_empty(), "frame without chunks for {l}");
        let mut chunks: Want = Vec::new();
        for c in &cs.chunks {
            assert_eq!(c.r#type, 1, "{l}: chunk of type {} is not XOR", c.r#type);
            let mut samples = Vec::new();
            let mut it = cairn_codec::xor_iter(&c.data);
            while it.next() {
                let (t, v) = it.at();
                samples.push((t, v.to_bits()));
            }
            assert!(it.err().is_none(), "{l}: {:?}", it.err());
            assert!(
                !samples.is_empty() && samples.len() <= 120,
                "{l}: chunk of {} samples",
                samples.len()
            );
            assert_eq!(
                u16::from_be_bytes([c.data[0], c.data[1]]) as usize,
                samples.len(),
                "{l}: XOR header count"
            );
            assert_eq!(c.min_time_ms, samples[0].0, "{l}: chunk min time");
            assert_eq!(
                c.max_time_ms,
                samples[samples.len() - 1].0,
                "{l}: chunk max time"
            );
            chunks.push((c.min_time_ms, c.max_time_ms, samples, Some(c.data.to_vec())));
        }
        match got.last_mut() {
            Some(last) if last.0 == l => last.1.extend(chunks),
            _ => got.push((l, chunks)),
        }
    }
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        want.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
        "series, each once and in order"
    );
    for ((l, g), (_, w)) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{l}: chunk count");
        for (i, (gc, wc)) in g.iter().zip(w).enumerate() {
            assert_eq!((gc.0, gc.1), (wc.0, wc.1), "{l}: chunk {i} bounds");
            assert_eq!(gc.2, wc.2, "{l}: chunk {i} samples");
            if let Some(bytes) = &wc.3 {
                assert_eq!(
                    gc.3.as_ref(),
                    Some(bytes),
                    "{l}: XOR chunk {i} passed through"
                );
            }
        }
        // Chunks of a series are in time order and do not overlap.
        for p in g.windows(2) {
            assert!(p[0].1 < p[1].0, "{l}: chunks overlap or are out of order");
        }
    }
}

#[tokio::test]
async fn dense_and_xor2_chunks_are_streamed_as_xor_of_at_most_120_samples() {
    let st = Arc::new(store());
    let srv = TestServer::start(st.clone(), ServerConfig::default()).await;
    // Everything, then a window that skips some chunks and cuts into others
    // (those go out whole), then a window inside one dense chunk.
    for (mint, maxt) in [
        (i64::MIN, i64::MAX),
        (2 * H + 1, 7 * H),
        (3 * H, 3 * H + 60_000),
    ] {
        let want = expected(&st, mint, maxt);
        assert!(!want.is_empty());
        let (frames, merged) =
            decode_streamed(&post_read(srv.addr, &read_request(mint, maxt)).await);
        check(&frames, &want);
        // The harness's own merge agrees: the same samples, series by series.
        for ((_, l, s), (wl, w)) in merged.iter().zip(&want) {
            assert_eq!(l, wl);
            let all: Vec<(i64, u64)> = w.iter().flat_map(|c| c.2.iter().copied()).collect();
            assert_eq!(s, &all, "{l}");
        }
    }
    // The whole range: every source sample once, in order.
    let (_, merged) = decode_streamed(&post_read(srv.addr, &read_request(0, i64::MAX)).await);
    assert_eq!(merged.len(), st.series.len());
    for ((_, l, s), src) in merged.iter().zip(&st.series) {
        let all: Vec<(i64, u64)> = src.chunks.iter().flat_map(|c| bits(&c.1)).collect();
        assert_eq!(s, &all, "{l}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn reencoded_chunks_split_over_small_frames_keep_their_bounds() {
    let st = Arc::new(store());
    let cfg = ServerConfig {
        read_max_bytes_per_frame: 256,
        read_stream_buffer_frames: 1,
        ..ServerConfig::default()
    };
    let srv = TestServer::start(st.clone(), cfg).await;
    let want = expected(&st, i64::MIN, i64::MAX);
    let (frames, _) =
        decode_streamed(&post_read(srv.addr, &read_request(i64::MIN, i64::MAX)).await);
    assert!(frames.len() > want.len(), "{} frames", frames.len());
    for f in &frames {
        let total: usize = f.chunked_series[0]
            .chunks
            .iter()
            .map(|c| c.data.len())
            .sum();
        assert!(
            f.chunked_series[0].chunks.len() == 1 || total <= 256,
            "frame of {total} bytes"
        );
    }
    check(&frames, &want);
    srv.stop().await;
}

#[tokio::test]
async fn streamed_kind_listed_before_samples_is_chosen_and_reencodes() {
    // A client listing STREAMED_XOR_CHUNKS before SAMPLES gets chunks (the
    // test store panics if the samples path reads it).
    let st = Arc::new(store());
    let srv = TestServer::start(st.clone(), ServerConfig::default()).await;
    let mut req = read_request(0, 10 * H);
    req.accepted_response_types = vec![1, 0];
    let (frames, _) = decode_streamed(&post_read(srv.addr, &req).await);
    check(&frames, &expected(&st, 0, 10 * H));
    srv.stop().await;
}
