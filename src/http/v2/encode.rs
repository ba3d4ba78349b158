//! A V2 inference answer on the wire: all JSON, or a JSON header followed by
//! binary outputs (the binary tensor data extension), and the
//! classification extension's strings.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::binary::{encode_bytes_elements, encode_f32s, HEADER_LENGTH};
use super::dto::{BinaryParameters, InferResponse, OutputData, OutputTensor};
use super::request::{OutputKind, OutputSpec};
use super::MODEL_VERSION;
use crate::http::error::ApiError;
use crate::http::respond::{timing_headers, TimingMs};
use crate::infer::{top_k, ClassifyOutput, InferError};
use crate::model::FEATURE_DIM;

/// 200 with the requested outputs: all JSON (`application/json`), or a JSON
/// header followed by the binary outputs (`application/octet-stream` and
/// `Inference-Header-Content-Length`).
pub(super) fn respond(
    output: ClassifyOutput,
    id: Option<String>,
    outputs: &[OutputSpec],
) -> Response {
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
    // The facade fills `features` whenever the request asked for them.
    let rows: &[Vec<f32>] = match spec.kind {
        OutputKind::Probabilities => &output.probabilities,
        OutputKind::Features => output.features.as_deref().unwrap_or_default(),
    };
    let width = match spec.kind {
        OutputKind::Probabilities => classes,
        OutputKind::Features => FEATURE_DIM,
    };
    let (datatype, shape, classes_text) = match spec.classification {
        None => ("FP32", [count, width], None),
        Some(k) => ("BYTES", [count, k], Some(classification(output, k))),
    };
    let (parameters, data) = if spec.binary {
        let bytes = match &classes_text {
            None => encode_f32s(rows.iter().map(Vec::as_slice)),
            Some(texts) => encode_bytes_elements(texts.iter().map(String::as_bytes)),
        };
        let binary_data_size = bytes.len();
        binary.extend(bytes);
        (Some(BinaryParameters { binary_data_size }), None)
    } else {
        let data = match classes_text {
            None => OutputData::Numbers(rows.concat()),
            Some(texts) => OutputData::Strings(texts),
        };
        (None, Some(data))
    };
    OutputTensor {
        name: spec.kind.name(),
        datatype,
        shape,
        parameters,
        data,
    }
}

/// The classification extension's strings, Triton's format, per image.
pub(crate) fn classification(output: &ClassifyOutput, k: usize) -> Vec<String> {
    output
        .probabilities
        .iter()
        .flat_map(|probabilities| top_k(probabilities, k, output.model))
        .map(|class| format!("{}:{}:{}", class.probability, class.class_id, class.label))
        .collect()
}
