//! The one place where an API error becomes a gRPC status, following
//! Triton's mapping: bad input → `INVALID_ARGUMENT`, an unknown model →
//! `NOT_FOUND`, a full queue → `RESOURCE_EXHAUSTED` (with `retry-after`
//! metadata, whole seconds, like HTTP's `Retry-After`), a missed deadline →
//! `DEADLINE_EXCEEDED`, draining or a model not ready → `UNAVAILABLE`, no
//! or a wrong API key → `UNAUTHENTICATED`.
//!
//! Each status also carries the HTTP API's stable `error_type` in
//! `error-type` metadata, so clients can branch on the same tokens.

use axum::http::StatusCode;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::http::error::ApiError;
use crate::http::respond::retry_after_secs;

/// Metadata key of the retry delay, in whole seconds.
pub const RETRY_AFTER: &str = "retry-after";
/// Metadata key of the stable error token.
pub const ERROR_TYPE: &str = "error-type";

/// The gRPC code of an API error (its HTTP status and token).
pub fn code(error: &ApiError) -> Code {
    match (error.status(), error.error_type()) {
        (StatusCode::UNAUTHORIZED, _) => Code::Unauthenticated,
        (StatusCode::NOT_FOUND, _) => Code::NotFound,
        (StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT, _) => Code::DeadlineExceeded,
        (StatusCode::SERVICE_UNAVAILABLE, "queue_full" | "deadline_unreachable") => {
            Code::ResourceExhausted
        }
        (StatusCode::SERVICE_UNAVAILABLE, _) => Code::Unavailable,
        (StatusCode::INTERNAL_SERVER_ERROR, _) => Code::Internal,
        (status, _) if status.is_client_error() => Code::InvalidArgument,
        _ => Code::Unknown,
    }
}

/// The status for `error`, with its metadata.
pub fn status(error: &ApiError) -> Status {
    let mut status = Status::new(code(error), error.message());
    let metadata = status.metadata_mut();
    metadata.insert(ERROR_TYPE, MetadataValue::from_static(error.error_type()));
    if let Some(after) = error.retry_after() {
        metadata.insert(RETRY_AFTER, MetadataValue::from(retry_after_secs(after)));
    }
    status
}

/// The HTTP status a gRPC code is counted under in the request metrics,
/// whose `status` label is HTTP's: a gRPC request shows up as its HTTP V2
/// twin would have.
pub fn http_equivalent(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument => 400,
        Code::Unauthenticated => 401,
        Code::NotFound => 404,
        Code::ResourceExhausted | Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        Code::Cancelled => 499,
        _ => 500,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
