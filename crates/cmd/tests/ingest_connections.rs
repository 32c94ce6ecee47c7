//! Many senders on kept-alive connections, with pod churn, store exactly the
//! samples sent under exactly the labels sent. Remote write keeps per-connection
//! and server-wide caches of series it has seen; this checks them end to end
//! against the simulated cluster's own values, sample by sample.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cairn_gpusim::ClusterSpec;
use cairn_model::Labels;
use support::*;

const SCRAPES: u64 = 90;
const SHARDS: usize = 4;

#[test]
fn concurrent_senders_with_churn_store_exactly_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _c = start_cairn(&dir.path().join("d"), port, &[]);
    let url = format!("http://127.0.0.1:{port}");
    let spec = ClusterSpec {
        nodes: 3,
        pod_lifetime_scrapes: 15,
        scrape_interval_ms: 15_000,
        ..Default::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = (now - 3_600_000) / 1000 * 1000;

    // Expected samples per series, and per-shard request streams in time order.
    let mut expected: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut shards: Vec<Vec<Vec<(Labels, i64, f64)>>> = vec![vec![Vec::new()]; SHARDS];
    for step in 0..SCRAPES {
        let t = start + step as i64 * spec.scrape_interval_ms;
        for s in spec.series_at(step) {
            let v = spec.value(&s, step);
            let key: BTreeMap<String, String> = s.labels.to_pairs().into_iter().collect();
            expected
                .entry(serde_json::to_string(&key).unwrap())
                .or_default()
                .push((t, cairn_api_value(v)));
            let shard = (s.labels.hash64() % SHARDS as u64) as usize;
            let reqs = &mut shards[shard];
            if reqs.last().is_some_and(|r| r.len() >= 500) {
                reqs.push(Vec::new());
            }
            if let Some(r) = reqs.last_mut() {
                r.push((s.labels, t, v));
            }
        }
    }
    let senders: Vec<_> = shards
        .into_iter()
        .map(|reqs| {
            let w = format!("{url}/api/v1/write");
            std::thread::spawn(move || {
                // Each shard sends in order but alternates between two kept-alive
                // connections, as Prometheus's pooled client does, so series
                // move between connections.
                let agents: Vec<ureq::Agent> = (0..2)
                    .map(|_| {
                        ureq::Agent::config_builder()
                            .http_status_as_error(false)
                            .timeout_global(Some(Duration::from_secs(60)))
                            .max_idle_connections_per_host(1)
                            .build()
                            .into()
                    })
                    .collect();
                for (i, r) in reqs.into_iter().enumerate() {
                    let agent = &agents[i % 2];
                    let mut raw = Vec::new();
                    cairn_loadgen::encode_write_request(&r, &mut raw);
                    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
                    let resp = agent
                        .post(&w)
                        .header("Content-Type", "application/x-protobuf")
                        .header("Content-Encoding", "snappy")
                        .send(&body[..])
                        .unwrap();
                    assert_eq!(resp.status().as_u16(), 204);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }

    // Everything, raw, as stored.
    let t = (start + SCRAPES as i64 * spec.scrape_interval_ms) / 1000;
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "{__name__=~\".+\"}[2h]"),
            ("time", &t.to_string()),
        ],
    );
    assert_eq!(r.status, 200);
    let mut got: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for s in r.json()["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let key: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
        let pts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.insert(serde_json::to_string(&key).unwrap(), pts);
    }
    assert_eq!(got.len(), expected.len(), "series stored vs sent");
    for (k, want) in &expected {
        assert_eq!(got.get(k), Some(want), "series {k}");
    }
}

/// A value as the query API prints it.
fn cairn_api_value(v: f64) -> String {
    cairn_api::format_float(v)
}
