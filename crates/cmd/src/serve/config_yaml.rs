//! What `/api/v1/status/config` shows: Cairn's effective settings in the
//! shape of a Prometheus configuration file, since Cairn reads none.
//!
//! Only what Cairn's flags really set is written, under the keys a
//! Prometheus file uses for it: `global` (rule evaluation interval,
//! external labels), `alerting` (the Alertmanagers), `rule_files`, and
//! `storage` (out-of-order window, exemplar limit). Durations are written
//! as Prometheus writes them (`1h30m`, `0s`). Nothing about scraping is
//! written: Cairn scrapes nothing.

use std::collections::BTreeMap;

use cairn_model::format_duration;
use serde_yaml_ng::{Mapping, Value};

/// The settings the page shows.
pub(crate) struct Settings<'a> {
    pub(crate) evaluation_interval_ms: i64,
    pub(crate) external_labels: &'a BTreeMap<String, String>,
    pub(crate) alertmanager_urls: &'a [String],
    pub(crate) rule_files: &'a [String],
    pub(crate) ooo_window_ms: i64,
    pub(crate) max_exemplars: u64,
}

fn key(k: &str) -> Value {
    Value::String(k.to_owned())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(key(k), v);
    }
    Value::Mapping(m)
}

/// One Alertmanager of `--alertmanager.url` as an `alertmanagers` entry.
fn alertmanager(url: &str) -> Value {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut entries = vec![
        ("scheme", Value::String(scheme.to_owned())),
        ("api_version", Value::String("v2".into())),
    ];
    let path = path.trim_end_matches('/');
    if !path.is_empty() {
        entries.push(("path_prefix", Value::String(path.to_owned())));
    }
    entries.push((
        "static_configs",
        Value::Sequence(vec![map(vec![(
            "targets",
            Value::Sequence(vec![Value::String(host.to_owned())]),
        )])]),
    ));
    map(entries)
}

/// The YAML text of the page.
pub(crate) fn config_yaml(s: &Settings<'_>) -> String {
    let mut global = vec![(
        "evaluation_interval",
        Value::String(format_duration(s.evaluation_interval_ms)),
    )];
    if !s.external_labels.is_empty() {
        let mut labels = Mapping::new();
        for (k, v) in s.external_labels {
            labels.insert(key(k), Value::String(v.clone()));
        }
        global.push(("external_labels", Value::Mapping(labels)));
    }
    let mut top = vec![("global", map(global))];
    if !s.alertmanager_urls.is_empty() {
        top.push((
            "alerting",
            map(vec![(
                "alertmanagers",
                Value::Sequence(
                    s.alertmanager_urls
                        .iter()
                        .map(|u| alertmanager(u))
                        .collect(),
                ),
            )]),
        ));
    }
    if !s.rule_files.is_empty() {
        top.push((
            "rule_files",
            Value::Sequence(
                s.rule_files
                    .iter()
                    .map(|f| Value::String(f.clone()))
                    .collect(),
            ),
        ));
    }
    top.push((
        "storage",
        map(vec![
            (
                "tsdb",
                map(vec![(
                    "out_of_order_time_window",
                    Value::String(format_duration(s.ooo_window_ms)),
                )]),
            ),
            (
                "exemplars",
                map(vec![(
                    "max_exemplars",
                    Value::Number(s.max_exemplars.into()),
                )]),
            ),
        ]),
    ));
    serde_yaml_ng::to_string(&map(top)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_what_the_flags_set() {
        let labels = BTreeMap::from([("cluster".to_owned(), "gpu-a".to_owned())]);
        let ams = [
            "http://am:9093".to_owned(),
            "https://am2/prefix/".to_owned(),
        ];
        let rules = ["/etc/cairn/*.yml".to_owned()];
        let y = config_yaml(&Settings {
            evaluation_interval_ms: 30_000,
            external_labels: &labels,
            alertmanager_urls: &ams,
            rule_files: &rules,
            ooo_window_ms: 15 * 86_400_000,
            max_exemplars: 100_000,
        });
        assert_eq!(
            y,
            "global:
  evaluation_interval: 30s
  external_labels:
    cluster: gpu-a
alerting:
  alertmanagers:
  - scheme: http
    api_version: v2
    static_configs:
    - targets:
      - am:9093
  - scheme: https
    api_version: v2
    path_prefix: /prefix
    static_configs:
    - targets:
      - am2
rule_files:
- /etc/cairn/*.yml
storage:
  tsdb:
    out_of_order_time_window: 15d
  exemplars:
    max_exemplars: 100000
"
        );
        let none = config_yaml(&Settings {
            evaluation_interval_ms: 60_000,
            external_labels: &BTreeMap::new(),
            alertmanager_urls: &[],
            rule_files: &[],
            ooo_window_ms: 0,
            max_exemplars: 0,
        });
        assert!(
            !none.contains("alerting") && !none.contains("rule_files"),
            "{none}"
        );
    }
}
