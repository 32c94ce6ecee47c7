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

/// Windows per aggregate chunk, at most: 40 h at 5m, 20 days at 1h. A
/// chunk's fixed costs (a header per sub-chunk, about 100 bytes in all)
/// are a window's worth of bytes every few windows; a series' windows are
/// cut into chunks of equal size, so that a day of 288 windows at 5m is
/// one chunk, not 240 and 48.
pub(crate) const WINDOWS_PER_CHUNK: usize = 480;

/// `n` windows cut into the fewest chunks of at most [`WINDOWS_PER_CHUNK`],
/// of sizes differing by at most one: the size of the first chunks.
fn chunk_len(n: usize) -> usize {
    let chunks = n.div_ceil(WINDOWS_PER_CHUNK).max(1);
    n.div_ceil(chunks)
}

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
    for part in wins.chunks(chunk_len(wins.len()).max(1)) {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let mut subs: [Option<Vec<u8>>; 5] = Default::default();
        let mut c = FloatChunkBuilder::new(encoding);
        // The counter samples of this chunk's windows.
        let rest = counter.get(ci..).unwrap_or_default();
        let n = if kept.counter {
            rest.iter()
                .take_while(|&&(t, _)| window_end(t, res) <= last.t)
                .count()
        } else {
            0
        };
        let cs = rest.get(..n).unwrap_or_default();
        ci += n;
        // A counter's maxima are its kept samples' (docs/format/downsample.md):
        // max is written only where they do not give it back exactly, and
        // always in XOR, the encoding kept for Thanos's readers.
        let keep_max = kept.min_max
            && !(encoding != FloatEncoding::Xor && kept.counter && max_from_counter(part, cs, res));
        for (k, keep) in [
            (AggrKind::Count, true),
            (AggrKind::Sum, true),
            (AggrKind::Min, kept.min_max),
            (AggrKind::Max, keep_max),
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
            for &(t, v) in cs {
                min_t = min_t.min(t);
                c.push(t, v);
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

/// Passes `f` each window's index and the maximum of its counter samples
/// (`cs`, time-ordered, in the windows of `wins`), NaN for a window without
/// any, by `max_over_time`'s rule, until `f` returns false. Returns whether
/// every window was passed and every sample lay in one of them.
fn each_counter_max(
    wins: &[Agg],
    cs: &[(i64, f64)],
    res: i64,
    mut f: impl FnMut(usize, f64) -> bool,
) -> bool {
    let mut k = 0usize;
    for (i, w) in wins.iter().enumerate() {
        let mut m = f64::NAN;
        while let Some(&(t, v)) = cs.get(k) {
            let end = window_end(t, res);
            if end > w.t {
                break;
            }
            if end < w.t {
                return false;
            }
            if v > m || m.is_nan() {
                m = v;
            }
            k += 1;
        }
        if !f(i, m) {
            return false;
        }
    }
    k == cs.len()
}

/// Whether the counter samples give back every window's maximum, bit for
/// bit. Between two kept counter samples the raw series never goes down
/// (every drop keeps both its sides, every window its last sample), so
/// they hold each window's maximum; this checks it rather than trusting
/// it (NaN-only windows, `-0.0` against `0.0`).
fn max_from_counter(wins: &[Agg], cs: &[(i64, f64)], res: i64) -> bool {
    each_counter_max(wins, cs, res, |i, m| {
        wins.get(i).is_some_and(|w| w.max.to_bits() == m.to_bits())
    })
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

/// An aggregate chunk of resolution `res`: its windows (absent min/max
/// read as NaN, a max left out for the counter samples rebuilt from them)
/// and counter samples: what the next level is computed from.
#[allow(clippy::type_complexity)]
pub(crate) fn decode_chunk(
    data: &[u8],
    res: i64,
) -> Result<(Vec<Agg>, Vec<(i64, f64)>, Kept), CodecError> {
    let parts = decode_aggr(data)?;
    let [count, sum, min, max, counter] = parts;
    // A max left out because the counter samples hold it is rebuilt below.
    let max_from_ctr = min.is_some() && max.is_none() && counter.is_some();
    let had = Kept {
        min_max: min.is_some() && (max.is_some() || max_from_ctr),
        counter: counter.is_some(),
    };
    let count = points(count)?;
    let sum = points(sum)?;
    let min = points(min)?;
    let max = points(max)?;
    let ctr = points(counter)?;
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
    if max_from_ctr {
        let mut maxima = Vec::with_capacity(wins.len());
        if !each_counter_max(&wins, &ctr, res, |_, m| {
            maxima.push(m);
            true
        }) {
            return Err(CodecError::Corruption {
                what: "aggregate chunk",
                expected: "counter samples inside the chunk's windows".to_owned(),
                found: format!("{} samples over {} windows", ctr.len(), wins.len()),
            });
        }
        for (w, m) in wins.iter_mut().zip(maxima) {
            w.max = m;
        }
    }
    Ok((wins, ctr, had))
}

fn misaligned(want: usize, found: usize) -> CodecError {
    CodecError::Corruption {
        what: "aggregate chunk",
        expected: format!("{want} points in each of count, sum, min and max"),
        found: format!("{found}"),
    }
}

/// Reads an aggregate chunk of resolution `res` as the next level's
/// downsampling and level merges read it (maxima left to the counter
/// entry rebuilt): the number of windows, or why it cannot be read.
pub fn decode_windows(data: &[u8], res: i64) -> Result<usize, CodecError> {
    decode_chunk(data, res).map(|(w, _, _)| w.len())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::window::{CounterThin, Windows};
    use super::*;

    const R: i64 = 300_000;

    /// Windows and counter samples of raw samples at resolution `R`.
    fn fold(raw: &[(i64, f64)]) -> (Vec<Agg>, Vec<(i64, f64)>) {
        let mut w = Windows::new(R);
        let mut c = CounterThin::new(R);
        for &(t, v) in raw {
            w.push_raw(t, v);
            c.push(t, v);
        }
        w.finish();
        c.finish();
        (w.out, c.out)
    }

    fn encode_in(raw: &[(i64, f64)], enc: FloatEncoding) -> (Vec<Agg>, Vec<EncodedChunk>) {
        let (wins, ctr) = fold(raw);
        let mut out = Vec::new();
        let all = Kept {
            min_max: true,
            counter: true,
        };
        encode_series(&wins, &ctr, R, all, enc, &mut out).unwrap();
        (wins, out)
    }

    fn encode(raw: &[(i64, f64)]) -> (Vec<Agg>, Vec<EncodedChunk>) {
        encode_in(raw, FloatEncoding::Dense)
    }

    #[test]
    fn a_counters_max_is_left_to_its_counter_samples_and_rebuilt() {
        // A counter scraped every 30 s with a reset inside a window and one
        // on a window's first sample; 600 windows, so two chunks of 300.
        let raw: Vec<(i64, f64)> = (1..=6000i64)
            .map(|k| {
                let since = [0, 1003, 1201].iter().filter(|&&r| r <= k).max().unwrap();
                (k * 30_000, 1.5 * (k - since + 1) as f64)
            })
            .collect();
        let (wins, chunks) = encode(&raw);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunk_len(wins.len()), 300);
        let mut back = Vec::new();
        for ch in &chunks {
            let [_, _, min, max, counter] = decode_aggr(&ch.data).unwrap();
            assert!(min.is_some() && counter.is_some());
            assert!(max.is_none(), "max written although the counter holds it");
            let (ws, _, had) = decode_chunk(&ch.data, R).unwrap();
            assert!(had.min_max && had.counter);
            back.extend(ws);
        }
        assert_eq!(back.len(), wins.len());
        for (a, b) in back.iter().zip(&wins) {
            assert_eq!((a.t, a.max.to_bits()), (b.t, b.max.to_bits()));
        }
        // XOR sub-chunks (for Thanos's readers) keep max.
        let (_, chunks) = encode_in(&raw, FloatEncoding::Xor);
        for ch in &chunks {
            assert!(decode_aggr(&ch.data).unwrap()[AggrKind::Max as usize].is_some());
        }
    }

    #[test]
    fn windows_are_cut_into_the_fewest_even_chunks() {
        assert_eq!(chunk_len(0), 0);
        assert_eq!(chunk_len(1), 1);
        assert_eq!(chunk_len(288), 288);
        assert_eq!(chunk_len(480), 480);
        assert_eq!(chunk_len(481), 241);
        assert_eq!(chunk_len(1000), 334);
    }

    #[test]
    fn a_max_the_counter_samples_miss_is_kept() {
        // The window (0, 300 s] holds only NaNs: its max is NaN with the
        // raw NaN's bits, and no counter sample stands for it.
        let mut raw = vec![(30_000, f64::from_bits(0x7ff8_0000_0000_0123))];
        raw.extend((11..=40i64).map(|k| (k * 30_000, k as f64)));
        let (_, chunks) = encode(&raw);
        let [_, _, _, max, _] = decode_aggr(&chunks[0].data).unwrap();
        assert!(max.is_some());
        // 0.0 after -0.0 in one window, the -0.0 not kept (neither the
        // first sample nor a reset's side): the window's max is -0.0 (the
        // first of equals), its counter samples' is 0.0.
        let raw = [
            (30_000, -5.0),
            (330_000, -0.0),
            (360_000, 0.0),
            (630_000, 1.0),
        ];
        let (wins, chunks) = encode(&raw);
        assert_eq!(wins[1].max.to_bits(), (-0.0f64).to_bits());
        let [_, _, _, max, _] = decode_aggr(&chunks[0].data).unwrap();
        assert!(max.is_some());
    }
}
