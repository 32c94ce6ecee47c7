//! Calendar functions (`hour`, `day_of_week`, ...) in UTC, on the sample
//! values as Unix seconds or, without an argument, on the evaluation time.

use crate::columns::{Col, Value};
use crate::error::Result;
use crate::plan::{DateFn, Steps};

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

fn date_value(f: DateFn, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    match f {
        DateFn::Hour => (sod / 3600) as f64,
        DateFn::Minute => ((sod % 3600) / 60) as f64,
        DateFn::DayOfMonth => f64::from(d),
        DateFn::DayOfWeek => (days + 4).rem_euclid(7) as f64,
        DateFn::DayOfYear => {
            let mut n = d;
            for mm in 1..m {
                n += days_in_month(y, mm);
            }
            f64::from(n)
        }
        DateFn::DaysInMonth => f64::from(days_in_month(y, m)),
        DateFn::Month => f64::from(m),
        DateFn::Year => y as f64,
    }
}

/// A calendar function of the samples' values (Unix seconds) or, without
/// an argument, of the evaluation time (a series without labels).
pub(super) fn date(f: DateFn, args: Vec<Value>, steps: Steps) -> Result<Value> {
    if args.is_empty() {
        let vals = steps
            .times()
            .map(|t| date_value(f, t.div_euclid(1000)))
            .collect();
        return Ok(Value::Vector(vec![Col::floats(
            cairn_model::Labels::empty(),
            false,
            0,
            vals,
            vec![true; steps.n],
        )]));
    }
    super::math::map(args, move |x, _| {
        if x.is_nan() || x.is_infinite() || x.abs() > 1e17 {
            // Go converts out-of-range floats to the minimum int64.
            return date_value(f, i64::MIN / 1000);
        }
        date_value(f, x as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(date_value(DateFn::DayOfWeek, 0), 4.0);
        assert_eq!(date_value(DateFn::DaysInMonth, 86_400 * 31), 28.0);
        assert_eq!(date_value(DateFn::DayOfYear, 86_400 * 365), 1.0);
    }
}
