//! Decoding remote read answers: whatever series a server streams (split
//! into chunks of up to 120 samples, a series continued in the next
//! frame), they decode back exactly, clipped to the asked range; a
//! damaged or cut answer is an error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeMap;

use cairn_codec::XorChunk;
use cairn_fanout::decode_read_response;
use cairn_proto::read::{Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries};
use cairn_proto::write::Label;
use proptest::prelude::*;

type Model = BTreeMap<String, Vec<(i64, u64)>>;

fn frames(model: &Model, split: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (gpu, samples) in model {
        let labels = vec![Label::new("__name__", "gpu_temp"), Label::new("gpu", gpu)];
        let mut chunks = Vec::new();
        for part in samples.chunks(120) {
            let mut c = XorChunk::new();
            for &(t, v) in part {
                c.append(t, f64::from_bits(v));
            }
            chunks.push(Chunk {
                min_time_ms: part[0].0,
                max_time_ms: part[part.len() - 1].0,
                r#type: ChunkEncoding::Xor as i32,
                data: c.into_bytes().into(),
            });
        }
        // A series may continue in the next frame.
        let cut = if split { chunks.len() / 2 } else { 0 };
        let (a, b) = chunks.split_at(cut);
        for part in [a, b] {
            if part.is_empty() {
                continue;
            }
            let msg = ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: labels.clone(),
                    chunks: part.to_vec(),
                }],
                query_index: 0,
            };
            cairn_proto::frame::write_message_frame(&msg, &mut out);
        }
    }
    out
}

fn model() -> impl Strategy<Value = Model> {
    proptest::collection::btree_map(
        "[0-9]{1,2}",
        (
            0i64..1_000_000,
            proptest::collection::vec((1i64..60_000, any::<u64>()), 1..400),
        )
            .prop_map(|(t0, steps)| {
                let mut t = t0;
                steps
                    .into_iter()
                    .map(|(d, v)| {
                        t += d;
                        // NaN payloads other than the canonical one do not
                        // survive every XOR path bit for bit.
                        let v = if f64::from_bits(v).is_nan() { 0 } else { v };
                        (t, v)
                    })
                    .collect()
            }),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn streamed_series_decode_back_clipped_to_the_range(
        m in model(),
        split in any::<bool>(),
        lo in 0i64..2_000_000,
        len in 0i64..30_000_000,
    ) {
        let body = frames(&m, split);
        let got = decode_read_response("test", &body, true, lo, lo + len).unwrap();
        let mut want: Vec<(String, Vec<(i64, u64)>)> = m
            .iter()
            .map(|(g, s)| {
                (
                    format!("{{__name__=\"gpu_temp\", gpu=\"{g}\"}}"),
                    s.iter().copied().filter(|(t, _)| *t >= lo && *t <= lo + len).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        want.sort();
        let got: Vec<(String, Vec<(i64, u64)>)> = got
            .iter()
            .map(|s| (s.labels.to_string(), s.floats.iter().map(|x| (x.t, x.v.to_bits())).collect()))
            .collect();
        prop_assert_eq!(got, want);
        // Cut anywhere but at a frame boundary, or one byte flipped: an
        // error or a shorter answer, never a panic.
        if body.len() > 2 {
            let _ = decode_read_response("test", &body[..body.len() / 2], true, lo, lo + len);
            let mut bad = body.clone();
            bad[body.len() / 3] ^= 0x55;
            let _ = decode_read_response("test", &bad, true, lo, lo + len);
        }
    }
}

#[test]
fn a_damaged_frame_is_an_error_naming_the_store() {
    let mut m = Model::new();
    m.insert(
        "0".into(),
        (0..300).map(|i| (i * 15_000, 7.0f64.to_bits())).collect(),
    );
    let mut body = frames(&m, false);
    let n = body.len();
    body[n - 3] ^= 1;
    let e = decode_read_response("http://ingester-a/api/v1/read", &body, true, 0, i64::MAX)
        .unwrap_err();
    assert!(e.to_string().contains("ingester-a"), "{e}");
    assert!(decode_read_response("x", b"not snappy", false, 0, 1).is_err());
}
