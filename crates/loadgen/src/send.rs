//! Sending a slice's requests: one task per shard and receiver, each
//! sending its shard's requests in order, one at a time, over its own
//! client (connection), retrying a request that fails, and recording which
//! requests were acknowledged ([`ConnAck`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::ack::ConnAck;
use crate::Slice;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The first pause before a retry; it doubles after each, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(30);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a request is retried. A 4xx answer other than 429 fails the
/// request at once, either way.
#[derive(Debug, Clone, Copy)]
pub enum Retry {
    /// At most this many attempts; then the request counts as failed and
    /// its connection goes on with the next.
    Attempts(u32),
    /// Until the request has failed for this long without a success;
    /// then it counts as failed and the run stops (`--stop-on-failure-after`).
    StopAfter(Duration),
}

/// What sending one request came to.
#[derive(Debug)]
enum Outcome {
    Acked,
    Failed(String),
    /// Given up on because the run is stopping.
    Stopped,
}

/// What the connections share.
#[derive(Debug, Clone)]
pub struct Sender {
    pub retry: Retry,
    /// Attempts that failed and were retried.
    pub retries: Arc<AtomicU64>,
    /// Requests that failed for good.
    pub failures: Arc<AtomicU64>,
    /// Set when the run stops ([`Retry::StopAfter`]): every connection
    /// stops before its next attempt.
    pub stop: Arc<AtomicBool>,
}

impl Sender {
    pub fn new(retry: Retry) -> Self {
        Sender {
            retry,
            retries: Arc::default(),
            failures: Arc::default(),
            stop: Arc::default(),
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn send_one(&self, client: &HttpClient, url: &hyper::Uri, body: Bytes) -> Outcome {
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        let mut failing_since: Option<Instant> = None;
        loop {
            let req = hyper::Request::post(url.clone())
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .header("User-Agent", "cairn-loadgen")
                .body(Full::new(body.clone()));
            let req = match req {
                Ok(r) => r,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let why = match client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    if status.is_success() {
                        return Outcome::Acked;
                    }
                    let why = format!("{status}: {}", String::from_utf8_lossy(&text));
                    if status.is_client_error() && status.as_u16() != 429 {
                        return Outcome::Failed(why);
                    }
                    why
                }
                Err(e) => e.to_string(),
            };
            attempts += 1;
            let since = *failing_since.get_or_insert_with(Instant::now);
            let pause = match self.retry {
                Retry::Attempts(n) if attempts >= n => {
                    return Outcome::Failed(format!("gave up after {n} attempts: {why}"));
                }
                Retry::Attempts(_) => backoff,
                Retry::StopAfter(limit) => {
                    let failed_for = since.elapsed();
                    if failed_for >= limit {
                        return Outcome::Failed(format!(
                            "failing for {:.1}s: {why}",
                            failed_for.as_secs_f64()
                        ));
                    }
                    backoff.min(limit - failed_for)
                }
            };
            if self.stopped() {
                return Outcome::Stopped;
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sends a slice: one task per shard and receiver, each sending its
    /// shard's requests in order over its own client (connection), and
    /// records in `acks[shard][receiver]` what each was answered; returns
    /// once every request has been answered or given up on, or, with
    /// [`Retry::StopAfter`], once the run stops (the requests not tried
    /// then are recorded as unsent).
    pub async fn send_slice(
        &self,
        clients: &[Vec<(HttpClient, hyper::Uri)>],
        slice: Slice,
        acks: &mut [Vec<ConnAck>],
    ) {
        let mut tasks = Vec::new();
        // The encoded bodies are shared between the receivers.
        for (shard_i, (shard, receivers)) in slice.shards.into_iter().zip(clients).enumerate() {
            let requests: Arc<[(Bytes, crate::RequestMeta)]> =
                shard.requests.into_iter().zip(shard.meta).collect();
            for (recv_i, (client, url)) in receivers.iter().enumerate() {
                let Some(slot) = acks.get_mut(shard_i).and_then(|a| a.get_mut(recv_i)) else {
                    continue;
                };
                let mut ack = std::mem::take(slot);
                let (client, url, requests) = (client.clone(), url.clone(), requests.clone());
                let sender = self.clone();
                tasks.push((
                    shard_i,
                    recv_i,
                    tokio::spawn(async move {
                        sender.send_all(&client, &url, &requests, &mut ack).await;
                        ack
                    }),
                ));
            }
        }
        for (shard_i, recv_i, t) in tasks {
            let Some(slot) = acks.get_mut(shard_i).and_then(|a| a.get_mut(recv_i)) else {
                continue;
            };
            match t.await {
                Ok(ack) => *slot = ack,
                Err(e) => {
                    // What the connection got acknowledged is lost with
                    // the task: claim nothing for it.
                    eprintln!("connection {shard_i}: {e}");
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    *slot = ConnAck {
                        gap_step: Some(0),
                        ..ConnAck::default()
                    };
                }
            }
        }
    }

    /// One connection's requests of a slice, in order.
    async fn send_all(
        &self,
        client: &HttpClient,
        url: &hyper::Uri,
        requests: &[(Bytes, crate::RequestMeta)],
        ack: &mut ConnAck,
    ) {
        for (body, meta) in requests {
            if self.stopped() {
                ack.unsent(meta);
                return;
            }
            match self.send_one(client, url, body.clone()).await {
                Outcome::Acked => ack.acked(meta),
                Outcome::Stopped => {
                    ack.failed(meta);
                    return;
                }
                Outcome::Failed(e) => {
                    ack.failed(meta);
                    if self.failures.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("request failed: {e}");
                    }
                    if let Retry::StopAfter(_) = self.retry {
                        if !self.stop.swap(true, Ordering::Relaxed) {
                            eprintln!("stopping the run: a request failed for good ({e})");
                        }
                        return;
                    }
                }
            }
        }
    }
}
