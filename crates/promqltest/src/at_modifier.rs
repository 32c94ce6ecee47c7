//! Pinning every selector of a query with `@`, as Prometheus's runner does
//! to check that `@` makes results independent of the evaluation time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr};

/// Functions whose result depends on the evaluation time even when their
/// arguments are pinned; queries using them are not pinned.
const UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

fn at_time(ms: i64) -> Option<SystemTime> {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// Sets `@` on every selector and subquery without one (not descending into
/// subqueries); false when an unsafe function was seen.
fn walk(e: &mut Expr, at: &SystemTime) -> bool {
    match e {
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(AtModifier::At(*at));
            }
            true
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = Some(AtModifier::At(*at));
            }
            true
        }
        Expr::Subquery(sq) => {
            if sq.at.is_none() {
                sq.at = Some(AtModifier::At(*at));
            }
            true
        }
        Expr::Paren(p) => walk(&mut p.expr, at),
        Expr::Unary(u) => walk(&mut u.expr, at),
        Expr::Binary(b) => walk(&mut b.lhs, at) & walk(&mut b.rhs, at),
        Expr::Aggregate(a) => {
            let p = a.param.as_mut().is_none_or(|p| walk(p, at));
            p & walk(&mut a.expr, at)
        }
        Expr::Call(c) => {
            let mut ok = !UNSAFE.contains(&c.func.name);
            for a in c.args.args.iter_mut() {
                ok &= walk(a, at);
            }
            ok
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => true,
    }
}

/// The query with selectors pinned at `t_ms`, or None when it must not be.
pub(super) fn pin(expr: &Expr, t_ms: i64) -> Option<Expr> {
    let at = at_time(t_ms)?;
    let mut e = expr.clone();
    if walk(&mut e, &at) {
        Some(e)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_selectors_but_not_inside_subqueries_and_skips_unsafe_functions() {
        let e =
            promql_parser::parser::parse("sum(rate(a[5m])) + b + max_over_time(c[5m:1m])").unwrap();
        let p = pin(&e, 60_000).unwrap();
        let s = format!("{p:?}");
        assert_eq!(s.matches("At(").count(), 3, "{s}");
        let e = promql_parser::parser::parse("time() - a").unwrap();
        assert!(pin(&e, 60_000).is_none());
    }
}
