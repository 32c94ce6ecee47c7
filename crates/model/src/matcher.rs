//! Label matchers: `=`, `!=`, `=~` and `!~`.
//!
//! Regular expressions use RE2 syntax (the `regex` crate implements the same
//! language) and are fully anchored, as in Prometheus: `foo.*` matches a
//! value that *starts* with `foo`, never one that merely contains it. `.`
//! also matches a newline, as Prometheus compiles with `(?s:...)`.
//!
//! A matcher compares against the empty string when the series lacks the
//! label, so `{a!="x"}` selects series without `a`, and `{a=""}` selects only
//! series without `a`.

use std::fmt;

use crate::ModelError;

/// The four matcher kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    /// The PromQL operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

/// A compiled label matcher.
#[derive(Clone)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: Option<crate::matcher::FastRegex>,
}

/// An anchored regex with shortcuts for the shapes dashboards use most.
#[derive(Clone)]
pub(crate) struct FastRegex {
    re: regex::Regex,
    /// Set when the whole expression is an alternation of literals.
    set: Option<Vec<String>>,
    /// Literal prefix every match must start with.
    prefix: String,
}

impl FastRegex {
    fn new(name: &str, v: &str) -> Result<Self, ModelError> {
        let anchored = format!("^(?s:{v})$");
        let re = regex::Regex::new(&anchored).map_err(|e| ModelError::InvalidRegex {
            name: name.to_owned(),
            regex: v.to_owned(),
            reason: e.to_string(),
        })?;
        let (set, prefix) = analyse(v);
        Ok(Self { re, set, prefix })
    }

    fn is_match(&self, s: &str) -> bool {
        if let Some(set) = &self.set {
            return set.iter().any(|x| x == s);
        }
        if !s.starts_with(self.prefix.as_str()) {
            return false;
        }
        self.re.is_match(s)
    }
}

/// Finds literal alternations (`a|b|c`) and literal prefixes (`abc.*`).
fn analyse(v: &str) -> (Option<Vec<String>>, String) {
    use regex_syntax::hir::{HirKind, Literal};
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(v)
    else {
        return (None, String::new());
    };
    fn lit(h: &regex_syntax::hir::Hir) -> Option<String> {
        match h.kind() {
            HirKind::Literal(Literal(b)) => String::from_utf8(b.to_vec()).ok(),
            HirKind::Empty => Some(String::new()),
            HirKind::Concat(parts) => {
                let mut s = String::new();
                for p in parts {
                    s.push_str(&lit(p)?);
                }
                Some(s)
            }
            HirKind::Capture(c) => lit(&c.sub),
            _ => None,
        }
    }
    fn inner(h: &regex_syntax::hir::Hir) -> &regex_syntax::hir::Hir {
        match h.kind() {
            HirKind::Capture(c) => inner(&c.sub),
            _ => h,
        }
    }
    let h = inner(&hir);
    if let Some(s) = lit(h) {
        return (Some(vec![s]), String::new());
    }
    match h.kind() {
        HirKind::Alternation(alts) => {
            let set: Option<Vec<String>> = alts.iter().map(lit).collect();
            (set, String::new())
        }
        HirKind::Concat(parts) => {
            let mut prefix = String::new();
            for p in parts {
                match lit(p) {
                    Some(s) => prefix.push_str(&s),
                    None => break,
                }
            }
            (None, prefix)
        }
        _ => (None, String::new()),
    }
}

impl Matcher {
    /// Builds a matcher, compiling regexes. Fails on an invalid regex.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        let value = value.into();
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(FastRegex::new(&name, &value)?),
            _ => None,
        };
        Ok(Self {
            kind,
            name,
            value,
            re,
        })
    }

    /// `name="value"`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: MatchType::Equal,
            name: name.into(),
            value: value.into(),
            re: None,
        }
    }

    /// True when `v` (the empty string for an absent label) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => self.value == v,
            MatchType::NotEqual => self.value != v,
            MatchType::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// True when the matcher also selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and for regexes that are a plain alternation of literals, the
    /// exact values that match; lets an index look postings up directly.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match self.kind {
            MatchType::Equal => Some(vec![self.value.as_str()]),
            MatchType::Regex => self
                .re
                .as_ref()
                .and_then(|r| r.set.as_ref())
                .map(|s| s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// A literal prefix that every matching value starts with (regexes only;
    /// empty when none is known).
    pub fn prefix(&self) -> &str {
        match (&self.kind, &self.re) {
            (MatchType::Regex, Some(r)) => &r.prefix,
            _ => "",
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        f.write_str(self.kind.as_str())?;
        crate::labels::write_go_quoted(f, &self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(k: MatchType, v: &str) -> Matcher {
        Matcher::new(k, "a", v).unwrap()
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let r = m(MatchType::Regex, "foo.*");
        assert!(r.matches("foobar"));
        assert!(!r.matches("xfoobar"));
        assert!(m(MatchType::Regex, "b").matches("b"));
        assert!(!m(MatchType::Regex, "b").matches("abc"));
        assert!(m(MatchType::Regex, ".*").matches("a\nb"));
    }

    #[test]
    fn alternations_become_sets() {
        let r = m(MatchType::Regex, "a|bb|(c)");
        assert_eq!(r.set_matches(), Some(vec!["a", "bb", "c"]));
        assert!(r.matches("bb"));
        assert!(!r.matches("b"));
        assert_eq!(m(MatchType::Regex, "abc.+").prefix(), "abc");
        assert!(!m(MatchType::Regex, "abc.+").matches("abc"));
    }

    #[test]
    fn empty_value_semantics() {
        assert!(m(MatchType::NotEqual, "x").matches_empty());
        assert!(m(MatchType::Equal, "").matches_empty());
        assert!(!m(MatchType::NotRegex, ".*").matches(""));
        assert!(Matcher::new(MatchType::Regex, "a", "(").is_err());
    }
}
