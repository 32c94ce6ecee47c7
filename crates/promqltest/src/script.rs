//! Parsing test scripts into commands.

use cairn_model::Labels;
use regex::Regex;

use crate::series::{parse_number, parse_series, DescError, SeqValue};

/// An annotation or error expectation.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    Any,
    Msg(String),
    Re(Regex),
}

impl Expect {
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Expect::Any => true,
            Expect::Msg(m) => m == s,
            Expect::Re(r) => r.is_match(s),
        }
    }
}

/// One `eval` command with its expectations.
#[derive(Debug, Clone, Default)]
pub(crate) struct EvalCmd {
    pub line: usize,
    pub expr: String,
    pub is_range: bool,
    /// Evaluation time of an instant eval.
    pub at: i64,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub fail: bool,
    pub fail_expect: Option<Expect>,
    pub warn: bool,
    pub info: bool,
    pub expect_warn: Vec<Expect>,
    pub expect_info: Vec<Expect>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    /// Expected series in order of appearance.
    pub expected: Vec<(Labels, Vec<SeqValue>)>,
    pub expect_scalar: Option<f64>,
    pub expected_string: Option<String>,
    pub exclude_from_range: bool,
    /// Set by `expect range vector`: the instant query returns a matrix.
    pub range_vector: bool,
    /// A malformed expectation: the eval fails with this message.
    pub invalid: Option<String>,
}

/// A script command.
#[derive(Debug)]
pub(crate) enum Command {
    Clear,
    Load {
        /// Per series, its timestamped points (floats or histograms).
        series: Vec<(Labels, Vec<(i64, SeqValue)>)>,
        /// `load_with_nhcb`: classic histograms are also loaded as native
        /// histograms with custom buckets.
        with_nhcb: bool,
    },
    Eval(Box<EvalCmd>),
    Invalid {
        line: usize,
        msg: String,
    },
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `100ms`, `0`) to ms, as
/// Prometheus's runner does with `model.ParseDuration`.
fn parse_duration(s: &str) -> Option<i64> {
    cairn_model::parse_duration(s).ok()
}

struct Patterns {
    instant: Regex,
    range: Regex,
    expect: Regex,
    expect_range: Regex,
}

fn patterns() -> Option<Patterns> {
    Some(Patterns {
        instant: Regex::new(
            r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
        )
        .ok()?,
        range: Regex::new(
            r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
        )
        .ok()?,
        expect: Regex::new(
            r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$",
        )
        .ok()?,
        expect_range: Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
            .ok()?,
    })
}

/// Unquotes a Go string literal (double-quoted or back-quoted).
fn unquote(s: &str) -> Option<String> {
    if let Some(r) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Some(r.to_owned());
    }
    let wrapped = format!("{{x={s}}}");
    let (labels, rest) = crate::series::parse_metric(&wrapped).ok()?;
    if !rest.trim().is_empty() {
        return None;
    }
    Some(labels.get("x").unwrap_or("").to_owned())
}

/// Parses a whole script. Malformed commands become `Invalid` entries so
/// they count as failures without stopping the run.
pub(crate) fn parse(text: &str) -> Vec<Command> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_owned()
            }
        })
        .collect();
    let Some(p) = patterns() else {
        return vec![Command::Invalid {
            line: 0,
            msg: "internal error: bad patterns".into(),
        }];
    };
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines.get(i).map(String::as_str).unwrap_or("");
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // The block: following lines up to a blank one.
        let mut j = i + 1;
        while j < lines.len() && lines.get(j).is_some_and(|x| !x.is_empty()) {
            j += 1;
        }
        let block: Vec<&str> = lines
            .get(i + 1..j)
            .unwrap_or(&[])
            .iter()
            .map(String::as_str)
            .collect();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
            continue;
        }
        if word.starts_with("load") {
            cmds.push(parse_load(l, &block, i + 1));
        } else if word.starts_with("eval") {
            let (cmd, used) = parse_eval(&p, l, &block, i + 1);
            cmds.push(cmd);
            // An eval ends early after a scalar expectation.
            j = i + 1 + used;
        } else {
            cmds.push(Command::Invalid {
                line: i + 1,
                msg: format!("invalid command {l:?}"),
            });
        }
        i = j;
    }
    cmds
}

fn parse_load(head: &str, block: &[&str], line: usize) -> Command {
    let mut parts = head.split_whitespace();
    let kw = parts.next().unwrap_or("");
    let with_nhcb = kw == "load_with_nhcb";
    let Some(gap) = parts.next().and_then(parse_duration) else {
        return Command::Invalid {
            line,
            msg: format!("invalid load command {head:?}"),
        };
    };
    let mut series = Vec::new();
    for (k, l) in block.iter().enumerate() {
        match parse_series(l) {
            Ok((labels, vals)) => {
                let pts = vals
                    .into_iter()
                    .enumerate()
                    .filter(|(_, v)| !matches!(v, SeqValue::Omitted))
                    .map(|(idx, v)| (idx as i64 * gap, v))
                    .collect();
                series.push((labels, pts));
            }
            Err(DescError::Syntax(m)) => {
                return Command::Invalid {
                    line: line + 1 + k,
                    msg: format!("bad series line {l:?}: {m}"),
                }
            }
        }
    }
    Command::Load { series, with_nhcb }
}

fn parse_expect(p: &Patterns, l: &str, ev: &mut EvalCmd) {
    let Some(c) = p.expect.captures(l) else {
        ev.invalid = Some(format!("invalid expect statement {l:?}"));
        return;
    };
    let kind = c.get(1).map(|m| m.as_str()).unwrap_or("");
    let e = match (
        c.get(2).map(|m| m.as_str()),
        c.get(3).map(|m| m.as_str().trim()),
    ) {
        (Some("msg"), Some(m)) => Expect::Msg(m.to_owned()),
        (Some("regex"), Some(m)) => match Regex::new(m) {
            Ok(r) => Expect::Re(r),
            Err(e) => {
                ev.invalid = Some(format!("bad regex {m:?}: {e}"));
                return;
            }
        },
        _ => Expect::Any,
    };
    match kind {
        "ordered" => ev.ordered = true,
        "fail" => {
            ev.fail = true;
            if ev.fail_expect.is_none() {
                ev.fail_expect = Some(e);
            }
        }
        "warn" => ev.expect_warn.push(e),
        "info" => ev.expect_info.push(e),
        "no_warn" => ev.no_warn = true,
        "no_info" => ev.no_info = true,
        _ => {}
    }
}

/// Parses an eval; returns the command and how many block lines it used.
fn parse_eval(p: &Patterns, head: &str, block: &[&str], line: usize) -> (Command, usize) {
    let mut ev = EvalCmd {
        line,
        ..Default::default()
    };
    let modifier;
    if let Some(c) = p.instant.captures(head) {
        modifier = c.get(1).map(|m| m.as_str().to_owned());
        ev.expr = c.get(3).map(|m| m.as_str().to_owned()).unwrap_or_default();
        let at = c.get(2).map(|m| m.as_str()).unwrap_or("0");
        match parse_duration(at) {
            Some(t) => {
                ev.start = t;
                ev.at = t;
            }
            None => ev.invalid = Some(format!("invalid timestamp definition {at:?}")),
        }
        ev.end = ev.start;
    } else if let Some(c) = p.range.captures(head) {
        modifier = c.get(1).map(|m| m.as_str().to_owned());
        ev.is_range = true;
        ev.expr = c.get(5).map(|m| m.as_str().to_owned()).unwrap_or_default();
        let d = |i: usize| c.get(i).and_then(|m| parse_duration(m.as_str()));
        match (d(2), d(3), d(4)) {
            (Some(a), Some(b), Some(s)) => {
                ev.start = a;
                ev.end = b;
                ev.step = s;
            }
            _ => ev.invalid = Some("invalid range definition".into()),
        }
    } else {
        return (
            Command::Invalid {
                line,
                msg: format!("invalid evaluation command {head:?}"),
            },
            block.len(),
        );
    }
    match modifier.as_deref() {
        Some("fail") => ev.fail = true,
        Some("warn") => ev.warn = true,
        Some("info") => ev.info = true,
        Some("ordered") => ev.ordered = true,
        _ => {}
    }
    let mut used = 0;
    for l in block {
        used += 1;
        if ev.fail && l.starts_with("expected_fail_message") {
            let m = l.trim_start_matches("expected_fail_message").trim();
            ev.fail_expect = Some(Expect::Msg(m.to_owned()));
            break;
        }
        if ev.fail && l.starts_with("expected_fail_regexp") {
            let m = l.trim_start_matches("expected_fail_regexp").trim();
            match Regex::new(m) {
                Ok(r) => ev.fail_expect = Some(Expect::Re(r)),
                Err(e) => ev.invalid = Some(format!("bad regex {m:?}: {e}")),
            }
            break;
        }
        if l.starts_with("expect range vector") {
            match p.expect_range.captures(l) {
                Some(c) => {
                    let d = |i: usize| c.get(i).and_then(|m| parse_duration(m.as_str()));
                    match (d(1), d(2), d(3)) {
                        (Some(a), Some(b), Some(s)) => {
                            ev.start = a;
                            ev.end = b;
                            ev.step = s;
                            ev.at = b;
                            ev.range_vector = true;
                            ev.exclude_from_range = true;
                        }
                        _ => ev.invalid = Some(format!("bad range vector expectation {l:?}")),
                    }
                }
                None => ev.invalid = Some(format!("bad range vector expectation {l:?}")),
            }
            continue;
        }
        if let Some(rest) = l.strip_prefix("expect string") {
            match unquote(rest.trim()) {
                Some(s) => ev.expected_string = Some(s),
                None => ev.invalid = Some(format!("bad string expectation {l:?}")),
            }
            ev.exclude_from_range = true;
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            parse_expect(p, l, &mut ev);
            continue;
        }
        if let Some(f) = parse_number(l) {
            ev.expect_scalar = Some(f);
            break;
        }
        match parse_series(l) {
            Ok((labels, vals)) => {
                if vals.len() > 1 && !ev.is_range && !ev.range_vector {
                    ev.invalid =
                        Some("expecting multiple values in instant evaluation not allowed".into());
                }
                ev.expected.push((labels, vals));
            }
            Err(DescError::Syntax(m)) => ev.invalid = Some(format!("bad expectation {l:?}: {m}")),
        }
    }
    (Command::Eval(Box::new(ev)), used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        let cmds = parse(
            "load 1m\n  a{b=\"c\"} 1 2\n\n# c\neval instant at 1m a\n  expect no_warn\n  a{b=\"c\"} 2\n\neval range from 0 to 1m step 1m a\n  a{b=\"c\"} 1 2\n\nclear\n",
        );
        assert_eq!(cmds.len(), 4);
        match cmds.get(1) {
            Some(Command::Eval(e)) => {
                assert!(e.no_warn);
                assert_eq!(e.start, 60_000);
                assert_eq!(e.expected.len(), 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
