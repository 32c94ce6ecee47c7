//! Frame-of-reference bit packing of `i64` streams.
//!
//! A stream of `n` values (n known from the chunk header) is cut into
//! blocks of [`BLOCK`] values (the last may be shorter). Each block is
//! `varint min | u8 width | ceil(len * width / 8) bytes`, where every value
//! is stored as `value - min` (wrapping, so any `i64` works) in `width`
//! bits, least significant bit first. A block of equal values costs two
//! bytes. All arithmetic wraps: corrupt input decodes to wrong numbers,
//! never to a panic.

use crate::cursor::ByteCursor;
use crate::varint::{put_varint, varint_len};
use crate::CodecError;

/// Values per block.
pub const BLOCK: usize = 128;

/// Bits needed for `x` (0 for 0).
fn width(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Min and width of one block.
fn frame(block: &[i64]) -> (i64, u32) {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for &v in block {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if block.is_empty() {
        return (0, 0);
    }
    (lo, width(hi.wrapping_sub(lo) as u64))
}

/// Bytes [`put_stream`] would write for `vals`.
pub fn stream_cost(vals: &[i64]) -> usize {
    vals.chunks(BLOCK)
        .map(|b| {
            let (lo, w) = frame(b);
            varint_len(lo) + 1 + (b.len() * w as usize).div_ceil(8)
        })
        .sum()
}

/// Appends `vals` as a packed stream.
pub fn put_stream(vals: &[i64], out: &mut Vec<u8>) {
    for b in vals.chunks(BLOCK) {
        let (lo, w) = frame(b);
        put_varint(out, lo);
        out.push(w as u8);
        if w == 0 {
            continue;
        }
        let mut acc: u128 = 0;
        let mut nb = 0u32;
        for &v in b {
            acc |= u128::from(v.wrapping_sub(lo) as u64) << nb;
            nb += w;
            while nb >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                nb -= 8;
            }
        }
        if nb > 0 {
            out.push(acc as u8);
        }
    }
}

/// Moves `c` past a stream of `n` values without unpacking them.
pub fn skip_stream(c: &mut ByteCursor<'_>, n: usize) -> Result<(), CodecError> {
    let mut left = n;
    while left > 0 {
        let len = left.min(BLOCK);
        left -= len;
        c.varint()?;
        let w = c.byte()?;
        if w > 64 {
            return Err(CodecError::Corruption {
                what: "dense chunk packed block",
                expected: "a bit width of at most 64".to_owned(),
                found: format!("width {w} at byte offset {}", c.pos() - 1),
            });
        }
        c.bytes(((len * usize::from(w)).div_ceil(8)) as u64)?;
    }
    Ok(())
}

/// The 8 bytes of `b` from `at`, little-endian; bytes past the end read
/// as zero.
#[inline]
fn load_le(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(s) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(s);
            u64::from_le_bytes(w)
        }
        None => {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(b.get(at..).unwrap_or(&[])) {
                *d = *s;
            }
            u64::from_le_bytes(w)
        }
    }
}

/// Reads a stream of `n` values written by [`put_stream`], calling `f`
/// with each in order.
pub fn read_stream(
    c: &mut ByteCursor<'_>,
    n: usize,
    mut f: impl FnMut(i64),
) -> Result<(), CodecError> {
    let mut left = n;
    while left > 0 {
        let len = left.min(BLOCK);
        left -= len;
        let lo = c.varint()?;
        let at = c.pos();
        let w = u32::from(c.byte()?);
        if w > 64 {
            return Err(CodecError::Corruption {
                what: "dense chunk packed block",
                expected: "a bit width of at most 64".to_owned(),
                found: format!("width {w} at byte offset {at}"),
            });
        }
        if w == 0 {
            for _ in 0..len {
                f(lo);
            }
            continue;
        }
        let bytes = c.bytes(((len * w as usize).div_ceil(8)) as u64)?;
        let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
        if w <= 56 {
            // One little-endian word load per value: the value's bits start
            // at most 7 bits into the word and end within it.
            for k in 0..len {
                let bit = k * w as usize;
                let word = load_le(bytes, bit / 8);
                f(lo.wrapping_add(((word >> (bit % 8)) & mask) as i64));
            }
            continue;
        }
        let mut acc: u128 = 0;
        let mut nb = 0u32;
        let mut src = bytes.iter();
        for _ in 0..len {
            while nb < w {
                // The length check above guarantees enough bytes; a missing
                // one reads as zero rather than panicking.
                acc |= u128::from(src.next().copied().unwrap_or(0)) << nb;
                nb += 8;
            }
            f(lo.wrapping_add(((acc as u64) & mask) as i64));
            acc >>= w;
            nb -= w;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(vals: &[i64]) {
        let mut out = Vec::new();
        put_stream(vals, &mut out);
        assert_eq!(out.len(), stream_cost(vals), "cost of {vals:?}");
        let mut c = ByteCursor::new(&out);
        let mut got = Vec::new();
        read_stream(&mut c, vals.len(), |v| got.push(v)).unwrap();
        assert_eq!(got, vals);
        assert!(c.is_empty());
        let mut c = ByteCursor::new(&out);
        skip_stream(&mut c, vals.len()).unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn streams_round_trip() {
        round_trip(&[]);
        round_trip(&[5]);
        round_trip(&[7; 300]);
        round_trip(&[i64::MIN, i64::MAX, 0, -1, 1]);
        let v: Vec<i64> = (0..1000).map(|i| (i * 7919) % 26 - 3).collect();
        round_trip(&v);
        let v: Vec<i64> = (0..257).map(|i| i64::MAX - i * 3).collect();
        round_trip(&v);
    }

    #[test]
    fn equal_values_cost_two_bytes_per_block() {
        assert_eq!(stream_cost(&[0; 256]), 4);
    }

    #[test]
    fn truncated_streams_are_errors() {
        let v: Vec<i64> = (0..200).collect();
        let mut out = Vec::new();
        put_stream(&v, &mut out);
        for cut in 0..out.len() {
            let mut c = ByteCursor::new(&out[..cut]);
            assert!(read_stream(&mut c, v.len(), |_| {}).is_err(), "cut {cut}");
        }
    }
}
