//! The Open Inference Protocol (KServe V2) beside the V1 API, as Triton
//! serves it, so `tritonclient` and KServe clients work unchanged:
//!
//! - `GET /v2`: server metadata, with the extensions we implement
//!   ([`EXTENSIONS`]);
//! - `GET /v2/models/{model}`: the inputs and outputs, by name, datatype and
//!   shape;
//! - `GET /v2/models/{model}/ready`: 200 when ready, 503 otherwise;
//! - `POST /v2/models/{model}/infer`: encoded images (`BYTES`) or
//!   client-normalized ones (`FP32`) in, probabilities (`FP32 [N, C]`) or,
//!   with the classification extension, `BYTES [N, K]` strings
//!   `"<probability>:<class id>:<label>"` out, and on request the pooled
//!   features (`features`, `FP32 [N, 2048]`) beside or instead of them;
//!   JSON or binary tensor data both ways.
//!
//! `/v2/health/{live,ready}` are in `health`. Errors have the same
//! `{"error", "error_type"}` body and statuses as V1 (the protocol's error
//! body is `{"error"}`), and successes carry the same `x-*-time-ms` headers.

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

use self::binary::{split_body, HEADER_LENGTH};
use self::dto::{ModelMetadataV2, ModelReadyV2, ServerMetadata, TensorMetadata};
use self::request::{
    parse_infer, InferCall, ModelShape, Target, FEATURES_OUTPUT, IMAGE_BYTES_INPUT,
    NORMALIZED_INPUT, PROBABILITIES_OUTPUT,
};
use super::error::{ApiError, RequestError};
use super::extract::{buffer, client_key, parse_timeout_header, ServedModel, TIMEOUT_HEADER};
use super::respond::{retry_soon, RequestCounter, UNKNOWN_MODEL_LABEL};
use super::AppState;
use crate::config::EngineKind;
use crate::infer::{ClassifyRequest, ModelInfo, Readiness};
use crate::metrics::Task;
use crate::model::FEATURE_DIM;

pub(crate) mod binary;
pub(crate) mod data;
pub(crate) mod dto;
pub(crate) mod encode;
pub(crate) mod request;

/// The protocol extensions this server implements.
pub const EXTENSIONS: &[&str] = &["classification", "binary_tensor_data"];

/// JSON headers larger than this are parsed on the blocking pool: JSON
/// `FP32` data runs to megabytes (about 1.5 MB an image), which would hold
/// the async reactor for milliseconds; small headers are cheaper inline.
const INLINE_PARSE_LIMIT: usize = 64 * 1024;

/// Models have no versions here; the protocol wants one to report, and a
/// request body may name it.
pub(crate) const MODEL_VERSION: &str = "1";

/// `GET /v2`.
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        extensions: EXTENSIONS,
    })
}

/// `GET /v2/models/{model}`: 200 whether or not the model is ready (its
/// tensors do not change), 404 if it is not served.
pub async fn model_metadata(
    model: Result<ServedModel, ApiError>,
) -> Result<Json<ModelMetadataV2>, ApiError> {
    let ServedModel(model) = model?;
    Ok(Json(tensor_metadata(&model)))
}

pub(crate) fn tensor_metadata(model: &ModelInfo) -> ModelMetadataV2 {
    let cfg = model.pretrained_cfg();
    let side = i64::from(cfg.input_size);
    let classes = i64::try_from(cfg.num_classes).unwrap_or(i64::MAX);
    let tensor = |name, datatype, shape: &[i64]| TensorMetadata {
        name,
        datatype,
        shape: shape.to_vec(),
    };
    ModelMetadataV2 {
        name: model.name(),
        versions: [MODEL_VERSION],
        // Triton's platform names for the two runtimes.
        platform: match model.engine {
            EngineKind::Libtorch => "pytorch_libtorch",
            EngineKind::Onnxruntime => "onnxruntime_onnx",
        },
        inputs: vec![
            tensor(IMAGE_BYTES_INPUT, "BYTES", &[-1]),
            tensor(NORMALIZED_INPUT, "FP32", &[-1, 3, side, side]),
        ],
        outputs: vec![
            tensor(PROBABILITIES_OUTPUT, "FP32", &[-1, classes]),
            tensor(FEATURES_OUTPUT, "FP32", &[-1, FEATURE_DIM as i64]),
        ],
    }
}

/// What a request to `model` is checked against.
pub(crate) fn target(model: &ModelInfo) -> Target {
    let cfg = model.pretrained_cfg();
    Target {
        model: model.model,
        version: MODEL_VERSION,
        shape: ModelShape {
            input_size: cfg.input_size,
            num_classes: cfg.num_classes,
        },
    }
}

/// `GET /v2/models/{model}/ready`: 200 when loaded, warm and not draining;
/// 503 (with `Retry-After`) otherwise, saying why; 404 if not served.
pub async fn model_ready(model: Result<ServedModel, ApiError>) -> Result<Response, ApiError> {
    let ServedModel(model) = model?;
    let error = match model.readiness {
        Readiness::Ready => {
            let body = ModelReadyV2 {
                name: model.name(),
                ready: true,
                error: None,
                error_type: None,
            };
            return Ok(Json(body).into_response());
        }
        Readiness::Draining => "server is shutting down",
        Readiness::Failed => "the model failed to start; see the server log",
        Readiness::Loading => "the model is still loading",
    };
    Ok(retry_soon(ModelReadyV2 {
        name: model.name(),
        ready: false,
        error: Some(error),
        error_type: model.readiness.error_type(),
    }))
}

/// `POST /v2/models/{model}/infer`. The model is resolved before the body is
/// read, so an unknown model costs no upload; counted and limited like V1.
pub async fn infer(
    State(state): State<AppState>,
    model: Result<ServedModel, ApiError>,
    request: Request,
) -> Result<Response, ApiError> {
    let metrics = state.service.metrics();
    let model = match model {
        Ok(ServedModel(model)) => model,
        Err(error) => {
            metrics.count_request(UNKNOWN_MODEL_LABEL, Task::Predict, error.status().as_u16());
            return Err(error);
        }
    };
    let label = model.name();
    let mut counter = RequestCounter::new(metrics, label, Task::Predict);
    let response = match read_call(&state, target(&model), request).await {
        Ok(call) => {
            let features = call.wants_features();
            if features {
                counter.set_task(Task::Embed);
            }
            let classify = ClassifyRequest {
                client: call.client,
                model: label.to_owned(),
                images: call.images,
                timeout: call.timeout,
                features,
            };
            match state.service.classify(classify).await {
                Ok(output) => encode::respond(output, call.id, &call.outputs),
                Err(error) => ApiError::from(error).into_response(),
            }
        }
        Err(error) => counter.refused(error),
    };
    counter.finish(response.status());
    Ok(response)
}

/// Headers, body and framing → an [`InferCall`] whose deadline is the
/// tightest of the header's, the request's and the server's.
async fn read_call(
    state: &AppState,
    target: Target,
    request: Request,
) -> Result<InferCall, RequestError> {
    let headers = request.headers();
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("?").trim();
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(RequestError::UnsupportedContentEncoding(
                encoding.to_owned(),
            ));
        }
    }
    let header_timeout = parse_timeout_header(headers.get(TIMEOUT_HEADER))?;
    let header_length = headers.get(HEADER_LENGTH).cloned();
    let server = &state.server;
    let client = client_key(headers, &server.client_id_header);
    let body = buffer(request, server.max_body_bytes).await?;
    if body.is_empty() {
        return Err(RequestError::EmptyBody);
    }
    let framed = split_body(body, header_length.as_ref())?;
    let mut call = if framed.json.len() > INLINE_PARSE_LIMIT {
        // A blocking task cannot be cancelled, so it only fails by panicking:
        // that panic goes on here, as it would have inline.
        tokio::task::spawn_blocking(move || parse_infer(framed, target))
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?
    } else {
        parse_infer(framed, target)?
    };
    call.client = client;
    call.timeout = [call.timeout, header_timeout, Some(server.request_timeout())]
        .into_iter()
        .flatten()
        .min();
    Ok(call)
}
