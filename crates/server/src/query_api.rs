//! Mounts the Prometheus query API (`cairn_api::Api`) behind the server's
//! own routes: any path the route table doesn't know goes to the API, which
//! runs on the blocking pool because PromQL evaluation is CPU-bound.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use crate::body::{full, header, read_body, ResponseBody};
use crate::ServerError;

/// Largest form body accepted by the query API.
const MAX_FORM_BYTES: usize = 16 << 20;

/// Answers `req` through `api`, or `None` when the API doesn't know the path.
pub(crate) async fn handle(
    api: &Arc<cairn_api::Api>,
    req: Request<Incoming>,
) -> Option<Result<Response<ResponseBody>, ServerError>> {
    let path = req.uri().path().to_owned();
    if !(path.starts_with("/api/v1/") || path == "/federate") {
        return None;
    }
    let method = req.method().to_string();
    let mut params = cairn_api::parse_form(req.uri().query().unwrap_or(""));
    let accept = header(&req, hyper::header::ACCEPT)
        .unwrap_or_default()
        .to_owned();
    let is_form = header(&req, CONTENT_TYPE)
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == "POST" && is_form {
        let mut buf = Vec::new();
        if let Err(e) = read_body(req, MAX_FORM_BYTES, &mut buf).await {
            return Some(Err(e));
        }
        params.extend(cairn_api::parse_form(&String::from_utf8_lossy(&buf)));
    }
    let api = api.clone();
    let areq = cairn_api::ApiRequest {
        method,
        path,
        params,
        accept,
    };
    let answer = tokio::task::spawn_blocking(move || api.handle(&areq)).await;
    let resp = match answer {
        Ok(Some(r)) => r,
        Ok(None) => return Some(Err(ServerError::NotFound)),
        Err(e) => return Some(Err(ServerError::Internal(e.to_string()))),
    };
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = full(status, Bytes::from(resp.body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(resp.content_type));
    Some(Ok(r))
}
