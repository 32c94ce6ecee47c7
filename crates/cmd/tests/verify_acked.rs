//! `cairn-loadgen verify-acked`'s check against a real server: half of
//! each connection's requests sent and acknowledged, `cairn serve` killed
//! with SIGKILL and restarted; the check finds every acknowledged sample
//! up to T_ack, and it fails for a report that claims more was
//! acknowledged, or less sent, than the server holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::time::Duration;

use cairn_gpusim::ClusterSpec;
use cairn_loadgen::ack::{AckReport, ConnAck};
use cairn_loadgen::query::QueryClient;
use cairn_loadgen::verify_acked::{verify, Verdict};
use cairn_loadgen::{build, LoadSpec};
use support::*;

fn check(report: &AckReport, url: &str) -> Verdict {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(verify(report, &QueryClient::new(url))).unwrap()
}

#[test]
fn verify_acked_after_a_kill_in_the_middle_of_a_run() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let spec = LoadSpec {
        cluster: ClusterSpec {
            nodes: 2,
            pod_lifetime_scrapes: 4,
            ..ClusterSpec::default()
        },
        scrapes: 12,
        first_scrape: 0,
        // Recent, on a 15 s grid.
        start_ms: (now - 600_000) / 15_000 * 15_000,
        batch: 300,
        shards: 3,
        jitter_ms: 40,
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_cairn(&data, port, &[]);
    wait_ready(&format!("{url}/-/ready"), Duration::from_secs(30));

    // Each connection's first half acknowledged, the rest never sent.
    let (shards, _) = build(&spec);
    let mut connections = vec![ConnAck::default(); shards.len()];
    for (shard, ack) in shards.iter().zip(&mut connections) {
        let half = shard.requests.len() / 2;
        assert!(half > 1);
        for (i, (body, meta)) in shard.requests.iter().zip(&shard.meta).enumerate() {
            if i == half {
                ack.unsent(meta);
                break;
            }
            let r = post(
                &format!("{url}/api/v1/write"),
                &[
                    ("Content-Type", "application/x-protobuf"),
                    ("Content-Encoding", "snappy"),
                    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
                ],
                body,
            )
            .unwrap();
            assert!(r.status / 100 == 2, "{}: {}", r.status, r.text());
            ack.acked(meta);
        }
    }
    server.kill9();
    let _server = start_cairn(&data, port, &[]);
    wait_ready(&format!("{url}/-/ready"), Duration::from_secs(60));

    let report = AckReport {
        spec: spec.clone(),
        url: format!("{url}/api/v1/write"),
        complete: false,
        stopped: true,
        connections,
    };
    let step = report.ack_step().expect("an acknowledged step");
    assert!(step > spec.first_scrape && step < spec.scrapes - 1);
    let v = check(&report, &url);
    assert!(v.ok, "{}", v.summary);
    let s = &v.summary;
    assert!(s["expected_through_t_ack"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["found_through_t_ack"], s["expected_through_t_ack"], "{s}");
    assert_eq!(s["found_in_run"], s["samples_acked"], "{s}");
    assert!(s["metrics"].as_object().unwrap().len() > 10, "{s}");

    // Claiming the whole run was acknowledged: the rest is missing.
    let mut all = report.clone();
    all.complete = true;
    for c in &mut all.connections {
        c.gap_step = None;
    }
    let v = check(&all, &url);
    assert!(!v.ok, "{}", v.summary);
    assert!(
        v.summary["found_through_t_ack"].as_u64() < v.summary["expected_through_t_ack"].as_u64()
    );

    // Claiming fewer samples sent than the server holds.
    let mut fewer = report.clone();
    for c in &mut fewer.connections {
        c.samples_sent /= 2;
        c.samples_acked /= 2;
    }
    let v = check(&fewer, &url);
    assert!(!v.ok, "{}", v.summary);
    assert!(
        v.summary["problems"].to_string().contains("were sent"),
        "{}",
        v.summary
    );
}
