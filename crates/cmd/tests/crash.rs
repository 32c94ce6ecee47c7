//! Nothing acknowledged is lost: `cairn serve` is SIGKILLed at random points
//! while a sender streams remote writes; after a restart every sample that
//! got a 2xx is there, and the sender's retries fill in the rest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_gpusim::mix;
use cairn_model::Labels;
use support::*;

const SERIES: usize = 50;
const BATCHES: i64 = 4000;

fn batch(base: i64, i: i64) -> Vec<(Labels, i64, f64)> {
    (0..SERIES)
        .map(|k| {
            let l = Labels::from_pairs([
                ("__name__", "crash_test"),
                ("series", &k.to_string()),
                ("job", "crash"),
            ]);
            (l, base + i * 1000, i as f64)
        })
        .collect()
}

/// Raw samples per series in the store, via a range-vector instant query.
fn stored(url: &str, base: i64) -> Vec<Vec<i64>> {
    let t = (base + BATCHES * 1000) / 1000 + 1;
    let range = BATCHES + 10;
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", &format!("crash_test[{range}s]")),
            ("time", &t.to_string()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut out = vec![Vec::new(); SERIES];
    for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let k: usize = s["metric"]["series"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(usize::MAX);
        let Some(slot) = out.get_mut(k) else {
            panic!("unexpected series {}", s["metric"])
        };
        for p in s["values"].as_array().cloned().unwrap_or_default() {
            let ts = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
            let val: f64 = p[1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN);
            assert_eq!(
                val,
                ((ts - base) / 1000) as f64,
                "value of series {k} at {ts}"
            );
            slot.push(ts);
        }
    }
    out
}

#[test]
fn sigkill_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 2 * 3600 * 1000) / 1000 * 1000;
    let mut seed = now as u64;
    let mut next_unacked: i64 = 0;
    for round in 0..3 {
        let mut cairn = start_cairn(&data, port, &[]);
        if round > 0 {
            // Everything acknowledged before the last kill survived it.
            let have = stored(&url, base);
            for (k, ts) in have.iter().enumerate() {
                let want: Vec<i64> = (0..next_unacked).map(|i| base + i * 1000).collect();
                assert!(
                    ts.len() >= want.len() && ts[..want.len()] == want[..],
                    "round {round}: series {k} lost acknowledged samples: has {} of the first {}",
                    ts.len(),
                    want.len()
                );
            }
        }
        let acked = Arc::new(AtomicI64::new(next_unacked));
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                // Retries start from the first batch not acknowledged: exactly what a
                // Prometheus sender does after a failed request.
                let mut i = acked.load(Ordering::SeqCst);
                while i < BATCHES && !stop.load(Ordering::SeqCst) {
                    match remote_write(&format!("{url}/api/v1/write"), &batch(base, i)) {
                        Ok(r) if r.status / 100 == 2 => {
                            acked.store(i + 1, Ordering::SeqCst);
                            i += 1;
                        }
                        Ok(r) => panic!("batch {i}: unexpected {} {}", r.status, r.text()),
                        Err(_) => return,
                    }
                }
            })
        };
        seed = mix(seed);
        std::thread::sleep(Duration::from_millis(200 + seed % 800));
        cairn.kill9();
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender thread");
        next_unacked = acked.load(Ordering::SeqCst);
        assert!(
            next_unacked > 0,
            "round {round}: no write was acknowledged before the kill"
        );
    }
    // Final restart: check, then let the sender finish and check everything.
    let _cairn = start_cairn(&data, port, &[]);
    let have = stored(&url, base);
    for (k, ts) in have.iter().enumerate() {
        assert!(
            ts.len() as i64 >= next_unacked,
            "series {k} lost acknowledged samples"
        );
    }
    for i in next_unacked..BATCHES {
        let r = remote_write(&format!("{url}/api/v1/write"), &batch(base, i))
            .expect("write after restart");
        assert_eq!(r.status / 100, 2, "{}", r.text());
    }
    let have = stored(&url, base);
    let want: Vec<i64> = (0..BATCHES).map(|i| base + i * 1000).collect();
    for (k, ts) in have.iter().enumerate() {
        assert_eq!(ts, &want, "series {k} after retries");
    }
}
