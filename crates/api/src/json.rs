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
        let _ = write!(out, "{secs}");
    } else if t >= 0 {
        // The fraction's digits without trailing zeros, written in place.
        let _ = write!(out, "{secs}.");
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
        let _ = write!(out, "{v}");
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
