//! Floats printed as Go prints them, because Prometheus's output is the
//! reference for Cairn's: JSON sample values (`strconv.FormatFloat(v, 'f',
//! -1, 64)`), `count_values` label values (the same), and `promtool tsdb
//! dump` and histogram display strings (`fmt`'s `%g`).
//!
//! Go prints the shortest digits that read back as the same `f64`; where two
//! such digit strings are equally close to the exact value, it takes the one
//! ending in an even digit (`1713696777316956.25` prints as `…956.2`). Rust's
//! `Display` takes the upper one there, so it must not be used for this. The
//! digits come from `zmij`, which rounds those ties to even as Go does; the
//! frozen fixture `tests/fixtures/go_floats.txt`, printed by Go itself
//! (promtool), holds the crate to that.
//!
//! Non-finite values print as Go's `+Inf`, `-Inf` and `NaN`.

/// The shortest round-tripping decimal of a finite float: `0.d₁d₂…dₙ × 10^point`.
struct Shortest {
    neg: bool,
    digits: [u8; 24],
    len: usize,
    point: i32,
}

impl Shortest {
    fn of(v: f64) -> Shortest {
        let mut buf = zmij::Buffer::new();
        let s = buf.format_finite(v);
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (mant, exp) = match s.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
            None => (s, 0),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let mut digits = [0u8; 24];
        let mut len = 0;
        for &b in int.as_bytes().iter().chain(frac.as_bytes()) {
            if let Some(d) = digits.get_mut(len) {
                *d = b;
                len += 1;
            }
        }
        let mut point = int.len() as i32 + exp;
        // Leading zeros ("0.001") move the point; trailing zeros are not digits.
        let mut first = 0;
        while first + 1 < len && digits.get(first) == Some(&b'0') {
            first += 1;
            point -= 1;
        }
        while len > first + 1 && digits.get(len - 1) == Some(&b'0') {
            len -= 1;
        }
        digits.copy_within(first..len, 0);
        len -= first;
        Shortest {
            neg,
            digits,
            len,
            point,
        }
    }

    fn digits(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or(&[])
    }

    fn is_zero(&self) -> bool {
        self.digits() == b"0"
    }
}

/// Every byte is an ASCII digit.
fn push_digits(out: &mut String, d: &[u8]) {
    out.extend(d.iter().map(|&c| char::from(c)));
}

fn push_non_finite(out: &mut String, v: f64) {
    out.push_str(if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    });
}

/// Positional layout of the shortest digits, never an exponent.
fn push_positional(out: &mut String, s: &Shortest) {
    if s.neg {
        out.push('-');
    }
    let d = s.digits();
    if s.is_zero() {
        out.push('0');
        return;
    }
    let point = s.point;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        push_digits(out, d);
    } else if point as usize >= d.len() {
        push_digits(out, d);
        out.extend(std::iter::repeat_n('0', point as usize - d.len()));
    } else {
        let (a, b) = d.split_at(point as usize);
        push_digits(out, a);
        out.push('.');
        push_digits(out, b);
    }
}

/// Appends `strconv.FormatFloat(v, 'f', -1, 64)`: `"1"`, `"0.1"`,
/// `"1000000000000000000000"`, `"-0.00000025"`, `"+Inf"`.
pub fn push_go_f(out: &mut String, v: f64) {
    if v.is_finite() {
        // The common case, a value zmij writes without an exponent: that
        // is already Go's layout (the same shortest digits, `0.` before a
        // fraction), but for the `.0` it adds to integers.
        let mut buf = zmij::Buffer::new();
        let s = buf.format_finite(v);
        if !s.contains(['e', 'E']) {
            out.push_str(s.strip_suffix(".0").unwrap_or(s));
            return;
        }
        push_positional(out, &Shortest::of(v));
    } else {
        push_non_finite(out, v);
    }
}

/// `strconv.FormatFloat(v, 'f', -1, 64)` as a new string.
pub fn format_go_f(v: f64) -> String {
    let mut s = String::new();
    push_go_f(&mut s, v);
    s
}

/// `fmt.Sprintf("%g", v)`: positional when the decimal exponent is in
/// `-4..6`, otherwise `1.5e-07` / `1.23456789012e+11` style with at least two
/// exponent digits.
pub fn format_go_g(v: f64) -> String {
    let mut out = String::new();
    if !v.is_finite() {
        push_non_finite(&mut out, v);
        return out;
    }
    let s = Shortest::of(v);
    let exp = s.point - 1;
    if s.is_zero() || (-4..6).contains(&exp) {
        push_positional(&mut out, &s);
        return out;
    }
    if s.neg {
        out.push('-');
    }
    let d = s.digits();
    let (first, rest) = d.split_at(1.min(d.len()));
    push_digits(&mut out, first);
    if !rest.is_empty() {
        out.push('.');
        push_digits(&mut out, rest);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path (zmij's own positional output) lays out every
        /// finite float as the digit-by-digit layout does.
        #[test]
        fn fast_path_matches_the_digit_layout(
            v in prop_oneof![
                any::<f64>(),
                (-1e7f64..1e7),
                (0u64..1 << 53).prop_map(|i| i as f64),
                (-30i32..30).prop_map(|e| 10f64.powi(e)),
            ]
        ) {
            prop_assume!(v.is_finite());
            let mut want = String::new();
            push_positional(&mut want, &Shortest::of(v));
            prop_assert_eq!(format_go_f(v), want);
        }
    }

    #[test]
    fn f_like_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1e21, "1000000000000000000000"),
            (-2.5e-7, "-0.00000025"),
            (-0.0, "-0"),
            (0.0, "0"),
            // A tie between two shortest candidates goes to the even digit.
            (6854787109267825.0 / 4.0, "1713696777316956.2"),
            (6854787109267827.0 / 4.0, "1713696777316956.8"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_go_f(v), want, "{v:?}");
        }
        assert_eq!(format_go_f(5e-324), format!("0.{}5", "0".repeat(323)));
    }

    #[test]
    fn g_like_go() {
        // What promtool's dump (Go's %g) prints for these values.
        for (v, want) in [
            (1.0, "1"),
            (1e6, "1e+06"),
            (1.2e-5, "1.2e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (123456789012.0, "1.23456789012e+11"),
            (100000.0, "100000"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (6854787109267825.0 / 4.0, "1.7136967773169562e+15"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_go_g(v), want, "{v:?}");
        }
    }

    /// The exact decimal value of `v`, positional, without trailing zeros.
    fn exact(v: f64) -> String {
        let s = format!("{:.1100}", v.abs());
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    }

    /// Whether `a` and `b` (positional, same sign) are the two candidates of
    /// a tie: the same length, one unit apart in the last digit, and the
    /// exact value of `v` is halfway between them.
    fn is_tie(v: f64, a: &str, b: &str) -> bool {
        let (a, b) = (a.trim_start_matches('-'), b.trim_start_matches('-'));
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        if lo.len() != hi.len() || lo.get(..lo.len() - 1) != hi.get(..hi.len() - 1) {
            return false;
        }
        let (l, h) = (lo.as_bytes()[lo.len() - 1], hi.as_bytes()[hi.len() - 1]);
        let mid = if lo.contains('.') {
            format!("{lo}5")
        } else {
            format!("{lo}.5")
        };
        h == l + 1 && exact(v) == mid
    }

    /// Go's rule stated directly: the shortest digits that read back, and
    /// where Rust's `Display` (ties upward) differs, the case is a tie and
    /// Go's choice ends in an even digit.
    fn check_f(v: f64) -> Result<(), proptest::test_runner::TestCaseError> {
        let go = format_go_f(v);
        proptest::prop_assert_eq!(go.parse::<f64>().map(f64::to_bits), Ok(v.to_bits()));
        let rust = format!("{v}");
        if go != rust {
            proptest::prop_assert!(is_tie(v, &go, &rust), "{} vs {}", go, rust);
            let last = go.as_bytes()[go.len() - 1];
            proptest::prop_assert!((last - b'0').is_multiple_of(2), "{}", go);
        }
        Ok(())
    }

    #[test]
    fn the_tie_that_display_gets_wrong_is_seen_as_a_tie() {
        let v = f64::from_bits(4834713587650439537);
        assert!(is_tie(v, "1713696777316956.2", "1713696777316956.3"));
        assert!(!is_tie(v, "1713696777316956.2", "1713696777316956.4"));
        assert!(check_f(v).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn f_is_shortest_round_trip_with_ties_to_even(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            check_f(v)?;
        }

        #[test]
        fn dashboard_like_values(m in -1_000_000_000i64..1_000_000_000, e in -12i32..12) {
            check_f(m as f64 * 10f64.powi(e))?;
        }

        /// Ties are rare among random bits; these magnitudes (ulp 1/4, 1/8,
        /// 1/16) are full of them.
        #[test]
        fn quarter_ulp_values(i in 0u64..(1 << 52), shift in 2i32..5) {
            // Exact: a 53-bit integer scaled by a power of two.
            check_f(((1u64 << 52) + i) as f64 * 2f64.powi(-shift))?;
        }

        /// %g's digits are 'f''s digits; only the layout differs.
        #[test]
        fn g_and_f_agree(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let g = format_go_g(v).parse::<f64>().map(f64::to_bits);
            proptest::prop_assert_eq!(g, Ok(v.to_bits()));
        }
    }
}
