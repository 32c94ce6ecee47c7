//! Shared helpers for the end-to-end tests: free ports, child processes that
//! die with the test, readiness polling and a small HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A child process that is killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// SIGKILL now and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for a clean exit; returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Fails the test with a pointer to the install script when a tool is missing.
pub fn require_tool(bin: &str) {
    if !Path::new(bin).exists() {
        panic!("{bin} is missing: run scripts/install-deps.sh (installs Debian's prometheus and promtool)");
    }
}

/// Starts `cairn serve` on `port` with `dir` as its data directory.
pub fn start_cairn(dir: &Path, port: u16, extra: &[&str]) -> Proc {
    let log = std::fs::File::create(dir.with_extension("log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("serve")
        .arg("--storage.tsdb.path")
        .arg(dir)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting cairn");
    let p = Proc {
        child,
        name: "cairn".into(),
    };
    wait_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(60),
    );
    p
}

/// Starts Debian's Prometheus with `config` (YAML) on `port`.
pub fn start_prometheus(dir: &Path, port: u16, config: &str, extra: &[&str]) -> Proc {
    require_tool("/usr/bin/prometheus");
    std::fs::create_dir_all(dir).expect("prometheus dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("prometheus config");
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting prometheus");
    let p = Proc {
        child,
        name: "prometheus".into(),
    };
    wait_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(60),
    );
    p
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Polls `url` until it answers 200 or `timeout` passes (then panics).
pub fn wait_ready(url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let a = agent();
    while Instant::now() < deadline {
        if let Ok(r) = a.get(url).call() {
            if r.status().as_u16() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not become ready within {timeout:?}");
}

/// An HTTP answer.
pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read(mut r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_default();
    Resp {
        status,
        body,
        headers,
    }
}

/// GET `url`.
pub fn get(url: &str) -> Resp {
    read(
        agent()
            .get(url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}")),
    )
}

/// POST `body` to `url` with headers; `Err` only when the connection failed.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Resp, String> {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(body).map(read).map_err(|e| e.to_string())
}

/// POST a form.
pub fn post_form(url: &str, form: &[(&str, &str)]) -> Resp {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    post(
        url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Percent-encodes for query strings and forms.
pub fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Sends one remote-write 1.0 request of `(labels, t, v)` samples.
pub fn remote_write(
    url: &str,
    samples: &[(cairn_model::Labels, i64, f64)],
) -> Result<Resp, String> {
    let mut raw = Vec::new();
    cairn_loadgen::encode_write_request(samples, &mut raw);
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| e.to_string())?;
    post(
        url,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    )
}

/// Sends one remote-write 2.0 request.
/// Writes `DCGM_FI_DEV_GPU_UTIL` for GPUs 0, 1 and 2 to the Cairn at `base`:
/// minutes 0..=`minutes` from `start` (ms), each valued by its index, so
/// that every answer is known.
pub fn write_gpu_minutes(base: &str, start: i64, minutes: i64) {
    for part in (0..=minutes).collect::<Vec<_>>().chunks(100) {
        let mut batch = Vec::new();
        for g in ["0", "1", "2"] {
            let l =
                cairn_model::Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", g)]);
            batch.extend(
                part.iter()
                    .map(|&i| (l.clone(), start + i * 60_000, i as f64)),
            );
        }
        let r = remote_write(&format!("{base}/api/v1/write"), &batch).expect("remote write");
        assert_eq!(r.status, 204, "{}", r.text());
    }
}

pub fn remote_write_v2(url: &str, req: &cairn_proto::write_v2::Request) -> Resp {
    use prost::Message;
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_else(|e| panic!("snappy: {e}"));
    post(
        url,
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"),
        ],
        &body,
    )
    .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Copies the directory `from` into `to` (created), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Runs a command to success and returns its standard output; panics
/// with both outputs otherwise.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `cairn` binary under test.
pub fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// The block directories (those with a meta.json) of a data directory,
/// sorted by name.
pub fn blocks(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The lines of `s`, sorted.
pub fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Where `scripts/install-deps.sh` installs Garage (crates.io `garage`):
/// `$CAIRN_GARAGE_ROOT/bin/garage`, by default under `~/.cache/cairn/garage`.
pub fn garage_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_GARAGE_ROOT") {
        return Path::new(&p).join("bin/garage");
    }
    let home = std::env::var_os("HOME").expect("HOME");
    Path::new(&home).join(".cache/cairn/garage/bin/garage")
}

/// A single-node Garage (a real S3 server) on loopback with one bucket and
/// one key allowed on it.
pub struct Garage {
    pub proc: Proc,
    pub s3_port: u16,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    config: std::path::PathBuf,
}

impl Garage {
    /// Thanos's object-store YAML for the bucket, with `secret` as the
    /// secret key.
    pub fn objstore_yaml_with_secret(&self, secret: &str) -> String {
        format!(
            "type: S3\nconfig:\n  bucket: {}\n  endpoint: 127.0.0.1:{}\n  region: garage\n  access_key: {}\n  secret_key: {secret}\n  insecure: true\n",
            self.bucket, self.s3_port, self.access_key
        )
    }

    /// Thanos's object-store YAML for the bucket.
    pub fn objstore_yaml(&self) -> String {
        self.objstore_yaml_with_secret(&self.secret_key)
    }

    /// Runs `garage -c <config> args…`; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        garage_cli(&self.config, args)
    }
}

/// Runs a garage command, retried for up to ten seconds: a node that has
/// just started, or a layout just applied, refuses commands for a moment.
fn garage_cli(config: &Path, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(config)
            .args(args)
            .output()
            .expect("running garage");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "garage {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts Garage in `dir` (config, metadata, data, log), lays out its one
/// node, creates the bucket `cairn` and imports a key allowed on it.
pub fn start_garage(dir: &Path) -> Garage {
    let bin = garage_bin();
    if !bin.exists() {
        panic!(
            "{} is missing: run scripts/install-deps.sh (builds crates.io's garage)",
            bin.display()
        );
    }
    std::fs::create_dir_all(dir).expect("garage dir");
    let (rpc, s3, admin) = (free_port(), free_port(), free_port());
    let config = dir.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            m = dir.join("meta").display(),
            d = dir.join("data").display(),
            secret = "c0ffee".repeat(10) + "c0ff",
        ),
    )
    .expect("garage config");
    let log = std::fs::File::create(dir.join("garage.log")).expect("garage log");
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&config)
        .arg("server")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting garage");
    let proc = Proc {
        child,
        name: "garage".into(),
    };
    // The node's id, once its RPC is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let out = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["node", "id", "-q"])
            .output()
            .expect("running garage");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && text.contains('@') {
            break text.split('@').next().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "garage did not come up: {}",
            std::fs::read_to_string(dir.join("garage.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    garage_cli(&config, &["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
    garage_cli(&config, &["layout", "apply", "--version", "1"]);
    let access_key = format!("GK{}", "0123456789ab".repeat(2));
    let secret_key = "5ec7e7".repeat(10) + "5ec7";
    garage_cli(&config, &["bucket", "create", "cairn"]);
    garage_cli(
        &config,
        &[
            "key",
            "import",
            "--yes",
            "-n",
            "cairn",
            &access_key,
            &secret_key,
        ],
    );
    garage_cli(
        &config,
        &[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            "cairn",
            "--key",
            &access_key,
        ],
    );
    let g = Garage {
        proc,
        s3_port: s3,
        bucket: "cairn".into(),
        access_key,
        secret_key,
        config,
    };
    // The S3 API answers for the new bucket and key.
    let cfg = cairn_objstore::BucketConfig::parse(&g.objstore_yaml()).expect("objstore yaml");
    let bucket = cairn_objstore::Bucket::open(&cfg).expect("bucket");
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = bucket.check() {
        assert!(Instant::now() < deadline, "garage's S3 API: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }
    g
}

/// A directory bucket under `dir`: writes Thanos's `type: FILESYSTEM`
/// configuration for `dir/bucket` to `dir/objstore.yml` and returns
/// (bucket directory, configuration file).
pub fn fs_bucket_config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let bucket = dir.join("bucket");
    let cfg = dir.join("objstore.yml");
    std::fs::write(
        &cfg,
        format!(
            "type: FILESYSTEM\nconfig:\n  directory: {}\n",
            bucket.display()
        ),
    )
    .expect("objstore config");
    (bucket, cfg)
}

/// The complete blocks (with `meta.json`) of a directory bucket, sorted by
/// ULID: (ulid, meta.json).
pub fn bucket_blocks(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = e.path().join("meta.json");
        if let Ok(b) = std::fs::read(&meta) {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                serde_json::from_slice(&b).expect("meta.json"),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
