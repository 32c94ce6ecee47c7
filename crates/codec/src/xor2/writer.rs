//! The bit writer of XOR2 chunks: plain MSB-first packing.
//!
//! Unlike [`crate::BitWriter`], which keeps the spare trailing byte that
//! Prometheus 2.x's `bstream` left after byte-aligned whole-byte writes,
//! this writer never has a wholly unused last byte. That is what every
//! Prometheus release that can write XOR2 does (3.0 and later append
//! exactly one byte per whole-byte write, and XOR2's own multi-bit writes
//! never leave a spare byte either), so an XOR2 chunk is exactly
//! `ceil(bits / 8)` bytes after its header.

/// Appends bits, most significant first, to a byte buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Writer {
    buf: Vec<u8>,
    /// Unused (zero) low bits of the last byte, 0..=7.
    free: u32,
}

impl Writer {
    /// Continues after `buf`, whose last byte has `free` (0..=7, clamped)
    /// unused low bits; those bits are cleared.
    pub(crate) fn from_bytes(mut buf: Vec<u8>, free: u32) -> Self {
        let free = if buf.is_empty() { 0 } else { free.min(7) };
        if let Some(last) = buf.last_mut() {
            *last &= !low_mask(free) as u8;
        }
        Self { buf, free }
    }

    /// Writes the low `n` bits of `v` (`n` clamped to 0..=64).
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        let mut n = n.min(64);
        if n == 0 {
            return;
        }
        let v = v & low_mask(n);
        if self.free > 0 {
            let take = self.free.min(n);
            let part = (v >> (n - take)) & low_mask(take);
            self.free -= take;
            n -= take;
            if let Some(last) = self.buf.last_mut() {
                *last |= (part << self.free) as u8;
            }
        }
        while n >= 8 {
            n -= 8;
            self.buf.push((v >> n) as u8);
        }
        if n > 0 {
            self.free = 8 - n;
            self.buf.push(((v & low_mask(n)) << self.free) as u8);
        }
    }

    /// Writes one bit.
    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// The bytes so far, the last one zero-padded.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable bytes, for patching the header in place.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Gives up the buffer.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The low `n` bits set, `n` in 0..=64.
#[inline]
pub(crate) fn low_mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BitReader;
    use proptest::prelude::*;

    #[test]
    fn packs_msb_first_without_a_spare_byte() {
        let mut w = Writer::default();
        w.write_bits(0xab, 8);
        assert_eq!(w.bytes(), [0xab]);
        w.write_bit(true);
        w.write_bits(0b01, 2);
        assert_eq!(w.bytes(), [0xab, 0b1010_0000]);
        w.write_bits(0x1f, 5);
        assert_eq!(w.bytes(), [0xab, 0b1011_1111]);
        w.write_bits(u64::MAX, 64);
        assert_eq!(w.bytes().len(), 10);
        w.write_bits(7, 0);
        assert_eq!(w.bytes().len(), 10);
    }

    #[test]
    fn resume_clears_padding() {
        let w = Writer::from_bytes(vec![0xff], 3);
        assert_eq!(w.bytes(), [0xf8]);
    }

    proptest! {
        #[test]
        fn reads_back(ops in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..50), split in 0usize..50) {
            let mut w = Writer::default();
            for (i, &(v, n)) in ops.iter().enumerate() {
                if i == split {
                    let free = w.free;
                    w = Writer::from_bytes(w.into_bytes(), free);
                }
                w.write_bits(v, n);
            }
            let total: u32 = ops.iter().map(|o| o.1).sum();
            prop_assert_eq!(w.bytes().len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(w.bytes());
            for &(v, n) in &ops {
                prop_assert_eq!(r.read_bits(n).unwrap(), v & low_mask(n));
            }
        }
    }
}
