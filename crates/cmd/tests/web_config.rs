//! `--web.config.file`: TLS with client certificates, basic authentication
//! of every endpoint and response headers, in Prometheus's format, plus
//! Cairn's bearer tokens, with real clients: curl, and Prometheus 2.42
//! remote-writing and remote-reading over TLS (with basic auth, and with a
//! bearer token). A wrong password is refused and counted; a bad
//! file stops the start with an error naming its line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const PASSWORD: &str = "s3cret-pass";
const TOKEN: &str = "bearer-token-42";

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all
/// written to `dir`.
fn pki(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "cairn test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    for (name, sans) in [
        (
            "server",
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        ),
        ("client", vec!["prometheus".to_owned()]),
    ] {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

struct Curl {
    dir: PathBuf,
    base: String,
}

impl Curl {
    /// `curl` over TLS with the CA; `cert` adds the client certificate,
    /// `user` basic credentials. Returns (exit code, status, headers and body).
    fn get(&self, path: &str, cert: bool, user: Option<&str>) -> (i32, u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-i", "--max-time", "10", "--cacert"])
            .arg(self.dir.join("ca.crt"))
            .args(["-w", "\n%{http_code}"]);
        if cert {
            c.arg("--cert")
                .arg(self.dir.join("client.crt"))
                .arg("--key")
                .arg(self.dir.join("client.key"));
        }
        if let Some(u) = user {
            c.arg("-u").arg(u);
        }
        c.arg(format!("{}{path}", self.base));
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        (out.status.code().unwrap_or(-1), code, text)
    }

    fn auth(&self) -> String {
        format!("prometheus:{PASSWORD}")
    }

    /// The value of `name` in Cairn's /metrics.
    fn metric(&self, name: &str) -> f64 {
        let (_, _, text) = self.get("/metrics", true, Some(&self.auth()));
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn remote_cfg(kind: &str, port: u16, dir: &Path, password: &str) -> String {
    let d = dir.display();
    format!(
        "{kind}:\n  - url: https://127.0.0.1:{port}/api/v1/{path}\n    basic_auth:\n      username: prometheus\n      password: {password}\n    tls_config:\n      ca_file: {d}/ca.crt\n      cert_file: {d}/client.crt\n      key_file: {d}/client.key\n",
        path = if kind == "remote_write" { "write" } else { "read" },
    )
}

#[test]
fn tls_and_basic_auth_with_prometheus_as_the_client() {
    require_tool("/usr/bin/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    pki(&dir);
    let hash = bcrypt::hash(PASSWORD, 6).unwrap();
    let token_hash = bcrypt::hash(TOKEN, 6).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prometheus: {hash}\nbearer_tokens:\n  agent: {token_hash}\n"
        ),
    )
    .unwrap();

    let port = free_port();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(dir.join("cairn.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("serve")
        .arg("--storage.tsdb.path")
        .arg(&data)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _cairn = Proc {
        child,
        name: "cairn".into(),
    };
    let curl = Curl {
        dir: dir.clone(),
        base: format!("https://127.0.0.1:{port}"),
    };
    wait_for("cairn over TLS", || {
        curl.get("/-/ready", true, Some(&curl.auth())).1 == 200
    });

    // Credentials and a client certificate open every endpoint; the
    // configured header comes with every answer.
    let (_, code, text) = curl.get("/-/healthy", true, Some(&curl.auth()));
    assert_eq!(code, 200, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-frame-options: deny"),
        "{text}"
    );
    // No credentials, or a wrong password: 401 with WWW-Authenticate, on
    // health endpoints too (as Prometheus).
    for user in [None, Some("prometheus:wrong"), Some("nobody:x")] {
        for path in ["/-/healthy", "/api/v1/query?query=up", "/api/v1/write"] {
            let (_, code, text) = curl.get(path, true, user);
            assert_eq!(code, 401, "{path} {user:?}: {text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("www-authenticate: basic"),
                "{text}"
            );
        }
    }
    // Bearer tokens: the configured one opens, another is refused.
    for (tok, want) in [(TOKEN, "200"), ("wrong-token", "401")] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.crt"))
            .arg("--cert")
            .arg(dir.join("client.crt"))
            .arg("--key")
            .arg(dir.join("client.key"))
            .args(["-H", &format!("Authorization: Bearer {tok}")])
            .arg(format!("https://127.0.0.1:{port}/-/healthy"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "token {tok}");
    }
    assert!(curl.metric("cairn_http_requests_unauthorized_total") >= 10.0);
    // No client certificate: the handshake fails, nothing is answered.
    let (exit, code, _) = curl.get("/-/healthy", false, Some(&curl.auth()));
    assert_ne!(exit, 0);
    assert_eq!(code, 0);
    // Plain HTTP on the TLS port gets nothing either.
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{port}/-/healthy"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");
    assert!(curl.metric("cairn_http_tls_handshake_failures_total") >= 1.0);

    // Prometheus 2.42 remote-writes its own metrics over TLS with basic auth.
    let pport = free_port();
    let _writer = start_prometheus(
        &dir.join("prom-writer"),
        pport,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{pport}']\n{}",
            remote_cfg("remote_write", port, &dir, PASSWORD)
        ),
        &[],
    );
    wait_for("samples written by Prometheus", || {
        let (_, code, text) = curl.get(
            "/api/v1/query?query=count(prometheus_build_info)",
            true,
            Some(&curl.auth()),
        );
        code == 200 && text.contains("\"result\":[{")
    });

    // One with a wrong password is refused, and the refusals are counted.
    let before = curl.metric("cairn_http_requests_unauthorized_total");
    let bport = free_port();
    let _bad = start_prometheus(
        &dir.join("prom-bad"),
        bport,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bad\n    static_configs:\n      - targets: ['127.0.0.1:{bport}']\n{}",
            remote_cfg("remote_write", port, &dir, "wrong")
        ),
        &[],
    );
    wait_for("the wrong password counted", || {
        curl.metric("cairn_http_requests_unauthorized_total") > before
    });
    let (_, _, text) = curl.get(
        "/api/v1/query?query=count(up%7Bjob%3D%22bad%22%7D)",
        true,
        Some(&curl.auth()),
    );
    assert!(
        text.contains("\"result\":[]"),
        "nothing of the refused writer: {text}"
    );

    // A Prometheus with a bearer token (Cairn's `bearer_tokens`) writes too.
    let tport = free_port();
    let d = dir.display();
    let _bearer = start_prometheus(
        &dir.join("prom-bearer"),
        tport,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bearer\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\nremote_write:\n  - url: https://127.0.0.1:{port}/api/v1/write\n    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n    tls_config:\n      ca_file: {d}/ca.crt\n      cert_file: {d}/client.crt\n      key_file: {d}/client.key\n"
        ),
        &[],
    );
    wait_for("samples written with a bearer token", || {
        let (_, code, text) = curl.get(
            "/api/v1/query?query=count(up%7Bjob%3D%22bearer%22%7D)",
            true,
            Some(&curl.auth()),
        );
        code == 200 && text.contains("\"result\":[{")
    });

    // A Prometheus with no data of its own reads Cairn's over TLS.
    let rport = free_port();
    let _reader = start_prometheus(
        &dir.join("prom-reader"),
        rport,
        &format!(
            "global:\n  scrape_interval: 1h\n{}    read_recent: true\n",
            remote_cfg("remote_read", port, &dir, PASSWORD)
        ),
        &[],
    );
    let v = post_form(
        &format!("http://127.0.0.1:{rport}/api/v1/query"),
        &[("query", "count(prometheus_build_info{job=\"self\"})")],
    )
    .json();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    // And one that reads with the bearer token.
    let bport = free_port();
    let d = dir.display();
    let _bearer_reader = start_prometheus(
        &dir.join("prom-bearer-reader"),
        bport,
        &format!(
            "global:\n  scrape_interval: 1h\nremote_read:\n  - url: https://127.0.0.1:{port}/api/v1/read\n    read_recent: true\n    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n    tls_config:\n      ca_file: {d}/ca.crt\n      cert_file: {d}/client.crt\n      key_file: {d}/client.key\n"
        ),
        &[],
    );
    let v = post_form(
        &format!("http://127.0.0.1:{bport}/api/v1/query"),
        &[("query", "count(up{job=\"bearer\"})")],
    )
    .json();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
}

#[test]
fn a_bad_web_config_stops_the_start_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("web.yml");
    std::fs::write(
        &cfg,
        "http_server_config:\n  http2: true\nbasic_auth_users:\n  alice: plain-text\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("serve")
        .arg("--storage.tsdb.path")
        .arg(tmp.path().join("data"))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--web.config.file={}", cfg.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:", cfg.display())) && err.contains("bcrypt"),
        "{err}"
    );
}
