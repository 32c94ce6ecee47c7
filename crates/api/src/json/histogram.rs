//! Native histograms in query results, in Prometheus v3.8's JSON shape
//! (`util/jsonutil.MarshalHistogram`):
//!
//! `{"count":"<c>","sum":"<s>","buckets":[[<boundaries>,"<lower>","<upper>","<count>"],...]}`
//!
//! Buckets come in `FloatHistogram.AllBucketIterator` order: negative
//! buckets from the most negative up, the zero bucket (only when its count
//! is above 0, never with custom buckets), positive buckets upwards; a
//! bucket that reaches into the zero bucket has that bound clipped to the
//! zero threshold. Buckets with a zero count are left out, and so is the
//! `buckets` key when none is left. `boundaries` says which ends are
//! inclusive: 0 upper only (open left), 1 lower only (open right), 2
//! neither, 3 both. For exponential schemas a bound is inclusive when it
//! is on the far side of zero (lower < 0, upper > 0: so positive buckets
//! are `(l,u]`, negative ones `[l,u)`); the zero bucket is closed; custom
//! buckets are `(l,u]`, the first one `[-Inf,u]`.
//!
//! Every number is a string written by [`push_json_float`], Prometheus's
//! `jsonutil.MarshalFloat`.

use cairn_model::{bucket_bound, FloatHistogram};

/// Appends `v` as Prometheus's `jsonutil.MarshalFloat` writes it (without
/// the quotes; see `json::push_value`).
pub(crate) fn push_json_float(out: &mut String, v: f64) {
    super::push_value(out, v);
}

fn quoted(out: &mut String, v: f64) {
    out.push('"');
    push_json_float(out, v);
    out.push('"');
}

/// One bucket as JSON shows it.
struct JsonBucket {
    lower: f64,
    upper: f64,
    lower_inclusive: bool,
    upper_inclusive: bool,
    count: f64,
}

/// The buckets in `AllBucketIterator` order, clipped, empty ones kept.
fn all_buckets(h: &FloatHistogram) -> Vec<JsonBucket> {
    let custom = h.uses_custom_buckets();
    let z = h.zero_threshold;
    let bound = |i: i32| bucket_bound(i, h.schema, &h.custom_values);
    let exp_flags = |lower: f64, upper: f64| (lower < 0.0, upper > 0.0);
    let mut out = Vec::with_capacity(h.positive_buckets.len() + h.negative_buckets.len() + 1);
    for (i, count) in h.negative_indexed().into_iter().rev() {
        let (lower, mut upper) = (-bound(i), -bound(i - 1));
        let (lower_inclusive, upper_inclusive) = exp_flags(lower, upper);
        if upper < 0.0 && upper > -z {
            upper = -z;
        }
        out.push(JsonBucket {
            lower,
            upper,
            lower_inclusive,
            upper_inclusive,
            count,
        });
    }
    if !custom && h.zero_count > 0.0 {
        out.push(JsonBucket {
            lower: -z,
            upper: z,
            lower_inclusive: true,
            upper_inclusive: true,
            count: h.zero_count,
        });
    }
    for (i, count) in h.positive_indexed() {
        let (mut lower, upper) = (bound(i - 1), bound(i));
        let (lower_inclusive, upper_inclusive) = if custom {
            (i == 0, true)
        } else {
            exp_flags(lower, upper)
        };
        if lower > 0.0 && lower < z {
            lower = z;
        }
        out.push(JsonBucket {
            lower,
            upper,
            lower_inclusive,
            upper_inclusive,
            count,
        });
    }
    out
}

/// Appends the histogram object.
pub(crate) fn histogram_json(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":");
    quoted(out, h.count);
    out.push_str(",\"sum\":");
    quoted(out, h.sum);
    let mut any = false;
    for b in all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        out.push_str(if any { "," } else { ",\"buckets\":[" });
        any = true;
        let boundaries = match (b.lower_inclusive, b.upper_inclusive) {
            (false, true) => '0',
            (true, false) => '1',
            (false, false) => '2',
            (true, true) => '3',
        };
        out.push('[');
        out.push(boundaries);
        out.push(',');
        quoted(out, b.lower);
        out.push(',');
        quoted(out, b.upper);
        out.push(',');
        quoted(out, b.count);
        out.push(']');
    }
    if any {
        out.push(']');
    }
    out.push('}');
}

/// Appends `[<time>,{histogram}]`.
pub(crate) fn histogram_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    super::format_time(t, out);
    out.push(',');
    histogram_json(out, h);
    out.push(']');
}

#[cfg(test)]
mod tests {
    //! The expected strings were derived by hand from Prometheus v3.8's
    //! `jsonutil.MarshalHistogram` / `MarshalFloat` and
    //! `FloatHistogram.AllBucketIterator` (bucket bounds from `getBound`:
    //! schema `s` bucket `i` ends at `2^(i·2^-s)`), not produced by this
    //! code.

    use super::*;
    use cairn_model::{Span, CUSTOM_BUCKETS_SCHEMA};

    fn json(h: &FloatHistogram) -> String {
        let mut s = String::new();
        histogram_json(&mut s, h);
        s
    }

    #[test]
    fn floats_switch_to_exponents_as_jsoniter_does() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-07"),
            (-2.5e-7, "-2.5e-07"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (2.938735877055719e-39, "2.938735877055719e-39"),
            (0.1, "0.1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            let mut s = String::new();
            push_json_float(&mut s, v);
            assert_eq!(s, want, "{v:e}");
        }
    }

    /// Schema 0 (bucket `i` is `(2^(i-1), 2^i]`), zero threshold 0.001.
    /// Negative buckets 0 (count 0, skipped) and 1 (`[-2,-1)`, count 2)
    /// come most negative first, then the zero bucket `[-0.001,0.001]`
    /// (count 1), then positive buckets 0 `(0.5,1]` and 2 `(2,4]`.
    #[test]
    fn exponential_buckets_in_prometheus_order() {
        let h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 10.0,
            sum: 12.5,
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 1,
                },
                Span {
                    offset: 1,
                    length: 1,
                },
            ],
            positive_buckets: vec![3.0, 4.0],
            negative_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            negative_buckets: vec![0.0, 2.0],
            ..Default::default()
        };
        assert_eq!(
            json(&h),
            concat!(
                r#"{"count":"10","sum":"12.5","buckets":["#,
                r#"[1,"-2","-1","2"],"#,
                r#"[3,"-0.001","0.001","1"],"#,
                r#"[0,"0.5","1","3"],"#,
                r#"[0,"2","4","4"]]}"#
            )
        );
    }

    /// Zero threshold 0.001, schema 0: positive bucket -9 is
    /// `(2^-10, 2^-9]`, reaching into the zero bucket, so its lower bound
    /// is clipped to 0.001. Then Prometheus's default zero threshold
    /// 2^-128, whose bounds need exponents.
    #[test]
    fn zero_bucket_clipping_and_tiny_bounds() {
        let h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 4.5,
            sum: f64::NAN,
            positive_spans: vec![
                Span {
                    offset: -9,
                    length: 1,
                },
                Span {
                    offset: 9,
                    length: 1,
                },
            ],
            positive_buckets: vec![0.5, 2.0],
            ..Default::default()
        };
        assert_eq!(
            json(&h),
            concat!(
                r#"{"count":"4.5","sum":"NaN","buckets":["#,
                r#"[3,"-0.001","0.001","2"],"#,
                r#"[0,"0.001","0.001953125","0.5"],"#,
                r#"[0,"1","2","2"]]}"#
            )
        );
        let tiny = FloatHistogram {
            zero_threshold: 2f64.powi(-128),
            zero_count: 1.0,
            count: 1.0,
            ..Default::default()
        };
        assert_eq!(
            json(&tiny),
            r#"{"count":"1","sum":"0","buckets":[[3,"-2.938735877055719e-39","2.938735877055719e-39","1"]]}"#
        );
    }

    /// Custom bounds 0.1, 0.5: buckets [-Inf,0.1], (0.1,0.5], (0.5,+Inf].
    #[test]
    fn custom_buckets() {
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 6.0,
            sum: 3.25,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 0.0, 5.0],
            custom_values: vec![0.1, 0.5],
            ..Default::default()
        };
        assert_eq!(
            json(&h),
            concat!(
                r#"{"count":"6","sum":"3.25","buckets":["#,
                r#"[3,"-Inf","0.1","1"],"#,
                r#"[0,"0.5","+Inf","5"]]}"#
            )
        );
    }

    #[test]
    fn no_buckets_no_key() {
        let h = FloatHistogram {
            count: 0.0,
            sum: 0.0,
            zero_threshold: 0.001,
            ..Default::default()
        };
        assert_eq!(json(&h), r#"{"count":"0","sum":"0"}"#);
        let mut p = String::new();
        histogram_point(&mut p, 1_500, &h);
        assert_eq!(p, r#"[1.5,{"count":"0","sum":"0"}]"#);
    }
}
