//! The float fallback of a dense chunk: Gorilla XOR of value bits alone.
//!
//! Used when a chunk's values are not decimals (computed ratios, full
//! doubles) and XOR is smaller than decimals plus exceptions. The first
//! value is 64 raw bits; each next one is the XOR with its predecessor:
//! `0` when equal; `10` + the meaningful bits when they fit the previous
//! leading/trailing-zero window; `11` + 5 bits of leading zeros + 6 bits of
//! length (0 meaning 64) + the meaningful bits otherwise. This is the value
//! half of Prometheus's XOR encoding, without the timestamps.

use crate::{BitReader, BitWriter, CodecError};

/// Appends the values' bit stream, byte-aligned at its end.
pub fn put_floats(vs: &[f64], out: &mut Vec<u8>) {
    let mut w = BitWriter::with_capacity(vs.len() * 2);
    let mut prev = 0u64;
    let (mut plz, mut ptz) = (u32::MAX, 0u32);
    for (i, v) in vs.iter().enumerate() {
        let bits = v.to_bits();
        if i == 0 {
            w.write_bits(bits, 64);
            prev = bits;
            continue;
        }
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        if plz != u32::MAX && lz >= plz && tz >= ptz {
            w.write_bit(false);
            w.write_bits(x >> ptz, 64 - plz - ptz);
        } else {
            let sig = 64 - lz - tz;
            w.write_bit(true);
            w.write_bits(u64::from(lz), 5);
            w.write_bits(u64::from(sig & 63), 6);
            w.write_bits(x >> tz, sig);
            plz = lz;
            ptz = tz;
        }
    }
    out.extend_from_slice(w.bytes());
}

/// Reads `n` values written by [`put_floats`] from the start of `data`;
/// returns the bytes consumed.
pub fn read_floats(data: &[u8], n: usize, mut f: impl FnMut(f64)) -> Result<usize, CodecError> {
    let mut r = BitReader::new(data);
    let mut prev = 0u64;
    let (mut lz, mut sig) = (0u32, 0u32);
    let mut window = false;
    for i in 0..n {
        if i == 0 {
            prev = r.read_bits(64)?;
        } else if r.read_bit()? {
            if r.read_bit()? {
                lz = r.read_bits(5)? as u32;
                sig = r.read_bits(6)? as u32;
                if sig == 0 {
                    sig = 64;
                }
                if lz + sig > 64 {
                    return Err(CodecError::Corruption {
                        what: "dense chunk float stream",
                        expected: "leading zeros plus length of at most 64".to_owned(),
                        found: format!("{lz} + {sig} at value {i}"),
                    });
                }
                window = true;
            } else if !window {
                return Err(CodecError::Corruption {
                    what: "dense chunk float stream",
                    expected: "a new window before the first reuse".to_owned(),
                    found: format!("a reuse at value {i}"),
                });
            }
            let x = r.read_bits(sig)?;
            prev ^= x << (64 - lz - sig);
        }
        f(f64::from_bits(prev));
    }
    Ok(r.position_bits().div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_bit_for_bit() {
        let vs = [
            1.0,
            1.0,
            std::f64::consts::PI,
            -0.0,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            f64::MIN_POSITIVE / 7.0,
            1e300,
            0.1 + 0.2,
            0.30000000000000004,
            u64::MAX as f64,
        ];
        let mut out = vec![9];
        put_floats(&vs, &mut out);
        let mut got = Vec::new();
        let used = read_floats(&out[1..], vs.len(), |v| got.push(v.to_bits())).unwrap();
        assert_eq!(used, out.len() - 1);
        let want: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
    }
}
