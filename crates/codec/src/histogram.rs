//! Prometheus's native-histogram chunk encodings, byte for byte as
//! Prometheus 3.8 writes them (`tsdb/chunkenc/histogram.go`,
//! `float_histogram.go`, `histogram_meta.go`, `varbit.go`):
//!
//! * encoding 2, [`HistogramChunk`]: integer histograms
//!   ([`cairn_model::Histogram`]: `u64` counts, delta-encoded buckets), every
//!   count a varbit delta of delta;
//! * encoding 3, [`FloatHistogramChunk`]: float histograms
//!   ([`cairn_model::FloatHistogram`]), every count Gorilla XOR-encoded.
//!
//! Both start with a 3-byte header: the big-endian sample count and a byte
//! whose top two bits are the chunk's [`CounterResetHeader`]. The first
//! sample writes the chunk's layout (zero threshold, schema, spans, custom
//! bounds; see [`layout`]) and raw values; later samples write only values
//! and must fit that layout. `docs/format/histogram-chunk.md` is the byte
//! layout, field by field.
//!
//! Contracts:
//!
//! * Decoding ([`histogram_decode`], [`float_histogram_decode`], the
//!   iterators) never panics: malformed input is a [`CodecError`], with
//!   offsets counted from the chunk's first byte. It yields what
//!   Prometheus's iterator yields (`AtHistogram`/`AtFloatHistogram`): a
//!   stale marker as a histogram with only the stale `sum`, the counter
//!   reset hint from the header (gauge, otherwise unknown for the first
//!   sample and "not a reset" after it). Two differences, both only for
//!   data no Prometheus writer produces or for newer writers: schemas 9..=52
//!   come back as stored (Prometheus reduces them to 8 on reading), and
//!   values Prometheus would truncate or misread (a span length beyond
//!   32 bits, an impossible XOR window, a read past the end) are errors.
//! * Appending mirrors Prometheus's appenders: [`HistogramChunk::append`]
//!   is `AppendHistogram(prev, t, h, appendOnly)` (appendability, recoding
//!   for new buckets, cutting a new chunk with the right counter-reset
//!   header, gauges), built from the same pieces Prometheus has
//!   (`appendable`, `appendable_gauge`, `recode`, `recode_histogram`, and
//!   `append_raw` for `appendHistogram`). For the same inputs the chunks
//!   are byte-identical to Prometheus's. Where Prometheus would panic or
//!   write a chunk it cannot read back (bucket counts that do not match the
//!   spans or the layout, a sample after a stale marker, a 65,536th sample),
//!   the appenders return an error and leave the chunk unchanged.
//! * [`HistogramChunk::from_bytes`] (and the float one) reopen a chunk for
//!   appending with the state that uninterrupted appending would have had,
//!   so appending to a reopened chunk gives the same bytes as never closing
//!   it. (Prometheus's own `Appender()` on a non-empty chunk does not quite:
//!   a value field that never opened an XOR window resumes with window
//!   `0/0` there.)

pub mod layout;
pub mod spans;
pub mod varbit;
mod xor_value;

mod encode;
mod float;
mod int;

pub use encode::{
    decode_histogram_samples, encode_float_histograms, encode_histogram_runs, encode_histograms,
    HistChunkBytes, HistSample, MIN_SAMPLES as HISTOGRAM_CHUNK_MIN_SAMPLES,
    TARGET_BYTES as HISTOGRAM_CHUNK_TARGET_BYTES,
};

pub use float::{
    float_histogram_decode, float_histogram_iter, FloatHistogramChunk, FloatHistogramIterator,
};
pub use int::{histogram_decode, histogram_iter, HistogramChunk, HistogramIterator};
pub use spans::Insert;

use crate::CodecError;
use cairn_model::{CounterResetHint, Span, STALE_NAN_BITS};

/// Bytes before the bit stream: 2 for the sample count, 1 for the header
/// flags.
pub const HISTOGRAM_HEADER_LEN: usize = 3;

/// Position of the flags byte in the header.
const FLAGS_POS: usize = 2;
/// The counter-reset bits of the flags byte.
const COUNTER_RESET_MASK: u8 = 0b1100_0000;

/// What a chunk's header says about how it began (Prometheus's
/// `CounterResetHeader`): the top two bits of byte 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CounterResetHeader {
    /// `0b00`: unknown; a reset must be detected at query time.
    #[default]
    Unknown,
    /// `0b10`: the chunk was cut because of a counter reset.
    CounterReset,
    /// `0b01`: definitely no counter reset when the chunk was cut.
    NotCounterReset,
    /// `0b11`: a gauge histogram chunk.
    Gauge,
}

impl CounterResetHeader {
    /// The header in the flags byte's top two bits (others zero).
    pub fn bits(self) -> u8 {
        match self {
            CounterResetHeader::Unknown => 0b0000_0000,
            CounterResetHeader::CounterReset => 0b1000_0000,
            CounterResetHeader::NotCounterReset => 0b0100_0000,
            CounterResetHeader::Gauge => 0b1100_0000,
        }
    }

    /// The header a flags byte carries (its low six bits are ignored).
    pub fn from_flags(flags: u8) -> Self {
        match flags & COUNTER_RESET_MASK {
            0b1000_0000 => CounterResetHeader::CounterReset,
            0b0100_0000 => CounterResetHeader::NotCounterReset,
            0b1100_0000 => CounterResetHeader::Gauge,
            _ => CounterResetHeader::Unknown,
        }
    }

    /// Prometheus's `CounterResetHintToHeader`.
    pub fn from_hint(hint: CounterResetHint) -> Self {
        match hint {
            CounterResetHint::Unknown => CounterResetHeader::Unknown,
            CounterResetHint::CounterReset => CounterResetHeader::CounterReset,
            CounterResetHint::NotCounterReset => CounterResetHeader::NotCounterReset,
            CounterResetHint::Gauge => CounterResetHeader::Gauge,
        }
    }
}

/// The counter-reset header of histogram chunk data (either encoding).
pub fn histogram_chunk_header(data: &[u8]) -> Result<CounterResetHeader, CodecError> {
    match data.get(FLAGS_POS) {
        Some(&b) => Ok(CounterResetHeader::from_flags(b)),
        None => Err(header_eof(data)),
    }
}

fn header_eof(data: &[u8]) -> CodecError {
    CodecError::UnexpectedEof {
        what: "histogram chunk header",
        bit_offset: data.len() * 8,
    }
}

/// The hint Prometheus's iterators give the `num_read`th sample (1-based)
/// of a chunk with header `h` (`counterResetHint` in histogram_meta.go):
/// gauge in a gauge chunk; otherwise unknown for the first sample (the
/// previous chunk may be gone or out of order) and "not a reset" after it.
pub fn counter_reset_hint(h: CounterResetHeader, num_read: u16) -> CounterResetHint {
    match h {
        CounterResetHeader::Gauge => CounterResetHint::Gauge,
        _ if num_read > 1 => CounterResetHint::NotCounterReset,
        _ => CounterResetHint::Unknown,
    }
}

/// What [`HistogramChunk::append`] / [`FloatHistogramChunk::append`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome<C> {
    /// The sample went into this chunk.
    Appended,
    /// New buckets appeared: this chunk was recoded with the wider layout
    /// (replaced in place; its earlier samples gained empty buckets) and
    /// the sample appended. The chunk's counter-reset header is kept.
    Recoded,
    /// The sample cannot go into this chunk (a counter reset, a schema,
    /// zero-threshold or custom-bounds change, a gauge/counter switch, the
    /// first sample after a stale marker): it starts the returned chunk,
    /// whose header is already set. This chunk is unchanged.
    NewChunk(C),
}

/// The result of `appendable` (Prometheus's `appendable` return values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Appendable<R> {
    /// Empty buckets to insert into the chunk's positive buckets
    /// (forward inserts: the new sample has buckets the chunk lacks).
    pub positive_inserts: Vec<Insert>,
    /// The same for the negative buckets.
    pub negative_inserts: Vec<Insert>,
    /// Empty buckets to insert into the sample's positive buckets (the
    /// chunk has empty buckets the sample lacks).
    pub backward_positive_inserts: Vec<Insert>,
    /// The same for the negative buckets.
    pub backward_negative_inserts: Vec<Insert>,
    /// Whether the sample may go into this chunk (after recoding).
    pub ok: bool,
    /// The counter-reset verdict: a [`CounterResetHeader`] for integer
    /// histograms (`NotCounterReset` when appendable, `CounterReset`,
    /// or `Unknown` for a schema or zero-threshold change or a sample
    /// after a stale marker), a plain "was it a reset" for float ones.
    pub counter_reset: R,
}

/// The result of `appendable_gauge` (Prometheus's `appendableGauge`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GaugeAppendable {
    /// Empty buckets to insert into the chunk's positive buckets.
    pub positive_inserts: Vec<Insert>,
    /// Empty buckets to insert into the chunk's negative buckets.
    pub negative_inserts: Vec<Insert>,
    /// Empty buckets to insert into the sample's positive buckets.
    pub backward_positive_inserts: Vec<Insert>,
    /// Empty buckets to insert into the sample's negative buckets.
    pub backward_negative_inserts: Vec<Insert>,
    /// The union of the chunk's and the sample's positive spans.
    pub positive_spans: Vec<Span>,
    /// The union of the chunk's and the sample's negative spans.
    pub negative_spans: Vec<Span>,
    /// Whether the sample may go into this chunk (after recoding).
    pub ok: bool,
}

/// True when `v` carries exactly the stale-marker bits.
#[inline]
fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Errors unless `n` buckets are given where the spans describe `want`.
fn check_bucket_count(what: &'static str, want: u64, n: usize) -> Result<(), CodecError> {
    if want == n as u64 {
        return Ok(());
    }
    Err(CodecError::InvalidHistogram {
        what,
        expected: format!("{want} buckets"),
        found: format!("{n} buckets"),
    })
}

/// Errors unless the data left can hold `buckets` values of at least
/// `bits_each` bits after `fixed` more bits: a guard against allocating
/// for bucket counts that a corrupt layout claims.
fn check_bucket_room(
    buckets: u64,
    bits_each: u64,
    fixed: u64,
    remaining_bits: usize,
) -> Result<(), CodecError> {
    let room = (remaining_bits as u64).saturating_sub(fixed) / bits_each;
    if buckets <= room {
        return Ok(());
    }
    Err(CodecError::Corruption {
        what: "histogram chunk bucket count",
        expected: format!(
            "at most {room} buckets (what the {remaining_bits} bits after the layout can hold)"
        ),
        found: format!("{buckets} buckets"),
    })
}

/// The error for a first sample whose schema Prometheus 3.8 does not know.
fn unknown_schema(schema: i32) -> CodecError {
    CodecError::Corruption {
        what: "histogram schema",
        expected: "-53 (custom buckets) or an exponential schema in -9..=52".to_string(),
        found: schema.to_string(),
    }
}

/// Checks what [`from_bytes`](HistogramChunk::from_bytes) needs of the
/// bits after the last sample: at most one byte of zero padding (Prometheus
/// 2.x can leave one wholly unused byte). Returns the free bits of the last
/// byte.
fn check_tail(data: &[u8], used_bits: usize) -> Result<u32, CodecError> {
    let total = data.len().saturating_sub(HISTOGRAM_HEADER_LEN) * 8;
    let free = total.saturating_sub(used_bits);
    if free > 8 {
        return Err(CodecError::Corruption {
            what: "histogram chunk length",
            expected: format!(
                "at most {} bytes",
                HISTOGRAM_HEADER_LEN
                    + used_bits.div_ceil(8)
                    + usize::from(used_bits.is_multiple_of(8))
            ),
            found: format!("{} bytes", data.len()),
        });
    }
    if free > 0 {
        let last = data.last().copied().unwrap_or(0);
        let pad = u16::from(last) & ((1u16 << free) - 1);
        if pad != 0 {
            return Err(CodecError::Corruption {
                what: "histogram chunk padding bits",
                expected: "0".to_string(),
                found: format!("{pad:#b}"),
            });
        }
    }
    Ok(free as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bits_match_prometheus() {
        use CounterResetHeader::*;
        for (h, bits) in [
            (Unknown, 0x00),
            (CounterReset, 0x80),
            (NotCounterReset, 0x40),
            (Gauge, 0xc0),
        ] {
            assert_eq!(h.bits(), bits);
            assert_eq!(CounterResetHeader::from_flags(bits | 0x3f), h);
        }
        assert_eq!(histogram_chunk_header(&[0, 1, 0x80]), Ok(CounterReset));
        assert!(histogram_chunk_header(&[0, 1]).is_err());
        assert_eq!(
            CounterResetHeader::from_hint(CounterResetHint::Gauge),
            Gauge
        );
        assert_eq!(counter_reset_hint(Gauge, 1), CounterResetHint::Gauge);
        assert_eq!(
            counter_reset_hint(CounterReset, 1),
            CounterResetHint::Unknown
        );
        assert_eq!(
            counter_reset_hint(Unknown, 2),
            CounterResetHint::NotCounterReset
        );
    }
}
