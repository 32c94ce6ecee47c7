//! Fuzzes the native-histogram chunk decoders, encodings 2 (integer) and 3
//! (float), over the same bytes: arbitrary input must decode or error,
//! never panic; the bulk decoders yield what the iterators yield and fail
//! alike; whatever decodes re-encodes (`append_raw`, same header) to a
//! chunk that decodes the same (unless it has a sample after a stale
//! marker, which Prometheus's reader takes but no writer writes: then the
//! encoder must refuse it); a chunk opened for appending keeps its bytes
//! and takes its last sample once more through `append`, which decodes.
#![no_main]

use cairn_codec::{
    float_histogram_decode, float_histogram_iter, histogram_chunk_header, histogram_decode,
    histogram_iter, AppendOutcome, CodecError, FloatHistogramChunk, HistogramChunk,
};
use cairn_model::{FloatHistogram, Histogram};
use libfuzzer_sys::fuzz_target;

/// Bit-equal floats, except that zero thresholds and custom bounds of -0
/// come back as +0 (both are written as the zero encoding).
fn same_f(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

fn same_zero_ok(a: f64, b: f64) -> bool {
    same_f(a, b) || (a == 0.0 && b == 0.0)
}

fn same_list(a: &[f64], b: &[f64], eq: fn(f64, f64) -> bool) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(*x, *y))
}

fn same_int(a: &Histogram, b: &Histogram) -> bool {
    a.counter_reset_hint == b.counter_reset_hint
        && a.schema == b.schema
        && same_zero_ok(a.zero_threshold, b.zero_threshold)
        && a.zero_count == b.zero_count
        && a.count == b.count
        && same_f(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.positive_buckets == b.positive_buckets
        && a.negative_buckets == b.negative_buckets
        && same_list(&a.custom_values, &b.custom_values, same_zero_ok)
}

fn same_float(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.counter_reset_hint == b.counter_reset_hint
        && a.schema == b.schema
        && same_zero_ok(a.zero_threshold, b.zero_threshold)
        && same_f(a.zero_count, b.zero_count)
        && same_f(a.count, b.count)
        && same_f(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && same_list(&a.positive_buckets, &b.positive_buckets, same_f)
        && same_list(&a.negative_buckets, &b.negative_buckets, same_f)
        && same_list(&a.custom_values, &b.custom_values, same_zero_ok)
}

fn refused_after_stale(e: &CodecError) -> bool {
    matches!(
        e,
        CodecError::InvalidHistogram {
            what: "sample after a stale marker",
            ..
        }
    )
}

fn check_int(data: &[u8]) {
    let mut it = histogram_iter(data);
    let mut stepped = Vec::new();
    while it.next() {
        stepped.push(it.at());
    }
    let failed = it.err().is_some();
    match histogram_decode(data) {
        Ok(bulk) => {
            assert!(!failed);
            assert_eq!(bulk.len(), stepped.len());
            for ((t1, h1), (t2, h2)) in bulk.iter().zip(&stepped) {
                assert_eq!(t1, t2);
                assert!(same_int(h1, h2));
            }
        }
        Err(_) => assert!(failed),
    }
    if !failed {
        let mut c = HistogramChunk::new();
        c.set_counter_reset_header(histogram_chunk_header(data).expect("header"));
        let mut complete = true;
        for (t, h) in &stepped {
            if let Err(e) = c.append_raw(*t, h) {
                assert!(refused_after_stale(&e), "{e}");
                complete = false;
                break;
            }
        }
        if complete {
            let again = histogram_decode(c.bytes()).expect("re-encoded chunk must decode");
            assert_eq!(again.len(), stepped.len());
            for ((t1, h1), (t2, h2)) in again.iter().zip(&stepped) {
                assert_eq!(t1, t2);
                assert!(same_int(h1, h2), "{h1:?} != {h2:?}");
            }
        }
    }
    if let Ok(mut c) = HistogramChunk::from_bytes(data.to_vec()) {
        assert_eq!(c.bytes(), data);
        let n = c.num_samples();
        if let Some((t, h)) = stepped.last() {
            match c.append(None, t.wrapping_add(15_000), h, false) {
                Ok(AppendOutcome::Appended | AppendOutcome::Recoded) => {
                    assert_eq!(histogram_decode(c.bytes()).expect("appended").len(), n + 1);
                }
                Ok(AppendOutcome::NewChunk(nc)) => {
                    assert_eq!(histogram_decode(nc.bytes()).expect("new chunk").len(), 1);
                }
                Err(CodecError::ChunkFull { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

fn check_float(data: &[u8]) {
    let mut it = float_histogram_iter(data);
    let mut stepped = Vec::new();
    while it.next() {
        stepped.push(it.at());
    }
    let failed = it.err().is_some();
    match float_histogram_decode(data) {
        Ok(bulk) => {
            assert!(!failed);
            assert_eq!(bulk.len(), stepped.len());
            for ((t1, h1), (t2, h2)) in bulk.iter().zip(&stepped) {
                assert_eq!(t1, t2);
                assert!(same_float(h1, h2));
            }
        }
        Err(_) => assert!(failed),
    }
    if !failed {
        let mut c = FloatHistogramChunk::new();
        c.set_counter_reset_header(histogram_chunk_header(data).expect("header"));
        let mut complete = true;
        for (t, h) in &stepped {
            if let Err(e) = c.append_raw(*t, h) {
                assert!(refused_after_stale(&e), "{e}");
                complete = false;
                break;
            }
        }
        if complete {
            let again = float_histogram_decode(c.bytes()).expect("re-encoded chunk must decode");
            assert_eq!(again.len(), stepped.len());
            for ((t1, h1), (t2, h2)) in again.iter().zip(&stepped) {
                assert_eq!(t1, t2);
                assert!(same_float(h1, h2), "{h1:?} != {h2:?}");
            }
        }
    }
    if let Ok(mut c) = FloatHistogramChunk::from_bytes(data.to_vec()) {
        assert_eq!(c.bytes(), data);
        let n = c.num_samples();
        if let Some((t, h)) = stepped.last() {
            match c.append(None, t.wrapping_add(15_000), h, false) {
                Ok(AppendOutcome::Appended | AppendOutcome::Recoded) => {
                    assert_eq!(
                        float_histogram_decode(c.bytes()).expect("appended").len(),
                        n + 1
                    );
                }
                Ok(AppendOutcome::NewChunk(nc)) => {
                    assert_eq!(
                        float_histogram_decode(nc.bytes()).expect("new chunk").len(),
                        1
                    );
                }
                Err(CodecError::ChunkFull { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_int(data);
    check_float(data);
});
