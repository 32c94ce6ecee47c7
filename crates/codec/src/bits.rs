//! MSB-first bit streams.
//!
//! Bits are packed from the most significant bit of each byte downwards, the
//! layout of Prometheus's `bstream`. Unused low bits of the last byte are
//! always zero.
//!
//! The writer reproduces one quirk of Prometheus's writer exactly, because it
//! is visible in chunk bytes: writing a whole byte while the stream is
//! byte-aligned leaves a fresh, entirely unused zero byte at the end (the
//! "8 free bits" state). A later bit fills that byte; if nothing follows, the
//! stream ends with it. A single-bit write that completes a byte does not
//! do this. So `free_bits()` ranges over 0..=8, and writes of whole bytes
//! ([`BitWriter::write_byte`], and the leading multiple-of-8 part of
//! [`BitWriter::write_bits`]) behave differently from single bits only in
//! that trailing byte.

use crate::varint::{self, ReadErr};
use crate::CodecError;

/// Appends bits to a growable byte buffer, byte-compatible with Prometheus's
/// `bstream` writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Unused (still zero) low bits of the last byte, 0..=8.
    free: u32,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty stream with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            free: 0,
        }
    }

    /// Resumes writing after existing bytes whose last byte has `free_bits`
    /// (0..=8, clamped) unused low bits. Those bits are cleared so the next
    /// write fills them.
    pub fn from_bytes(mut buf: Vec<u8>, free_bits: u32) -> Self {
        let free = if buf.is_empty() { 0 } else { free_bits.min(8) };
        if let Some(last) = buf.last_mut() {
            *last &= !low_mask8(free);
        }
        Self { buf, free }
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = self.buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes 8 bits. Always appends a byte: the part of `b` that does not
    /// fit the current last byte, or a zero byte if the stream was aligned.
    #[inline]
    pub fn write_byte(&mut self, b: u8) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        if let Some(last) = self.buf.last_mut() {
            *last |= ((u16::from(b)) >> (8 - self.free)) as u8;
        }
        self.buf.push((u16::from(b) << self.free) as u8);
    }

    /// Writes the `nbits` (0..=64, clamped) low bits of `v`, most significant
    /// first: whole bytes as [`BitWriter::write_byte`], the rest as bits.
    #[inline]
    pub fn write_bits(&mut self, v: u64, nbits: u32) {
        let nbits = nbits.min(64);
        let mut remaining = nbits;
        while remaining >= 8 {
            remaining -= 8;
            self.write_byte((v >> remaining) as u8);
        }
        // Up to 7 single bits, placed in at most two pieces.
        while remaining > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = self.free.min(remaining);
            let shift = remaining - take;
            let chunk = ((v >> shift) as u8) & low_mask8(take);
            self.free -= take;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << self.free;
            }
            remaining -= take;
        }
    }

    /// Drops the wholly unused last byte that an aligned byte write leaves
    /// (the "8 free bits" state), if there is one. What remains is the
    /// stream of Prometheus 3.x, whose `writeByte` on an aligned stream
    /// appends only the byte itself: the bytes are the same as long as
    /// anything follows, and differ only in whether a stream that ends
    /// aligned after a byte write carries that spare zero byte (2.x) or
    /// not (3.x). Later writes go on exactly as without the trim.
    pub fn trim_spare_byte(&mut self) {
        if self.free == 8 {
            self.buf.pop();
            self.free = 0;
        }
    }

    /// The bytes written so far (the last one possibly partial or unused,
    /// zero-padded).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable access to the bytes, for patching fixed-size headers in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Unused low bits of the last byte (0..=8).
    pub fn free_bits(&self) -> u32 {
        self.free
    }

    /// Number of bits written.
    pub fn len_bits(&self) -> usize {
        self.buf.len() * 8 - self.free as usize
    }

    /// Gives up the buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Makes room for at least `min_free` more bytes, growing the buffer by
    /// an eighth of its length (at least `min_free`) instead of doubling it:
    /// a writer that lives long and grows slowly (an open head chunk) then
    /// holds little more than it wrote. Reallocations stay rare: about
    /// twenty from empty to a few KiB.
    #[inline]
    pub fn reserve_slack(&mut self, min_free: usize) {
        let len = self.buf.len();
        if self.buf.capacity() - len < min_free {
            self.buf.reserve_exact(min_free.max(len / 8));
        }
    }

    /// Bytes allocated for the buffer (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Lowers the capacity to at least `cap` (and the length).
    pub fn shrink_to(&mut self, cap: usize) {
        self.buf.shrink_to(cap);
    }

    /// Removes the first `n` bytes (clamped to the length), keeping the
    /// capacity; the bit position in the last byte is unchanged.
    pub fn drain_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }
}

/// Reads bits from a borrowed byte slice (e.g. mmapped chunk data).
///
/// Every read is bounds-checked and reports [`CodecError::UnexpectedEof`]
/// instead of panicking; a failed read does not advance the position.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next bit to read, counted from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits consumed so far.
    pub fn position_bits(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, CodecError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(CodecError::UnexpectedEof {
                what: "bit",
                bit_offset: self.pos,
            })?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Ok(bit)
    }

    /// Reads `nbits` (0..=64) bits into the low bits of the result, most
    /// significant first.
    #[inline]
    pub fn read_bits(&mut self, nbits: u32) -> Result<u64, CodecError> {
        if nbits == 0 {
            return Ok(0);
        }
        if nbits > 64 || (nbits as usize) > self.remaining_bits() {
            return Err(CodecError::UnexpectedEof {
                what: "bits",
                bit_offset: self.pos,
            });
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let word = self.load_be_u64(byte) << off;
        let avail = 64 - off;
        let v = if nbits <= avail {
            word >> (64 - nbits)
        } else {
            let extra = nbits - avail; // 1..=7
            let next = u64::from(self.data.get(byte + 8).copied().unwrap_or(0));
            (word >> (64 - nbits)) | (next >> (8 - extra))
        };
        self.pos += nbits as usize;
        Ok(v)
    }

    /// Reads 8 bits.
    #[inline]
    pub fn read_byte(&mut self) -> Result<u8, CodecError> {
        self.read_bits(8).map(|v| v as u8)
    }

    /// Reads an unsigned varint whose bytes start at the current (possibly
    /// unaligned) bit position.
    pub fn read_uvarint(&mut self) -> Result<u64, CodecError> {
        let start = self.pos;
        let res = varint::read_uvarint(|| self.read_byte().ok());
        match res {
            Ok((v, _)) => Ok(v),
            Err(e) => {
                self.pos = start;
                Err(match e {
                    ReadErr::Eof(_) => CodecError::UnexpectedEof {
                        what: "uvarint",
                        bit_offset: start,
                    },
                    ReadErr::Overflow => CodecError::VarintOverflow { offset: start / 8 },
                })
            }
        }
    }

    /// Reads a zig-zag signed varint at the current bit position.
    pub fn read_varint(&mut self) -> Result<i64, CodecError> {
        self.read_uvarint().map(varint::unzigzag)
    }

    /// Big-endian u64 from `data[byte..byte+8]`, zero-padded past the end.
    #[inline]
    fn load_be_u64(&self, byte: usize) -> u64 {
        if let Some(s) = self.data.get(byte..byte + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        } else {
            let mut a = [0u8; 8];
            let tail = self.data.get(byte..).unwrap_or(&[]);
            for (d, s) in a.iter_mut().zip(tail) {
                *d = *s;
            }
            u64::from_be_bytes(a)
        }
    }
}

#[inline]
fn low_mask8(n: u32) -> u8 {
    if n >= 8 {
        0xff
    } else {
        (1u8 << n) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb_first_layout() {
        let mut w = BitWriter::new();
        w.write_bit(true);
        w.write_bits(0b01, 2);
        assert_eq!(w.bytes(), [0b1010_0000]);
        assert_eq!(w.free_bits(), 5);
        w.write_byte(0xff);
        assert_eq!(w.bytes(), [0b1011_1111, 0b1110_0000]);
        assert_eq!(w.len_bits(), 11);
    }

    #[test]
    fn aligned_byte_write_leaves_an_unused_byte_like_prometheus() {
        let mut w = BitWriter::new();
        w.write_byte(0xab);
        assert_eq!(w.bytes(), [0xab, 0x00]);
        assert_eq!(w.free_bits(), 8);
        assert_eq!(w.len_bits(), 8);
        w.write_bit(true);
        assert_eq!(w.bytes(), [0xab, 0x80]);
        // Eight single bits end aligned without the extra byte.
        let mut w = BitWriter::new();
        for _ in 0..8 {
            w.write_bit(true);
        }
        assert_eq!(w.bytes(), [0xff]);
        assert_eq!(w.free_bits(), 0);
        // write_bits: whole bytes first, then single bits.
        let mut w = BitWriter::new();
        w.write_bits(0x1ff, 9);
        assert_eq!(w.bytes(), [0xff, 0x80]);
        let mut w = BitWriter::new();
        w.write_bits(0xffff, 16);
        assert_eq!(w.bytes(), [0xff, 0xff, 0x00]);
    }

    #[test]
    fn trimming_the_spare_byte_gives_prometheus_3_streams() {
        let mut w = BitWriter::new();
        w.write_bits(0xabcd, 16);
        assert_eq!(w.bytes(), [0xab, 0xcd, 0x00]);
        w.trim_spare_byte();
        assert_eq!(w.bytes(), [0xab, 0xcd]);
        assert_eq!(w.free_bits(), 0);
        assert_eq!(w.len_bits(), 16);
        // Writing on gives the same bytes as without the trim.
        let mut u = BitWriter::new();
        u.write_bits(0xabcd, 16);
        for x in [&mut w, &mut u] {
            x.write_bit(true);
            x.write_byte(0x55);
        }
        assert_eq!(w.bytes(), u.bytes());
        // Nothing to trim in a partial byte.
        w.trim_spare_byte();
        assert_eq!(w.bytes(), u.bytes());
    }

    #[test]
    fn read_past_end_is_error_and_does_not_advance() {
        let mut r = BitReader::new(&[0xAB]);
        assert_eq!(r.read_bits(4).unwrap(), 0xA);
        assert!(matches!(
            r.read_bits(5),
            Err(CodecError::UnexpectedEof { .. })
        ));
        assert_eq!(r.position_bits(), 4);
        assert_eq!(r.read_bits(4).unwrap(), 0xB);
        assert!(r.read_bit().is_err());
        assert!(r.read_bits(65).is_err());
    }

    #[test]
    fn resume_clears_free_bits() {
        let w = BitWriter::from_bytes(vec![0xff], 3);
        assert_eq!(w.bytes(), [0xf8]);
        assert_eq!(w.len_bits(), 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Bit(bool),
        Bits(u64, u32),
        Uvarint(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<bool>().prop_map(Op::Bit),
            (any::<u64>(), 0u32..=64).prop_map(|(v, n)| Op::Bits(v, n)),
            any::<u64>().prop_map(Op::Uvarint),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(ops in proptest::collection::vec(op(), 0..64), split in 0usize..64) {
            let mut w = BitWriter::new();
            for (i, o) in ops.iter().enumerate() {
                if i == split {
                    // Resuming mid-stream must not change the bytes.
                    let free = w.free_bits();
                    w = BitWriter::from_bytes(w.into_bytes(), free);
                }
                match *o {
                    Op::Bit(b) => w.write_bit(b),
                    Op::Bits(v, n) => w.write_bits(v, n),
                    Op::Uvarint(v) => {
                        let mut b = Vec::new();
                        varint::put_uvarint(&mut b, v);
                        for x in b { w.write_byte(x); }
                    }
                }
            }
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes);
            for o in &ops {
                match *o {
                    Op::Bit(b) => prop_assert_eq!(r.read_bit().unwrap(), b),
                    Op::Bits(v, n) => {
                        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                        prop_assert_eq!(r.read_bits(n).unwrap(), v & mask);
                    }
                    Op::Uvarint(v) => prop_assert_eq!(r.read_uvarint().unwrap(), v),
                }
            }
            prop_assert!(r.remaining_bits() <= 8);
        }

        #[test]
        fn arbitrary_reads_never_panic(data in proptest::collection::vec(any::<u8>(), 0..24),
                                      widths in proptest::collection::vec(0u32..70, 0..20)) {
            let mut r = BitReader::new(&data);
            for n in widths {
                let _ = r.read_bits(n);
                let _ = r.read_uvarint();
                let _ = r.read_bit();
            }
        }
    }
}
