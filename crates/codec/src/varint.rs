//! Go-compatible varints (`encoding/binary` `PutUvarint`/`Uvarint`,
//! `PutVarint`/`Varint`).
//!
//! Unsigned varints are little-endian base-128 groups with a continuation
//! bit; signed varints zig-zag map `i64` onto `u64` first
//! (`0, -1, 1, -2, ...` → `0, 1, 2, 3, ...`). Decoding follows Go exactly:
//! at most [`MAX_VARINT_LEN64`] bytes, and the tenth byte may only be 0 or 1.
//! Non-minimal encodings (e.g. `0x80 0x00`) are accepted, as Go does.

use crate::CodecError;

/// The longest encoding of a 64-bit varint.
pub const MAX_VARINT_LEN64: usize = 10;

/// Appends the unsigned varint encoding of `x` to `buf`; returns the number of
/// bytes written.
pub fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
        n += 1;
    }
    buf.push(x as u8);
    n
}

/// Appends the zig-zag signed varint encoding of `x` to `buf`; returns the
/// number of bytes written.
pub fn put_varint(buf: &mut Vec<u8>, x: i64) -> usize {
    put_uvarint(buf, zigzag(x))
}

/// Number of bytes [`put_uvarint`] writes for `x`.
pub fn uvarint_len(x: u64) -> usize {
    let bits = 64 - (x | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes [`put_varint`] writes for `x`.
pub fn varint_len(x: i64) -> usize {
    uvarint_len(zigzag(x))
}

/// Decodes an unsigned varint from the start of `b`; returns the value and the
/// number of bytes consumed.
pub fn uvarint(b: &[u8]) -> Result<(u64, usize), CodecError> {
    let mut it = b.iter().copied();
    read_uvarint(|| it.next()).map_err(|e| match e {
        ReadErr::Eof(n) => CodecError::UnexpectedEof {
            what: "uvarint",
            bit_offset: n * 8,
        },
        ReadErr::Overflow => CodecError::VarintOverflow { offset: 0 },
    })
}

/// Decodes a zig-zag signed varint from the start of `b`; returns the value
/// and the number of bytes consumed.
pub fn varint(b: &[u8]) -> Result<(i64, usize), CodecError> {
    let (u, n) = uvarint(b)?;
    Ok((unzigzag(u), n))
}

/// Maps a signed integer onto an unsigned one so small magnitudes stay small.
pub fn zigzag(x: i64) -> u64 {
    ((x as u64) << 1) ^ ((x >> 63) as u64)
}

/// Inverse of [`zigzag`].
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Why a byte-at-a-time varint read failed.
pub(crate) enum ReadErr {
    /// Source exhausted after this many bytes.
    Eof(usize),
    /// More than ten bytes, or the tenth byte carries bits beyond 64.
    Overflow,
}

/// Reads an unsigned varint one byte at a time from `next` (Go's
/// `binary.ReadUvarint`). Returns the value and the number of bytes read.
pub(crate) fn read_uvarint(mut next: impl FnMut() -> Option<u8>) -> Result<(u64, usize), ReadErr> {
    let mut x: u64 = 0;
    let mut shift: u32 = 0;
    for i in 0..MAX_VARINT_LEN64 {
        let Some(byte) = next() else {
            return Err(ReadErr::Eof(i));
        };
        if byte < 0x80 {
            if i == MAX_VARINT_LEN64 - 1 && byte > 1 {
                return Err(ReadErr::Overflow);
            }
            return Ok((x | (u64::from(byte) << shift), i + 1));
        }
        x |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Err(ReadErr::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings_match_go() {
        // Values checked against Go's encoding/binary.
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        b.clear();
        put_varint(&mut b, -1);
        assert_eq!(b, [0x01]);
        b.clear();
        put_varint(&mut b, 1);
        assert_eq!(b, [0x02]);
        b.clear();
        put_uvarint(&mut b, u64::MAX);
        assert_eq!(
            b,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        b.clear();
        put_varint(&mut b, i64::MIN);
        assert_eq!(
            b,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(matches!(
            uvarint(&[]),
            Err(CodecError::UnexpectedEof { .. })
        ));
        assert!(matches!(
            uvarint(&[0x80, 0x80]),
            Err(CodecError::UnexpectedEof { .. })
        ));
        // Tenth byte > 1 overflows.
        assert!(matches!(
            uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(CodecError::VarintOverflow { .. })
        ));
        // Eleven bytes overflow.
        assert!(matches!(
            uvarint(&[0x80; 11]),
            Err(CodecError::VarintOverflow { .. })
        ));
        // Non-minimal encodings are accepted, like Go.
        assert_eq!(uvarint(&[0x80, 0x00]).unwrap(), (0, 2));
    }

    proptest! {
        #[test]
        fn uvarint_round_trip(x: u64, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut b = Vec::new();
            let n = put_uvarint(&mut b, x);
            prop_assert_eq!(n, b.len());
            prop_assert_eq!(n, uvarint_len(x));
            b.extend_from_slice(&tail);
            prop_assert_eq!(uvarint(&b).unwrap(), (x, n));
        }

        #[test]
        fn varint_round_trip(x: i64) {
            let mut b = Vec::new();
            let n = put_varint(&mut b, x);
            prop_assert_eq!(n, varint_len(x));
            prop_assert_eq!(varint(&b).unwrap(), (x, n));
            prop_assert_eq!(unzigzag(zigzag(x)), x);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok((_, n)) = uvarint(&b) {
                prop_assert!(n >= 1 && n <= b.len().min(MAX_VARINT_LEN64));
            }
            let _ = varint(&b);
        }
    }
}
