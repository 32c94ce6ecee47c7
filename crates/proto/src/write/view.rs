//! Zero-copy decoding of a remote write 1.0 `WriteRequest`.
//!
//! The `prost` types decode every label into its own `Bytes` handle (a
//! reference-count update per string) and every series into fresh vectors.
//! On the ingest hot path that bookkeeping costs more than the parsing, so
//! this reader walks the encoded message directly and lends out borrowed
//! slices, filling vectors the caller reuses from series to series.
//!
//! It accepts what `prost` accepts for these messages (proto3 rules: fields
//! in any order, the last occurrence of a scalar wins, unknown fields are
//! skipped, deprecated groups included), with one deliberate difference:
//! exemplars and histograms are only counted on the first pass, not parsed,
//! so a malformed one does not fail the request; a series that has any is
//! looked at a second time ([`decode_series_exemplars`],
//! [`decode_series_histograms`]), where a malformed histogram is reported
//! on its own.

use crate::{ProtoError, Result};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

fn err(what: &'static str) -> ProtoError {
    ProtoError::Malformed(what)
}

/// A cursor over protobuf fields.
struct Fields<'a> {
    buf: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
    Group,
}

fn varint(buf: &mut &[u8]) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or_else(|| err("truncated varint"))?;
        *buf = rest;
        if i == 9 && b > 1 {
            return Err(err("varint overflows 64 bits"));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(err("varint too long"))
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn next(&mut self) -> Option<Result<(u32, Value<'a>)>> {
        if self.buf.is_empty() {
            return None;
        }
        Some(self.read())
    }

    fn read(&mut self) -> Result<(u32, Value<'a>)> {
        let key = varint(&mut self.buf)?;
        let field = u32::try_from(key >> 3).map_err(|_| err("field number too large"))?;
        if field == 0 {
            return Err(err("field number 0"));
        }
        let v = match (key & 7) as u8 {
            VARINT => Value::Varint(varint(&mut self.buf)?),
            FIXED64 => {
                let (b, rest) = self
                    .buf
                    .split_at_checked(8)
                    .ok_or_else(|| err("truncated fixed64"))?;
                self.buf = rest;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            LEN => {
                let n = varint(&mut self.buf)?;
                let n = usize::try_from(n).map_err(|_| err("length too large"))?;
                let (b, rest) = self
                    .buf
                    .split_at_checked(n)
                    .ok_or_else(|| err("truncated length-delimited field"))?;
                self.buf = rest;
                Value::Len(b)
            }
            FIXED32 => {
                let (_, rest) = self
                    .buf
                    .split_at_checked(4)
                    .ok_or_else(|| err("truncated fixed32"))?;
                self.buf = rest;
                Value::Fixed32
            }
            START_GROUP => {
                self.skip_group(field, 0)?;
                Value::Group
            }
            _ => return Err(err("unexpected end group or invalid wire type")),
        };
        Ok((field, v))
    }

    /// Skips the rest of a (deprecated) group started by `field`.
    fn skip_group(&mut self, field: u32, depth: u32) -> Result<()> {
        if depth > 64 {
            return Err(err("groups nested too deeply"));
        }
        loop {
            let key = varint(&mut self.buf)?;
            let f = u32::try_from(key >> 3).map_err(|_| err("field number too large"))?;
            match (key & 7) as u8 {
                END_GROUP if f == field => return Ok(()),
                END_GROUP => return Err(err("mismatched end group")),
                START_GROUP => self.skip_group(f, depth + 1)?,
                VARINT => {
                    varint(&mut self.buf)?;
                }
                FIXED64 => {
                    self.buf = self.buf.get(8..).ok_or_else(|| err("truncated fixed64"))?;
                }
                FIXED32 => {
                    self.buf = self.buf.get(4..).ok_or_else(|| err("truncated fixed32"))?;
                }
                LEN => {
                    let n = usize::try_from(varint(&mut self.buf)?)
                        .map_err(|_| err("length too large"))?;
                    self.buf = self
                        .buf
                        .get(n..)
                        .ok_or_else(|| err("truncated length-delimited field"))?;
                }
                _ => return Err(err("invalid wire type")),
            }
        }
    }
}

/// One top-level item of a request.
pub enum Item<'a> {
    /// An encoded `TimeSeries`; decode with [`decode_series`].
    Series(&'a [u8]),
    /// A `MetricMetadata` entry.
    Metadata(MetadataView<'a>),
}

/// A borrowed `MetricMetadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataView<'a> {
    pub r#type: i32,
    pub metric_family_name: &'a [u8],
    pub help: &'a [u8],
    pub unit: &'a [u8],
}

/// Iterates the items of an encoded `WriteRequest`.
pub struct WriteRequestView<'a> {
    fields: Fields<'a>,
}

impl<'a> WriteRequestView<'a> {
    /// A view over an encoded (decompressed) request.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            fields: Fields::new(buf),
        }
    }

    /// The next series or metadata entry; unknown fields are skipped.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Item<'a>>> {
        loop {
            let (field, v) = match self.fields.next()? {
                Ok(x) => x,
                Err(e) => {
                    self.fields.buf = &[];
                    return Some(Err(e));
                }
            };
            let item = match (field, v) {
                (1, Value::Len(b)) => Ok(Item::Series(b)),
                (3, Value::Len(b)) => decode_metadata(b).map(Item::Metadata),
                (1 | 3, _) => Err(err("wrong wire type for a message field")),
                _ => continue,
            };
            if item.is_err() {
                self.fields.buf = &[];
            }
            return Some(item);
        }
    }
}

fn decode_metadata(b: &[u8]) -> Result<MetadataView<'_>> {
    let mut m = MetadataView::default();
    let mut f = Fields::new(b);
    while let Some(x) = f.next() {
        match x? {
            (1, Value::Varint(v)) => m.r#type = v as i32,
            (2, Value::Len(s)) => m.metric_family_name = s,
            (4, Value::Len(s)) => m.help = s,
            (5, Value::Len(s)) => m.unit = s,
            (1 | 2 | 4 | 5, _) => return Err(err("wrong wire type in MetricMetadata")),
            _ => {}
        }
    }
    Ok(m)
}

/// What a series holds besides labels and samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeriesCounts {
    pub exemplars: usize,
    pub histograms: usize,
}

/// One encoded `Sample`: `(timestamp, value)`; absent fields are zero.
#[inline]
fn decode_sample(b: &[u8]) -> Result<(i64, f64)> {
    let (mut t, mut v) = (0i64, 0f64);
    let mut f = Fields::new(b);
    while let Some(x) = f.next() {
        match x? {
            (1, Value::Fixed64(bits)) => v = f64::from_bits(bits),
            (2, Value::Varint(x)) => t = x as i64,
            (1 | 2, _) => return Err(err("wrong wire type in Sample")),
            _ => {}
        }
    }
    Ok((t, v))
}

/// Decodes one encoded `TimeSeries`: its labels (in wire order) into
/// `labels` and its samples as `(timestamp, value)` into `samples`, both
/// cleared first.
pub fn decode_series<'a>(
    b: &'a [u8],
    labels: &mut Vec<(&'a [u8], &'a [u8])>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<SeriesCounts> {
    labels.clear();
    samples.clear();
    let mut counts = SeriesCounts::default();
    let mut f = Fields::new(b);
    while let Some(x) = f.next() {
        match x? {
            (1, Value::Len(l)) => {
                let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
                let mut lf = Fields::new(l);
                while let Some(y) = lf.next() {
                    match y? {
                        (1, Value::Len(s)) => name = s,
                        (2, Value::Len(s)) => value = s,
                        (1 | 2, _) => return Err(err("wrong wire type in Label")),
                        _ => {}
                    }
                }
                labels.push((name, value));
            }
            (2, Value::Len(s)) => samples.push(decode_sample(s)?),
            (3, Value::Len(_)) => counts.exemplars += 1,
            (4, Value::Len(_)) => counts.histograms += 1,
            (1..=4, _) => return Err(err("wrong wire type in TimeSeries")),
            _ => {}
        }
    }
    Ok(counts)
}

/// One encoded `Exemplar`, its labels borrowed in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExemplarView<'a> {
    pub labels: Vec<(&'a [u8], &'a [u8])>,
    pub value: f64,
    pub timestamp: i64,
}

/// Decodes the exemplars of one encoded `TimeSeries` into `out` (cleared
/// first). The series' other fields are skipped, not checked: this is the
/// second look at a series that [`decode_series`] or
/// [`decode_series_samples`] counted exemplars in.
pub fn decode_series_exemplars<'a>(b: &'a [u8], out: &mut Vec<ExemplarView<'a>>) -> Result<()> {
    out.clear();
    let mut f = Fields::new(b);
    while let Some(x) = f.next() {
        let (3, Value::Len(e)) = x? else { continue };
        let mut ex = ExemplarView::default();
        let mut ef = Fields::new(e);
        while let Some(y) = ef.next() {
            match y? {
                (1, Value::Len(l)) => {
                    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
                    let mut lf = Fields::new(l);
                    while let Some(z) = lf.next() {
                        match z? {
                            (1, Value::Len(s)) => name = s,
                            (2, Value::Len(s)) => value = s,
                            (1 | 2, _) => return Err(err("wrong wire type in Label")),
                            _ => {}
                        }
                    }
                    ex.labels.push((name, value));
                }
                (2, Value::Fixed64(bits)) => ex.value = f64::from_bits(bits),
                (3, Value::Varint(t)) => ex.timestamp = t as i64,
                (1..=3, _) => return Err(err("wrong wire type in Exemplar")),
                _ => {}
            }
        }
        out.push(ex);
    }
    Ok(())
}

/// Decodes the histograms of one encoded `TimeSeries` into `out` (cleared
/// first), in wire order: each is decoded on its own, so one malformed
/// histogram is an `Err` in its place and the others still decode. The
/// series' other fields are skipped, not checked (see
/// [`decode_series_exemplars`]).
pub fn decode_series_histograms(b: &[u8], out: &mut Vec<Result<crate::histogram::Histogram>>) {
    use prost::Message as _;
    out.clear();
    let mut f = Fields::new(b);
    while let Some(x) = f.next() {
        match x {
            Ok((4, Value::Len(h))) => {
                out.push(crate::histogram::Histogram::decode(h).map_err(ProtoError::from));
            }
            Ok(_) => {}
            // The first pass decoded this series; a failure here cannot
            // happen, but must not pass silently.
            Err(e) => {
                out.push(Err(e));
                return;
            }
        }
    }
}

/// A series decoded without its labels: see [`decode_series_samples`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawSeries<'a> {
    /// The encoded label fields (keys, lengths and `Label` messages, exactly
    /// as sent) when they form one uninterrupted run, else `None`. Equal runs
    /// decode to equal label lists, which is what makes this a cache key.
    pub labels: Option<&'a [u8]>,
    pub counts: SeriesCounts,
}

/// Decodes one encoded `TimeSeries`'s samples into `samples` (cleared
/// first) and locates its label fields without parsing them. Use
/// [`decode_series`] when the labels are needed; it accepts every message
/// this accepts, and may refuse one whose `Label` messages are malformed.
pub fn decode_series_samples<'a>(
    b: &'a [u8],
    samples: &mut Vec<(i64, f64)>,
) -> Result<RawSeries<'a>> {
    samples.clear();
    let mut out = RawSeries::default();
    // Label run as offsets into `b`: start, end; `broken` once another
    // field came between two label fields.
    let mut run: Option<(usize, usize)> = None;
    let mut broken = false;
    let mut f = Fields::new(b);
    loop {
        let at = b.len() - f.buf.len();
        let Some(x) = f.next() else { break };
        let end = b.len() - f.buf.len();
        match x? {
            (1, Value::Len(_)) => {
                run = match run {
                    None => Some((at, end)),
                    Some((s, e)) if e == at => Some((s, end)),
                    Some((s, _)) => {
                        broken = true;
                        Some((s, end))
                    }
                };
            }
            (2, Value::Len(s)) => samples.push(decode_sample(s)?),
            (3, Value::Len(_)) => out.counts.exemplars += 1,
            (4, Value::Len(_)) => out.counts.histograms += 1,
            (1..=4, _) => return Err(err("wrong wire type in TimeSeries")),
            _ => {}
        }
    }
    out.labels = match run {
        Some((s, e)) if !broken => b.get(s..e),
        None => Some(&[]),
        Some(_) => None,
    };
    Ok(out)
}
