//! Window sums computed exactly when the summed values are decimals.
//!
//! Exporters print values with a few decimals (`0.123456`, `71.5`), and a
//! sum of such doubles in floating point (even compensated) lands on a
//! neighbour of the true decimal sum: a 17-digit double that the dense
//! encoding cannot store as a decimal, at 3 bytes a window where the
//! decimal would take under 2. [`DecimalSum`] adds the values as integer
//! mantissas at a common exponent instead (`cairn_codec::dense`'s decimal
//! rule), and its [`DecimalSum::value`] is the double nearest to the exact
//! sum: one correctly rounded division, so it is at least as accurate as
//! the compensated sum and decimal by construction.
//!
//! Contract: `value` is `None` (the caller keeps its compensated sum) as
//! soon as one value is not decimal (NaN, ±∞, more than 22 decimals, or a
//! mantissa of 2^53 or more at the exponent the sum has reached) or the
//! summed mantissa outgrows what one division keeps exact (2^53, after
//! dropping trailing zeros).

use cairn_codec::dense::{mantissa_at, pow10, to_decimal};

/// 2^53, the bound below which integers are exact doubles.
const EXACT: u128 = 1 << 53;

/// A running sum of decimals: `m · 10^-e`, or given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalSum {
    m: i128,
    e: u32,
    ok: bool,
}

impl DecimalSum {
    /// The empty sum (0).
    pub(crate) const fn new() -> Self {
        Self {
            m: 0,
            e: 0,
            ok: true,
        }
    }

    /// A sum that has given up: [`DecimalSum::value`] is `None`.
    pub(crate) const fn invalid() -> Self {
        Self {
            m: 0,
            e: 0,
            ok: false,
        }
    }

    /// Adds `v`.
    pub(crate) fn add(&mut self, v: f64) {
        if self.ok {
            self.ok = self.try_add(v).is_some();
        }
    }

    fn try_add(&mut self, v: f64) -> Option<()> {
        // Most values are decimal at the exponent reached so far.
        let (e, m) = match mantissa_at(v, self.e) {
            Some(m) => (self.e, m),
            None => to_decimal(v).filter(|&(e, _)| e > self.e)?,
        };
        if e > self.e {
            let scale = pow10(e - self.e)? as i128;
            self.m = self.m.checked_mul(scale)?;
            self.e = e;
        }
        self.m = self.m.checked_add(i128::from(m))?;
        Some(())
    }

    /// The double nearest to the exact sum, or `None` when the sum gave up.
    pub(crate) fn value(&self) -> Option<f64> {
        if !self.ok {
            return None;
        }
        let (mut m, mut e) = (self.m, self.e);
        while m.unsigned_abs() >= EXACT && e > 0 && m % 10 == 0 {
            m /= 10;
            e -= 1;
        }
        if m.unsigned_abs() >= EXACT {
            return None;
        }
        // Both operands are exact doubles: one correctly rounded division.
        Some(m as f64 / pow10(e)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sum(vs: &[f64]) -> Option<f64> {
        let mut s = DecimalSum::new();
        for &v in vs {
            s.add(v);
        }
        s.value()
    }

    #[test]
    fn decimals_sum_to_the_nearest_double_of_the_exact_sum() {
        // 0.1 + 0.2 + 0.3 in floating point is 0.6000000000000001.
        assert_eq!(sum(&[0.1, 0.2, 0.3]), Some(0.6));
        assert_ne!(0.1 + 0.2 + 0.3, 0.6);
        // Exponents grow as values need them; integers stay integers.
        assert_eq!(sum(&[71.0, 0.125, 3.5]), Some(74.625));
        assert_eq!(sum(&[1e15, 1.0, -1e15]), Some(1.0));
        assert_eq!(sum(&[-0.0, 2.25]), Some(2.25));
        assert_eq!(sum(&[]), Some(0.0));
        // Ten exporter values with six decimals.
        let ms: Vec<i64> = (0..10).map(|i| 123_456 + i * 1_000_001).collect();
        let vs: Vec<f64> = ms.iter().map(|&m| m as f64 / 1e6).collect();
        let want = ms.iter().sum::<i64>() as f64 / 1e6;
        assert_eq!(sum(&vs), Some(want));
    }

    #[test]
    fn what_is_not_decimal_gives_up() {
        assert_eq!(sum(&[1.0, f64::NAN]), None);
        assert_eq!(sum(&[1.0, f64::INFINITY]), None);
        assert_eq!(sum(&[1.0, 0.1 + 0.2]), None);
        assert_eq!(sum(&[1e300]), None);
        // A mantissa past 2^53 that trailing zeros cannot bring back.
        assert_eq!(sum(&[9_007_199_254_740_991.0, 3.0]), None);
        // ... and one they can.
        assert_eq!(
            sum(&[900_719_925_474_099.1, 0.9]),
            Some(900_719_925_474_100.0)
        );
        let mut s = DecimalSum::invalid();
        s.add(1.0);
        assert_eq!(s.value(), None);
    }
}

#[cfg(test)]
mod props {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Values printed with `e` decimals sum to the exact decimal sum,
        /// rounded once; adding one that is not decimal gives up.
        #[test]
        fn exporter_values_sum_exactly(
            ms in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 0..50),
            e in 0u32..7,
        ) {
            let p = pow10(e).unwrap();
            let mut s = DecimalSum::new();
            for &m in &ms {
                s.add(m as f64 / p);
            }
            let exact: i64 = ms.iter().sum();
            prop_assert_eq!(s.value(), Some(exact as f64 / p));
            s.add(f64::NAN);
            prop_assert_eq!(s.value(), None);
        }
    }
}
