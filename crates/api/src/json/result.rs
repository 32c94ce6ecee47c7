//! The `data` of a query answer: the four result types, with the `limit`
//! parameter's truncation, and large matrices encoded on several threads.
//! A vector sample holding a native histogram has `"histogram"` instead of
//! `"value"`; a range series has `"values"` for its floats and
//! `"histograms"` for its histograms, each only when it has any (a series
//! with neither keeps `"values":[]`), as Prometheus writes them.

use crate::engine::{QueryOutput, QueryResult, RangeSeries, SampleValue};
use crate::reply::Out;

use super::histogram::histogram_point;
use super::{format_time, labels_json, point, push_str};

/// The `data` of a query answer, keeping at most `limit` series (0: all)
/// with a warning when some were cut.
pub(crate) fn result_json(res: QueryResult, limit: usize, threads: usize) -> Out {
    let mut out = String::new();
    let mut warnings = res.warnings;
    match res.output {
        QueryOutput::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            point(&mut out, t, v);
        }
        QueryOutput::String { t, s } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            format_time(t, &mut out);
            out.push(',');
            push_str(&mut out, &s);
            out.push(']');
        }
        QueryOutput::Vector(v) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, (l, t, x)) in v.iter().enumerate() {
                if limit > 0 && i >= limit {
                    warnings.push("results truncated due to limit".into());
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                labels_json(l, &mut out);
                match x {
                    SampleValue::Float(v) => {
                        out.push_str(",\"value\":");
                        point(&mut out, *t, *v);
                    }
                    SampleValue::Histogram(h) => {
                        out.push_str(",\"histogram\":");
                        histogram_point(&mut out, *t, h);
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        QueryOutput::Matrix(m) => {
            let keep = if limit > 0 && m.len() > limit {
                warnings.push("results truncated due to limit".into());
                limit
            } else {
                m.len()
            };
            let m = m.get(..keep).unwrap_or(&m);
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            matrix_json(m, threads, &mut out);
            out.push(']');
        }
    }
    out.push('}');
    Out {
        data: out,
        warnings,
        infos: res.infos,
    }
}

/// A range query's series.
type MatrixSeries = RangeSeries;

/// Points of a series, for splitting the work (a histogram counts as
/// several: it takes about that much text).
fn weight(s: &MatrixSeries) -> usize {
    s.floats.len() + 8 * s.histograms.len()
}

/// Fewest points each thread encoding a matrix gets (about half a
/// millisecond's work): with fewer, a thread costs more than it saves.
const PARALLEL_JSON_POINTS: usize = 4096;

/// Appends the series of `m`, comma-separated, to `out`. A large matrix is
/// cut into contiguous parts of about equal point counts, encoded on up to
/// `threads` threads (the caller's included) and joined in order: the text
/// is the same as a serial encoding's.
fn matrix_json(m: &[MatrixSeries], threads: usize, out: &mut String) {
    // About what a point and a label set take, so that the buffer of a
    // large answer is not copied as it grows.
    let size = |m: &[MatrixSeries]| -> usize {
        m.iter()
            .map(|s| 2 * s.labels.encoded_len() + 32 + 28 * weight(s))
            .sum()
    };
    let encode = |m: &[MatrixSeries], out: &mut String| {
        for (i, s) in m.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"metric\":");
            labels_json(&s.labels, out);
            if !s.floats.is_empty() || s.histograms.is_empty() {
                out.push_str(",\"values\":[");
                for (j, (t, x)) in s.floats.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(out, *t, *x);
                }
                out.push(']');
            }
            if !s.histograms.is_empty() {
                out.push_str(",\"histograms\":[");
                for (j, (t, h)) in s.histograms.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    histogram_point(out, *t, h);
                }
                out.push(']');
            }
            out.push('}');
        }
    };
    let points: usize = m.iter().map(weight).sum();
    let k = threads
        .min(points / PARALLEL_JSON_POINTS)
        .min(m.len())
        .max(1);
    if k == 1 {
        out.reserve(size(m));
        encode(m, out);
        return;
    }
    // Cut where the running point count passes each k-th of the total.
    let mut parts: Vec<&[MatrixSeries]> = Vec::with_capacity(k);
    let (mut from, mut seen) = (0usize, 0usize);
    for (i, s) in m.iter().enumerate() {
        seen += weight(s);
        if seen * k >= points * (parts.len() + 1) && parts.len() + 1 < k {
            parts.extend(m.get(from..=i));
            from = i + 1;
        }
    }
    parts.extend(m.get(from..).filter(|r| !r.is_empty()));
    let texts: Vec<String> = std::thread::scope(|sc| {
        let rest: Vec<_> = parts
            .iter()
            .skip(1)
            .map(|&p| {
                sc.spawn(move || {
                    let mut s = String::with_capacity(size(p));
                    encode(p, &mut s);
                    s
                })
            })
            .collect();
        let mut first = String::new();
        if let Some(&p) = parts.first() {
            first.reserve(size(p));
            encode(p, &mut first);
        }
        let mut all = vec![first];
        for h in rest {
            match h.join() {
                Ok(s) => all.push(s),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        all
    });
    out.reserve(texts.iter().map(|t| t.len() + 1).sum());
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{FloatHistogram, Labels};
    use std::sync::Arc;

    /// A matrix of `n` series, series `i` with `len(i)` points.
    fn matrix(n: usize, len: impl Fn(usize) -> usize) -> Vec<MatrixSeries> {
        (0..n)
            .map(|i| {
                let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                let pts = (0..len(i))
                    .map(|j| (j as i64 * 1500 + 7, (i * 31 + j) as f64 / 7.0))
                    .collect();
                RangeSeries::floats(l, pts)
            })
            .collect()
    }

    #[test]
    fn a_matrix_encodes_to_the_same_text_on_any_thread_count() {
        let shapes: Vec<Vec<MatrixSeries>> = vec![
            matrix(0, |_| 0),
            matrix(1, |_| 20_000),
            matrix(2, |i| if i == 0 { 30_000 } else { 1 }),
            matrix(100, |_| 110),
            matrix(200, |_| 110),
            matrix(300, |i| (i * 37) % 200),
            matrix(7, |i| if i % 2 == 0 { 0 } else { 9000 }),
        ];
        for m in &shapes {
            let mut serial = String::new();
            matrix_json(m, 1, &mut serial);
            let parsed: serde_json::Value =
                serde_json::from_str(&format!("[{serial}]")).expect("valid JSON");
            assert_eq!(parsed.as_array().map(Vec::len), Some(m.len()));
            for threads in [2, 3, 8] {
                let mut par = String::new();
                matrix_json(m, threads, &mut par);
                assert_eq!(par, serial, "{threads} threads, {} series", m.len());
            }
        }
    }

    fn hist(c: f64) -> Arc<FloatHistogram> {
        Arc::new(FloatHistogram {
            count: c,
            sum: 2.5,
            zero_threshold: 0.001,
            zero_count: c,
            ..Default::default()
        })
    }

    /// Shapes from Prometheus's `marshalSampleJSON` / `marshalSeriesJSON`:
    /// `"histogram"` replaces `"value"`, `"histograms"` follows (or
    /// replaces) `"values"`.
    #[test]
    fn histograms_in_vectors_and_matrices() {
        let l = Labels::from_pairs([("__name__", "h".to_string())]);
        let res = QueryResult {
            output: QueryOutput::Vector(vec![
                (l.clone(), 1_000, SampleValue::Float(0.5)),
                (l.clone(), 1_500, SampleValue::Histogram(hist(3.0))),
            ]),
            warnings: vec![],
            infos: vec![],
        };
        assert_eq!(
            result_json(res, 0, 1).data,
            concat!(
                r#"{"resultType":"vector","result":["#,
                r#"{"metric":{"__name__":"h"},"value":[1,"0.5"]},"#,
                r#"{"metric":{"__name__":"h"},"histogram":[1.5,{"count":"3","sum":"2.5","buckets":[[3,"-0.001","0.001","3"]]}]}"#,
                r#"]}"#
            )
        );
        let m = vec![
            RangeSeries {
                labels: l.clone(),
                floats: vec![(1_000, 1.0)],
                histograms: vec![(2_000, hist(1.0))],
            },
            RangeSeries {
                labels: l.clone(),
                floats: vec![],
                histograms: vec![(2_000, hist(0.0)), (3_000, hist(2.0))],
            },
        ];
        let res = QueryResult {
            output: QueryOutput::Matrix(m),
            warnings: vec![],
            infos: vec![],
        };
        assert_eq!(
            result_json(res, 0, 1).data,
            concat!(
                r#"{"resultType":"matrix","result":["#,
                r#"{"metric":{"__name__":"h"},"values":[[1,"1"]],"histograms":[[2,{"count":"1","sum":"2.5","buckets":[[3,"-0.001","0.001","1"]]}]]},"#,
                r#"{"metric":{"__name__":"h"},"histograms":[[2,{"count":"0","sum":"2.5"}],[3,{"count":"2","sum":"2.5","buckets":[[3,"-0.001","0.001","2"]]}]]}"#,
                r#"]}"#
            )
        );
    }

    #[test]
    fn histogram_matrices_encode_the_same_on_any_thread_count() {
        let m: Vec<MatrixSeries> = (0..40)
            .map(|i| RangeSeries {
                labels: Labels::from_pairs([("i", i.to_string())]),
                floats: (0..i * 20).map(|j| (j as i64, j as f64)).collect(),
                histograms: (0..i * 10).map(|j| (j as i64, hist(j as f64))).collect(),
            })
            .collect();
        let mut serial = String::new();
        matrix_json(&m, 1, &mut serial);
        let parsed: serde_json::Value =
            serde_json::from_str(&format!("[{serial}]")).expect("valid JSON");
        assert_eq!(parsed.as_array().map(Vec::len), Some(40));
        for threads in [2, 5] {
            let mut par = String::new();
            matrix_json(&m, threads, &mut par);
            assert_eq!(par, serial, "{threads} threads");
        }
    }
}
