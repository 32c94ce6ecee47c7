//! One Gorilla XOR-encoded float field (Prometheus's `xorWrite`/`xorRead`):
//! the sum of both histogram encodings, and every count and bucket of the
//! float histogram encoding.
//!
//! Against the field's previous value: `0` = unchanged; `10` + the
//! significant bits = the XOR fits the field's current leading/trailing-zero
//! window; `11` + 5-bit leading-zero count (clamped to 31) + 6-bit
//! significant-bit count (64 written as 0) + the bits = a new window.
//!
//! Each field keeps its own window. A fresh field has none (Prometheus's
//! leading count `0xff`), so its first change always opens one with `11`.
//! A reader that meets `10` before any window (Prometheus's writer never
//! writes it, its reader takes it as the window `0/0`, 64 bits) reads 64
//! bits the same way and still counts as having no window, so a chunk
//! reopened for appending writes exactly what uninterrupted appending
//! would have written.

use crate::{BitReader, BitWriter, CodecError};

/// Leading-zero count meaning "no window yet".
const NO_WINDOW: u8 = 0xff;

/// A float field with its XOR window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct XorValue {
    /// The field's current value, as bits (NaN payloads kept exactly).
    pub bits: u64,
    leading: u8,
    trailing: u8,
}

impl XorValue {
    /// A field holding `bits`, with no window yet.
    pub fn new(bits: u64) -> Self {
        Self {
            bits,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.bits)
    }

    /// Writes `v` as the XOR against the current value and makes it current.
    pub fn write(&mut self, w: &mut BitWriter, v: f64) {
        let delta = v.to_bits() ^ self.bits;
        self.bits = v.to_bits();
        if delta == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        // The leading count has 5 bits on disk, so it is clamped to 31.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        w.write_bit(true);
        w.write_bits(u64::from(leading), 5);
        // 64 significant bits are stored as 0 in the 6-bit field.
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        w.write_bits(u64::from(sig), 6);
        w.write_bits(delta >> trailing, sig);
    }

    /// Reads the next XOR and applies it to the current value.
    pub fn read(&mut self, r: &mut BitReader<'_>) -> Result<(), CodecError> {
        let start = r.position_bits();
        self.read_inner(r).map_err(|e| match e {
            CodecError::UnexpectedEof { .. } => CodecError::UnexpectedEof {
                what: "xor-encoded float",
                bit_offset: start,
            },
            other => other,
        })
    }

    fn read_inner(&mut self, r: &mut BitReader<'_>) -> Result<(), CodecError> {
        if !r.read_bit()? {
            return Ok(());
        }
        let (leading, trailing) = if r.read_bit()? {
            let leading = r.read_bits(5)? as u8;
            let mut sig = r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            if u32::from(leading) + u32::from(sig) > 64 {
                return Err(CodecError::Corruption {
                    what: "xor value window",
                    expected: "leading + significant bits <= 64".to_string(),
                    found: format!("{leading} + {sig}"),
                });
            }
            let trailing = 64 - leading - sig;
            self.leading = leading;
            self.trailing = trailing;
            (leading, trailing)
        } else if self.leading == NO_WINDOW {
            (0, 0)
        } else {
            (self.leading, self.trailing)
        };
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        let bits = r.read_bits(sig)?;
        self.bits ^= bits.checked_shl(u32::from(trailing)).unwrap_or(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_checked_bits() {
        // 1.0 -> 2.0: XOR 0x7ff0000000000000, 1 leading and 52 trailing
        // zeros: 11 00001 001011 11111111111 (same as the XOR chunk).
        let mut x = XorValue::new(1f64.to_bits());
        let mut w = BitWriter::new();
        x.write(&mut w, 2.0);
        assert_eq!(w.bytes(), [0b1100_0010, 0b0101_1111, 0b1111_1111]);
        // Unchanged: a single 0.
        x.write(&mut w, 2.0);
        assert_eq!(w.len_bits(), 2 + 5 + 6 + 11 + 1);
        // 2.0 -> 1.0 reuses the window: 10 + 11 bits.
        x.write(&mut w, 1.0);
        assert_eq!(w.len_bits(), 25 + 2 + 11);
        let b = w.into_bytes();
        let mut r = BitReader::new(&b);
        let mut y = XorValue::new(1f64.to_bits());
        for want in [2.0, 2.0, 1.0] {
            y.read(&mut r).unwrap();
            assert_eq!(y.value(), want);
        }
        assert_eq!(x, y);
    }

    #[test]
    fn reuse_before_any_window_reads_64_bits() {
        // 10 + 64 bits XOR 0x8000000000000000 flips the sign.
        let mut w = BitWriter::new();
        w.write_bits(0b10, 2);
        w.write_bits(1 << 63, 64);
        let b = w.into_bytes();
        let mut y = XorValue::new(1f64.to_bits());
        y.read(&mut BitReader::new(&b)).unwrap();
        assert_eq!(y.value(), -1.0);
        assert_eq!(y, XorValue::new((-1f64).to_bits()));
    }

    #[test]
    fn impossible_window_is_corruption() {
        // 11, 31 leading, 0 (= 64) significant bits.
        let mut w = BitWriter::new();
        w.write_bits(0b11, 2);
        w.write_bits(31, 5);
        w.write_bits(0, 6);
        w.write_bits(u64::MAX, 64);
        let b = w.into_bytes();
        let err = XorValue::new(0).read(&mut BitReader::new(&b)).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Corruption {
                what: "xor value window",
                ..
            }
        ));
        let err = XorValue::new(0)
            .read(&mut BitReader::new(&[0xc0]))
            .unwrap_err();
        assert_eq!(
            err,
            CodecError::UnexpectedEof {
                what: "xor-encoded float",
                bit_offset: 0
            }
        );
    }

    proptest! {
        #[test]
        fn round_trip(vals in proptest::collection::vec(
            prop_oneof![any::<u64>(), (0u64..8).prop_map(|x| 0x4000_0000_0000_0000 | x << 50)], 0..50)) {
            let mut x = XorValue::new(0);
            let mut w = BitWriter::new();
            for &v in &vals { x.write(&mut w, f64::from_bits(v)); }
            let b = w.into_bytes();
            let mut r = BitReader::new(&b);
            let mut y = XorValue::new(0);
            for &v in &vals {
                y.read(&mut r).unwrap();
                prop_assert_eq!(y.bits, v);
            }
            prop_assert_eq!(x, y);
        }
    }
}
