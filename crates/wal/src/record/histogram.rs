//! Native-histogram sample records, byte-compatible with Prometheus's
//! `tsdb/record` (types 7 to 10).
//!
//! Layout: empty, or `base_ref <be64> · base_t <be64>` from the first
//! sample, then per sample `ref - base_ref <varint> · t - base_t <varint>`
//! and the histogram:
//!
//! `hint <1 byte: 0 unknown, 1 counter reset, 2 not counter reset, 3 gauge>
//! · schema <varint> · zero threshold <be64 float> · zero count · count ·
//! sum <be64 float> · n <uvarint> · (offset <varint> · length <uvarint>)*n
//! for positive then negative spans · n <uvarint> · buckets*n for positive
//! then negative buckets · (schema -53 only) n <uvarint> · bound <be64
//! float>*n`.
//!
//! Integer histograms (7, and 9 for custom buckets) write the counts as
//! uvarints and the (delta-encoded) buckets as varints; float histograms
//! (8, and 10) write counts and buckets as be64 floats. Prometheus puts
//! custom-bucket histograms (schema -53) in records of their own (9, 10)
//! so that older readers skip them; [`split_custom`] does the same.
//!
//! Decoding never panics and never allocates more than the record's bytes
//! could hold: a count is checked against the bytes left before a vector
//! is reserved.

use cairn_codec::cursor::put_be64;
use cairn_codec::varint::{put_uvarint, put_varint};
use cairn_codec::ByteCursor;
use cairn_model::{CounterResetHint, FloatHistogram, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};

use super::field;
use crate::error::{Result, WalError};

/// One integer histogram sample of the series `r`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefHistogramSample {
    pub r: u64,
    pub t: i64,
    pub h: Histogram,
}

/// One float histogram sample of the series `r`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefFloatHistogramSample {
    pub r: u64,
    pub t: i64,
    pub h: FloatHistogram,
}

/// Splits samples into those with exponential schemas and those with
/// custom buckets, as Prometheus's encoder does (the second go into type 9
/// or 10 records).
pub fn split_custom<T>(v: Vec<T>, custom: impl Fn(&T) -> bool) -> (Vec<T>, Vec<T>) {
    v.into_iter().partition(|x| !custom(x))
}

fn hint_byte(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_of(b: u8, offset: usize) -> Result<CounterResetHint> {
    Ok(match b {
        0 => CounterResetHint::Unknown,
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        other => {
            return Err(WalError::RecordCorrupt {
                offset,
                expected: "counter reset hint 0..=3".into(),
                found: other.to_string(),
            })
        }
    })
}

fn put_spans(buf: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_varint(buf, i64::from(s.offset));
        put_uvarint(buf, u64::from(s.length));
    }
}

fn put_floats(buf: &mut Vec<u8>, v: &[f64]) {
    put_uvarint(buf, v.len() as u64);
    for x in v {
        put_be64(buf, x.to_bits());
    }
}

/// Appends one integer histogram.
pub fn put_histogram(buf: &mut Vec<u8>, h: &Histogram) {
    buf.push(hint_byte(h.counter_reset_hint));
    put_varint(buf, i64::from(h.schema));
    put_be64(buf, h.zero_threshold.to_bits());
    put_uvarint(buf, h.zero_count);
    put_uvarint(buf, h.count);
    put_be64(buf, h.sum.to_bits());
    put_spans(buf, &h.positive_spans);
    put_spans(buf, &h.negative_spans);
    for bs in [&h.positive_buckets, &h.negative_buckets] {
        put_uvarint(buf, bs.len() as u64);
        for b in bs {
            put_varint(buf, *b);
        }
    }
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        put_floats(buf, &h.custom_values);
    }
}

/// Appends one float histogram.
pub fn put_float_histogram(buf: &mut Vec<u8>, h: &FloatHistogram) {
    buf.push(hint_byte(h.counter_reset_hint));
    put_varint(buf, i64::from(h.schema));
    put_be64(buf, h.zero_threshold.to_bits());
    put_be64(buf, h.zero_count.to_bits());
    put_be64(buf, h.count.to_bits());
    put_be64(buf, h.sum.to_bits());
    put_spans(buf, &h.positive_spans);
    put_spans(buf, &h.negative_spans);
    put_floats(buf, &h.positive_buckets);
    put_floats(buf, &h.negative_buckets);
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        put_floats(buf, &h.custom_values);
    }
}

/// Appends the samples of a histogram record (after its type byte).
pub(super) fn put_samples<T>(
    buf: &mut Vec<u8>,
    v: &[T],
    key: impl Fn(&T) -> (u64, i64),
    put: impl Fn(&mut Vec<u8>, &T),
) {
    let Some(first) = v.first() else { return };
    let (r0, t0) = key(first);
    put_be64(buf, r0);
    put_be64(buf, t0 as u64);
    for x in v {
        let (r, t) = key(x);
        put_varint(buf, (r as i64).wrapping_sub(r0 as i64));
        put_varint(buf, t.wrapping_sub(t0));
        put(buf, x);
    }
}

/// A count read from the record, checked against what `min_bytes` per
/// item leaves room for.
fn count_of(d: &mut ByteCursor<'_>, what: &'static str, min_bytes: usize) -> Result<usize> {
    let at = d.pos();
    let n = d.uvarint().map_err(field(what))?;
    let room = d.remaining() / min_bytes.max(1);
    if n > room as u64 {
        return Err(WalError::RecordCorrupt {
            offset: at,
            expected: format!("{what} of at most {room}"),
            found: n.to_string(),
        });
    }
    Ok(n as usize)
}

fn spans(d: &mut ByteCursor<'_>) -> Result<Vec<Span>> {
    let n = count_of(d, "span count", 2)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.pos();
        let offset = d.varint().map_err(field("span offset"))?;
        let offset = i32::try_from(offset).map_err(|_| WalError::RecordCorrupt {
            offset: at,
            expected: "span offset in 32 bits".into(),
            found: offset.to_string(),
        })?;
        let length = d.uvarint32().map_err(field("span length"))?;
        out.push(Span { offset, length });
    }
    Ok(out)
}

fn floats(d: &mut ByteCursor<'_>, what: &'static str) -> Result<Vec<f64>> {
    let n = count_of(d, what, 8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f64::from_bits(d.be64().map_err(field(what))?));
    }
    Ok(out)
}

fn head(d: &mut ByteCursor<'_>) -> Result<(CounterResetHint, i32, f64)> {
    let at = d.pos();
    let hint = hint_of(d.byte().map_err(field("counter reset hint"))?, at)?;
    let at = d.pos();
    let schema = d.varint().map_err(field("schema"))?;
    let schema = i32::try_from(schema).map_err(|_| WalError::RecordCorrupt {
        offset: at,
        expected: "schema in 32 bits".into(),
        found: schema.to_string(),
    })?;
    let zt = f64::from_bits(d.be64().map_err(field("zero threshold"))?);
    Ok((hint, schema, zt))
}

/// Reads one integer histogram.
pub fn read_histogram(d: &mut ByteCursor<'_>) -> Result<Histogram> {
    let (counter_reset_hint, schema, zero_threshold) = head(d)?;
    let zero_count = d.uvarint().map_err(field("zero count"))?;
    let count = d.uvarint().map_err(field("count"))?;
    let sum = f64::from_bits(d.be64().map_err(field("sum"))?);
    let positive_spans = spans(d)?;
    let negative_spans = spans(d)?;
    let mut buckets = [Vec::new(), Vec::new()];
    for b in &mut buckets {
        let n = count_of(d, "bucket count", 1)?;
        b.reserve(n);
        for _ in 0..n {
            b.push(d.varint().map_err(field("bucket"))?);
        }
    }
    let [positive_buckets, negative_buckets] = buckets;
    let custom_values = if schema == CUSTOM_BUCKETS_SCHEMA {
        floats(d, "custom bound")?
    } else {
        Vec::new()
    };
    Ok(Histogram {
        counter_reset_hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values,
    })
}

/// Reads one float histogram.
pub fn read_float_histogram(d: &mut ByteCursor<'_>) -> Result<FloatHistogram> {
    let (counter_reset_hint, schema, zero_threshold) = head(d)?;
    let zero_count = f64::from_bits(d.be64().map_err(field("zero count"))?);
    let count = f64::from_bits(d.be64().map_err(field("count"))?);
    let sum = f64::from_bits(d.be64().map_err(field("sum"))?);
    let positive_spans = spans(d)?;
    let negative_spans = spans(d)?;
    let positive_buckets = floats(d, "bucket")?;
    let negative_buckets = floats(d, "bucket")?;
    let custom_values = if schema == CUSTOM_BUCKETS_SCHEMA {
        floats(d, "custom bound")?
    } else {
        Vec::new()
    };
    Ok(FloatHistogram {
        counter_reset_hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        custom_values,
    })
}

/// Reads the samples of a histogram record (after its type byte).
pub(super) fn read_samples<T>(
    d: &mut ByteCursor<'_>,
    mut one: impl FnMut(&mut ByteCursor<'_>, u64, i64) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if d.is_empty() {
        return Ok(out);
    }
    let r0 = d.be64().map_err(field("base series ref"))? as i64;
    let t0 = d.be64().map_err(field("base timestamp"))? as i64;
    while !d.is_empty() {
        let dr = d.varint().map_err(field("series ref delta"))?;
        let dt = d.varint().map_err(field("timestamp delta"))?;
        out.push(one(d, r0.wrapping_add(dr) as u64, t0.wrapping_add(dt))?);
    }
    Ok(out)
}
