//! A selector's matchers in the storage vocabulary, and what they say
//! about the series a query can touch.

use cairn_model::{Labels, LabelsBuilder, MatchType, Matcher, METRIC_NAME};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use crate::error::{PromqlError, Result};

/// The matcher lists to select with: one, or one per `or` alternative.
pub(crate) fn matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let conv = |m: &promql_parser::label::Matcher| -> Result<Matcher> {
        let kind = match m.op {
            MatchOp::Equal => MatchType::Equal,
            MatchOp::NotEqual => MatchType::NotEqual,
            MatchOp::Re(_) => MatchType::Regex,
            MatchOp::NotRe(_) => MatchType::NotRegex,
        };
        Matcher::new(kind, m.name.clone(), m.value.clone())
            .map_err(|e| PromqlError::Eval(e.to_string()))
    };
    let mut base = Vec::new();
    if let Some(n) = &vs.name {
        base.push(Matcher::equal(METRIC_NAME, n.clone()));
    }
    for m in &vs.matchers.matchers {
        base.push(conv(m)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut sets = Vec::new();
    for alt in &vs.matchers.or_matchers {
        let mut set = base.clone();
        for m in alt {
            set.push(conv(m)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// The labels of `absent()`'s answer for a selector: its equality
/// matchers, except names matched more than once.
pub(crate) fn absent_labels(vs: &VectorSelector) -> Labels {
    let mut b = LabelsBuilder::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// True when some selector of `expr` would select a series with one of
/// the label sets `l`.
pub(crate) fn selects_any(expr: &Expr, l: &[Labels]) -> bool {
    let hit = |vs: &VectorSelector| -> bool {
        let Ok(sets) = matcher_sets(vs) else {
            return false;
        };
        l.iter().any(|ls| {
            sets.iter()
                .any(|ms| ms.iter().all(|m| m.matches(ls.get(&m.name).unwrap_or(""))))
        })
    };
    match expr {
        Expr::VectorSelector(vs) => hit(vs),
        Expr::MatrixSelector(ms) => hit(&ms.vs),
        Expr::Subquery(sq) => selects_any(&sq.expr, l),
        Expr::Paren(p) => selects_any(&p.expr, l),
        Expr::Unary(u) => selects_any(&u.expr, l),
        Expr::Binary(b) => selects_any(&b.lhs, l) || selects_any(&b.rhs, l),
        Expr::Aggregate(a) => {
            a.param.as_ref().is_some_and(|p| selects_any(p, l)) || selects_any(&a.expr, l)
        }
        Expr::Call(c) => c.args.args.iter().any(|a| selects_any(a, l)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}
