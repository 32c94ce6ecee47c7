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
    cairn_model::time::parse_rfc3339(s)
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
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
