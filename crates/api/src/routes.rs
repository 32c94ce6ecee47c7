//! The route table: [`Api`], its wiring, and [`Api::handle`], which maps a
//! method and path to a handler (in `handlers/`) and its result to a
//! response (in `reply`).

use std::sync::Arc;

use cairn_storage::Queryable;

use crate::engine::QueryEngine;
use crate::params::Params;
use crate::reply::{respond, Fail, Out, Reply, R};
use crate::{AdminSource, ApiConfig, ApiRequest, ApiResponse, MetadataSource, TsdbStatsSource};

/// The admin endpoints (POST or PUT; 503 unless enabled).
const ADMIN_PATHS: [&str; 3] = [
    "admin/tsdb/delete_series",
    "admin/tsdb/clean_tombstones",
    "admin/tsdb/snapshot",
];

/// The API: storage, the engine and the sources of status information.
pub struct Api {
    pub(crate) cfg: ApiConfig,
    pub(crate) storage: Arc<dyn Queryable>,
    pub(crate) engine: Option<Arc<dyn QueryEngine>>,
    pub(crate) metadata: Option<Arc<dyn MetadataSource>>,
    pub(crate) stats: Option<Arc<dyn TsdbStatsSource>>,
    /// Present only when the admin API is enabled.
    pub(crate) admin: Option<Arc<dyn AdminSource>>,
    /// Recording and alerting rules, when any are loaded.
    pub(crate) rules: Option<Arc<dyn crate::sources::RulesSource>>,
    /// Threads a large answer is encoded on (the CPU count, read once).
    pub(crate) threads: usize,
    /// Why the endpoints that select series are refused, when they are
    /// (an ingester started without a query API).
    pub(crate) queries_off: Option<String>,
    /// How far the WAL replay has got: `(min, max, current)` segments.
    pub(crate) wal_replay: Option<WalReplaySource>,
    /// What `/api/v1/status/runtimeinfo` reads as the server runs.
    pub(crate) runtime: Option<RuntimeSource>,
}

/// Reads the runtime state (see [`Api::with_runtime`]).
pub type RuntimeSource = Arc<dyn Fn() -> crate::RuntimeState + Send + Sync>;

/// Reads the WAL replay's progress (see [`Api::with_wal_replay`]).
pub type WalReplaySource = Arc<dyn Fn() -> (u32, u32, u32) + Send + Sync>;

/// The endpoints that select series or evaluate PromQL: what
/// [`Api::without_queries`] refuses.
fn selects_series(rest: &str) -> bool {
    matches!(
        rest,
        "query" | "query_range" | "series" | "labels" | "query_exemplars"
    ) || (rest.starts_with("label/") && rest.ends_with("/values"))
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
            rules: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queries_off: None,
            wal_replay: None,
            runtime: None,
        }
    }

    /// `/api/v1/status/runtimeinfo` reads the configuration's reload state
    /// and the WAL corruptions from `f`; without it, the configuration
    /// counts as loaded at the start and no corruption as found.
    pub fn with_runtime(mut self, f: RuntimeSource) -> Self {
        self.runtime = Some(f);
        self
    }

    /// Serves `/api/v1/status/walreplay` from `f`: the first and last WAL
    /// segment to replay and the last one replayed, as Prometheus answers
    /// it (also while the storage is still opening).
    pub fn with_wal_replay(mut self, f: WalReplaySource) -> Self {
        self.wal_replay = Some(f);
        self
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

    /// Serves `/api/v1/rules` and `/api/v1/alerts` from `r`.
    pub fn with_rules(mut self, r: Arc<dyn crate::sources::RulesSource>) -> Self {
        self.rules = Some(r);
        self
    }

    /// Refuses every endpoint that selects series (`query`, `query_range`,
    /// `series`, `labels`, label values, `query_exemplars`, `/federate`)
    /// with a 422 execution error saying `why`, as Prometheus's agent mode
    /// answers them; status, metadata, rules and admin endpoints stay.
    pub fn without_queries(mut self, why: impl Into<String>) -> Self {
        self.queries_off = Some(why.into());
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
        if let Some(why) = &self.queries_off {
            let refused =
                path == "/federate" || path.strip_prefix("/api/v1/").is_some_and(selects_series);
            if refused {
                return Some(respond(Err(Fail::Execution(why.clone()))));
            }
        }
        if path == "/federate" {
            return Some(if get {
                self.federate(&p, &req.accept)
            } else {
                respond(Err(Fail::MethodNotAllowed))
            });
        }
        let rest = path.strip_prefix("/api/v1/")?;
        if ADMIN_PATHS.contains(&rest) {
            return Some(respond(if matches!(req.method.as_str(), "POST" | "PUT") {
                self.admin_call(rest, &p)
            } else {
                Err(Fail::MethodNotAllowed)
            }));
        }
        let res: R = match rest {
            "query" if get_post => self.query(&p),
            "query_range" if get_post => self.query_range(&p),
            "series" if get_post => self.series(&p),
            "labels" if get_post => self.labels(&p),
            "metadata" if get => self.metadata(&p),
            "query_exemplars" if get_post => self.exemplars(&p),
            "format_query" if get_post => crate::handlers::format_query(&p),
            "parse_query" if get_post => crate::handlers::parse_query(&p),
            "status/buildinfo" if get => Ok(Out::data(self.buildinfo())),
            "status/flags" if get => Ok(Out::data(self.flags())),
            "status/tsdb" if get => self.tsdb(&p),
            "status/tsdb/blocks" if get => Ok(Out::data(
                serde_json::json!({
                    "blocks": self.stats.as_ref().map(|s| s.block_metas()).unwrap_or_default()
                })
                .to_string(),
            )),
            // Cairn's own: the blocks on disk (the UI's blocks page).
            "status/blocks" if get => Ok(Out::data(
                serde_json::json!({
                    "blocks": self.stats.as_ref().map(|s| s.blocks()).unwrap_or_default()
                })
                .to_string(),
            )),
            "status/walreplay" if get => match &self.wal_replay {
                Some(f) => {
                    let (min, max, current) = f();
                    Ok(Out::data(
                        serde_json::json!({"min": min, "max": max, "current": current}).to_string(),
                    ))
                }
                None => return None,
            },
            "status/runtimeinfo" if get => Ok(Out::data(self.runtimeinfo())),
            "status/config" if get => Ok(Out::data(self.config_json())),
            "rules" if get => Ok(Out::data(match &self.rules {
                Some(r) => {
                    let kind = p.non_empty("type");
                    match kind {
                        None | Some("alert") | Some("record") => r.rules(kind),
                        Some(other) => {
                            return Some(respond(Err(Fail::BadData(format!(
                                "invalid rule type {other:?}"
                            )))))
                        }
                    }
                }
                None => crate::handlers::empty_listing(rest),
            })),
            "alerts" if get => Ok(Out::data(match &self.rules {
                Some(r) => r.alerts(),
                None => crate::handlers::empty_listing(rest),
            })),
            "targets" if get => Ok(Out::data(crate::handlers::targets(&p))),
            "targets/metadata" if get => crate::handlers::target_metadata(&p).map(Out::data),
            "scrape_pools" if get => Ok(Out::data(r#"{"scrapePools":[]}"#.to_owned())),
            "alertmanagers" if get => Ok(Out::data(self.alertmanagers_json())),
            r if r.starts_with("label/") && r.ends_with("/values") => {
                if get {
                    let name = r.trim_start_matches("label/").trim_end_matches("/values");
                    self.label_values(name, &p)
                } else {
                    Err(Fail::MethodNotAllowed)
                }
            }
            "query" | "query_range" | "series" | "labels" | "metadata" | "query_exemplars"
            | "format_query" | "status/buildinfo" | "status/flags" | "status/tsdb"
            | "status/tsdb/blocks" | "status/walreplay" | "targets" | "targets/metadata"
            | "scrape_pools" => Err(Fail::MethodNotAllowed),
            _ => return None,
        };
        Some(respond(res.map(Reply::Data)))
    }
}
