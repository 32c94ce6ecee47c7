//! `cairn-loadgen verify-acked`: after a server was killed during a run
//! and restarted, checks through its query API that it holds every
//! sample the run got acknowledged up to T_ack (see [`crate::ack`]), no
//! sample of those steps more, and, over the whole run, at least the
//! samples acknowledged and at most those sent.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::ack::{expected_by_name, run_start_ms, run_steps, step_end_ms, AckError, AckReport};
use crate::query::{QueryClient, QueryError};

/// Checks that a restarted server holds every acknowledged sample.
///
/// Reads the report `cairn-loadgen --ack-out` wrote (it records the
/// simulation, so no simulation flags are needed), then, for every metric
/// name the simulation generates or the server holds, counts the samples
/// the server holds with timestamps from the run's first to T_ack
/// (`sum(count_over_time({__name__="M"}[R]))` at T_ack), which must equal
/// the samples the simulation generated there; and the samples it holds
/// over the whole run, which must be at least those acknowledged and at
/// most those sent. Prints a JSON summary; exits non-zero on any
/// difference. When some connection got no request acknowledged
/// (`t_ack_ms` null) only the whole-run bounds are checked.
#[derive(Debug, clap::Args)]
pub struct VerifyAckedArgs {
    /// The acknowledgement report (`cairn-loadgen --ack-out FILE`).
    #[arg(long)]
    pub ack: PathBuf,
    /// Base URL of the server's Prometheus query API, e.g. http://127.0.0.1:9201.
    #[arg(long)]
    pub url: String,
}

/// What kept the check from running.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Report {
        path: PathBuf,
        #[source]
        source: AckError,
    },
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// The check's outcome: a JSON summary, and whether nothing was lost.
#[derive(Debug)]
pub struct Verdict {
    pub summary: Value,
    pub ok: bool,
}

/// Reads the report and queries the server; see [`VerifyAckedArgs`].
pub async fn run(args: &VerifyAckedArgs) -> Result<Verdict, VerifyError> {
    let text = std::fs::read_to_string(&args.ack).map_err(|source| VerifyError::Read {
        path: args.ack.clone(),
        source,
    })?;
    let report = serde_json::from_str(&text)
        .map_err(AckError::from)
        .and_then(|v| AckReport::from_json(&v))
        .map_err(|source| VerifyError::Report {
            path: args.ack.clone(),
            source,
        })?;
    verify(&report, &QueryClient::new(&args.url)).await
}

/// Checks that the server behind `q` holds what `report` says was
/// acknowledged.
pub async fn verify(report: &AckReport, q: &QueryClient) -> Result<Verdict, VerifyError> {
    let spec = &report.spec;
    let start_ms = run_start_ms(spec);
    let end_ms = step_end_ms(spec, run_steps(spec).end.saturating_sub(1));
    let ack_step = report.ack_step();
    let t_ack_ms = report.t_ack_ms();
    let mut problems = Vec::new();
    let server_names = q.metric_names().await?;
    let mut metrics = serde_json::Map::new();
    let (mut expected_total, mut found_acked_total) = (0u64, 0u64);
    if let (Some(step), Some(t_ack)) = (ack_step, t_ack_ms) {
        let mut expected = expected_by_name(spec, step);
        for n in &server_names {
            expected.entry(n.clone()).or_insert(0);
        }
        for (name, want) in expected {
            let found = q.count(&name, start_ms, t_ack).await?;
            expected_total += want;
            found_acked_total += found;
            if found != want {
                problems.push(format!(
                    "{name}: {found} samples up to T_ack, the run generated {want}"
                ));
            }
            metrics.insert(name, json!({"expected": want, "found": found}));
        }
    }
    let mut found_run_total = 0;
    for n in &server_names {
        found_run_total += q.count(n, start_ms, end_ms).await?;
    }
    let (acked, sent) = (report.samples_acked(), report.samples_sent());
    if found_run_total < acked {
        problems.push(format!(
            "the server holds {found_run_total} samples of the run, {acked} were acknowledged"
        ));
    }
    if found_run_total > sent {
        problems.push(format!(
            "the server holds {found_run_total} samples of the run, only {sent} were sent"
        ));
    }
    let ok = problems.is_empty();
    let summary = json!({
        "ok": ok,
        "ack_step": ack_step,
        "t_ack_ms": t_ack_ms,
        "run_start_ms": start_ms,
        "run_end_ms": end_ms,
        "expected_through_t_ack": expected_total,
        "found_through_t_ack": found_acked_total,
        "samples_acked": acked,
        "samples_sent": sent,
        "found_in_run": found_run_total,
        "report_complete": report.complete,
        "report_stopped": report.stopped,
        "problems": problems,
        "metrics": metrics,
    });
    Ok(Verdict { summary, ok })
}
