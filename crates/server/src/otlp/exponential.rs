//! OTLP exponential histograms into Prometheus native histograms, as
//! Prometheus's OTLP translation makes them.
//!
//! - OTLP bucket `j` at scale `s` holds `(2^(j/2^s), 2^((j+1)/2^s)]`,
//!   Prometheus's bucket `j + 1` of schema `s`: indexes shift by one.
//! - Scales above 8 are brought down to 8 by merging neighbouring buckets
//!   (`j >> (s - 8)`); scales below -4 cannot be expressed and are refused.
//! - Counts stay integers: the result is an integer histogram with
//!   delta-encoded buckets. Gaps of up to two empty buckets stay inside a
//!   span as zeros; longer ones start a new span.
//! - The zero threshold is Prometheus's default (`1e-128`), not the
//!   point's `zero_threshold`, as Prometheus does for now; the reset hint
//!   is "unknown", which is always safe.
//! - A point flagged "no recorded value" becomes a stale marker.

use cairn_model::{Histogram, Span, STALE_NAN};
use cairn_proto::otlp::{
    ExponentialBuckets, ExponentialHistogramDataPoint, FLAG_NO_RECORDED_VALUE,
};

/// Prometheus's default zero threshold for translated histograms.
const ZERO_THRESHOLD: f64 = 1e-128;

/// The native histogram of point `p`, or why it has none.
pub(super) fn to_native(p: &ExponentialHistogramDataPoint) -> Result<Histogram, String> {
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(Histogram {
            sum: STALE_NAN,
            ..Histogram::default()
        });
    }
    if p.scale < -4 {
        return Err(format!(
            "cannot convert an exponential histogram of scale {} (below -4) to a native histogram",
            p.scale
        ));
    }
    let schema = p.scale.min(8);
    let down = (p.scale - schema) as u32;
    let (positive_spans, positive_buckets) = layout(p.positive.as_ref(), down);
    let (negative_spans, negative_buckets) = layout(p.negative.as_ref(), down);
    Ok(Histogram {
        schema,
        zero_threshold: ZERO_THRESHOLD,
        zero_count: p.zero_count,
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        ..Histogram::default()
    })
}

/// Spans and delta-encoded counts of one side, scaled down by `down`.
fn layout(b: Option<&ExponentialBuckets>, down: u32) -> (Vec<Span>, Vec<i64>) {
    let Some(b) = b else {
        return (Vec::new(), Vec::new());
    };
    // Absolute counts by Prometheus index, merged where scaling down puts
    // several OTLP buckets into one (indexes only grow along the list).
    let mut merged: Vec<(i64, u64)> = Vec::new();
    for (i, &c) in b.bucket_counts.iter().enumerate() {
        let j = i64::from(b.offset) + i as i64;
        let idx = (j >> down) + 1;
        match merged.last_mut() {
            Some(last) if last.0 == idx => last.1 = last.1.saturating_add(c),
            _ => merged.push((idx, c)),
        }
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut prev: Option<i64> = None;
    for (idx, c) in merged.into_iter().filter(|x| x.1 > 0) {
        match prev {
            None => spans.push(Span {
                offset: clamp_i32(idx),
                length: 1,
            }),
            Some(p) => {
                let gap = idx - p - 1;
                match spans.last_mut() {
                    Some(s) if gap <= 2 => {
                        counts.extend(std::iter::repeat_n(0, gap as usize));
                        s.length += gap as u32 + 1;
                    }
                    _ => spans.push(Span {
                        offset: clamp_i32(gap),
                        length: 1,
                    }),
                }
            }
        }
        counts.push(c);
        prev = Some(idx);
    }
    let mut deltas = Vec::with_capacity(counts.len());
    let mut last = 0i64;
    for c in counts {
        let c = i64::try_from(c).unwrap_or(i64::MAX);
        deltas.push(c.wrapping_sub(last));
        last = c;
    }
    (spans, deltas)
}

fn clamp_i32(x: i64) -> i32 {
    x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn point(scale: i32, offset: i32, counts: &[u64]) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            count: counts.iter().sum::<u64>() + 2,
            zero_count: 2,
            sum: Some(12.5),
            positive: Some(ExponentialBuckets {
                offset,
                bucket_counts: counts.to_vec(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn indexes_shift_by_one_and_small_gaps_stay_in_the_span() {
        // OTLP buckets 3..9 at scale 2: counts 1, 0, 2, 0, 0, 0, 5.
        let h = to_native(&point(2, 3, &[1, 0, 2, 0, 0, 0, 5])).unwrap();
        assert_eq!(h.schema, 2);
        assert_eq!(h.zero_threshold, 1e-128);
        assert_eq!((h.count, h.zero_count, h.sum), (10, 2, 12.5));
        // Prometheus indexes 4, 6 (one empty between), then 10 (three
        // empty: a new span with offset 3).
        assert_eq!(
            h.positive_spans,
            vec![
                Span {
                    offset: 4,
                    length: 3
                },
                Span {
                    offset: 3,
                    length: 1
                }
            ]
        );
        assert_eq!(h.positive_buckets, vec![1, -1, 2, 3]);
        h.validate().unwrap();
        // The bucket holding 2^(3/4)..2^(4/4) (OTLP 3 at scale 2) is
        // Prometheus's bucket 4, whose upper bound is 2^(4/4) = 2.
        let f = h.to_float();
        let first = f.positive_bucket_list()[0];
        assert_eq!(first.upper, 2.0);
    }

    #[test]
    fn scales_above_eight_merge_buckets() {
        // Scale 10 to 8: OTLP buckets -5..2 at scale 10 merge in fours.
        let h = to_native(&point(10, -5, &[1, 1, 1, 1, 1, 1, 1, 1])).unwrap();
        assert_eq!(h.schema, 8);
        // -5,-4,-3,-2,-1 >> 2 = -2,-1,-1,-1,-1; 0,1,2 >> 2 = 0; +1 each.
        assert_eq!(
            h.positive_spans,
            vec![Span {
                offset: -1,
                length: 3
            }]
        );
        assert_eq!(h.positive_buckets, vec![1, 3, -1]);
        h.validate().unwrap();
    }

    #[test]
    fn refusals_and_stale_markers() {
        assert!(to_native(&point(-5, 0, &[1])).unwrap_err().contains("-5"));
        let mut p = point(0, 0, &[1]);
        p.flags = FLAG_NO_RECORDED_VALUE;
        assert!(cairn_model::is_stale_nan(to_native(&p).unwrap().sum));
    }
}
