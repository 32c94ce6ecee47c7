//! Encoding 3, float histograms (Prometheus's `FloatHistogramChunk`,
//! `FloatHistogramAppender` and `floatHistogramIterator`).
//!
//! Per sample, after the layout of the first one:
//!
//! | field      | sample 0       | sample 1..     |
//! |------------|----------------|----------------|
//! | timestamp  | varbit int     | varbit int dod |
//! | count      | 64 bits        | XOR            |
//! | zero count | 64 bits        | XOR            |
//! | sum        | 64 bits        | XOR            |
//! | buckets    | 64 bits each   | XOR each       |
//!
//! Every count and bucket is its own XOR field with its own window. A stale
//! marker writes count and zero count 0 (as XORs) and no buckets.

use super::int::{after_stale, check_recode_count, not_appendable};
use super::layout::{count_spans, is_known_schema, read_layout, write_layout, Layout};
use super::spans::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert_absolute, Insert,
};
use super::varbit::{put_varbit_int, read_varbit_int};
use super::xor_value::XorValue;
use super::{
    check_bucket_count, check_bucket_room, check_tail, counter_reset_hint, header_eof, is_stale,
    unknown_schema, AppendOutcome, Appendable, CounterResetHeader, GaugeAppendable,
    COUNTER_RESET_MASK, FLAGS_POS, HISTOGRAM_HEADER_LEN,
};
use crate::{BitReader, BitWriter, CodecError, MAX_SAMPLES_PER_CHUNK};
use cairn_model::{
    custom_bounds_match, CounterResetHint, FloatHistogram, Span, CUSTOM_BUCKETS_SCHEMA,
};
use std::borrow::Cow;

/// Bytes a new chunk's buffer starts with.
const INITIAL_CAPACITY: usize = 128;

/// The layout, the last timestamp and delta, and every field's XOR state.
#[derive(Debug, Clone, PartialEq)]
struct State {
    layout: Layout,
    t: i64,
    t_delta: i64,
    cnt: XorValue,
    zcnt: XorValue,
    sum: XorValue,
    pos: Vec<XorValue>,
    neg: Vec<XorValue>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            t: i64::MIN,
            t_delta: 0,
            cnt: XorValue::new(0),
            zcnt: XorValue::new(0),
            sum: XorValue::new(0),
            pos: Vec::new(),
            neg: Vec::new(),
        }
    }
}

fn values(v: &[XorValue]) -> Vec<f64> {
    v.iter().map(XorValue::value).collect()
}

/// A float-histogram chunk (encoding 3) that owns its bytes and can be
/// appended to.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatHistogramChunk {
    w: BitWriter,
    num: u16,
    st: State,
}

impl Default for FloatHistogramChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl FloatHistogramChunk {
    /// An empty chunk: the three header bytes, all zero.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(INITIAL_CAPACITY);
        buf.extend_from_slice(&[0; HISTOGRAM_HEADER_LEN]);
        Self {
            w: BitWriter::from_bytes(buf, 0),
            num: 0,
            st: State::default(),
        }
    }

    /// Takes chunk data written by Prometheus or by
    /// [`FloatHistogramChunk::bytes`], decodes it and restores the append
    /// state. Errors like [`crate::HistogramChunk::from_bytes`].
    pub fn from_bytes(b: Vec<u8>) -> Result<Self, CodecError> {
        let mut it = float_histogram_iter(&b);
        while it.next() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        let free = check_tail(&b, it.r.position_bits())?;
        let (num, st) = (it.read, std::mem::take(&mut it.st));
        Ok(Self {
            w: BitWriter::from_bytes(b, free),
            num,
            st,
        })
    }

    /// The chunk data, exactly as Prometheus stores it.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Gives up the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// The timestamp of the last sample, if any.
    pub fn last_timestamp(&self) -> Option<i64> {
        (self.num > 0).then_some(self.st.t)
    }

    /// The header's counter-reset bits.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        CounterResetHeader::from_flags(self.w.bytes().get(FLAGS_POS).copied().unwrap_or(0))
    }

    /// Sets the header's counter-reset bits, keeping the other six.
    pub fn set_counter_reset_header(&mut self, h: CounterResetHeader) {
        if let Some(f) = self.w.bytes_mut().get_mut(FLAGS_POS) {
            *f = (*f & !COUNTER_RESET_MASK) | h.bits();
        }
    }

    /// Iterates the samples.
    pub fn iter(&self) -> FloatHistogramIterator<'_> {
        float_histogram_iter(self.bytes())
    }

    /// Prometheus's `appendable` for float histograms. Unlike the integer
    /// version, the verdict is only "was it a counter reset": a schema or
    /// zero-threshold change and a sample after a stale marker are not
    /// appendable without being resets.
    pub fn appendable(&self, h: &FloatHistogram) -> Appendable<bool> {
        let mut out = Appendable::<bool>::default();
        let st = &self.st;
        if self.num > 0 && self.counter_reset_header() == CounterResetHeader::Gauge {
            return out;
        }
        if h.counter_reset_hint == CounterResetHint::CounterReset {
            out.counter_reset = true;
            return out;
        }
        if is_stale(h.sum) {
            out.ok = true;
            return out;
        }
        if is_stale(st.sum.value()) {
            return out;
        }
        if h.count < st.cnt.value() {
            out.counter_reset = true;
            return out;
        }
        if h.schema != st.layout.schema || h.zero_threshold != st.layout.zero_threshold {
            return out;
        }
        if h.schema == CUSTOM_BUCKETS_SCHEMA
            && !custom_bounds_match(&h.custom_values, &st.layout.custom_values)
        {
            out.counter_reset = true;
            return out;
        }
        if h.zero_count < st.zcnt.value() {
            out.counter_reset = true;
            return out;
        }
        let Some((f, b)) = expand_spans_and_buckets(
            &st.layout.positive_spans,
            &h.positive_spans,
            &values(&st.pos),
            &h.positive_buckets,
        ) else {
            out.counter_reset = true;
            return out;
        };
        out.positive_inserts = f;
        out.backward_positive_inserts = b;
        let Some((f, b)) = expand_spans_and_buckets(
            &st.layout.negative_spans,
            &h.negative_spans,
            &values(&st.neg),
            &h.negative_buckets,
        ) else {
            out.counter_reset = true;
            return out;
        };
        out.negative_inserts = f;
        out.backward_negative_inserts = b;
        out.ok = true;
        out
    }

    /// Prometheus's `appendableGauge` for float histograms (see
    /// [`crate::HistogramChunk::appendable_gauge`]).
    pub fn appendable_gauge(&self, h: &FloatHistogram) -> GaugeAppendable {
        let mut out = GaugeAppendable::default();
        let st = &self.st;
        if self.num > 0 && self.counter_reset_header() != CounterResetHeader::Gauge {
            return out;
        }
        if is_stale(h.sum) {
            out.ok = true;
            return out;
        }
        if is_stale(st.sum.value())
            || h.schema != st.layout.schema
            || h.zero_threshold != st.layout.zero_threshold
            || (h.schema == CUSTOM_BUCKETS_SCHEMA
                && !custom_bounds_match(&h.custom_values, &st.layout.custom_values))
        {
            return out;
        }
        let (f, b, s) = expand_spans_both_ways(&st.layout.positive_spans, &h.positive_spans);
        (
            out.positive_inserts,
            out.backward_positive_inserts,
            out.positive_spans,
        ) = (f, b, s);
        let (f, b, s) = expand_spans_both_ways(&st.layout.negative_spans, &h.negative_spans);
        (
            out.negative_inserts,
            out.backward_negative_inserts,
            out.negative_spans,
        ) = (f, b, s);
        out.ok = true;
        out
    }

    /// Prometheus's `appendFloatHistogram`: writes `h` at `t` with no
    /// appendability checks (see [`crate::HistogramChunk::append_raw`]).
    pub fn append_raw(&mut self, t: i64, h: &FloatHistogram) -> Result<(), CodecError> {
        if usize::from(self.num) >= MAX_SAMPLES_PER_CHUNK {
            return Err(CodecError::ChunkFull {
                max: MAX_SAMPLES_PER_CHUNK,
            });
        }
        let stale = is_stale(h.sum);
        if self.num == 0 {
            if stale {
                self.write_first(
                    t,
                    &FloatHistogram {
                        sum: h.sum,
                        ..Default::default()
                    },
                );
            } else {
                check_spans_and_buckets(h)?;
                self.write_first(t, h);
            }
        } else {
            if !stale {
                if is_stale(self.st.sum.value()) {
                    return Err(after_stale());
                }
                check_bucket_count(
                    "positive buckets for the chunk's layout",
                    self.st.pos.len() as u64,
                    h.positive_buckets.len(),
                )?;
                check_bucket_count(
                    "negative buckets for the chunk's layout",
                    self.st.neg.len() as u64,
                    h.negative_buckets.len(),
                )?;
            }
            self.write_next(t, h, stale);
        }
        self.num += 1;
        if let Some(c) = self.w.bytes_mut().get_mut(..2) {
            c.copy_from_slice(&self.num.to_be_bytes());
        }
        self.w.trim_spare_byte();
        Ok(())
    }

    fn write_first(&mut self, t: i64, h: &FloatHistogram) {
        let w = &mut self.w;
        write_layout(
            w,
            h.schema,
            h.zero_threshold,
            &h.positive_spans,
            &h.negative_spans,
            &h.custom_values,
        );
        put_varbit_int(w, t);
        for v in [h.count, h.zero_count, h.sum]
            .iter()
            .chain(&h.positive_buckets)
            .chain(&h.negative_buckets)
        {
            w.write_bits(v.to_bits(), 64);
        }
        let xs = |v: &[f64]| v.iter().map(|b| XorValue::new(b.to_bits())).collect();
        self.st = State {
            layout: Layout {
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                positive_spans: h.positive_spans.clone(),
                negative_spans: h.negative_spans.clone(),
                custom_values: h.custom_values.clone(),
            },
            t,
            t_delta: 0,
            cnt: XorValue::new(h.count.to_bits()),
            zcnt: XorValue::new(h.zero_count.to_bits()),
            sum: XorValue::new(h.sum.to_bits()),
            pos: xs(&h.positive_buckets),
            neg: xs(&h.negative_buckets),
        };
    }

    fn write_next(&mut self, t: i64, h: &FloatHistogram, stale: bool) {
        let (w, st) = (&mut self.w, &mut self.st);
        let t_delta = t.wrapping_sub(st.t);
        put_varbit_int(w, t_delta.wrapping_sub(st.t_delta));
        // A stale marker is written as Prometheus writes `{Sum: stale}`.
        let (count, zcount) = if stale {
            (0.0, 0.0)
        } else {
            (h.count, h.zero_count)
        };
        st.cnt.write(w, count);
        st.zcnt.write(w, zcount);
        st.sum.write(w, h.sum);
        if !stale {
            for (src, dst) in [
                (&h.positive_buckets, &mut st.pos),
                (&h.negative_buckets, &mut st.neg),
            ] {
                for (&b, x) in src.iter().zip(dst.iter_mut()) {
                    x.write(w, b);
                }
            }
        }
        st.t = t;
        st.t_delta = t_delta;
    }

    /// Prometheus's `recode` for float histograms (see
    /// [`crate::HistogramChunk::recode`]).
    pub fn recode(
        &self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        positive_spans: &[Span],
        negative_spans: &[Span],
    ) -> Result<FloatHistogramChunk, CodecError> {
        let np = count_spans(positive_spans);
        let nn = count_spans(negative_spans);
        check_recode_count("positive", np, self.st.pos.len(), positive_inserts)?;
        check_recode_count("negative", nn, self.st.neg.len(), negative_inserts)?;
        let mut out = FloatHistogramChunk::new();
        let mut it = self.iter();
        while it.next() {
            let (t, mut h) = it.at();
            h.positive_spans = positive_spans.to_vec();
            h.negative_spans = negative_spans.to_vec();
            if !positive_inserts.is_empty() {
                h.positive_buckets =
                    insert_absolute(&h.positive_buckets, np as usize, positive_inserts)?;
            }
            if !negative_inserts.is_empty() {
                h.negative_buckets =
                    insert_absolute(&h.negative_buckets, nn as usize, negative_inserts)?;
            }
            out.append_raw(t, &h)?;
        }
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        out.set_counter_reset_header(self.counter_reset_header());
        Ok(out)
    }

    /// Prometheus's `recodeHistogram` for float histograms: widens `h`'s
    /// buckets by the backward inserts (its spans must already be widened).
    pub fn recode_histogram(
        h: &mut FloatHistogram,
        backward_positive: &[Insert],
        backward_negative: &[Insert],
    ) -> Result<(), CodecError> {
        if !backward_positive.is_empty() {
            let n = count_spans(&h.positive_spans);
            check_recode_count("positive", n, h.positive_buckets.len(), backward_positive)?;
            h.positive_buckets =
                insert_absolute(&h.positive_buckets, n as usize, backward_positive)?;
        }
        if !backward_negative.is_empty() {
            let n = count_spans(&h.negative_spans);
            check_recode_count("negative", n, h.negative_buckets.len(), backward_negative)?;
            h.negative_buckets =
                insert_absolute(&h.negative_buckets, n as usize, backward_negative)?;
        }
        Ok(())
    }

    /// Prometheus's `AppendFloatHistogram(prev, t, h, appendOnly)` (see
    /// [`crate::HistogramChunk::append`]). The headers differ from the
    /// integer version as in Prometheus: a first sample continuing `prev`
    /// gets `CounterReset` or `NotCounterReset` (never `Unknown`), and a
    /// new chunk cut for anything but a counter reset keeps `Unknown`.
    pub fn append(
        &mut self,
        prev: Option<&FloatHistogramChunk>,
        t: i64,
        h: &FloatHistogram,
        append_only: bool,
    ) -> Result<AppendOutcome<FloatHistogramChunk>, CodecError> {
        use CounterResetHeader as H;
        if !is_stale(h.sum) {
            check_spans_and_buckets(h)?;
        }
        if self.num == 0 {
            self.append_raw(t, h)?;
            if h.counter_reset_hint == CounterResetHint::Gauge {
                self.set_counter_reset_header(H::Gauge);
            } else if h.counter_reset_hint == CounterResetHint::CounterReset {
                self.set_counter_reset_header(H::CounterReset);
            } else if let Some(p) = prev {
                self.set_counter_reset_header(if p.appendable(h).counter_reset {
                    H::CounterReset
                } else {
                    H::NotCounterReset
                });
            }
            return Ok(AppendOutcome::Appended);
        }
        if h.counter_reset_hint != CounterResetHint::Gauge {
            let a = self.appendable(h);
            if !a.ok || a.counter_reset {
                if append_only {
                    return Err(not_appendable(if a.counter_reset {
                        "float histogram counter reset"
                    } else {
                        "float histogram schema change"
                    }));
                }
                let mut c = FloatHistogramChunk::new();
                if a.counter_reset {
                    c.set_counter_reset_header(H::CounterReset);
                }
                c.append_raw(t, h)?;
                return Ok(AppendOutcome::NewChunk(c));
            }
            let mut h = Cow::Borrowed(h);
            let forward = !a.positive_inserts.is_empty() || !a.negative_inserts.is_empty();
            if !a.backward_positive_inserts.is_empty() || !a.backward_negative_inserts.is_empty() {
                let hm = h.to_mut();
                if forward {
                    hm.positive_spans =
                        adjust_for_inserts(&hm.positive_spans, &a.backward_positive_inserts);
                    hm.negative_spans =
                        adjust_for_inserts(&hm.negative_spans, &a.backward_negative_inserts);
                } else {
                    hm.positive_spans = self.st.layout.positive_spans.clone();
                    hm.negative_spans = self.st.layout.negative_spans.clone();
                }
                Self::recode_histogram(
                    hm,
                    &a.backward_positive_inserts,
                    &a.backward_negative_inserts,
                )?;
            }
            if forward {
                if append_only {
                    return Err(not_appendable(format!(
                        "float histogram layout change with {} positive and {} negative forwards inserts",
                        a.positive_inserts.len(),
                        a.negative_inserts.len()
                    )));
                }
                return self.recode_and_append(&a.positive_inserts, &a.negative_inserts, t, &h);
            }
            self.append_raw(t, &h)?;
            return Ok(AppendOutcome::Appended);
        }
        let g = self.appendable_gauge(h);
        if !g.ok {
            if append_only {
                return Err(not_appendable("float gauge histogram schema change"));
            }
            let mut c = FloatHistogramChunk::new();
            c.set_counter_reset_header(H::Gauge);
            c.append_raw(t, h)?;
            return Ok(AppendOutcome::NewChunk(c));
        }
        let mut h = Cow::Borrowed(h);
        if !g.backward_positive_inserts.is_empty() || !g.backward_negative_inserts.is_empty() {
            if append_only {
                return Err(not_appendable(format!(
                    "float gauge histogram layout change with {} positive and {} negative backwards inserts",
                    g.backward_positive_inserts.len(),
                    g.backward_negative_inserts.len()
                )));
            }
            let hm = h.to_mut();
            hm.positive_spans = g.positive_spans;
            hm.negative_spans = g.negative_spans;
            Self::recode_histogram(
                hm,
                &g.backward_positive_inserts,
                &g.backward_negative_inserts,
            )?;
        }
        if !g.positive_inserts.is_empty() || !g.negative_inserts.is_empty() {
            if append_only {
                return Err(not_appendable(format!(
                    "float gauge histogram layout change with {} positive and {} negative forwards inserts",
                    g.positive_inserts.len(),
                    g.negative_inserts.len()
                )));
            }
            return self.recode_and_append(&g.positive_inserts, &g.negative_inserts, t, &h);
        }
        self.append_raw(t, &h)?;
        Ok(AppendOutcome::Appended)
    }

    fn recode_and_append(
        &mut self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        t: i64,
        h: &FloatHistogram,
    ) -> Result<AppendOutcome<FloatHistogramChunk>, CodecError> {
        let mut c = self.recode(
            positive_inserts,
            negative_inserts,
            &h.positive_spans,
            &h.negative_spans,
        )?;
        c.append_raw(t, h)?;
        *self = c;
        Ok(AppendOutcome::Recoded)
    }
}

/// Errors unless `h` has as many buckets as its spans describe.
fn check_spans_and_buckets(h: &FloatHistogram) -> Result<(), CodecError> {
    check_bucket_count(
        "positive buckets for the spans",
        count_spans(&h.positive_spans),
        h.positive_buckets.len(),
    )?;
    check_bucket_count(
        "negative buckets for the spans",
        count_spans(&h.negative_spans),
        h.negative_buckets.len(),
    )
}

/// Iterates borrowed float-histogram chunk data.
pub fn float_histogram_iter(data: &[u8]) -> FloatHistogramIterator<'_> {
    let (total, header, body, err) = match data {
        [a, b, f, rest @ ..] => (
            u16::from_be_bytes([*a, *b]),
            CounterResetHeader::from_flags(*f),
            rest,
            None,
        ),
        _ => (
            0,
            CounterResetHeader::Unknown,
            &[][..],
            Some(header_eof(data)),
        ),
    };
    FloatHistogramIterator {
        r: BitReader::new(body),
        total,
        read: 0,
        header,
        st: State::default(),
        err,
    }
}

/// Cursor over the samples of a float-histogram chunk, with Prometheus's
/// `floatHistogramIterator` semantics (see [`crate::HistogramIterator`]).
#[derive(Debug, Clone)]
pub struct FloatHistogramIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    header: CounterResetHeader,
    st: State,
    err: Option<CodecError>,
}

impl FloatHistogramIterator<'_> {
    /// Advances to the next sample; false at the end or on error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> bool {
        if self.err.is_some() || self.read == self.total {
            return false;
        }
        match self.step() {
            Ok(()) => {
                self.read += 1;
                true
            }
            Err(e) => {
                self.err = Some(e.offset_by(HISTOGRAM_HEADER_LEN));
                false
            }
        }
    }

    /// Advances to the first sample with timestamp `>= t`, staying put if
    /// the current one already qualifies (Prometheus's `Seek`); never moves
    /// backwards. False if there is none or on error.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.err.is_some() {
            return false;
        }
        while self.read == 0 || self.st.t < t {
            if !self.next() {
                return false;
            }
        }
        true
    }

    /// The current sample's timestamp.
    pub fn at_t(&self) -> i64 {
        self.st.t
    }

    /// The current sample, as Prometheus's `AtFloatHistogram` gives it: a
    /// stale marker carries only its `sum`.
    pub fn at(&self) -> (i64, FloatHistogram) {
        let st = &self.st;
        let sum = st.sum.value();
        if is_stale(sum) {
            return (
                st.t,
                FloatHistogram {
                    sum,
                    ..Default::default()
                },
            );
        }
        let h = FloatHistogram {
            counter_reset_hint: counter_reset_hint(self.header, self.read),
            schema: st.layout.schema,
            zero_threshold: st.layout.zero_threshold,
            zero_count: st.zcnt.value(),
            count: st.cnt.value(),
            sum,
            positive_spans: st.layout.positive_spans.clone(),
            positive_buckets: values(&st.pos),
            negative_spans: st.layout.negative_spans.clone(),
            negative_buckets: values(&st.neg),
            custom_values: st.layout.custom_values.clone(),
        };
        (st.t, h)
    }

    /// The error that stopped iteration, if any.
    pub fn err(&self) -> Option<&CodecError> {
        self.err.as_ref()
    }

    /// The number of samples the header announces.
    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    /// The header's counter-reset bits.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        self.header
    }

    fn step(&mut self) -> Result<(), CodecError> {
        let (r, st) = (&mut self.r, &mut self.st);
        if self.read == 0 {
            let layout = read_layout(r)?;
            if !is_known_schema(layout.schema) {
                return Err(unknown_schema(layout.schema));
            }
            let (np, nn) = layout.bucket_counts();
            // t takes a bit, count, zero count and sum 64 each, a bucket 64.
            check_bucket_room(np.saturating_add(nn), 64, 193, r.remaining_bits())?;
            st.t = read_varbit_int(r)?;
            let mut raw = |what: &'static str| {
                r.read_bits(64)
                    .map(XorValue::new)
                    .map_err(|_| CodecError::UnexpectedEof {
                        what,
                        bit_offset: r.position_bits(),
                    })
            };
            st.cnt = raw("float histogram count")?;
            st.zcnt = raw("float histogram zero count")?;
            st.sum = raw("float histogram sum")?;
            st.pos = (0..np)
                .map(|_| raw("float histogram bucket"))
                .collect::<Result<_, _>>()?;
            st.neg = (0..nn)
                .map(|_| raw("float histogram bucket"))
                .collect::<Result<_, _>>()?;
            st.layout = layout;
            return Ok(());
        }
        let t_dod = read_varbit_int(r)?;
        st.t_delta = st.t_delta.wrapping_add(t_dod);
        st.t = st.t.wrapping_add(st.t_delta);
        st.cnt.read(r)?;
        st.zcnt.read(r)?;
        st.sum.read(r)?;
        if is_stale(st.sum.value()) {
            return Ok(());
        }
        for x in st.pos.iter_mut().chain(st.neg.iter_mut()) {
            x.read(r)?;
        }
        Ok(())
    }
}

/// Decodes every sample of float-histogram chunk data (as
/// [`FloatHistogramIterator::at`] gives them), or the first error.
pub fn float_histogram_decode(data: &[u8]) -> Result<Vec<(i64, FloatHistogram)>, CodecError> {
    let mut it = float_histogram_iter(data);
    let mut out = Vec::with_capacity(it.num_samples().min(256));
    while it.next() {
        out.push(it.at());
    }
    match it.err() {
        Some(e) => Err(e.clone()),
        None => Ok(out),
    }
}
