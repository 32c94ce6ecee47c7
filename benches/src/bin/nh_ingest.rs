//! Remote-write ingest with native histograms in the mix, for
//! `scripts/bench-histograms.sh`: the simulated GPU cluster's series
//! (`cairn-gpusim`), plus a per-GPU latency histogram, either as a classic
//! histogram (12 `_bucket` series, `_sum`, `_count`) or as one native
//! histogram (schema 3, integer counts) with the same observations.
//!
//! All requests (remote write 1.0, snappy, at most `--batch` series each,
//! a histogram counting as one sample) are encoded first, each series always
//! in the same connection's requests (as Prometheus's shards send them);
//! then `--conns` threads send their requests in scrape order and the run's wall time and the server's CPU
//! (utime + stime of `--pid`, from /proc) are measured. Prints one line:
//! `mode floats histograms seconds samples_per_s cpu_us_per_sample`.
//!
//! With `--protocol otlp` (and `--mode classic`), the same floats go to an
//! OTLP receiver as gauge points instead (uncompressed protobuf), for
//! comparing data points per second with remote write's samples per second.
//!
//! Usage: nh_ingest --url URL --pid PID --mode classic|native [--protocol rw|otlp]
//!        [--nodes 100] [--scrapes 60] [--conns 4] [--batch 2000]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // a benchmark tool: failing means stopping with the reason

use std::time::Instant;

use bytes::Bytes;
use cairn_gpusim::ClusterSpec;
use cairn_proto::histogram::{BucketSpan, Count, Histogram, ZeroCount};
use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

/// Latency observations per GPU per scrape.
const PER_SCRAPE: u64 = 40;
/// How the observations fall into the 12 buckets (sums to 1).
const FRACS: [f64; 12] = [
    0.02, 0.05, 0.09, 0.14, 0.17, 0.16, 0.13, 0.09, 0.06, 0.04, 0.03, 0.02,
];
/// Index of the first bucket at schema 3: upper bound 2^(-20/8) ≈ 0.18 s.
const FIRST: i32 = -19;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn labels(pairs: &[(&str, String)]) -> Vec<Label> {
    let mut v: Vec<(&str, &String)> = pairs.iter().map(|(k, v)| (*k, v)).collect();
    v.sort();
    v.into_iter()
        .map(|(k, v)| Label {
            name: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect()
}

/// Absolute bucket counts of one GPU's histogram at `step`.
fn counts(gpu_slot: u64, step: u64) -> Vec<u64> {
    let n = (step + 1) * PER_SCRAPE + gpu_slot % 7;
    FRACS.iter().map(|f| (n as f64 * f) as u64).collect()
}

/// One request's body: remote write 1.0 with snappy, or an OTLP export
/// request (floats as gauge points, labels as point attributes, the metric
/// name as the metric's) without compression.
fn encode(series: Vec<TimeSeries>, otlp: bool) -> Vec<u8> {
    use cairn_proto::otlp as o;
    if !otlp {
        let raw = WriteRequest {
            timeseries: series,
            ..Default::default()
        }
        .encode_to_vec();
        return snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    }
    let mut by_name: std::collections::BTreeMap<String, Vec<o::NumberDataPoint>> =
        std::collections::BTreeMap::new();
    for ts in series {
        let mut name = String::new();
        let mut attributes = Vec::new();
        for l in &ts.labels {
            let (k, v) = (
                String::from_utf8_lossy(&l.name).into_owned(),
                String::from_utf8_lossy(&l.value).into_owned(),
            );
            if k == "__name__" {
                name = v;
            } else {
                attributes.push(o::KeyValue {
                    key: k,
                    value: Some(o::AnyValue {
                        value: Some(o::Value::StringValue(v)),
                    }),
                });
            }
        }
        for smp in ts.samples {
            by_name
                .entry(name.clone())
                .or_default()
                .push(o::NumberDataPoint {
                    attributes: attributes.clone(),
                    time_unix_nano: smp.timestamp as u64 * 1_000_000,
                    value: Some(o::NumberValue::AsDouble(smp.value)),
                    ..Default::default()
                });
        }
    }
    o::ExportMetricsServiceRequest {
        resource_metrics: vec![o::ResourceMetrics {
            scope_metrics: vec![o::ScopeMetrics {
                metrics: by_name
                    .into_iter()
                    .map(|(name, data_points)| o::Metric {
                        name,
                        data: Some(o::MetricData::Gauge(o::Gauge { data_points })),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url", "");
    let pid: u32 = arg(&args, "--pid", "0").parse().unwrap();
    let native = arg(&args, "--mode", "classic") == "native";
    let otlp = arg(&args, "--protocol", "rw") == "otlp";
    assert!(
        !(native && otlp),
        "--protocol otlp sends floats only (--mode classic)"
    );
    let nodes: usize = arg(&args, "--nodes", "100").parse().unwrap();
    let scrapes: u64 = arg(&args, "--scrapes", "60").parse().unwrap();
    let conns: usize = arg(&args, "--conns", "4").parse().unwrap();
    let batch: usize = arg(&args, "--batch", "2000").parse().unwrap();
    let spec = ClusterSpec {
        nodes,
        ..ClusterSpec::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - scrapes as i64 * spec.scrape_interval_ms;
    // Upper bounds of the 12 buckets, for the classic version.
    let bounds: Vec<String> = (0..12)
        .map(|k| format!("{}", 2f64.powf(f64::from(FIRST + k) / 8.0)))
        .collect();

    // Each connection sends its own series, in time order, as Prometheus's
    // remote-write shards do (a series always goes through the same shard):
    // series are spread over connections by a hash of their labels.
    let mut bodies: Vec<Vec<Vec<u8>>> = vec![Vec::new(); conns];
    let (mut floats, mut hists) = (0u64, 0u64);
    let mut cur: Vec<Vec<TimeSeries>> = vec![Vec::new(); conns];
    let shard = |ls: &[Label]| -> usize {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for l in ls {
            for b in l.name.iter().chain(l.value.iter()) {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        (h % conns as u64) as usize
    };
    let mut push = |ts: TimeSeries| {
        let c = shard(&ts.labels);
        cur[c].push(ts);
        if cur[c].len() >= batch {
            bodies[c].push(encode(std::mem::take(&mut cur[c]), otlp));
        }
    };
    for step in 0..scrapes {
        let t = t0 + step as i64 * spec.scrape_interval_ms;
        for s in spec.series_at(step) {
            push(TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| Label {
                        name: Bytes::copy_from_slice(l.name.as_bytes()),
                        value: Bytes::copy_from_slice(l.value.as_bytes()),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: spec.value(&s, step),
                    timestamp: t,
                }],
                ..Default::default()
            });
            floats += 1;
        }
        for node in 0..nodes {
            for gpu in 0..spec.gpus_per_node {
                let slot = (node * spec.gpus_per_node + gpu) as u64;
                let c = counts(slot, step);
                let total: u64 = c.iter().sum();
                let sum = total as f64 * 0.31;
                let base = [
                    ("job", "gpu-serving".to_owned()),
                    ("Hostname", spec.hostname(node)),
                    ("gpu", gpu.to_string()),
                ];
                if native {
                    let mut deltas = Vec::with_capacity(c.len());
                    let mut prev = 0i64;
                    for &x in &c {
                        deltas.push(x as i64 - prev);
                        prev = x as i64;
                    }
                    let mut pairs = base.to_vec();
                    pairs.push(("__name__", "gpu_kernel_latency_seconds".to_owned()));
                    push(TimeSeries {
                        labels: labels(&pairs),
                        histograms: vec![Histogram {
                            count: Some(Count::CountInt(total)),
                            sum,
                            schema: 3,
                            zero_threshold: 1e-128,
                            zero_count: Some(ZeroCount::ZeroCountInt(0)),
                            positive_spans: vec![BucketSpan {
                                offset: FIRST,
                                length: c.len() as u32,
                            }],
                            positive_deltas: deltas,
                            timestamp: t,
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                    hists += 1;
                } else {
                    let mut cum = 0u64;
                    let mut add = |name: &str, le: Option<&str>, v: f64| {
                        let mut pairs = base.to_vec();
                        pairs.push(("__name__", name.to_owned()));
                        if let Some(le) = le {
                            pairs.push(("le", le.to_owned()));
                        }
                        push(TimeSeries {
                            labels: labels(&pairs),
                            samples: vec![Sample {
                                value: v,
                                timestamp: t,
                            }],
                            ..Default::default()
                        });
                    };
                    for (k, x) in c.iter().enumerate() {
                        cum += x;
                        add(
                            "gpu_kernel_latency_seconds_bucket",
                            Some(&bounds[k]),
                            cum as f64,
                        );
                    }
                    add(
                        "gpu_kernel_latency_seconds_bucket",
                        Some("+Inf"),
                        total as f64,
                    );
                    add("gpu_kernel_latency_seconds_sum", None, sum);
                    add("gpu_kernel_latency_seconds_count", None, total as f64);
                    floats += 15;
                }
            }
        }
    }
    // What is left of each connection's series.
    for (c, rest) in cur.iter_mut().enumerate() {
        if !rest.is_empty() {
            bodies[c].push(encode(std::mem::take(rest), otlp));
        }
    }

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::scope(|sc| {
        for mine in &bodies {
            let agent = &agent;
            let url = &url;
            sc.spawn(move || {
                for (i, b) in mine.iter().enumerate() {
                    let req = agent
                        .post(url)
                        .header("Content-Type", "application/x-protobuf");
                    let req = if otlp {
                        req
                    } else {
                        req.header("Content-Encoding", "snappy")
                            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    };
                    let mut r = req.send(&b[..]).unwrap();
                    let status = r.status().as_u16();
                    if status / 100 != 2 {
                        let body = r.body_mut().read_to_string().unwrap_or_default();
                        panic!("request {i}: status {status}: {body}");
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0;
    let n = (floats + hists) as f64;
    println!(
        "{} {floats} {hists} {secs:.3} {:.0} {:.3}",
        if native {
            "native"
        } else if otlp {
            "otlp"
        } else {
            "classic"
        },
        n / secs,
        cpu * 1e6 / n
    );
}
