//! The pack's Kubernetes side (`deploy/kubernetes/`):
//! - `kubernetes-validate` (the Kubernetes 1.31 OpenAPI schemas, offline)
//!   accepts the StatefulSet, Service and ConfigMap, and refuses a broken
//!   copy (so the check can fail);
//! - the Prometheus Operator resources (ServiceMonitor, Prometheus,
//!   PrometheusRule) pass the Operator's CRD schemas
//!   (`deploy/kubernetes/check/validate.mjs`, npm's
//!   `@kubernetes-models/prometheus-operator`), and broken copies do not;
//!   they are also checked for what ties them together: the ServiceMonitor
//!   selects the Service and its port, the Prometheus writes to and reads
//!   from the Service, the PrometheusRule holds exactly `deploy/rules/`;
//! - every flag the StatefulSet gives `cairn serve` exists;
//! - the image (`scripts/build-image.sh`, no base image pulled) builds with
//!   buildah, has the entry point, user and port it should, and starts as a
//!   container with podman: it answers `/-/ready`, takes a remote write into
//!   its data directory and answers a query for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_yaml_ng::Value;
use support::*;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|d| serde_yaml_ng::from_str::<Value>(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(ds: &'a [Value], k: &str) -> &'a Value {
    ds.iter()
        .find(|d| d["kind"].as_str() == Some(k))
        .unwrap_or_else(|| panic!("no {k}"))
}

fn validator() -> PathBuf {
    let venv = std::env::var_os("CAIRN_K8S_VENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cairn/k8s-venv"),
        PathBuf::from,
    );
    let v = venv.join("bin/kubernetes-validate");
    assert!(
        v.exists(),
        "{} is missing: run scripts/install-deps.sh",
        v.display()
    );
    v
}

/// Runs `deploy/kubernetes/check/validate.mjs` (the Operator's CRD schemas,
/// installed from npm by `scripts/install-deps.sh`) on `files`.
fn validate_operator(files: &[&Path]) -> std::process::Output {
    let home = std::env::var_os("CAIRN_K8S_NODE").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cairn/k8s-node"),
        PathBuf::from,
    );
    let modules = home.join("node_modules");
    assert!(
        modules
            .join("@kubernetes-models/prometheus-operator")
            .exists(),
        "{} is missing: run scripts/install-deps.sh",
        modules.display()
    );
    // The script beside the installed modules, so that Node finds them.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let script = dir.path().join("validate.mjs");
    std::fs::copy(deploy().join("kubernetes/check/validate.mjs"), &script).unwrap();
    Command::new("node")
        .arg(&script)
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn manifests_validate_and_fit_together() {
    let k8s = deploy().join("kubernetes");
    let cairn_yaml = k8s.join("cairn.yaml");
    let out = Command::new(validator())
        .args(["--kubernetes-version", "1.31", "--strict"])
        .arg(&cairn_yaml)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("passed").count(), 3, "{text}");
    // A broken copy is refused: the validator really checks.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.yaml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&cairn_yaml)
            .unwrap()
            .replace("replicas: 1", "replicas: one"),
    )
    .unwrap();
    let out = Command::new(validator())
        .args(["--kubernetes-version", "1.31", "--strict"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a broken StatefulSet passed");

    // The Operator's resources against its CRD schemas.
    let monitoring = k8s.join("monitoring.yaml");
    let rule_yaml = k8s.join("prometheusrule.yaml");
    let out = validate_operator(&[&monitoring, &rule_yaml]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for r in [
        "ServiceMonitor/cairn",
        "Prometheus/gpu-cluster",
        "PrometheusRule/gpu-cluster",
    ] {
        assert!(
            text.contains(&format!("{r}: valid")),
            "{r} not validated: {text}"
        );
    }
    // Broken copies are refused: the schemas really check.
    let text = std::fs::read_to_string(&monitoring).unwrap();
    assert!(text.contains("shards: 4"), "{text}");
    std::fs::write(&broken, text.replace("shards: 4", "shards: four")).unwrap();
    let out = validate_operator(&[&broken]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("shards must be integer"),
        "a broken Prometheus passed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::fs::read_to_string(&rule_yaml).unwrap();
    assert!(text.contains("- alert: CairnDown"), "{text}");
    std::fs::write(
        &broken,
        text.replacen("- alert: CairnDown", "- alert: [CairnDown]", 1),
    )
    .unwrap();
    let out = validate_operator(&[&broken]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("alert must be string"),
        "a broken PrometheusRule passed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let core = docs(&cairn_yaml);
    let svc = kind(&core, "Service");
    let sts = kind(&core, "StatefulSet");
    let mon = docs(&k8s.join("monitoring.yaml"));
    let sm = kind(&mon, "ServiceMonitor");
    let prom = kind(&mon, "Prometheus");
    for d in [sm, prom] {
        assert_eq!(d["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    }
    // The ServiceMonitor selects the Service by its labels and port name.
    let want = &svc["metadata"]["labels"];
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&want[k.as_str().unwrap()], v);
    }
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(
        svc["spec"]["selector"],
        sts["spec"]["template"]["metadata"]["labels"]
    );
    // The Prometheus writes to and reads from the Service.
    let host = format!(
        "http://{}.{}.svc:{}",
        svc["metadata"]["name"].as_str().unwrap(),
        svc["metadata"]["namespace"].as_str().unwrap(),
        svc["spec"]["ports"][0]["port"].as_u64().unwrap()
    );
    assert_eq!(
        prom["spec"]["remoteWrite"][0]["url"].as_str(),
        Some(format!("{host}/api/v1/write").as_str())
    );
    assert_eq!(
        prom["spec"]["remoteRead"][0]["url"].as_str(),
        Some(format!("{host}/api/v1/read").as_str())
    );
    // The PrometheusRule holds exactly the pack's rules.
    let rule = docs(&k8s.join("prometheusrule.yaml"));
    let rule = kind(&rule, "PrometheusRule");
    let mut groups = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let d = &docs(&f)[0];
        groups.extend(d["groups"].as_sequence().unwrap().iter().cloned());
    }
    assert_eq!(
        rule["spec"]["groups"].as_sequence().unwrap(),
        &groups,
        "run deploy/kubernetes/make_prometheusrule.py"
    );
    for (k, v) in prom["spec"]["ruleSelector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(&rule["metadata"]["labels"][k.as_str().unwrap()], v);
    }
    // Every flag given to `cairn serve` exists.
    let help = run(cairn().args(["serve", "--help"]));
    let args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap();
    assert_eq!(args[0].as_str(), Some("serve"));
    for a in &args[1..] {
        let flag = a.as_str().unwrap().split('=').next().unwrap();
        assert!(help.contains(flag), "{flag} is not a flag of cairn serve");
    }
}

#[test]
fn the_image_builds_and_runs_as_a_container() {
    for tool in ["/usr/bin/buildah", "/usr/bin/podman"] {
        require_tool(tool);
    }
    let tag = format!("localhost/cairn-test:{}", std::process::id());
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-image.sh"))
        .arg(&tag)
        .env("BIN", env!("CARGO_BIN_EXE_cairn"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect = run(Command::new("podman").args(["image", "inspect", &tag]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let cfg = &v[0]["Config"];
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/cairn"]));
    assert_eq!(cfg["User"], "65534:65534");
    assert!(cfg["ExposedPorts"].get("9090/tcp").is_some(), "{cfg}");
    // Started as a container. This machine's defaults do not let crun
    // start one (it may not set resource limits, nor use hybrid cgroups):
    // runc with cgroupfs and no default ulimits does.
    let conf = tempfile::tempdir().unwrap();
    let conf_file = conf.path().join("containers.conf");
    std::fs::write(&conf_file, "[containers]\ndefault_ulimits = []\n").unwrap();
    let podman = || {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf_file);
        if Path::new("/usr/sbin/runc").exists() {
            c.args(["--runtime=runc", "--cgroup-manager=cgroupfs"]);
        }
        c
    };
    let port = free_port();
    let name = format!("cairn-test-{}", std::process::id());
    run(podman()
        .args(["run", "-d", "--network", "host", "--name", &name, &tag])
        .args(["serve", "--storage.tsdb.path=/data"])
        .arg(format!("--web.listen-address=127.0.0.1:{port}")));
    struct Gone<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Gone<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _gone = Gone(|| {
        let _ = podman().args(["rm", "-f", &name]).output();
        let _ = Command::new("podman").args(["rmi", &tag]).output();
    });
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"), Duration::from_secs(60));
    // It takes a write into its data volume and answers it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let l = cairn_model::Labels::from_pairs([("__name__", "in_container"), ("job", "t")]);
    let r = remote_write(&format!("{base}/api/v1/write"), &[(l, now, 42.0)]).unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let v = post_form(
        &format!("{base}/api/v1/query"),
        &[("query", "in_container")],
    )
    .json();
    assert_eq!(v["data"]["result"][0]["value"][1], "42", "{v}");
}
