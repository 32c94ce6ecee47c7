// Cairn's fork: duration expressions, Prometheus's experimental
// `promql-duration-expr` feature (v3.8 `promql/durations.go`).

//! Arithmetic in range, subquery and offset durations: `foo[5m+1m]`,
//! `foo[1h:step()*2]`, `foo offset min(step(), 1m)`. The parser evaluates an
//! expression as soon as it has read it, with `step()` the query's step
//! (0 for an instant query, see [`crate::parser::parse_with_step`]), so the
//! syntax tree holds plain durations as before. Values are seconds in
//! floating point, as in Prometheus; the result is truncated to
//! milliseconds.

use std::time::Duration;

/// A duration Prometheus can hold (Go's `time.Duration`: below 2^63 ns,
/// about 292 years), or "duration out of range": offsets and ranges beyond
/// it would overflow a query's millisecond arithmetic.
pub fn bounded(d: Duration) -> Result<Duration, String> {
    if d.as_nanos() > i64::MAX as u128 {
        return Err("duration out of range".into());
    }
    Ok(d)
}

/// A duration expression as written.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A duration literal (`5m`): kept exact.
    Literal(Duration),
    /// A number of seconds (`300`, `1.5`).
    Number(f64),
    /// `step()`.
    Step,
    /// Unary minus.
    Neg(Box<DurationExpr>),
    Binary(DurationOp, Box<DurationExpr>, Box<DurationExpr>),
}

/// The operators and functions of duration expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Min,
    Max,
}

impl DurationExpr {
    /// A duration literal's token: zero is a valid operand (`[30m+0s]`),
    /// though not a valid range on its own.
    pub fn literal(text: &str) -> Result<Self, String> {
        match crate::util::parse_duration(text) {
            Err(e) if e == "duration must be greater than 0" => {
                Ok(DurationExpr::Literal(Duration::ZERO))
            }
            d => d.map(DurationExpr::Literal),
        }
    }

    pub fn binary(op: DurationOp, lhs: DurationExpr, rhs: DurationExpr) -> Self {
        DurationExpr::Binary(op, Box::new(lhs), Box::new(rhs))
    }

    /// The value in seconds, with `step()` = `step_ms`.
    pub fn seconds(&self, step_ms: i64) -> Result<f64, String> {
        Ok(match self {
            DurationExpr::Literal(d) => d.as_secs_f64(),
            DurationExpr::Number(n) => *n,
            DurationExpr::Step => step_ms as f64 / 1000.0,
            DurationExpr::Neg(e) => -e.seconds(step_ms)?,
            DurationExpr::Binary(op, l, r) => {
                let (l, r) = (l.seconds(step_ms)?, r.seconds(step_ms)?);
                match op {
                    DurationOp::Add => l + r,
                    DurationOp::Sub => l - r,
                    DurationOp::Mul => l * r,
                    DurationOp::Div if r == 0.0 => return Err("division by zero".into()),
                    DurationOp::Div => l / r,
                    DurationOp::Mod if r == 0.0 => return Err("modulo by zero".into()),
                    // Go's math.Mod: the sign of the dividend, as Rust's %.
                    DurationOp::Mod => l % r,
                    DurationOp::Pow => l.powf(r),
                    DurationOp::Min => l.min(r),
                    DurationOp::Max => l.max(r),
                }
            }
        })
    }

    /// The value as a signed number of milliseconds: negative when
    /// `allow_negative`, otherwise it must be greater than 0.
    pub fn millis(&self, step_ms: i64, allow_negative: bool) -> Result<i64, String> {
        let s = self.seconds(step_ms)?;
        if s.is_nan() || (!allow_negative && s <= 0.0) {
            return Err("duration must be greater than 0".into());
        }
        let ms = (s * 1000.0).trunc();
        if !(-9.2e18..=9.2e18).contains(&ms) {
            return Err("duration is out of range".into());
        }
        Ok(ms as i64)
    }

    /// A range or subquery duration: a literal as written (its checks are
    /// the selector's), an expression evaluated and required positive.
    pub fn range(&self, step_ms: i64) -> Result<Duration, String> {
        bounded(match self {
            DurationExpr::Literal(d) if d.is_zero() => {
                return Err("duration must be greater than 0".into())
            }
            DurationExpr::Literal(d) => *d,
            DurationExpr::Number(n) => {
                Duration::try_from_secs_f64(*n).map_err(|_| "duration out of range".to_string())?
            }
            _ => Duration::from_millis(self.millis(step_ms, false)?.unsigned_abs()),
        })
    }

    /// An offset: a duration and whether it is negative.
    pub fn offset(&self, step_ms: i64) -> Result<(bool, Duration), String> {
        let ms = self.millis(step_ms, true)?;
        Ok((ms < 0, bounded(Duration::from_millis(ms.unsigned_abs()))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse, parse_with_step};

    fn same(a: &str, b: &str) {
        assert_eq!(parse(a), parse(b), "{a} vs {b}");
    }

    #[test]
    fn queries_with_duration_expressions() {
        same("foo[5m+1m]", "foo[6m]");
        same("foo[2m*(10+5)]", "foo[30m]");
        same("foo[1h30m % 1h]", "foo[30m]");
        same("foo[30m+0s]", "foo[30m]");
        same("foo[29s+1s:5s+5s]", "foo[30s:10s]");
        same("foo[1h:]", "foo[1h:]");
        same("foo offset (1h / 2)", "foo offset 30m");
        same("foo offset -(1h / 2)", "foo offset -30m");
        // Arithmetic after an offset applies to the selector.
        let shown = |q: &str| parse(q).map(|e| e.to_string());
        assert_eq!(shown("foo offset 2 ^ 2"), Ok("foo offset 2s ^ 2".into()));
        assert_eq!(shown("foo offset -2 ^ 2"), Ok("foo offset -2s ^ 2".into()));
        same("foo offset (-2 ^ 2)", "foo offset -4");
        assert_eq!(
            shown("foo offset min(1m, 2m) + 5"),
            Ok("foo offset 1m + 5".into())
        );
        // step() is the query's step, 0 in an instant query.
        assert_eq!(parse_with_step("foo[step()*2]", 15_000), parse("foo[30s]"));
        assert_eq!(
            parse_with_step("foo offset STEP()", 15_000),
            parse("foo offset 15s")
        );
        assert!(parse("foo[step()]").is_err());
        assert!(parse("foo[1m-1m]").is_err());
        assert!(parse("foo[1m/0]").is_err());
        // "step", "min" and "max" keep their other meanings.
        assert!(parse("step").is_ok());
        assert!(parse(r#"step{step="1"} + sum by (step) (x)"#).is_ok());
        assert!(parse("min(x) + max by (a) (y)").is_ok());
        assert!(parse("foo[m]").is_err());
        // Out-of-range numbers are errors, not panics.
        assert!(parse("foo offset 1e400").is_err());
        assert!(parse("foo offset nan").is_err());
        assert!(parse("foo[1e400]").is_err());
        assert!(parse("foo offset 0x7fffffffffffffff").is_err());
        assert!(parse("foo[300y]").is_err());
        assert!(parse("foo offset 99999999999y").is_err());
        assert!(parse("foo[290y] offset -290y").is_ok());
    }

    fn n(v: f64) -> DurationExpr {
        DurationExpr::Number(v)
    }

    #[test]
    fn arithmetic_in_seconds() {
        let e = DurationExpr::binary(
            DurationOp::Mul,
            DurationExpr::Literal(Duration::from_secs(120)),
            DurationExpr::binary(DurationOp::Add, n(10.0), n(5.0)),
        );
        assert_eq!(e.range(0), Ok(Duration::from_secs(1800)));
        let step = DurationExpr::binary(DurationOp::Add, DurationExpr::Step, n(0.001));
        assert_eq!(step.range(10_000), Ok(Duration::from_millis(10_001)));
        assert!(DurationExpr::Step.range(0).is_err());
        let neg = DurationExpr::Neg(Box::new(DurationExpr::binary(
            DurationOp::Pow,
            n(2.0),
            n(2.0),
        )));
        assert_eq!(neg.offset(0), Ok((true, Duration::from_secs(4))));
        let div = DurationExpr::binary(DurationOp::Div, n(1.0), n(0.0));
        assert_eq!(div.range(0), Err("division by zero".into()));
        let m = DurationExpr::binary(DurationOp::Mod, n(-7.0), n(4.0));
        assert_eq!(m.seconds(0), Ok(-3.0));
    }
}
