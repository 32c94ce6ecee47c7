//! `/api/v1/metadata` and the `/api/v1/status/*` endpoints, and the empty
//! listings Cairn answers for Prometheus's scrape and rule endpoints (it
//! scrapes nothing: its targets, scrape pools and target metadata are
//! truly empty).

use cairn_storage::Metadata;

use crate::params::{param_limit, Params};
use crate::reply::{Fail, Out, R};
use crate::selectors::parse_selector;
use crate::Api;

impl Api {
    pub(crate) fn metadata(&self, p: &Params) -> R {
        let limit = param_limit(p)?;
        let per_metric = match p.non_empty("limit_per_metric") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| Fail::BadData("limit_per_metric must be a number".into()))?,
        };
        let metric = p.non_empty("metric");
        let mut by_name: std::collections::BTreeMap<String, Vec<Metadata>> = Default::default();
        if let Some(src) = &self.metadata {
            for (n, m) in src.metadata() {
                if metric.is_some_and(|x| x != n) {
                    continue;
                }
                let e = by_name.entry(n).or_default();
                if !e.contains(&m) {
                    e.push(m);
                }
            }
        }
        let mut out = serde_json::Map::new();
        for (n, ms) in by_name {
            if limit > 0 && out.len() >= limit {
                break;
            }
            let list: Vec<serde_json::Value> = ms
                .iter()
                .take(if per_metric > 0 { per_metric } else { usize::MAX })
                .map(|m| serde_json::json!({"type": m.kind.as_str(), "help": m.help, "unit": m.unit}))
                .collect();
            out.insert(n, serde_json::Value::Array(list));
        }
        Ok(Out::data(serde_json::Value::Object(out).to_string()))
    }

    pub(crate) fn buildinfo(&self) -> String {
        let b = &self.cfg.build;
        serde_json::json!({
            "version": b.version, "revision": b.revision, "branch": b.branch,
            "buildUser": b.build_user, "buildDate": b.build_date, "goVersion": b.go_version,
        })
        .to_string()
    }

    pub(crate) fn flags(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .cfg
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(m).to_string()
    }

    /// `/api/v1/alertmanagers`: every configured Alertmanager is active
    /// (Cairn discovers none, so none is dropped).
    pub(crate) fn alertmanagers_json(&self) -> String {
        let active: Vec<serde_json::Value> = self
            .cfg
            .alertmanagers
            .iter()
            .map(|u| serde_json::json!({ "url": u }))
            .collect();
        serde_json::json!({ "activeAlertmanagers": active, "droppedAlertmanagers": [] }).to_string()
    }

    /// `{"yaml": ...}` of `/api/v1/status/config`.
    pub(crate) fn config_json(&self) -> String {
        serde_json::json!({ "yaml": self.cfg.config_yaml }).to_string()
    }

    pub(crate) fn tsdb(&self, p: &Params) -> R {
        let limit = match p.non_empty("limit") {
            None => 10,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(Fail::BadData("limit must be a positive number".into())),
            },
        };
        let s = self
            .stats
            .as_ref()
            .map(|s| s.tsdb_stats(limit))
            .unwrap_or_default();
        let list = |v: &[(String, u64)]| -> Vec<serde_json::Value> {
            v.iter()
                .take(limit)
                .map(|(n, c)| serde_json::json!({"name": n, "value": c}))
                .collect()
        };
        Ok(Out::data(
            serde_json::json!({
                "headStats": {
                    "numSeries": s.num_series, "numLabelPairs": s.num_label_pairs,
                    "chunkCount": s.chunk_count, "minTime": s.min_time, "maxTime": s.max_time,
                },
                "seriesCountByMetricName": list(&s.series_count_by_metric_name),
                "labelValueCountByLabelName": list(&s.label_value_count_by_label_name),
                "memoryInBytesByLabelName": list(&s.memory_in_bytes_by_label_name),
                "seriesCountByLabelValuePair": list(&s.series_count_by_label_value_pair),
            })
            .to_string(),
        ))
    }
}

impl Api {
    /// Prometheus's runtime information (`RuntimeInfo` in its API): the
    /// Go runtime's fields get their nearest meaning here (`goroutineCount`:
    /// the process's threads; `GOMAXPROCS`: the cores), or Go's value for
    /// "not set" (`GOMEMLIMIT`, `GOGC`, `GODEBUG`).
    pub(crate) fn runtimeinfo(&self) -> String {
        let now = super::now_ms();
        let r = self.runtime.as_ref().map(|f| f()).unwrap_or(RuntimeState {
            reload_success: true,
            last_config_ms: self.cfg.start_time_ms,
            corruptions: 0,
        });
        let fmt = cairn_model::time::format_rfc3339;
        serde_json::json!({
            "startTime": fmt(self.cfg.start_time_ms),
            "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "hostname": hostname(),
            "serverTime": fmt(now),
            "reloadConfigSuccess": r.reload_success,
            "lastConfigTime": fmt(r.last_config_ms),
            "corruptionCount": r.corruptions,
            "goroutineCount": threads(),
            "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "GOMEMLIMIT": i64::MAX, "GOGC": "", "GODEBUG": "",
            "storageRetention": self.cfg.storage_retention,
        })
        .to_string()
    }
}

/// What the runtime information reads from the server as it runs (see
/// [`Api::with_runtime`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeState {
    /// Whether the last load of the configuration (Cairn: the rule files)
    /// succeeded, and when the last successful one was (ms).
    pub reload_success: bool,
    pub last_config_ms: i64,
    /// Damaged WAL tails the replay found.
    pub corruptions: u64,
}

/// The machine's host name (Linux), or empty.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The process's threads (Linux), or 0.
fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn empty_listing(what: &str) -> String {
    match what {
        "rules" => r#"{"groups":[]}"#.into(),
        _ => r#"{"alerts":[]}"#.into(),
    }
}

/// `/api/v1/targets`: Cairn scrapes nothing (Prometheus servers send it
/// samples), so it has no active or dropped target: Prometheus 3's answer
/// for a server without scrape configs, `droppedTargetCounts` included
/// (`null` when `state` leaves dropped targets out, as Prometheus's nil
/// map marshals).
pub(crate) fn targets(p: &Params) -> String {
    let state = p.get("state").unwrap_or("").to_ascii_lowercase();
    let dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let counts = if dropped {
        serde_json::json!({})
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({
        "activeTargets": [],
        "droppedTargets": [],
        "droppedTargetCounts": counts,
    })
    .to_string()
}

/// `/api/v1/targets/metadata`: the metadata of scraped targets, of which
/// Cairn has none (what remote write sent is `/api/v1/metadata`'s). The
/// parameters are checked as Prometheus checks them.
pub(crate) fn target_metadata(p: &Params) -> Result<String, Fail> {
    if let Some(l) = p.non_empty("limit") {
        l.parse::<i64>()
            .map_err(|_| Fail::BadData("limit must be a number".into()))?;
    }
    if let Some(m) = p.non_empty("match_target") {
        parse_selector(m)
            .map_err(|e| Fail::BadData(format!("invalid parameter \"match_target\": {e}")))?;
    }
    Ok("[]".into())
}
