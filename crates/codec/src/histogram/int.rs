//! Encoding 2, integer histograms (Prometheus's `HistogramChunk`,
//! `HistogramAppender` and `histogramIterator`).
//!
//! Per sample, after the layout of the first one:
//!
//! | field      | sample 0        | sample 1..        |
//! |------------|-----------------|-------------------|
//! | timestamp  | varbit int      | varbit int dod    |
//! | count      | varbit uint     | varbit int dod    |
//! | zero count | varbit uint     | varbit int dod    |
//! | sum        | 64 bits         | XOR               |
//! | buckets    | varbit int each | varbit int dod each |
//!
//! "dod" is the delta of deltas; the second sample's previous delta is 0,
//! so its dod is its delta. Buckets are the histogram's delta-encoded
//! counts, so a bucket's dod is taken of those. A stale marker writes
//! zero count dods and no buckets.

use super::layout::{count_spans, is_known_schema, read_layout, write_layout, Layout};
use super::spans::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert_deltas,
    running_sums, Insert,
};
use super::varbit::{put_varbit_int, put_varbit_uint, read_varbit_int, read_varbit_uint};
use super::xor_value::XorValue;
use super::{
    check_bucket_count, check_bucket_room, check_tail, counter_reset_hint, header_eof, is_stale,
    unknown_schema, AppendOutcome, Appendable, CounterResetHeader, GaugeAppendable,
    COUNTER_RESET_MASK, FLAGS_POS, HISTOGRAM_HEADER_LEN,
};
use crate::{BitReader, BitWriter, CodecError, MAX_SAMPLES_PER_CHUNK};
use cairn_model::{custom_bounds_match, CounterResetHint, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};
use std::borrow::Cow;

/// Bytes a new chunk's buffer starts with (Prometheus's
/// `chunkAllocationSize`).
const INITIAL_CAPACITY: usize = 128;

/// What appending (or reading) the samples so far leaves behind: the layout
/// and each field's last value and last delta.
#[derive(Debug, Clone, PartialEq)]
struct State {
    layout: Layout,
    t: i64,
    cnt: u64,
    zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    /// The last sample's delta-encoded bucket counts.
    pos: Vec<i64>,
    neg: Vec<i64>,
    /// How each of those changed from the sample before.
    pos_delta: Vec<i64>,
    neg_delta: Vec<i64>,
    sum: XorValue,
}

impl Default for State {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            t: i64::MIN,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            pos: Vec::new(),
            neg: Vec::new(),
            pos_delta: Vec::new(),
            neg_delta: Vec::new(),
            sum: XorValue::new(0),
        }
    }
}

/// An integer-histogram chunk (encoding 2) that owns its bytes and can be
/// appended to.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramChunk {
    w: BitWriter,
    num: u16,
    st: State,
}

impl Default for HistogramChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl HistogramChunk {
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

    /// Takes chunk data written by Prometheus or by [`HistogramChunk::bytes`],
    /// decodes it and restores the append state (see the module docs of
    /// [`crate::histogram`]). Errors if a sample does not decode, if more
    /// than one byte follows the last sample, or if padding bits are set.
    pub fn from_bytes(b: Vec<u8>) -> Result<Self, CodecError> {
        let mut it = histogram_iter(&b);
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

    /// The chunk data, exactly as Prometheus stores it (without the
    /// encoding byte).
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
    pub fn iter(&self) -> HistogramIterator<'_> {
        histogram_iter(self.bytes())
    }

    /// Prometheus's `appendable`: whether `h` (not a gauge) can follow the
    /// chunk's last sample, with the inserts that would make their bucket
    /// layouts agree. Not appendable when the chunk is a gauge chunk, `h`
    /// says "counter reset", the chunk ends with a stale marker (unless `h`
    /// is one, which is always appendable), the count, zero count or a
    /// bucket went down, the schema, zero threshold or custom bounds
    /// changed, or a populated bucket disappeared.
    pub fn appendable(&self, h: &Histogram) -> Appendable<CounterResetHeader> {
        use CounterResetHeader as H;
        let mut out = Appendable {
            counter_reset: H::NotCounterReset,
            ..Default::default()
        };
        let st = &self.st;
        if self.num > 0 && self.counter_reset_header() == H::Gauge {
            return out;
        }
        if h.counter_reset_hint == CounterResetHint::CounterReset {
            out.counter_reset = H::CounterReset;
            return out;
        }
        if is_stale(h.sum) {
            out.ok = true;
            return out;
        }
        if is_stale(st.sum.value()) {
            out.counter_reset = H::Unknown;
            return out;
        }
        if h.count < st.cnt {
            out.counter_reset = H::CounterReset;
            return out;
        }
        if h.schema != st.layout.schema || h.zero_threshold != st.layout.zero_threshold {
            // Prometheus does not look further (prometheus#15346).
            out.counter_reset = H::Unknown;
            return out;
        }
        if h.schema == CUSTOM_BUCKETS_SCHEMA
            && !custom_bounds_match(&h.custom_values, &st.layout.custom_values)
        {
            out.counter_reset = H::CounterReset;
            return out;
        }
        if h.zero_count < st.zcnt {
            out.counter_reset = H::CounterReset;
            return out;
        }
        let Some((f, b)) = expand_spans_and_buckets(
            &st.layout.positive_spans,
            &h.positive_spans,
            &running_sums(&st.pos),
            &running_sums(&h.positive_buckets),
        ) else {
            out.counter_reset = H::CounterReset;
            return out;
        };
        out.positive_inserts = f;
        out.backward_positive_inserts = b;
        let Some((f, b)) = expand_spans_and_buckets(
            &st.layout.negative_spans,
            &h.negative_spans,
            &running_sums(&st.neg),
            &running_sums(&h.negative_buckets),
        ) else {
            out.counter_reset = H::CounterReset;
            return out;
        };
        out.negative_inserts = f;
        out.backward_negative_inserts = b;
        out.ok = true;
        out
    }

    /// Prometheus's `appendableGauge`: whether gauge histogram `h` can
    /// follow the chunk's last sample. Buckets may appear and disappear
    /// (both ways of inserts, and the merged spans); not appendable when
    /// the chunk is not a gauge chunk, it ends with a stale marker (unless
    /// `h` is one), or the schema, zero threshold or custom bounds changed.
    pub fn appendable_gauge(&self, h: &Histogram) -> GaugeAppendable {
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

    /// Prometheus's `appendHistogram`: writes `h` at `t` with no
    /// appendability checks. The first sample sets the layout; a later one
    /// must have as many buckets as the layout (which `appendable` and
    /// recoding arrange). A stale marker (`sum` with the stale bits) is
    /// written without buckets; after one, only stale markers may follow.
    /// On error nothing is written.
    pub fn append_raw(&mut self, t: i64, h: &Histogram) -> Result<(), CodecError> {
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
                    &Histogram {
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

    fn write_first(&mut self, t: i64, h: &Histogram) {
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
        put_varbit_uint(w, h.count);
        put_varbit_uint(w, h.zero_count);
        w.write_bits(h.sum.to_bits(), 64);
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            put_varbit_int(w, b);
        }
        self.st = State {
            layout: Layout {
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                positive_spans: h.positive_spans.clone(),
                negative_spans: h.negative_spans.clone(),
                custom_values: h.custom_values.clone(),
            },
            t,
            cnt: h.count,
            zcnt: h.zero_count,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            pos: h.positive_buckets.clone(),
            neg: h.negative_buckets.clone(),
            pos_delta: vec![0; h.positive_buckets.len()],
            neg_delta: vec![0; h.negative_buckets.len()],
            sum: XorValue::new(h.sum.to_bits()),
        };
    }

    fn write_next(&mut self, t: i64, h: &Histogram, stale: bool) {
        let (w, st) = (&mut self.w, &mut self.st);
        // A stale marker is written as Prometheus writes `{Sum: stale}`.
        let (count, zcount) = if stale {
            (0, 0)
        } else {
            (h.count, h.zero_count)
        };
        let t_delta = t.wrapping_sub(st.t);
        let cnt_delta = (count as i64).wrapping_sub(st.cnt as i64);
        let zcnt_delta = (zcount as i64).wrapping_sub(st.zcnt as i64);
        put_varbit_int(w, t_delta.wrapping_sub(st.t_delta));
        if stale {
            put_varbit_int(w, 0);
            put_varbit_int(w, 0);
        } else {
            put_varbit_int(w, cnt_delta.wrapping_sub(st.cnt_delta));
            put_varbit_int(w, zcnt_delta.wrapping_sub(st.zcnt_delta));
        }
        st.sum.write(w, h.sum);
        if !stale {
            for (src, (last, last_delta)) in [
                (&h.positive_buckets, (&mut st.pos, &mut st.pos_delta)),
                (&h.negative_buckets, (&mut st.neg, &mut st.neg_delta)),
            ] {
                for ((&b, l), d) in src.iter().zip(last.iter_mut()).zip(last_delta.iter_mut()) {
                    let delta = b.wrapping_sub(*l);
                    put_varbit_int(w, delta.wrapping_sub(*d));
                    *d = delta;
                    *l = b;
                }
            }
        }
        st.t = t;
        st.cnt = count;
        st.zcnt = zcount;
        st.t_delta = t_delta;
        st.cnt_delta = cnt_delta;
        st.zcnt_delta = zcnt_delta;
    }

    /// Prometheus's `recode`: this chunk's samples re-encoded into a new
    /// chunk whose layout has the given spans, each sample's buckets widened
    /// by the (forward) inserts. The header is kept.
    pub fn recode(
        &self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        positive_spans: &[Span],
        negative_spans: &[Span],
    ) -> Result<HistogramChunk, CodecError> {
        let np = count_spans(positive_spans);
        let nn = count_spans(negative_spans);
        check_recode_count("positive", np, self.st.pos.len(), positive_inserts)?;
        check_recode_count("negative", nn, self.st.neg.len(), negative_inserts)?;
        let mut out = HistogramChunk::new();
        let mut it = self.iter();
        while it.next() {
            let (t, mut h) = it.at();
            h.positive_spans = positive_spans.to_vec();
            h.negative_spans = negative_spans.to_vec();
            if !positive_inserts.is_empty() {
                h.positive_buckets =
                    insert_deltas(&h.positive_buckets, np as usize, positive_inserts)?;
            }
            if !negative_inserts.is_empty() {
                h.negative_buckets =
                    insert_deltas(&h.negative_buckets, nn as usize, negative_inserts)?;
            }
            out.append_raw(t, &h)?;
        }
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        out.set_counter_reset_header(self.counter_reset_header());
        Ok(out)
    }

    /// Prometheus's `recodeHistogram`: widens `h`'s buckets by the backward
    /// inserts (its spans must already be the widened ones).
    pub fn recode_histogram(
        h: &mut Histogram,
        backward_positive: &[Insert],
        backward_negative: &[Insert],
    ) -> Result<(), CodecError> {
        if !backward_positive.is_empty() {
            let n = count_spans(&h.positive_spans);
            check_recode_count("positive", n, h.positive_buckets.len(), backward_positive)?;
            h.positive_buckets = insert_deltas(&h.positive_buckets, n as usize, backward_positive)?;
        }
        if !backward_negative.is_empty() {
            let n = count_spans(&h.negative_spans);
            check_recode_count("negative", n, h.negative_buckets.len(), backward_negative)?;
            h.negative_buckets = insert_deltas(&h.negative_buckets, n as usize, backward_negative)?;
        }
        Ok(())
    }

    /// Prometheus's `AppendHistogram(prev, t, h, appendOnly)`: appends `h`
    /// at `t`, recoding this chunk when `h` brings new buckets, or starts a
    /// new chunk when `h` cannot follow (see [`AppendOutcome`]).
    ///
    /// For the first sample of an empty chunk the counter-reset header is
    /// set from `h`'s hint (gauge, counter reset) or, when `prev` (the chunk
    /// this one continues) is given, from `prev.appendable(h)`. With
    /// `append_only`, a sample that needs a new chunk or a recoding is an
    /// error ([`CodecError::NotAppendable`]) instead. `h` must be valid
    /// (as many buckets as its spans describe; not checked for stale
    /// markers).
    pub fn append(
        &mut self,
        prev: Option<&HistogramChunk>,
        t: i64,
        h: &Histogram,
        append_only: bool,
    ) -> Result<AppendOutcome<HistogramChunk>, CodecError> {
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
                let verdict = p.appendable(h).counter_reset;
                self.set_counter_reset_header(verdict);
            }
            return Ok(AppendOutcome::Appended);
        }
        if h.counter_reset_hint != CounterResetHint::Gauge {
            let a = self.appendable(h);
            if !a.ok || a.counter_reset != H::NotCounterReset {
                if append_only {
                    return Err(not_appendable(if a.counter_reset == H::CounterReset {
                        "histogram counter reset"
                    } else {
                        "histogram schema change"
                    }));
                }
                let mut c = HistogramChunk::new();
                c.set_counter_reset_header(a.counter_reset);
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
                        "histogram layout change with {} positive and {} negative forwards inserts",
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
                return Err(not_appendable("gauge histogram schema change"));
            }
            let mut c = HistogramChunk::new();
            c.set_counter_reset_header(H::Gauge);
            c.append_raw(t, h)?;
            return Ok(AppendOutcome::NewChunk(c));
        }
        let mut h = Cow::Borrowed(h);
        if !g.backward_positive_inserts.is_empty() || !g.backward_negative_inserts.is_empty() {
            if append_only {
                return Err(not_appendable(format!(
                    "gauge histogram layout change with {} positive and {} negative backwards inserts",
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
                    "gauge histogram layout change with {} positive and {} negative forwards inserts",
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
        h: &Histogram,
    ) -> Result<AppendOutcome<HistogramChunk>, CodecError> {
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
fn check_spans_and_buckets(h: &Histogram) -> Result<(), CodecError> {
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

/// Errors unless widening `have` buckets by `inserts` gives `want`.
pub(super) fn check_recode_count(
    side: &'static str,
    want: u64,
    have: usize,
    inserts: &[Insert],
) -> Result<(), CodecError> {
    let added: u64 = inserts.iter().map(|i| i.num as u64).sum();
    if want == have as u64 + added {
        return Ok(());
    }
    Err(CodecError::InvalidHistogram {
        what: if side == "positive" {
            "positive spans for the recoding"
        } else {
            "negative spans for the recoding"
        },
        expected: format!("{have} + {added} buckets"),
        found: format!("{want} buckets"),
    })
}

pub(super) fn after_stale() -> CodecError {
    CodecError::InvalidHistogram {
        what: "sample after a stale marker",
        expected: "another stale marker (a new chunk must follow a stale marker)".to_string(),
        found: "a histogram".to_string(),
    }
}

pub(super) fn not_appendable(reason: impl Into<String>) -> CodecError {
    CodecError::NotAppendable {
        reason: reason.into(),
    }
}

/// Iterates borrowed integer-histogram chunk data.
pub fn histogram_iter(data: &[u8]) -> HistogramIterator<'_> {
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
    HistogramIterator {
        r: BitReader::new(body),
        total,
        read: 0,
        header,
        st: State::default(),
        err,
    }
}

/// Cursor over the samples of an integer-histogram chunk, with
/// Prometheus's `histogramIterator` semantics.
///
/// Call [`HistogramIterator::next`] before the first
/// [`HistogramIterator::at`]. After `next` returns false,
/// [`HistogramIterator::err`] tells a clean end from corrupt data.
#[derive(Debug, Clone)]
pub struct HistogramIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    header: CounterResetHeader,
    st: State,
    err: Option<CodecError>,
}

impl HistogramIterator<'_> {
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

    /// The current sample, as Prometheus's `AtHistogram` gives it: a stale
    /// marker carries only its `sum`.
    pub fn at(&self) -> (i64, Histogram) {
        let st = &self.st;
        let sum = st.sum.value();
        if is_stale(sum) {
            return (
                st.t,
                Histogram {
                    sum,
                    ..Default::default()
                },
            );
        }
        let h = Histogram {
            counter_reset_hint: counter_reset_hint(self.header, self.read),
            schema: st.layout.schema,
            zero_threshold: st.layout.zero_threshold,
            zero_count: st.zcnt,
            count: st.cnt,
            sum,
            positive_spans: st.layout.positive_spans.clone(),
            negative_spans: st.layout.negative_spans.clone(),
            positive_buckets: st.pos.clone(),
            negative_buckets: st.neg.clone(),
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
            // t, count and zero count take a bit each, the sum 64, a bucket 1.
            check_bucket_room(np.saturating_add(nn), 1, 67, r.remaining_bits())?;
            st.t = read_varbit_int(r)?;
            st.cnt = read_varbit_uint(r)?;
            st.zcnt = read_varbit_uint(r)?;
            let sum = r.read_bits(64).map_err(|_| CodecError::UnexpectedEof {
                what: "histogram sum",
                bit_offset: r.position_bits(),
            })?;
            st.sum = XorValue::new(sum);
            st.pos = read_ints(r, np)?;
            st.neg = read_ints(r, nn)?;
            st.pos_delta = vec![0; st.pos.len()];
            st.neg_delta = vec![0; st.neg.len()];
            st.layout = layout;
            return Ok(());
        }
        let t_dod = read_varbit_int(r)?;
        st.t_delta = st.t_delta.wrapping_add(t_dod);
        st.t = st.t.wrapping_add(st.t_delta);
        let cnt_dod = read_varbit_int(r)?;
        st.cnt_delta = st.cnt_delta.wrapping_add(cnt_dod);
        st.cnt = (st.cnt as i64).wrapping_add(st.cnt_delta) as u64;
        let zcnt_dod = read_varbit_int(r)?;
        st.zcnt_delta = st.zcnt_delta.wrapping_add(zcnt_dod);
        st.zcnt = (st.zcnt as i64).wrapping_add(st.zcnt_delta) as u64;
        st.sum.read(r)?;
        if is_stale(st.sum.value()) {
            return Ok(());
        }
        for (vals, deltas) in [
            (&mut st.pos, &mut st.pos_delta),
            (&mut st.neg, &mut st.neg_delta),
        ] {
            for (v, d) in vals.iter_mut().zip(deltas.iter_mut()) {
                let dod = read_varbit_int(r)?;
                *d = d.wrapping_add(dod);
                *v = v.wrapping_add(*d);
            }
        }
        Ok(())
    }
}

fn read_ints(r: &mut BitReader<'_>, n: u64) -> Result<Vec<i64>, CodecError> {
    (0..n).map(|_| read_varbit_int(r)).collect()
}

/// Decodes every sample of integer-histogram chunk data (as
/// [`HistogramIterator::at`] gives them), or the first error.
pub fn histogram_decode(data: &[u8]) -> Result<Vec<(i64, Histogram)>, CodecError> {
    let mut it = histogram_iter(data);
    let mut out = Vec::with_capacity(it.num_samples().min(256));
    while it.next() {
        out.push(it.at());
    }
    match it.err() {
        Some(e) => Err(e.clone()),
        None => Ok(out),
    }
}
