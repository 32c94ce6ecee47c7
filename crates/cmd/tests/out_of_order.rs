//! `--storage.tsdb.out-of-order-time-window`: late samples inside the window
//! (by default the raw retention) are stored and queryable; with the window
//! set to 0s they are refused with a 400 that says why, and the rest of the
//! request is stored.

mod support;

use cairn_model::Labels;
use support::*;

fn series(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "ooo")])
}

#[test]
fn late_samples_inside_the_window_are_kept() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = (now - 600_000) / 1000 * 1000;
    let tmp = tempfile::tempdir().unwrap();

    let port = free_port();
    let _c = start_cairn(
        &tmp.path().join("with"),
        port,
        &["--storage.tsdb.out-of-order-time-window=30m"],
    );
    let url = format!("http://127.0.0.1:{port}");
    let w = format!("{url}/api/v1/write");
    assert_eq!(
        remote_write(&w, &[(series("late"), t, 1.0)])
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        remote_write(&w, &[(series("late"), t - 600_000, 2.0)])
            .unwrap()
            .status,
        204
    );
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "late[1h]"),
            ("time", &((t / 1000) + 1).to_string()),
        ],
    );
    let v = r.json();
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );

    // The default window is the retention: taken too.
    let port3 = free_port();
    let _c3 = start_cairn(&tmp.path().join("default"), port3, &[]);
    let w3 = format!("http://127.0.0.1:{port3}/api/v1/write");
    for (t, v) in [(t, 1.0), (t - 600_000, 2.0), (t - 6 * 3_600_000, 3.0)] {
        let r = remote_write(&w3, &[(series("late"), t, v)]).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let v = post_form(
        &format!("http://127.0.0.1:{port3}/api/v1/query"),
        &[
            ("query", "late[7h]"),
            ("time", &((t / 1000) + 1).to_string()),
        ],
    )
    .json();
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(3),
        "{v}"
    );

    let port2 = free_port();
    let _c2 = start_cairn(
        &tmp.path().join("without"),
        port2,
        &["--storage.tsdb.out-of-order-time-window=0s"],
    );
    let w2 = format!("http://127.0.0.1:{port2}/api/v1/write");
    assert_eq!(
        remote_write(&w2, &[(series("late"), t, 1.0)])
            .unwrap()
            .status,
        204
    );
    let r = remote_write(
        &w2,
        &[
            (series("late"), t - 600_000, 2.0),
            (series("other"), t, 3.0),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("out of order"), "{}", r.text());
    let r = post_form(
        &format!("http://127.0.0.1:{port2}/api/v1/query"),
        &[("query", "other"), ("time", &((t / 1000) + 1).to_string())],
    );
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "3",
        "the good sample of a partly bad request is stored"
    );
}
