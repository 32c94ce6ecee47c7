//! Cairn's HTTP server: Prometheus remote write (1.0 and 2.0) and remote
//! read, health checks and the server's own metrics.
//!
//! [`serve`] runs until its shutdown future completes, then stops accepting
//! connections and waits for the requests in flight to finish. Storage is
//! reached only through [`Backend`] (the storage crate's `Appendable` and
//! `Queryable` plus optional statistics), one appender per write request,
//! so concurrent writes never wait on a lock held by the server.
//!
//! Status codes follow Prometheus: 204 for a stored write, 400 for data that
//! will never be accepted (the body says what), 413 for bodies over the
//! limits, 415 for unknown content types or encodings, 5xx when storage
//! failed and the sender should retry. [`ServerError::status`] is the one
//! mapping.

mod auth;
mod backend;
mod body;
mod config;
mod error;
mod memory;
pub mod metrics;
pub mod otlp;
mod process;
mod query_api;
pub mod read;
mod routes;
pub mod tls;
mod ui;
pub mod web_config;
pub mod write;

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

pub use backend::{
    Backend, BackendStats, BucketStoreCounts, DurationSummary, ExemplarCounts, MemoryReport,
    ObjstoreCounts, OutOfOrderCounts,
};
pub use config::ServerConfig;
pub use error::ServerError;
pub use routes::ROUTES;

/// Result alias for this crate.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Serves HTTP on `listener` until `shutdown` completes, then stops
/// accepting and returns once every open connection has finished its
/// in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: ServerConfig,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve_with_api(listener, cfg, backend, None, shutdown).await
}

/// Most OTLP delta streams whose running totals the receiver keeps.
const OTLP_DELTA_STREAMS: usize = 1 << 20;

/// [`serve`], with the Prometheus query API (`/api/v1/query`, `/series`,
/// `/federate`, ...) answering every path the server's own routes don't.
pub async fn serve_with_api(
    listener: tokio::net::TcpListener,
    cfg: ServerConfig,
    backend: Arc<dyn Backend>,
    api: Option<Arc<cairn_api::Api>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let otlp_delta = cfg
        .otlp_delta_to_cumulative
        .then(|| Arc::new(otlp::DeltaState::new(OTLP_DELTA_STREAMS)));
    let shared = Arc::new(routes::Shared {
        cfg,
        otlp_delta,
        backend,
        metrics: Arc::new(metrics::Metrics::new()),
        api,
        series_cache: Arc::default(),
    });
    let local = listener.local_addr().map_err(|e| ServerError::Io {
        context: "reading the listener's address".into(),
        source: e,
    })?;
    let web = Arc::new(WebLayer::new(shared.cfg.web.as_deref()));
    tracing::info!(
        addr = %local,
        tls = web.tls.is_some(),
        basic_auth = web.auth.is_some(),
        "HTTP server listening"
    );
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request headers must not hold a
    // connection (and a graceful shutdown) forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg_header_timeout(&shared.cfg));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Typically EMFILE: let other connections finish.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::task::yield_now().await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let sh = shared.clone();
                let conn_state = Arc::new(routes::ConnState::new(shared.metrics.clone()));
                let w = web.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let (sh, cs, w) = (sh.clone(), conn_state.clone(), w.clone());
                    async move { w.handle(sh, cs, req).await }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let tls = web.tls.clone();
                let metrics = shared.metrics.clone();
                tokio::spawn(async move {
                    let res = match tls {
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned()).await,
                        Some(acceptor) => {
                            let hs = tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                            match hs {
                                Ok(Ok(s)) => watcher.watch(builder.serve_connection(TokioIo::new(s), svc).into_owned()).await,
                                Ok(Err(e)) => {
                                    metrics.add_tls_handshake_failure();
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    metrics.add_tls_handshake_failure();
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            }
                        }
                    };
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("HTTP server shutting down; waiting for in-flight requests");
    graceful.shutdown().await;
    Ok(())
}

/// What the web configuration adds around the routes: TLS, basic
/// authentication and response headers.
struct WebLayer {
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<Arc<auth::BasicAuth>>,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl WebLayer {
    fn new(cfg: Option<&web_config::WebConfig>) -> Self {
        match cfg {
            None => Self {
                tls: None,
                auth: None,
                headers: Vec::new(),
            },
            Some(c) => Self {
                tls: c.tls.clone().map(tokio_rustls::TlsAcceptor::from),
                auth: (!c.users.is_empty() || !c.tokens.is_empty())
                    .then(|| Arc::new(auth::BasicAuth::new(c.users.clone(), c.tokens.clone()))),
                headers: c.headers.clone(),
            },
        }
    }

    /// Checks the credentials (bcrypt off the async threads), then routes.
    async fn handle(
        &self,
        sh: Arc<routes::Shared>,
        cs: Arc<routes::ConnState>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> std::result::Result<hyper::Response<body::ResponseBody>, std::convert::Infallible> {
        if let Some(a) = &self.auth {
            let header = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec());
            let ok = match a.remembered(header.as_deref()) {
                true => true,
                false => {
                    let a = a.clone();
                    tokio::task::spawn_blocking(move || a.check(header.as_deref()))
                        .await
                        .unwrap_or(false)
                }
            };
            if !ok {
                sh.metrics.add_unauthorized();
                let mut r = body::full(
                    hyper::StatusCode::UNAUTHORIZED,
                    bytes::Bytes::from_static(b"Unauthorized\n"),
                );
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static(a.challenge()),
                );
                self.add_headers(&mut r);
                return Ok(r);
            }
        }
        let mut r = routes::handle(sh, cs, req).await?;
        self.add_headers(&mut r);
        Ok(r)
    }

    fn add_headers(&self, r: &mut hyper::Response<body::ResponseBody>) {
        for (k, v) in &self.headers {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
}

fn cfg_header_timeout(cfg: &ServerConfig) -> std::time::Duration {
    std::time::Duration::from_millis(cfg.header_read_timeout_ms.max(1))
}
