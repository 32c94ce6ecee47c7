//! The API's settings: timeouts, the federation lookback, and what the
//! status endpoints report about the build, the flags and the
//! configuration.

use std::time::Duration;

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
    /// The YAML /api/v1/status/config shows (Cairn's settings in the
    /// shape of a Prometheus configuration file).
    pub config_yaml: String,
    /// The Alertmanager endpoints alerts are posted to, for
    /// /api/v1/alertmanagers (`<url>/api/v2/alerts`).
    pub alertmanagers: Vec<String>,
    pub build: BuildInfo,
    /// When the server started (ms): `startTime` of
    /// /api/v1/status/runtimeinfo.
    pub start_time_ms: i64,
    /// The retention in force as Prometheus prints it (`15d`, `10GiB`,
    /// `15d or 10GiB`; empty for none): `storageRetention`.
    pub storage_retention: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(120),
            lookback_delta_ms: 300_000,
            flags: Vec::new(),
            config_yaml: String::new(),
            alertmanagers: Vec::new(),
            build: BuildInfo::default(),
            start_time_ms: 0,
            storage_retention: String::new(),
        }
    }
}
