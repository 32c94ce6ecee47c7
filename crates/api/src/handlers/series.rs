//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`:
//! label sets, names and values of the stored series.

use std::collections::BTreeSet;

use cairn_model::Labels;
use cairn_storage::SelectHints;

use crate::json::{labels_json, push_str};
use crate::params::{match_sets, param_limit, param_time, Params, MAX_TIME, MIN_TIME};
use crate::reply::{Fail, Out, R};
use crate::Api;

impl Api {
    pub(crate) fn series(&self, p: &Params) -> R {
        let sets = match_sets(p)?;
        if sets.is_empty() {
            return Err(Fail::BadData("no match[] parameter provided".into()));
        }
        let start = param_time(p, "start", MIN_TIME)?;
        let end = param_time(p, "end", MAX_TIME)?;
        let limit = param_limit(p)?;
        let q = self.storage.querier(start, end)?;
        let hints = SelectHints {
            start,
            end,
            func: Some("series".into()),
            ..Default::default()
        };
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for ms in &sets {
            for s in q.select(&hints, ms)? {
                all.insert(s?.labels().clone());
            }
        }
        Ok(json_list(&all, limit, |out, l| labels_json(l, out)))
    }

    pub(crate) fn labels(&self, p: &Params) -> R {
        let sets = match_sets(p)?;
        let start = param_time(p, "start", MIN_TIME)?;
        let end = param_time(p, "end", MAX_TIME)?;
        let limit = param_limit(p)?;
        let q = self.storage.querier(start, end)?;
        let mut names = BTreeSet::new();
        if sets.is_empty() {
            names.extend(q.label_names(&[])?);
        } else {
            for ms in &sets {
                names.extend(q.label_names(ms)?);
            }
        }
        Ok(string_list(names, limit))
    }

    pub(crate) fn label_values(&self, name: &str, p: &Params) -> R {
        let name = crate::url_decode(name);
        let name = unescape_label_name(&name);
        if name.is_empty() || name.contains('/') {
            return Err(Fail::BadData(format!("invalid label name: {name:?}")));
        }
        let sets = match_sets(p)?;
        let start = param_time(p, "start", MIN_TIME)?;
        let end = param_time(p, "end", MAX_TIME)?;
        let limit = param_limit(p)?;
        let q = self.storage.querier(start, end)?;
        let mut vals = BTreeSet::new();
        if sets.is_empty() {
            vals.extend(q.label_values(&name, &[])?);
        } else {
            for ms in &sets {
                vals.extend(q.label_values(&name, ms)?);
            }
        }
        Ok(string_list(vals, limit))
    }
}

/// Label names in paths may use Prometheus's `U__` escaping: `__` is an
/// underscore and `_HEX_` a Unicode code point.
fn unescape_label_name(s: &str) -> String {
    let Some(rest) = s.strip_prefix("U__") else {
        return s.to_owned();
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        while let Some(&h) = chars.peek() {
            chars.next();
            if h == '_' {
                break;
            }
            hex.push(h);
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(ch) => out.push(ch),
            None => return s.to_owned(),
        }
    }
    out
}

fn string_list(items: BTreeSet<String>, limit: usize) -> Out {
    json_list(&items, limit, |out, v| push_str(out, v))
}

/// A JSON array of `items` written by `push`, at most `limit` of them (0:
/// all) with Prometheus's warning when some were cut.
fn json_list<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    limit: usize,
    mut push: impl FnMut(&mut String, &'a T),
) -> Out {
    let mut warnings = Vec::new();
    let mut out = String::from("[");
    for (i, v) in items.into_iter().enumerate() {
        if limit > 0 && i >= limit {
            warnings.push("results truncated due to limit".to_string());
            break;
        }
        if i > 0 {
            out.push(',');
        }
        push(&mut out, v);
    }
    out.push(']');
    Out::warn(out, warnings)
}
