//! Validation of native histograms as they arrive from outside (remote
//! write, and any appender that stores them), and lowering an integer
//! histogram's resolution.
//!
//! [`Histogram::validate`] and [`FloatHistogram::validate`] accept exactly
//! what Prometheus v3.8's `Histogram.Validate` / `FloatHistogram.Validate`
//! accept, checked in the same order so the first problem reported is the
//! one Prometheus reports:
//!
//! - the schema is exponential (`-4..=8`) or custom buckets (`-53`);
//! - custom buckets: bounds not NaN, strictly increasing, the last one not
//!   `+Inf`; span offsets not negative, spans' lengths summing to the
//!   bucket count, and covering no more buckets than the bounds define; no
//!   zero bucket (count and threshold 0) and no negative buckets;
//! - exponential: spans' lengths sum to the bucket counts (offsets after
//!   the first span not negative), no custom bounds;
//! - no bucket count (absolute, after summing the deltas of an integer
//!   histogram) below zero, nor a float histogram's count or zero count;
//! - an integer histogram's count equals the observations in its buckets
//!   plus its zero count, or is at least that when the sum is NaN (NaN
//!   observations count but fall in no bucket). Stale markers (sum is
//!   [`crate::STALE_NAN`], buckets empty) pass that way. Float histograms
//!   get no count check: rounding would make it fail spuriously.
//!
//! Schemas `9..=52` are reserved for finer exponential schemas: Prometheus's
//! remote write receiver lowers them to 8 before storing
//! ([`Histogram::reduce_resolution`], [`FloatHistogram::reduce_resolution`]);
//! validation accepts them for that reason, and storage must not see them.

use crate::histogram::{FloatHistogram, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};

/// The coarsest exponential schema.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
/// The finest exponential schema stored.
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// The finest schema reserved for exponential buckets; schemas above
/// [`EXPONENTIAL_SCHEMA_MAX`] up to this are lowered to it on ingestion.
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;

/// Which buckets a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Positive,
    Negative,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Positive => "positive side",
            Side::Negative => "negative side",
        })
    }
}

/// Why a histogram is not valid; the messages follow Prometheus's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramValidationError {
    #[error("histogram has an invalid schema, which must be between {EXPONENTIAL_SCHEMA_MIN} and {EXPONENTIAL_SCHEMA_MAX} for exponential buckets, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets, got schema {schema}")]
    InvalidSchema { schema: i32 },
    #[error("{side}: span number {span} with offset {offset}: histogram has a span whose offset is negative")]
    SpanNegativeOffset {
        side: Side,
        span: usize,
        offset: i32,
    },
    #[error("{side}: spans need {need} buckets, have {have} buckets: histogram spans specify different number of buckets than provided")]
    SpansBucketsMismatch { side: Side, need: u64, have: usize },
    #[error("{side}: bucket number {bucket} has observation count of {count}: histogram has a bucket whose observation count is negative")]
    NegativeBucketCount {
        side: Side,
        bucket: usize,
        count: String,
    },
    #[error("{side}: bucket number {bucket}: the bucket count overflows 64 bits")]
    BucketCountOverflow { side: Side, bucket: usize },
    #[error("zero bucket has observation count of {count}: histogram has a bucket whose observation count is negative")]
    NegativeZeroCount { count: f64 },
    #[error("observation count is {count}: histogram's observation count is negative")]
    NegativeCount { count: f64 },
    #[error("{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)")]
    CountMismatch { in_buckets: u128, count: u64 },
    #[error("{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should be at least the number of observations found in the buckets")]
    CountNotBigEnough { in_buckets: u128, count: u64 },
    #[error("histogram with exponential schema must not have custom bounds")]
    ExponentialWithCustomBounds,
    #[error("custom buckets: histogram custom bounds must not be NaN")]
    CustomBoundNaN,
    #[error("custom buckets: previous bound is {prev} and current is {cur}: histogram custom bounds must be in strictly increasing order")]
    CustomBoundsNotIncreasing { prev: f64, cur: f64 },
    #[error("custom buckets: last +Inf bound must not be explicitly defined: histogram custom bounds must be finite")]
    CustomBoundInfinite,
    #[error("custom buckets: only {bounds} custom bounds defined which is insufficient to cover total span length of {span_length}: histogram custom bounds are too few")]
    CustomBoundsTooFew { bounds: usize, span_length: u64 },
    #[error("custom buckets: must have zero count of 0")]
    CustomZeroCount,
    #[error("custom buckets: must have zero threshold of 0")]
    CustomZeroThreshold,
    #[error("custom buckets: must not have negative spans")]
    CustomNegativeSpans,
    #[error("custom buckets: must not have negative buckets")]
    CustomNegativeBuckets,
}

type Result<T = ()> = std::result::Result<T, HistogramValidationError>;

/// Whether `schema` is exponential, the reserved finer schemas included.
fn exponential(schema: i32) -> bool {
    (EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX_RESERVED).contains(&schema)
}

fn check_spans(side: Side, spans: &[Span], buckets: usize) -> Result {
    let mut need: u64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(HistogramValidationError::SpanNegativeOffset {
                side,
                span: n + 1,
                offset: s.offset,
            });
        }
        need += u64::from(s.length);
    }
    if need != buckets as u64 {
        return Err(HistogramValidationError::SpansBucketsMismatch {
            side,
            need,
            have: buckets,
        });
    }
    Ok(())
}

/// The custom bounds and the (positive) spans of a custom-buckets histogram.
fn check_custom(bounds: &[f64], spans: &[Span], buckets: usize) -> Result {
    let mut prev = f64::NEG_INFINITY;
    for (i, &cur) in bounds.iter().enumerate() {
        if cur.is_nan() {
            return Err(HistogramValidationError::CustomBoundNaN);
        }
        if i > 0 && cur <= prev {
            return Err(HistogramValidationError::CustomBoundsNotIncreasing { prev, cur });
        }
        prev = cur;
    }
    if prev == f64::INFINITY {
        return Err(HistogramValidationError::CustomBoundInfinite);
    }
    let (mut need, mut span_length) = (0u64, 0u64);
    for (n, s) in spans.iter().enumerate() {
        if s.offset < 0 {
            return Err(HistogramValidationError::SpanNegativeOffset {
                side: Side::Positive,
                span: n + 1,
                offset: s.offset,
            });
        }
        need += u64::from(s.length);
        span_length += u64::from(s.length) + s.offset.unsigned_abs() as u64;
    }
    if need != buckets as u64 {
        return Err(HistogramValidationError::SpansBucketsMismatch {
            side: Side::Positive,
            need,
            have: buckets,
        });
    }
    if (bounds.len() as u64) + 1 < span_length {
        return Err(HistogramValidationError::CustomBoundsTooFew {
            bounds: bounds.len(),
            span_length,
        });
    }
    Ok(())
}

/// Sums delta-encoded counts, refusing a negative absolute count.
fn sum_deltas(side: Side, deltas: &[i64]) -> Result<u128> {
    let (mut cur, mut total) = (0i64, 0u128);
    for (i, &d) in deltas.iter().enumerate() {
        cur = cur
            .checked_add(d)
            .ok_or(HistogramValidationError::BucketCountOverflow {
                side,
                bucket: i + 1,
            })?;
        if cur < 0 {
            return Err(HistogramValidationError::NegativeBucketCount {
                side,
                bucket: i + 1,
                count: cur.to_string(),
            });
        }
        total += cur.unsigned_abs() as u128;
    }
    Ok(total)
}

/// Refuses a negative absolute count (NaN passes, as in Prometheus).
fn check_counts(side: Side, counts: &[f64]) -> Result {
    for (i, &c) in counts.iter().enumerate() {
        if c < 0.0 {
            return Err(HistogramValidationError::NegativeBucketCount {
                side,
                bucket: i + 1,
                count: crate::format_go_g(c),
            });
        }
    }
    Ok(())
}

impl Histogram {
    /// Checks the histogram as Prometheus does before storing it; see the
    /// module docs.
    pub fn validate(&self) -> Result {
        let mut in_buckets = u128::from(self.zero_count);
        if self.uses_custom_buckets() {
            check_custom(
                &self.custom_values,
                &self.positive_spans,
                self.positive_buckets.len(),
            )?;
            if self.zero_count != 0 {
                return Err(HistogramValidationError::CustomZeroCount);
            }
            if self.zero_threshold != 0.0 {
                return Err(HistogramValidationError::CustomZeroThreshold);
            }
            if !self.negative_spans.is_empty() {
                return Err(HistogramValidationError::CustomNegativeSpans);
            }
            if !self.negative_buckets.is_empty() {
                return Err(HistogramValidationError::CustomNegativeBuckets);
            }
        } else if exponential(self.schema) {
            check_spans(
                Side::Positive,
                &self.positive_spans,
                self.positive_buckets.len(),
            )?;
            check_spans(
                Side::Negative,
                &self.negative_spans,
                self.negative_buckets.len(),
            )?;
            in_buckets += sum_deltas(Side::Negative, &self.negative_buckets)?;
            if !self.custom_values.is_empty() {
                return Err(HistogramValidationError::ExponentialWithCustomBounds);
            }
        } else {
            return Err(HistogramValidationError::InvalidSchema {
                schema: self.schema,
            });
        }
        in_buckets += sum_deltas(Side::Positive, &self.positive_buckets)?;
        let count = self.count;
        if self.sum.is_nan() {
            if in_buckets > u128::from(count) {
                return Err(HistogramValidationError::CountNotBigEnough { in_buckets, count });
            }
        } else if in_buckets != u128::from(count) {
            return Err(HistogramValidationError::CountMismatch { in_buckets, count });
        }
        Ok(())
    }

    /// Lowers an exponential histogram's resolution to `schema`, merging
    /// buckets (empty ones are kept); custom buckets and schemas already at
    /// or below `schema` are left alone. Counts stay exact integers.
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.uses_custom_buckets() || schema >= self.schema {
            return;
        }
        let d = (self.schema - schema).min(31);
        let (ps, pb) = reduce_deltas(&self.positive_spans, &self.positive_buckets, d);
        let (ns, nb) = reduce_deltas(&self.negative_spans, &self.negative_buckets, d);
        self.schema = schema;
        self.positive_spans = ps;
        self.positive_buckets = pb;
        self.negative_spans = ns;
        self.negative_buckets = nb;
    }
}

/// Merges delta-encoded buckets `d` schemas coarser: bucket `i` goes to
/// `((i - 1) >> d) + 1`, the coarser bucket whose upper bound is the first
/// at or above its own.
fn reduce_deltas(spans: &[Span], deltas: &[i64], d: i32) -> (Vec<Span>, Vec<i64>) {
    let mut merged: Vec<(i32, i64)> = Vec::with_capacity(deltas.len());
    let (mut idx, mut cur) = (0i32, 0i64);
    let mut it = deltas.iter();
    'spans: for (k, s) in spans.iter().enumerate() {
        idx = if k == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            let Some(&delta) = it.next() else {
                break 'spans;
            };
            cur = cur.wrapping_add(delta);
            let t = ((idx - 1) >> d) + 1;
            match merged.last_mut() {
                Some(last) if last.0 == t => last.1 = last.1.wrapping_add(cur),
                _ => merged.push((t, cur)),
            }
            idx = idx.saturating_add(1);
        }
    }
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out = Vec::with_capacity(merged.len());
    let (mut next, mut prev) = (None::<i32>, 0i64);
    for (i, c) in merged {
        match (next, out_spans.last_mut()) {
            (Some(n), Some(s)) if n == i => s.length += 1,
            (Some(n), _) => out_spans.push(Span {
                offset: i - n,
                length: 1,
            }),
            (None, _) => out_spans.push(Span {
                offset: i,
                length: 1,
            }),
        }
        out.push(c.wrapping_sub(prev));
        prev = c;
        next = Some(i + 1);
    }
    (out_spans, out)
}

impl FloatHistogram {
    /// Checks the histogram as Prometheus does before storing it; see the
    /// module docs.
    pub fn validate(&self) -> Result {
        if self.uses_custom_buckets() {
            check_custom(
                &self.custom_values,
                &self.positive_spans,
                self.positive_buckets.len(),
            )?;
            if self.zero_count != 0.0 {
                return Err(HistogramValidationError::CustomZeroCount);
            }
            if self.zero_threshold != 0.0 {
                return Err(HistogramValidationError::CustomZeroThreshold);
            }
            if !self.negative_spans.is_empty() {
                return Err(HistogramValidationError::CustomNegativeSpans);
            }
            if !self.negative_buckets.is_empty() {
                return Err(HistogramValidationError::CustomNegativeBuckets);
            }
        } else if exponential(self.schema) {
            check_spans(
                Side::Positive,
                &self.positive_spans,
                self.positive_buckets.len(),
            )?;
            check_spans(
                Side::Negative,
                &self.negative_spans,
                self.negative_buckets.len(),
            )?;
            check_counts(Side::Negative, &self.negative_buckets)?;
            if self.zero_count < 0.0 {
                return Err(HistogramValidationError::NegativeZeroCount {
                    count: self.zero_count,
                });
            }
            if !self.custom_values.is_empty() {
                return Err(HistogramValidationError::ExponentialWithCustomBounds);
            }
        } else {
            return Err(HistogramValidationError::InvalidSchema {
                schema: self.schema,
            });
        }
        if self.count < 0.0 {
            return Err(HistogramValidationError::NegativeCount { count: self.count });
        }
        check_counts(Side::Positive, &self.positive_buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::STALE_NAN;

    fn span(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }

    /// count 9: zero bucket 1, positive 2, 1 (deltas 2, -1), negative 5.
    fn good() -> Histogram {
        Histogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 1,
            count: 9,
            sum: 12.5,
            positive_spans: vec![span(0, 1), span(2, 1)],
            positive_buckets: vec![2, -1],
            negative_spans: vec![span(-1, 1)],
            negative_buckets: vec![5],
            ..Histogram::default()
        }
    }

    fn nhcb() -> Histogram {
        Histogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 5,
            sum: 3.0,
            positive_spans: vec![span(0, 2), span(1, 1)],
            positive_buckets: vec![1, 1, 0],
            custom_values: vec![0.1, 0.5, 1.0],
            ..Histogram::default()
        }
    }

    fn err(h: &Histogram) -> String {
        match h.validate() {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_histograms_pass_and_their_floats_too() {
        for h in [good(), nhcb(), Histogram::default()] {
            assert_eq!(h.validate(), Ok(()), "{h:?}");
            assert_eq!(h.to_float().validate(), Ok(()), "{h:?}");
        }
    }

    #[test]
    fn stale_markers_pass() {
        let h = Histogram {
            sum: STALE_NAN,
            ..Histogram::default()
        };
        assert_eq!(h.validate(), Ok(()));
        assert_eq!(h.to_float().validate(), Ok(()));
    }

    #[test]
    fn count_must_match_the_buckets_unless_sum_is_nan() {
        let mut h = good();
        h.count = 10;
        assert!(err(&h).starts_with("9 observations found in buckets, but the Count field is 10"));
        h.sum = f64::NAN;
        assert_eq!(h.validate(), Ok(()), "NaN observations count in no bucket");
        h.count = 8;
        assert!(err(&h).contains("should be at least"), "{}", err(&h));
    }

    #[test]
    fn spans_and_buckets_must_agree() {
        let mut h = good();
        h.positive_buckets.push(1);
        assert!(
            err(&h).starts_with("positive side: spans need 2 buckets, have 3 buckets"),
            "{}",
            err(&h)
        );
        let mut h = good();
        h.negative_spans = vec![span(0, 1), span(-2, 0)];
        assert!(
            err(&h).starts_with("negative side: span number 2 with offset -2"),
            "{}",
            err(&h)
        );
    }

    #[test]
    fn negative_bucket_counts_are_refused() {
        let mut h = good();
        h.positive_buckets = vec![2, -3];
        h.count = 7; // what the buckets would add up to
        assert!(
            err(&h).starts_with("positive side: bucket number 2 has observation count of -1"),
            "{}",
            err(&h)
        );
        let mut f = good().to_float();
        f.negative_buckets = vec![-0.5];
        assert!(f
            .validate()
            .is_err_and(|e| e.to_string().starts_with("negative side: bucket number 1")));
        let mut f = good().to_float();
        f.zero_count = -1.0;
        assert!(f.validate().is_err());
        let mut f = good().to_float();
        f.count = -1.0;
        assert!(f.validate().is_err());
    }

    #[test]
    fn schemas_outside_the_ranges_are_refused() {
        for (schema, ok) in [(-5, false), (-4, true), (8, true), (9, true), (52, true)] {
            let mut h = good();
            h.schema = schema;
            assert_eq!(h.validate().is_ok(), ok, "schema {schema}");
        }
        for schema in [53, -9, -52, -54, i32::MIN] {
            let mut h = good();
            h.schema = schema;
            assert!(
                err(&h).contains(&format!("got schema {schema}")),
                "{}",
                err(&h)
            );
        }
    }

    #[test]
    fn custom_bucket_rules() {
        let check = |f: fn(&mut Histogram), want: &str| {
            let mut h = nhcb();
            f(&mut h);
            assert!(err(&h).contains(want), "{want}: {}", err(&h));
        };
        check(
            |h| h.custom_values = vec![0.1, 0.1, 1.0],
            "strictly increasing",
        );
        check(|h| h.custom_values = vec![0.1, f64::NAN, 1.0], "NaN");
        check(
            |h| h.custom_values = vec![0.1, 0.5, f64::INFINITY],
            "finite",
        );
        check(|h| h.custom_values = vec![0.1, 0.5], "too few");
        check(
            |h| h.positive_spans = vec![span(-1, 2), span(2, 1)],
            "negative",
        );
        check(|h| h.zero_count = 1, "zero count of 0");
        check(|h| h.zero_threshold = 0.5, "zero threshold of 0");
        check(|h| h.negative_spans = vec![span(0, 0)], "negative spans");
        let mut h = nhcb();
        h.negative_buckets = vec![0];
        assert!(err(&h).contains("negative buckets"));
        // -Inf is a valid first bound.
        let mut h = nhcb();
        h.custom_values = vec![f64::NEG_INFINITY, 0.5, 1.0];
        assert_eq!(h.validate(), Ok(()));
        // Bounds without buckets to cover are fine.
        let mut h = nhcb();
        h.custom_values.push(5.0);
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn float_custom_bucket_rules() {
        let mut f = nhcb().to_float();
        f.custom_values = vec![0.5, 0.1, 1.0];
        assert!(f
            .validate()
            .is_err_and(|e| e.to_string().contains("strictly increasing")));
        let mut f = nhcb().to_float();
        f.zero_count = 0.5;
        assert_eq!(f.validate(), Err(HistogramValidationError::CustomZeroCount));
        let mut f = nhcb().to_float();
        f.negative_buckets = vec![1.0];
        assert_eq!(
            f.validate(),
            Err(HistogramValidationError::CustomNegativeBuckets)
        );
        // Float histograms get no count check.
        let mut f = nhcb().to_float();
        f.count = 1.0;
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn exponential_histograms_have_no_custom_bounds() {
        let mut h = good();
        h.custom_values = vec![1.0];
        assert!(err(&h).contains("must not have custom bounds"));
    }

    #[test]
    fn reduce_resolution_keeps_counts_exact() {
        // Schema 10 positive buckets 1..=5 (absolute 3, 1, 4, 1, 5) and a
        // huge count that floats could not hold exactly.
        let big = (1i64 << 60) + 1;
        let mut h = Histogram {
            schema: 10,
            count: 3 + 1 + 4 + 1 + 5 + big.unsigned_abs(),
            sum: 1.0,
            positive_spans: vec![span(1, 5)],
            positive_buckets: vec![3, -2, 3, -3, 4],
            negative_spans: vec![span(0, 1)],
            negative_buckets: vec![big],
            ..Histogram::default()
        };
        assert_eq!(h.validate(), Ok(()));
        let f = {
            let mut f = h.to_float();
            f.reduce_resolution(8);
            f
        };
        h.reduce_resolution(8);
        assert_eq!(h.schema, 8);
        assert_eq!(h.validate(), Ok(()));
        // Schema 10 -> 8: indexes 1..=4 go to 1, index 5 to 2, 0 stays 0.
        assert_eq!(h.positive_spans, vec![span(1, 2)]);
        assert_eq!(h.positive_buckets, vec![9, -4]);
        assert_eq!(h.negative_spans, vec![span(0, 1)]);
        assert_eq!(h.negative_buckets, vec![big]);
        let mut back = h.to_float();
        back.counter_reset_hint = f.counter_reset_hint;
        assert_eq!(back, f, "the same buckets as the float reduction");
    }
}
