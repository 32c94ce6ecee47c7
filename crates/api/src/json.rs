//! JSON encoding in Prometheus's exact shapes.
//!
//! Timestamps are seconds as JSON numbers with millisecond precision
//! (`1435781451.781`); sample values are strings in Go's shortest `'f'`
//! formatting (`"1"`, `"0.1"`, `"NaN"`, `"+Inf"`, `"-Inf"`), never exponents.

use std::fmt::Write;

use cairn_model::Labels;
use serde_json::Value;

/// Formats a sample value as Prometheus's JSON does.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-tripping decimal without an
        // exponent, which is what Go's FormatFloat(v, 'f', -1, 64) prints.
        format!("{v}")
    }
}

/// Writes a millisecond timestamp as a JSON number of seconds.
pub fn format_time(t: i64, out: &mut String) {
    let secs = t.div_euclid(1000);
    let ms = t.rem_euclid(1000);
    if ms == 0 {
        out.push_str(itoa::Buffer::new().format(secs));
    } else if t >= 0 {
        // The fraction's digits without trailing zeros, written in place.
        out.push_str(itoa::Buffer::new().format(secs));
        out.push('.');
        let digits = [ms / 100, ms / 10 % 10, ms % 10];
        let keep = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        for d in digits.iter().take(keep) {
            out.push(char::from(b'0' + *d as u8));
        }
    } else {
        let mut frac = format!("{ms:03}");
        while frac.ends_with('0') {
            frac.pop();
        }
        if secs == -1 && t < 0 {
            let _ = write!(
                out,
                "-0.{}",
                format!("{:03}", 1000 - ms).trim_end_matches('0')
            );
        } else if t < 0 {
            // e.g. -1500 ms: div_euclid gives -2 and rem 500; Prometheus prints -1.5.
            let whole = -(t / 1000);
            let rem = (-t) % 1000;
            let mut f = format!("{rem:03}");
            while f.ends_with('0') {
                f.pop();
            }
            let _ = write!(out, "-{whole}.{f}");
        } else {
            let _ = write!(out, "{secs}.{frac}");
        }
    }
}

pub(crate) fn labels_json(l: &Labels, out: &mut String) {
    out.push('{');
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, x.name);
        out.push(':');
        push_str(out, x.value);
    }
    out.push('}');
}

/// Writes finite `v` as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does
/// (and Rust's `Display`): the shortest digits that read back as `v`,
/// never in exponent form. The digits come from `zmij` (several times
/// faster than `Display`, which matters for the thousands of points of a
/// range query), then are laid out without an exponent here.
pub(crate) fn push_finite(out: &mut String, v: f64) {
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
    // The significant digits, and where the decimal point goes among them.
    let mut digits = [0u8; 64];
    let mut n = 0;
    for &b in int.as_bytes().iter().chain(frac.as_bytes()) {
        if let Some(d) = digits.get_mut(n) {
            *d = b;
            n += 1;
        }
    }
    let mut point = int.len() as i32 + exp;
    let mut first = 0;
    while first + 1 < n && digits.get(first) == Some(&b'0') {
        first += 1;
        point -= 1;
    }
    while n > first + 1 && digits.get(n - 1) == Some(&b'0') {
        n -= 1;
    }
    let d = digits.get(first..n).unwrap_or(&[]);
    if neg {
        out.push('-');
    }
    if d == b"0" {
        out.push('0');
        return;
    }
    // Every byte is an ASCII digit.
    let push = |out: &mut String, b: &[u8]| out.extend(b.iter().map(|&c| char::from(c)));
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        push(out, d);
    } else if point as usize >= d.len() {
        push(out, d);
        out.extend(std::iter::repeat_n('0', point as usize - d.len()));
    } else {
        let (a, b) = d.split_at(point as usize);
        push(out, a);
        out.push('.');
        push(out, b);
    }
}

pub(crate) fn push_str(out: &mut String, s: &str) {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f);
    if plain {
        // Nothing to escape: the common case for label names and values.
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // serde_json escapes exactly as JSON requires.
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

pub(crate) fn point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    format_time(t, out);
    out.push_str(",\"");
    if v.is_finite() {
        // Same text as format_float, written in place (no allocation).
        push_finite(out, v);
    } else {
        out.push_str(&format_float(v));
    }
    out.push_str("\"]");
}

/// `{"status":"success","data":<data>[,"warnings":[..]][,"infos":[..]]}`
pub(crate) fn success(data: &str, warnings: &[String], infos: &[String]) -> Vec<u8> {
    let mut s = String::with_capacity(data.len() + 64);
    s.push_str("{\"status\":\"success\",\"data\":");
    s.push_str(data);
    if !warnings.is_empty() {
        s.push_str(",\"warnings\":");
        s.push_str(&Value::from(warnings.to_vec()).to_string());
    }
    if !infos.is_empty() {
        s.push_str(",\"infos\":");
        s.push_str(&Value::from(infos.to_vec()).to_string());
    }
    s.push('}');
    s.into_bytes()
}

/// `{"status":"error","errorType":..,"error":..}`
pub(crate) fn error(kind: &str, msg: &str) -> Vec<u8> {
    serde_json::json!({"status": "error", "errorType": kind, "error": msg})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(-2.5e-7), "-0.00000025");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for s in [
            "",
            "node-1",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{7f}del",
            "ünï",
            "<&>",
            "\u{1}",
        ] {
            let mut fast = String::new();
            push_str(&mut fast, s);
            assert_eq!(fast, Value::String(s.to_owned()).to_string(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn finite_floats_print_like_display(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let mut out = String::new();
            push_finite(&mut out, v);
            proptest::prop_assert_eq!(out, format!("{v}"));
        }

        #[test]
        fn dashboard_like_floats_print_like_display(m in -1_000_000_000i64..1_000_000_000, e in -12i32..12) {
            let v = m as f64 * 10f64.powi(e);
            let mut out = String::new();
            push_finite(&mut out, v);
            proptest::prop_assert_eq!(out, format!("{v}"));
        }
    }

    #[test]
    fn points_format_values_like_format_float() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e21,
            -2.5e-7,
            123.456,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let mut out = String::new();
            point(&mut out, 1_500, v);
            assert_eq!(out, format!("[1.5,\"{}\"]", format_float(v)), "{v}");
        }
    }

    #[test]
    fn times_like_prometheus() {
        let f = |t| {
            let mut s = String::new();
            format_time(t, &mut s);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(1_000), "1");
        assert_eq!(f(1_500), "1.5");
        assert_eq!(f(0), "0");
        assert_eq!(f(-1_500), "-1.5");
        assert_eq!(f(-500), "-0.5");
        assert_eq!(f(-2_000), "-2");
        for (t, want) in [
            (1_050, "1.05"),
            (1_001, "1.001"),
            (1_100, "1.1"),
            (500, "0.5"),
            (7, "0.007"),
            (90, "0.09"),
        ] {
            assert_eq!(f(t), want);
        }
    }
}
