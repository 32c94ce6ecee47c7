//! Whole-chunk XOR decoding for queries: every sample of a chunk, handed to
//! a callback, without the per-call overhead of [`crate::XorIterator`].
//!
//! Why a second decoder: a query reads every sample of every chunk it
//! touches, and the iterator pays for its generality on each bit (a bounds
//! check and a `Result` per bit read, state kept in memory between calls).
//! Here the bits come from a 64-bit register refilled a word at a time, and
//! the decoder state lives in locals for the whole chunk.
//!
//! Contract: [`xor_decode`] calls `f` with exactly the samples, in order,
//! that [`crate::XorIterator::next`] yields for the same bytes, and fails
//! where the iterator fails (the error may describe the spot differently).
//! Samples decoded before an error have been handed to `f` already.

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
            // The first `take` bytes of the word go below the valid bits.
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

    /// Bits consumed so far (for error messages).
    fn offset(&self) -> usize {
        self.pos * 8 - self.n as usize
    }

    fn eof(&self, what: &'static str) -> CodecError {
        CodecError::UnexpectedEof {
            what,
            bit_offset: self.offset(),
        }
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
        self.acc <<= k;
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
                let hi = self.read(32, what)?;
                let lo = self.read(k - 32, what)?;
                Ok((hi << (k - 32)) | lo)
            }
        }
    }

    /// Go's unsigned varint from byte-sized groups at the bit position.
    fn uvarint(&mut self) -> Result<u64, CodecError> {
        let start = self.offset();
        let mut x = 0u64;
        let mut s = 0u32;
        for i in 0..10 {
            let b = self
                .read(8, "uvarint")
                .map_err(|_| CodecError::UnexpectedEof {
                    what: "uvarint",
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
}

/// Decodes every sample of XOR chunk `data` (header included), calling `f`
/// for each in order. Returns the number of samples decoded.
pub fn xor_decode(data: &[u8], mut f: impl FnMut(i64, f64)) -> Result<usize, CodecError> {
    let (total, body) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => {
            return Err(CodecError::UnexpectedEof {
                what: "xor chunk header",
                bit_offset: data.len() * 8,
            })
        }
    };
    if total == 0 {
        return Ok(0);
    }
    let mut r = Bits::new(body);
    let mut t = r.uvarint().map(crate::varint::unzigzag)?;
    let hi = r.read(32, "bits")?;
    let lo = r.read(32, "bits")?;
    let mut v = (hi << 32) | lo;
    f(t, f64::from_bits(v));
    if total == 1 {
        return Ok(1);
    }
    let mut delta = r.uvarint()?;
    let (mut leading, mut trailing) = (0u32, 0u32);
    for i in 1..total {
        if i > 1 && r.n > 0 && r.acc >> 63 == 0 {
            // The common case: a `0` prefix, the same delta as before.
            r.acc <<= 1;
            r.n -= 1;
        } else if i > 1 {
            r.refill();
            // The prefix is up to four 1 bits ended by a 0 (the fourth 1
            // ends it on its own). Bits past the stream's end read as 0,
            // so a short prefix is caught by the reads below.
            let ones = r.acc.leading_ones().min(4).min(r.n);
            let dod = match ones {
                0 => {
                    r.read(1, "bit")?;
                    0
                }
                1 => signed(r.read(16, "bits")? & 0x3fff, 14),
                2 => signed(r.read(20, "bits")? & 0x1_ffff, 17),
                3 => signed(r.read(24, "bits")? & 0xf_ffff, 20),
                _ => {
                    r.read(4, "bit")?;
                    r.read_wide(64, "bits")? as i64
                }
            };
            delta = (delta as i64).wrapping_add(dod) as u64;
        }
        t = t.wrapping_add(delta as i64);
        // Value control: `0` unchanged, `10` same window, `11` new window.
        if r.n < 13 {
            r.refill();
        }
        let ctl = if r.n >= 2 {
            r.acc >> 62
        } else {
            r.acc >> 63 << 1
        };
        if ctl < 2 {
            r.read(1, "bit")?;
        } else {
            if ctl == 3 {
                let w = r.read(13, "bits")? as u32;
                let l = (w >> 6) & 31;
                let mut sig = w & 63;
                if sig == 0 {
                    sig = 64;
                }
                if l + sig > 64 {
                    return Err(CodecError::Corruption {
                        what: "xor value window",
                        expected: "leading + significant bits <= 64".to_string(),
                        found: format!("{l} + {sig}"),
                    });
                }
                leading = l;
                trailing = 64 - l - sig;
            } else {
                r.read(2, "bits")?;
            }
            let sig = 64 - leading - trailing;
            let bits = r.read_wide(sig, "bits")?;
            v ^= bits << trailing;
        }
        f(t, f64::from_bits(v));
    }
    Ok(total)
}

/// Appends every sample of XOR chunk `data` to `out`, made by `mk`; on an
/// error `out` is left as it was. Returns the number of samples appended.
///
/// Faster than pushing from [`xor_decode`]'s callback: room for the whole
/// chunk (its header gives the count) is reserved once, and the samples
/// are written into it with the count kept in a register, not re-read
/// from and stored back to the vector for each sample.
pub fn xor_decode_append<T>(
    data: &[u8],
    out: &mut Vec<T>,
    mk: impl Fn(i64, f64) -> T,
) -> Result<usize, CodecError> {
    let total = match data {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    };
    out.reserve(total);
    let len = out.len();
    let spare = out.spare_capacity_mut();
    let mut n = 0usize;
    let r = xor_decode(data, |t, v| {
        // `xor_decode` hands over at most `total` samples, all of which
        // fit: the check never fails, it only keeps the write in bounds.
        if let Some(slot) = spare.get_mut(n) {
            slot.write(mk(t, v));
            n += 1;
        }
    });
    match r {
        Ok(_) => {
            // SAFETY: the `n` slots after the old length were written just
            // above (`MaybeUninit::write`), and `n` is within the capacity.
            unsafe { out.set_len(len + n) };
            Ok(n)
        }
        // The written slots stay beyond the length: `out` is unchanged
        // (values that need dropping would leak, never be used).
        Err(e) => Err(e),
    }
}

/// An `n`-bit delta-of-delta bucket; values above `2^(n-1)` are negative.
#[inline(always)]
fn signed(bits: u64, n: u32) -> i64 {
    if bits > 1u64 << (n - 1) {
        bits.wrapping_sub(1u64 << n) as i64
    } else {
        bits as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{xor_iter, XorChunk};
    use proptest::prelude::*;

    /// What the iterator yields, and whether it ended in an error.
    fn by_iter(data: &[u8]) -> (Vec<(i64, u64)>, bool) {
        let mut it = xor_iter(data);
        let mut out = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            out.push((t, v.to_bits()));
        }
        (out, it.err().is_some())
    }

    fn by_bulk(data: &[u8]) -> (Vec<(i64, u64)>, bool) {
        let mut out = Vec::new();
        let r = xor_decode(data, |t, v| out.push((t, v.to_bits())));
        (out, r.is_err())
    }

    /// What `xor_decode_append` leaves after a prefix already in the
    /// vector: the prefix plus what the callback decoder gives, or the
    /// prefix alone on an error.
    fn append_agrees(data: &[u8]) -> Result<(), TestCaseError> {
        let mut out = vec![(-1i64, 7u64)];
        let r = xor_decode_append(data, &mut out, |t, v| (t, v.to_bits()));
        let (want, failed) = by_bulk(data);
        prop_assert_eq!(r.is_err(), failed);
        if failed {
            prop_assert_eq!(out, vec![(-1i64, 7u64)]);
        } else {
            prop_assert_eq!(r.ok(), Some(want.len()));
            prop_assert_eq!(out.get(1..), Some(want.as_slice()));
        }
        Ok(())
    }

    fn chunk(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        c.bytes().to_vec()
    }

    #[test]
    fn empty_and_short_chunks() {
        assert_eq!(by_bulk(&[0, 0]), (vec![], false));
        assert!(xor_decode(&[], |_, _| {}).is_err());
        assert!(xor_decode(&[0], |_, _| {}).is_err());
        // One sample announced, no bytes for it.
        assert!(xor_decode(&[0, 1], |_, _| {}).is_err());
    }

    #[test]
    fn every_timestamp_bucket_and_value_shape() {
        let mut s = Vec::new();
        let mut t = 1_700_000_000_000i64;
        let deltas = [
            15_000,
            15_000,
            15_001,
            14_000,
            20_000,
            100_000,
            5_000_000,
            1,
            86_400_000 * 7,
        ];
        let vals = [
            1.0,
            1.0,
            2.5,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
            3.0,
            3.0000001,
        ];
        for (d, v) in deltas.iter().cycle().zip(vals.iter().cycle()).take(300) {
            t += d;
            s.push((t, *v));
        }
        let data = chunk(&s);
        assert_eq!(by_bulk(&data), by_iter(&data));
        assert_eq!(by_bulk(&data).0.len(), 300);
    }

    #[test]
    fn truncated_chunk_fails_like_the_iterator() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000 + i % 7, i as f64 * 1.5))
            .collect();
        let data = chunk(&s);
        for cut in 0..data.len() {
            let (a, ea) = by_bulk(&data[..cut]);
            let (b, eb) = by_iter(&data[..cut]);
            assert_eq!((a, ea), (b, eb), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn matches_the_iterator_on_valid_chunks(
            start in any::<i64>(),
            deltas in proptest::collection::vec(prop_oneof![
                Just(15_000i64), 0i64..100, 1i64..10_000_000, any::<u32>().prop_map(i64::from)
            ], 0..300),
            vals in proptest::collection::vec(prop_oneof![
                any::<f64>(), Just(0.0), (0u32..1000).prop_map(f64::from)
            ], 300),
        ) {
            let mut t = start;
            let mut s = Vec::new();
            for (d, v) in deltas.iter().zip(vals.iter()) {
                s.push((t, *v));
                t = t.wrapping_add(*d);
            }
            let data = chunk(&s);
            prop_assert_eq!(by_bulk(&data), by_iter(&data));
            append_agrees(&data)?;
            // Cut short: an error, and the vector as it was.
            append_agrees(data.get(..data.len() / 2).unwrap_or(&[]))?;
        }

        #[test]
        fn matches_the_iterator_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(by_bulk(&data), by_iter(&data));
            append_agrees(&data)?;
        }
    }
}
