//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query` and
//! `/api/v1/query_exemplars`: the PromQL endpoints.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{QueryEngine, QueryOptions};
use crate::json::result_json;
use crate::json::{format_time, labels_json, push_str};
use crate::params::{
    param_limit, param_time, parse_duration_param, parse_time_param, Params, MAX_TIME, MIN_TIME,
};
use crate::reply::{Fail, Out, R};
use crate::selectors::extract_selectors;
use crate::Api;

use super::now_ms;

impl Api {
    fn engine(&self) -> Result<&Arc<dyn QueryEngine>, Fail> {
        self.engine
            .as_ref()
            .ok_or_else(|| Fail::Internal("no query engine configured".into()))
    }

    fn timeout(&self, p: &Params) -> Result<Duration, Fail> {
        match p.non_empty("timeout") {
            None => Ok(self.cfg.query_timeout),
            Some(v) => {
                let ms = parse_duration_param(v)
                    .map_err(|e| Fail::BadData(format!("invalid parameter \"timeout\": {e}")))?;
                Ok(Duration::from_millis(ms.max(0) as u64).min(self.cfg.query_timeout))
            }
        }
    }

    /// The request's per-query settings (`timeout`, `max_source_resolution`).
    fn query_options(&self, p: &Params) -> Result<QueryOptions, Fail> {
        let res = match p.non_empty("max_source_resolution") {
            None => None,
            Some(v @ ("raw" | "auto")) => Some(v.to_owned()),
            Some(v) => match parse_duration_param(v) {
                Ok(ms) if ms >= 0 => Some(v.to_owned()),
                _ => {
                    return Err(Fail::BadData(format!(
                        "invalid parameter \"max_source_resolution\": {v:?} is not raw, auto or a duration such as 5m or 1h"
                    )))
                }
            },
        };
        Ok(QueryOptions {
            timeout: Some(self.timeout(p)?),
            max_source_resolution: res,
        })
    }

    pub(crate) fn query(&self, p: &Params) -> R {
        let q = p.get("query").unwrap_or("");
        let t = param_time(p, "time", now_ms())?;
        let opts = self.query_options(p)?;
        let limit = param_limit(p)?;
        let res = self.engine()?.instant(q, t, &opts)?;
        Ok(result_json(res, limit, self.threads))
    }

    pub(crate) fn query_range(&self, p: &Params) -> R {
        let start = p
            .get("start")
            .ok_or_else(|| {
                Fail::BadData(
                    "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
                )
            })
            .and_then(|s| {
                parse_time_param(s)
                    .map_err(|e| Fail::BadData(format!("invalid parameter \"start\": {e}")))
            })?;
        let end = p
            .get("end")
            .ok_or_else(|| {
                Fail::BadData(
                    "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
                )
            })
            .and_then(|s| {
                parse_time_param(s)
                    .map_err(|e| Fail::BadData(format!("invalid parameter \"end\": {e}")))
            })?;
        if end < start {
            return Err(Fail::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let step = parse_duration_param(p.get("step").unwrap_or(""))
            .map_err(|e| Fail::BadData(format!("invalid parameter \"step\": {e}")))?;
        if step <= 0 {
            return Err(Fail::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if (end - start) / step > 11_000 {
            return Err(Fail::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        let opts = self.query_options(p)?;
        let limit = param_limit(p)?;
        let q = p.get("query").unwrap_or("");
        let res = self.engine()?.range(q, start, end, step, &opts)?;
        Ok(result_json(res, limit, self.threads))
    }

    /// Prometheus's `/api/v1/query_exemplars`: the exemplars of every
    /// series any selector of `query` matches, with timestamps in
    /// `[start, end]` (default: all time), series sorted by labels.
    pub(crate) fn exemplars(&self, p: &Params) -> R {
        let start = param_time(p, "start", MIN_TIME)?;
        let end = param_time(p, "end", MAX_TIME)?;
        if end < start {
            return Err(Fail::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let q = p.get("query").unwrap_or("");
        let expr = promql_parser::parser::parse(q).map_err(Fail::BadData)?;
        let selectors = extract_selectors(&expr).map_err(Fail::BadData)?;
        let found = self
            .storage
            .exemplars(start, end, &selectors)
            .map_err(|e| Fail::Internal(e.to_string()))?;
        Ok(Out::data(exemplars_json(&found)))
    }
}

/// `[{"seriesLabels":{..},"exemplars":[{"labels":{..},"value":"v","timestamp":s}]}]`:
/// values as strings, timestamps as seconds (Prometheus's JSON).
fn exemplars_json(found: &[cairn_storage::SeriesExemplars]) -> String {
    let mut s = String::from("[");
    for (i, se) in found.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"seriesLabels\":");
        labels_json(&se.labels, &mut s);
        s.push_str(",\"exemplars\":[");
        for (j, e) in se.exemplars.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            s.push_str("{\"labels\":");
            labels_json(&e.labels, &mut s);
            s.push_str(",\"value\":\"");
            crate::json::push_value(&mut s, e.value);
            s.push_str("\",\"timestamp\":");
            format_time(e.ts, &mut s);
            s.push('}');
        }
        s.push_str("]}");
    }
    s.push(']');
    s
}

pub(crate) fn format_query(p: &Params) -> R {
    let q = p.get("query").unwrap_or("");
    let e = promql_parser::parser::parse(q).map_err(Fail::BadData)?;
    let mut s = String::new();
    push_str(&mut s, &e.prettify());
    Ok(Out::data(s))
}
