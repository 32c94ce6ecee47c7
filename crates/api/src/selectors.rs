//! Series selectors in `match[]` parameters.

use cairn_model::{MatchType, Matcher};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

/// Parses one `match[]` selector into matcher sets (more than one when the
/// selector uses `or` between matcher groups). Errors carry the parser's message.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = promql_parser::parser::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "1:1: parse error: unexpected expression, expected a series selector: {s}"
        ));
    };
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
}
