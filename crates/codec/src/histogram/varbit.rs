//! Prometheus's varbit integers (`tsdb/chunkenc/varbit.go`), the number
//! encoding of every integer field of the histogram chunks.
//!
//! A value is a prefix of up to eight `1` bits ended by a `0` (no `0` after
//! eight ones), naming how many payload bits follow:
//!
//! | prefix     | payload | signed range                | unsigned range |
//! |------------|---------|-----------------------------|----------------|
//! | `0`        | 0       | 0                           | 0              |
//! | `10`       | 3       | -3 ..= 4                    | ..= 7          |
//! | `110`      | 6       | -31 ..= 32                  | ..= 63         |
//! | `1110`     | 9       | -255 ..= 256                | ..= 511        |
//! | `11110`    | 12      | -2047 ..= 2048              | ..= 4095       |
//! | `111110`   | 18      | -131071 ..= 131072          | ..= 262143     |
//! | `1111110`  | 25      | -16777215 ..= 16777216      | ..= 33554431   |
//! | `11111110` | 56      | -(2^55 - 1) ..= 2^55        | ..= 2^56 - 1   |
//! | `11111111` | 64      | everything else             | everything else|
//!
//! Signed payloads are the low bits of the two's complement; a payload above
//! `2^(n-1)` reads as negative (so `2^(n-1)` itself is positive: the ranges
//! are asymmetric, exactly as Prometheus's `bitRange`). The writer picks the
//! first row whose range holds the value; the reader accepts any row (a
//! non-minimal encoding decodes to the same value).

use crate::{BitReader, BitWriter, CodecError};

/// Payload widths of the prefixes `10`, `110`, ... `11111110`.
const WIDTHS: [u32; 7] = [3, 6, 9, 12, 18, 25, 56];

/// Whether `x` fits an `n`-bit signed payload: `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[inline]
fn fits_signed(x: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= x && x <= half
}

/// Writes `v` as a signed varbit (Prometheus's `putVarbitInt`).
pub fn put_varbit_int(w: &mut BitWriter, v: i64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for (k, &n) in WIDTHS.iter().enumerate() {
        if fits_signed(v, n) {
            put_prefix(w, k as u32 + 1);
            w.write_bits(v as u64, n);
            return;
        }
    }
    w.write_bits(0xff, 8);
    w.write_bits(v as u64, 64);
}

/// Writes `v` as an unsigned varbit (Prometheus's `putVarbitUint`).
pub fn put_varbit_uint(w: &mut BitWriter, v: u64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for (k, &n) in WIDTHS.iter().enumerate() {
        if v >> n == 0 {
            put_prefix(w, k as u32 + 1);
            w.write_bits(v, n);
            return;
        }
    }
    w.write_bits(0xff, 8);
    w.write_bits(v, 64);
}

/// Writes `ones` one bits and a zero bit (`ones` is 1..=7).
#[inline]
fn put_prefix(w: &mut BitWriter, ones: u32) {
    // e.g. ones = 3: 0b1110 in 4 bits.
    w.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
}

/// Reads the prefix: the number of leading one bits, at most 8.
#[inline]
fn read_prefix(r: &mut BitReader<'_>) -> Result<u32, CodecError> {
    let mut ones = 0;
    while ones < 8 {
        if !r.read_bit()? {
            break;
        }
        ones += 1;
    }
    Ok(ones)
}

/// The payload width for `ones` leading ones (0 for the value 0).
#[inline]
fn width(ones: u32) -> u32 {
    match ones {
        0 => 0,
        8 => 64,
        k => WIDTHS.get(k as usize - 1).copied().unwrap_or(64),
    }
}

/// Reads a signed varbit (Prometheus's `readVarbitInt`).
pub fn read_varbit_int(r: &mut BitReader<'_>) -> Result<i64, CodecError> {
    let start = r.position_bits();
    read_int_inner(r).map_err(|e| eof_as(e, "varbit integer", start))
}

fn read_int_inner(r: &mut BitReader<'_>) -> Result<i64, CodecError> {
    let n = width(read_prefix(r)?);
    match n {
        0 => Ok(0),
        64 => Ok(r.read_bits(64)? as i64),
        n => {
            let mut bits = r.read_bits(n)?;
            if bits > 1u64 << (n - 1) {
                bits = bits.wrapping_sub(1u64 << n);
            }
            Ok(bits as i64)
        }
    }
}

/// Reads an unsigned varbit (Prometheus's `readVarbitUint`).
pub fn read_varbit_uint(r: &mut BitReader<'_>) -> Result<u64, CodecError> {
    let start = r.position_bits();
    read_uint_inner(r).map_err(|e| eof_as(e, "varbit unsigned integer", start))
}

fn read_uint_inner(r: &mut BitReader<'_>) -> Result<u64, CodecError> {
    let n = width(read_prefix(r)?);
    r.read_bits(n)
}

/// Names an end-of-data error after the value being read and where it began.
fn eof_as(e: CodecError, what: &'static str, start: usize) -> CodecError {
    match e {
        CodecError::UnexpectedEof { .. } => CodecError::UnexpectedEof {
            what,
            bit_offset: start,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits_of(f: impl FnOnce(&mut BitWriter)) -> (Vec<u8>, usize) {
        let mut w = BitWriter::new();
        f(&mut w);
        let n = w.len_bits();
        (w.into_bytes(), n)
    }

    #[test]
    fn bucket_edges_match_prometheus() {
        // (value, bits written) at both edges of every signed bucket.
        let cases: &[(i64, usize)] = &[
            (0, 1),
            (1, 5),
            (-3, 5),
            (4, 5),
            (-4, 9),
            (5, 9),
            (-31, 9),
            (32, 9),
            (33, 13),
            (-255, 13),
            (256, 13),
            (257, 17),
            (-2047, 17),
            (2048, 17),
            (2049, 24),
            (131_072, 24),
            (131_073, 32),
            (-16_777_215, 32),
            (16_777_216, 32),
            (16_777_217, 64),
            ((1 << 55) + 1, 72),
            (-(1 << 55) + 1, 64),
            (-(1 << 55), 72),
            (i64::MIN, 72),
            (i64::MAX, 72),
        ];
        for &(v, n) in cases {
            let (b, len) = bits_of(|w| put_varbit_int(w, v));
            assert_eq!(len, n, "{v}");
            assert_eq!(read_varbit_int(&mut BitReader::new(&b)).unwrap(), v);
        }
        let ucases: &[(u64, usize)] = &[
            (0, 1),
            (7, 5),
            (8, 9),
            (63, 9),
            (64, 13),
            (4095, 17),
            (4096, 24),
            (33_554_431, 32),
            (33_554_432, 64),
            ((1 << 56) - 1, 64),
            (1 << 56, 72),
            (u64::MAX, 72),
        ];
        for &(v, n) in ucases {
            let (b, len) = bits_of(|w| put_varbit_uint(w, v));
            assert_eq!(len, n, "{v}");
            assert_eq!(read_varbit_uint(&mut BitReader::new(&b)).unwrap(), v);
        }
    }

    #[test]
    fn hand_checked_bit_patterns() {
        // -1: prefix 10, payload 111 -> 1011 1000.
        assert_eq!(bits_of(|w| put_varbit_int(w, -1)).0, [0b1011_1000]);
        // 4: prefix 10, payload 100 (the positive edge).
        assert_eq!(bits_of(|w| put_varbit_int(w, 4)).0, [0b1010_0000]);
        // 32: prefix 110, payload 100000 -> 1101 0000 | 0...
        assert_eq!(bits_of(|w| put_varbit_int(w, 32)).0, [0b1101_0000, 0]);
        // Unsigned 5: 10 101.
        assert_eq!(bits_of(|w| put_varbit_uint(w, 5)).0, [0b1010_1000]);
        // A payload of 100 reads as +4, 101 as -3.
        let mut r = BitReader::new(&[0b1010_0101, 0b0100_0000]);
        assert_eq!(read_varbit_int(&mut r).unwrap(), 4);
        assert_eq!(read_varbit_int(&mut r).unwrap(), -3);
        // Non-minimal: 0 written with the 3-bit payload reads as 0.
        assert_eq!(
            read_varbit_int(&mut BitReader::new(&[0b1000_0000])).unwrap(),
            0
        );
    }

    #[test]
    fn truncated_values_are_errors_naming_the_start() {
        let (b, _) = bits_of(|w| {
            w.write_bit(false);
            put_varbit_int(w, 1 << 40);
        });
        let cut = &b[..3];
        let mut r = BitReader::new(cut);
        assert_eq!(read_varbit_int(&mut r).unwrap(), 0);
        assert_eq!(
            read_varbit_int(&mut r),
            Err(CodecError::UnexpectedEof {
                what: "varbit integer",
                bit_offset: 1
            })
        );
        assert!(matches!(
            read_varbit_uint(&mut BitReader::new(&[0xff])),
            Err(CodecError::UnexpectedEof { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(vals in proptest::collection::vec(any::<i64>(), 0..40),
                      uvals in proptest::collection::vec(any::<u64>(), 0..40),
                      small in proptest::collection::vec(-300i64..300, 0..40)) {
            let mut w = BitWriter::new();
            for &v in vals.iter().chain(&small) { put_varbit_int(&mut w, v); }
            for &v in &uvals { put_varbit_uint(&mut w, v); }
            let b = w.into_bytes();
            let mut r = BitReader::new(&b);
            for &v in vals.iter().chain(&small) { prop_assert_eq!(read_varbit_int(&mut r).unwrap(), v); }
            for &v in &uvals { prop_assert_eq!(read_varbit_uint(&mut r).unwrap(), v); }
        }

        #[test]
        fn arbitrary_bits_never_panic(data in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut r = BitReader::new(&data);
            while read_varbit_int(&mut r).is_ok() && r.remaining_bits() > 0 {}
            let mut r = BitReader::new(&data);
            while read_varbit_uint(&mut r).is_ok() && r.remaining_bits() > 0 {}
        }
    }
}
