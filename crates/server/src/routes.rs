//! The route table and the request handlers.
//!
//! [`ROUTES`] is the one list of paths; [`handle`] dispatches, times the
//! request and turns any [`ServerError`] into a plain-text response with the
//! status [`ServerError::status`] picks. Paths it does not know go to the
//! query API (`query_api`); bodies are read and written through `body`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::body::{error_response, full, header, read_body, text, ChannelBody, ResponseBody};
use crate::metrics::{Handler, Metrics};
use crate::read;
use crate::write::{self, WireVersion, WriteOutcome, WriteScratch};
use crate::{ServerConfig, ServerError};

/// State shared by all connections of one server.
pub struct Shared {
    pub cfg: ServerConfig,
    pub backend: Arc<dyn Backend>,
    pub metrics: Arc<Metrics>,
    /// The Prometheus query API, when mounted (see `serve_with_api`).
    pub api: Option<Arc<cairn_api::Api>>,
    /// Remote write's server-wide series cache, behind each connection's.
    pub series_cache: Arc<write::SharedSeriesCache>,
    /// OTLP delta-to-cumulative running totals, when that is on.
    pub otlp_delta: Option<Arc<crate::otlp::DeltaState>>,
}

/// Per-connection state: a body buffer reused across the connection's
/// requests (taken while a request uses it, so concurrent HTTP/2 streams
/// each get their own).
#[derive(Default)]
pub struct ConnState {
    buf: Mutex<Vec<u8>>,
    /// Remote write scratch state (series cache, decompression buffer),
    /// taken by one write at a time like `buf`.
    write: Mutex<Option<WriteScratch>>,
    /// Where the bytes the write state holds are reported, and how many
    /// were reported last (taken back when the connection closes).
    metrics: Option<Arc<Metrics>>,
    reported: std::sync::atomic::AtomicU64,
}

impl Drop for ConnState {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            let held = *self.reported.get_mut();
            m.add_conn_cache_bytes(-i64::try_from(held).unwrap_or(i64::MAX));
        }
    }
}

impl ConnState {
    /// State of a new connection, reporting its caches' size to `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            buf: Mutex::default(),
            write: Mutex::default(),
            metrics: Some(metrics),
            reported: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn take_write(&self, shared: &Arc<write::SharedSeriesCache>) -> WriteScratch {
        self.write
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_else(|| WriteScratch::with_shared(shared.clone()))
    }

    fn put_write(&self, w: WriteScratch) {
        if let Some(m) = &self.metrics {
            let now = w.heap_bytes();
            let old = self
                .reported
                .swap(now, std::sync::atomic::Ordering::Relaxed);
            m.add_conn_cache_bytes(now as i64 - old as i64);
        }
        if let Ok(mut g) = self.write.lock() {
            *g = Some(w);
        }
    }

    fn take(&self) -> Vec<u8> {
        self.buf
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }

    fn put(&self, mut b: Vec<u8>) {
        b.clear();
        if let Ok(mut g) = self.buf.lock() {
            if g.capacity() < b.capacity() {
                *g = b;
            }
        }
    }
}

/// Every route: path, handler, allowed methods.
pub const ROUTES: &[(&str, Handler, &[Method])] = &[
    ("/api/v1/write", Handler::Write, &[Method::POST]),
    (crate::otlp::PATH, Handler::Otlp, &[Method::POST]),
    ("/api/v1/read", Handler::Read, &[Method::POST]),
    ("/-/healthy", Handler::Healthy, &[Method::GET, Method::HEAD]),
    ("/-/ready", Handler::Ready, &[Method::GET, Method::HEAD]),
    ("/metrics", Handler::Metrics, &[Method::GET]),
    ("/debug/memory", Handler::Memory, &[Method::GET]),
    ("/-/reload", Handler::Reload, &[Method::POST, Method::PUT]),
];

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let route = ROUTES.iter().find(|(p, _, _)| *p == req.uri().path());
    let handler = route.map_or_else(|| Handler::for_api_path(req.uri().path()), |r| r.1);
    if route.is_none() && matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(resp) = crate::ui::serve(req.uri().path()) {
            shared
                .metrics
                .observe_request(Handler::Ui, resp.status().as_u16(), start.elapsed());
            return Ok(resp);
        }
    }
    let result = match route {
        None => match &shared.api {
            Some(api) => match crate::query_api::handle(api, req).await {
                Some(r) => r,
                None => Err(ServerError::NotFound),
            },
            None => Err(ServerError::NotFound),
        },
        Some((path, _, methods)) if !methods.contains(req.method()) => {
            Err(ServerError::MethodNotAllowed {
                method: req.method().to_string(),
                path: (*path).to_owned(),
            })
        }
        Some((_, h, _)) => dispatch(*h, &shared, &conn, req).await,
    };
    let resp = result.unwrap_or_else(|e| error_response(&e, None));
    shared
        .metrics
        .observe_request(handler, resp.status().as_u16(), start.elapsed());
    Ok(resp)
}

async fn dispatch(
    h: Handler,
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ServerError> {
    if let (Handler::Write | Handler::Otlp, Some(why)) = (h, &shared.cfg.writes_refused) {
        return Err(ServerError::Disabled(why.clone()));
    }
    match h {
        Handler::Write => remote_write(shared, conn, req).await,
        Handler::Otlp => otlp_write(shared, conn, req).await,
        Handler::Read => remote_read(shared, conn, req).await,
        Handler::Healthy => Ok(text(StatusCode::OK, "Prometheus Server is Healthy.\n")),
        Handler::Ready => Ok(if shared.backend.ready() {
            text(StatusCode::OK, "Prometheus Server is Ready.\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
        }),
        Handler::Metrics => {
            let backend = shared.backend.clone();
            let metrics = shared.metrics.clone();
            rendered(
                move || metrics.render(&backend.stats()),
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .await
        }
        Handler::Memory => {
            let backend = shared.backend.clone();
            let conns = shared.metrics.conn_cache_bytes();
            let cache = shared.series_cache.clone();
            rendered(
                move || crate::memory::render(backend.memory(), conns, cache.heap_bytes()),
                "text/plain; charset=utf-8",
            )
            .await
        }
        Handler::Reload => {
            if !shared.cfg.enable_lifecycle {
                return Ok(text(
                    StatusCode::FORBIDDEN,
                    "Lifecycle API is not enabled.\n",
                ));
            }
            let b = shared.backend.clone();
            let r = tokio::task::spawn_blocking(move || b.reload())
                .await
                .unwrap_or_else(|e| Some(Err(e.to_string())));
            Ok(match r {
                None | Some(Ok(())) => text(StatusCode::OK, ""),
                Some(Err(m)) => crate::body::full(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    bytes::Bytes::from(format!("failed to reload config: {m}\n")),
                ),
            })
        }
        Handler::Other | Handler::Api(_) | Handler::Ui => Err(ServerError::NotFound),
    }
}

/// A 200 with the text `render` builds off the async workers (it may walk
/// every series), typed `content_type`.
async fn rendered(
    render: impl FnOnce() -> String + Send + 'static,
    content_type: &'static str,
) -> Result<Response<ResponseBody>, ServerError> {
    let body = tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut r = full(StatusCode::OK, body.into());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn remote_write(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ServerError> {
    let version = write::parse_content_type(header(&req, CONTENT_TYPE))?;
    write::check_content_encoding(header(&req, CONTENT_ENCODING))?;
    let mut buf = conn.take();
    if let Err(e) = read_body(req, shared.cfg.max_compressed_body_bytes, &mut buf).await {
        conn.put(buf);
        return Err(e);
    }
    let sh = shared.clone();
    let mut scratch = conn.take_write(&shared.series_cache);
    // On a multi-threaded runtime the write runs on this worker
    // (`block_in_place` hands its other tasks to another thread): a hop to
    // the blocking pool and back costs two context switches per request.
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let (buf, scratch, result) = if multi {
        tokio::task::block_in_place(move || {
            let r = write_blocking(&sh, version, &buf, &mut scratch);
            (buf, scratch, r)
        })
    } else {
        tokio::task::spawn_blocking(move || {
            let r = write_blocking(&sh, version, &buf, &mut scratch);
            (buf, scratch, r)
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
    };
    conn.put(buf);
    conn.put_write(scratch);
    let outcome = result?;
    outcome.record(&shared.metrics);
    let mut resp = match outcome.refusal_message() {
        None => full(StatusCode::NO_CONTENT, Bytes::new()),
        Some(msg) => error_response(&ServerError::Refused(msg), None),
    };
    let h = resp.headers_mut();
    for (name, v) in [
        (
            "x-prometheus-remote-write-samples-written",
            outcome.samples_written,
        ),
        (
            "x-prometheus-remote-write-histograms-written",
            outcome.histograms_written,
        ),
        (
            "x-prometheus-remote-write-exemplars-written",
            outcome.exemplars_written,
        ),
    ] {
        h.insert(name, HeaderValue::from(v));
    }
    Ok(resp)
}

async fn otlp_write(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ServerError> {
    let ct = header(&req, CONTENT_TYPE).map(str::to_owned);
    let ce = header(&req, CONTENT_ENCODING).map(str::to_owned);
    let json = crate::otlp::is_json(ct.as_deref());
    let mut buf = conn.take();
    if let Err(e) = read_body(req, shared.cfg.max_compressed_body_bytes, &mut buf).await {
        conn.put(buf);
        return Err(e);
    }
    let sh = shared.clone();
    let (buf, result) = tokio::task::spawn_blocking(move || {
        let r = crate::otlp::decode_request(ct.as_deref(), ce.as_deref(), &buf, &sh.cfg).and_then(
            |mut rq| {
                let dropped = sh
                    .otlp_delta
                    .as_ref()
                    .map(|d| d.convert(&mut rq))
                    .unwrap_or_default();
                let mut app = sh.backend.appender();
                match crate::otlp::ingest(&rq, &sh.cfg, &mut *app, now_ms()) {
                    Ok(mut out) => {
                        app.commit()?;
                        out.rejected_points += dropped.points;
                        out.messages.extend(dropped.messages);
                        Ok(out)
                    }
                    Err(e) => {
                        if let Err(re) = app.rollback() {
                            tracing::warn!(error = %re, "rollback after failed OTLP write");
                        }
                        Err(e)
                    }
                }
            },
        );
        (buf, r)
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))?;
    conn.put(buf);
    let out = result?;
    shared
        .metrics
        .add_otlp(out.samples_written, out.rejected_points);
    if out.rejected_points > 0 {
        tracing::warn!(rejected = out.rejected_points, reasons = %out.messages.join("; "), "OTLP data points rejected");
    }
    if out.delta_refused {
        // What else the request held is stored; the sender must not retry.
        return Err(ServerError::BadRequest(format!(
            "{} data points refused: {}",
            out.rejected_points,
            out.messages.join("; ")
        )));
    }
    let (body, ct) = if json {
        (crate::otlp::response_json(&out), "application/json")
    } else {
        (crate::otlp::response(&out), "application/x-protobuf")
    };
    let mut r = full(StatusCode::OK, body.into());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// Decode, append, commit (or roll back on a retryable failure).
fn write_blocking(
    sh: &Shared,
    version: WireVersion,
    body: &[u8],
    scratch: &mut WriteScratch,
) -> Result<WriteOutcome, ServerError> {
    let mut app = sh.backend.appender();
    match write::ingest_with(version, body, &sh.cfg, &mut *app, now_ms(), scratch) {
        Ok(outcome) => {
            app.commit()?;
            Ok(outcome)
        }
        Err(e) => {
            if let Err(re) = app.rollback() {
                tracing::warn!(error = %re, "rollback after failed remote write");
            }
            if e.status().is_server_error() {
                tracing::error!(error = %e, "remote write failed");
            }
            Err(e)
        }
    }
}

async fn remote_read(
    shared: &Arc<Shared>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ServerError> {
    write::check_content_encoding(header(&req, CONTENT_ENCODING))?;
    let mut buf = conn.take();
    let read = read_body(req, shared.cfg.max_compressed_body_bytes, &mut buf).await;
    let decoded = read.and_then(|()| read::decode_request(&buf, &shared.cfg));
    conn.put(buf);
    let (rr, kind) = decoded?;
    match kind {
        cairn_proto::read::ResponseType::Samples => {
            let sh = shared.clone();
            let body = tokio::task::spawn_blocking(move || {
                read::samples_response(&*sh.backend, &rr, &sh.cfg, &sh.metrics)
                    .map(|raw| cairn_proto::snappy::compress(&raw))
            })
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))??;
            let mut r = full(StatusCode::OK, body.into());
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(cairn_proto::read::SAMPLES_CONTENT_TYPE),
            );
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            Ok(r)
        }
        cairn_proto::read::ResponseType::StreamedXorChunks => {
            let (tx, rx) = mpsc::channel(shared.cfg.read_stream_buffer_frames.max(1));
            let (backend, cfg, metrics) = (
                shared.backend.clone(),
                shared.cfg.clone(),
                shared.metrics.clone(),
            );
            tokio::task::spawn_blocking(move || read::stream_chunks(backend, rr, cfg, metrics, tx));
            let mut r = Response::new(ChannelBody { rx }.boxed());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(cairn_proto::read::STREAMED_CONTENT_TYPE),
            );
            Ok(r)
        }
    }
}
