//! The series description language of test scripts:
//! `metric{label="value"} 1 2+3x4 _ stale`.
//!
//! `a+bxn` expands to the n+1 values a, a+b, ..., added cumulatively as
//! Prometheus does (so floating-point results match); `axn` repeats a n+1
//! times; `_` is one missing point and `_xn` n missing points; `stale` is
//! the stale marker. Native histograms are written
//! `{{schema:1 sum:3 count:22 buckets:[5 10 7] offset:1 n_buckets:[..]
//! n_offset:.. z_bucket:.. z_bucket_w:.. custom_values:[..]
//! counter_reset_hint:gauge}}` (one span per sign); `{{..}}xn` repeats one,
//! `{{a}}+{{b}}xn` / `{{a}}-{{b}}xn` add or subtract `b` n times.

use std::sync::Arc;

use cairn_model::{CounterResetHint, FloatHistogram, Labels, LabelsBuilder, Span, STALE_NAN};

/// One point of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqValue {
    Omitted,
    Value(f64),
    Histogram(Arc<FloatHistogram>),
}

/// Why a description could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum DescError {
    /// Malformed input.
    Syntax(String),
}

/// Parses a float as Go's `strconv.ParseInt(s, 0, 64)` then
/// `strconv.ParseFloat` do (scalar expectation lines): hex allowed.
pub fn parse_number(s: &str) -> Option<f64> {
    parse_num(s, true)
}

/// Parses a float in a value sequence, where `0x5` means "0 repeated".
fn parse_value(s: &str) -> Option<f64> {
    parse_num(s, false)
}

fn parse_num(s: &str, hex: bool) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let hex_body = if hex {
        body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))
    } else {
        None
    };
    let v = if let Some(h) = hex_body {
        i64::from_str_radix(h, 16).ok()? as f64
    } else {
        if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return None;
        }
        body.replace('_', "").parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Reads a Go-style double-quoted string starting at `s[0] == '"'`; returns
/// the value and the bytes consumed.
fn quoted(s: &str) -> Result<(String, usize), DescError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '"')) => {}
        _ => return Err(DescError::Syntax("expected '\"'".into())),
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, 'x')) => {
                    let h: String = chars.by_ref().take(2).map(|x| x.1).collect();
                    let b = u8::from_str_radix(&h, 16)
                        .map_err(|_| DescError::Syntax("bad \\x escape".into()))?;
                    out.push(char::from(b));
                }
                Some((_, 'u')) => {
                    let h: String = chars.by_ref().take(4).map(|x| x.1).collect();
                    let cp = u32::from_str_radix(&h, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| DescError::Syntax("bad \\u escape".into()))?;
                    out.push(cp);
                }
                Some((_, o)) => {
                    out.push('\\');
                    out.push(o);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(DescError::Syntax("unterminated string".into()))
}

fn is_ident_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Parses `metric{labels}` at the start of `s`; returns labels and the rest.
pub fn parse_metric(s: &str) -> Result<(Labels, &str), DescError> {
    let s = s.trim_start();
    let mut b = LabelsBuilder::new();
    let name_len = s
        .char_indices()
        .take_while(|&(i, c)| is_ident_char(c, i == 0))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    if name_len > 0 {
        b.set(cairn_model::METRIC_NAME, s.get(..name_len).unwrap_or(""));
    }
    let mut rest = s.get(name_len..).unwrap_or("");
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
                continue;
            }
            // A label name (bare or quoted), or a quoted metric name.
            let (lname, used) = if rest.starts_with('"') {
                quoted(rest)?
            } else {
                let n = rest
                    .char_indices()
                    .take_while(|&(i, c)| is_ident_char(c, i == 0) && c != ':')
                    .map(|(i, c)| i + c.len_utf8())
                    .last()
                    .unwrap_or(0);
                if n == 0 {
                    return Err(DescError::Syntax(format!("bad label list near {rest:?}")));
                }
                (rest.get(..n).unwrap_or("").to_owned(), n)
            };
            rest = rest.get(used..).unwrap_or("").trim_start();
            if let Some(r) = rest.strip_prefix('=') {
                rest = r.trim_start();
                let (v, used) = quoted(rest)?;
                b.set(&lname, &v);
                rest = rest.get(used..).unwrap_or("");
            } else {
                b.set(cairn_model::METRIC_NAME, &lname);
            }
        }
    } else if name_len == 0 {
        return Err(DescError::Syntax(format!("expected a metric near {s:?}")));
    }
    Ok((b.build(), rest))
}

fn parse_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), DescError> {
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if item == "stale" {
        out.push(SeqValue::Value(STALE_NAN));
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: u64 = n
            .parse()
            .map_err(|_| DescError::Syntax(format!("bad item {item:?}")))?;
        for _ in 0..n {
            out.push(SeqValue::Omitted);
        }
        return Ok(());
    }
    if let Some(v) = parse_value(item) {
        out.push(SeqValue::Value(v));
        return Ok(());
    }
    // a[+-b]xn
    let bad = || DescError::Syntax(format!("bad item {item:?}"));
    let xpos = item.rfind('x').ok_or_else(bad)?;
    let n: u64 = item
        .get(xpos + 1..)
        .unwrap_or("")
        .parse()
        .map_err(|_| bad())?;
    let head = item.get(..xpos).unwrap_or("");
    let bytes = head.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(0);
        let prev = bytes.get(i - 1).copied().unwrap_or(0);
        if (c == b'+' || c == b'-') && prev != b'e' && prev != b'E' {
            split = Some(i);
            break;
        }
    }
    match split {
        None => {
            let v = if head == "stale" {
                STALE_NAN
            } else {
                parse_value(head).ok_or_else(bad)?
            };
            for _ in 0..=n {
                out.push(SeqValue::Value(v));
            }
        }
        Some(i) => {
            let mut a = parse_value(head.get(..i).unwrap_or("")).ok_or_else(bad)?;
            let d = parse_value(head.get(i..).unwrap_or("")).ok_or_else(bad)?;
            out.push(SeqValue::Value(a));
            for _ in 0..n {
                a += d;
                out.push(SeqValue::Value(a));
            }
        }
    }
    Ok(())
}

/// Splits a value sequence into items, keeping `{{...}}` literals (and
/// their `+{{..}}xn` / `xn` tails) whole.
fn items(s: &str) -> Result<Vec<&str>, DescError> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let mut end = 0usize;
        let b = rest.as_bytes();
        loop {
            if rest.get(end..).is_some_and(|r| r.starts_with("{{")) {
                let close = rest
                    .get(end..)
                    .and_then(|r| r.find("}}"))
                    .ok_or_else(|| DescError::Syntax("unterminated histogram".into()))?;
                end += close + 2;
                continue;
            }
            match b.get(end) {
                Some(c) if !c.is_ascii_whitespace() => end += 1,
                _ => break,
            }
        }
        out.push(rest.get(..end).unwrap_or(""));
        rest = rest.get(end..).unwrap_or("").trim_start();
    }
    Ok(out)
}

fn syntax(m: impl Into<String>) -> DescError {
    DescError::Syntax(m.into())
}

fn float_list(v: &str) -> Result<Vec<f64>, DescError> {
    let inner = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| syntax(format!("expected [..] in histogram, got {v:?}")))?;
    inner
        .split_whitespace()
        .map(|x| parse_value(x).ok_or_else(|| syntax(format!("bad number {x:?}"))))
        .collect()
}

/// Parses the inside of `{{...}}`.
pub fn parse_histogram(body: &str) -> Result<FloatHistogram, DescError> {
    let mut h = FloatHistogram::default();
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    let (mut off, mut noff) = (0i32, 0i32);
    let mut rest = body.trim();
    while !rest.is_empty() {
        let colon = rest
            .find(':')
            .ok_or_else(|| syntax(format!("bad histogram item near {rest:?}")))?;
        let key = rest.get(..colon).unwrap_or("").trim();
        let after = rest.get(colon + 1..).unwrap_or("").trim_start();
        let vlen = if after.starts_with('[') {
            after.find(']').map(|i| i + 1).unwrap_or(after.len())
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        let val = after.get(..vlen).unwrap_or("");
        rest = after.get(vlen..).unwrap_or("").trim_start();
        let num = || parse_value(val).ok_or_else(|| syntax(format!("bad {key} value {val:?}")));
        let int = || {
            val.parse::<i32>()
                .map_err(|_| syntax(format!("bad {key} value {val:?}")))
        };
        match key {
            "schema" => h.schema = int()?,
            "sum" => h.sum = num()?,
            "count" => h.count = num()?,
            "z_bucket" => h.zero_count = num()?,
            "z_bucket_w" => h.zero_threshold = num()?,
            "buckets" => pos = float_list(val)?,
            "n_buckets" => neg = float_list(val)?,
            "offset" => off = int()?,
            "n_offset" => noff = int()?,
            "custom_values" => h.custom_values = float_list(val)?,
            "counter_reset_hint" => {
                h.counter_reset_hint = match val {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(syntax(format!("bad counter_reset_hint {val:?}"))),
                }
            }
            _ => return Err(syntax(format!("unknown histogram key {key:?}"))),
        }
    }
    if !pos.is_empty() {
        h.positive_spans = vec![Span {
            offset: off,
            length: pos.len() as u32,
        }];
        h.positive_buckets = pos;
    }
    if !neg.is_empty() {
        h.negative_spans = vec![Span {
            offset: noff,
            length: neg.len() as u32,
        }];
        h.negative_buckets = neg;
    }
    Ok(h)
}

/// Reads `{{...}}` at the start of `s`; returns the histogram and the rest.
fn take_histogram(s: &str) -> Result<(FloatHistogram, &str), DescError> {
    let body = s
        .strip_prefix("{{")
        .ok_or_else(|| syntax(format!("expected {{{{ in {s:?}")))?;
    let close = body
        .find("}}")
        .ok_or_else(|| syntax("unterminated histogram"))?;
    let h = parse_histogram(body.get(..close).unwrap_or(""))?;
    Ok((h, body.get(close + 2..).unwrap_or("")))
}

fn parse_histogram_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), DescError> {
    let (base, rest) = take_histogram(item)?;
    if rest.is_empty() {
        out.push(SeqValue::Histogram(Arc::new(base)));
        return Ok(());
    }
    let times = |r: &str| -> Result<u64, DescError> {
        r.strip_prefix('x')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| syntax(format!("bad histogram item {item:?}")))
    };
    if let Some(r) = rest.strip_prefix('x') {
        let n = times(&format!("x{r}"))?;
        let b = Arc::new(base);
        for _ in 0..=n {
            out.push(SeqValue::Histogram(b.clone()));
        }
        return Ok(());
    }
    let (sign, r) = match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
        (Some(r), _) => (1.0, r),
        (_, Some(r)) => (-1.0, r),
        _ => return Err(syntax(format!("bad histogram item {item:?}"))),
    };
    let (inc, r) = take_histogram(r)?;
    let n = times(r)?;
    let mut cur = base;
    out.push(SeqValue::Histogram(Arc::new(cur.clone())));
    for _ in 0..n {
        if cur.schema > inc.schema {
            return Err(syntax(format!(
                "error combining histograms: cannot merge from schema {} to {}",
                inc.schema, cur.schema
            )));
        }
        let next = if sign > 0.0 {
            cur.add(&inc)
        } else {
            cur.sub(&inc)
        };
        cur = next
            .map_err(|_| syntax("cannot combine histograms with incompatible schemas"))?
            .0;
        out.push(SeqValue::Histogram(Arc::new(cur.clone())));
    }
    Ok(())
}

/// Parses a value sequence.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, DescError> {
    let mut out = Vec::new();
    for item in items(s)? {
        if item.starts_with("{{") {
            parse_histogram_item(item, &mut out)?;
        } else {
            parse_item(item, &mut out)?;
        }
    }
    Ok(out)
}

/// Parses a whole description line.
pub fn parse_series(line: &str) -> Result<(Labels, Vec<SeqValue>), DescError> {
    let (l, rest) = parse_metric(line)?;
    let v = parse_values(rest)?;
    Ok((l, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expansions() {
        let (l, v) = parse_series(r#"foo{a="b", "c.d"="e"} 1+2x2 _x2 -1-1x1 3x1 stale"#).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="foo", a="b", c.d="e"}"#);
        let f: Vec<String> = v
            .iter()
            .map(|x| match x {
                SeqValue::Omitted => "_".to_string(),
                SeqValue::Value(f) if cairn_model::is_stale_nan(*f) => "stale".to_string(),
                SeqValue::Value(f) => f.to_string(),
                SeqValue::Histogram(h) => h.test_expression(),
            })
            .collect();
        assert_eq!(f, ["1", "3", "5", "_", "_", "-1", "-2", "3", "3", "stale"]);
        assert_eq!(
            parse_series(r#"{__name__="x"} 1"#).unwrap().0.metric_name(),
            Some("x")
        );
    }

    #[test]
    fn histogram_literals() {
        let (_, v) = parse_series(
            "x {{schema:1 sum:3 count:4 buckets:[1 3] offset:1 counter_reset_hint:gauge}} _ {{count:1 buckets:[1]}}+{{count:2 buckets:[1 1]}}x2 {{}}x1",
        )
        .unwrap();
        let f: Vec<String> = v
            .iter()
            .map(|x| match x {
                SeqValue::Histogram(h) => h.test_expression(),
                SeqValue::Omitted => "_".into(),
                SeqValue::Value(f) => f.to_string(),
            })
            .collect();
        assert_eq!(
            f,
            [
                "{{schema:1 count:4 sum:3 counter_reset_hint:gauge offset:1 buckets:[1 3]}}",
                "_",
                "{{count:1 buckets:[1]}}",
                "{{count:3 buckets:[2 1]}}",
                "{{count:5 buckets:[3 2]}}",
                "{{}}",
                "{{}}",
            ]
        );
        assert!(parse_series("x {{schema:1").is_err());
        assert!(parse_series("x {{bogus:1}}").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = parse_series(&s);
        }

        #[test]
        fn histogram_notation_round_trips(
            schema in -4i32..=8,
            pos in proptest::collection::vec(1u32..100, 0..6),
            neg in proptest::collection::vec(1u32..100, 0..4),
            off in -5i32..5,
            zc in 0u32..10,
            sum in -1000i32..1000,
        ) {
            let mut h = FloatHistogram {
                schema,
                zero_count: f64::from(zc),
                zero_threshold: 0.001,
                sum: f64::from(sum) / 4.0,
                ..Default::default()
            };
            let p: Vec<(i32, f64)> = pos.iter().enumerate().map(|(i, c)| (off + i as i32, f64::from(*c))).collect();
            let n: Vec<(i32, f64)> = neg.iter().enumerate().map(|(i, c)| (i as i32, f64::from(*c))).collect();
            h.count = p.iter().chain(n.iter()).map(|x| x.1).sum::<f64>() + h.zero_count;
            h.from_indexed(&p, &n);
            let text = format!("x {}", h.test_expression());
            let (_, v) = parse_series(&text).unwrap();
            match v.first() {
                Some(SeqValue::Histogram(g)) => prop_assert!(g.approx_eq(&h, |a, b| a == b)),
                other => prop_assert!(false, "parsed {other:?}"),
            }
        }
    }
}
