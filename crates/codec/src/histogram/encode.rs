//! Histogram samples into chunks: what a writer uses when it cannot pass
//! stored chunks through (a chunk cut at a block boundary, overlapping
//! chunks merged).
//!
//! Contracts: samples must be sorted by time with distinct timestamps.
//! Chunks are cut where the appenders say (a counter reset, a schema or
//! layout change, a gauge/counter switch, a stale marker) and once they
//! hold [`TARGET_BYTES`] and at least [`MIN_SAMPLES`] samples, as
//! Prometheus v3's head cuts them. Each chunk is returned with its first
//! and last timestamp.

use cairn_model::{FloatHistogram, Histogram};

use super::{AppendOutcome, FloatHistogramChunk, HistogramChunk};
use crate::CodecError;

/// Bytes after which a chunk is cut (Prometheus v3's
/// `TargetBytesPerHistogramChunk`).
pub const TARGET_BYTES: usize = 1024;
/// Samples a chunk holds at least before [`TARGET_BYTES`] cuts it
/// (Prometheus v3's `MinSamplesPerHistogramChunk`).
pub const MIN_SAMPLES: usize = 10;

/// One encoded chunk: `(first t, last t, bytes)`.
pub type HistChunkBytes = (i64, i64, Vec<u8>);

macro_rules! encode_fn {
    ($name:ident, $chunk:ty, $h:ty) => {
        /// Encodes sorted samples into chunks; see the module docs.
        pub fn $name(samples: &[(i64, $h)]) -> Result<Vec<HistChunkBytes>, CodecError> {
            let mut out = Vec::new();
            let mut cur = <$chunk>::new();
            let mut first = i64::MIN;
            let mut last = i64::MIN;
            for (t, h) in samples {
                if cur.num_samples() > 0
                    && cur.bytes().len() >= TARGET_BYTES
                    && cur.num_samples() >= MIN_SAMPLES
                {
                    let prev = std::mem::take(&mut cur);
                    let mut next = <$chunk>::new();
                    next.append(Some(&prev), *t, h, false)?;
                    out.push((first, last, prev.into_bytes()));
                    cur = next;
                    first = *t;
                    last = *t;
                    continue;
                }
                if cur.num_samples() == 0 {
                    first = *t;
                }
                match cur.append(None, *t, h, false)? {
                    AppendOutcome::Appended | AppendOutcome::Recoded => {}
                    AppendOutcome::NewChunk(n) => {
                        let prev = std::mem::replace(&mut cur, n);
                        out.push((first, last, prev.into_bytes()));
                        first = *t;
                    }
                }
                last = *t;
            }
            if cur.num_samples() > 0 {
                out.push((first, last, cur.into_bytes()));
            }
            Ok(out)
        }
    };
}

encode_fn!(encode_histograms, HistogramChunk, Histogram);
encode_fn!(encode_float_histograms, FloatHistogramChunk, FloatHistogram);

/// A histogram sample as readers hold it: time, float form, and the
/// integer form when it has integer counts.
pub type HistSample = (
    i64,
    std::sync::Arc<FloatHistogram>,
    Option<std::sync::Arc<Histogram>>,
);

/// Decodes a histogram chunk of `encoding` (2 integer, 3 float) as
/// readers hold its samples: the float form, and for an integer chunk the
/// integer form too. The inverse of [`encode_histogram_runs`].
pub fn decode_histogram_samples(encoding: u8, data: &[u8]) -> Result<Vec<HistSample>, CodecError> {
    use std::sync::Arc;
    Ok(match encoding {
        crate::ENCODING_HISTOGRAM => super::histogram_decode(data)?
            .into_iter()
            .map(|(t, h)| (t, Arc::new(h.to_float()), Some(Arc::new(h))))
            .collect(),
        crate::ENCODING_FLOAT_HISTOGRAM => super::float_histogram_decode(data)?
            .into_iter()
            .map(|(t, h)| (t, Arc::new(h), None))
            .collect(),
        other => return Err(CodecError::UnknownEncoding(other)),
    })
}

/// Encodes sorted samples of either kind: each run of samples with an
/// integer form into integer chunks (encoding 2), each run without into
/// float-histogram chunks (encoding 3), so that merging keeps integer
/// histograms integer. Returns `(encoding, chunk)` pairs in time order.
pub fn encode_histogram_runs(s: &[HistSample]) -> Result<Vec<(u8, HistChunkBytes)>, CodecError> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(first) = rest.first() {
        let int = first.2.is_some();
        let n = rest.iter().take_while(|x| x.2.is_some() == int).count();
        let (run, tail) = rest.split_at(n);
        if int {
            let v: Vec<(i64, Histogram)> = run
                .iter()
                .filter_map(|x| x.2.as_ref().map(|h| (x.0, (**h).clone())))
                .collect();
            out.extend(
                encode_histograms(&v)?
                    .into_iter()
                    .map(|c| (crate::ENCODING_HISTOGRAM, c)),
            );
        } else {
            let v: Vec<(i64, FloatHistogram)> = run.iter().map(|x| (x.0, (*x.1).clone())).collect();
            out.extend(
                encode_float_histograms(&v)?
                    .into_iter()
                    .map(|c| (crate::ENCODING_FLOAT_HISTOGRAM, c)),
            );
        }
        rest = tail;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::histogram::{float_histogram_decode, histogram_chunk_header, histogram_decode};
    use crate::CounterResetHeader;
    use cairn_model::Span;

    fn h(n: u64) -> Histogram {
        Histogram {
            schema: 0,
            count: n,
            sum: n as f64,
            positive_spans: vec![Span {
                offset: 0,
                length: 1,
            }],
            positive_buckets: vec![n as i64],
            ..Default::default()
        }
    }

    #[test]
    fn runs_keep_their_kind() {
        use std::sync::Arc;
        let int = |t: i64, n: u64| (t, Arc::new(h(n).to_float()), Some(Arc::new(h(n))));
        let float = |t: i64, n: u64| (t, Arc::new(h(n).to_float()), None);
        let s = vec![int(1, 1), int(2, 2), float(3, 3), int(4, 4)];
        let cs = encode_histogram_runs(&s).unwrap();
        let back: Vec<HistSample> = cs
            .iter()
            .flat_map(|(e, c)| decode_histogram_samples(*e, &c.2).unwrap())
            .collect();
        assert_eq!(back.len(), s.len());
        for (a, b) in back.iter().zip(&s) {
            assert_eq!((a.0, a.2.is_some()), (b.0, b.2.is_some()));
            assert_eq!(a.1.count, b.1.count);
        }
        assert!(decode_histogram_samples(1, &cs[0].1 .2).is_err());
        let kinds: Vec<(u8, i64, i64)> = cs.iter().map(|(e, c)| (*e, c.0, c.1)).collect();
        assert_eq!(
            kinds,
            vec![
                (crate::ENCODING_HISTOGRAM, 1, 2),
                (crate::ENCODING_FLOAT_HISTOGRAM, 3, 3),
                (crate::ENCODING_HISTOGRAM, 4, 4)
            ]
        );
        assert!(encode_histogram_runs(&[]).unwrap().is_empty());
    }

    #[test]
    fn round_trips_and_cuts_on_resets() {
        let s: Vec<(i64, Histogram)> = [1, 2, 3, 1, 2]
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64, h(*n)))
            .collect();
        let cs = encode_histograms(&s).unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!((cs[0].0, cs[0].1), (0, 2));
        assert_eq!((cs[1].0, cs[1].1), (3, 4));
        assert_eq!(
            histogram_chunk_header(&cs[1].2).unwrap(),
            CounterResetHeader::CounterReset
        );
        let back: Vec<(i64, u64)> = cs
            .iter()
            .flat_map(|c| histogram_decode(&c.2).unwrap())
            .map(|(t, x)| (t, x.count))
            .collect();
        assert_eq!(back, vec![(0, 1), (1, 2), (2, 3), (3, 1), (4, 2)]);
    }

    #[test]
    fn cuts_at_the_target_size() {
        // Wide float histograms: a chunk reaches 1 KiB in a few samples,
        // but holds at least ten.
        let wide = |i: usize| FloatHistogram {
            schema: 3,
            count: 1000.0 + i as f64,
            sum: 0.1 * i as f64,
            positive_spans: vec![Span {
                offset: 0,
                length: 40,
            }],
            positive_buckets: (0..40).map(|k| (k * 7 + i * 13) as f64 / 3.0).collect(),
            ..Default::default()
        };
        let s: Vec<(i64, FloatHistogram)> = (0..60).map(|i| (i as i64 * 10, wide(i))).collect();
        let cs = encode_float_histograms(&s).unwrap();
        assert!(cs.len() > 1, "{} chunks", cs.len());
        let mut n = 0;
        for c in &cs {
            let d = float_histogram_decode(&c.2).unwrap();
            assert!(d.len() >= MIN_SAMPLES || c.1 == 590, "{} samples", d.len());
            assert_eq!((d[0].0, d[d.len() - 1].0), (c.0, c.1));
            n += d.len();
        }
        assert_eq!(n, 60);
    }
}
