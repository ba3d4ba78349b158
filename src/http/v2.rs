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
//!   `"<probability>:<class id>:<label>"` out; JSON or binary tensor data
//!   both ways.
//!
//! `/v2/health/{live,ready}` are in `health`. Errors have the same
//! `{"error", "error_type"}` body and statuses as V1 (the protocol's error
//! body is `{"error"}`), and successes carry the same `x-*-time-ms` headers.

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::body::buffer;
use super::dto::TimingMs;
use super::error::{close_connection, ApiError};
use super::models::model_segment;
use super::parse::{parse_timeout_header, RequestError, TIMEOUT_HEADER};
use super::predict::{timing_headers, RequestCounter, UNKNOWN_MODEL_LABEL};
use super::v2_binary::{encode_bytes_elements, encode_f32s, split_body, HEADER_LENGTH};
use super::v2_request::{
    parse_infer, InferCall, ModelShape, OutputSpec, IMAGE_BYTES_INPUT, NORMALIZED_INPUT,
    PROBABILITIES_OUTPUT,
};
use super::AppState;
use crate::infer::{top_k, ClassifyOutput, ClassifyRequest, InferError, ModelHandle};

/// The protocol extensions this server implements.
pub const EXTENSIONS: &[&str] = &["classification", "binary_tensor_data"];

/// JSON headers larger than this are parsed on the blocking pool: JSON
/// `FP32` data runs to megabytes (about 1.5 MB an image), which would hold
/// the async reactor for milliseconds; small headers are cheaper inline.
const INLINE_PARSE_LIMIT: usize = 64 * 1024;

/// Models have no versions here; the protocol wants one to report.
const MODEL_VERSION: &str = "1";

/// `GET /v2`.
#[derive(Debug, Serialize)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    pub extensions: &'static [&'static str],
}

/// `GET /v2/models/{model}`.
#[derive(Debug, Serialize)]
pub struct ModelMetadataV2 {
    pub name: &'static str,
    pub versions: [&'static str; 1],
    pub platform: &'static str,
    /// Alternatives: a request sends exactly one of them.
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// One tensor: `-1` marks the batch dimension.
#[derive(Debug, Serialize)]
pub struct TensorMetadata {
    pub name: &'static str,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{model}/ready`; on a 503 with the usual error fields.
#[derive(Debug, Serialize)]
pub struct ModelReadyV2 {
    pub name: &'static str,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
}

/// The JSON part of an inference response.
#[derive(Debug, Serialize)]
struct InferResponse {
    model_name: &'static str,
    model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<OutputTensor>,
}

#[derive(Debug, Serialize)]
struct OutputTensor {
    name: &'static str,
    datatype: &'static str,
    shape: [usize; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<OutputData>,
}

/// Where a binary output's bytes are: its size, in output order.
#[derive(Debug, Serialize)]
struct BinaryParameters {
    binary_data_size: usize,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum OutputData {
    Numbers(Vec<f32>),
    Strings(Vec<String>),
}

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
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    match served_model(&state, path) {
        Ok(model) => Json(tensor_metadata(model)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn tensor_metadata(model: &ModelHandle) -> ModelMetadataV2 {
    let cfg = model.id.pretrained_cfg();
    let side = i64::from(cfg.input_size);
    let classes = i64::try_from(cfg.num_classes).unwrap_or(i64::MAX);
    let tensor = |name, datatype, shape: &[i64]| TensorMetadata {
        name,
        datatype,
        shape: shape.to_vec(),
    };
    ModelMetadataV2 {
        name: model.id.name(),
        versions: [MODEL_VERSION],
        platform: "pytorch_libtorch",
        inputs: vec![
            tensor(IMAGE_BYTES_INPUT, "BYTES", &[-1]),
            tensor(NORMALIZED_INPUT, "FP32", &[-1, 3, side, side]),
        ],
        outputs: vec![tensor(PROBABILITIES_OUTPUT, "FP32", &[-1, classes])],
    }
}

/// `GET /v2/models/{model}/ready`: 200 when loaded, warm and not draining;
/// 503 (with `Retry-After`) otherwise, saying why; 404 if not served.
pub async fn model_ready(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let model = match served_model(&state, path) {
        Ok(model) => model,
        Err(error) => return error.into_response(),
    };
    let name = model.id.name();
    let (error, error_type) = if state.service.is_draining() {
        ("server is shutting down", "shutting_down")
    } else if model.state.failure().is_some() {
        (
            "the model failed to start; see the server log",
            "model_load_failed",
        )
    } else if !model.state.is_ready() {
        ("the model is still loading", "model_not_ready")
    } else {
        let body = ModelReadyV2 {
            name,
            ready: true,
            error: None,
            error_type: None,
        };
        return Json(body).into_response();
    };
    let body = ModelReadyV2 {
        name,
        ready: false,
        error: Some(error),
        error_type: Some(error_type),
    };
    super::health::retry_soon(body)
}

fn served_model(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<&ModelHandle, ApiError> {
    let segment = model_segment(path)?;
    Ok(state.service.model(&segment)?)
}

/// `POST /v2/models/{model}/infer`. The model is resolved before the body is
/// read, so an unknown model costs no upload; counted and limited like V1.
pub async fn infer(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let metrics = state.service.metrics();
    let model = match served_model(&state, path) {
        Ok(model) => model,
        Err(error) => {
            let response = close_connection(error.into_response());
            metrics.count_request(UNKNOWN_MODEL_LABEL, response.status().as_u16());
            return response;
        }
    };
    let label = model.id.name();
    let mut counter = RequestCounter::new(metrics, label);
    let cfg = model.id.pretrained_cfg();
    let shape = ModelShape {
        input_size: cfg.input_size,
        num_classes: cfg.num_classes,
    };
    let response = match read_call(&state, shape, request).await {
        Ok(call) => {
            let classify = ClassifyRequest {
                model: label.to_owned(),
                images: call.images,
                timeout: call.timeout,
            };
            match state.service.classify(classify).await {
                Ok(output) => respond(output, call.id, &call.outputs),
                Err(error) => ApiError::from(error).into_response(),
            }
        }
        Err(error) => counter.refused(error),
    };
    counter.finish(response.status());
    response
}

/// Headers, body and framing → an [`InferCall`] whose deadline is the
/// tightest of the header's, the request's and the server's.
async fn read_call(
    state: &AppState,
    shape: ModelShape,
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
    let body = buffer(request, server.max_body_bytes).await?;
    if body.is_empty() {
        return Err(RequestError::EmptyBody);
    }
    let framed = split_body(body, header_length.as_ref())?;
    let mut call = if framed.json.len() > INLINE_PARSE_LIMIT {
        // A blocking task cannot be cancelled, so it only fails by panicking:
        // that panic goes on here, as it would have inline.
        tokio::task::spawn_blocking(move || parse_infer(framed, shape))
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?
    } else {
        parse_infer(framed, shape)?
    };
    call.timeout = [call.timeout, header_timeout, Some(server.request_timeout())]
        .into_iter()
        .flatten()
        .min();
    Ok(call)
}

/// 200 with the requested outputs: all JSON (`application/json`), or a JSON
/// header followed by the binary outputs (`application/octet-stream` and
/// `Inference-Header-Content-Length`).
fn respond(output: ClassifyOutput, id: Option<String>, outputs: &[OutputSpec]) -> Response {
    let mut headers = timing_headers(TimingMs::from(output.timing), output.random_weights);
    let mut binary = Vec::new();
    let tensors = outputs
        .iter()
        .map(|spec| output_tensor(&output, *spec, &mut binary))
        .collect();
    let body = InferResponse {
        model_name: output.model.name(),
        model_version: MODEL_VERSION,
        id,
        outputs: tensors,
    };
    if !outputs.iter().any(|spec| spec.binary) {
        return (headers, Json(body)).into_response();
    }
    let mut framed = match serde_json::to_vec(&body) {
        Ok(json) => json,
        Err(error) => {
            return ApiError::from(InferError::Internal(format!("V2 response header: {error}")))
                .into_response()
        }
    };
    headers.insert(HEADER_LENGTH, HeaderValue::from(framed.len()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    framed.extend(binary);
    (headers, Body::from(Bytes::from(framed))).into_response()
}

/// One output as `spec` asks: its data in JSON, or appended to `binary`
/// with its size in the JSON.
fn output_tensor(output: &ClassifyOutput, spec: OutputSpec, binary: &mut Vec<u8>) -> OutputTensor {
    let count = output.probabilities.len();
    let classes = output.model.pretrained_cfg().num_classes;
    let (datatype, shape, classes_text) = match spec.classification {
        None => ("FP32", [count, classes], None),
        Some(k) => ("BYTES", [count, k], Some(classification(output, k))),
    };
    let (parameters, data) = if spec.binary {
        let bytes = match &classes_text {
            None => encode_f32s(output.probabilities.iter().map(Vec::as_slice)),
            Some(texts) => encode_bytes_elements(texts.iter().map(String::as_bytes)),
        };
        let binary_data_size = bytes.len();
        binary.extend(bytes);
        (Some(BinaryParameters { binary_data_size }), None)
    } else {
        let data = match classes_text {
            None => OutputData::Numbers(output.probabilities.concat()),
            Some(texts) => OutputData::Strings(texts),
        };
        (None, Some(data))
    };
    OutputTensor {
        name: PROBABILITIES_OUTPUT,
        datatype,
        shape,
        parameters,
        data,
    }
}

/// The classification extension's strings, Triton's format, per image.
fn classification(output: &ClassifyOutput, k: usize) -> Vec<String> {
    output
        .probabilities
        .iter()
        .flat_map(|probabilities| top_k(probabilities, k))
        .map(|class| format!("{}:{}:{}", class.probability, class.class_id, class.label))
        .collect()
}
