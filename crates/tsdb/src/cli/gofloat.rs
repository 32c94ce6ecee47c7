//! Go's `%g` formatting of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`
//! plus fmt's sign rules), which `promtool tsdb dump` uses for values.
//!
//! Shortest round-tripping digits; exponent form when the decimal exponent
//! is below -4 or at least 6 (shortest mode's threshold), written `e+06`
//! style with at least two exponent digits; `+Inf`, `-Inf`, `NaN`.

/// Formats `v` as Go's `fmt.Sprintf("%g", v)`.
pub fn format_go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "1.2345e-7".
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        // Shortest digits in positional form; Rust prints "1" for 1.0 like Go.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go() {
        // Expected strings are what Go's %g prints (checked against promtool dump).
        let cases = [
            (1.0, "1"),
            (1e6, "1e+06"),
            (1.2e-5, "1.2e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789012.0, "1.23456789012e+11"),
            (100000.0, "100000"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-2.5, "-2.5"),
            (5e-324, "5e-324"),
        ];
        for (v, want) in cases {
            assert_eq!(format_go_g(v), want, "{v:?}");
        }
    }
}
