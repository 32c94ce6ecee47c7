//! Cairn's dense float chunk (encoding byte [`ENCODING_DENSE`]), for
//! long-term blocks.
//!
//! Lossless: every timestamp and every float's bits (NaN payloads, stale
//! markers, `-0.0`) come back exactly. The format is specified in
//! `docs/format/dense-chunk.md`; in short:
//!
//! * **Timestamps** are coded against the chunk's regular interval `d`
//!   (the median delta): sample k sits at `t0 + s_k·d + r_k`, where the
//!   slot `s_k` advances by one plus a gap count, and the residual `r_k`
//!   is the scrape's jitter. Gaps and residuals are packed streams
//!   ([`pack`]): a jitter of up to 25 ms costs 5 bits, a perfectly regular
//!   series next to nothing.
//! * **Values** are decimals where they can be ([`decimal`]): mantissas at
//!   one exponent per chunk, coded as themselves, as deltas or as deltas of
//!   deltas (whichever packs smallest), with the few values that are not
//!   decimal (stale markers) stored whole as exceptions. A chunk whose
//!   values are mostly not decimal uses Gorilla XOR on the value bits
//!   instead ([`floats`]).
//!
//! Contracts: [`encode_dense`] takes strictly increasing timestamps and
//! errors otherwise; decoders never panic, and report malformed input as
//! a [`CodecError`].

mod decimal;
mod floats;
mod pack;

use crate::cursor::ByteCursor;
use crate::varint::{put_uvarint, put_varint, uvarint, uvarint_len, varint_len};
use crate::CodecError;

pub use decimal::{mantissa_at, pow10, to_decimal};

/// Encoding byte of dense chunks. Prometheus uses 1–4 and Thanos's
/// aggregate chunk 0xff; 0xfe is free in both.
pub const ENCODING_DENSE: u8 = 0xfe;

/// Samples a dense chunk holds at most (the writer cuts longer series).
pub const DENSE_MAX_SAMPLES: usize = 1 << 16;

/// Timestamp flag: the timestamps are another chunk's.
const TS_SHARED: u8 = 2;

/// Value modes.
const MODE_DECIMAL: u8 = 0;
const MODE_FLOAT: u8 = 1;

/// Encodes samples (`ts` strictly increasing, as long as `vs`) as one dense
/// chunk appended to `out`.
pub fn encode_dense(ts: &[i64], vs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
    if ts.len() != vs.len() || ts.is_empty() || ts.len() > DENSE_MAX_SAMPLES {
        return Err(CodecError::Corruption {
            what: "dense chunk input",
            expected: format!("1 to {DENSE_MAX_SAMPLES} timestamps with a value each"),
            found: format!("{} timestamps and {} values", ts.len(), vs.len()),
        });
    }
    if let Some(w) = ts.windows(2).position(|w| matches!(w, [a, b] if a >= b)) {
        return Err(CodecError::Corruption {
            what: "dense chunk input",
            expected: "strictly increasing timestamps".to_owned(),
            found: format!("sample {} not after the one before", w + 1),
        });
    }
    put_uvarint(out, ts.len() as u64);
    put_timestamps(ts, out);
    put_values(vs, out);
    Ok(())
}

/// The number of samples in a dense chunk, from its header.
pub fn dense_num_samples(data: &[u8]) -> Result<usize, CodecError> {
    Ok(uvarint(data)?.0 as usize)
}

/// Finds the chunk a dense chunk shares its timestamps with, by chunk
/// reference within the same block: the source chunk's data (borrowed from
/// a mapped block, owned when read from object storage), or `None`.
pub type SourceLookup<'r> = dyn FnMut(u64) -> Option<std::borrow::Cow<'r, [u8]>> + 'r;

/// Decodes a whole dense chunk, calling `f(t, v)` for each sample in
/// order; returns the number of samples. A chunk whose timestamps are
/// shared with another chunk of its block is an error here: read it with
/// [`dense_decode_with`].
pub fn dense_decode(data: &[u8], mut f: impl FnMut(i64, f64)) -> Result<usize, CodecError> {
    let mut ts = Vec::new();
    decode_into(data, &mut ts, None, |i, v, ts| {
        if let Some(t) = ts.get(i) {
            f(*t, v);
        }
    })
}

/// [`dense_decode`] for chunks that may share their timestamps: `lookup`
/// gives the source chunk's data by reference.
pub fn dense_decode_with(
    data: &[u8],
    lookup: &mut SourceLookup<'_>,
    mut f: impl FnMut(i64, f64),
) -> Result<usize, CodecError> {
    let mut ts = Vec::new();
    decode_into(data, &mut ts, Some(lookup), |i, v, ts| {
        if let Some(t) = ts.get(i) {
            f(*t, v);
        }
    })
}

/// Decodes a whole dense chunk, appending its samples to `out` through
/// `make`; returns the number of samples.
pub fn dense_decode_append<S>(
    data: &[u8],
    out: &mut Vec<S>,
    make: impl Fn(i64, f64) -> S,
) -> Result<usize, CodecError> {
    let mut ts = Vec::new();
    out.reserve(dense_num_samples(data)?.min(DENSE_MAX_SAMPLES));
    decode_into(data, &mut ts, None, |i, v, ts| {
        if let Some(t) = ts.get(i) {
            out.push(make(*t, v));
        }
    })
}

/// The header up to the timestamp flag: sample count, `t0`, and for more
/// than one sample `d` and the flag byte (with its offset).
struct TsHeader {
    n: usize,
    t0: i64,
    d: i64,
    flag: Option<(u8, usize)>,
}

fn ts_header(c: &mut ByteCursor<'_>) -> Result<TsHeader, CodecError> {
    let n = c.uvarint()?;
    if n == 0 || n > DENSE_MAX_SAMPLES as u64 {
        return Err(CodecError::Corruption {
            what: "dense chunk header",
            expected: format!("1 to {DENSE_MAX_SAMPLES} samples"),
            found: n.to_string(),
        });
    }
    let t0 = c.varint()?;
    if n == 1 {
        return Ok(TsHeader {
            n: 1,
            t0,
            d: 0,
            flag: None,
        });
    }
    let d = c.uvarint()? as i64;
    let at = c.pos();
    let flag = c.byte()?;
    Ok(TsHeader {
        n: n as usize,
        t0,
        d,
        flag: Some((flag, at)),
    })
}

/// The reference of the chunk whose timestamps `data` shares, if it does.
pub fn dense_shared_source(data: &[u8]) -> Result<Option<u64>, CodecError> {
    let mut c = ByteCursor::new(data);
    match ts_header(&mut c)?.flag {
        Some((TS_SHARED, _)) => Ok(Some(c.uvarint()?)),
        _ => Ok(None),
    }
}

/// The timestamps of a dense chunk that holds its own.
pub fn dense_timestamps(data: &[u8]) -> Result<Vec<i64>, CodecError> {
    let mut c = ByteCursor::new(data);
    let h = ts_header(&mut c)?;
    let mut ts = Vec::with_capacity(h.n);
    read_timestamps(&mut c, &h, &mut ts, None)?;
    Ok(ts)
}

/// Rewrites a dense chunk that holds its own timestamps into one that
/// shares them with the chunk at `source` (same block), whose timestamps
/// from index `start` on are this chunk's. The caller has checked that
/// they are; readers check it again.
pub fn dense_share(data: &[u8], source: u64, start: usize) -> Result<Vec<u8>, CodecError> {
    let mut c = ByteCursor::new(data);
    let h = ts_header(&mut c)?;
    // Past the timestamp streams without decoding them.
    match h.flag {
        None => {}
        Some((0, _)) => pack::skip_stream(&mut c, h.n - 1)?,
        Some((1, _)) => {
            pack::skip_stream(&mut c, h.n - 1)?;
            pack::skip_stream(&mut c, h.n - 1)?;
        }
        Some((x, at)) => {
            return Err(CodecError::Corruption {
                what: "dense chunk timestamp flag",
                expected: "0 or 1 (a chunk holding its own timestamps)".to_owned(),
                found: format!("{x} at byte offset {at}"),
            })
        }
    }
    let values = data.get(c.pos()..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(values.len() + 24);
    put_uvarint(&mut out, h.n as u64);
    put_varint(&mut out, h.t0);
    if h.n > 1 {
        put_uvarint(&mut out, 0);
        out.push(TS_SHARED);
        put_uvarint(&mut out, source);
        put_uvarint(&mut out, start as u64);
    }
    out.extend_from_slice(values);
    Ok(out)
}

/// Decodes the timestamps into `ts`, then calls `f(i, v, ts)` per value.
fn decode_into(
    data: &[u8],
    ts: &mut Vec<i64>,
    lookup: Option<&mut SourceLookup<'_>>,
    mut f: impl FnMut(usize, f64, &[i64]),
) -> Result<usize, CodecError> {
    let mut c = ByteCursor::new(data);
    let h = ts_header(&mut c)?;
    let n = h.n;
    read_timestamps(&mut c, &h, ts, lookup)?;
    let at = c.pos();
    match c.byte()? {
        MODE_DECIMAL => read_decimals(&mut c, n, |i, v| f(i, v, ts))?,
        MODE_FLOAT => {
            let rest = data.get(c.pos()..).unwrap_or(&[]);
            let mut i = 0;
            floats::read_floats(rest, n, |v| {
                f(i, v, ts);
                i += 1;
            })
            .map_err(|e| e.offset_by(c.pos()))?;
        }
        m => {
            return Err(CodecError::Corruption {
                what: "dense chunk value mode",
                expected: "0 (decimal) or 1 (float)".to_owned(),
                found: format!("{m} at byte offset {at}"),
            })
        }
    }
    Ok(n)
}

/// The median of the positive deltas: the interval the timestamps are
/// coded against.
fn interval(ts: &[i64]) -> i64 {
    let mut d = Vec::with_capacity(ts.len().saturating_sub(1));
    for w in ts.windows(2) {
        if let [a, b] = w {
            d.push(b.wrapping_sub(*a));
        }
    }
    let mid = d.len() / 2;
    if d.is_empty() {
        return 1;
    }
    let (_, m, _) = d.select_nth_unstable(mid);
    (*m).max(1)
}

/// Slot of each timestamp after the first against interval `d`: the
/// nearest, but always at least one past the previous.
fn slots(ts: &[i64], d: i64) -> impl Iterator<Item = i64> + '_ {
    let t0 = ts.first().copied().unwrap_or(0);
    let mut slot: i64 = 0;
    ts.iter().skip(1).map(move |&t| {
        let off = t.wrapping_sub(t0);
        let rem = off.rem_euclid(d);
        let near = off.div_euclid(d).wrapping_add(i64::from(rem >= d - rem));
        slot = near.max(slot.wrapping_add(1));
        slot
    })
}

/// `t0`, then for n > 1: `d`, the gap stream (flagged: most chunks have
/// none) and the residual stream. `d` starts as the median delta and is
/// refined to the mean time per slot, so that jitter whose median delta
/// is off by a few ms does not make the residuals drift.
fn put_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    let Some(&t0) = ts.first() else { return };
    put_varint(out, t0);
    let Some(&last) = ts.last() else { return };
    if ts.len() == 1 {
        return;
    }
    let mut d = interval(ts);
    if let Some(s) = slots(ts, d).last().filter(|&s| s > 0) {
        let span = last.wrapping_sub(t0);
        if let Some(refined) = span.checked_add(s / 2).map(|x| x / s).filter(|&r| r > 0) {
            d = refined;
        }
    }
    put_uvarint(out, d as u64);
    let mut gaps = Vec::with_capacity(ts.len() - 1);
    let mut resid = Vec::with_capacity(ts.len() - 1);
    let mut prev: i64 = 0;
    for (s, &t) in slots(ts, d).zip(ts.iter().skip(1)) {
        gaps.push(s.wrapping_sub(prev).wrapping_sub(1));
        resid.push(t.wrapping_sub(t0).wrapping_sub(s.wrapping_mul(d)));
        prev = s;
    }
    if gaps.iter().all(|&g| g == 0) {
        out.push(0);
    } else {
        out.push(1);
        pack::put_stream(&gaps, out);
    }
    pack::put_stream(&resid, out);
}

/// Reads the timestamps after [`ts_header`]: inline (flag 0 or 1), or
/// shared (flag 2) through `lookup`.
fn read_timestamps(
    c: &mut ByteCursor<'_>,
    h: &TsHeader,
    ts: &mut Vec<i64>,
    lookup: Option<&mut SourceLookup<'_>>,
) -> Result<(), CodecError> {
    ts.clear();
    let (n, t0, d) = (h.n, h.t0, h.d);
    let Some((flag, at)) = h.flag else {
        ts.push(t0);
        return Ok(());
    };
    ts.reserve(n);
    let mut gaps = Vec::new();
    match flag {
        0 => {}
        1 => pack::read_stream(c, n - 1, |g| gaps.push(g))?,
        TS_SHARED => {
            let src = c.uvarint()?;
            let start = c.uvarint()?;
            return shared_timestamps(src, start, h, ts, lookup);
        }
        x => {
            return Err(CodecError::Corruption {
                what: "dense chunk timestamp flag",
                expected: "0, 1 or 2".to_owned(),
                found: format!("{x} at byte offset {at}"),
            })
        }
    }
    ts.push(t0);
    let mut slot: i64 = 0;
    let mut i = 0;
    pack::read_stream(c, n - 1, |r| {
        let g = gaps.get(i).copied().unwrap_or(0);
        slot = slot.wrapping_add(1).wrapping_add(g);
        ts.push(t0.wrapping_add(slot.wrapping_mul(d)).wrapping_add(r));
        i += 1;
    })
}

/// A shared chunk's timestamps: `n` of the source chunk's from `start`,
/// the first of which must be the chunk's own `t0`.
fn shared_timestamps(
    src: u64,
    start: u64,
    h: &TsHeader,
    ts: &mut Vec<i64>,
    lookup: Option<&mut SourceLookup<'_>>,
) -> Result<(), CodecError> {
    let bad = |expected: String, found: String| CodecError::Corruption {
        what: "dense chunk shared timestamps",
        expected,
        found,
    };
    let Some(lookup) = lookup else {
        return Err(bad(
            format!("a block to find chunk {src} in"),
            "a chunk read on its own".to_owned(),
        ));
    };
    let data = lookup(src).ok_or_else(|| {
        bad(
            format!("a dense chunk at reference {src}"),
            "none".to_owned(),
        )
    })?;
    let mut c = ByteCursor::new(&data);
    let sh = ts_header(&mut c)?;
    // Sources hold their own timestamps: no chains.
    read_timestamps(&mut c, &sh, ts, None)?;
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let end = start.saturating_add(h.n);
    if end > ts.len() || ts.get(start) != Some(&h.t0) {
        return Err(bad(
            format!(
                "{} timestamps from {} at index {start} of chunk {src}",
                h.n, h.t0
            ),
            format!("{} timestamps there", ts.len()),
        ));
    }
    ts.truncate(end);
    ts.drain(..start);
    Ok(())
}

/// How a mantissa stream is differenced.
#[derive(Clone, Copy)]
enum Order {
    Raw = 0,
    Delta = 1,
    DeltaOfDelta = 2,
}

/// `m` differenced `order` times, in one allocation of the exact size (a
/// collected `filter_map` grows by doubling: reallocations were a quarter
/// of compaction's time at ten million series).
fn difference(m: &[i64], order: Order) -> Vec<i64> {
    let k = order as usize;
    let mut out = Vec::with_capacity(m.len().saturating_sub(k));
    match order {
        Order::Raw => out.extend_from_slice(m),
        Order::Delta => {
            for w in m.windows(2) {
                if let [a, b] = w {
                    out.push(b.wrapping_sub(*a));
                }
            }
        }
        Order::DeltaOfDelta => {
            for w in m.windows(3) {
                if let [a, b, c] = w {
                    out.push(c.wrapping_sub(*b).wrapping_sub(b.wrapping_sub(*a)));
                }
            }
        }
    }
    out
}

/// Appends the value section: decimal mode unless the float fallback is
/// smaller.
fn put_values(vs: &[f64], out: &mut Vec<u8>) {
    let decimal = decimal_section(vs);
    if let Some(dec) = &decimal {
        // Exceptions are rare: decimals win without trying floats.
        if dec.exceptions == 0 {
            out.extend_from_slice(&dec.bytes);
            return;
        }
    }
    let mut fl = vec![MODE_FLOAT];
    floats::put_floats(vs, &mut fl);
    match decimal {
        Some(dec) if dec.bytes.len() <= fl.len() => out.extend_from_slice(&dec.bytes),
        _ => out.extend_from_slice(&fl),
    }
}

struct DecimalSection {
    bytes: Vec<u8>,
    exceptions: usize,
}

/// `mode 0 | u8 exponent | u8 order | order × varint head | stream |
/// uvarint count | count × (uvarint index delta | u64 LE bits)`.
fn decimal_section(vs: &[f64]) -> Option<DecimalSection> {
    let decs: Vec<Option<(u32, i64)>> = vs.iter().map(|&v| decimal::to_decimal(v)).collect();
    let exp = decs.iter().flatten().map(|(e, _)| *e).max()?;
    let p = decimal::pow10(exp)?;
    let mut mant = Vec::with_capacity(vs.len());
    let mut exc: Vec<(usize, u64)> = Vec::new();
    let mut prev = 0i64;
    for (i, (v, d)) in vs.iter().zip(&decs).enumerate() {
        // Scale to the chunk's exponent; what no longer fits is an exception.
        let m = d.and_then(|_| decimal::mantissa_at(*v, exp));
        match m {
            Some(m) if decimal::from_decimal(m, p).to_bits() == v.to_bits() => {
                mant.push(m);
                prev = m;
            }
            _ => {
                exc.push((i, v.to_bits()));
                mant.push(prev);
            }
        }
    }
    if exc.len() * 4 > vs.len() {
        return None;
    }
    let mut best: Option<(Order, Vec<i64>, usize)> = None;
    for order in [Order::Raw, Order::Delta, Order::DeltaOfDelta] {
        let k = order as usize;
        if k >= mant.len() && k > 0 {
            continue;
        }
        let diff = difference(&mant, order);
        let head: usize = match order {
            Order::Raw => 0,
            Order::Delta => mant.first().map_or(0, |m| varint_len(*m)),
            Order::DeltaOfDelta => {
                mant.first().map_or(0, |m| varint_len(*m))
                    + difference(&mant, Order::Delta)
                        .first()
                        .map_or(0, |d| varint_len(*d))
            }
        };
        let cost = head + pack::stream_cost(&diff);
        if best.as_ref().is_none_or(|b| cost < b.2) {
            best = Some((order, diff, cost));
        }
    }
    let (order, diff, cost) = best?;
    let mut b = Vec::with_capacity(3 + 20 + cost + exc.len() * 18 + 10);
    b.extend_from_slice(&[MODE_DECIMAL, exp as u8, order as u8]);
    match order {
        Order::Raw => {}
        Order::Delta => {
            put_varint(&mut b, mant.first().copied().unwrap_or(0));
        }
        Order::DeltaOfDelta => {
            put_varint(&mut b, mant.first().copied().unwrap_or(0));
            let d1 = difference(&mant, Order::Delta);
            put_varint(&mut b, d1.first().copied().unwrap_or(0));
        }
    }
    pack::put_stream(&diff, &mut b);
    put_uvarint(&mut b, exc.len() as u64);
    let mut last = 0usize;
    for (i, bits) in &exc {
        put_uvarint(&mut b, (i - last) as u64);
        b.extend_from_slice(&bits.to_le_bytes());
        last = *i;
    }
    debug_assert!(b.len() >= 3 + uvarint_len(exc.len() as u64));
    Some(DecimalSection {
        bytes: b,
        exceptions: exc.len(),
    })
}

fn read_decimals(
    c: &mut ByteCursor<'_>,
    n: usize,
    mut f: impl FnMut(usize, f64),
) -> Result<(), CodecError> {
    let at = c.pos();
    let exp = u32::from(c.byte()?);
    let p = decimal::pow10(exp).ok_or_else(|| CodecError::Corruption {
        what: "dense chunk decimal exponent",
        expected: format!("at most {}", decimal::MAX_EXP),
        found: format!("{exp} at byte offset {at}"),
    })?;
    let order = c.byte()?;
    let mut mant: Vec<i64> = Vec::with_capacity(n);
    match order {
        0 => pack::read_stream(c, n, |m| mant.push(m))?,
        1 => {
            let mut m = c.varint()?;
            mant.push(m);
            pack::read_stream(c, n - 1, |d| {
                m = m.wrapping_add(d);
                mant.push(m);
            })?;
        }
        2 if n >= 2 => {
            let mut m = c.varint()?;
            let mut d = c.varint()?;
            mant.push(m);
            m = m.wrapping_add(d);
            mant.push(m);
            pack::read_stream(c, n - 2, |dd| {
                d = d.wrapping_add(dd);
                m = m.wrapping_add(d);
                mant.push(m);
            })?;
        }
        o => {
            return Err(CodecError::Corruption {
                what: "dense chunk difference order",
                expected: "0, 1, or 2 with at least two samples".to_owned(),
                found: format!("{o} with {n} samples at byte offset {}", at + 1),
            })
        }
    }
    let count = c.uvarint()?;
    if count > n as u64 {
        return Err(CodecError::Corruption {
            what: "dense chunk exceptions",
            expected: format!("at most {n}"),
            found: count.to_string(),
        });
    }
    let mut next_exc = Vec::with_capacity(count as usize);
    let mut idx = 0u64;
    for k in 0..count {
        let delta = c.uvarint()?;
        idx = if k == 0 {
            delta
        } else {
            idx.saturating_add(delta)
        };
        let bits = c.bytes(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(bits);
        if idx >= n as u64 || (k > 0 && delta == 0) {
            return Err(CodecError::Corruption {
                what: "dense chunk exceptions",
                expected: format!("increasing sample indexes below {n}"),
                found: format!("index {idx}"),
            });
        }
        next_exc.push((idx as usize, u64::from_le_bytes(b)));
    }
    let mut exc = next_exc.into_iter().peekable();
    for (i, m) in mant.into_iter().enumerate() {
        match exc.peek() {
            Some((j, bits)) if *j == i => {
                f(i, f64::from_bits(*bits));
                exc.next();
            }
            _ => f(i, decimal::from_decimal(m, p)),
        }
    }
    Ok(())
}
