//! Rule files in Prometheus's format, parsed and checked as
//! `promtool check rules` checks them.
//!
//! ```yaml
//! groups:
//!   - name: gpu
//!     interval: 30s          # default: --rule.evaluation-interval
//!     query_offset: 0s
//!     limit: 0               # most series or alerts a rule may produce; 0: no limit
//!     labels: {team: ml}     # added to every rule's output
//!     rules:
//!       - record: namespace:gpu_hours:rate1h
//!         expr: sum by (namespace) (rate(gpu_seconds_total[1h])) / 3600
//!       - alert: GpuFellOffTheBus
//!         expr: DCGM_FI_DEV_XID_ERRORS == 79
//!         for: 1m
//!         keep_firing_for: 5m
//!         labels: {severity: page}
//!         annotations: {summary: "GPU {{ $labels.gpu }} on {{ $labels.Hostname }}"}
//! ```
//!
//! Contracts: unknown keys are errors (as in Prometheus); group names are
//! unique in a file; a rule has exactly one of `record` and `alert`; `for`,
//! `keep_firing_for` and `annotations` belong to alerts only; expressions
//! must parse; templates must be ones `template` supports. Errors name the
//! file, the group, the rule and, where it can be found, the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, RulesError};
use crate::template::Template;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    interval: Option<String>,
    query_offset: Option<String>,
    limit: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<serde_yaml_ng::Value>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A checked group of rules.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub file: PathBuf,
    /// Evaluation interval (ms).
    pub interval: i64,
    /// How far before each evaluation time the queries look (ms).
    pub query_offset: i64,
    /// Most series (recording) or alerts (alerting) one rule may produce; 0: any.
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub expr: String,
    /// Labels set on the output (the group's first, the rule's over them);
    /// alert labels are templates.
    pub labels: Vec<(String, Template)>,
    /// The labels as written, for the API.
    pub raw_labels: BTreeMap<String, String>,
}

/// What a rule does with its expression's result.
#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        alert: String,
        /// Pending time before firing (ms).
        hold: i64,
        /// Time an alert keeps firing after its condition is gone (ms).
        keep_firing_for: i64,
        annotations: Vec<(String, Template)>,
        raw_annotations: BTreeMap<String, String>,
    },
}

impl RuleSpec {
    /// The rule's name: the recorded metric or the alert.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

/// Expands `patterns` (globs, as `--rule.file` takes them) into files,
/// sorted and without duplicates. A pattern without glob characters must
/// name an existing file; a glob may match nothing.
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in patterns {
        let is_glob = p.contains(['*', '?', '[']);
        let paths = glob::glob(p).map_err(|e| RulesError::Pattern {
            pattern: p.clone(),
            message: e.to_string(),
        })?;
        let mut n = 0;
        for entry in paths {
            let path = entry.map_err(|e| RulesError::Pattern {
                pattern: p.clone(),
                message: e.to_string(),
            })?;
            if path.is_file() {
                out.push(path);
                n += 1;
            }
        }
        if n == 0 && !is_glob {
            return Err(RulesError::Read {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Reads and checks one rule file; `default_interval` (ms) applies to
/// groups without `interval`.
pub fn load(path: &Path, default_interval: i64) -> Result<Vec<GroupSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    parse(&text, path, default_interval)
}

/// Checks the text of a rule file (see [`load`]).
pub fn parse(text: &str, path: &Path, default_interval: i64) -> Result<Vec<GroupSpec>> {
    let invalid = |message: String| RulesError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            invalid(match e.location() {
                Some(l) => format!("line {}: {e}", l.line()),
                None => e.to_string(),
            })
        })?
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut groups = Vec::with_capacity(raw.groups.len());
    for g in raw.groups {
        let gname = g.name.clone();
        let at = |what: &str| match line_of(text, what) {
            Some(l) => format!("line {l}: group {gname:?}"),
            None => format!("group {gname:?}"),
        };
        if g.name.is_empty() {
            return Err(invalid("a group has no name".into()));
        }
        if !seen.insert(g.name.clone()) {
            return Err(invalid(format!(
                "{}: group name repeated in the same file",
                at(&g.name)
            )));
        }
        let interval = match &g.interval {
            None => default_interval,
            Some(s) => duration(s).map_err(|e| invalid(format!("{}: interval: {e}", at(s))))?,
        };
        if interval <= 0 {
            return Err(invalid(format!(
                "{}: interval must be positive",
                at(&g.name)
            )));
        }
        let query_offset = match &g.query_offset {
            None => 0,
            Some(s) => duration(s).map_err(|e| invalid(format!("{}: query_offset: {e}", at(s))))?,
        };
        let mut rules = Vec::with_capacity(g.rules.len());
        for (i, r) in g.rules.into_iter().enumerate() {
            let rule_at = |name: &str| {
                let line = if name.is_empty() {
                    None
                } else {
                    line_of(text, name)
                };
                match line {
                    Some(l) => format!("line {l}: group {gname:?}, rule {} ({name:?})", i + 1),
                    None => format!("group {gname:?}, rule {} ({name:?})", i + 1),
                }
            };
            rules.push(rule(r, &g.labels, &rule_at).map_err(invalid)?);
        }
        groups.push(GroupSpec {
            name: g.name,
            file: path.to_path_buf(),
            interval,
            query_offset,
            limit: g.limit.unwrap_or(0) as usize,
            rules,
        });
    }
    Ok(groups)
}

fn duration(s: &str) -> std::result::Result<i64, String> {
    cairn_model::parse_duration(s.trim()).map_err(|e| e.to_string())
}

fn rule(
    r: RawRule,
    group_labels: &BTreeMap<String, String>,
    at: &dyn Fn(&str) -> String,
) -> std::result::Result<RuleSpec, String> {
    let name = r.record.clone().or(r.alert.clone()).unwrap_or_default();
    let here = at(&name);
    let expr = match &r.expr {
        None => return Err(format!("{here}: field 'expr' must be set in rule")),
        Some(serde_yaml_ng::Value::String(s)) => s.clone(),
        Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("{here}: expr is not a string: {other:?}")),
    };
    if expr.trim().is_empty() {
        return Err(format!("{here}: field 'expr' must be set in rule"));
    }
    cairn_promql::check_expr(&expr)
        .map_err(|e| format!("{here}: could not parse expression: {e}"))?;
    let mut raw_labels = group_labels.clone();
    raw_labels.extend(r.labels.clone());
    for k in raw_labels.keys() {
        if k.is_empty() || k == "__name__" {
            return Err(format!("{here}: invalid label name {k:?}"));
        }
    }
    let templates = |m: &BTreeMap<String, String>, what: &str| {
        m.iter()
            .map(|(k, v)| {
                Template::parse(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| format!("{here}: {what} {k:?}: {e}"))
            })
            .collect::<std::result::Result<Vec<_>, String>>()
    };
    let kind = match (r.record, r.alert) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{here}: only one of 'record' and 'alert' must be set"
            ))
        }
        (None, None) => return Err(format!("{here}: one of 'record' or 'alert' must be set")),
        (Some(record), None) => {
            if !valid_metric_name(&record) {
                return Err(format!("{here}: invalid recording rule name {record:?}"));
            }
            if r.for_.is_some() || r.keep_firing_for.is_some() {
                return Err(format!(
                    "{here}: invalid field 'for' or 'keep_firing_for' in recording rule"
                ));
            }
            if !r.annotations.is_empty() {
                return Err(format!(
                    "{here}: invalid field 'annotations' in recording rule"
                ));
            }
            for (k, v) in &r.labels {
                if v.contains("{{") {
                    return Err(format!(
                        "{here}: label {k:?}: templates are for alerting rules only"
                    ));
                }
            }
            RuleKind::Recording { record }
        }
        (None, Some(alert)) => {
            if alert.is_empty() {
                return Err(format!("{here}: invalid alert name {alert:?}"));
            }
            let d = |v: &Option<String>, what: &str| match v {
                None => Ok(0),
                Some(s) => duration(s).map_err(|e| format!("{here}: {what}: {e}")),
            };
            RuleKind::Alerting {
                alert,
                hold: d(&r.for_, "for")?,
                keep_firing_for: d(&r.keep_firing_for, "keep_firing_for")?,
                annotations: templates(&r.annotations, "annotation")?,
                raw_annotations: r.annotations.clone(),
            }
        }
    };
    Ok(RuleSpec {
        kind,
        expr,
        labels: templates(&raw_labels, "label")?,
        raw_labels,
    })
}

/// Prometheus's legacy metric-name rule (what `promtool check rules`
/// of 2.x enforces; 3.x accepts more).
fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The first line (1-based) mentioning `needle` as a value.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.split_once(':')
                .is_some_and(|(_, v)| v.trim().trim_matches(['"', '\'']) == needle)
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<GroupSpec>> {
        parse(text, Path::new("r.yml"), 60_000)
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file() {
        let g = p("groups:
  - name: gpu
    interval: 30s
    labels: {team: ml}
    rules:
      - record: namespace:gpu_util:avg
        expr: avg by (namespace) (DCGM_FI_DEV_GPU_UTIL)
      - alert: GpuHot
        expr: DCGM_FI_DEV_GPU_TEMP > 85
        for: 2m
        labels: {severity: page}
        annotations:
          summary: 'GPU {{ $labels.gpu }} at {{ $value }}C'
  - name: other
    rules:
      - record: one
        expr: 1
")
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].interval, g[1].interval), (30_000, 60_000));
        assert_eq!(g[0].rules[0].name(), "namespace:gpu_util:avg");
        assert_eq!(
            g[0].rules[0].raw_labels.get("team").map(String::as_str),
            Some("ml")
        );
        match &g[0].rules[1].kind {
            RuleKind::Alerting {
                hold, annotations, ..
            } => {
                assert_eq!(*hold, 120_000);
                assert_eq!(annotations.len(), 1);
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(g[1].rules[0].expr, "1");
        assert!(p("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_group_rule_and_line() {
        let e = err("groups:\n  - name: a\n    rules:\n      - record: x\n        expr: sum(\n");
        assert!(
            e.contains("line 4") && e.contains("group \"a\", rule 1") && e.contains("parse"),
            "{e}"
        );
        let e = err("groups:\n  - name: a\n    rules:\n      - record: x\n        alert: y\n        expr: up\n");
        assert!(e.contains("only one of"), "{e}");
        let e = err("groups:\n  - name: a\n    rules:\n      - record: x\n        for: 1m\n        expr: up\n");
        assert!(e.contains("'for'"), "{e}");
        let e = err("groups:\n  - name: a\n    rules:\n      - expr: up\n");
        assert!(e.contains("one of 'record' or 'alert'"), "{e}");
        let e = err("groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n");
        assert!(e.contains("repeated"), "{e}");
        let e = err("groups:\n  - name: a\n    bogus: 1\n");
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = err("groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          s: '{{ if $value }}x{{ end }}'\n");
        assert!(e.contains("annotation \"s\""), "{e}");
        let e =
            err("groups:\n  - name: a\n    rules:\n      - record: 'bad name'\n        expr: up\n");
        assert!(e.contains("invalid recording rule name"), "{e}");
    }

    #[test]
    fn globs() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.yml", "b.yml", "c.txt"] {
            std::fs::write(d.path().join(f), "groups: []\n").unwrap();
        }
        let pat = format!("{}/*.yml", d.path().display());
        let got = expand(&[pat.clone(), pat]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(expand(&[format!("{}/none/*.yml", d.path().display())])
            .unwrap()
            .is_empty());
        assert!(expand(&[format!("{}/missing.yml", d.path().display())]).is_err());
    }
}
