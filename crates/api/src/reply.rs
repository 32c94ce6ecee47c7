//! What a handler answers and the one mapping from failures to
//! Prometheus's error types and status codes.
//!
//! A handler returns `Result<Out, Fail>`; the admin handlers, whose
//! success may have no body, return `Result<Reply, Fail>`. [`respond`]
//! turns either into the response: 200 with the success envelope, 204 with
//! no body, or the error envelope with the status of its error type.

use crate::engine::QueryError;
use crate::json;
use crate::ApiResponse;

/// Why a request failed, by Prometheus error type.
pub(crate) enum Fail {
    /// The admin API is disabled (503 unavailable).
    Unavailable(String),
    BadData(String),
    Execution(String),
    Timeout(String),
    Canceled(String),
    Internal(String),
    MethodNotAllowed,
}

impl From<QueryError> for Fail {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadData(m) => Fail::BadData(m),
            QueryError::Execution(m) => Fail::Execution(m),
            QueryError::Timeout(m) => Fail::Timeout(m),
            QueryError::Canceled(m) => Fail::Canceled(m),
            QueryError::Internal(m) => Fail::Internal(m),
        }
    }
}

impl From<cairn_storage::StorageError> for Fail {
    fn from(e: cairn_storage::StorageError) -> Self {
        match e {
            cairn_storage::StorageError::Canceled => Fail::Canceled(e.to_string()),
            other => Fail::Internal(other.to_string()),
        }
    }
}

impl From<crate::AdminError> for Fail {
    fn from(e: crate::AdminError) -> Self {
        Fail::Internal(e.to_string())
    }
}

/// A successful answer: the `data` JSON and its annotations.
pub(crate) struct Out {
    pub data: String,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Out {
    pub fn data(data: String) -> Self {
        Self {
            data,
            warnings: vec![],
            infos: vec![],
        }
    }

    pub fn warn(data: String, warnings: Vec<String>) -> Self {
        Self {
            data,
            warnings,
            infos: vec![],
        }
    }
}

/// A success with or without a body.
pub(crate) enum Reply {
    /// 200 with the success envelope.
    Data(Out),
    /// 204 without a body (admin calls that return nothing).
    NoContent,
}

/// What most handlers return.
pub(crate) type R = Result<Out, Fail>;

/// The response for a handler's result.
pub(crate) fn respond(r: Result<Reply, Fail>) -> ApiResponse {
    match r {
        Ok(Reply::Data(o)) => ApiResponse {
            status: 200,
            content_type: "application/json",
            body: json::success(&o.data, &o.warnings, &o.infos),
        },
        Ok(Reply::NoContent) => ApiResponse {
            status: 204,
            content_type: "application/json",
            body: Vec::new(),
        },
        Err(f) => {
            let (status, kind, msg) = match f {
                Fail::Unavailable(m) => (503, "unavailable", m),
                Fail::BadData(m) => (400, "bad_data", m),
                Fail::Execution(m) => (422, "execution", m),
                Fail::Timeout(m) => (503, "timeout", m),
                Fail::Canceled(m) => (499, "canceled", m),
                Fail::Internal(m) => (500, "internal", m),
                Fail::MethodNotAllowed => (405, "bad_data", "method not allowed".to_string()),
            };
            ApiResponse {
                status,
                content_type: "application/json",
                body: json::error(kind, &msg),
            }
        }
    }
}
