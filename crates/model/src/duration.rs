//! Prometheus's duration syntax: the one parser behind every flag, query
//! parameter and script that takes a duration.
//!
//! [`parse_duration`] follows Prometheus's `model.ParseDuration` (the
//! `prometheus/common` package): one or more `<digits><unit>` terms, units
//! `y` (365 days), `w`, `d`, `h`, `m`, `s`, `ms`, each at most once and
//! from the largest to the smallest (`1h30m`, not `30m1h`); `0` alone is
//! accepted without a unit; no sign, no fraction, no white space. The total
//! must fit Go's `time.Duration` (nanoseconds in an `i64`, about 292 years),
//! so a duration Cairn accepts is one Prometheus accepts.
//!
//! [`parse_duration_or_seconds`] is what Prometheus's HTTP API takes for
//! `step` and `timeout`: a number of seconds (fractions allowed), else a
//! duration as above.
//!
//! Both return whole milliseconds, Cairn's unit of time.
//!
//! [`format_duration`] is the way back, as Prometheus's `model.Duration`
//! prints: the largest units first, weeks and years only when whole.

use crate::ModelError;

/// Nanoseconds per millisecond: Prometheus checks ranges in nanoseconds.
const NANOS_PER_MS: u64 = 1_000_000;

/// The units, largest first, with their length in milliseconds. A term's
/// unit must come after the previous term's in this list.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration in milliseconds as Prometheus's `model.Duration` prints it
/// (`1h30m`, `2w`, `15d`, `1s500ms`, `0s`): each unit from [`UNITS`] in
/// turn, `y` and `w` only when they divide what is left; a minus sign for
/// a negative duration.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut s = String::from(if ms < 0 { "-" } else { "" });
    let mut left = ms.unsigned_abs();
    for (unit, len) in UNITS {
        if (unit == "y" || unit == "w") && !left.is_multiple_of(len) {
            continue;
        }
        if left >= len {
            s.push_str(&(left / len).to_string());
            s.push_str(unit);
            left %= len;
        }
    }
    s
}

/// Parses a Prometheus duration (`5m`, `1h30m`, `15d`, `0`) into
/// milliseconds. See the module docs for the grammar; errors are
/// [`ModelError::EmptyDuration`], [`ModelError::InvalidDuration`],
/// [`ModelError::UnknownDurationUnit`] and [`ModelError::DurationOutOfRange`].
pub fn parse_duration(s: &str) -> Result<i64, ModelError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(ModelError::EmptyDuration),
        _ => {}
    }
    let invalid = || ModelError::InvalidDuration {
        input: s.to_owned(),
    };
    // The total in nanoseconds, as Prometheus sums it.
    let mut total: u64 = 0;
    // Index in UNITS that the next term's unit must come after.
    let mut next_unit = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (num, tail) = rest.split_at(digits);
        let v: u64 = num.parse().map_err(|_| invalid())?;
        let unit_len = tail.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let (unit, tail) = tail.split_at(unit_len);
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(ModelError::UnknownDurationUnit {
                unit: unit.to_owned(),
                input: s.to_owned(),
            });
        };
        if pos < next_unit {
            return Err(invalid());
        }
        next_unit = pos + 1;
        let mult = UNITS.get(pos).map_or(1, |u| u.1) * NANOS_PER_MS;
        // The term alone may reach 2^63 ns; the sum must stay below it.
        if v > (1u64 << 63) / mult {
            return Err(ModelError::DurationOutOfRange {
                input: s.to_owned(),
            });
        }
        total += v * mult;
        if total > i64::MAX as u64 {
            return Err(ModelError::DurationOutOfRange {
                input: s.to_owned(),
            });
        }
        rest = tail;
    }
    // Every unit is whole milliseconds, so the division is exact.
    Ok((total / NANOS_PER_MS) as i64)
}

/// Parses a duration as Prometheus's HTTP API does (`step`, `timeout`):
/// seconds as a decimal number (`15`, `0.5`, `-3`), rounded to the
/// millisecond, or else a duration for [`parse_duration`]. Seconds whose
/// nanoseconds would not fit an `i64` (or that are not finite) are
/// [`ModelError::SecondsOverflow`]; text that is neither form keeps
/// [`parse_duration`]'s error.
pub fn parse_duration_or_seconds(s: &str) -> Result<i64, ModelError> {
    if let Ok(secs) = s.parse::<f64>() {
        let ns = secs * 1e9;
        // 2^63 is the first float past i64::MAX.
        if !ns.is_finite() || ns >= 9_223_372_036_854_775_808.0 || ns < i64::MIN as f64 {
            return Err(ModelError::SecondsOverflow {
                input: s.to_owned(),
            });
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: [i64; 7] = [
        365 * 86_400_000,
        7 * 86_400_000,
        86_400_000,
        3_600_000,
        60_000,
        1_000,
        1,
    ];
    const NAMES: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    /// The largest duration Go's `time.Duration` holds, in whole ms.
    const MAX_MS: i64 = i64::MAX / 1_000_000;

    #[test]
    fn formats_as_prometheus_prints() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(60_000), "1m");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(15 * 86_400_000), "15d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(365 * 86_400_000), "1y");
        assert_eq!(format_duration(1_500), "1s500ms");
        assert_eq!(format_duration(-90_000), "-1m30s");
        // What it prints parses back to the same milliseconds.
        for ms in [1, 999, 61_001, 90 * 86_400_000, 400 * 86_400_000 + 7] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms), "{ms}");
        }
    }

    #[test]
    fn accepts_what_prometheus_accepts() {
        for (s, want) in [
            ("0", 0),
            ("0s", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("15d", 15 * 86_400_000),
            ("2w", 14 * 86_400_000),
            ("1y", 365 * 86_400_000),
            (
                "1y2w3d4h5m6s7ms",
                MS[0] + 2 * MS[1] + 3 * MS[2] + 4 * MS[3] + 5 * MS[4] + 6000 + 7,
            ),
            ("1m0s", 60_000),
            ("007s", 7_000),
            ("90s", 90_000),
            ("9223372036854ms", MAX_MS),
            ("292y24w", 292 * MS[0] + 24 * MS[1]),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        let invalid = |s: &str| ModelError::InvalidDuration { input: s.into() };
        let unknown = |u: &str, s: &str| ModelError::UnknownDurationUnit {
            unit: u.into(),
            input: s.into(),
        };
        let range = |s: &str| ModelError::DurationOutOfRange { input: s.into() };
        for (s, want) in [
            ("", ModelError::EmptyDuration),
            ("5", invalid("5")),
            ("00", invalid("00")),
            ("m", invalid("m")),
            ("-5m", invalid("-5m")),
            ("+5m", invalid("+5m")),
            (" 5m", invalid(" 5m")),
            ("1.5h", unknown(".", "1.5h")),
            ("30m1h", invalid("30m1h")),
            ("1m1m", invalid("1m1m")),
            ("1s1ms1s", invalid("1s1ms1s")),
            ("5x", unknown("x", "5x")),
            ("5mx", unknown("mx", "5mx")),
            ("1hms", unknown("hms", "1hms")),
            ("5 m", unknown(" m", "5 m")),
            ("5m ", unknown("m ", "5m ")),
            ("99999999999999999999s", invalid("99999999999999999999s")),
            ("9223372036855ms", range("9223372036855ms")),
            ("293y", range("293y")),
            ("292y25w", range("292y25w")),
        ] {
            assert_eq!(parse_duration(s), Err(want), "{s:?}");
        }
        assert_eq!(parse_duration("292y"), Ok(292 * MS[0]));
    }

    #[test]
    fn error_texts_are_prometheus_texts() {
        let e = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(e(""), "empty duration string");
        assert_eq!(e("5"), "not a valid duration string: \"5\"");
        assert_eq!(e("5x"), "unknown unit \"x\" in duration \"5x\"");
        assert_eq!(e("300y"), "duration out of range");
    }

    #[test]
    fn seconds_or_duration_like_the_http_api() {
        let f = parse_duration_or_seconds;
        assert_eq!(f("15"), Ok(15_000));
        assert_eq!(f("0.5"), Ok(500));
        assert_eq!(f("-3"), Ok(-3_000));
        assert_eq!(f("0.0004"), Ok(0));
        assert_eq!(f("0.0015"), Ok(2));
        assert_eq!(f("1e3"), Ok(1_000_000));
        assert_eq!(f("1m30s"), Ok(90_000));
        assert_eq!(f("9223372036"), Ok(9_223_372_036_000));
        for s in ["9223372037", "-9223372037", "1e300", "NaN", "inf", "-inf"] {
            assert_eq!(
                f(s),
                Err(ModelError::SecondsOverflow { input: s.into() }),
                "{s}"
            );
        }
        assert_eq!(
            f("x"),
            Err(ModelError::InvalidDuration { input: "x".into() })
        );
        assert_eq!(
            f("1e300").unwrap_err().to_string(),
            "cannot parse \"1e300\" to a valid duration. It overflows int64"
        );
    }

    /// The grammar as one regular expression (the form Prometheus once
    /// used): the oracle for which strings are well formed.
    fn oracle() -> regex::Regex {
        regex::Regex::new("^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")
            .expect("valid regex")
    }

    /// The oracle's value in ms, `None` past Go's range.
    fn oracle_ms(re: &regex::Regex, s: &str) -> Option<Option<i64>> {
        if s == "0" {
            return Some(Some(0));
        }
        if s.is_empty() {
            return None;
        }
        let c = re.captures(s)?;
        let mut total: i128 = 0;
        for (i, ms) in MS.iter().enumerate() {
            if let Some(n) = c.get(2 * i + 2) {
                total += n.as_str().parse::<i128>().ok()? * i128::from(*ms);
            }
        }
        Some((total <= i128::from(MAX_MS)).then_some(total as i64))
    }

    proptest! {
        #[test]
        fn well_formed_terms_sum_up(terms in proptest::collection::vec(0u64..100_000, 7), keep in any::<u8>()) {
            let mut s = String::new();
            let mut want: i128 = 0;
            for (i, n) in terms.iter().enumerate() {
                if keep & (1 << i) != 0 {
                    s.push_str(&format!("{n}{}", NAMES[i]));
                    want += i128::from(*n) * i128::from(MS[i]);
                }
            }
            prop_assume!(!s.is_empty());
            let got = parse_duration(&s);
            if want <= i128::from(MAX_MS) {
                prop_assert_eq!(got, Ok(want as i64), "{}", s);
            } else {
                prop_assert_eq!(got, Err(ModelError::DurationOutOfRange { input: s.clone() }));
            }
        }

        #[test]
        fn agrees_with_the_regex_grammar(s in "[0-9]{0,4}(y|w|d|h|m|s|ms|x|\\.)?[0-9]{0,3}(y|w|d|h|m|s|ms)?[0-9]{0,3}(h|m|s|ms|us)?") {
            let re = oracle();
            match (oracle_ms(&re, &s), parse_duration(&s)) {
                (Some(Some(want)), got) => prop_assert_eq!(got, Ok(want), "{:?}", s),
                (Some(None), got) => prop_assert!(matches!(got, Err(ModelError::DurationOutOfRange { .. })), "{:?}", s),
                (None, got) => prop_assert!(got.is_err(), "{:?} parsed as {:?}", s, got),
            }
        }

        #[test]
        fn huge_terms_never_overflow_silently(n in any::<u64>(), unit in 0usize..7, more in any::<u64>()) {
            let s = format!("{n}{}{}ms", NAMES[unit], more % 1000);
            let got = parse_duration(&s);
            let total = i128::from(n) * i128::from(MS[unit]) + i128::from(more % 1000);
            if unit == 6 {
                prop_assert!(got.is_err());
            } else if total <= i128::from(MAX_MS) {
                prop_assert_eq!(got, Ok(total as i64));
            } else {
                prop_assert!(matches!(got, Err(ModelError::DurationOutOfRange { .. })), "{:?}", got);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
            let _ = parse_duration_or_seconds(&s);
        }

        #[test]
        fn seconds_round_to_the_millisecond(ms in -9_223_372_036_000i64..9_223_372_036_000) {
            let s = format!("{}.{:03}", ms / 1000, (ms % 1000).abs());
            let s = if ms < 0 && ms > -1000 { format!("-{s}") } else { s };
            prop_assert_eq!(parse_duration_or_seconds(&s), Ok(ms), "{}", s);
        }
    }
}
