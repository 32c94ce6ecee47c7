//! Floats as decimals: `v == m / 10^e` for an integer `m`.
//!
//! A value is decimal at exponent `e` (0 ≤ e ≤ [`MAX_EXP`]) when an integer
//! `m` with `|m| < 2^53` gives back exactly `v`'s bits through one IEEE
//! division, `(m as f64) / 10^e`. Both operands are exact doubles
//! (`10^e` is exact up to `10^22`), so the quotient is the correctly
//! rounded value of the decimal `m·10^-e`: the double that parsing the
//! exporter's text gave. Decoding repeats that division, so it is lossless
//! by construction; `-0.0`, NaNs and infinities are never decimal.

/// The largest decimal exponent tried (10^22 is the largest exact power).
pub const MAX_EXP: u32 = 22;

/// 2^53: mantissas must stay below it to be exact doubles.
pub const MANTISSA_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Powers of ten 10^0 ..= 10^22, all exact doubles.
pub const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `10^e` for `e ≤ MAX_EXP`, else `None`.
pub fn pow10(e: u32) -> Option<f64> {
    POW10.get(e as usize).copied()
}

/// The integer `m` with `m / 10^e == v`, if there is one below 2^53.
pub fn mantissa_at(v: f64, e: u32) -> Option<i64> {
    let p = pow10(e)?;
    let m = (v * p).round();
    if m.is_nan() || m.abs() >= MANTISSA_LIMIT {
        return None;
    }
    ((m / p).to_bits() == v.to_bits()).then_some(m as i64)
}

/// The smallest exponent at which `v` is decimal, with its mantissa.
pub fn to_decimal(v: f64) -> Option<(u32, i64)> {
    if !v.is_finite() || v.to_bits() == (-0.0f64).to_bits() {
        return None;
    }
    for (e, p) in (0u32..).zip(POW10) {
        let scaled = v * p;
        if scaled.is_nan() || scaled.abs() >= MANTISSA_LIMIT * 2.0 {
            return None;
        }
        if let Some(m) = mantissa_at(v, e) {
            return Some((e, m));
        }
    }
    None
}

/// The value a mantissa stands for at exponent `e` (`p` = 10^e).
#[inline]
pub fn from_decimal(m: i64, p: f64) -> f64 {
    m as f64 / p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_values_are_decimal() {
        assert_eq!(to_decimal(0.0), Some((0, 0)));
        assert_eq!(to_decimal(42.0), Some((0, 42)));
        assert_eq!(to_decimal(0.123456), Some((6, 123456)));
        assert_eq!(to_decimal(62.484), Some((3, 62484)));
        assert_eq!(to_decimal(-1.5), Some((1, -15)));
        assert_eq!(to_decimal(1e-20), Some((20, 1)));
        assert_eq!(
            to_decimal(9_007_199_254_740_991.0),
            Some((0, 9_007_199_254_740_991))
        );
        // Shortest round-trip representations of up to 16 digits are
        // decimals too, if expensive ones.
        assert_eq!(to_decimal(1.0 / 3.0), Some((16, 3_333_333_333_333_333)));
    }

    #[test]
    fn other_values_are_not() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::from_bits(0x7ff0_0000_0000_0002),
            0.1 + 0.2,
            9.2e18,
            f64::MIN_POSITIVE / 3.0,
        ] {
            assert_eq!(to_decimal(v), None, "{v:e}");
        }
    }

    #[test]
    fn decimals_decode_to_the_same_bits() {
        for text in [
            "0.000001",
            "123456.78",
            "1e-7",
            "0.3",
            "99999.999999",
            "-273.15",
        ] {
            let v: f64 = text.parse().unwrap();
            let (e, m) = to_decimal(v).unwrap();
            assert_eq!(
                from_decimal(m, POW10[e as usize]).to_bits(),
                v.to_bits(),
                "{text}"
            );
        }
    }
}
