//! End to end with the real Prometheus (Debian's 2.42 at /usr/bin):
//! Prometheus scrapes a tiny in-test exporter of DCGM-style series and
//! remote-writes into Cairn (MemStorage); the samples Cairn holds must equal
//! Prometheus's own for the overlapping window. Then a second Prometheus,
//! with no local data and `remote_read` pointing at Cairn, must read the
//! same samples back through its query API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_model::Labels;
use cairn_server::{Backend, ServerConfig};
use cairn_storage::{Appendable, Appender, MemStorage, Metadata, Querier, Queryable, SeriesRef};
use harness::*;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::sync::watch;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Kills the process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MemStorage that announces every commit, so the test waits on events
/// rather than sleeping.
struct Notifying {
    mem: MemStorage,
    commits: watch::Sender<u64>,
}

struct NotifyingAppender<'a> {
    inner: Box<dyn Appender + 'a>,
    commits: &'a watch::Sender<u64>,
}

impl Appender for NotifyingAppender<'_> {
    fn append(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        self.inner.append(r, l, t, v)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        m: &Metadata,
    ) -> cairn_storage::Result<SeriesRef> {
        self.inner.update_metadata(r, l, m)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        let r = self.inner.commit();
        self.commits.send_modify(|n| *n += 1);
        r
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        self.inner.rollback()
    }
}

impl Appendable for Notifying {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(NotifyingAppender {
            inner: self.mem.appender(),
            commits: &self.commits,
        })
    }
}

impl Queryable for Notifying {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        self.mem.querier(mint, maxt)
    }
}

impl Backend for Notifying {}

/// Serves DCGM-style series whose values change on every scrape.
async fn start_exporter() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |_req: Request<hyper::body::Incoming>| {
                        let n = scrapes.fetch_add(1, Ordering::Relaxed) as f64;
                        let body = format!(
                        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n\
                         # TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
                         DCGM_FI_DEV_GPU_UTIL{{gpu=\"0\",UUID=\"GPU-aaaa\",modelName=\"NVIDIA H100 80GB HBM3\"}} {}\n\
                         DCGM_FI_DEV_GPU_UTIL{{gpu=\"1\",UUID=\"GPU-bbbb\",modelName=\"NVIDIA H100 80GB HBM3\"}} {}\n\
                         # HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n\
                         # TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
                         DCGM_FI_DEV_POWER_USAGE{{gpu=\"0\",UUID=\"GPU-aaaa\"}} {}\n\
                         # HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n\
                         # TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
                         DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\",UUID=\"GPU-aaaa\"}} {}\n",
                        (n * 7.0) % 101.0,
                        50.0 + 49.5 * (n / 3.0).sin(),
                        312.25 + n * 0.1,
                        1.0e9 + n * 123_456.5,
                    );
                        async move {
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &Path, name: &str, config: &str, port: u16) -> Proc {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} not found: run scripts/install-deps.sh to install Prometheus"
    );
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join(format!("{name}-data")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting prometheus; run scripts/install-deps.sh");
    Proc(child)
}

fn urlencode(s: &str) -> String {
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

/// Raw samples per series from Prometheus's API, via a range selector.
async fn prom_samples(port: u16, selector: &str, at_ms: i64) -> BTreeMap<String, Vec<(i64, u64)>> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        urlencode(selector),
        at_ms / 1000,
        at_ms % 1000
    );
    let r = send(addr, "GET", &path, &[], vec![]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let labels = Labels::from_pairs(
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())),
        );
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (t, v.to_bits())
            })
            .collect();
        out.insert(labels.to_string(), samples);
    }
    out
}

async fn wait_ready(port: u16, what: &str) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            drop(s);
            let r = send(addr, "GET", "/-/ready", &[], vec![]).await;
            if r.status.as_u16() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{what} not ready within 30 s");
        // An external process offers no event to wait on; poll briefly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_and_remote_reads() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_exporter().await;
    let (commits, mut commit_rx) = watch::channel(0u64);
    let mem = MemStorage::new();
    let backend = Arc::new(Notifying {
        mem: mem.clone(),
        commits,
    });
    let cairn = TestServer::start(backend, ServerConfig::default()).await;

    let writer_port = free_port();
    let writer = start_prometheus(
        dir.path(),
        "writer",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: dcgm\n    static_configs:\n      - targets: ['{exporter}']\n\
             remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 100ms\n    metadata_config:\n      send_interval: 1s\n",
            cairn.addr
        ),
        writer_port,
    );

    // Wait (at most 60 s) for >= 5 samples in each exporter series, and the
    // metadata, to arrive through remote write.
    let series_of = |name: &str| {
        dump(&mem)
            .into_iter()
            .filter(|(l, _)| l.contains(name))
            .map(|(_, s)| s.len())
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<usize> = [
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_DEV_TOTAL_ENERGY",
        ]
        .iter()
        .flat_map(|n| series_of(n))
        .collect();
        let meta_ok = mem
            .metadata()
            .contains_key("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION");
        if counts.len() == 4 && counts.iter().all(|&c| c >= 5) && meta_ok {
            break;
        }
        let log = std::fs::read_to_string(dir.path().join("writer.log")).unwrap_or_default();
        tokio::time::timeout_at(deadline, commit_rx.changed())
            .await
            .unwrap_or_else(|_| {
                panic!("timed out: counts {counts:?}, metadata {meta_ok}; prometheus log:\n{log}")
            })
            .unwrap();
    }
    let meta = mem.metadata();
    let m = &meta["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"];
    assert_eq!(m.kind, cairn_storage::MetricType::Counter);
    assert_eq!(m.help, "Total energy consumption since boot (in mJ).");

    // Compare with Prometheus's own samples for every job="dcgm" series
    // (exporter series plus up, scrape_duration_seconds, ...), up to the
    // last timestamp Cairn has for each.
    let ours: BTreeMap<String, Vec<(i64, u64)>> = dump(&mem)
        .into_iter()
        .filter(|(l, _)| l.contains("job=\"dcgm\""))
        .collect();
    let max_t = ours
        .values()
        .filter_map(|s| s.last())
        .map(|s| s.0)
        .max()
        .unwrap();
    let theirs = prom_samples(writer_port, "{job=\"dcgm\"}[1h]", max_t + 60_000).await;
    assert!(
        ours.len() >= 9,
        "series: {:?}",
        ours.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (l, s) in &ours {
        let last = s.last().unwrap().0;
        let t: Vec<(i64, u64)> = theirs[l].iter().copied().filter(|x| x.0 <= last).collect();
        assert_eq!(s, &t, "series {l}");
    }
    drop(writer);

    // A second Prometheus with no local data reads the same back.
    let reader_port = free_port();
    let _reader = start_prometheus(
        dir.path(),
        "reader",
        &format!(
            "global:\n  scrape_interval: 1m\n\
             remote_read:\n  - url: http://{}/api/v1/read\n    read_recent: true\n",
            cairn.addr
        ),
        reader_port,
    );
    wait_ready(reader_port, "reader prometheus").await;
    let snapshot: BTreeMap<String, Vec<(i64, u64)>> = dump(&mem)
        .into_iter()
        .filter(|(l, _)| l.contains("job=\"dcgm\""))
        .collect();
    let max_t = snapshot
        .values()
        .filter_map(|s| s.last())
        .map(|s| s.0)
        .max()
        .unwrap();
    let read_back = prom_samples(reader_port, "{job=\"dcgm\"}[1h]", max_t).await;
    assert_eq!(read_back, snapshot);
    let m = send(cairn.addr, "GET", "/metrics", &[], vec![])
        .await
        .text();
    assert!(
        !m.contains("cairn_remote_read_series_total 0\n"),
        "the reader did not go through remote read:\n{m}"
    );
    cairn.stop().await;
}
