//! Round-trip, appender and robustness properties of the native-histogram
//! chunk codecs (encodings 2 and 3): random histogram sequences with layout
//! changes, counter resets, schema / zero-threshold / custom-bound changes,
//! gauges, stale markers and NaN/±Inf sums go through `append`; every
//! sample must come back with the same meaning (bucket counts by index,
//! bit-exact floats), chunks must re-encode and reopen to the same bytes,
//! and arbitrary bytes must never panic a decoder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/histogram_json.rs"]
mod support;

use cairn_codec::histogram::counter_reset_hint;
use cairn_codec::{
    float_histogram_decode, float_histogram_iter, histogram_chunk_header, histogram_decode,
    histogram_iter, AppendOutcome, CodecError, CounterResetHeader, FloatHistogramChunk,
    HistogramChunk, MAX_SAMPLES_PER_CHUNK,
};
use cairn_model::{
    CounterResetHint, FloatHistogram, Histogram, Span, CUSTOM_BUCKETS_SCHEMA, STALE_NAN,
    STALE_NAN_BITS,
};
use proptest::prelude::*;
use support::*;

/// `(index, count bits)` of populated buckets.
type Populated = Vec<(i32, u64)>;

/// Populated buckets, both sides.
fn populated(h: &FloatHistogram) -> (Populated, Populated) {
    let keep = |v: Vec<(i32, f64)>| {
        v.into_iter()
            .filter(|p| p.1 != 0.0)
            .map(|(i, c)| (i, c.to_bits()))
            .collect()
    };
    (keep(h.positive_indexed()), keep(h.negative_indexed()))
}

/// Where each op's sample went: (chunk, position), None when refused.
fn placements(
    outcomes: &[String],
    ops_cut: &[bool],
    chunk_lens: &[usize],
) -> Vec<Option<(usize, usize)>> {
    // Replays the head-like loop's bookkeeping of support::run_*.
    let mut out = Vec::new();
    let (mut chunk, mut pos) = (0usize, 0usize);
    for (o, &cut) in outcomes.iter().zip(ops_cut) {
        if cut && pos > 0 {
            chunk += 1;
            pos = 0;
        }
        match o.as_str() {
            "appended" | "recoded" => {
                out.push(Some((chunk, pos)));
                pos += 1;
            }
            "new" => {
                chunk += 1;
                out.push(Some((chunk, 0)));
                pos = 1;
            }
            _ => out.push(None),
        }
    }
    assert_eq!(chunk + 1, chunk_lens.len());
    out
}

/// Checks that `got` (decoded at position `pos` of a chunk with header
/// `header`) means what `want` meant.
fn same_meaning(
    want: &FloatHistogram,
    got: &FloatHistogram,
    header: CounterResetHeader,
    pos: usize,
) {
    if want.sum.to_bits() == STALE_NAN_BITS {
        // A stale marker comes back with nothing but its sum.
        let bare = FloatHistogram {
            sum: STALE_NAN,
            ..Default::default()
        };
        assert_eq!(float_json(got), float_json(&bare));
        return;
    }
    assert_eq!(
        got.counter_reset_hint,
        counter_reset_hint(header, pos as u16 + 1)
    );
    assert_eq!(got.schema, want.schema);
    let zt = if want.zero_threshold == 0.0 {
        0.0
    } else {
        want.zero_threshold
    };
    assert_eq!(got.zero_threshold.to_bits(), zt.to_bits());
    assert_eq!(got.count.to_bits(), want.count.to_bits());
    assert_eq!(got.zero_count.to_bits(), want.zero_count.to_bits());
    assert_eq!(got.sum.to_bits(), want.sum.to_bits());
    if want.schema == CUSTOM_BUCKETS_SCHEMA {
        let bits = |v: &[f64]| {
            v.iter()
                .map(|f| if *f == 0.0 { 0 } else { f.to_bits() })
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got.custom_values), bits(&want.custom_values));
    } else {
        assert!(got.custom_values.is_empty());
    }
    assert_eq!(populated(got), populated(want));
}

fn check_int_sequence(seed: u64) {
    let ops = gen_int(&mut Rng(seed));
    let (chunks, outcomes) = run_int(&ops);
    assert!(
        !outcomes.iter().any(|o| o.starts_with("cairn")),
        "{outcomes:?}"
    );
    let decoded: Vec<Vec<(i64, Histogram)>> = chunks
        .iter()
        .map(|c| histogram_decode(c.bytes()).unwrap())
        .collect();
    let lens: Vec<usize> = chunks.iter().map(HistogramChunk::num_samples).collect();
    for (c, d) in chunks.iter().zip(&decoded) {
        assert_eq!(c.num_samples(), d.len());
    }
    let cuts: Vec<bool> = ops.iter().map(|o| o.cut).collect();
    for (op, place) in ops.iter().zip(placements(&outcomes, &cuts, &lens)) {
        let Some((c, pos)) = place else { continue };
        let (t, h) = &decoded[c][pos];
        assert_eq!(*t, op.t);
        let header = chunks[c].counter_reset_header();
        same_meaning(&op.h.to_float(), &h.to_float(), header, pos);
        // Integer counts survive exactly, not just as floats.
        if op.h.sum.to_bits() != STALE_NAN_BITS {
            assert_eq!((h.count, h.zero_count), (op.h.count, op.h.zero_count));
        }
    }
    // Decoded samples re-encode to the same bytes, reopened anywhere.
    for (c, d) in chunks.iter().zip(&decoded) {
        let cut = (seed as usize) % (d.len() + 1);
        let mut part = HistogramChunk::new();
        part.set_counter_reset_header(c.counter_reset_header());
        for (t, h) in &d[..cut] {
            part.append_raw(*t, h).unwrap();
        }
        let mut re = HistogramChunk::from_bytes(part.bytes().to_vec()).unwrap();
        for (t, h) in &d[cut..] {
            re.append_raw(*t, h).unwrap();
        }
        assert_eq!(re.bytes(), c.bytes());
        let reopened = HistogramChunk::from_bytes(c.bytes().to_vec()).unwrap();
        assert_eq!(reopened.bytes(), c.bytes());
        assert_eq!(reopened.last_timestamp(), c.last_timestamp());
    }
}

fn check_float_sequence(seed: u64) {
    let ops = gen_float(&mut Rng(seed));
    let (chunks, outcomes) = run_float(&ops);
    assert!(
        !outcomes.iter().any(|o| o.starts_with("cairn")),
        "{outcomes:?}"
    );
    let decoded: Vec<Vec<(i64, FloatHistogram)>> = chunks
        .iter()
        .map(|c| float_histogram_decode(c.bytes()).unwrap())
        .collect();
    let lens: Vec<usize> = chunks
        .iter()
        .map(FloatHistogramChunk::num_samples)
        .collect();
    let cuts: Vec<bool> = ops.iter().map(|o| o.cut).collect();
    for (op, place) in ops.iter().zip(placements(&outcomes, &cuts, &lens)) {
        let Some((c, pos)) = place else { continue };
        let (t, h) = &decoded[c][pos];
        assert_eq!(*t, op.t);
        same_meaning(&op.h, h, chunks[c].counter_reset_header(), pos);
    }
    for (c, d) in chunks.iter().zip(&decoded) {
        let cut = (seed as usize) % (d.len() + 1);
        let mut part = FloatHistogramChunk::new();
        part.set_counter_reset_header(c.counter_reset_header());
        for (t, h) in &d[..cut] {
            part.append_raw(*t, h).unwrap();
        }
        let mut re = FloatHistogramChunk::from_bytes(part.bytes().to_vec()).unwrap();
        for (t, h) in &d[cut..] {
            re.append_raw(*t, h).unwrap();
        }
        assert_eq!(re.bytes(), c.bytes());
    }
}

/// -0 as +0: a zero threshold or custom bound of -0 (only reachable as
/// raw bits) is re-encoded as the zero encoding and reads back as +0.
fn plus_zero(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

fn zeros_int(h: &Histogram) -> Histogram {
    Histogram {
        zero_threshold: plus_zero(h.zero_threshold),
        custom_values: h.custom_values.iter().map(|&f| plus_zero(f)).collect(),
        ..h.clone()
    }
}

fn zeros_float(h: &FloatHistogram) -> FloatHistogram {
    FloatHistogram {
        zero_threshold: plus_zero(h.zero_threshold),
        custom_values: h.custom_values.iter().map(|&f| plus_zero(f)).collect(),
        ..h.clone()
    }
}

fn span_list() -> impl Strategy<Value = Vec<Span>> {
    proptest::collection::vec((-5i32..5, 0u32..4), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(offset, length)| Span { offset, length })
            .collect()
    })
}

fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        2 => (0u32..1000).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-0.0),
        1 => Just(STALE_NAN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn int_sequences_keep_their_meaning(seed in any::<u64>()) {
        check_int_sequence(seed);
    }

    #[test]
    fn float_sequences_keep_their_meaning(seed in any::<u64>()) {
        check_float_sequence(seed);
    }

    /// One fixed layout, arbitrary values: every field comes back exactly
    /// (wrapping deltas of any i64/u64, any float bits, any timestamps).
    #[test]
    fn extreme_int_values_round_trip(
        schema in prop_oneof![-9i32..=8, Just(CUSTOM_BUCKETS_SCHEMA)],
        pos in span_list(), neg in span_list(),
        samples in proptest::collection::vec(
            (any::<i64>(), any::<u64>(), any::<u64>(), float_value(), proptest::collection::vec(any::<i64>(), 24)),
            1..20),
        zt in prop_oneof![Just(0.0), any::<f64>()],
        custom in proptest::collection::vec(float_value(), 0..4),
    ) {
        let np: usize = pos.iter().map(|s| s.length as usize).sum();
        let nn: usize = neg.iter().map(|s| s.length as usize).sum();
        let mut c = HistogramChunk::new();
        let mut want = Vec::new();
        let mut stale_seen = false;
        for (t, count, zc, sum, b) in samples {
            let h = Histogram {
                schema, zero_threshold: zt, zero_count: zc, count, sum,
                positive_spans: pos.clone(), negative_spans: neg.clone(),
                positive_buckets: b[..np].to_vec(), negative_buckets: b[np..np + nn].to_vec(),
                custom_values: custom.clone(), ..Default::default()
            };
            let stale = sum.to_bits() == STALE_NAN_BITS;
            let r = c.append_raw(t, &h);
            if stale_seen && !stale {
                let refused = matches!(r, Err(CodecError::InvalidHistogram { .. }));
                prop_assert!(refused);
                continue;
            }
            r.unwrap();
            stale_seen |= stale;
            want.push((t, h));
        }
        let got = histogram_decode(c.bytes()).unwrap();
        prop_assert_eq!(got.len(), want.len());
        for (k, ((t, g), (wt, w))) in got.iter().zip(&want).enumerate() {
            prop_assert_eq!(t, wt);
            prop_assert_eq!(g.sum.to_bits(), w.sum.to_bits());
            if w.sum.to_bits() == STALE_NAN_BITS { continue; }
            prop_assert_eq!((g.count, g.zero_count, g.schema), (w.count, w.zero_count, w.schema));
            prop_assert_eq!(&g.positive_buckets, &w.positive_buckets);
            prop_assert_eq!(&g.negative_buckets, &w.negative_buckets);
            // The layout is the first sample's.
            let first = &want[0].1;
            if first.sum.to_bits() != STALE_NAN_BITS {
                prop_assert_eq!(&g.positive_spans, &first.positive_spans);
                prop_assert_eq!(g.zero_threshold.to_bits(), if zt == 0.0 { 0 } else { zt.to_bits() });
            }
            prop_assert_eq!(g.counter_reset_hint, if k == 0 { CounterResetHint::Unknown } else { CounterResetHint::NotCounterReset });
        }
        let re = HistogramChunk::from_bytes(c.bytes().to_vec()).unwrap();
        prop_assert_eq!(re.bytes(), c.bytes());
    }

    #[test]
    fn extreme_float_values_round_trip(
        pos in span_list(), neg in span_list(),
        samples in proptest::collection::vec(
            (any::<i64>(), float_value(), float_value(), float_value(), proptest::collection::vec(float_value(), 24)),
            1..20),
    ) {
        let np: usize = pos.iter().map(|s| s.length as usize).sum();
        let nn: usize = neg.iter().map(|s| s.length as usize).sum();
        let mut c = FloatHistogramChunk::new();
        let mut want = Vec::new();
        let mut stale_seen = false;
        for (t, count, zc, sum, b) in samples {
            let h = FloatHistogram {
                zero_count: zc, count, sum,
                positive_spans: pos.clone(), negative_spans: neg.clone(),
                positive_buckets: b[..np].to_vec(), negative_buckets: b[np..np + nn].to_vec(),
                ..Default::default()
            };
            let stale = sum.to_bits() == STALE_NAN_BITS;
            let r = c.append_raw(t, &h);
            if stale_seen && !stale {
                prop_assert!(r.is_err());
                continue;
            }
            r.unwrap();
            stale_seen |= stale;
            want.push((t, h));
        }
        let got = float_histogram_decode(c.bytes()).unwrap();
        prop_assert_eq!(got.len(), want.len());
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for ((t, g), (wt, w)) in got.iter().zip(&want) {
            prop_assert_eq!(t, wt);
            prop_assert_eq!(g.sum.to_bits(), w.sum.to_bits());
            if w.sum.to_bits() == STALE_NAN_BITS { continue; }
            prop_assert_eq!((g.count.to_bits(), g.zero_count.to_bits()), (w.count.to_bits(), w.zero_count.to_bits()));
            prop_assert_eq!(bits(&g.positive_buckets), bits(&w.positive_buckets));
            prop_assert_eq!(bits(&g.negative_buckets), bits(&w.negative_buckets));
        }
    }

    /// Arbitrary bytes: decoders and `from_bytes` return errors, never
    /// panic; whatever decodes re-encodes to data that decodes the same.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = histogram_chunk_header(&data);
        if let Ok(samples) = histogram_decode(&data) {
            let mut c = HistogramChunk::new();
            for (t, h) in &samples {
                c.append_raw(*t, h).unwrap();
            }
            let again = histogram_decode(c.bytes()).unwrap();
            prop_assert_eq!(again.len(), samples.len());
            for ((t1, h1), (t2, h2)) in again.iter().zip(&samples) {
                prop_assert_eq!(t1, t2);
                prop_assert_eq!(int_json(&zeros_int(h1)), int_json(&zeros_int(h2)));
            }
        }
        if let Ok(samples) = float_histogram_decode(&data) {
            let mut c = FloatHistogramChunk::new();
            for (t, h) in &samples {
                c.append_raw(*t, h).unwrap();
            }
            let again = float_histogram_decode(c.bytes()).unwrap();
            prop_assert_eq!(again.len(), samples.len());
            for ((t1, h1), (t2, h2)) in again.iter().zip(&samples) {
                prop_assert_eq!(t1, t2);
                prop_assert_eq!(float_json(&zeros_float(h1)), float_json(&zeros_float(h2)));
            }
        }
        if let Ok(c) = HistogramChunk::from_bytes(data.clone()) {
            prop_assert_eq!(c.bytes(), &data[..]);
        }
        if let Ok(c) = FloatHistogramChunk::from_bytes(data.clone()) {
            prop_assert_eq!(c.bytes(), &data[..]);
        }
    }

    /// Valid chunks with a few bytes changed or cut: still no panic.
    #[test]
    fn mutated_chunks_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let (ints, _) = run_int(&gen_int(&mut Rng(seed)));
        let (floats, _) = run_float(&gen_float(&mut Rng(seed)));
        let mut all: Vec<Vec<u8>> = ints.into_iter().map(HistogramChunk::into_bytes).collect();
        all.extend(floats.into_iter().map(FloatHistogramChunk::into_bytes));
        for mut b in all {
            for &(i, x) in &flips {
                let n = b.len();
                b[i % n] ^= x;
            }
            let short = &b[..cut % (b.len() + 1)];
            for d in [&b[..], short] {
                let _ = histogram_decode(d);
                let _ = float_histogram_decode(d);
                let _ = HistogramChunk::from_bytes(d.to_vec());
                let _ = FloatHistogramChunk::from_bytes(d.to_vec());
            }
        }
    }
}

fn h(count: u64, pos: &[(i32, u32)], buckets: &[i64]) -> Histogram {
    Histogram {
        count,
        sum: count as f64,
        positive_spans: pos
            .iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect(),
        positive_buckets: buckets.to_vec(),
        ..Default::default()
    }
}

#[test]
fn appendable_reports_inserts_and_resets() {
    let mut c = HistogramChunk::new();
    c.append(None, 0, &h(3, &[(0, 2)], &[1, 1]), false).unwrap();
    // A new bucket: forward insert, fine.
    let a = c.appendable(&h(4, &[(0, 3)], &[1, 1, -1]));
    assert!(a.ok);
    assert_eq!(a.counter_reset, CounterResetHeader::NotCounterReset);
    assert_eq!(a.positive_inserts.len(), 1);
    assert_eq!(a.positive_inserts[0].pos, 2);
    // A count going down.
    let a = c.appendable(&h(2, &[(0, 2)], &[1, 1]));
    assert!(!a.ok);
    assert_eq!(a.counter_reset, CounterResetHeader::CounterReset);
    // A schema change: not appendable, verdict unknown.
    let mut s = h(4, &[(0, 2)], &[1, 1]);
    s.schema = 1;
    let a = c.appendable(&s);
    assert!(!a.ok);
    assert_eq!(a.counter_reset, CounterResetHeader::Unknown);
    // Append-only refuses what would need a recoding, and leaves the chunk alone.
    let before = c.clone();
    assert_eq!(
        c.append(None, 1, &h(4, &[(0, 3)], &[1, 1, -1]), true),
        Err(CodecError::NotAppendable {
            reason: "histogram layout change with 1 positive and 0 negative forwards inserts"
                .into()
        })
    );
    assert_eq!(c, before);
    assert_eq!(
        c.append(None, 1, &h(4, &[(0, 3)], &[1, 1, -1]), false),
        Ok(AppendOutcome::Recoded)
    );
    assert_eq!(c.num_samples(), 2);
    let d = histogram_decode(c.bytes()).unwrap();
    assert_eq!(d[0].1.positive_buckets, [1, 1, -2]);
    assert_eq!(
        d[0].1.positive_spans,
        [Span {
            offset: 0,
            length: 3
        }]
    );
}

#[test]
fn invalid_histograms_are_errors_and_change_nothing() {
    let mut c = HistogramChunk::new();
    // Buckets that do not match the spans.
    assert!(matches!(
        c.append(None, 0, &h(3, &[(0, 2)], &[1]), false),
        Err(CodecError::InvalidHistogram { .. })
    ));
    assert!(matches!(
        c.append_raw(0, &h(3, &[(0, 2)], &[1])),
        Err(CodecError::InvalidHistogram { .. })
    ));
    assert_eq!(c, HistogramChunk::new());
    c.append_raw(0, &h(3, &[(0, 2)], &[1, 1])).unwrap();
    // A later sample must fit the layout.
    let before = c.clone();
    assert!(matches!(
        c.append_raw(1, &h(3, &[(0, 3)], &[1, 1, 0])),
        Err(CodecError::InvalidHistogram { .. })
    ));
    assert_eq!(c, before);
    // After a stale marker only stale markers.
    let mut stale = h(0, &[], &[]);
    stale.sum = STALE_NAN;
    c.append_raw(2, &stale).unwrap();
    let before = c.clone();
    assert!(matches!(
        c.append_raw(3, &h(3, &[(0, 2)], &[1, 1])),
        Err(CodecError::InvalidHistogram { .. })
    ));
    assert_eq!(c, before);
    // `append` starts a new chunk instead, with an unknown header.
    match c.append(None, 3, &h(3, &[(0, 2)], &[1, 1]), false).unwrap() {
        AppendOutcome::NewChunk(n) => {
            assert_eq!(n.counter_reset_header(), CounterResetHeader::Unknown);
            assert_eq!(n.num_samples(), 1);
        }
        other => panic!("{other:?}"),
    }
    c.append_raw(4, &stale).unwrap();
    let d = histogram_decode(c.bytes()).unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d[2].1.sum.to_bits(), STALE_NAN_BITS);
    assert_eq!(d[2].1.positive_buckets, Vec::<i64>::new());
}

/// A zero threshold of -0 written as raw bits (which no writer does: 0
/// either sign is the zero byte) decodes as -0 and re-encodes as +0.
#[test]
fn raw_negative_zero_threshold_reads_as_written() {
    let mut data = vec![0, 1, 0, 0xff];
    data.extend((-0.0f64).to_bits().to_be_bytes());
    // schema 0, no spans, t 0, count 0, zero count 0, sum 0 (64 bits).
    data.extend([0b0000_0000, 0, 0, 0, 0, 0, 0, 0, 0]);
    let d = histogram_decode(&data).unwrap();
    assert_eq!(d[0].1.zero_threshold.to_bits(), (-0.0f64).to_bits());
    let mut c = HistogramChunk::new();
    c.append_raw(0, &d[0].1).unwrap();
    assert_eq!(
        histogram_decode(c.bytes()).unwrap()[0]
            .1
            .zero_threshold
            .to_bits(),
        0
    );
    assert_eq!(c.bytes()[3], 0);
}

#[test]
fn a_full_chunk_says_so() {
    let mut c = FloatHistogramChunk::new();
    let fh = FloatHistogram {
        count: 1.0,
        ..Default::default()
    };
    for t in 0..MAX_SAMPLES_PER_CHUNK as i64 {
        c.append_raw(t, &fh).unwrap();
    }
    assert_eq!(c.num_samples(), MAX_SAMPLES_PER_CHUNK);
    let before = c.bytes().to_vec();
    assert_eq!(
        c.append_raw(1 << 40, &fh),
        Err(CodecError::ChunkFull {
            max: MAX_SAMPLES_PER_CHUNK
        })
    );
    assert_eq!(c.bytes(), &before[..]);
    assert_eq!(
        float_histogram_decode(c.bytes()).unwrap().len(),
        MAX_SAMPLES_PER_CHUNK
    );
}

#[test]
fn gauges_allow_disappearing_buckets() {
    let g = |count: u64, pos: &[(i32, u32)], b: &[i64]| Histogram {
        counter_reset_hint: CounterResetHint::Gauge,
        ..h(count, pos, b)
    };
    let mut c = HistogramChunk::new();
    c.append(None, 0, &g(5, &[(0, 2)], &[3, -1]), false)
        .unwrap();
    assert_eq!(c.counter_reset_header(), CounterResetHeader::Gauge);
    let a = c.appendable_gauge(&g(2, &[(1, 1)], &[2]));
    assert!(a.ok);
    assert_eq!(a.backward_positive_inserts.len(), 1);
    assert_eq!(
        c.append(None, 1, &g(2, &[(1, 1)], &[2]), false),
        Ok(AppendOutcome::Appended)
    );
    let d = histogram_decode(c.bytes()).unwrap();
    assert_eq!(d[1].1.positive_buckets, [0, 2]);
    assert_eq!(d[1].1.counter_reset_hint, CounterResetHint::Gauge);
    // A counter histogram does not go into a gauge chunk.
    assert!(!c.appendable(&h(9, &[(0, 2)], &[3, 1])).ok);
}

#[test]
fn iterators_and_headers_on_short_data() {
    for d in [&[][..], &[0][..], &[0, 1][..]] {
        let mut it = histogram_iter(d);
        assert!(!it.next());
        assert!(matches!(it.err(), Some(CodecError::UnexpectedEof { .. })));
        let mut it = float_histogram_iter(d);
        assert!(!it.next());
        assert!(histogram_chunk_header(d).is_err());
        assert!(HistogramChunk::from_bytes(d.to_vec()).is_err());
    }
    // An empty chunk: no samples, no error; whole bytes after it are not.
    assert_eq!(histogram_decode(&[0, 0, 0xc0]).unwrap().len(), 0);
    assert_eq!(
        HistogramChunk::from_bytes(vec![0, 0, 0xc0])
            .unwrap()
            .counter_reset_header(),
        CounterResetHeader::Gauge
    );
    assert!(matches!(
        HistogramChunk::from_bytes(vec![0, 0, 0, 0, 0]),
        Err(CodecError::Corruption {
            what: "histogram chunk length",
            ..
        })
    ));
    // A layout claiming more buckets than the data can hold.
    let mut w = cairn_codec::BitWriter::new();
    w.write_byte(0);
    cairn_codec::histogram::varbit::put_varbit_int(&mut w, 0);
    cairn_codec::histogram::varbit::put_varbit_uint(&mut w, 1);
    cairn_codec::histogram::varbit::put_varbit_uint(&mut w, u64::from(u32::MAX));
    cairn_codec::histogram::varbit::put_varbit_int(&mut w, 0);
    cairn_codec::histogram::varbit::put_varbit_uint(&mut w, 0);
    let mut data = vec![0, 1, 0];
    data.extend_from_slice(w.bytes());
    data.extend([0xff; 16]);
    assert!(matches!(
        histogram_decode(&data),
        Err(CodecError::Corruption {
            what: "histogram chunk bucket count",
            ..
        })
    ));
    // An unknown schema.
    let mut w = cairn_codec::BitWriter::new();
    w.write_byte(0);
    cairn_codec::histogram::varbit::put_varbit_int(&mut w, 60);
    let mut data = vec![0, 1, 0];
    data.extend_from_slice(w.bytes());
    data.extend([0; 16]);
    match histogram_decode(&data) {
        Err(CodecError::Corruption { what, found, .. }) => {
            assert_eq!(what, "histogram schema");
            assert_eq!(found, "60");
        }
        other => panic!("{other:?}"),
    }
}
