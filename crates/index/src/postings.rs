//! Turns label matchers into the set of series that satisfy all of them,
//! with Prometheus's semantics (`PostingsForMatchers` in tsdb/querier.go).
//!
//! A series lacking a label is treated as having it set to the empty string,
//! so a matcher that accepts `""` also selects series without the label. The
//! result equals a brute-force filter "every matcher accepts the series'
//! value (or `""`)" but is computed from postings:
//! - matchers that reject `""` intersect the postings of the values they
//!   accept (`=` and literal alternations look values up directly; a literal
//!   regex prefix narrows the values scanned);
//! - `!=` / `!~` that accept `""` on a label some other matcher requires are
//!   subtracted as the postings of the values they reject;
//! - matchers that accept `""` on a label nobody requires subtract the
//!   postings of the values they reject;
//! - when no matcher intersects, the subtraction starts from every series.
//!
//! An empty matcher list selects nothing.

use std::collections::HashSet;

use cairn_model::{MatchType, Matcher};
use roaring::{MultiOps, RoaringTreemap};

use crate::{IndexLike, Result};

fn is_negative(m: &Matcher) -> bool {
    matches!(m.kind, MatchType::NotEqual | MatchType::NotRegex)
}

/// Series matching `m` among those that have label `m.name` set.
fn postings_for_matcher<I: IndexLike + ?Sized>(ix: &I, m: &Matcher) -> Result<RoaringTreemap> {
    if let Some(set) = m.set_matches() {
        let mut lists = Vec::with_capacity(set.len());
        for v in set {
            lists.push(ix.postings(&m.name, v)?);
        }
        return Ok(lists.into_iter().union());
    }
    ix.postings_for_label_matching(&m.name, m.prefix(), &mut |v| m.matches(v))
}

/// Series that have label `m.name` set to a value `m` rejects.
fn postings_rejected_by<I: IndexLike + ?Sized>(ix: &I, m: &Matcher) -> Result<RoaringTreemap> {
    match m.kind {
        // Rejected by `!=v` is exactly `=v`.
        MatchType::NotEqual => ix.postings(&m.name, &m.value),
        // Rejected by `!~re` is accepted by `=~re`, which may have a fast path.
        MatchType::NotRegex => {
            match Matcher::new(MatchType::Regex, m.name.clone(), m.value.clone()) {
                Ok(inv) => postings_for_matcher(ix, &inv),
                Err(_) => ix.postings_for_label_matching(&m.name, "", &mut |v| !m.matches(v)),
            }
        }
        _ => ix.postings_for_label_matching(&m.name, "", &mut |v| !m.matches(v)),
    }
}

/// Series selected by every matcher in `ms`, with Prometheus semantics (see
/// the module docs).
pub fn postings_for_matchers<I: IndexLike + ?Sized>(
    ix: &I,
    ms: &[Matcher],
) -> Result<RoaringTreemap> {
    if ms.is_empty() {
        return Ok(RoaringTreemap::new());
    }
    // Labels that must be present because some matcher rejects "".
    let must_be_set: HashSet<&str> = ms
        .iter()
        .filter(|m| !m.matches_empty())
        .map(|m| m.name.as_str())
        .collect();
    let subtracting = |m: &Matcher| {
        !must_be_set.contains(m.name.as_str()) || (is_negative(m) && m.matches_empty())
    };

    let mut its: Vec<RoaringTreemap> = Vec::new();
    let mut not_its: Vec<RoaringTreemap> = Vec::new();
    if ms.iter().all(subtracting) {
        its.push(ix.all_postings()?);
    }
    for m in ms {
        if must_be_set.contains(m.name.as_str()) {
            let matches_empty = m.matches_empty();
            if is_negative(m) && matches_empty {
                // {l!="foo"} with l required elsewhere: drop the "foo" series.
                not_its.push(postings_rejected_by(ix, m)?);
            } else {
                // {l="a"}, {l=~"a.+"}, {l!=""}, {l!~"a|"}: keep what it accepts.
                let p = if is_negative(m) {
                    ix.postings_for_label_matching(&m.name, "", &mut |v| m.matches(v))?
                } else {
                    postings_for_matcher(ix, m)?
                };
                if p.is_empty() {
                    return Ok(p);
                }
                its.push(p);
            }
        } else {
            // Accepts "": keep everything except series whose value it rejects.
            not_its.push(postings_rejected_by(ix, m)?);
        }
    }

    its.sort_by_key(RoaringTreemap::len);
    let mut it = its.into_iter();
    let Some(mut acc) = it.next() else {
        return Ok(RoaringTreemap::new());
    };
    for p in it {
        if acc.is_empty() {
            return Ok(acc);
        }
        acc &= p;
    }
    for n in &not_its {
        if acc.is_empty() {
            break;
        }
        acc -= n;
    }
    Ok(acc)
}
