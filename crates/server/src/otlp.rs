//! The OTLP metrics receiver: `POST /api/v1/otlp/v1/metrics`, as
//! Prometheus's (`--web.enable-otlp-receiver` there; always on here).
//!
//! Accepts an `ExportMetricsServiceRequest` as binary protobuf
//! (`Content-Type: application/x-protobuf`) or OTLP/JSON
//! (`application/json`, see `json`), uncompressed or gzip
//! (`Content-Encoding: gzip`, decompressed to at most
//! `ServerConfig::max_body_bytes`); the response is in the request's
//! encoding. The metrics are translated as `translate` describes and
//! appended in one commit; the answer is 200 with an
//! `ExportMetricsServiceResponse` whose partial success counts the
//! rejected data points and says why (OTLP's way of reporting what will
//! never be accepted, so the sender does not retry it). A storage failure
//! that is not the sender's fault rolls the request back and answers 5xx.

mod delta;
mod exponential;
mod json;
mod names;
mod translate;

use std::io::Read;

use cairn_proto::otlp::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use cairn_proto::Message;

pub use delta::{DeltaState, Dropped};
pub use translate::OtlpOutcome;

use crate::{ServerConfig, ServerError};

/// The receiver's path.
pub const PATH: &str = "/api/v1/otlp/v1/metrics";

/// Checks the headers and decodes the body into a request.
pub fn decode_request(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    cfg: &ServerConfig,
) -> Result<ExportMetricsServiceRequest, ServerError> {
    let ct = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    let is_json = match ct.as_deref() {
        Some("application/x-protobuf") | Some("application/protobuf") => false,
        Some("application/json") => true,
        other => {
            return Err(ServerError::UnsupportedMediaType(format!(
                "unsupported Content-Type {:?} for OTLP: expected application/x-protobuf or application/json",
                other.unwrap_or("")
            )))
        }
    };
    let mut inflated = Vec::new();
    let raw: &[u8] = match content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => body,
        Some("gzip") => {
            let limit = cfg.max_body_bytes;
            flate2::read::GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| ServerError::BadRequest(format!("gzip body: {e}")))?;
            if inflated.len() > limit {
                return Err(ServerError::BodyTooLarge {
                    limit,
                    what: "decompressed",
                });
            }
            &inflated
        }
        Some(other) => {
            return Err(ServerError::UnsupportedMediaType(format!(
                "unsupported Content-Encoding {other:?} for OTLP: expected gzip or none"
            )))
        }
    };
    if raw.len() > cfg.max_body_bytes {
        return Err(ServerError::BodyTooLarge {
            limit: cfg.max_body_bytes,
            what: "decompressed",
        });
    }
    if is_json {
        return json::decode(raw);
    }
    ExportMetricsServiceRequest::decode(raw)
        .map_err(|e| ServerError::BadRequest(format!("malformed OTLP request: {e}")))
}

/// Whether `content_type` names OTLP/JSON (the response then is JSON too).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"))
}

/// Translates and appends `req` through `app` (not committed here).
pub fn ingest(
    req: &ExportMetricsServiceRequest,
    cfg: &ServerConfig,
    app: &mut dyn cairn_storage::Appender,
    now_ms: i64,
) -> Result<OtlpOutcome, ServerError> {
    translate::ingest(req, cfg, app, now_ms)
}

/// The OTLP/JSON response body for `out`.
pub fn response_json(out: &OtlpOutcome) -> Vec<u8> {
    json::response(out.rejected_points, &out.messages.join("; "))
}

/// The response body for `out`.
pub fn response(out: &OtlpOutcome) -> Vec<u8> {
    let partial_success = (out.rejected_points > 0).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(out.rejected_points).unwrap_or(i64::MAX),
        error_message: out.messages.join("; "),
    });
    ExportMetricsServiceResponse { partial_success }.encode_to_vec()
}

#[cfg(test)]
mod tests;
