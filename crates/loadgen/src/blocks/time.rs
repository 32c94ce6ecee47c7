//! Parsing `--end` (unix seconds or RFC 3339) and printing block bounds.

/// Parses unix seconds (`1700000000`, `1700000000.5`) or an RFC 3339 time
/// (`2024-05-01T00:00:00Z`, `2024-05-01T02:00:00.250+02:00`) into ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} as unix seconds or an RFC 3339 time");
    if let Ok(f) = s.parse::<f64>() {
        let ms = (f * 1000.0).round();
        // Well inside i64 and inside what Prometheus accepts.
        if f.is_finite() && ms.abs() < 9.0e18 {
            return Ok(ms as i64);
        }
        return Err(bad());
    }
    cairn_model::time::parse_rfc3339(s).ok_or_else(bad)
}

/// `ms` as RFC 3339 in UTC, with milliseconds only when there are any.
pub fn format_time(ms: i64) -> String {
    cairn_model::time::format_rfc3339(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_rfc3339() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        for bad in [
            "",
            "yesterday",
            "NaN",
            "inf",
            "2015-07-01",
            "2015-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_what_it_parses() {
        for ms in [
            0,
            1_435_781_451_781,
            1_700_000_000_000,
            -86_400_000,
            951_782_400_000,
        ] {
            assert_eq!(parse_time(&format_time(ms)), Ok(ms), "{}", format_time(ms));
        }
        assert_eq!(format_time(1_435_781_451_000), "2015-07-01T20:10:51Z");
    }
}
