//! The server's one error type, and the one place that maps errors to HTTP
//! status codes ([`ServerError::status`]).
//!
//! The split that matters to senders: 4xx means "this data will never be
//! accepted, drop it", 5xx means "try again later". Storage errors go one way
//! or the other by [`cairn_storage::StorageError::is_client_error`].

use cairn_proto::ProtoError;
use cairn_storage::StorageError;
use hyper::StatusCode;

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body exceeds the limit of {limit} bytes ({what})")]
    BodyTooLarge { limit: usize, what: &'static str },
    #[error("reading request body: {0}")]
    BodyRead(#[source] hyper::Error),
    #[error("{0}")]
    Decode(#[from] ProtoError),
    /// Some or all of a write was refused; the message lists what.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("404 page not found")]
    NotFound,
    /// An endpoint this server was started without (404, saying why).
    #[error("{0}")]
    Disabled(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServerError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::Decode(ProtoError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::BodyRead(_)
            | ServerError::Decode(_)
            | ServerError::Refused(_)
            | ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ServerError::NotFound | ServerError::Disabled(_) => StatusCode::NOT_FOUND,
            ServerError::Storage(e) if e.is_client_error() => StatusCode::BAD_REQUEST,
            ServerError::Storage(StorageError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Storage(_) | ServerError::Internal(_) | ServerError::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}
