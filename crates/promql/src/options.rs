//! Engine settings, shared by planning, loading and evaluation.

use std::time::Duration;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample, in ms (5m).
    pub lookback_delta: i64,
    /// Most samples a query may hold at a time, counted as Prometheus
    /// counts them (see `eval/limit.rs`; 50M, Prometheus's default).
    pub max_samples: usize,
    /// Most raw samples the selectors of one query may load.
    pub max_loaded_samples: usize,
    /// Wall-clock limit of one query.
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), in ms.
    pub no_step_subquery_interval: i64,
    /// Threads one query may use to read and evaluate the series of a
    /// large selection (the machine's CPUs by default; 1 = all on the
    /// calling thread). Results do not depend on it.
    pub parallelism: usize,
    /// Prometheus's `promql-delayed-name-removal` feature: functions and
    /// operators that change a metric's meaning mark its name for removal
    /// and the name is removed when the query finishes, so `label_replace`
    /// can still read it and series that differ only by name do not
    /// collide on the way. Off by default, as in a Prometheus server:
    /// then the name goes at once, and two series that end up with the
    /// same labels make the query fail ("vector cannot contain metrics
    /// with the same labelset"). Prometheus's test scripts run with it on.
    pub delayed_name_removal: bool,
    /// Which downsampled data selections may read (Thanos's
    /// `max_source_resolution`); see [`SourceResolution`].
    pub max_source_resolution: SourceResolution,
}

/// How coarse the data a query reads may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceResolution {
    /// Raw samples only.
    #[default]
    Raw,
    /// Downsampled data of at most this resolution (ms) where it exists.
    Max(i64),
    /// At most a fifth of a range query's step (raw for instant queries).
    Auto,
}

impl SourceResolution {
    /// Parses Thanos's spellings: `raw` (or `0s`), `5m`, `1h`, `auto`, or
    /// any Prometheus duration.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "raw" | "0" | "0s" => Some(Self::Raw),
            "auto" => Some(Self::Auto),
            other => {
                let ms = cairn_model::duration::parse_duration(other).ok()?;
                Some(if ms <= 0 { Self::Raw } else { Self::Max(ms) })
            }
        }
    }

    /// The coarsest resolution a query at `step` (0: instant) may read.
    pub fn limit(self, step: i64) -> i64 {
        match self {
            Self::Raw => 0,
            Self::Max(r) => r,
            Self::Auto => step / 5,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_loaded_samples: 500_000_000,
            timeout: Duration::from_secs(120),
            no_step_subquery_interval: 60_000,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            delayed_name_removal: false,
            max_source_resolution: SourceResolution::Raw,
        }
    }
}
