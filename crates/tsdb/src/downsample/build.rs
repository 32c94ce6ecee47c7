//! Aggregate chunks from one series' windows and counter samples, and back.
//!
//! A chunk holds up to [`WINDOWS_PER_CHUNK`] windows; the counter samples go
//! to the chunk whose windows hold them. Which aggregates a chunk keeps is
//! decided per series from its metric type ([`Kept`]).

use cairn_codec::{
    decode_aggr, decode_float_chunk, encode_aggr, AggrKind, CodecError, FloatChunkBuilder,
    FloatEncoding, SubChunk,
};
use cairn_storage::{EncodedChunk, MetricType};

use super::window::{agg_from_parts, window_end, Agg};

/// Windows per aggregate chunk: 20 h at 5m, 10 days at 1h.
pub(crate) const WINDOWS_PER_CHUNK: usize = 240;

/// Which aggregates a series keeps (docs/format/downsample.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub min_max: bool,
    pub counter: bool,
}

impl Kept {
    /// What a series of metric type `t` keeps.
    pub fn for_type(t: MetricType) -> Self {
        match t {
            MetricType::Counter => Kept {
                min_max: false,
                counter: true,
            },
            MetricType::Gauge => Kept {
                min_max: true,
                counter: false,
            },
            _ => Kept {
                min_max: true,
                counter: true,
            },
        }
    }
}

/// Encodes windows (time-ordered) and counter samples as aggregate chunks
/// of resolution `res`, appended to `out`, with sub-chunks in `encoding`.
pub(crate) fn encode_series(
    wins: &[Agg],
    counter: &[(i64, f64)],
    res: i64,
    kept: Kept,
    encoding: FloatEncoding,
    out: &mut Vec<EncodedChunk>,
) -> Result<(), CodecError> {
    let mut ci = 0usize;
    for part in wins.chunks(WINDOWS_PER_CHUNK) {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let mut subs: [Option<Vec<u8>>; 5] = Default::default();
        let mut c = FloatChunkBuilder::new(encoding);
        for (k, keep) in [
            (AggrKind::Count, true),
            (AggrKind::Sum, true),
            (AggrKind::Min, kept.min_max),
            (AggrKind::Max, kept.min_max),
        ] {
            if !keep {
                continue;
            }
            for a in part {
                let v = match k {
                    AggrKind::Count => a.count,
                    AggrKind::Sum => a.total(),
                    AggrKind::Min => a.min,
                    _ => a.max,
                };
                c.push(a.t, v);
            }
            if let Some(slot) = subs.get_mut(k as usize) {
                *slot = Some(c.finish()?);
            }
        }
        let (mut min_t, max_t) = (first.t, last.t);
        if kept.counter {
            while let Some(&(t, v)) = counter.get(ci) {
                if window_end(t, res) > last.t {
                    break;
                }
                min_t = min_t.min(t);
                c.push(t, v);
                ci += 1;
            }
            if !c.is_empty() {
                let [.., slot] = &mut subs;
                *slot = Some(c.finish()?);
            }
        }
        let parts: [Option<SubChunk<'_>>; 5] = std::array::from_fn(|i| {
            subs.get(i).and_then(|b| b.as_deref()).map(|data| SubChunk {
                encoding: encoding.byte(),
                data,
            })
        });
        out.push(EncodedChunk {
            min_time: min_t,
            max_time: max_t,
            encoding: cairn_codec::ENCODING_AGGR,
            data: encode_aggr(&parts),
        });
    }
    Ok(())
}

/// Decodes one sub-chunk into points.
fn points(sub: Option<SubChunk<'_>>) -> Result<Vec<(i64, f64)>, CodecError> {
    let Some(b) = sub else {
        return Ok(Vec::new());
    };
    // The header's sample count sizes the vector (a hint only: the decoder
    // checks the data).
    let n = cairn_codec::float_chunk_samples(b.encoding, b.data).min(1 << 16);
    let mut v = Vec::with_capacity(n);
    decode_float_chunk(b.encoding, b.data, |t, x| v.push((t, x)))?;
    Ok(v)
}

/// An aggregate chunk's windows (absent min/max read as NaN) and counter
/// samples: what the next level is computed from.
#[allow(clippy::type_complexity)]
pub(crate) fn decode_chunk(data: &[u8]) -> Result<(Vec<Agg>, Vec<(i64, f64)>, Kept), CodecError> {
    let parts = decode_aggr(data)?;
    let [count, sum, min, max, counter] = parts;
    let had = Kept {
        min_max: min.is_some() && max.is_some(),
        counter: counter.is_some(),
    };
    let count = points(count)?;
    let sum = points(sum)?;
    let min = points(min)?;
    let max = points(max)?;
    if sum.len() != count.len()
        || (!min.is_empty() && min.len() != count.len())
        || (!max.is_empty() && max.len() != count.len())
    {
        return Err(misaligned(
            count.len(),
            sum.len().max(min.len()).max(max.len()),
        ));
    }
    let mut wins = Vec::with_capacity(count.len());
    for (i, &(t, c)) in count.iter().enumerate() {
        let s = sum.get(i).copied().unwrap_or((t, f64::NAN));
        let lo = min.get(i).copied().unwrap_or((t, f64::NAN));
        let hi = max.get(i).copied().unwrap_or((t, f64::NAN));
        if s.0 != t || lo.0 != t || hi.0 != t {
            return Err(CodecError::Corruption {
                what: "aggregate chunk",
                expected: format!("every aggregate at timestamp {t}"),
                found: format!("timestamps {}, {}, {}", s.0, lo.0, hi.0),
            });
        }
        wins.push(agg_from_parts(t, c, s.1, lo.1, hi.1));
    }
    Ok((wins, points(counter)?, had))
}

fn misaligned(want: usize, found: usize) -> CodecError {
    CodecError::Corruption {
        what: "aggregate chunk",
        expected: format!("{want} points in each of count, sum, min and max"),
        found: format!("{found}"),
    }
}

/// What a query reads from an aggregate chunk: the points of `aggr`
/// (docs/format/downsample.md: an absent aggregate is read from the
/// nearest kept one), passed to `f` in time order. Returns the count.
pub fn decode_aggregate(
    data: &[u8],
    aggr: cairn_storage::Aggregate,
    mut f: impl FnMut(i64, f64),
) -> Result<usize, CodecError> {
    use cairn_storage::Aggregate as A;
    let [count, sum, min, max, counter] = decode_aggr(data)?;
    let direct = match aggr {
        A::Count => count,
        A::Sum => sum,
        A::Min => min.or(counter),
        A::Max => max.or(counter),
        A::Counter | A::Resets => counter,
        A::Avg => None,
    };
    if let Some(sub) = direct {
        return decode_float_chunk(sub.encoding, sub.data, f);
    }
    // The average: sum ÷ count, point by point, the sums decoded straight
    // into the output.
    let c = points(count)?;
    let mut i = 0usize;
    let mut bad: Option<(i64, i64)> = None;
    let n_sum = match sum {
        Some(b) => decode_float_chunk(b.encoding, b.data, |ts, v| {
            match c.get(i) {
                Some(&(t, n)) if t == ts => f(t, v / n),
                Some(&(t, _)) => {
                    bad.get_or_insert((t, ts));
                }
                None => {
                    bad.get_or_insert((i64::MIN, ts));
                }
            }
            i += 1;
        })?,
        None => 0,
    };
    if let Some((t, ts)) = bad {
        return Err(CodecError::Corruption {
            what: "aggregate chunk",
            expected: format!("sum at timestamp {t}"),
            found: ts.to_string(),
        });
    }
    if n_sum != c.len() {
        return Err(misaligned(c.len(), n_sum));
    }
    Ok(c.len())
}
