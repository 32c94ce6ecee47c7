//! Series selectors: in `match[]` parameters, and every selector of a
//! query (what `/api/v1/query_exemplars` selects series by).

use cairn_model::{MatchType, Matcher};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

/// Parses one `match[]` selector into matcher sets (more than one when the
/// selector uses `or` between matcher groups). Errors carry the parser's message.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = promql_parser::parser::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "1:1: parse error: unexpected expression, expected a series selector: {s}"
        ));
    };
    selector_sets(&vs)
}

/// The matcher sets of every vector and matrix selector in `expr`, in the
/// order they appear (Prometheus's `parser.ExtractSelectors`).
pub fn extract_selectors(expr: &Expr) -> Result<Vec<Vec<Matcher>>, String> {
    let mut out = Vec::new();
    walk(expr, &mut out)?;
    Ok(out)
}

fn walk(e: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), String> {
    match e {
        Expr::VectorSelector(vs) => out.extend(selector_sets(vs)?),
        Expr::MatrixSelector(ms) => out.extend(selector_sets(&ms.vs)?),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, out)?;
            }
            walk(&a.expr, out)?;
        }
        Expr::Unary(u) => walk(&u.expr, out)?,
        Expr::Binary(b) => {
            walk(&b.lhs, out)?;
            walk(&b.rhs, out)?;
        }
        Expr::Paren(p) => walk(&p.expr, out)?,
        Expr::Subquery(s) => walk(&s.expr, out)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// One selector's matcher sets (more than one with `or` groups).
fn selector_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, String> {
    let mut base = Vec::new();
    if let Some(n) = &vs.name {
        base.push(Matcher::equal("__name__", n.clone()));
    }
    let conv = |m: &promql_parser::label::Matcher| -> Result<Matcher, String> {
        let kind = match &m.op {
            MatchOp::Equal => MatchType::Equal,
            MatchOp::NotEqual => MatchType::NotEqual,
            MatchOp::Re(_) => MatchType::Regex,
            MatchOp::NotRe(_) => MatchType::NotRegex,
        };
        Matcher::new(kind, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
    };
    let mut sets = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        let mut set = base.clone();
        for m in &vs.matchers.matchers {
            set.push(conv(m)?);
        }
        sets.push(set);
    } else {
        for group in &vs.matchers.or_matchers {
            let mut set = base.clone();
            for m in group {
                set.push(conv(m)?);
            }
            sets.push(set);
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = parse_selector(r#"up{job=~"a|b"}"#).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].len(), 2);
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector("{").is_err());
    }

    #[test]
    fn every_selector_of_a_query() {
        let e = promql_parser::parser::parse(
            r#"sum by (job) (rate(a{x="1"}[5m])) / on() group_left -b + histogram_quantile(0.9, c) > bool 3"#,
        )
        .unwrap();
        let sets = extract_selectors(&e).unwrap();
        let names: Vec<&str> = sets
            .iter()
            .map(|s| {
                s.iter()
                    .find(|m| m.name == "__name__")
                    .map_or("", |m| m.value.as_str())
            })
            .collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(sets[0].len(), 2);
        let e = promql_parser::parser::parse("1 + 2").unwrap();
        assert!(extract_selectors(&e).unwrap().is_empty());
    }
}
