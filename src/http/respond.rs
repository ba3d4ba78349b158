//! What every answer of the API shares: the request counter, the timing
//! headers, `Retry-After`, and closing a connection whose body was left unread.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::{request_rejection, ApiError, RequestError};
use crate::infer::Timing;
use crate::metrics::{Metrics, Task};

/// The `model` label for requests that name no served model: one fixed
/// value, so clients cannot grow the label's cardinality.
pub const UNKNOWN_MODEL_LABEL: &str = "unknown";

/// Counted for a request whose client went away before the answer (nginx's
/// "client closed request"); no real response carries it.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Where the request's time went, in milliseconds with microsecond precision
/// (the same figures as the `x-*-time-ms` headers).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TimingMs {
    pub preprocess_ms: f64,
    pub queue_ms: f64,
    pub inference_ms: f64,
    pub total_ms: f64,
}

/// Milliseconds rounded to three decimals.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl From<Timing> for TimingMs {
    fn from(timing: Timing) -> Self {
        Self {
            preprocess_ms: millis(timing.preprocess),
            queue_ms: millis(timing.batch_wait),
            inference_ms: millis(timing.inference),
            total_ms: millis(timing.total),
        }
    }
}

/// A 503 with `Retry-After: 1` and `body`: the answer of every readiness
/// check (V1 and V2) while a model loads, failed or the server drains.
pub fn retry_soon(body: impl serde::Serialize) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
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

/// The `x-*-time-ms` headers, and `x-random-weights` when it applies.
pub fn timing_headers(timing: TimingMs, random_weights: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, ms) in [
        ("x-preprocess-time-ms", timing.preprocess_ms),
        ("x-queue-time-ms", timing.queue_ms),
        ("x-inference-time-ms", timing.inference_ms),
        ("x-total-time-ms", timing.total_ms),
    ] {
        if let Ok(value) = HeaderValue::from_str(&format!("{ms:.3}")) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    if random_weights {
        headers.insert(
            HeaderName::from_static("x-random-weights"),
            HeaderValue::from_static("true"),
        );
    }
    headers
}

/// Counts the request under its final status exactly once, or under 499 when
/// the handler is dropped because the client disconnected mid-request.
pub struct RequestCounter<'a> {
    metrics: &'a Metrics,
    label: &'static str,
    /// What the request asked for; V2 learns it only from the body.
    task: Task,
    counted: bool,
}

impl<'a> RequestCounter<'a> {
    pub fn new(metrics: &'a Metrics, label: &'static str, task: Task) -> Self {
        Self {
            metrics,
            label,
            task,
            counted: false,
        }
    }

    /// The task, once the body has told it (a V2 `features` output).
    pub fn set_task(&mut self, task: Task) {
        self.task = task;
    }

    /// The answer to a request refused while its headers or body were read:
    /// counted as a rejection here, since it never reached the facade (which
    /// counts its own), and the connection closed, since the body may be
    /// partly unread.
    pub fn refused(&self, error: RequestError) -> Response {
        self.metrics.reject(self.label, request_rejection(&error));
        close_connection(ApiError::from(error).into_response())
    }

    pub fn finish(&mut self, status: StatusCode) {
        self.metrics
            .count_request(self.label, self.task, status.as_u16());
        self.counted = true;
    }
}

impl Drop for RequestCounter<'_> {
    fn drop(&mut self) {
        if !self.counted {
            self.metrics
                .count_request(self.label, self.task, CLIENT_CLOSED_REQUEST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_keep_three_decimals() {
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.567);
        assert_eq!(millis(Duration::from_nanos(1_600)), 0.002);
        assert_eq!(millis(Duration::ZERO), 0.0);
    }
}
