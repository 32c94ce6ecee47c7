//! Request and response bodies, for every handler: reading a request body
//! under a size limit, complete and streamed response bodies, and the
//! plain-text responses (health checks, errors) Prometheus writes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::ServerError;

/// Response body: a full buffer or a stream.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// The value of header `name`, when present and visible ASCII.
pub(crate) fn header(req: &Request<Incoming>, name: HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads the whole body into `buf`, refusing more than `limit` bytes.
pub(crate) async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<(), ServerError> {
    let too_large = ServerError::BodyTooLarge {
        limit,
        what: "compressed",
    };
    if let Some(len) = header(&req, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()) {
        if len > limit as u64 {
            return Err(too_large);
        }
        buf.reserve(len as usize);
    }
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ServerError::BodyRead)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(())
}

/// A body fed by a channel; an `Err` item aborts the response.
pub(crate) struct ChannelBody {
    pub(crate) rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A complete response with `body`.
pub(crate) fn full(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r
}

/// A plain-text response with a static body.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut r = full(status, Bytes::from_static(body.as_bytes()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A plain-text error response, as Go's `http.Error` writes it.
pub fn error_response(e: &ServerError, status: Option<StatusCode>) -> Response<ResponseBody> {
    let status = status.unwrap_or_else(|| e.status());
    if status.is_server_error() {
        tracing::warn!(error = %e, %status, "request failed");
    } else {
        tracing::debug!(error = %e, %status, "request refused");
    }
    let mut r = full(status, Bytes::from(format!("{e}\n")));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
