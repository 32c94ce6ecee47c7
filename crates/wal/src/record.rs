//! The records the head writes into the WAL, byte-compatible with
//! Prometheus's `tsdb/record` package (types 1 to 10).
//!
//! The first byte of every record is its type. The rest, per type:
//!
//! * series (1): repeated `ref <be64> · n <uvarint> · (name, value)*n`, each
//!   string a uvarint length then bytes. Label names are strictly ascending.
//! * samples (2): empty, or `base_ref <be64> · base_t <be64>` taken from the
//!   first sample, then per sample `ref - base_ref <varint> · t - base_t
//!   <varint> · value bits <be64>` (the first sample's deltas are zero).
//!   Differences wrap around on overflow in both directions.
//! * tombstones (3): repeated `ref <be64> · mint <varint> · maxt <varint>`,
//!   one entry per interval. Decoding yields one [`Stone`] per entry, so a
//!   stone with several intervals comes back as several stones, and a stone
//!   with no interval is not written at all.
//! * exemplars (4): empty, or `base_ref <be64> · base_t <be64>` taken from
//!   the first exemplar, then per exemplar `ref - base_ref <varint> · t -
//!   base_t <varint> · value bits <be64> · n <uvarint> · (name, value)*n`
//!   (the exemplar's own labels, sorted by name; may be empty).
//! * m-map markers (5), found only in Prometheus's out-of-order log
//!   (`wbl/`): repeated `ref <be64> · chunk ref <be64>`. Cairn never writes
//!   them (its out-of-order chunks stay in memory) and reads them only to
//!   skip them: the samples they stand for are still in the log.
//! * metadata (6): repeated `ref <uvarint> · kind <1 byte> · nfields
//!   <uvarint> · (name, value)*nfields`; this crate writes the fields `UNIT`
//!   and `HELP`, and skips unknown fields when reading.
//!
//! * native-histogram samples (7 integer, 8 float, 9 and 10 the same with
//!   custom buckets): see [`histogram`].
//!
//! Decoding never panics: malformed input yields [`WalError::RecordCorrupt`]
//! and an unsupported type byte [`WalError::UnknownRecordType`].

use cairn_codec::cursor::{put_be64, put_uvarint_str};
use cairn_codec::varint::{put_uvarint, put_varint};
use cairn_codec::{ByteCursor, CodecError};
use cairn_model::Labels;

use crate::error::{Result, WalError};

/// Type byte of a series record.
pub const TYPE_SERIES: u8 = 1;
/// Type byte of a float samples record.
pub const TYPE_SAMPLES: u8 = 2;
/// Type byte of a tombstones record.
pub const TYPE_TOMBSTONES: u8 = 3;
/// Type byte of an exemplars record.
pub const TYPE_EXEMPLARS: u8 = 4;
/// Type byte of an m-map marker record (Prometheus's `wbl/` only).
pub const TYPE_MMAP_MARKERS: u8 = 5;
/// Type byte of a metadata record.
pub const TYPE_METADATA: u8 = 6;
/// Type bytes of the native-histogram sample records.
pub const TYPE_HISTOGRAMS: u8 = 7;
pub const TYPE_FLOAT_HISTOGRAMS: u8 = 8;
pub const TYPE_CUSTOM_HISTOGRAMS: u8 = 9;
pub const TYPE_CUSTOM_FLOAT_HISTOGRAMS: u8 = 10;

pub mod histogram;
pub use histogram::{RefFloatHistogramSample, RefHistogramSample};

const UNIT_FIELD: &str = "UNIT";
const HELP_FIELD: &str = "HELP";

/// A new series and the reference the head gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSeries {
    pub r: u64,
    pub labels: Labels,
}

/// One float sample of the series `r`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub r: u64,
    pub t: i64,
    pub v: f64,
}

/// Deleted time ranges of the series `r`; each interval is `(mint, maxt)`,
/// both inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stone {
    pub r: u64,
    pub intervals: Vec<(i64, i64)>,
}

/// One exemplar of the series `r`: its own labels (a trace id, say), value
/// and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct RefExemplar {
    pub r: u64,
    pub t: i64,
    pub v: f64,
    pub labels: Labels,
}

/// Metadata of the series `r`. `kind` is Prometheus's metric type number
/// (0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
/// 5 summary, 6 info, 7 stateset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefMetadata {
    pub r: u64,
    pub kind: u8,
    pub unit: String,
    pub help: String,
}

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series(Vec<RefSeries>),
    Samples(Vec<RefSample>),
    Tombstones(Vec<Stone>),
    Metadata(Vec<RefMetadata>),
    Exemplars(Vec<RefExemplar>),
    /// `(series ref, chunk ref)` pairs: an out-of-order chunk Prometheus
    /// wrote to `chunks_head/` (see the module docs).
    MmapMarkers(Vec<(u64, u64)>),
    /// Integer histogram samples; `custom` for the record of custom-bucket
    /// histograms (type 9, else 7).
    Histograms {
        custom: bool,
        samples: Vec<RefHistogramSample>,
    },
    /// Float histogram samples (type 10 with `custom`, else 8).
    FloatHistograms {
        custom: bool,
        samples: Vec<RefFloatHistogramSample>,
    },
}

impl Record {
    /// The record's type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Record::Series(_) => TYPE_SERIES,
            Record::Samples(_) => TYPE_SAMPLES,
            Record::Tombstones(_) => TYPE_TOMBSTONES,
            Record::Metadata(_) => TYPE_METADATA,
            Record::Exemplars(_) => TYPE_EXEMPLARS,
            Record::MmapMarkers(_) => TYPE_MMAP_MARKERS,
            Record::Histograms { custom: false, .. } => TYPE_HISTOGRAMS,
            Record::Histograms { custom: true, .. } => TYPE_CUSTOM_HISTOGRAMS,
            Record::FloatHistograms { custom: false, .. } => TYPE_FLOAT_HISTOGRAMS,
            Record::FloatHistograms { custom: true, .. } => TYPE_CUSTOM_FLOAT_HISTOGRAMS,
        }
    }
}

/// Appends the encoding of `rec` to `buf` (which is not cleared).
pub fn encode(rec: &Record, buf: &mut Vec<u8>) {
    buf.push(rec.type_byte());
    match rec {
        Record::Series(series) => {
            for s in series {
                put_be64(buf, s.r);
                put_labels(buf, &s.labels);
            }
        }
        Record::Samples(samples) => {
            if let Some(first) = samples.first() {
                put_be64(buf, first.r);
                put_be64(buf, first.t as u64);
                for s in samples {
                    put_varint(buf, (s.r as i64).wrapping_sub(first.r as i64));
                    put_varint(buf, s.t.wrapping_sub(first.t));
                    put_be64(buf, s.v.to_bits());
                }
            }
        }
        Record::Tombstones(stones) => {
            for s in stones {
                for &(mint, maxt) in &s.intervals {
                    put_be64(buf, s.r);
                    put_varint(buf, mint);
                    put_varint(buf, maxt);
                }
            }
        }
        Record::Exemplars(exemplars) => {
            if let Some(first) = exemplars.first() {
                put_be64(buf, first.r);
                put_be64(buf, first.t as u64);
                for e in exemplars {
                    put_varint(buf, (e.r as i64).wrapping_sub(first.r as i64));
                    put_varint(buf, e.t.wrapping_sub(first.t));
                    put_be64(buf, e.v.to_bits());
                    put_labels(buf, &e.labels);
                }
            }
        }
        Record::MmapMarkers(markers) => {
            for &(r, c) in markers {
                put_be64(buf, r);
                put_be64(buf, c);
            }
        }
        Record::Histograms { samples, .. } => histogram::put_samples(
            buf,
            samples,
            |s| (s.r, s.t),
            |b, s| histogram::put_histogram(b, &s.h),
        ),
        Record::FloatHistograms { samples, .. } => histogram::put_samples(
            buf,
            samples,
            |s| (s.r, s.t),
            |b, s| histogram::put_float_histogram(b, &s.h),
        ),
        Record::Metadata(metas) => {
            for m in metas {
                put_uvarint(buf, m.r);
                buf.push(m.kind);
                put_uvarint(buf, 2);
                put_uvarint_str(buf, UNIT_FIELD);
                put_uvarint_str(buf, &m.unit);
                put_uvarint_str(buf, HELP_FIELD);
                put_uvarint_str(buf, &m.help);
            }
        }
    }
}

/// A label set as the series and exemplar records hold it: the count, then
/// each name and value.
fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_uvarint_str(buf, l.name);
        put_uvarint_str(buf, l.value);
    }
}

/// The encoding of `rec` in a fresh buffer.
pub fn encode_to_vec(rec: &Record) -> Vec<u8> {
    let mut b = Vec::new();
    encode(rec, &mut b);
    b
}

/// Decodes one record. See the module docs for the accepted encodings.
pub fn decode(rec: &[u8]) -> Result<Record> {
    let mut d = ByteCursor::new(rec);
    let typ = d.byte().map_err(field("record type"))?;
    match typ {
        TYPE_SERIES => decode_series(&mut d).map(Record::Series),
        TYPE_SAMPLES => decode_samples(&mut d).map(Record::Samples),
        TYPE_TOMBSTONES => decode_tombstones(&mut d).map(Record::Tombstones),
        TYPE_METADATA => decode_metadata(&mut d).map(Record::Metadata),
        TYPE_EXEMPLARS => decode_exemplars(&mut d).map(Record::Exemplars),
        TYPE_MMAP_MARKERS => decode_markers(&mut d).map(Record::MmapMarkers),
        TYPE_HISTOGRAMS | TYPE_CUSTOM_HISTOGRAMS => {
            let samples = histogram::read_samples(&mut d, |d, r, t| {
                Ok(RefHistogramSample {
                    r,
                    t,
                    h: histogram::read_histogram(d)?,
                })
            })?;
            Ok(Record::Histograms {
                custom: typ == TYPE_CUSTOM_HISTOGRAMS,
                samples,
            })
        }
        TYPE_FLOAT_HISTOGRAMS | TYPE_CUSTOM_FLOAT_HISTOGRAMS => {
            let samples = histogram::read_samples(&mut d, |d, r, t| {
                Ok(RefFloatHistogramSample {
                    r,
                    t,
                    h: histogram::read_float_histogram(d)?,
                })
            })?;
            Ok(Record::FloatHistograms {
                custom: typ == TYPE_CUSTOM_FLOAT_HISTOGRAMS,
                samples,
            })
        }
        other => Err(WalError::UnknownRecordType { found: other }),
    }
}

fn decode_series(d: &mut ByteCursor<'_>) -> Result<Vec<RefSeries>> {
    let mut out = Vec::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    while !d.is_empty() {
        let r = d.be64().map_err(field("series ref"))?;
        let labels = decode_labels(d, &mut pairs)?;
        out.push(RefSeries { r, labels });
    }
    Ok(out)
}

/// A label set written by `put_labels`; `pairs` is scratch space.
fn decode_labels<'b>(
    d: &mut ByteCursor<'b>,
    pairs: &mut Vec<(&'b str, &'b str)>,
) -> Result<Labels> {
    let n = d.uvarint().map_err(field("label count"))?;
    pairs.clear();
    for _ in 0..n {
        let name = d.uvarint_str().map_err(field("label name"))?;
        let value = d.uvarint_str().map_err(field("label value"))?;
        pairs.push((name, value));
    }
    Labels::try_from_sorted(pairs.iter().copied()).map_err(|e| WalError::RecordCorrupt {
        offset: d.pos(),
        expected: "a valid sorted label set".to_owned(),
        found: e.to_string(),
    })
}

fn decode_exemplars(d: &mut ByteCursor<'_>) -> Result<Vec<RefExemplar>> {
    let mut out = Vec::new();
    if d.is_empty() {
        return Ok(out);
    }
    let base_r = d.be64().map_err(field("base series ref"))? as i64;
    let base_t = d.be64().map_err(field("base timestamp"))? as i64;
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    while !d.is_empty() {
        let dr = d.varint().map_err(field("series ref delta"))?;
        let dt = d.varint().map_err(field("timestamp delta"))?;
        let v = f64::from_bits(d.be64().map_err(field("exemplar value"))?);
        let labels = decode_labels(d, &mut pairs)?;
        out.push(RefExemplar {
            r: base_r.wrapping_add(dr) as u64,
            t: base_t.wrapping_add(dt),
            v,
            labels,
        });
    }
    Ok(out)
}

fn decode_samples(d: &mut ByteCursor<'_>) -> Result<Vec<RefSample>> {
    let mut out = Vec::new();
    if d.is_empty() {
        return Ok(out);
    }
    let base_r = d.be64().map_err(field("base series ref"))? as i64;
    let base_t = d.be64().map_err(field("base timestamp"))? as i64;
    // A sample takes at least 10 bytes (two one-byte varints, the value).
    out.reserve(d.remaining() / 10);
    while !d.is_empty() {
        // The replay of a large WAL is mostly this loop: samples are read
        // straight from the slice; the first that does not decode cleanly
        // is read again below, which names what is wrong and where.
        let rest = d.rest();
        let mut p = 0;
        while let Some((dr, dt, v, next)) = fast_sample(rest, p) {
            out.push(RefSample {
                r: base_r.wrapping_add(dr) as u64,
                t: base_t.wrapping_add(dt),
                v: f64::from_bits(v),
            });
            p = next;
        }
        d.bytes(p as u64).map_err(field("sample"))?;
        if d.is_empty() {
            break;
        }
        out.push(checked_sample(d, base_r, base_t)?);
    }
    Ok(out)
}

/// One sample through the cursor's checked reads, which name what is wrong
/// and where.
fn checked_sample(d: &mut ByteCursor<'_>, base_r: i64, base_t: i64) -> Result<RefSample> {
    let dr = d.varint().map_err(field("series ref delta"))?;
    let dt = d.varint().map_err(field("timestamp delta"))?;
    let v = f64::from_bits(d.be64().map_err(field("sample value"))?);
    Ok(RefSample {
        r: base_r.wrapping_add(dr) as u64,
        t: base_t.wrapping_add(dt),
        v,
    })
}

/// One sample at `b[p..]`: ref delta, timestamp delta, value bits and the
/// offset after it; `None` at the end or at anything but a well-formed
/// sample (the caller's checked reads report it).
#[inline]
fn fast_sample(b: &[u8], p: usize) -> Option<(i64, i64, u64, usize)> {
    let (dr, p) = fast_varint(b, p)?;
    let (dt, p) = fast_varint(b, p)?;
    let v: [u8; 8] = b.get(p..p + 8)?.try_into().ok()?;
    Some((dr, dt, u64::from_be_bytes(v), p + 8))
}

/// A zig-zag varint at `b[p..]` as Go's `binary.Varint` reads it, and the
/// offset after it; `None` when truncated or overlong.
#[inline]
fn fast_varint(b: &[u8], p: usize) -> Option<(i64, usize)> {
    let mut x = 0u64;
    let mut shift = 0u32;
    for i in 0..10 {
        let byte = *b.get(p + i)?;
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return None;
            }
            x |= u64::from(byte) << shift;
            return Some((cairn_codec::varint::unzigzag(x), p + i + 1));
        }
        x |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    None
}

fn decode_markers(d: &mut ByteCursor<'_>) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let r = d.be64().map_err(field("marker series ref"))?;
        let c = d.be64().map_err(field("marker chunk ref"))?;
        out.push((r, c));
    }
    Ok(out)
}

fn decode_tombstones(d: &mut ByteCursor<'_>) -> Result<Vec<Stone>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let r = d.be64().map_err(field("series ref"))?;
        let mint = d.varint().map_err(field("interval min time"))?;
        let maxt = d.varint().map_err(field("interval max time"))?;
        out.push(Stone {
            r,
            intervals: vec![(mint, maxt)],
        });
    }
    Ok(out)
}

fn decode_metadata(d: &mut ByteCursor<'_>) -> Result<Vec<RefMetadata>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let r = d.uvarint().map_err(field("series ref"))?;
        let kind = d.byte().map_err(field("metric type"))?;
        let n = d.uvarint().map_err(field("field count"))?;
        let mut m = RefMetadata {
            r,
            kind,
            unit: String::new(),
            help: String::new(),
        };
        for _ in 0..n {
            let name = d.uvarint_str().map_err(field("field name"))?;
            let value = d.uvarint_str().map_err(field("field value"))?;
            match name {
                UNIT_FIELD => value.clone_into(&mut m.unit),
                HELP_FIELD => value.clone_into(&mut m.help),
                _ => {}
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// Turns a failed read of the field `what` into [`WalError::RecordCorrupt`]
/// at the offset where the read failed.
pub(crate) fn field(what: &'static str) -> impl FnOnce(CodecError) -> WalError {
    move |e| {
        let (expected, found) = e.expected_found();
        WalError::RecordCorrupt {
            offset: e.byte_offset().unwrap_or(0),
            expected: format!("{what}: {expected}"),
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // test code
    use super::*;
    use proptest::prelude::*;

    /// Every sample through the cursor's checked reads: what
    /// `decode_samples` answers, errors included.
    fn checked(d: &mut ByteCursor<'_>) -> Result<Vec<RefSample>> {
        let mut out = Vec::new();
        if d.is_empty() {
            return Ok(out);
        }
        let base_r = d.be64().map_err(field("base series ref"))? as i64;
        let base_t = d.be64().map_err(field("base timestamp"))? as i64;
        while !d.is_empty() {
            out.push(checked_sample(d, base_r, base_t)?);
        }
        Ok(out)
    }

    fn same(a: &Result<Vec<RefSample>>, b: &Result<Vec<RefSample>>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|(p, q)| p.r == q.r && p.t == q.t && p.v.to_bits() == q.v.to_bits())
            }
            (Err(x), Err(y)) => x.to_string() == y.to_string(),
            _ => false,
        }
    }

    /// Overlong and truncated varints, and bytes past the last sample.
    #[test]
    fn fast_sample_reading_fails_as_checked_reading_does() {
        let mut head = vec![0u8; 16];
        head[7] = 5;
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![2, 4, 0, 0, 0, 0, 0, 0, 0, 1],
            vec![2, 4, 0, 0, 0, 0, 0, 0, 0, 1, 2],
            vec![0xff; 9],
            [vec![0xff; 9], vec![2]].concat(),
            [vec![0xff; 9], vec![1], vec![0; 9]].concat(),
            [vec![0x80; 10], vec![0; 9]].concat(),
        ];
        for c in cases {
            let b = [head.clone(), c].concat();
            let (f, s) = (
                decode_samples(&mut ByteCursor::new(&b)),
                checked(&mut ByteCursor::new(&b)),
            );
            assert!(same(&f, &s), "{b:?}: {f:?} against {s:?}");
        }
    }

    proptest! {
        #[test]
        fn fast_sample_reading_equals_checked_reading(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (f, s) = (decode_samples(&mut ByteCursor::new(&b)), checked(&mut ByteCursor::new(&b)));
            prop_assert!(same(&f, &s), "{:?} against {:?}", f, s);
        }

        #[test]
        fn fast_sample_reading_equals_checked_reading_on_samples(
            v in proptest::collection::vec((any::<i64>(), any::<i64>(), any::<u64>()), 0..40),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut b = Vec::new();
            put_be64(&mut b, 7);
            put_be64(&mut b, 1_000);
            for (dr, dt, x) in &v {
                put_varint(&mut b, *dr);
                put_varint(&mut b, *dt);
                put_be64(&mut b, *x);
            }
            let whole = decode_samples(&mut ByteCursor::new(&b));
            prop_assert!(same(&whole, &checked(&mut ByteCursor::new(&b))));
            prop_assert_eq!(whole.map(|x| x.len()).unwrap_or(usize::MAX), v.len());
            // Cut anywhere: the same error, or the same shorter answer.
            let at = cut.index(b.len() + 1);
            let part = b.get(..at).unwrap();
            prop_assert!(same(&decode_samples(&mut ByteCursor::new(part)), &checked(&mut ByteCursor::new(part))));
        }
    }
}
