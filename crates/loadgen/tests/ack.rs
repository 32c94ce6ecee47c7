//! The acknowledgement report: when the receiver starts refusing in the
//! middle of a run, `cairn-loadgen --stop-on-failure-after --ack-out`
//! stops and reports a T_ack up to which the receiver answered 2xx to
//! every sample; and the samples `verify-acked` expects up to T_ack are
//! exactly the generated samples with a timestamp up to it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cairn_gpusim::ClusterSpec;
use cairn_loadgen::ack::{expected_by_name, run_steps, step_end_ms, AckReport};
use cairn_loadgen::{build, LoadSpec};
use support::{decode_request, series_key};

/// A sample: its series' labels (`name=value,` pairs), timestamp, value bits.
type Sample = (String, i64, u64);

/// Every sample in remote-write request bodies.
fn decode(bodies: &[Vec<u8>]) -> Vec<Sample> {
    let mut out = Vec::new();
    for b in bodies {
        for ts in decode_request(b).timeseries {
            let key = series_key(&ts);
            for x in ts.samples {
                out.push((key.clone(), x.timestamp, x.value.to_bits()));
            }
        }
    }
    out
}

/// Every sample a spec generates.
fn generated(spec: &LoadSpec) -> Vec<Sample> {
    let (shards, _) = build(spec);
    let bodies: Vec<Vec<u8>> = shards
        .iter()
        .flat_map(|s| &s.requests)
        .map(|b| b.to_vec())
        .collect();
    decode(&bodies)
}

/// A remote-write receiver that answers 200 to its first `limit`
/// requests, then closes every connection without an answer, as a killed
/// server's connections end and new ones fail.
struct Receiver {
    port: u16,
    /// The bodies it answered 200 to.
    acked: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    fn start(limit: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (a, d) = (acked.clone(), down.clone());
        // Detached: the test process ends it.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (a, d) = (a.clone(), d.clone());
                std::thread::spawn(move || serve(stream, limit, &a, &d));
            }
        });
        Receiver { port, acked }
    }
}

/// Answers the connection's requests, one at a time, until the limit.
fn serve(stream: TcpStream, limit: usize, acked: &Mutex<Vec<Vec<u8>>>, down: &AtomicBool) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut len = None;
        let mut line = String::new();
        // Request line and headers.
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; len.expect("a Content-Length")];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        {
            let mut a = acked.lock().unwrap();
            if down.load(Ordering::SeqCst) || a.len() >= limit {
                down.store(true, Ordering::SeqCst);
                return; // closed without an answer
            }
            a.push(body);
            // Answered under the lock: what is recorded is what was answered.
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    }
}

fn spec() -> LoadSpec {
    LoadSpec {
        cluster: ClusterSpec {
            nodes: 3,
            pod_lifetime_scrapes: 5,
            ..ClusterSpec::default()
        },
        // --hours 0.25 at 15 s: about 4 MiB of requests.
        scrapes: 60,
        first_scrape: 0,
        start_ms: 1_700_000_000_000,
        batch: 100,
        shards: 3,
        jitter_ms: 40,
    }
}

#[test]
fn t_ack_bounds_what_the_receiver_answered_when_it_starts_refusing() {
    let spec = spec();
    let all = generated(&spec);
    let total_requests = all.len().div_ceil(spec.batch);
    let limit = total_requests * 2 / 5;
    let recv = Receiver::start(limit);
    let dir = tempfile::tempdir().unwrap();
    let ack_path = dir.path().join("ack.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn-loadgen"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{}/api/v1/write", recv.port),
        ])
        .args(["--nodes", "3", "--hours", "0.25", "--pod-lifetime", "5"])
        .args(["--start-ms", "1700000000000", "--jitter-ms", "40"])
        .args(["--connections", "3", "--batch", "100"])
        // Several slices: the run stops in the second or third.
        .args(["--slice-mib", "1", "--encode-threads", "2"])
        .args(["--stop-on-failure-after", "0.3", "--json"])
        .arg("--ack-out")
        .arg(&ack_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("sending slice 2"), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ack_path).unwrap()).unwrap();
    let report = AckReport::from_json(&v).unwrap();
    assert_eq!(report.spec.cluster.nodes, 3);
    assert!(report.stopped && !report.complete, "{v}");
    assert_eq!(report.connections.len(), 3);

    let answered = recv.acked.lock().unwrap().clone();
    assert_eq!(answered.len(), limit);
    // What the report says was acknowledged is what the receiver answered.
    let requests_acked: u64 = report.connections.iter().map(|c| c.requests_acked).sum();
    assert_eq!(requests_acked as usize, limit, "{v}");
    let received = decode(&answered);
    assert_eq!(report.samples_acked() as usize, received.len(), "{v}");
    assert!(report.samples_sent() >= report.samples_acked());

    // Every generated sample up to T_ack was answered 2xx, and T_ack is
    // inside the run.
    let t_ack = report.t_ack_ms().expect("a T_ack");
    assert_eq!(v["t_ack_ms"].as_i64(), Some(t_ack));
    let received: HashSet<&Sample> = received.iter().collect();
    let upto: Vec<&Sample> = all.iter().filter(|s| s.1 <= t_ack).collect();
    assert!(!upto.is_empty());
    assert!(upto.len() < all.len());
    for s in &upto {
        assert!(
            received.contains(s),
            "{s:?} up to T_ack {t_ack} was not answered"
        );
    }
    // Each connection's own time: its series' samples up to it were answered.
    for (i, c) in v["connections"].as_array().unwrap().iter().enumerate() {
        let t = c["acked_through_ms"]
            .as_i64()
            .expect("every connection has a time");
        assert!(t >= t_ack);
        let shard_of = |s: &Sample| {
            let labels: Vec<(&str, &str)> =
                s.0.trim_end_matches(',')
                    .split(',')
                    .map(|p| p.split_once('=').unwrap())
                    .collect();
            let h = cairn_model::Labels::from_pairs(labels).hash64();
            (h % spec.shards as u64) as usize
        };
        let mine = all.iter().filter(|s| s.1 <= t && shard_of(s) == i);
        for s in mine {
            assert!(received.contains(s), "connection {i}: {s:?} up to {t}");
        }
    }
}

#[test]
fn expected_counts_are_the_generated_samples_up_to_t_ack() {
    for jitter_ms in [0, 40] {
        let spec = LoadSpec {
            first_scrape: 2,
            scrapes: 9,
            jitter_ms,
            ..spec()
        };
        let all = generated(&spec);
        let steps = run_steps(&spec);
        assert!(steps.start > 0);
        for through in steps.start - 1..=steps.end {
            let t = step_end_ms(&spec, through);
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for s in all.iter().filter(|s| s.1 <= t) {
                let name = s.0.split(',').find_map(|p| p.strip_prefix("__name__="));
                *want.entry(name.unwrap().to_string()).or_default() += 1;
            }
            assert_eq!(
                expected_by_name(&spec, through),
                want,
                "jitter {jitter_ms}, through step {through}"
            );
        }
    }
}
