//! `POST /v1/models/{model}:predict` and `:embed`: parse, hand to the
//! facade, answer. Both actions take the same bodies (raw, multipart, JSON)
//! and differ only in their parameters and in what they answer.
//!
//! The order of checks is chosen so the cheapest refusal comes first: the
//! model is resolved before the body is read (an unknown model costs no
//! upload buffering), the content type and parameters before the body, and
//! the body before any decode.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::body::read_body;
use super::dto::{EmbedResponse, PredictResponse};
use super::params::{body_kind, parse_query, Params, DEFAULT_TOP_K};
use crate::http::error::{ApiError, RequestError};
use crate::http::extract::{
    client_key, parse_timeout_header, V1Action, V1ActionModel, TIMEOUT_HEADER,
};
use crate::http::respond::{timing_headers, RequestCounter, UNKNOWN_MODEL_LABEL};
use crate::http::AppState;
use crate::infer::{EmbedOutput, EmbedRequest, PredictOutput, PredictRequest};
use crate::metrics::Task;

pub async fn post_action(
    State(state): State<AppState>,
    model: Result<V1ActionModel, ApiError>,
    request: Request,
) -> Result<Response, ApiError> {
    let metrics = state.service.metrics();
    let (label, action) = match model {
        Ok(V1ActionModel(model, action)) => (model.name(), action),
        Err(error) => {
            // Refused before the body is read: an unknown model costs no
            // upload, and is counted under one fixed label.
            if error.error_type() == "model_not_found" {
                let task = match request.uri().path().ends_with(":embed") {
                    true => Task::Embed,
                    false => Task::Predict,
                };
                metrics.count_request(UNKNOWN_MODEL_LABEL, task, error.status().as_u16());
            }
            return Err(error);
        }
    };
    let mut counter = RequestCounter::new(metrics, label, action.task());
    let response = match prepare(&state, label, action, request).await {
        Ok(call) => answer(&state, call).await,
        Err(error) => counter.refused(error),
    };
    counter.finish(response.status());
    Ok(response)
}

/// What either action reads from a request before the facade sees it.
struct V1Call {
    action: V1Action,
    model: String,
    images: Vec<Bytes>,
    params: Params,
    client: Option<String>,
}

/// Everything about the request except the model's own checks (top-k range,
/// image count against the service limit, readiness), which the facade does.
async fn prepare(
    state: &AppState,
    model: &str,
    action: V1Action,
    request: Request,
) -> Result<V1Call, RequestError> {
    let headers = request.headers();
    let kind = body_kind(headers.get(axum::http::header::CONTENT_TYPE))?;
    let query = Params {
        timeout: parse_timeout_header(headers.get(TIMEOUT_HEADER))?,
        ..parse_query(request.uri())?
    }
    .check_for(action)?;
    let server = &state.server;
    let client = client_key(headers, &server.client_id_header);
    let body = read_body(
        request,
        kind,
        server.max_body_bytes,
        server.max_images_per_request,
    )
    .await?;
    let mut params = query.merge(body.params)?.check_for(action)?;
    // A client may shorten the server's deadline, never extend it.
    params.timeout = params
        .timeout
        .map(|timeout| timeout.min(server.request_timeout()));
    Ok(V1Call {
        action,
        model: model.to_owned(),
        images: body.images,
        params,
        client,
    })
}

/// The facade's answer to `call`, as the action's response.
async fn answer(state: &AppState, call: V1Call) -> Response {
    let V1Call {
        action,
        model,
        images,
        params,
        client,
    } = call;
    let result = match action {
        V1Action::Predict => {
            let request = PredictRequest {
                client,
                model,
                images,
                top_k: params.top_k.unwrap_or(DEFAULT_TOP_K),
                timeout: params.timeout,
            };
            state.service.predict(request).await.map(predicted)
        }
        V1Action::Embed => {
            let request = EmbedRequest {
                client,
                model,
                images,
                normalize: params.normalize.unwrap_or(true),
                timeout: params.timeout,
            };
            state.service.embed(request).await.map(embedded)
        }
    };
    result.unwrap_or_else(|error| ApiError::from(error).into_response())
}

/// 200 with the predictions and the timings, in the body and as headers.
fn predicted(output: PredictOutput) -> Response {
    let random_weights = output.random_weights;
    let body = PredictResponse::from(output);
    let headers = timing_headers(body.timing, random_weights);
    (headers, Json(body)).into_response()
}

/// 200 with the embeddings and the timings, in the body and as headers.
fn embedded(output: EmbedOutput) -> Response {
    let random_weights = output.random_weights;
    let body = EmbedResponse::from(output);
    let headers = timing_headers(body.timing, random_weights);
    (headers, Json(body)).into_response()
}
