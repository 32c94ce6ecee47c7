//! Whole-chunk XOR2 decoding for queries: every sample handed to a
//! callback, with the bits in a 64-bit register and the decoder state in
//! locals, instead of [`crate::Xor2Iterator`]'s checked bit-at-a-time reads.
//!
//! Contract: [`xor2_decode`] calls `f` with exactly the samples, in order,
//! that [`crate::Xor2Iterator::next`] yields for the same bytes, and fails
//! where the iterator fails (the error may describe the spot differently).
//! Samples decoded before an error have been handed to `f` already.

use super::{
    dod_signed, split_header, varbit_signed, varbit_width, STALE_NAN_BITS, ST_CHANGE_MASK,
    ST_FIRST_KNOWN, XOR2_HEADER_LEN,
};
use crate::CodecError;

/// An MSB-first bit reader over a register. Invariant: the top `n` bits of
/// `acc` are the next bits of the stream, the rest of `acc` is zero.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte of `data` not yet in `acc`.
    pos: usize,
    acc: u64,
    n: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut b = Self {
            data,
            pos: 0,
            acc: 0,
            n: 0,
        };
        b.refill();
        b
    }

    /// Tops the register up to at least 57 bits, or to everything left.
    #[inline(always)]
    fn refill(&mut self) {
        let take = (64 - self.n) / 8;
        if take == 0 {
            return;
        }
        if let Some(w) = self
            .data
            .get(self.pos..self.pos + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
        {
            let w = u64::from_be_bytes(w);
            let keep = if take == 8 {
                w
            } else {
                w & !(u64::MAX >> (take * 8))
            };
            self.acc |= keep >> self.n;
            self.n += take * 8;
            self.pos += take as usize;
        } else {
            while self.n <= 56 {
                let Some(&b) = self.data.get(self.pos) else {
                    break;
                };
                self.acc |= u64::from(b) << (56 - self.n);
                self.n += 8;
                self.pos += 1;
            }
        }
    }

    /// Bits consumed so far, counted from the start of the chunk data.
    fn offset(&self) -> usize {
        (XOR2_HEADER_LEN + self.pos) * 8 - self.n as usize
    }

    fn eof(&self, what: &'static str) -> CodecError {
        CodecError::UnexpectedEof {
            what,
            bit_offset: self.offset(),
        }
    }

    /// The next bits without consuming them, topped up to at least `k`
    /// (≤ 57) bits when the stream has them. Bits past the end read as 0.
    #[inline(always)]
    fn peek(&mut self, k: u32) -> u64 {
        if self.n < k {
            self.refill();
        }
        self.acc
    }

    /// Consumes `k` bits (`k <= self.n` checked by the caller's `read`).
    #[inline(always)]
    fn skip(&mut self, k: u32, what: &'static str) -> Result<(), CodecError> {
        self.read(k, what).map(|_| ())
    }

    /// Reads `k` bits, `1 <= k <= 56`.
    #[inline(always)]
    fn read(&mut self, k: u32, what: &'static str) -> Result<u64, CodecError> {
        if self.n < k {
            self.refill();
            if self.n < k {
                return Err(self.eof(what));
            }
        }
        let v = self.acc >> (64 - k);
        self.acc = self.acc.checked_shl(k).unwrap_or(0);
        self.n -= k;
        Ok(v)
    }

    /// Reads `k` bits, `0 <= k <= 64`.
    #[inline(always)]
    fn read_wide(&mut self, k: u32, what: &'static str) -> Result<u64, CodecError> {
        match k {
            0 => Ok(0),
            1..=56 => self.read(k, what),
            _ => {
                // Fail without consuming anything if the whole field is
                // not there, as the iterator does.
                if self.n < k {
                    self.refill();
                    let left = self.n as usize + self.data.len().saturating_sub(self.pos) * 8;
                    if left < k as usize {
                        return Err(self.eof(what));
                    }
                }
                let hi = self.read(32, what)?;
                let lo = self.read(k - 32, what)?;
                Ok((hi << (k - 32)) | lo)
            }
        }
    }

    /// Go's unsigned varint from byte-sized groups at the bit position.
    fn uvarint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let start = self.offset();
        let mut x = 0u64;
        let mut s = 0u32;
        for i in 0..10 {
            let b = self.read(8, what).map_err(|_| CodecError::UnexpectedEof {
                what,
                bit_offset: start,
            })?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(CodecError::VarintOverflow { offset: start / 8 });
                }
                return Ok(x | (b << s));
            }
            x |= (b & 0x7f) << s;
            s += 7;
        }
        Err(CodecError::VarintOverflow { offset: start / 8 })
    }

    fn varint(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.uvarint(what).map(crate::varint::unzigzag)
    }

    /// A varbit signed integer: up to eight 1 bits ended by a 0 (the eighth
    /// 1 ends it on its own), then the bucket's payload.
    fn varbit(&mut self, what: &'static str) -> Result<i64, CodecError> {
        let ones = self.peek(9).leading_ones().min(8).min(self.n);
        self.skip(if ones < 8 { ones + 1 } else { 8 }, what)?;
        let width = varbit_width(ones);
        let bits = self.read_wide(width, what)?;
        Ok(varbit_signed(bits, width))
    }
}

/// Decoder state that lives across samples.
struct Window {
    leading: u32,
    trailing: u32,
}

impl Window {
    /// Bits in the current window, XORed into `base`.
    #[inline(always)]
    fn same(&self, r: &mut Bits<'_>, base: &mut u64) -> Result<(), CodecError> {
        let sig = 64 - self.leading - self.trailing;
        let bits = r.read_wide(sig, "xor2 value bits")?;
        *base ^= bits.checked_shl(self.trailing).unwrap_or(0);
        Ok(())
    }

    /// A new window (5-bit leading, 6-bit count), then its bits.
    #[inline(always)]
    fn new_window(&mut self, r: &mut Bits<'_>, base: &mut u64) -> Result<(), CodecError> {
        let hdr = r.read(11, "xor2 value window")?;
        let leading = (hdr >> 6) as u32;
        let mut sig = (hdr & 0x3f) as u32;
        if sig == 0 {
            sig = 64;
        }
        if leading + sig > 64 {
            return Err(CodecError::Corruption {
                what: "xor2 value window",
                expected: "leading + significant bits <= 64".to_string(),
                found: format!("{leading} + {sig}"),
            });
        }
        self.leading = leading;
        self.trailing = 64 - leading - sig;
        self.same(r, base)
    }

    /// A value after an explicit timestamp: `0` same, `10` reuse window,
    /// `110` new window, `111` stale marker. Returns the value's bits.
    #[inline(always)]
    fn value(&mut self, r: &mut Bits<'_>, base: &mut u64) -> Result<u64, CodecError> {
        let top = r.peek(3) >> 61;
        if top < 0b100 {
            r.skip(1, "xor2 value control")?;
            return Ok(*base);
        }
        if top < 0b110 {
            r.skip(2, "xor2 value control")?;
            self.same(r, base)?;
            return Ok(*base);
        }
        r.skip(3, "xor2 value control")?;
        if top == 0b110 {
            self.new_window(r, base)?;
            Ok(*base)
        } else {
            Ok(STALE_NAN_BITS)
        }
    }
}

/// Decodes every sample of XOR2 chunk `data` (header included), calling `f`
/// for each in order with its timestamp and value. Returns the number of
/// samples decoded. Start timestamps are skipped (see [`xor2_decode_st`]).
pub fn xor2_decode(data: &[u8], mut f: impl FnMut(i64, f64)) -> Result<usize, CodecError> {
    xor2_decode_st(data, |_, t, v| f(t, v))
}

/// Like [`xor2_decode`], with each sample's start timestamp (0 when the
/// chunk has none) as the callback's first argument.
pub fn xor2_decode_st(data: &[u8], mut f: impl FnMut(i64, i64, f64)) -> Result<usize, CodecError> {
    let (total, st_header, body) = split_header(data)?;
    let total = usize::from(total);
    if total == 0 {
        return Ok(0);
    }
    let st_change = usize::from(st_header & ST_CHANGE_MASK);
    let mut r = Bits::new(body);

    let mut t = r.varint("xor2 first timestamp")?;
    let v0 = r.read_wide(64, "xor2 first value")?;
    let mut base = if v0 == STALE_NAN_BITS { 0 } else { v0 };
    let mut st = 0i64;
    if st_header & ST_FIRST_KNOWN != 0 {
        st = t.wrapping_sub(r.varint("xor2 first start timestamp")?);
    }
    f(st, t, f64::from_bits(v0));
    if total == 1 {
        return Ok(1);
    }

    let mut w = Window {
        leading: 0,
        trailing: 0,
    };
    let mut delta = 0u64;
    let mut st_diff = 0i64;
    for i in 1..total {
        let prev_t = t;
        let v;
        if i == 1 {
            delta = r.uvarint("xor2 timestamp delta")?;
            t = t.wrapping_add(delta as i64);
            v = w.value(&mut r, &mut base)?;
        } else if r.n > 0 && r.acc >> 63 == 0 {
            // The common case: `0`, same delta and value.
            r.acc <<= 1;
            r.n -= 1;
            t = t.wrapping_add(delta as i64);
            v = base;
        } else {
            // Up to five 1 bits ended by a 0 (the fifth 1 ends it on its
            // own); the dod buckets are read with their prefix at once.
            let ones = r.peek(24).leading_ones().min(5).min(r.n);
            let dod = match ones {
                0 => {
                    r.skip(1, "xor2 control")?;
                    None
                }
                1 => None,
                2 => Some(dod_signed(
                    r.read(16, "xor2 timestamp delta-of-delta")? & 0x1fff,
                    13,
                )),
                3 => Some(dod_signed(
                    r.read(24, "xor2 timestamp delta-of-delta")? & 0xf_ffff,
                    20,
                )),
                4 => {
                    r.skip(5, "xor2 control")?;
                    Some(r.read_wide(64, "xor2 timestamp delta-of-delta")? as i64)
                }
                _ => {
                    r.skip(5, "xor2 control")?;
                    None
                }
            };
            match (ones, dod) {
                (_, Some(d)) => {
                    delta = (delta as i64).wrapping_add(d) as u64;
                    t = t.wrapping_add(delta as i64);
                    v = w.value(&mut r, &mut base)?;
                }
                (1, None) => {
                    // `10`, then `0` reuse window / `1` new window.
                    t = t.wrapping_add(delta as i64);
                    let ctl = r.read(3, "xor2 value control")?;
                    if ctl & 1 == 0 {
                        w.same(&mut r, &mut base)?;
                    } else {
                        w.new_window(&mut r, &mut base)?;
                    }
                    v = base;
                }
                (0, None) => {
                    t = t.wrapping_add(delta as i64);
                    v = base;
                }
                _ => {
                    t = t.wrapping_add(delta as i64);
                    v = STALE_NAN_BITS;
                }
            }
        }
        if st_change > 0 && i >= st_change {
            let d = r.varbit("xor2 start timestamp delta")?;
            st_diff = if i == st_change {
                d
            } else {
                st_diff.wrapping_add(d)
            };
            st = prev_t.wrapping_sub(st_diff);
        }
        f(st, t, f64::from_bits(v));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{xor2_iter, Xor2Chunk};
    use proptest::prelude::*;

    /// What the iterator yields, and whether it ended in an error.
    fn by_iter(data: &[u8]) -> (Vec<(i64, i64, u64)>, bool) {
        let mut it = xor2_iter(data);
        let mut out = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            out.push((it.at_st(), t, v.to_bits()));
        }
        (out, it.err().is_some())
    }

    fn by_bulk(data: &[u8]) -> (Vec<(i64, i64, u64)>, bool) {
        let mut out = Vec::new();
        let r = xor2_decode_st(data, |st, t, v| out.push((st, t, v.to_bits())));
        (out, r.is_err())
    }

    #[test]
    fn empty_and_short_chunks() {
        assert_eq!(by_bulk(&[0, 0, 0]), (vec![], false));
        assert!(xor2_decode(&[], |_, _| {}).is_err());
        assert!(xor2_decode(&[0, 0], |_, _| {}).is_err());
        assert!(xor2_decode(&[0, 1, 0], |_, _| {}).is_err());
    }

    #[test]
    fn truncated_chunk_fails_like_the_iterator() {
        let mut c = Xor2Chunk::new();
        for i in 0..200i64 {
            let v = if i % 17 == 5 {
                f64::from_bits(STALE_NAN_BITS)
            } else {
                (i / 3) as f64 * 1.5
            };
            c.append_st(
                if i > 50 { 7 } else { 0 },
                i * 15_000 + (i % 7) * (i % 5) * 900,
                v,
            );
        }
        let data = c.bytes().to_vec();
        assert_eq!(by_bulk(&data), by_iter(&data));
        for cut in 0..data.len() {
            assert_eq!(by_bulk(&data[..cut]), by_iter(&data[..cut]), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn matches_the_iterator_on_arbitrary_bytes(
            body in proptest::collection::vec(any::<u8>(), 0..120),
            count in 0u16..80,
            st_header in any::<u8>(),
        ) {
            let mut data = count.to_be_bytes().to_vec();
            data.push(st_header);
            data.extend_from_slice(&body);
            prop_assert_eq!(by_bulk(&data), by_iter(&data));
        }
    }
}
