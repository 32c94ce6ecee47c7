//! Route table and handlers. Every handler returns Prometheus's JSON
//! envelope; one function maps error kinds to status codes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_model::exposition::push_label_set;
use cairn_model::{is_stale_nan, Labels, Matcher};
use cairn_storage::{Metadata, Queryable, SelectHints, ValueType};

use crate::engine::{QueryEngine, QueryError, QueryOutput, QueryResult};
use crate::json::{self, format_float, labels_json, point, push_str};
use crate::params::{parse_duration_param, parse_time_param, Params, MAX_TIME, MIN_TIME};
use crate::selectors::parse_selector;
use crate::{ApiRequest, ApiResponse};

/// What `/api/v1/status/buildinfo` reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").into(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: String::new(),
        }
    }
}

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Default and maximum query timeout.
    pub query_timeout: Duration,
    /// Lookback used by /federate.
    pub lookback_delta_ms: i64,
    /// Flag values for /api/v1/status/flags, as strings.
    pub flags: Vec<(String, String)>,
    pub build: BuildInfo,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(120),
            lookback_delta_ms: 300_000,
            flags: Vec::new(),
            build: BuildInfo::default(),
        }
    }
}

/// Metric metadata known to the store (fed by remote write).
pub trait MetadataSource: Send + Sync {
    /// Metric name and its metadata entries.
    fn metadata(&self) -> Vec<(String, Metadata)>;
}

/// Head statistics for /api/v1/status/tsdb.
#[derive(Debug, Clone, Default)]
pub struct TsdbStats {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// Supplies /api/v1/status/tsdb.
pub trait TsdbStatsSource: Send + Sync {
    /// Statistics with each top list cut to `limit` entries.
    fn tsdb_stats(&self, limit: usize) -> TsdbStats;
}

/// The admin operations of `/api/v1/admin/tsdb/*`, backed by the database.
pub trait AdminSource: Send + Sync {
    /// Marks samples of matching series in `[mint, maxt]` deleted.
    fn delete_series(&self, matchers: &[Vec<Matcher>], mint: i64, maxt: i64) -> Result<(), String>;
    /// Rewrites blocks without their deleted data.
    fn clean_tombstones(&self) -> Result<(), String>;
    /// Writes a snapshot and returns its directory name (under `<data>/snapshots/`).
    fn snapshot(&self, skip_head: bool) -> Result<String, String>;
}

/// The API: storage, the engine and the sources of status information.
pub struct Api {
    cfg: ApiConfig,
    storage: Arc<dyn Queryable>,
    engine: Option<Arc<dyn QueryEngine>>,
    metadata: Option<Arc<dyn MetadataSource>>,
    stats: Option<Arc<dyn TsdbStatsSource>>,
    /// Present only when the admin API is enabled.
    admin: Option<Arc<dyn AdminSource>>,
    /// Threads a large answer is encoded on (the CPU count, read once).
    threads: usize,
}

enum Fail {
    /// The admin API is disabled (503 unavailable).
    Unavailable(String),
    /// Success without a body (204), for admin calls.
    NoContent,
    BadData(String),
    Execution(String),
    Timeout(String),
    Canceled(String),
    Internal(String),
    MethodNotAllowed,
}

impl From<QueryError> for Fail {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadData(m) => Fail::BadData(m),
            QueryError::Execution(m) => Fail::Execution(m),
            QueryError::Timeout(m) => Fail::Timeout(m),
            QueryError::Canceled(m) => Fail::Canceled(m),
            QueryError::Internal(m) => Fail::Internal(m),
        }
    }
}

impl From<cairn_storage::StorageError> for Fail {
    fn from(e: cairn_storage::StorageError) -> Self {
        match e {
            cairn_storage::StorageError::Canceled => Fail::Canceled(e.to_string()),
            other => Fail::Internal(other.to_string()),
        }
    }
}

/// A successful answer: the `data` JSON and its annotations.
struct Out {
    data: String,
    warnings: Vec<String>,
    infos: Vec<String>,
}

impl Out {
    fn data(data: String) -> Self {
        Self {
            data,
            warnings: vec![],
            infos: vec![],
        }
    }
    fn warn(data: String, warnings: Vec<String>) -> Self {
        Self {
            data,
            warnings,
            infos: vec![],
        }
    }
}

type R = Result<Out, Fail>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn param_time(p: &Params, name: &str, default: i64) -> Result<i64, Fail> {
    match p.non_empty(name) {
        None => Ok(default),
        Some(v) => parse_time_param(v)
            .map_err(|e| Fail::BadData(format!("invalid parameter {name:?}: {e}"))),
    }
}

fn param_limit(p: &Params) -> Result<usize, Fail> {
    match p.non_empty("limit") {
        None => Ok(0),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n as usize),
            _ => Err(Fail::BadData("limit must be non-negative".into())),
        },
    }
}

fn match_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, Fail> {
    let mut out = Vec::new();
    for s in p.all("match[]") {
        let sets = parse_selector(s)
            .map_err(|e| Fail::BadData(format!("invalid parameter \"match[]\": {e}")))?;
        out.extend(sets);
    }
    Ok(out)
}

impl Api {
    /// An API over `storage`; attach the engine and sources with the `with_*` methods.
    pub fn new(cfg: ApiConfig, storage: Arc<dyn Queryable>) -> Self {
        Self {
            cfg,
            storage,
            engine: None,
            metadata: None,
            stats: None,
            admin: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub fn with_engine(mut self, e: Arc<dyn QueryEngine>) -> Self {
        self.engine = Some(e);
        self
    }

    pub fn with_metadata(mut self, m: Arc<dyn MetadataSource>) -> Self {
        self.metadata = Some(m);
        self
    }

    /// Enables the admin API (`--web.enable-admin-api`).
    pub fn with_admin(mut self, a: Arc<dyn AdminSource>) -> Self {
        self.admin = Some(a);
        self
    }

    pub fn with_stats(mut self, s: Arc<dyn TsdbStatsSource>) -> Self {
        self.stats = Some(s);
        self
    }

    /// Handles a request; `None` when the path is not part of this API.
    pub fn handle(&self, req: &ApiRequest) -> Option<ApiResponse> {
        let p = Params(req.params.clone());
        let get_post = matches!(req.method.as_str(), "GET" | "POST");
        let get = req.method == "GET";
        let path = req.path.as_str();
        if path == "/federate" {
            return Some(if get {
                self.federate(&p)
            } else {
                respond(Err(Fail::MethodNotAllowed))
            });
        }
        let rest = path.strip_prefix("/api/v1/")?;
        let res: R = match rest {
            "query" if get_post => self.query(&p),
            "query_range" if get_post => self.query_range(&p),
            "series" if get_post => self.series(&p),
            "labels" if get_post => self.labels(&p),
            "metadata" if get => self.metadata(&p),
            "query_exemplars" if get_post => self.exemplars(&p),
            "format_query" if get_post => format_query(&p),
            "parse_query" if get_post => format_query(&p),
            "status/buildinfo" if get => Ok(Out::data(self.buildinfo())),
            "status/flags" if get => Ok(Out::data(self.flags())),
            "status/tsdb" if get => self.tsdb(&p),
            "status/runtimeinfo" if get => Ok(Out::data(runtimeinfo())),
            "status/config" if get => Ok(Out::data("{\"yaml\":\"\"}".into())),
            "targets" | "rules" | "alerts" | "alertmanagers" if get => {
                Ok(Out::data(empty_listing(rest)))
            }
            "admin/tsdb/delete_series" | "admin/tsdb/clean_tombstones" | "admin/tsdb/snapshot" => {
                if matches!(req.method.as_str(), "POST" | "PUT") {
                    self.admin_call(rest, &p)
                } else {
                    Err(Fail::MethodNotAllowed)
                }
            }
            r if r.starts_with("label/") && r.ends_with("/values") => {
                if get {
                    let name = r.trim_start_matches("label/").trim_end_matches("/values");
                    self.label_values(name, &p)
                } else {
                    Err(Fail::MethodNotAllowed)
                }
            }
            "query" | "query_range" | "series" | "labels" | "metadata" | "query_exemplars"
            | "format_query" | "status/buildinfo" | "status/flags" | "status/tsdb" => {
                Err(Fail::MethodNotAllowed)
            }
            _ => return None,
        };
        Some(respond(res))
    }

    fn admin_call(&self, what: &str, p: &Params) -> R {
        let Some(admin) = &self.admin else {
            return Err(Fail::Unavailable("admin APIs disabled".into()));
        };
        match what {
            "admin/tsdb/delete_series" => {
                let sets = match_sets(p)?;
                if sets.is_empty() {
                    return Err(Fail::BadData("no match[] parameter provided".into()));
                }
                let start = param_time(p, "start", MIN_TIME)?;
                let end = param_time(p, "end", MAX_TIME)?;
                admin
                    .delete_series(&sets, start, end)
                    .map_err(Fail::Internal)?;
                Err(Fail::NoContent)
            }
            "admin/tsdb/clean_tombstones" => {
                admin.clean_tombstones().map_err(Fail::Internal)?;
                Err(Fail::NoContent)
            }
            _ => {
                let skip_head = match p.non_empty("skip_head") {
                    None => false,
                    Some(v) => v.parse::<bool>().map_err(|_| {
                        Fail::BadData(format!(
                            "unable to parse boolean 'skip_head' argument: {v:?}"
                        ))
                    })?,
                };
                let name = admin.snapshot(skip_head).map_err(Fail::Internal)?;
                Ok(Out::data(serde_json::json!({ "name": name }).to_string()))
            }
        }
    }

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

    fn query(&self, p: &Params) -> R {
        let q = p.get("query").unwrap_or("");
        let t = param_time(p, "time", now_ms())?;
        let timeout = self.timeout(p)?;
        let limit = param_limit(p)?;
        let res = self.engine()?.instant(q, t, Some(timeout))?;
        Ok(result_json(res, limit, self.threads))
    }

    fn query_range(&self, p: &Params) -> R {
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
        let timeout = self.timeout(p)?;
        let limit = param_limit(p)?;
        let q = p.get("query").unwrap_or("");
        let res = self.engine()?.range(q, start, end, step, Some(timeout))?;
        Ok(result_json(res, limit, self.threads))
    }

    fn series(&self, p: &Params) -> R {
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
        let mut warnings = Vec::new();
        let mut out = String::from("[");
        for (i, l) in all.iter().enumerate() {
            if limit > 0 && i >= limit {
                warnings.push("results truncated due to limit".to_string());
                break;
            }
            if i > 0 {
                out.push(',');
            }
            labels_json(l, &mut out);
        }
        out.push(']');
        Ok(Out::warn(out, warnings))
    }

    fn labels(&self, p: &Params) -> R {
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

    fn label_values(&self, name: &str, p: &Params) -> R {
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

    fn metadata(&self, p: &Params) -> R {
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

    fn exemplars(&self, p: &Params) -> R {
        if let Some(q) = p.get("query") {
            promql_parser::parser::parse(q).map_err(Fail::BadData)?;
        }
        Ok(Out::data("[]".into()))
    }

    fn buildinfo(&self) -> String {
        let b = &self.cfg.build;
        serde_json::json!({
            "version": b.version, "revision": b.revision, "branch": b.branch,
            "buildUser": b.build_user, "buildDate": b.build_date, "goVersion": b.go_version,
        })
        .to_string()
    }

    fn flags(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .cfg
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(m).to_string()
    }

    fn tsdb(&self, p: &Params) -> R {
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

    fn federate(&self, p: &Params) -> ApiResponse {
        let sets = match match_sets(p) {
            Ok(s) => s,
            Err(e) => return respond(Err(e)),
        };
        let now = now_ms();
        let mut series: std::collections::BTreeMap<Labels, (i64, f64)> = Default::default();
        let mut run = || -> Result<(), Fail> {
            let q = self
                .storage
                .querier(now - self.cfg.lookback_delta_ms, now)?;
            let hints = SelectHints {
                start: now - self.cfg.lookback_delta_ms,
                end: now,
                ..Default::default()
            };
            for ms in &sets {
                for s in q.select(&hints, ms)? {
                    let s = s?;
                    let mut it = s.iter();
                    let mut last = None;
                    while it.next() == ValueType::Float {
                        last = Some(it.at());
                    }
                    if let Some((t, v)) = last {
                        if !is_stale_nan(v) {
                            series.insert(s.labels().clone(), (t, v));
                        }
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            return respond(Err(e));
        }
        let mut by_name: std::collections::BTreeMap<String, Vec<(Labels, i64, f64)>> =
            Default::default();
        for (l, (t, v)) in series {
            let n = l.metric_name().unwrap_or("").to_owned();
            by_name.entry(n).or_default().push((l, t, v));
        }
        let mut out = String::new();
        for (name, list) in by_name {
            out.push_str(&format!("# TYPE {name} untyped\n"));
            for (l, t, v) in list {
                out.push_str(&name);
                let rest = l.without(&["__name__"]);
                push_label_set(&mut out, rest.iter().map(|x| (x.name, x.value)));
                out.push(' ');
                out.push_str(&format_float(v));
                out.push(' ');
                out.push_str(&t.to_string());
                out.push('\n');
            }
        }
        ApiResponse {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: out.into_bytes(),
        }
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
    let mut warnings = Vec::new();
    let mut out = String::from("[");
    for (i, v) in items.iter().enumerate() {
        if limit > 0 && i >= limit {
            warnings.push("results truncated due to limit".to_string());
            break;
        }
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, v);
    }
    out.push(']');
    Out::warn(out, warnings)
}

fn result_json(res: QueryResult, limit: usize, threads: usize) -> Out {
    let mut out = String::new();
    let mut warnings = res.warnings;
    match res.output {
        QueryOutput::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            point(&mut out, t, v);
        }
        QueryOutput::String { t, s } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            json::format_time(t, &mut out);
            out.push(',');
            push_str(&mut out, &s);
            out.push(']');
        }
        QueryOutput::Vector(v) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, (l, t, x)) in v.iter().enumerate() {
                if limit > 0 && i >= limit {
                    warnings.push("results truncated due to limit".into());
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                labels_json(l, &mut out);
                out.push_str(",\"value\":");
                point(&mut out, *t, *x);
                out.push('}');
            }
            out.push(']');
        }
        QueryOutput::Matrix(m) => {
            let keep = if limit > 0 && m.len() > limit {
                warnings.push("results truncated due to limit".into());
                limit
            } else {
                m.len()
            };
            let m = m.get(..keep).unwrap_or(&m);
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            matrix_json(m, threads, &mut out);
            out.push(']');
        }
    }
    out.push('}');
    Out {
        data: out,
        warnings,
        infos: res.infos,
    }
}

/// A range query's series: labels and (time, value) points.
type MatrixSeries = (Labels, Vec<(i64, f64)>);

/// Fewest points each thread encoding a matrix gets (about half a
/// millisecond's work): with fewer, a thread costs more than it saves.
const PARALLEL_JSON_POINTS: usize = 4096;

/// Appends the series of `m`, comma-separated, to `out`. A large matrix is
/// cut into contiguous parts of about equal point counts, encoded on up to
/// `threads` threads (the caller's included) and joined in order: the text
/// is the same as a serial encoding's.
fn matrix_json(m: &[MatrixSeries], threads: usize, out: &mut String) {
    // About what a point and a label set take, so that the buffer of a
    // large answer is not copied as it grows.
    let size = |m: &[MatrixSeries]| -> usize {
        m.iter()
            .map(|(l, pts)| 2 * l.encoded_len() + 32 + 28 * pts.len())
            .sum()
    };
    let encode = |m: &[MatrixSeries], out: &mut String| {
        for (i, (l, pts)) in m.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"metric\":");
            labels_json(l, out);
            out.push_str(",\"values\":[");
            for (j, (t, x)) in pts.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                point(out, *t, *x);
            }
            out.push_str("]}");
        }
    };
    let points: usize = m.iter().map(|(_, p)| p.len()).sum();
    let k = threads
        .min(points / PARALLEL_JSON_POINTS)
        .min(m.len())
        .max(1);
    if k == 1 {
        out.reserve(size(m));
        encode(m, out);
        return;
    }
    // Cut where the running point count passes each k-th of the total.
    let mut parts: Vec<&[MatrixSeries]> = Vec::with_capacity(k);
    let (mut from, mut seen) = (0usize, 0usize);
    for (i, (_, p)) in m.iter().enumerate() {
        seen += p.len();
        if seen * k >= points * (parts.len() + 1) && parts.len() + 1 < k {
            parts.extend(m.get(from..=i));
            from = i + 1;
        }
    }
    parts.extend(m.get(from..).filter(|r| !r.is_empty()));
    let texts: Vec<String> = std::thread::scope(|sc| {
        let rest: Vec<_> = parts
            .iter()
            .skip(1)
            .map(|&p| {
                sc.spawn(move || {
                    let mut s = String::with_capacity(size(p));
                    encode(p, &mut s);
                    s
                })
            })
            .collect();
        let mut first = String::new();
        if let Some(&p) = parts.first() {
            first.reserve(size(p));
            encode(p, &mut first);
        }
        let mut all = vec![first];
        for h in rest {
            match h.join() {
                Ok(s) => all.push(s),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        all
    });
    out.reserve(texts.iter().map(|t| t.len() + 1).sum());
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(t);
    }
}

fn format_query(p: &Params) -> R {
    let q = p.get("query").unwrap_or("");
    let e = promql_parser::parser::parse(q).map_err(Fail::BadData)?;
    let mut s = String::new();
    push_str(&mut s, &e.prettify());
    Ok(Out::data(s))
}

fn runtimeinfo() -> String {
    serde_json::json!({
        "startTime": "", "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "reloadConfigSuccess": true, "lastConfigTime": "", "corruptionCount": 0, "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": 0, "GOGC": "", "GODEBUG": "", "storageRetention": "",
    })
    .to_string()
}

fn empty_listing(what: &str) -> String {
    match what {
        "targets" => r#"{"activeTargets":[],"droppedTargets":[]}"#.into(),
        "rules" => r#"{"groups":[]}"#.into(),
        "alerts" => r#"{"alerts":[]}"#.into(),
        _ => r#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#.into(),
    }
}

fn respond(r: R) -> ApiResponse {
    match r {
        Ok(o) => ApiResponse {
            status: 200,
            content_type: "application/json",
            body: json::success(&o.data, &o.warnings, &o.infos),
        },
        Err(Fail::NoContent) => ApiResponse {
            status: 204,
            content_type: "application/json",
            body: Vec::new(),
        },
        Err(f) => {
            let (status, kind, msg) = match f {
                Fail::Unavailable(m) => (503, "unavailable", m),
                Fail::NoContent => (204, "", String::new()),
                Fail::BadData(m) => (400, "bad_data", m),
                Fail::Execution(m) => (422, "execution", m),
                Fail::Timeout(m) => (503, "timeout", m),
                Fail::Canceled(m) => (499, "canceled", m),
                Fail::Internal(m) => (500, "internal", m),
                Fail::MethodNotAllowed => (405, "bad_data", "method not allowed".to_string()),
            };
            ApiResponse {
                status,
                content_type: "application/json",
                body: json::error(kind, &msg),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix of `n` series, series `i` with `len(i)` points.
    fn matrix(n: usize, len: impl Fn(usize) -> usize) -> Vec<MatrixSeries> {
        (0..n)
            .map(|i| {
                let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                let pts = (0..len(i))
                    .map(|j| (j as i64 * 1500 + 7, (i * 31 + j) as f64 / 7.0))
                    .collect();
                (l, pts)
            })
            .collect()
    }

    #[test]
    fn a_matrix_encodes_to_the_same_text_on_any_thread_count() {
        let shapes: Vec<Vec<MatrixSeries>> = vec![
            matrix(0, |_| 0),
            matrix(1, |_| 20_000),
            matrix(2, |i| if i == 0 { 30_000 } else { 1 }),
            matrix(100, |_| 110),
            matrix(200, |_| 110),
            matrix(300, |i| (i * 37) % 200),
            matrix(7, |i| if i % 2 == 0 { 0 } else { 9000 }),
        ];
        for m in &shapes {
            let mut serial = String::new();
            matrix_json(m, 1, &mut serial);
            let parsed: serde_json::Value =
                serde_json::from_str(&format!("[{serial}]")).expect("valid JSON");
            assert_eq!(parsed.as_array().map(Vec::len), Some(m.len()));
            for threads in [2, 3, 8] {
                let mut par = String::new();
                matrix_json(m, threads, &mut par);
                assert_eq!(par, serial, "{threads} threads, {} series", m.len());
            }
        }
    }
}
