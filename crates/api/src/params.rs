//! Request parameters and Prometheus's time and duration parameter syntax.
//!
//! Times are Unix seconds (fractions allowed, rounded to the millisecond) or
//! RFC 3339 strings. Durations are float seconds or Prometheus durations
//! (`5m`, `1h30m`).

use cairn_model::{parse_duration_or_seconds, Matcher, ModelError};

use crate::reply::Fail;
use crate::selectors::parse_selector;

/// Parameters of a request in arrival order (query string, then form body).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first non-empty value of `name`.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// The time parameter `name` in ms, `default` when absent or empty.
pub(crate) fn param_time(p: &Params, name: &str, default: i64) -> Result<i64, Fail> {
    match p.non_empty(name) {
        None => Ok(default),
        Some(v) => parse_time_param(v)
            .map_err(|e| Fail::BadData(format!("invalid parameter {name:?}: {e}"))),
    }
}

/// The `limit` parameter; 0 (no limit) when absent or empty.
pub(crate) fn param_limit(p: &Params) -> Result<usize, Fail> {
    match p.non_empty("limit") {
        None => Ok(0),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n as usize),
            _ => Err(Fail::BadData("limit must be non-negative".into())),
        },
    }
}

/// The matcher sets of every `match[]` parameter, in order.
pub(crate) fn match_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, Fail> {
    let mut out = Vec::new();
    for s in p.all("match[]") {
        let sets = parse_selector(s)
            .map_err(|e| Fail::BadData(format!("invalid parameter \"match[]\": {e}")))?;
        out.extend(sets);
    }
    Ok(out)
}

/// Prometheus's smallest and largest API timestamps, in ms.
pub const MIN_TIME: i64 = -9_223_309_901_257_974;
pub const MAX_TIME: i64 = 9_223_309_901_257_974;

/// Parses a time parameter into ms.
pub fn parse_time_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let secs = f.trunc();
            let frac = ((f - secs) * 1000.0).round();
            let ms = secs * 1000.0 + frac;
            if ms >= i64::MIN as f64 && ms <= i64::MAX as f64 {
                return Ok(ms as i64);
            }
        }
        return Err(format!("cannot parse {s:?} to a valid timestamp"));
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let mut digits: String = frac.chars().take(3).collect();
        while digits.len() < 3 {
            digits.push('0');
        }
        ms = digits.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let sign = if *c == b'-' { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Parses a duration parameter (float seconds or a Prometheus duration)
/// into ms, with the messages of Prometheus's API.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    parse_duration_or_seconds(s).map_err(|e| match e {
        ModelError::SecondsOverflow { .. } => e.to_string(),
        _ => format!("cannot parse {s:?} to a valid duration"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time_param("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time_param("1"), Ok(1000));
        assert_eq!(
            parse_time_param("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time_param("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert_eq!(parse_time_param("1970-01-01T00:00:00Z"), Ok(0));
        assert!(parse_time_param("yesterday").is_err());
        assert!(parse_time_param("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_param("15"), Ok(15_000));
        assert_eq!(parse_duration_param("0.5"), Ok(500));
        assert_eq!(parse_duration_param("1m30s"), Ok(90_000));
        assert_eq!(
            parse_duration_param("1e300"),
            Err("cannot parse \"1e300\" to a valid duration. It overflows int64".into())
        );
        assert_eq!(
            parse_duration_param("x"),
            Err("cannot parse \"x\" to a valid duration".into())
        );
        assert_eq!(
            parse_duration_param(""),
            Err("cannot parse \"\" to a valid duration".into())
        );
    }
}
