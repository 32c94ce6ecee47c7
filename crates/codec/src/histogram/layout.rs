//! The chunk layout (Prometheus's `writeHistogramChunkLayout` in
//! `tsdb/chunkenc/histogram_meta.go`): what the first sample of a histogram
//! chunk writes before its values, and what every later sample shares.
//!
//! In order: the zero threshold (one byte, or `0xff` + 8 bytes), the schema
//! (varbit int), the positive spans, the negative spans (each: varbit uint
//! count, then per span varbit uint length and varbit int offset), and for
//! schema -53 only the custom bounds (varbit uint count, then each bound).
//! `docs/format/histogram-chunk.md` has the tables.
//!
//! Decoding is stricter than Prometheus where Prometheus would silently
//! truncate: a span length beyond `u32`, an offset or schema beyond `i32`
//! are corruption here (Prometheus's writer cannot produce them).

use super::varbit::{put_varbit_int, put_varbit_uint, read_varbit_int, read_varbit_uint};
use crate::{BitReader, BitWriter, CodecError};
use cairn_model::{Span, CUSTOM_BUCKETS_SCHEMA};

/// The zero threshold's byte meaning "8 bytes of float64 follow".
const ZT_RAW: u8 = 0xff;

/// The layout a histogram chunk's first sample dictates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub schema: i32,
    pub zero_threshold: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Only read (and written) for schema -53.
    pub custom_values: Vec<f64>,
}

impl Layout {
    /// Number of positive and negative buckets the spans describe.
    pub fn bucket_counts(&self) -> (u64, u64) {
        (
            count_spans(&self.positive_spans),
            count_spans(&self.negative_spans),
        )
    }
}

/// The number of buckets `spans` describe (Prometheus's `countSpans`).
pub fn count_spans(spans: &[Span]) -> u64 {
    spans.iter().map(|s| u64::from(s.length)).sum()
}

/// True when Prometheus 3.8 decodes this schema: custom buckets or an
/// exponential schema in the reserved range `-9..=52` (`IsKnownSchema`).
pub fn is_known_schema(schema: i32) -> bool {
    schema == CUSTOM_BUCKETS_SCHEMA || (-9..=52).contains(&schema)
}

/// Writes the layout. Custom bounds are written only for schema -53.
pub fn write_layout(
    w: &mut BitWriter,
    schema: i32,
    zero_threshold: f64,
    positive: &[Span],
    negative: &[Span],
    custom: &[f64],
) {
    put_zero_threshold(w, zero_threshold);
    put_varbit_int(w, i64::from(schema));
    put_spans(w, positive);
    put_spans(w, negative);
    if schema == CUSTOM_BUCKETS_SCHEMA {
        put_varbit_uint(w, custom.len() as u64);
        for &b in custom {
            put_custom_bound(w, b);
        }
    }
}

/// Reads a layout. The schema is not checked here (see [`is_known_schema`]).
pub fn read_layout(r: &mut BitReader<'_>) -> Result<Layout, CodecError> {
    let zero_threshold = read_zero_threshold(r)?;
    let v = read_varbit_int(r)?;
    let schema = i32::try_from(v).map_err(|_| CodecError::Corruption {
        what: "histogram schema",
        expected: "a schema that fits 32 bits".to_string(),
        found: v.to_string(),
    })?;
    let positive_spans = read_spans(r)?;
    let negative_spans = read_spans(r)?;
    let mut custom_values = Vec::new();
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let n = read_varbit_uint(r)?;
        // Each bound takes at least one bit: no allocation beyond the data.
        for _ in 0..n {
            custom_values.push(read_custom_bound(r)?);
        }
    }
    Ok(Layout {
        schema,
        zero_threshold,
        positive_spans,
        negative_spans,
        custom_values,
    })
}

fn put_spans(w: &mut BitWriter, spans: &[Span]) {
    put_varbit_uint(w, spans.len() as u64);
    for s in spans {
        put_varbit_uint(w, u64::from(s.length));
        put_varbit_int(w, i64::from(s.offset));
    }
}

fn read_spans(r: &mut BitReader<'_>) -> Result<Vec<Span>, CodecError> {
    let n = read_varbit_uint(r)?;
    let mut spans = Vec::new();
    // Each span takes at least two bits: the loop ends with the data.
    for _ in 0..n {
        let length = read_varbit_uint(r)?;
        let offset = read_varbit_int(r)?;
        let length = u32::try_from(length).map_err(|_| CodecError::Corruption {
            what: "histogram span length",
            expected: "a length that fits 32 bits".to_string(),
            found: length.to_string(),
        })?;
        let offset = i32::try_from(offset).map_err(|_| CodecError::Corruption {
            what: "histogram span offset",
            expected: "an offset that fits 32 bits".to_string(),
            found: offset.to_string(),
        })?;
        spans.push(Span { offset, length });
    }
    Ok(spans)
}

/// Writes the zero threshold (Prometheus's `putZeroThreshold`): a zero byte
/// for 0 (either sign); `exp + 243` for a power of two `0.5 * 2^exp` with
/// `exp` in `-242..=11` (2^-243 ..= 2^10); otherwise `0xff` and the 64 bits.
pub fn put_zero_threshold(w: &mut BitWriter, t: f64) {
    if t == 0.0 {
        w.write_byte(0);
        return;
    }
    match frexp_half_exponent(t) {
        Some(exp) if (-242..=11).contains(&exp) => w.write_byte((exp + 243) as u8),
        _ => {
            w.write_byte(ZT_RAW);
            w.write_bits(t.to_bits(), 64);
        }
    }
}

/// `Some(exp)` when `t` is a positive normal power of two, `t = 0.5 * 2^exp`
/// (what Go's `math.Frexp` reports as fraction 0.5). Subnormal powers of two
/// are below the one-byte range anyway.
fn frexp_half_exponent(t: f64) -> Option<i32> {
    let bits = t.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let positive = bits >> 63 == 0;
    let mantissa_zero = bits & ((1u64 << 52) - 1) == 0;
    (positive && mantissa_zero && biased != 0 && biased != 0x7ff).then_some(biased - 1022)
}

/// Reads the zero threshold written by [`put_zero_threshold`].
pub fn read_zero_threshold(r: &mut BitReader<'_>) -> Result<f64, CodecError> {
    let start = r.position_bits();
    let eof = |_| CodecError::UnexpectedEof {
        what: "zero threshold",
        bit_offset: start,
    };
    let b = r.read_byte().map_err(eof)?;
    match b {
        0 => Ok(0.0),
        ZT_RAW => Ok(f64::from_bits(r.read_bits(64).map_err(eof)?)),
        // 0.5 * 2^(b - 243) = 2^(b - 244): biased exponent b - 244 + 1023.
        b => Ok(f64::from_bits((u64::from(b) + 779) << 52)),
    }
}

/// Writes one custom bound (Prometheus's `putCustomBound`): a bound `f` with
/// `0 <= f * 1000 <= 33554430` that is a whole number of thousandths is
/// written as the unsigned varbit `round(f * 1000) + 1` (never 0); any other
/// bound as a `0` bit (a varbit 0) and its 64 bits.
pub fn put_custom_bound(w: &mut BitWriter, f: f64) {
    let tf = f * 1000.0;
    if !(0.0..=33_554_430.0).contains(&tf) || !whole_when_multiplied(f) {
        w.write_bit(false);
        w.write_bits(f.to_bits(), 64);
        return;
    }
    put_varbit_uint(w, tf.round() as u64 + 1);
}

/// Prometheus's `isWholeWhenMultiplied`: `round(f * 1000) / 1000 == f`.
/// Only called where `f * 1000` is in `0..=33554430` or NaN (never whole).
fn whole_when_multiplied(f: f64) -> bool {
    let i = (f * 1000.0).round() as u64;
    f == i as f64 / 1000.0
}

/// Reads one custom bound written by [`put_custom_bound`].
pub fn read_custom_bound(r: &mut BitReader<'_>) -> Result<f64, CodecError> {
    let start = r.position_bits();
    match read_varbit_uint(r)? {
        0 => r
            .read_bits(64)
            .map(f64::from_bits)
            .map_err(|_| CodecError::UnexpectedEof {
                what: "custom bucket bound",
                bit_offset: start,
            }),
        b => Ok((b - 1) as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zt_bytes(t: f64) -> Vec<u8> {
        let mut w = BitWriter::new();
        put_zero_threshold(&mut w, t);
        w.trim_spare_byte();
        w.into_bytes()
    }

    #[test]
    fn zero_threshold_encodings() {
        assert_eq!(zt_bytes(0.0), [0]);
        assert_eq!(zt_bytes(-0.0), [0]);
        // Prometheus's default 2^-128 = 0.5 * 2^-127: byte 116.
        assert_eq!(zt_bytes(2f64.powi(-128)), [116]);
        assert_eq!(zt_bytes(1.0), [244]);
        assert_eq!(zt_bytes(1024.0), [254]);
        assert_eq!(zt_bytes(2f64.powi(-243)), [1]);
        let raw = |t: f64| {
            let mut v = vec![0xff];
            v.extend_from_slice(&t.to_bits().to_be_bytes());
            v
        };
        for t in [
            2048.0,
            2f64.powi(-244),
            0.001,
            3.0,
            -1.0,
            f64::INFINITY,
            f64::MIN_POSITIVE / 4.0,
        ] {
            assert_eq!(zt_bytes(t), raw(t), "{t}");
        }
        let nan = zt_bytes(f64::NAN);
        assert_eq!(nan[0], 0xff);
        for b in 1..=254u8 {
            let t = read_zero_threshold(&mut BitReader::new(&[b])).unwrap();
            assert_eq!(zt_bytes(t), [b], "{b}");
        }
    }

    #[test]
    fn custom_bound_encodings() {
        let enc = |f: f64| {
            let mut w = BitWriter::new();
            put_custom_bound(&mut w, f);
            (w.len_bits(), w.into_bytes())
        };
        // 0.5 -> 501 (<= 511): 1110 + 9 bits.
        assert_eq!(enc(0.5), (13, vec![0b1110_1111, 0b1010_1000]));
        // 0 -> 1: 10 001.
        assert_eq!(enc(0.0), (5, vec![0b1000_1000]));
        // The largest compact bound, 33554.43 -> 33554431: 7 + 25 bits.
        assert_eq!(enc(33_554.43).0, 32);
        // Beyond it, negative, or not whole thousandths: 1 + 64 bits.
        for f in [33_554.431, 33_554.44, -1.0, 0.0001, f64::INFINITY, f64::NAN] {
            assert_eq!(enc(f).0, 65, "{f}");
        }
        for f in [
            0.0, 0.001, 0.5, 1.0, 2.5, 1000.0, 33_554.43, 33_554.44, -1.0, 0.0001,
        ] {
            let (_, b) = enc(f);
            assert_eq!(read_custom_bound(&mut BitReader::new(&b)).unwrap(), f);
        }
    }

    fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec(
            (any::<i32>(), any::<u32>()).prop_map(|(offset, length)| Span { offset, length }),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn layout_round_trip(schema in prop_oneof![Just(CUSTOM_BUCKETS_SCHEMA), -9i32..=52, any::<i32>()],
                             zt in prop_oneof![Just(0.0), Just(2f64.powi(-128)), any::<f64>()],
                             pos in arb_spans(), neg in arb_spans(),
                             custom in proptest::collection::vec(
                                 prop_oneof![(0u32..40_000_000).prop_map(|x| f64::from(x) / 1000.0), any::<f64>()], 0..6)) {
            let mut w = BitWriter::new();
            write_layout(&mut w, schema, zt, &pos, &neg, &custom);
            w.write_bit(true);
            let b = w.into_bytes();
            let mut r = BitReader::new(&b);
            let l = read_layout(&mut r).unwrap();
            prop_assert_eq!(l.schema, schema);
            // -0.0 is written as the zero byte and reads as +0.0.
            let zt = if zt == 0.0 { 0.0 } else { zt };
            prop_assert_eq!(l.zero_threshold.to_bits(), zt.to_bits());
            prop_assert_eq!(&l.positive_spans, &pos);
            prop_assert_eq!(&l.negative_spans, &neg);
            if schema == CUSTOM_BUCKETS_SCHEMA {
                let got: Vec<u64> = l.custom_values.iter().map(|f| f.to_bits()).collect();
                let want: Vec<u64> = custom
                    .iter()
                    .map(|&f| if f == 0.0 { 0f64.to_bits() } else { f.to_bits() })
                    .collect();
                prop_assert_eq!(got, want);
            } else {
                prop_assert!(l.custom_values.is_empty());
            }
            prop_assert!(r.read_bit().unwrap());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = read_layout(&mut BitReader::new(&data));
        }
    }
}
