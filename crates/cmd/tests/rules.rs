//! The ruler with real parts: a rule file that `promtool check rules`
//! accepts, evaluated by `cairn serve` over remote-written GPU metrics;
//! recording rules answer what Prometheus 2.42 evaluating the same file over
//! the same data answers; alerts reach a real Alertmanager (Debian's
//! `prometheus-alertmanager`) with their labels and annotations;
//! `/api/v1/rules` and `/api/v1/alerts` answer as Prometheus's; a restart
//! keeps a firing alert firing (its `for` state restored), and the files
//! reload on `POST /-/reload` and SIGHUP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_model::Labels;
use support::*;

const RULES: &str = "groups:
  - name: gpu
    interval: 1s
    rules:
      - record: job:gpu_temp:max
        expr: max by (job) (gpu_temp)
      - record: namespace:gpu_util:avg
        expr: avg by (namespace) (gpu_util)
      - alert: GpuHot
        expr: gpu_temp > 90
        for: 4s
        labels:
          severity: page
        annotations:
          summary: 'GPU {{ $labels.gpu }} on {{ $labels.instance }} is at {{ $value }}C'
";

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn samples(now: i64) -> Vec<(Labels, i64, f64)> {
    let mut v = Vec::new();
    for (gpu, temp, util, ns) in [
        ("0", 95.0, 80.0, "a"),
        ("1", 60.0, 40.0, "a"),
        ("2", 70.0, 10.0, "b"),
    ] {
        for (name, val) in [("gpu_temp", temp), ("gpu_util", util)] {
            v.push((
                Labels::from_pairs([
                    ("__name__", name),
                    ("gpu", gpu),
                    ("instance", "n1:9400"),
                    ("job", "dcgm"),
                    ("namespace", ns),
                ]),
                now,
                val,
            ));
        }
    }
    v
}

fn query(base: &str, q: &str) -> serde_json::Value {
    let v = post_form(&format!("{base}/api/v1/query"), &[("query", q)]).json();
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].clone()
}

/// (labels without __name__ sorted, value) of an instant vector.
fn vector(r: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"].to_string(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn start_alertmanager(dir: &Path, port: u16) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("am.yml"),
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let child = Command::new("/usr/bin/prometheus-alertmanager")
        .arg(format!("--config.file={}", dir.join("am.yml").display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).unwrap())
        .spawn()
        .unwrap();
    let p = Proc {
        child,
        name: "alertmanager".into(),
    };
    wait_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(30),
    );
    p
}

#[test]
fn rules_alerts_alertmanager_and_prometheus_agree() {
    require_tool("/usr/bin/prometheus");
    require_tool("/usr/bin/promtool");
    require_tool("/usr/bin/prometheus-alertmanager");
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("gpu.rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let out = run(Command::new("/usr/bin/promtool")
        .args(["check", "rules"])
        .arg(&rules));
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");

    let am_port = free_port();
    let _am = start_alertmanager(&tmp.path().join("am"), am_port);
    let am = format!("http://127.0.0.1:{am_port}");

    let dir = tmp.path().join("cairn");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let flags = [
        format!("--rule.file={}", rules.display()),
        format!("--alertmanager.url={am}"),
        "--web.enable-lifecycle".to_owned(),
        "--rules.alert.resend-delay=1s".to_owned(),
    ];
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut c = start_cairn(&dir, port, &flag_refs);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let data = samples(now);
    assert_eq!(
        remote_write(&format!("{base}/api/v1/write"), &data)
            .unwrap()
            .status,
        204
    );

    // Prometheus 2.42 evaluates the same file over the same data.
    let pport = free_port();
    let pbase = format!("http://127.0.0.1:{pport}");
    let _p = start_prometheus(
        &tmp.path().join("prom"),
        pport,
        &format!(
            "global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\nrule_files:\n  - {}\n",
            rules.display()
        ),
        &["--web.enable-remote-write-receiver"],
    );
    assert_eq!(
        remote_write(&format!("{pbase}/api/v1/write"), &data)
            .unwrap()
            .status
            / 100,
        2
    );
    for rec in ["job:gpu_temp:max", "namespace:gpu_util:avg"] {
        let theirs = wait_for(rec, 30, || {
            let r = query(&pbase, rec);
            (!r.as_array().unwrap().is_empty()).then(|| vector(&r))
        });
        let ours = wait_for(rec, 30, || {
            let r = query(&base, rec);
            (!r.as_array().unwrap().is_empty()).then(|| vector(&r))
        });
        assert_eq!(ours, theirs, "{rec}");
    }
    assert_eq!(
        vector(&query(&base, "namespace:gpu_util:avg")).len(),
        2,
        "two namespaces"
    );

    // The alert fires after `for` and reaches Alertmanager.
    let am_alert = wait_for("the alert in Alertmanager", 60, || {
        let v = get(&format!("{am}/api/v2/alerts")).json();
        v.as_array().and_then(|a| {
            a.iter()
                .find(|x| x["labels"]["alertname"] == "GpuHot")
                .cloned()
        })
    });
    assert_eq!(am_alert["labels"]["gpu"], "0");
    assert_eq!(am_alert["labels"]["severity"], "page");
    assert_eq!(am_alert["labels"]["instance"], "n1:9400");
    assert!(am_alert["labels"].get("__name__").is_none());
    assert_eq!(
        am_alert["annotations"]["summary"],
        "GPU 0 on n1:9400 is at 95C"
    );
    assert_eq!(am_alert["status"]["state"], "active");
    assert!(am_alert["generatorURL"]
        .as_str()
        .unwrap()
        .contains("/graph?g0.expr="));
    // Prometheus fires the same alert with the same labels and annotations.
    let theirs = wait_for("Prometheus's alert", 60, || {
        let v = get(&format!("{pbase}/api/v1/alerts")).json();
        v["data"]["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["state"] == "firing").cloned())
    });
    let ours = get(&format!("{base}/api/v1/alerts")).json();
    let ours = ours["data"]["alerts"][0].clone();
    assert_eq!(ours["labels"], theirs["labels"]);
    assert_eq!(ours["annotations"], theirs["annotations"]);
    assert_eq!(ours["state"], "firing");
    assert_eq!(ours["value"], theirs["value"]);
    let active_at = ours["activeAt"].as_str().unwrap().to_owned();

    // /api/v1/status/config shows the rule file and the Alertmanager under
    // the keys of a Prometheus configuration file, as Prometheus's own
    // page (YAML in `data.yaml`) shows its rule files.
    let theirs = get(&format!("{pbase}/api/v1/status/config")).json();
    let theirs: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(theirs["data"]["yaml"].as_str().unwrap()).unwrap();
    let ours = get(&format!("{base}/api/v1/status/config")).json();
    let ours: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(ours["data"]["yaml"].as_str().unwrap()).unwrap();
    assert_eq!(ours["rule_files"], theirs["rule_files"], "{ours:?}");
    assert_eq!(
        ours["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
            .as_str()
            .unwrap(),
        am.trim_start_matches("http://"),
        "{ours:?}"
    );
    assert_eq!(ours["global"]["evaluation_interval"].as_str(), Some("1m"));
    // Runtime information: Prometheus's keys, its retention, a loaded
    // configuration.
    let theirs = get(&format!("{pbase}/api/v1/status/runtimeinfo")).json();
    let ours = get(&format!("{base}/api/v1/status/runtimeinfo")).json();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v["data"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    // Prometheus 2.42's keys, and the three Prometheus 3 added.
    let mut want = keys(&theirs);
    want.extend(["GOMEMLIMIT", "hostname", "serverTime"].map(String::from));
    want.sort();
    assert_eq!(keys(&ours), want, "{ours}");
    for k in ["storageRetention", "reloadConfigSuccess", "CWD"] {
        assert_eq!(ours["data"][k], theirs["data"][k], "{k}: {ours}");
    }
    let ms = |v: &serde_json::Value, k: &str| {
        cairn_model::time::parse_rfc3339(v["data"][k].as_str().unwrap()).unwrap()
    };
    let loaded_at = ms(&ours, "lastConfigTime");
    assert!(
        ms(&ours, "startTime") <= loaded_at && loaded_at <= ms(&ours, "serverTime"),
        "{ours}"
    );
    let v = get(&format!("{base}/api/v1/alertmanagers")).json();
    assert_eq!(
        v["data"],
        serde_json::json!({
            "activeAlertmanagers": [{"url": format!("{am}/api/v2/alerts")}],
            "droppedAlertmanagers": [],
        })
    );

    // /api/v1/rules, shaped as Prometheus's.
    let v = get(&format!("{base}/api/v1/rules")).json();
    let g = &v["data"]["groups"][0];
    assert_eq!(g["name"], "gpu");
    assert_eq!(g["interval"], 1.0);
    let rs = g["rules"].as_array().unwrap();
    assert_eq!(rs.len(), 3);
    assert!(rs.iter().all(|r| r["health"] == "ok"), "{v}");
    assert_eq!(rs[2]["type"], "alerting");
    assert_eq!(rs[2]["state"], "firing");
    assert_eq!(rs[2]["duration"], 4.0);
    assert_eq!(rs[0]["type"], "recording");
    let theirs = get(&format!("{pbase}/api/v1/rules")).json();
    let keys = |r: &serde_json::Value| {
        let mut k: Vec<String> = r.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    for i in 0..3 {
        assert_eq!(
            keys(&rs[i]),
            keys(&theirs["data"]["groups"][0]["rules"][i]),
            "rule {i}"
        );
    }
    let v = get(&format!("{base}/api/v1/rules?type=record")).json();
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 2);
    // ALERTS is stored like any series.
    let r = query(&base, "ALERTS{alertname=\"GpuHot\"}");
    assert_eq!(r[0]["metric"]["alertstate"], "firing");

    // A restart: the alert is firing at the first evaluation, active since
    // the same time; Alertmanager keeps one alert with the same start.
    assert!(c.terminate(Duration::from_secs(60)));
    let mut c = start_cairn(&dir, port, &flag_refs);
    let first = wait_for("the first evaluation after the restart", 30, || {
        let v = get(&format!("{base}/api/v1/rules")).json();
        let r = v["data"]["groups"][0]["rules"][2].clone();
        (r["lastEvaluation"] != "0001-01-01T00:00:00Z").then_some(r)
    });
    assert_eq!(first["state"], "firing", "{first}");
    assert_eq!(first["alerts"][0]["activeAt"], active_at.as_str());
    std::thread::sleep(Duration::from_secs(2));
    let v = get(&format!("{am}/api/v2/alerts")).json();
    let same: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["labels"]["alertname"] == "GpuHot")
        .collect();
    assert_eq!(same.len(), 1);
    assert_eq!(same[0]["startsAt"], am_alert["startsAt"]);

    // Reloads: POST /-/reload and SIGHUP pick up edited files.
    std::fs::write(
        &rules,
        format!("{RULES}      - record: gpu:count\n        expr: count(gpu_temp)\n"),
    )
    .unwrap();
    let r = post(&format!("{base}/-/reload"), &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = get(&format!("{base}/api/v1/rules")).json();
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 4);
    std::fs::write(&rules, RULES.replace("for: 4s", "for: 5s")).unwrap();
    Command::new("kill")
        .arg("-HUP")
        .arg(c.child.id().to_string())
        .status()
        .unwrap();
    wait_for("the SIGHUP reload", 30, || {
        let v = get(&format!("{base}/api/v1/rules")).json();
        let rs = v["data"]["groups"][0]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (rs.len() == 3 && rs[2]["duration"] == 5.0).then_some(())
    });
    // A broken file is refused and the rules in force stay.
    std::fs::write(
        &rules,
        "groups:\n  - name: gpu\n    rules:\n      - record: x\n        expr: sum(\n",
    )
    .unwrap();
    let r = post(&format!("{base}/-/reload"), &[], b"").unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("could not parse expression"),
        "{}",
        r.text()
    );
    let v = get(&format!("{base}/api/v1/rules")).json();
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 3);
    // The runtime information says so; the last good load is later than
    // the start's.
    let v = get(&format!("{base}/api/v1/status/runtimeinfo")).json();
    assert_eq!(v["data"]["reloadConfigSuccess"], false, "{v}");
    assert!(ms(&v, "lastConfigTime") > loaded_at, "{v}");
    let _ = c.terminate(Duration::from_secs(30));
}

#[test]
fn a_bad_rule_file_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.yml");
    std::fs::write(
        &f,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
    )
    .unwrap();
    let out = cairn()
        .arg("serve")
        .arg("--storage.tsdb.path")
        .arg(tmp.path().join("data"))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--rule.file={}", f.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yml") && err.contains("only one of 'record' and 'alert'"),
        "{err}"
    );
    // Without --web.enable-lifecycle, /-/reload is forbidden.
    let port = free_port();
    let _c = start_cairn(&tmp.path().join("d2"), port, &[]);
    let r = post(&format!("http://127.0.0.1:{port}/-/reload"), &[], b"").unwrap();
    assert_eq!(r.status, 403);
}
