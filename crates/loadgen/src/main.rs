//! `cairn-loadgen`: sends a simulated GPU cluster's samples to a remote-write
//! endpoint and reports throughput; optionally verifies the receiver stored
//! every sample, through its Prometheus query API, or records which
//! requests were acknowledged (`--ack-out`). `cairn-loadgen blocks` writes
//! the samples straight into Prometheus blocks on disk instead;
//! `cairn-loadgen verify-acked` checks a restarted server against an
//! acknowledgement report.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_gpusim::ClusterSpec;
use cairn_loadgen::ack::{AckReport, ConnAck};
use cairn_loadgen::query::QueryClient;
use cairn_loadgen::send::{HttpClient, Retry, Sender};
use cairn_loadgen::{EncodeStats, LoadSpec, Producer, SliceEncoder};
use clap::Parser;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The exit status of a run that stopped on a request that kept failing
/// (`--stop-on-failure-after`), its report written.
const EXIT_STOPPED: u8 = 3;

/// Remote-write load generator modelling a Kubernetes GPU cluster.
///
/// Without a subcommand it sends the cluster's samples to --url; `blocks`
/// writes them into Prometheus blocks on disk instead; `verify-acked`
/// checks that a server killed during a run and restarted holds what the
/// run's --ack-out report says was acknowledged.
///
/// Each connection sends its shard's requests one at a time, in order. A
/// request that fails (no connection, 5xx, 429) is retried with a backoff
/// from 30 ms doubling up to 2 s: at most 20 attempts, after which it
/// counts as failed and the connection goes on with its next request; with
/// --stop-on-failure-after, until it has failed for that long, and then
/// the run stops. A 4xx answer other than 429 fails a request at once.
///
/// The run is encoded and sent in slices of at most --slice-mib of
/// compressed requests, so memory does not grow with --hours. By default
/// each slice is encoded while nothing is sent, on --encode-threads
/// threads (every core), and the rate reported
/// (samples_per_second = samples / seconds) covers only the time spent
/// sending, as when the whole run was encoded first; `wall_seconds` adds
/// the pauses for encoding the slices after the first. The server's CPU
/// time (server_cpu_ticks) is read from the first request sent to the last
/// answered, pauses included (work the server defers runs in them too);
/// server_cpu_ticks_sending sums it over the sending only. With
/// --encode-ahead the next slice is encoded on a thread while the current
/// one is sent: shorter runs, but the encoding then competes with the
/// server for CPU, and the rate includes that (the summary's `rate_covers`
/// says which).
#[derive(Debug, Parser)]
#[command(
    name = "cairn-loadgen",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Remote-write URL, e.g. http://127.0.0.1:9201/api/v1/write. Repeat it
    /// to send the same requests, encoded once, to several receivers at
    /// once; the throughput figures then cover all of them together.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Nodes in the simulated cluster (8 GPUs and ~600 node-exporter series each).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Hours of data to send (at the scrape interval).
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Hours of the simulation to skip before the data sent: a long span
    /// sent in parts (`--skip-hours 0 --hours 2`, `--skip-hours 2 --hours
    /// 2`, ... with one `--start-ms`) is the same data as one run.
    #[arg(long, default_value_t = 0.0)]
    skip_hours: f64,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    scrape_interval: i64,
    /// Milliseconds by which each target's scrape may be late (deterministic,
    /// every series of one scrape shares the timestamp), as real scrapes
    /// are; 0 puts every sample on the interval's grid. Below the interval.
    #[arg(long, default_value_t = 0)]
    jitter_ms: i64,
    /// Scrapes after which a GPU's pod is replaced (0: no churn).
    #[arg(long, default_value_t = 240)]
    pod_lifetime: u64,
    /// Concurrent connections (one shard each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Samples per request.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Most MiB of compressed requests encoded at a time (one slice; a
    /// single larger request is a slice of its own). Memory holds one
    /// slice, two with --encode-ahead, plus 16-32 bytes per distinct series
    /// (pod churn adds some every hour), about 6 MiB per encoding thread
    /// and a few MiB more, whatever --hours;
    /// requests take about 29 bytes per sample at the defaults. The
    /// requests sent are the same for any slice size.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    slice_mib: u64,
    /// Encode the next slice on another thread while the current one is
    /// sent, instead of between slices: the run takes less time, but the
    /// encoding competes with the server under test for CPU (the
    /// --encode-threads cores while encoding) and the rate reflects that.
    #[arg(long)]
    encode_ahead: bool,
    /// Threads that encode a slice (default: the number of CPUs). Encoding
    /// goes at roughly 1.2 M samples/s a thread, most of it generating the
    /// simulated series; the requests are the same for any number.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    encode_threads: Option<u64>,
    /// Timestamp in ms of the simulation's first scrape, before any skipped
    /// hours (default: the data sent ends now).
    #[arg(long)]
    start_ms: Option<i64>,
    /// Base URL of the receiver's Prometheus query API for verification, e.g. http://127.0.0.1:9201.
    #[arg(long)]
    verify_url: Option<String>,
    /// URL to GET after sending and before verifying (e.g. VictoriaMetrics's /internal/force_flush).
    #[arg(long)]
    flush_url: Option<String>,
    /// Process id of the receiver: its CPU time (utime + stime from
    /// /proc/PID/stat) while the requests are sent, before any verification,
    /// is reported as `server_cpu_ticks`, and its peak resident set size
    /// (VmHWM) when sending ends as `server_peak_rss_kib`.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Retry a failing request until it has failed for this many seconds
    /// without a success (instead of 20 attempts). A request that fails
    /// for good (that long, or on a 4xx answer other than 429) stops the
    /// run: every connection stops before its next attempt, the report is
    /// written (--ack-out) and the exit status is 3. For a server killed
    /// during the run (scripts/bench-crash.sh).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    stop_on_failure_after: Option<Duration>,
    /// Write which requests each connection got acknowledged (2xx) to
    /// FILE, as JSON, when the run ends or stops: per connection the
    /// requests and samples sent and acknowledged, and the last scrape
    /// time up to which every one of its samples was acknowledged; and
    /// T_ack, the smallest of those, up to which every sample of the run
    /// was (every series goes over one connection, whose requests are in
    /// scrape order: see `cairn_loadgen::ack`). With one --url only.
    #[arg(long, value_name = "FILE")]
    ack_out: Option<PathBuf>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let x: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(x).map_err(|e| format!("{e}"))
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Blocks(cairn_loadgen::blocks::BlocksArgs),
    VerifyAcked(cairn_loadgen::verify_acked::VerifyAckedArgs),
}

/// VmHWM of process `pid` in KiB, from /proc/PID/status.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = st.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of process `pid` in clock ticks (`getconf CLK_TCK` per
/// second), from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    if let Some(Command::Blocks(b)) = &a.command {
        return match cairn_loadgen::blocks::run(b, &mut std::io::stdout()) {
            Ok(_) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairn-loadgen blocks: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match &a.command {
        Some(Command::VerifyAcked(v)) => verify_acked(v, &rt),
        _ => remote_write(a, &rt),
    }
}

fn verify_acked(
    v: &cairn_loadgen::verify_acked::VerifyAckedArgs,
    rt: &tokio::runtime::Runtime,
) -> std::process::ExitCode {
    match rt.block_on(cairn_loadgen::verify_acked::run(v)) {
        Ok(verdict) => {
            println!("{}", verdict.summary);
            if verdict.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("cairn-loadgen verify-acked: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes the report to `path` (through a temporary file, renamed: a
/// reader never sees half of it).
fn write_report(path: &Path, report: &AckReport) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{}\n", report.to_json()))?;
    std::fs::rename(&tmp, path)
}

/// What was sent, over all slices.
#[derive(Debug, Default)]
struct Sent {
    samples: u64,
    requests: usize,
    bytes: usize,
    slices: u64,
    /// Time spent sending, summed over the slices.
    sending: Duration,
    /// The server's CPU ticks while sending, summed over the slices; None
    /// once a reading failed.
    server_ticks: Option<u64>,
}

fn remote_write(a: Args, rt: &tokio::runtime::Runtime) -> std::process::ExitCode {
    let interval_ms = a.scrape_interval * 1000;
    let scrapes = ((a.hours * 3_600_000.0) / interval_ms as f64)
        .round()
        .max(1.0) as u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    if a.jitter_ms < 0 || a.jitter_ms >= interval_ms {
        eprintln!(
            "--jitter-ms {} must be at least 0 and below the scrape interval ({interval_ms} ms)",
            a.jitter_ms
        );
        return std::process::ExitCode::FAILURE;
    }
    let first_scrape = ((a.skip_hours.max(0.0) * 3_600_000.0) / interval_ms as f64).round() as u64;
    let sim_start_ms = a
        .start_ms
        .unwrap_or(now - (first_scrape + scrapes) as i64 * interval_ms);
    // The first sample sent.
    let start_ms = sim_start_ms + first_scrape as i64 * interval_ms;
    let spec = LoadSpec {
        cluster: ClusterSpec {
            nodes: a.nodes,
            scrape_interval_ms: interval_ms,
            pod_lifetime_scrapes: a.pod_lifetime,
            ..ClusterSpec::default()
        },
        scrapes,
        first_scrape,
        start_ms: sim_start_ms,
        batch: a.batch,
        shards: a.connections,
        jitter_ms: a.jitter_ms,
    };
    if a.ack_out.is_some() && a.url.len() != 1 {
        eprintln!("--ack-out takes one --url");
        return std::process::ExitCode::FAILURE;
    }
    let mut urls: Vec<hyper::Uri> = Vec::new();
    for u in &a.url {
        match u.parse() {
            Ok(u) => urls.push(u),
            Err(e) => {
                eprintln!("bad --url {u}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let threads = a.encode_threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| usize::try_from(n).unwrap_or(1),
    );
    let encoder = SliceEncoder::with_threads(spec.clone(), threads);
    // One client, and so one connection, per shard and receiver, kept
    // from slice to slice.
    let clients: Vec<Vec<(HttpClient, hyper::Uri)>> = (0..encoder.shards())
        .map(|_| {
            urls.iter()
                .map(|u| {
                    let client: HttpClient = Client::builder(TokioExecutor::new())
                        .pool_max_idle_per_host(1)
                        .build_http();
                    (client, u.clone())
                })
                .collect()
        })
        .collect();
    let max_bytes = usize::try_from(a.slice_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let mut producer = if a.encode_ahead {
        match Producer::ahead(encoder, max_bytes) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        Producer::inline(encoder, max_bytes)
    };
    let sender = Sender::new(match a.stop_on_failure_after {
        Some(d) => Retry::StopAfter(d),
        None => Retry::Attempts(20),
    });
    let mut acks: Vec<Vec<ConnAck>> = clients
        .iter()
        .map(|r| vec![ConnAck::default(); r.len()])
        .collect();
    let mut sent = Sent {
        server_ticks: Some(0),
        ..Sent::default()
    };
    let mut first: Option<(Instant, Option<u64>)> = None;
    // Every request of the run was handed out to its connection.
    let mut complete = false;
    while !sender.stopped() {
        let Some(slice) = producer.next_slice() else {
            complete = true;
            break;
        };
        // The server's CPU time and the wall time count from the first
        // request sent, once the first slice is encoded.
        if first.is_none() {
            first = Some((Instant::now(), a.server_pid.and_then(cpu_ticks)));
        }
        if a.stop_on_failure_after.is_some() {
            // Progress, for scripts that kill the server during the run.
            eprintln!(
                "sending slice {} ({} requests, {} samples)",
                sent.slices + 1,
                slice.requests(),
                slice.samples()
            );
        }
        sent.samples += slice.samples();
        sent.requests += slice.requests();
        sent.bytes += slice.bytes();
        sent.slices += 1;
        let c0 = a.server_pid.and_then(cpu_ticks);
        let t = Instant::now();
        rt.block_on(sender.send_slice(&clients, slice, &mut acks));
        sent.sending += t.elapsed();
        let c1 = a.server_pid.and_then(cpu_ticks);
        sent.server_ticks = match (sent.server_ticks, c0, c1) {
            (Some(n), Some(c0), Some(c1)) => Some(n + c1.saturating_sub(c0)),
            _ => None,
        };
    }
    let wall = first.map_or(0.0, |(t0, _)| t0.elapsed().as_secs_f64());
    let cpu0 = first.and_then(|(_, c)| c);
    let server_cpu = match (cpu0, a.server_pid.and_then(cpu_ticks)) {
        (Some(c0), Some(c1)) => serde_json::json!(c1.saturating_sub(c0)),
        _ => serde_json::Value::Null,
    };
    let server_cpu_sending = match (a.server_pid, sent.server_ticks) {
        (Some(_), Some(n)) => serde_json::json!(n),
        _ => serde_json::Value::Null,
    };
    let peak_rss = a
        .server_pid
        .and_then(peak_rss_kib)
        .map_or(serde_json::Value::Null, |k| serde_json::json!(k));
    let stopped = sender.stopped();
    let failures = sender.failures.load(Ordering::Relaxed);
    let mut ok = failures == 0 && !stopped;
    let report = AckReport {
        spec,
        url: a.url.first().cloned().unwrap_or_default(),
        complete: complete && !stopped,
        stopped,
        connections: acks.iter().filter_map(|r| r.first().cloned()).collect(),
    };
    if let Some(path) = &a.ack_out {
        if let Err(e) = write_report(path, &report) {
            eprintln!("cannot write {}: {e}", path.display());
            ok = false;
        }
    }
    let stats = producer.finish().unwrap_or_else(|e| {
        eprintln!("{e}");
        ok = false;
        EncodeStats {
            distinct_series: 0,
            encode: Duration::ZERO,
        }
    });
    let (total, requests, distinct) = (sent.samples, sent.requests, stats.distinct_series);
    let encode_s = stats.encode.as_secs_f64();
    eprintln!(
        "encoded {total} samples of {distinct} series in {requests} requests ({} MiB compressed, {} slices of at most {} MiB) in {encode_s:.1}s on {threads} threads",
        sent.bytes >> 20,
        sent.slices,
        a.slice_mib,
    );
    let secs = sent.sending.as_secs_f64();
    let rate = if secs > 0.0 {
        (total * urls.len() as u64) as f64 / secs
    } else {
        0.0
    };
    let rate_covers = if a.encode_ahead {
        "sending, while the next slice was encoded on another thread"
    } else {
        "sending only: each slice was encoded before it was sent"
    };
    // The last scrape may be late by up to the jitter.
    let end_ms = start_ms + (scrapes as i64 - 1) * interval_ms + a.jitter_ms.max(0);
    let mut verified = serde_json::Value::Null;
    if let Some(f) = &a.flush_url {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        if let Ok(uri) = f.parse::<hyper::Uri>() {
            if let Ok(req) = hyper::Request::get(uri).body(Full::new(Bytes::new())) {
                let _ = rt.block_on(client.request(req));
            }
        }
    }
    if let (Some(base), false) = (&a.verify_url, stopped) {
        match rt.block_on(QueryClient::new(base).count_all(start_ms, end_ms)) {
            Ok(n) => {
                verified = serde_json::json!(n);
                if n != total {
                    eprintln!("verification: receiver holds {n} samples, {total} were sent");
                    ok = false;
                }
            }
            Err(e) => {
                eprintln!("verification failed: {e}");
                ok = false;
            }
        }
    }
    let out = serde_json::json!({
        "samples": total, "series": distinct, "requests": requests, "seconds": secs,
        "samples_per_second": rate, "server_cpu_ticks": server_cpu, "server_peak_rss_kib": peak_rss, "retries": sender.retries.load(Ordering::Relaxed),
        "failed_requests": failures, "verified_samples": verified,
        "stopped": stopped, "samples_acked": report.samples_acked(), "t_ack_ms": report.t_ack_ms(),
        "start_ms": start_ms, "end_ms": end_ms,
        "slices": sent.slices, "slice_mib": a.slice_mib, "encode_ahead": a.encode_ahead,
        "encode_threads": threads,
        "encode_seconds": encode_s, "wall_seconds": wall, "rate_covers": rate_covers,
        "server_cpu_ticks_sending": server_cpu_sending,
    });
    if a.json {
        println!("{out}");
    } else {
        let (retries, failed) = (
            out.get("retries").unwrap_or(&serde_json::Value::Null),
            out.get("failed_requests")
                .unwrap_or(&serde_json::Value::Null),
        );
        println!("sent {total} samples in {secs:.2}s: {rate:.0} samples/s ({retries} retries, {failed} failed requests)");
        println!(
            "  {} slices, {wall:.2}s from the first request to the last answer; the rate covers {rate_covers} ({encode_s:.1}s encoding)",
            sent.slices
        );
    }
    if stopped {
        eprintln!(
            "stopped: {} of the {total} samples handed out acknowledged; every sample up to {} was",
            report.samples_acked(),
            report
                .t_ack_ms()
                .map_or("no time".to_string(), |t| format!("{t} ms"))
        );
        std::process::ExitCode::from(EXIT_STOPPED)
    } else if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
