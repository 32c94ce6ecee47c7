//! JSON encoding in Prometheus's exact shapes: the envelopes, label sets,
//! points, and (in `result`) the four query result types.
//!
//! Timestamps are seconds as JSON numbers with millisecond precision
//! (`1435781451.781`); sample values are strings as Prometheus v3's
//! `jsonutil.MarshalFloat` writes them: Go's shortest `'f'` formatting
//! (`"1"`, `"0.1"`, `"NaN"`, `"+Inf"`, `"-Inf"`), with an exponent only
//! when `0 < |v| < 1e-6` or `|v| >= 1e21` (`"2.5e-07"`, `"1e+21"`).
//! Prometheus 2.x wrote `'f'` throughout; the numbers are the same.

mod histogram;
mod result;

use std::fmt::Write;

use cairn_model::Labels;
use serde_json::Value;

pub(crate) use result::result_json;

/// Formats a sample value as Prometheus's JSON does (see the module docs).
pub fn format_float(v: f64) -> String {
    let mut s = String::new();
    push_value(&mut s, v);
    s
}

/// Appends `v` as Prometheus v3's `jsonutil.MarshalFloat` writes it
/// (without the quotes): Go's `strconv.FormatFloat(v, 'f', -1, 64)`, but
/// with an exponent (`'e'`, the same text as Go's shortest `'g'` in that
/// range) when `0 < |v| < 1e-6` or `|v| >= 1e21`.
pub(crate) fn push_value(out: &mut String, v: f64) {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-6..1e21).contains(&a) {
        out.push_str(&cairn_model::format_go_g(v));
    } else {
        cairn_model::push_go_f(out, v);
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
    // Same text as format_float, written in place.
    push_value(out, v);
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
    fn points_are_time_and_go_formatted_value() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1e21, "1e+21"),
            (999999999999999900000.0, "999999999999999900000"),
            (-2.5e-7, "-2.5e-07"),
            (1e-6, "0.000001"),
            (1.5e300, "1.5e+300"),
            (6854787109267825.0 / 4.0, "1713696777316956.2"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            let mut out = String::new();
            point(&mut out, 1_500, v);
            assert_eq!(out, format!("[1.5,\"{want}\"]"), "{v}");
            assert_eq!(format_float(v), want);
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
