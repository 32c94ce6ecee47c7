//! Sending alerts to Alertmanager through its v2 API
//! (`POST <url>/api/v2/alerts`, a JSON array), as Prometheus's notifier
//! does: a bounded queue, batches, every configured Alertmanager gets every
//! batch; a failed send is logged and counted, not retried (the next
//! evaluation re-sends firing alerts after the resend delay).
//!
//! Contract: [`Notifier::send`] never blocks on the network; when the
//! queue is full the oldest alerts are dropped and counted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::eval::Notification;

/// Most alerts waiting to be sent.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Most alerts in one request.
const BATCH: usize = 64;

/// Counters of the notifier.
#[derive(Debug, Default)]
pub struct NotifierStats {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
}

struct Shared {
    urls: Vec<String>,
    queue: Mutex<VecDeque<Notification>>,
    wake: Condvar,
    stop: AtomicBool,
    stats: Arc<NotifierStats>,
    agent: ureq::Agent,
}

/// The Alertmanager client; stops its thread when dropped.
pub struct Notifier {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("urls", &self.shared.urls)
            .finish()
    }
}

impl Notifier {
    /// A notifier sending to each of `urls` (Alertmanager base URLs).
    pub fn start(urls: Vec<String>) -> std::io::Result<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let shared = Arc::new(Shared {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            stats: Arc::default(),
            agent,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-notifier".into())
            .spawn(move || run(&s))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues alerts for sending.
    pub fn send(&self, alerts: Vec<Notification>) {
        if alerts.is_empty() {
            return;
        }
        let mut q = self.shared.queue.lock();
        q.extend(alerts);
        while q.len() > QUEUE_CAPACITY {
            q.pop_front();
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.wake.notify_one();
    }

    /// The counters.
    pub fn stats(&self) -> Arc<NotifierStats> {
        self.shared.stats.clone()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(s: &Shared) {
    loop {
        let batch: Vec<Notification> = {
            let mut q = s.queue.lock();
            while q.is_empty() && !s.stop.load(Ordering::Acquire) {
                s.wake.wait(&mut q);
            }
            if q.is_empty() {
                return;
            }
            let n = q.len().min(BATCH);
            q.drain(..n).collect()
        };
        let body = body(&batch);
        for url in &s.urls {
            let target = format!("{url}/api/v2/alerts");
            let res = s
                .agent
                .post(&target)
                .header("Content-Type", "application/json")
                .send(body.as_bytes());
            match res {
                Ok(r) if r.status().is_success() => {
                    s.stats
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Ok(r) => {
                    s.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %target, status = r.status().as_u16(), "Alertmanager refused alerts");
                }
                Err(e) => {
                    s.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %target, error = %e, "sending alerts failed");
                }
            }
        }
    }
}

/// Alertmanager's v2 `postableAlerts` JSON.
pub fn body(alerts: &[Notification]) -> String {
    let v: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let labels: BTreeMap<&str, &str> = a.labels.iter().map(|l| (l.name, l.value)).collect();
            serde_json::json!({
                "labels": labels,
                "annotations": a.annotations,
                "startsAt": crate::time::rfc3339(a.starts_at),
                "endsAt": crate::time::rfc3339(a.ends_at),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    serde_json::Value::Array(v).to_string()
}
