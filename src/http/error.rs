//! Every error the API can answer, as one JSON shape, and the single place
//! where an error becomes an HTTP status.
//!
//! Bodies are always `{"error": "<for a human>", "error_type": "<stable token>"}`.
//! Clients branch on `error_type` (it never changes with details); `error` is
//! free text. A 5xx never carries internal detail: the detail is logged with
//! the request's span (and so its request id) and the client gets a generic
//! message.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::respond::{close_connection, retry_after_secs};
use crate::infer::{ImageProblem, InferError};
use crate::metrics::RejectionReason;

/// Why a request is malformed before it ever reaches the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "unsupported content type {0:?}: send a raw image (image/jpeg, image/png, image/webp, \
         image/bmp, image/gif or application/octet-stream), multipart/form-data or application/json"
    )]
    UnsupportedContentType(String),
    #[error("request body is empty")]
    EmptyBody,
    #[error("request body is larger than the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    Body(String),
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u64 },
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("instances[{index}]: invalid base64: {reason}")]
    InvalidBase64 { index: usize, reason: String },
    #[error("invalid multipart body: {0}")]
    InvalidMultipart(String),
    #[error("the request contains no image")]
    NoImages,
    #[error("more than {limit} images in one request")]
    TooManyImages { limit: usize },
    #[error("invalid top_k {0}: expected an integer between 1 and the number of classes")]
    InvalidTopK(String),
    #[error("invalid timeout {0}: expected a whole number of milliseconds, at least 1")]
    InvalidTimeout(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidTensor(String),
    #[error("invalid binary tensor data: {0}")]
    InvalidBinaryData(String),
    #[error("unsupported content encoding {0:?}: send the body uncompressed")]
    UnsupportedContentEncoding(String),
    #[error("unknown model action {0:?}: the actions are :predict and :embed")]
    UnknownAction(String),
    #[error("method {method} is not allowed here; allowed: {allow}")]
    WrongMethod { method: String, allow: &'static str },
}

impl RequestError {
    /// A stable machine-readable token for API bodies.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnsupportedContentType(_) => "unsupported_media_type",
            Self::EmptyBody => "empty_body",
            Self::BodyTooLarge { .. } => "payload_too_large",
            Self::Body(_) => "invalid_body",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidBase64 { .. } => "invalid_base64",
            Self::InvalidMultipart(_) => "invalid_multipart",
            Self::NoImages => "no_images",
            Self::TooManyImages { .. } => "too_many_images",
            Self::InvalidTopK(_) => "invalid_top_k",
            Self::InvalidTimeout(_) => "invalid_timeout",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::InvalidTensor(_) => "invalid_tensor",
            Self::InvalidBinaryData(_) => "invalid_binary_data",
            Self::UnsupportedContentEncoding(_) => "unsupported_media_type",
            Self::UnknownAction(_) => "not_found",
            Self::WrongMethod { .. } => "method_not_allowed",
        }
    }
}

/// An error response: status, stable token, message and optional headers.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up) on 503s, so clients
    /// and load balancers back off for as long as the server expects to need.
    retry_after: Option<Duration>,
    /// Sent as `Allow` on 405s, as RFC 9110 requires.
    allow: Option<&'static str>,
    /// Ends the connection after this answer: set when answering before a
    /// request body was read to its end.
    close: bool,
}

/// The body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub error_type: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            retry_after: None,
            allow: None,
            close: false,
        }
    }

    /// The same error, marked as its connection's last answer.
    pub fn closing_connection(self) -> Self {
        Self {
            close: true,
            ..self
        }
    }

    /// 404 for a path no route serves (the router's fallback).
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        )
    }

    /// 405 from the router's fallback, which sets `Allow` from the
    /// documented routes of the path (see `allow`).
    pub fn method_not_allowed_by_router(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method {method} is not allowed on this path"),
        )
    }

    /// 401 for a request to a guarded route without the right bearer token.
    /// The message never says whether a token was sent or how it differed.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route needs the header `Authorization: Bearer <api key>`",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The status of each facade error: the one mapping from [`InferError`] to HTTP.
pub fn infer_status(error: &InferError) -> StatusCode {
    match error {
        InferError::UnknownModel(_) => StatusCode::NOT_FOUND,
        InferError::NotReady(_)
        | InferError::ShuttingDown
        | InferError::QueueFull { .. }
        | InferError::WouldMissDeadline { .. } => StatusCode::SERVICE_UNAVAILABLE,
        InferError::NoImages | InferError::InvalidTopK { .. } | InferError::BadTensor { .. } => {
            StatusCode::BAD_REQUEST
        }
        InferError::TooManyImages { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        InferError::BadImage { .. } => error
            .image_problem()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, image_status),
        InferError::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        InferError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of each way an upload can fail to become a model input.
fn image_status(problem: ImageProblem) -> StatusCode {
    match problem {
        ImageProblem::Empty => StatusCode::BAD_REQUEST,
        ImageProblem::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ImageProblem::Corrupt => StatusCode::UNPROCESSABLE_ENTITY,
        ImageProblem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        // A transform the server cannot run is the server's fault.
        ImageProblem::ServerSide => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of each way the request itself can be malformed.
pub fn request_status(error: &RequestError) -> StatusCode {
    match error {
        RequestError::UnsupportedContentType(_) | RequestError::UnsupportedContentEncoding(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        RequestError::BodyTooLarge { .. } | RequestError::TooManyImages { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        RequestError::UnknownAction(_) => StatusCode::NOT_FOUND,
        RequestError::WrongMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
        RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        RequestError::EmptyBody
        | RequestError::Body(_)
        | RequestError::InvalidJson(_)
        | RequestError::InvalidBase64 { .. }
        | RequestError::InvalidMultipart(_)
        | RequestError::NoImages
        | RequestError::InvalidTopK(_)
        | RequestError::InvalidTimeout(_)
        | RequestError::InvalidParameter(_)
        | RequestError::InvalidTensor(_)
        | RequestError::InvalidBinaryData(_) => StatusCode::BAD_REQUEST,
    }
}

/// The rejection counter a malformed request belongs under.
pub fn request_rejection(error: &RequestError) -> RejectionReason {
    match request_status(error) {
        StatusCode::PAYLOAD_TOO_LARGE => RejectionReason::TooLarge,
        StatusCode::REQUEST_TIMEOUT => RejectionReason::BodyTimeout,
        _ => RejectionReason::InvalidInput,
    }
}

impl From<InferError> for ApiError {
    fn from(error: InferError) -> Self {
        let status = infer_status(&error);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Internal failures (and a transform the server cannot run) are
            // logged in full, inside the request's span, and answered generically.
            tracing::error!(%error, error_type = error.error_type(), "request failed");
            "internal error".to_owned()
        } else {
            error.to_string()
        };
        Self {
            retry_after: error.retry_after(),
            ..Self::new(status, error.error_type(), message)
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        let allow = match &error {
            RequestError::WrongMethod { allow, .. } => Some(*allow),
            _ => None,
        };
        Self {
            allow,
            ..Self::new(
                request_status(&error),
                error.error_type(),
                error.to_string(),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Debug only: a 500 was logged with its detail when it was mapped,
        // and one line per shed request would flood the log exactly when
        // the server is overloaded (the metrics count them instead).
        tracing::debug!(
            status = self.status.as_u16(),
            error_type = self.error_type,
            message = %self.message,
            "request refused"
        );
        let body = ErrorBody {
            error: &self.message,
            error_type: self.error_type,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(after)),
            );
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        match self.status {
            // RFC 9110: a 401 names the scheme that would be accepted.
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // A 408 leaves the body half-read: the connection cannot be reused.
            StatusCode::REQUEST_TIMEOUT => return close_connection(response),
            _ => {}
        }
        if self.close {
            return close_connection(response);
        }
        response
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
