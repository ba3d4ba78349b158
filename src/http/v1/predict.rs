//! `POST /v1/models/{model}:predict`: parse, hand to the facade, answer.
//!
//! The order of checks is chosen so the cheapest refusal comes first: the
//! model is resolved before the body is read (an unknown model costs no
//! upload buffering), the content type and parameters before the body, and
//! the body before any decode.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::body::read_body;
use super::dto::PredictResponse;
use super::params::{body_kind, parse_query, Params, DEFAULT_TOP_K};
use crate::http::error::{ApiError, RequestError};
use crate::http::extract::{client_key, parse_timeout_header, V1PredictModel, TIMEOUT_HEADER};
use crate::http::respond::{timing_headers, RequestCounter, UNKNOWN_MODEL_LABEL};
use crate::http::AppState;
use crate::infer::{PredictOutput, PredictRequest};

pub async fn predict(
    State(state): State<AppState>,
    model: Result<V1PredictModel, ApiError>,
    request: Request,
) -> Result<Response, ApiError> {
    let metrics = state.service.metrics();
    let label = match model {
        Ok(V1PredictModel(model)) => model.name(),
        Err(error) => {
            // Refused before the body is read: an unknown model costs no
            // upload, and is counted under one fixed label.
            if error.error_type() == "model_not_found" {
                metrics.count_request(UNKNOWN_MODEL_LABEL, error.status().as_u16());
            }
            return Err(error);
        }
    };
    let mut counter = RequestCounter::new(metrics, label);
    let response = match prepare(&state, label, request).await {
        Ok(predict) => match state.service.predict(predict).await {
            Ok(output) => success(output),
            Err(error) => ApiError::from(error).into_response(),
        },
        Err(error) => counter.refused(error),
    };
    counter.finish(response.status());
    Ok(response)
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
    let client = client_key(headers, &server.client_id_header);
    let body = read_body(
        request,
        kind,
        server.max_body_bytes,
        server.max_images_per_request,
    )
    .await?;
    let params = query.merge(body.params)?;
    Ok(PredictRequest {
        client,
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
