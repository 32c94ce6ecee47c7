//! Which samples a run got acknowledged, for checking that a server killed
//! during ingest loses none of them (`cairn-loadgen --ack-out`, then
//! `cairn-loadgen verify-acked`).
//!
//! Why one time, T_ack, bounds what was acknowledged:
//!
//! - Every series goes over one connection for the whole run: its shard is
//!   its label hash modulo the connections, and connection i sends shard
//!   i's requests (pod churn makes new series, each with its own shard).
//! - A connection sends its requests one at a time, in order, and a
//!   shard's samples are in the run's order, scrape round (step) after
//!   scrape round, so each request's samples are of steps
//!   `first_step..=last_step` ([`RequestMeta`]) and the next one starts at
//!   `last_step` or later.
//! - So if a connection's requests were acknowledged (2xx) without a gap
//!   from its first, up to the first request not acknowledged (failed,
//!   or left unsent when the run stopped), every sample of its series of a
//!   step before that request's `first_step` was acknowledged
//!   ([`ConnAck::acked_through`]). When every request handed out so far
//!   was acknowledged but the run did not finish, the next request may
//!   start within the last acknowledged one's `last_step`: the steps
//!   before it are complete.
//! - A sample of step s has a timestamp in `t0(s) ..= t0(s) + jitter_ms`
//!   (t0 on the scrape grid, the jitter below the interval), so the
//!   samples of the run with a timestamp at most `t0(s) + jitter_ms`
//!   ([`step_end_ms`]) are exactly those of steps up to s.
//!
//! T_ack is that time for the smallest complete step over the connections
//! ([`AckReport::ack_step`]): every sample of the run with a timestamp up
//! to T_ack was acknowledged, and the samples with a timestamp up to it
//! are those of the steps from the run's first to the ack step
//! ([`expected_by_name`]).

use std::collections::BTreeMap;
use std::ops::Range;

use cairn_gpusim::ClusterSpec;
use serde_json::{json, Value};

use crate::{LoadSpec, RequestMeta};

/// The report's `format`.
pub const FORMAT: &str = "cairn-loadgen-ack/1";

/// What is wrong with an acknowledgement report.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a cairn-loadgen acknowledgement report (format {0:?}, expected {FORMAT:?})")]
    Format(String),
    #[error("field {0} missing or of the wrong type")]
    Field(&'static str),
}

/// What one connection sent and got acknowledged, request by request in
/// the order it sent them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Requests tried at least once, and their samples.
    pub requests_sent: u64,
    pub samples_sent: u64,
    /// Requests answered 2xx, and their samples.
    pub requests_acked: u64,
    pub samples_acked: u64,
    /// Requests acknowledged from the first without a gap.
    pub prefix_requests: u64,
    /// The last step of the prefix's last request.
    pub prefix_last_step: Option<u64>,
    /// The first step of the first request not acknowledged.
    pub gap_step: Option<u64>,
}

impl ConnAck {
    /// A request answered 2xx.
    pub fn acked(&mut self, m: &RequestMeta) {
        self.requests_sent += 1;
        self.samples_sent += m.samples;
        self.requests_acked += 1;
        self.samples_acked += m.samples;
        if self.gap_step.is_none() {
            self.prefix_requests += 1;
            self.prefix_last_step = Some(m.last_step);
        }
    }

    /// A request tried and never acknowledged.
    pub fn failed(&mut self, m: &RequestMeta) {
        self.requests_sent += 1;
        self.samples_sent += m.samples;
        self.unsent(m);
    }

    /// A request not tried: the run stopped before it.
    pub fn unsent(&mut self, m: &RequestMeta) {
        if self.gap_step.is_none() {
            self.gap_step = Some(m.first_step);
        }
    }

    /// The last step of `steps` (the run's) whose every sample of this
    /// connection was acknowledged, if any; `complete`: the run handed out
    /// every request. See the module docs.
    pub fn acked_through(&self, steps: &Range<u64>, complete: bool) -> Option<u64> {
        let through = match (self.gap_step, complete) {
            (Some(gap), _) => gap.checked_sub(1)?,
            (None, true) => steps.end.checked_sub(1)?,
            (None, false) => self.prefix_last_step?.checked_sub(1)?,
        };
        (through >= steps.start).then_some(through.min(steps.end.saturating_sub(1)))
    }
}

/// The steps a run sends.
pub fn run_steps(spec: &LoadSpec) -> Range<u64> {
    spec.first_scrape..spec.first_scrape.saturating_add(spec.scrapes)
}

/// The latest timestamp a sample of `step` can have: every sample of the
/// run with a timestamp up to it is of a step up to `step`.
pub fn step_end_ms(spec: &LoadSpec, step: u64) -> i64 {
    spec.start_ms + step as i64 * spec.cluster.scrape_interval_ms + spec.jitter_ms.max(0)
}

/// The earliest timestamp of the run's samples.
pub fn run_start_ms(spec: &LoadSpec) -> i64 {
    spec.start_ms + spec.first_scrape as i64 * spec.cluster.scrape_interval_ms
}

/// The samples the run generates of steps up to `through` (those with a
/// timestamp up to [`step_end_ms`]`(through)`), per metric name.
///
/// Every node scrapes the same series names at every step (pod churn
/// changes label values only, `ClusterSpec::gpu_series`), so one step's
/// names, node by node, times the steps.
pub fn expected_by_name(spec: &LoadSpec, through: u64) -> BTreeMap<String, u64> {
    let steps = run_steps(spec);
    let mut out = BTreeMap::new();
    if through < steps.start || steps.is_empty() {
        return out;
    }
    let n = through.min(steps.end - 1) - steps.start + 1;
    let mut series = Vec::new();
    for node in 0..spec.cluster.nodes {
        series.clear();
        spec.cluster.node_series(node, steps.start, &mut series);
        for s in &series {
            let name = s.labels.metric_name().unwrap_or_default();
            match out.get_mut(name) {
                Some(c) => *c += n,
                None => {
                    out.insert(name.to_string(), n);
                }
            }
        }
    }
    out
}

/// What a run sent and got acknowledged, per connection.
#[derive(Debug, Clone)]
pub struct AckReport {
    pub spec: LoadSpec,
    /// The remote-write URL.
    pub url: String,
    /// Every request of the run was handed out to its connection.
    pub complete: bool,
    /// The run stopped on a request that kept failing.
    pub stopped: bool,
    pub connections: Vec<ConnAck>,
}

impl AckReport {
    /// The last step whose every sample was acknowledged, over all
    /// connections; `None` when some connection has none.
    pub fn ack_step(&self) -> Option<u64> {
        let steps = run_steps(&self.spec);
        let mut min: Option<u64> = None;
        for c in &self.connections {
            let t = c.acked_through(&steps, self.complete)?;
            min = Some(min.map_or(t, |m| m.min(t)));
        }
        min
    }

    /// T_ack: every sample with a timestamp up to it was acknowledged.
    pub fn t_ack_ms(&self) -> Option<i64> {
        self.ack_step().map(|s| step_end_ms(&self.spec, s))
    }

    pub fn samples_sent(&self) -> u64 {
        self.connections.iter().map(|c| c.samples_sent).sum()
    }

    pub fn samples_acked(&self) -> u64 {
        self.connections.iter().map(|c| c.samples_acked).sum()
    }

    pub fn to_json(&self) -> Value {
        let steps = run_steps(&self.spec);
        let spec = &self.spec;
        let c = &spec.cluster;
        let connections: Vec<Value> = self
            .connections
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let through = a.acked_through(&steps, self.complete);
                json!({
                    "connection": i,
                    "requests_sent": a.requests_sent,
                    "samples_sent": a.samples_sent,
                    "requests_acked": a.requests_acked,
                    "samples_acked": a.samples_acked,
                    "prefix_requests": a.prefix_requests,
                    "prefix_last_step": a.prefix_last_step,
                    "gap_step": a.gap_step,
                    "acked_through_step": through,
                    "acked_through_ms": through.map(|s| step_end_ms(spec, s)),
                })
            })
            .collect();
        json!({
            "format": FORMAT,
            "url": self.url,
            "simulation": {
                "nodes": c.nodes,
                "gpus_per_node": c.gpus_per_node,
                "cpus_per_node": c.cpus_per_node,
                "scrape_interval_ms": c.scrape_interval_ms,
                "pod_lifetime_scrapes": c.pod_lifetime_scrapes,
                "seed": c.seed,
                "scrapes": spec.scrapes,
                "first_scrape": spec.first_scrape,
                "start_ms": spec.start_ms,
                "batch": spec.batch,
                "shards": spec.shards,
                "jitter_ms": spec.jitter_ms,
            },
            "run_start_ms": run_start_ms(spec),
            "run_end_ms": step_end_ms(spec, steps.end.saturating_sub(1)),
            "complete": self.complete,
            "stopped": self.stopped,
            "samples_sent": self.samples_sent(),
            "samples_acked": self.samples_acked(),
            "ack_step": self.ack_step(),
            "t_ack_ms": self.t_ack_ms(),
            "connections": connections,
        })
    }

    pub fn from_json(v: &Value) -> Result<Self, AckError> {
        let format = v.get("format").and_then(Value::as_str).unwrap_or_default();
        if format != FORMAT {
            return Err(AckError::Format(format.to_string()));
        }
        let sim = v.get("simulation").ok_or(AckError::Field("simulation"))?;
        let usize_of = |name| u64_of(sim, name).map(|x| x as usize);
        let spec = LoadSpec {
            cluster: ClusterSpec {
                nodes: usize_of("nodes")?,
                gpus_per_node: usize_of("gpus_per_node")?,
                cpus_per_node: usize_of("cpus_per_node")?,
                scrape_interval_ms: i64_of(sim, "scrape_interval_ms")?,
                pod_lifetime_scrapes: u64_of(sim, "pod_lifetime_scrapes")?,
                seed: u64_of(sim, "seed")?,
            },
            scrapes: u64_of(sim, "scrapes")?,
            first_scrape: u64_of(sim, "first_scrape")?,
            start_ms: i64_of(sim, "start_ms")?,
            batch: usize_of("batch")?,
            shards: usize_of("shards")?,
            jitter_ms: i64_of(sim, "jitter_ms")?,
        };
        let conns = v
            .get("connections")
            .and_then(Value::as_array)
            .ok_or(AckError::Field("connections"))?;
        let mut connections = Vec::with_capacity(conns.len());
        for c in conns {
            connections.push(ConnAck {
                requests_sent: u64_of(c, "requests_sent")?,
                samples_sent: u64_of(c, "samples_sent")?,
                requests_acked: u64_of(c, "requests_acked")?,
                samples_acked: u64_of(c, "samples_acked")?,
                prefix_requests: u64_of(c, "prefix_requests")?,
                prefix_last_step: opt_u64_of(c, "prefix_last_step")?,
                gap_step: opt_u64_of(c, "gap_step")?,
            });
        }
        Ok(AckReport {
            spec,
            url: v
                .get("url")
                .and_then(Value::as_str)
                .ok_or(AckError::Field("url"))?
                .to_string(),
            complete: bool_of(v, "complete")?,
            stopped: bool_of(v, "stopped")?,
            connections,
        })
    }
}

fn u64_of(v: &Value, name: &'static str) -> Result<u64, AckError> {
    v.get(name)
        .and_then(Value::as_u64)
        .ok_or(AckError::Field(name))
}

fn i64_of(v: &Value, name: &'static str) -> Result<i64, AckError> {
    v.get(name)
        .and_then(Value::as_i64)
        .ok_or(AckError::Field(name))
}

fn bool_of(v: &Value, name: &'static str) -> Result<bool, AckError> {
    v.get(name)
        .and_then(Value::as_bool)
        .ok_or(AckError::Field(name))
}

/// A field that is a number or null.
fn opt_u64_of(v: &Value, name: &'static str) -> Result<Option<u64>, AckError> {
    match v.get(name) {
        Some(Value::Null) => Ok(None),
        Some(x) => x.as_u64().map(Some).ok_or(AckError::Field(name)),
        None => Err(AckError::Field(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(samples: u64, first_step: u64, last_step: u64) -> RequestMeta {
        RequestMeta {
            samples,
            first_step,
            last_step,
        }
    }

    #[test]
    fn acked_through_the_step_before_the_first_gap() {
        let steps = 10..20;
        let mut a = ConnAck::default();
        assert_eq!(a.acked_through(&steps, false), None);
        // Nothing handed out, but the run finished: nothing to lose.
        assert_eq!(a.acked_through(&steps, true), Some(19));
        a.acked(&meta(5, 10, 11));
        a.acked(&meta(5, 11, 13));
        // Step 13 may go on in the next request.
        assert_eq!(a.acked_through(&steps, false), Some(12));
        assert_eq!(a.acked_through(&steps, true), Some(19));
        a.failed(&meta(5, 13, 14));
        a.acked(&meta(5, 14, 16));
        a.unsent(&meta(5, 16, 17));
        assert_eq!(a.acked_through(&steps, false), Some(12));
        assert_eq!(a.acked_through(&steps, true), Some(12));
        assert_eq!(
            (a.requests_sent, a.requests_acked, a.prefix_requests),
            (4, 3, 2)
        );
        assert_eq!((a.samples_sent, a.samples_acked), (20, 15));
        // A gap in the first step leaves nothing.
        let mut b = ConnAck::default();
        b.failed(&meta(5, 10, 10));
        assert_eq!(b.acked_through(&steps, true), None);
        let mut c = ConnAck::default();
        c.acked(&meta(5, 10, 10));
        assert_eq!(c.acked_through(&steps, false), None);
    }

    #[test]
    fn report_round_trips_and_takes_the_smallest_step() {
        let spec = LoadSpec {
            cluster: ClusterSpec {
                nodes: 2,
                ..ClusterSpec::default()
            },
            scrapes: 10,
            first_scrape: 3,
            start_ms: 1_700_000_000_000,
            batch: 100,
            shards: 2,
            jitter_ms: 40,
        };
        let mut a = ConnAck::default();
        a.acked(&meta(100, 3, 6));
        a.failed(&meta(100, 6, 8));
        let mut b = ConnAck::default();
        b.acked(&meta(100, 3, 9));
        let report = AckReport {
            spec,
            url: "http://x/api/v1/write".into(),
            complete: false,
            stopped: true,
            connections: vec![a, b],
        };
        assert_eq!(report.ack_step(), Some(5));
        assert_eq!(report.t_ack_ms(), Some(1_700_000_000_000 + 5 * 15_000 + 40));
        let v = report.to_json();
        let back = AckReport::from_json(&v).unwrap();
        assert_eq!(back.to_json(), v);
        assert_eq!(back.connections, report.connections);
        assert!(AckReport::from_json(&json!({"format": "x"})).is_err());
    }
}
