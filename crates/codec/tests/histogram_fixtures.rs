//! Frozen native-histogram fixtures under tests/fixtures/histogram-chunk:
//! append sequences and the chunk bytes, outcomes and decoded samples that
//! Prometheus v3.8.1's own code produced for them (see that folder's
//! README.md). Cairn must produce exactly those bytes and outcomes and
//! decode exactly those samples, forever.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/histogram_json.rs"]
mod support;

use cairn_codec::{
    float_histogram_decode, float_histogram_iter, histogram_chunk_header, histogram_decode,
    histogram_iter, CodecError, CounterResetHeader, FloatHistogramChunk, HistogramChunk,
};
use serde_json::Value;
use std::path::PathBuf;
use support::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/histogram-chunk")
}

/// Every case with a `.json` file, sorted.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn case(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap())
        .unwrap()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap()
}

/// The chunk files of a case, in order.
fn chunks(name: &str) -> Vec<Vec<u8>> {
    (0..)
        .map_while(|k| std::fs::read(dir().join(format!("{name}.{k}.chunk"))).ok())
        .collect()
}

fn is_float(c: &Value) -> bool {
    c["encoding"] == "float"
}

fn decoded_json(float: bool, b: &[u8]) -> Value {
    Value::Array(if float {
        float_histogram_decode(b)
            .unwrap()
            .iter()
            .map(|(t, h)| serde_json::json!({"t": t, "h": float_json(h)}))
            .collect()
    } else {
        histogram_decode(b)
            .unwrap()
            .iter()
            .map(|(t, h)| serde_json::json!({"t": t, "h": int_json(h)}))
            .collect()
    })
}

#[test]
fn there_are_fixtures() {
    let names = cases();
    assert!(names.len() >= 14, "{names:?}");
    for must in [
        "int_hand_two_samples",
        "float_hand_two_samples",
        "int_prometheus_bucket_changes",
        "int_resets_and_headers",
        "float_resets_and_headers",
        "int_stale_markers",
        "float_special_values",
        "int_gauge",
        "float_gauge",
        "int_custom_buckets",
        "float_custom_buckets",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing");
    }
    for name in &names {
        let c = case(name);
        assert_eq!(
            chunks(name).len(),
            c["decoded"].as_array().unwrap().len(),
            "{name}"
        );
    }
}

#[test]
fn appending_gives_prometheus_chunks_and_outcomes() {
    for name in cases() {
        let c = case(&name);
        let want_outcomes: Vec<String> = c["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let (got, outcomes): (Vec<Vec<u8>>, Vec<String>) = if is_float(&c) {
            let (ch, o) = run_float(&ops_of(&c, float_of));
            (
                ch.into_iter()
                    .map(FloatHistogramChunk::into_bytes)
                    .collect(),
                o,
            )
        } else {
            let (ch, o) = run_int(&ops_of(&c, int_of));
            (ch.into_iter().map(HistogramChunk::into_bytes).collect(), o)
        };
        assert_eq!(outcomes, want_outcomes, "{name}");
        assert_eq!(got, chunks(&name), "{name}");
    }
}

#[test]
fn decoding_gives_prometheus_samples() {
    for name in cases() {
        let c = case(&name);
        let float = is_float(&c);
        for (k, b) in chunks(&name).iter().enumerate() {
            assert_eq!(decoded_json(float, b), c["decoded"][k], "{name}.{k}");
        }
    }
}

/// Re-encoding the decoded samples (whose layout is the chunk's) gives the
/// chunk again, also when the chunk is reopened after any prefix.
#[test]
fn reencoding_and_reopening_give_the_same_bytes() {
    for name in cases() {
        let c = case(&name);
        for (k, b) in chunks(&name).iter().enumerate() {
            let header = histogram_chunk_header(b).unwrap();
            if is_float(&c) {
                let samples = float_histogram_decode(b).unwrap();
                for cut in 0..=samples.len() {
                    let mut part = FloatHistogramChunk::new();
                    part.set_counter_reset_header(header);
                    for (t, h) in &samples[..cut] {
                        part.append_raw(*t, h).unwrap();
                    }
                    let mut re = FloatHistogramChunk::from_bytes(part.bytes().to_vec()).unwrap();
                    assert_eq!(re.bytes(), part.bytes(), "{name}.{k} at {cut}");
                    assert_eq!(re.num_samples(), cut);
                    for (t, h) in &samples[cut..] {
                        re.append_raw(*t, h).unwrap();
                    }
                    assert_eq!(re.bytes(), &b[..], "{name}.{k} resumed at {cut}");
                }
            } else {
                let samples = histogram_decode(b).unwrap();
                for cut in 0..=samples.len() {
                    let mut part = HistogramChunk::new();
                    part.set_counter_reset_header(header);
                    for (t, h) in &samples[..cut] {
                        part.append_raw(*t, h).unwrap();
                    }
                    let mut re = HistogramChunk::from_bytes(part.bytes().to_vec()).unwrap();
                    assert_eq!(re.bytes(), part.bytes(), "{name}.{k} at {cut}");
                    for (t, h) in &samples[cut..] {
                        re.append_raw(*t, h).unwrap();
                    }
                    assert_eq!(re.bytes(), &b[..], "{name}.{k} resumed at {cut}");
                }
            }
        }
    }
}

#[test]
fn seeking_finds_the_first_sample_at_or_after() {
    let data = read("int_stale_markers.0.chunk");
    let mut it = histogram_iter(&data);
    assert!(it.seek(1500));
    assert_eq!(it.at_t(), 2000);
    assert!(it.seek(0)); // never backwards
    assert_eq!(it.at_t(), 2000);
    assert!(it.seek(4000));
    assert_eq!(it.at().1.sum.to_bits(), STALE);
    assert!(!it.seek(4001));
    assert!(it.err().is_none());
    let data = read("float_special_values.0.chunk");
    let mut it = float_histogram_iter(&data);
    assert!(it.seek(i64::MIN));
    assert_eq!(it.at_t(), 1000);
    assert!(it.seek(6000));
    assert!(!it.seek(7000));
}

#[test]
fn headers_of_the_cut_chunks() {
    use CounterResetHeader::*;
    let headers = |name: &str| -> Vec<CounterResetHeader> {
        chunks(name)
            .iter()
            .map(|b| histogram_chunk_header(b).unwrap())
            .collect()
    };
    // Count down, schema change, head cut, explicit hint, populated bucket
    // gone, zero-threshold change.
    assert_eq!(
        headers("int_resets_and_headers"),
        [
            Unknown,
            CounterReset,
            Unknown,
            NotCounterReset,
            CounterReset,
            CounterReset,
            Unknown
        ]
    );
    // Float chunks: a schema change at a head cut is "not a reset".
    assert_eq!(
        headers("float_resets_and_headers"),
        [
            Unknown,
            CounterReset,
            Unknown,
            NotCounterReset,
            CounterReset,
            CounterReset,
            Unknown,
            NotCounterReset
        ]
    );
    assert_eq!(headers("int_gauge"), [Gauge, NotCounterReset, Gauge]);
    assert_eq!(headers("int_custom_buckets"), [Unknown, CounterReset]);
}

/// The bytes of README.md's hand checks.
#[test]
fn hand_checked_chunks() {
    let int = [
        0x00, 0x02, 0x00, 0x00, 0x46, 0x47, 0x8f, 0xa2, 0x43, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x08, 0xbc, 0x7d, 0x12, 0x61, 0x2f, 0xff, 0xc4,
    ];
    assert_eq!(read("int_hand_two_samples.0.chunk"), int);
    let mut c = HistogramChunk::new();
    let mut h = cairn_model::Histogram {
        count: 2,
        sum: 1.0,
        positive_spans: vec![cairn_model::Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![1, 0],
        ..Default::default()
    };
    c.append_raw(1000, &h).unwrap();
    h.count = 4;
    h.sum = 2.0;
    h.positive_buckets = vec![2, 0];
    c.append_raw(2000, &h).unwrap();
    assert_eq!(c.bytes(), int);

    let float: Vec<u8> = {
        let mut v = vec![0x00, 0x02, 0x00, 0x00, 0x46, 0x27, 0x8f, 0xa1];
        v.extend([0u8; 16]);
        v.extend([0xff, 0xc0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0]);
        v.extend([0x03, 0xc7, 0xd1, 0xac, 0x19, 0xac, 0x18]);
        v
    };
    assert_eq!(read("float_hand_two_samples.0.chunk"), float);
    let mut c = FloatHistogramChunk::new();
    let mut h = cairn_model::FloatHistogram {
        count: 2.0,
        sum: 1.0,
        positive_spans: vec![cairn_model::Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![2.0],
        ..Default::default()
    };
    c.append_raw(1000, &h).unwrap();
    h.count = 4.0;
    h.positive_buckets = vec![4.0];
    c.append_raw(2000, &h).unwrap();
    assert_eq!(c.bytes(), &float[..]);
}

#[test]
fn corrupt_truncated_int_chunk_is_an_error_after_the_intact_sample() {
    let data = read("corrupt-int-truncated.chunk");
    let mut it = histogram_iter(&data);
    assert!(it.next());
    assert!(!it.next());
    assert!(
        matches!(it.err(), Some(CodecError::UnexpectedEof { .. })),
        "{:?}",
        it.err()
    );
    // The offset counts from the chunk's first byte and lies inside it.
    let at = it.err().unwrap().byte_offset().unwrap();
    assert!(at > 3 && at <= data.len(), "{at}");
    assert!(histogram_decode(&data).is_err());
    assert!(HistogramChunk::from_bytes(data).is_err());
}

#[test]
fn corrupt_float_window_is_an_error() {
    let data = read("corrupt-float-bad-window.chunk");
    let mut it = float_histogram_iter(&data);
    assert!(it.next());
    assert!(!it.next());
    match it.err() {
        Some(CodecError::Corruption {
            what,
            expected,
            found,
        }) => {
            assert_eq!(*what, "xor value window");
            assert_eq!(expected, "leading + significant bits <= 64");
            assert_eq!(found, "31 + 64");
        }
        other => panic!("{other:?}"),
    }
    assert!(float_histogram_decode(&data).is_err());
    assert!(FloatHistogramChunk::from_bytes(data).is_err());
}
