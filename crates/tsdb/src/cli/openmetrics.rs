//! A parser for the OpenMetrics text format, enough for backfilling.
//!
//! Yields one [`OmSample`] per sample line with its full label set
//! (`__name__` included, labels sorted). `# HELP`, `# TYPE` and `# UNIT`
//! lines are returned as metadata entries; other comments are skipped.
//! Input must end with `# EOF`; anything after it is an error.
//! Timestamps are seconds (fractions allowed) and are converted to
//! milliseconds by truncating `seconds * 1000` toward zero, as Prometheus's
//! parser does. Exemplars (` # {...} v [t]`) are skipped.

use cairn_model::{Labels, LabelsBuilder, METRIC_NAME};

use crate::{Result, TsdbError};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct OmSample {
    pub labels: Labels,
    /// Milliseconds, if the line had a timestamp.
    pub t: Option<i64>,
    pub v: f64,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum OmEntry {
    Sample(OmSample),
    /// `# TYPE name kind`
    Type {
        name: String,
        kind: String,
    },
    /// `# HELP name text`
    Help {
        name: String,
        text: String,
    },
    /// `# UNIT name unit`
    Unit {
        name: String,
        unit: String,
    },
}

/// Iterates the entries of an OpenMetrics text.
pub struct OmParser<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    eof: bool,
    failed: bool,
}

impl<'a> OmParser<'a> {
    /// A parser over `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().enumerate(),
            eof: false,
            failed: false,
        }
    }
}

fn err(line: usize, msg: impl Into<String>) -> TsdbError {
    TsdbError::Parse {
        line: line + 1,
        msg: msg.into(),
    }
}

impl Iterator for OmParser<'_> {
    type Item = Result<OmEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let Some((n, line)) = self.lines.next() else {
                if self.eof {
                    return None;
                }
                self.failed = true;
                return Some(Err(err(0, "data does not end with # EOF")));
            };
            if self.eof {
                if line.trim().is_empty() {
                    continue;
                }
                self.failed = true;
                return Some(Err(err(n, "unexpected data after # EOF")));
            }
            if line.trim().is_empty() {
                continue;
            }
            let r = if let Some(c) = line.strip_prefix('#') {
                match parse_comment(c) {
                    Comment::Eof => {
                        self.eof = true;
                        continue;
                    }
                    Comment::Skip => continue,
                    Comment::Entry(e) => Ok(e),
                }
            } else {
                parse_sample(line)
                    .map(OmEntry::Sample)
                    .map_err(|m| err(n, m))
            };
            if r.is_err() {
                self.failed = true;
            }
            return Some(r);
        }
    }
}

enum Comment {
    Eof,
    Skip,
    Entry(OmEntry),
}

fn parse_comment(c: &str) -> Comment {
    let c = c.trim_start();
    if c.trim_end() == "EOF" {
        return Comment::Eof;
    }
    let mut parts = c.splitn(3, ' ');
    let (kw, name, rest) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let Some(name) = name.map(str::to_owned) else {
        return Comment::Skip;
    };
    match kw {
        Some("TYPE") => Comment::Entry(OmEntry::Type {
            name,
            kind: rest.trim().to_owned(),
        }),
        Some("HELP") => Comment::Entry(OmEntry::Help {
            name,
            text: unescape(rest),
        }),
        Some("UNIT") => Comment::Entry(OmEntry::Unit {
            name,
            unit: rest.trim().to_owned(),
        }),
        _ => Comment::Skip,
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn take_name(s: &str) -> Option<(&str, &str)> {
    let first = s.chars().next()?;
    if !is_name_start(first) {
        return None;
    }
    let end = s.find(|c| !is_name_char(c)).unwrap_or(s.len());
    Some(s.split_at(end))
}

fn parse_sample(line: &str) -> std::result::Result<OmSample, String> {
    let (name, mut rest) =
        take_name(line).ok_or_else(|| format!("invalid metric name in {line:?}"))?;
    let mut b = LabelsBuilder::new();
    b.set(METRIC_NAME, name);
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut b)?;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("expected a space before the value in {line:?}"))?;
    let (body, _exemplar) = match rest.find(" # ") {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut fields = body.split(' ');
    let v = fields.next().unwrap_or("");
    let v = parse_float(v).ok_or_else(|| format!("invalid value {v:?}"))?;
    let t = match fields.next() {
        None => None,
        Some(ts) => {
            let secs = parse_float(ts).ok_or_else(|| format!("invalid timestamp {ts:?}"))?;
            if !secs.is_finite() {
                return Err(format!("invalid timestamp {ts:?}"));
            }
            Some((secs * 1000.0) as i64)
        }
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(OmSample {
        labels: b.build(),
        t,
        v,
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Parses `name="value",...}` and returns what follows the `}`.
fn parse_labels<'s>(mut s: &'s str, b: &mut LabelsBuilder) -> std::result::Result<&'s str, String> {
    let mut seen: Vec<String> = Vec::new();
    loop {
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let (name, r) = take_name(s).ok_or_else(|| format!("invalid label name at {s:?}"))?;
        let r = r
            .strip_prefix("=\"")
            .ok_or_else(|| format!("expected =\" after label {name:?}"))?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {name:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, '\\')) => val.push('\\'),
                    Some((_, '"')) => val.push('"'),
                    Some((_, c)) => return Err(format!("invalid escape \\{c} in label {name:?}")),
                    None => return Err(format!("unterminated value of label {name:?}")),
                },
                Some((_, c)) => val.push(c),
            }
        };
        if name == METRIC_NAME || seen.iter().any(|n| n == name) {
            return Err(format!("duplicate label {name:?}"));
        }
        seen.push(name.to_owned());
        b.set(name, &val);
        s = r.get(end + 1..).unwrap_or("");
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("expected , or }} after label {name:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;
    use proptest::prelude::*;

    #[test]
    fn parses_samples_metadata_and_eof() {
        let text = "# HELP foo Some \\n help\n# TYPE foo gauge\nfoo{b=\"x\\\"y\",a=\"1\"} 1.5 1600000000.123\nfoo 2 # {trace=\"a\"} 1 1\nbar_total -Inf 1\n# EOF\n";
        let got: Vec<OmEntry> = OmParser::new(text).collect::<Result<_>>().unwrap();
        assert_eq!(
            got[0],
            OmEntry::Help {
                name: "foo".into(),
                text: "Some \n help".into()
            }
        );
        assert_eq!(
            got[1],
            OmEntry::Type {
                name: "foo".into(),
                kind: "gauge".into()
            }
        );
        assert_eq!(
            got[2],
            OmEntry::Sample(OmSample {
                labels: labels!("__name__" => "foo", "a" => "1", "b" => "x\"y"),
                t: Some(1_600_000_000_123),
                v: 1.5
            })
        );
        assert_eq!(
            got[3],
            OmEntry::Sample(OmSample {
                labels: labels!("__name__" => "foo"),
                t: None,
                v: 2.0
            })
        );
        assert_eq!(
            got[4],
            OmEntry::Sample(OmSample {
                labels: labels!("__name__" => "bar_total"),
                t: Some(1000),
                v: f64::NEG_INFINITY
            })
        );
    }

    #[test]
    fn rejects_missing_eof_and_garbage() {
        assert!(OmParser::new("foo 1 1\n")
            .collect::<Result<Vec<_>>>()
            .is_err());
        assert!(OmParser::new("foo{a=1} 1\n# EOF\n")
            .collect::<Result<Vec<_>>>()
            .is_err());
        assert!(OmParser::new("foo 1\n# EOF\nfoo 2\n")
            .collect::<Result<Vec<_>>>()
            .is_err());
        assert!(OmParser::new("foo abc\n# EOF\n")
            .collect::<Result<Vec<_>>>()
            .is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "[a-z{}=\",# .0-9\\\\\n]{0,80}") {
            let _ = OmParser::new(&s).collect::<Vec<_>>();
        }
    }
}
