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

use super::parse::RequestError;
use crate::infer::InferError;
use crate::metrics::RejectionReason;
use crate::preprocess::PreprocessError;

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

    /// 405 where axum computes the `Allow` header itself (its
    /// method-not-allowed fallback adds it to whatever we answer).
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
        InferError::NotReady(_) | InferError::ShuttingDown | InferError::QueueFull { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        InferError::NoImages | InferError::InvalidTopK { .. } | InferError::BadTensor { .. } => {
            StatusCode::BAD_REQUEST
        }
        InferError::TooManyImages { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        InferError::BadImage { source, .. } => preprocess_status(source),
        InferError::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        InferError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of each way an upload can fail to become a model input.
pub fn preprocess_status(error: &PreprocessError) -> StatusCode {
    match error {
        PreprocessError::Empty => StatusCode::BAD_REQUEST,
        PreprocessError::UnsupportedFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PreprocessError::Corrupt { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        PreprocessError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        // A transform the server cannot run is the server's fault.
        PreprocessError::Transform { .. } => StatusCode::INTERNAL_SERVER_ERROR,
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

/// `Retry-After` in whole seconds, rounded up and at least 1: a client told
/// "0" would retry at once, which is exactly what a full queue cannot take.
pub fn retry_after_secs(after: Duration) -> u64 {
    u64::try_from(after.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Marks `response` as its connection's last. Used when answering before the
/// request body was read to its end: hyper cannot reuse such a connection and
/// drops it, and a client not told so would send its next request into the
/// closing socket (hyper's `IncompleteMessage`).
pub fn close_connection(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether a request announces a body (which an early answer leaves unread).
pub fn has_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|length| length.trim() != "0")
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
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::DecodeLimits;

    fn bad_image(source: PreprocessError) -> InferError {
        InferError::BadImage { index: 0, source }
    }

    #[test]
    fn every_infer_error_maps_to_its_status_and_token() {
        let cases = [
            (InferError::UnknownModel("x".into()), 404, "model_not_found"),
            (InferError::NotReady("m"), 503, "model_not_ready"),
            (InferError::ShuttingDown, 503, "shutting_down"),
            (
                InferError::QueueFull {
                    depth: 1,
                    capacity: 1,
                    retry_after: Duration::from_millis(10),
                },
                503,
                "queue_full",
            ),
            (InferError::NoImages, 400, "no_images"),
            (
                InferError::TooManyImages { count: 9, limit: 8 },
                413,
                "too_many_images",
            ),
            (
                InferError::InvalidTopK { value: 0, max: 10 },
                400,
                "invalid_top_k",
            ),
            (bad_image(PreprocessError::Empty), 400, "empty_body"),
            (
                bad_image(PreprocessError::UnsupportedFormat {
                    format: "tiff".into(),
                }),
                415,
                "unsupported_media_type",
            ),
            (
                bad_image(PreprocessError::Corrupt { reason: "x".into() }),
                422,
                "invalid_image",
            ),
            (
                bad_image(PreprocessError::TooLarge {
                    width: 1,
                    height: 1,
                    limit: DecodeLimits::default(),
                }),
                413,
                "image_too_large",
            ),
            (
                bad_image(PreprocessError::Transform { reason: "x".into() }),
                500,
                "preprocess_failed",
            ),
            (
                InferError::BadTensor {
                    index: 0,
                    reason: "x".into(),
                },
                400,
                "invalid_tensor",
            ),
            (InferError::DeadlineExceeded, 504, "deadline_exceeded"),
            (InferError::Internal("x".into()), 500, "internal_error"),
        ];
        for (error, status, token) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{token}");
            assert_eq!(api.error_type(), token);
        }
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let api = ApiError::from(InferError::Internal("/secret/path exploded".into()));
        assert_eq!(api.message(), "internal error");
        let api = ApiError::from(bad_image(PreprocessError::Transform {
            reason: "crop_pct=0".into(),
        }));
        assert_eq!(api.message(), "internal error");
        // Other 5xx say what happened: there is nothing internal in them.
        let api = ApiError::from(InferError::DeadlineExceeded);
        assert!(api.message().contains("deadline"), "{}", api.message());
        let api = ApiError::from(InferError::ShuttingDown);
        assert!(api.message().contains("shutting down"));
    }

    #[test]
    fn unavailable_errors_carry_retry_after_rounded_up_to_whole_seconds() {
        let api = ApiError::from(InferError::QueueFull {
            depth: 1,
            capacity: 1,
            retry_after: Duration::from_millis(1500),
        });
        let response = api.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        let shutting = ApiError::from(InferError::ShuttingDown).into_response();
        assert_eq!(shutting.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn request_errors_map_to_client_statuses() {
        let cases = [
            (
                RequestError::UnsupportedContentType("text/plain".into()),
                415,
            ),
            (RequestError::BodyTooLarge { limit: 10 }, 413),
            (RequestError::TooManyImages { limit: 2 }, 413),
            (RequestError::InvalidJson("x".into()), 400),
            (RequestError::InvalidTopK("x".into()), 400),
            (RequestError::EmptyBody, 400),
            (RequestError::UnknownAction("explain".into()), 404),
            (RequestError::InvalidTensor("x".into()), 400),
            (RequestError::InvalidBinaryData("x".into()), 400),
            (RequestError::UnsupportedContentEncoding("gzip".into()), 415),
            (RequestError::BodyTimeout { timeout_ms: 10 }, 408),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status().as_u16(), status);
        }
        assert_eq!(
            request_rejection(&RequestError::BodyTooLarge { limit: 1 }),
            RejectionReason::TooLarge
        );
        assert_eq!(
            request_rejection(&RequestError::EmptyBody),
            RejectionReason::InvalidInput
        );
        assert_eq!(
            request_rejection(&RequestError::BodyTimeout { timeout_ms: 1 }),
            RejectionReason::BodyTimeout
        );
    }

    #[test]
    fn status_specific_headers_are_added() {
        let unauthorized = ApiError::unauthorized();
        assert_eq!(unauthorized.error_type(), "unauthorized");
        let response = unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let timeout = ApiError::from(RequestError::BodyTimeout { timeout_ms: 5 }).into_response();
        assert_eq!(timeout.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(timeout.headers()[header::CONNECTION], "close");
    }

    #[test]
    fn method_not_allowed_sends_allow() {
        let error = RequestError::WrongMethod {
            method: "GET".into(),
            allow: "POST",
        };
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }
}
