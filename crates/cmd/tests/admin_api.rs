//! The admin API against the real binary, on data still in the head:
//! `delete_series` hides samples at once and across a SIGKILL, then
//! `clean_tombstones` and `snapshot` (whose blocks the real promtool dumps
//! with exactly the samples left); without `--web.enable-admin-api` every
//! admin endpoint answers 503.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cairn_model::Labels;
use support::*;

const STEP: i64 = 10_000;
const N: i64 = 60;

fn lbl(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "admin_test"), ("i", &i.to_string())])
}

fn samples(base: i64) -> Vec<(Labels, i64, f64)> {
    (0..3)
        .flat_map(|i| (0..N).map(move |k| (lbl(i), base + k * STEP, (k * 10 + i as i64) as f64)))
        .collect()
}

/// `(series i, t, value)` of every sample written, minus the deleted ones.
fn expected(base: i64, del: (i64, i64)) -> BTreeSet<(String, i64, String)> {
    samples(base)
        .into_iter()
        .filter(|(l, t, _)| !(l.get("i") == Some("0") && del.0 <= *t && *t <= del.1))
        .map(|(l, t, v)| (l.get("i").unwrap_or("").to_owned(), t, v.to_string()))
        .collect()
}

/// Every raw sample of `admin_test`, via a range query at the end of the data.
fn stored(url: &str, base: i64) -> BTreeSet<(String, i64, String)> {
    let at = (base + N * STEP) as f64 / 1000.0;
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", &format!("admin_test[{}s]", N * STEP / 1000 + 60)),
            ("time", &at.to_string()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut out = BTreeSet::new();
    for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let i = s["metric"]["i"].as_str().unwrap_or("?").to_owned();
        for p in s["values"].as_array().cloned().unwrap_or_default() {
            let t = (p[0].as_f64().unwrap_or(f64::NAN) * 1000.0).round() as i64;
            let val = p[1].as_str().unwrap_or("?").to_owned();
            out.insert((i.clone(), t, val));
        }
    }
    out
}

/// `promtool tsdb dump` of `dir`, parsed into `(series i, t, value)`.
fn promtool_dump(dir: &Path) -> BTreeSet<(String, i64, String)> {
    require_tool("/usr/bin/promtool");
    // promtool 2.42 opens the directory as a database and wants a WAL dir.
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let out = Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
        .expect("running promtool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "promtool failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut set = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // `{__name__="admin_test", i="0"} <value> <timestamp>`
        let (labels, rest) = line
            .rsplit_once('}')
            .unwrap_or_else(|| panic!("unexpected dump line {line:?}"));
        assert!(labels.contains("__name__=\"admin_test\""), "{line}");
        let i = labels
            .split("i=\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .unwrap_or("?")
            .to_owned();
        let mut f = rest.split_whitespace();
        let (v, t) = (f.next().unwrap_or("?"), f.next().unwrap_or("?"));
        let v: f64 = v.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        let t: i64 = t.parse().unwrap_or_else(|_| panic!("time in {line:?}"));
        set.insert((i, t, v.to_string()));
    }
    set
}

fn admin(url: &str, what: &str, form: &[(&str, &str)]) -> Resp {
    post_form(&format!("{url}/api/v1/admin/tsdb/{what}"), form)
}

#[test]
fn admin_api_deletes_head_data_durably_and_snapshots_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3_600_000) / 1000 * 1000;
    let del = (base + 100 * 1000, base + 300 * 1000);

    let mut cairn = start_cairn(&data, port, &["--web.enable-admin-api"]);
    let r = remote_write(&format!("{url}/api/v1/write"), &samples(base)).expect("remote write");
    assert!(
        r.status / 100 == 2,
        "remote write: {} {}",
        r.status,
        r.text()
    );
    let all = expected(base, (i64::MAX, i64::MIN));
    assert_eq!(all.len(), 3 * N as usize);
    assert_eq!(stored(&url, base), all);

    let r = admin(
        &url,
        "delete_series",
        &[
            ("match[]", "admin_test{i=\"0\"}"),
            ("start", &format!("{}", del.0 as f64 / 1000.0)),
            ("end", &format!("{}", del.1 as f64 / 1000.0)),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let want = expected(base, del);
    assert_eq!(want.len(), all.len() - 21, "21 samples of series 0 deleted");
    assert_eq!(stored(&url, base), want);

    // SIGKILL: the deletion must come back from the WAL.
    cairn.kill9();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _cairn = start_cairn(&data, port, &["--web.enable-admin-api"]);
    assert_eq!(stored(&url, base), want, "after kill -9 and restart");

    let r = admin(&url, "clean_tombstones", &[]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(stored(&url, base), want);

    let r = admin(&url, "snapshot", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    let name = v["data"]["name"]
        .as_str()
        .expect("snapshot name")
        .to_owned();
    assert!(!name.is_empty() && !name.contains('/'), "{name}");
    let snap = data.join("snapshots").join(&name);
    let blocks: Vec<_> = std::fs::read_dir(&snap)
        .unwrap_or_else(|e| panic!("{}: {e}", snap.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    assert!(!blocks.is_empty(), "the snapshot holds the head as a block");
    assert_eq!(promtool_dump(&snap), want, "promtool dump of the snapshot");

    // skip_head=true: no block exists yet, so nothing but an empty snapshot.
    let r = admin(&url, "snapshot", &[("skip_head", "true")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let name2 = r.json()["data"]["name"].as_str().unwrap_or("").to_owned();
    assert_ne!(name2, name);
    let n = std::fs::read_dir(data.join("snapshots").join(&name2))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("meta.json").exists())
        .count();
    assert_eq!(n, 0, "skip_head leaves the head out");
}

#[test]
fn admin_endpoints_answer_503_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _cairn = start_cairn(&data, port, &[]);
    for (what, form) in [
        ("delete_series", vec![("match[]", "up")]),
        ("clean_tombstones", vec![]),
        ("snapshot", vec![]),
    ] {
        let r = admin(&url, what, &form);
        assert_eq!(r.status, 503, "{what}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "error", "{what}: {v}");
        assert_eq!(v["errorType"], "unavailable", "{what}: {v}");
        assert_eq!(v["error"], "admin APIs disabled", "{what}: {v}");
    }
    assert!(!data.join("snapshots").exists(), "nothing was snapshotted");
}
