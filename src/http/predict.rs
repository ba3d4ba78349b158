//! `POST /v1/models/{model}:predict`: parse, hand to the facade, answer.
//!
//! The order of checks is chosen so the cheapest refusal comes first: the
//! model is resolved before the body is read (an unknown model costs no
//! upload buffering), the content type and parameters before the body, and
//! the body before any decode.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::body::read_body;
use super::dto::{PredictResponse, TimingMs};
use super::error::{close_connection, request_rejection, ApiError};
use super::models::model_segment;
use super::parse::{
    body_kind, parse_query, parse_timeout_header, split_model_action, ModelPath, Params,
    RequestError, DEFAULT_TOP_K, TIMEOUT_HEADER,
};
use super::AppState;
use crate::infer::{PredictOutput, PredictRequest};
use crate::metrics::Metrics;

/// The `model` label for requests that name no served model: one fixed
/// value, so clients cannot grow the label's cardinality.
pub(super) const UNKNOWN_MODEL_LABEL: &str = "unknown";

/// Counted for a request whose client went away before the answer (nginx's
/// "client closed request"); no real response carries it.
const CLIENT_CLOSED_REQUEST: u16 = 499;

pub async fn predict(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    // Every refusal before `read_body` leaves the upload unread, so it
    // closes the connection (see `close_connection`).
    let segment = match model_segment(path) {
        Ok(segment) => segment,
        Err(error) => return close_connection(error.into_response()),
    };
    let model = match split_model_action(&segment) {
        Ok(ModelPath::Predict(model)) => model,
        Ok(ModelPath::Metadata(_)) => {
            let error = RequestError::WrongMethod {
                method: "POST".to_owned(),
                allow: "GET, HEAD",
            };
            return close_connection(ApiError::from(error).into_response());
        }
        Err(error) => return close_connection(ApiError::from(error).into_response()),
    };
    let metrics = state.service.metrics();
    let label = match state.service.model(model) {
        Ok(handle) => handle.id.name(),
        Err(error) => {
            // Refused before the body is read: an unknown model costs no upload.
            let response = close_connection(ApiError::from(error).into_response());
            metrics.count_request(UNKNOWN_MODEL_LABEL, response.status().as_u16());
            return response;
        }
    };
    let mut counter = RequestCounter::new(metrics, label);
    let response = match prepare(&state, model, request).await {
        Ok(predict) => match state.service.predict(predict).await {
            Ok(output) => success(output),
            Err(error) => ApiError::from(error).into_response(),
        },
        Err(error) => counter.refused(error),
    };
    counter.finish(response.status());
    response
}

/// Everything about the request except the model's own checks (top-k range,
/// image count against the service limit, readiness), which the facade does.
async fn prepare(
    state: &AppState,
    model: &str,
    request: Request,
) -> Result<PredictRequest, RequestError> {
    let headers = request.headers();
    let kind = body_kind(headers.get(axum::http::header::CONTENT_TYPE))?;
    let query = Params {
        top_k: parse_query(request.uri())?,
        timeout: parse_timeout_header(headers.get(TIMEOUT_HEADER))?,
    };
    let server = &state.server;
    let body = read_body(
        request,
        kind,
        server.max_body_bytes,
        server.max_images_per_request,
    )
    .await?;
    let params = query.merge(body.params)?;
    Ok(PredictRequest {
        model: model.to_owned(),
        images: body.images,
        top_k: params.top_k.unwrap_or(DEFAULT_TOP_K),
        // A client may shorten the server's deadline, never extend it.
        timeout: params
            .timeout
            .map(|timeout| timeout.min(server.request_timeout())),
    })
}

/// 200 with the predictions and the timings, in the body and as headers.
fn success(output: PredictOutput) -> Response {
    let random_weights = output.random_weights;
    let body = PredictResponse::from(output);
    let headers = timing_headers(body.timing, random_weights);
    (headers, Json(body)).into_response()
}

/// The `x-*-time-ms` headers, and `x-random-weights` when it applies.
pub(super) fn timing_headers(timing: TimingMs, random_weights: bool) -> HeaderMap {
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
pub(super) struct RequestCounter<'a> {
    metrics: &'a Metrics,
    label: &'static str,
    counted: bool,
}

impl<'a> RequestCounter<'a> {
    pub(super) fn new(metrics: &'a Metrics, label: &'static str) -> Self {
        Self {
            metrics,
            label,
            counted: false,
        }
    }

    /// The answer to a request refused while its headers or body were read:
    /// counted as a rejection here, since it never reached the facade (which
    /// counts its own), and the connection closed, since the body may be
    /// partly unread.
    pub(super) fn refused(&self, error: RequestError) -> Response {
        self.metrics.reject(self.label, request_rejection(&error));
        close_connection(ApiError::from(error).into_response())
    }

    pub(super) fn finish(&mut self, status: StatusCode) {
        self.metrics.count_request(self.label, status.as_u16());
        self.counted = true;
    }
}

impl Drop for RequestCounter<'_> {
    fn drop(&mut self) {
        if !self.counted {
            self.metrics
                .count_request(self.label, CLIENT_CLOSED_REQUEST);
        }
    }
}
