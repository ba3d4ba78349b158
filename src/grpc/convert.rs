//! A `ModelInferRequest` to the V2 call the HTTP API parses, and the
//! facade's answer to a `ModelInferResponse`. The checks (shapes,
//! datatypes, outputs, classification, `model_name`/`model_version`) are
//! HTTP V2's own, in [`crate::http::v2::request`]; only where the data sits
//! differs: `raw_input_contents` (the binary layout of HTTP's binary data
//! extension) or the typed `contents`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::proto::infer_parameter::ParameterChoice;
use super::proto::model_infer_request::InferInputTensor;
use super::proto::model_infer_response::InferOutputTensor;
use super::proto::{InferParameter, ModelInferRequest, ModelInferResponse};
use crate::http::error::RequestError;
use crate::http::v2::binary::{encode_bytes_elements, encode_f32s};
use crate::http::v2::encode::classification;
use crate::http::v2::request::{
    check_model, one_input, request_params, requested_outputs, tensor_images, Data, InferCall,
    OutputKind, OutputSpec, Target, TensorInput,
};
use crate::http::v2::MODEL_VERSION;
use crate::infer::ClassifyOutput;
use crate::model::FEATURE_DIM;

/// The protocol's parameters as the JSON values HTTP V2 checks.
fn parameters(parameters: std::collections::HashMap<String, InferParameter>) -> Map<String, Value> {
    parameters
        .into_iter()
        .map(|(key, parameter)| {
            let value = match parameter.parameter_choice {
                Some(ParameterChoice::BoolParam(flag)) => Value::Bool(flag),
                Some(ParameterChoice::Int64Param(number)) => Value::from(number),
                Some(ParameterChoice::StringParam(text)) => Value::String(text),
                None => Value::Null,
            };
            (key, value)
        })
        .collect()
}

/// `request` for `target`, checked as HTTP V2 checks a body.
pub fn infer_call(request: ModelInferRequest, target: Target) -> Result<InferCall, RequestError> {
    let model_name = Some(request.model_name.as_str()).filter(|name| !name.is_empty());
    check_model(model_name, Some(&request.model_version), target)?;
    let (_, timeout) = request_params(parameters(request.parameters))?;
    let mut raw = request.raw_input_contents;
    let input = one_input(request.inputs, target.shape)?;
    let data = input_data(&input, &mut raw)?;
    let images = tensor_images(
        TensorInput {
            name: &input.name,
            datatype: &input.datatype,
            shape: &input.shape,
            data,
        },
        target.shape,
    )?;
    let outputs = (!request.outputs.is_empty()).then(|| {
        request
            .outputs
            .into_iter()
            .map(|output| (output.name, parameters(output.parameters)))
            .collect()
    });
    Ok(InferCall {
        id: Some(request.id).filter(|id| !id.is_empty()),
        images,
        outputs: requested_outputs(outputs, false, target.shape)?,
        timeout,
        client: None,
    })
}

/// The input's data: its `raw_input_contents` entry, or its typed contents
/// (the field its datatype names; the datatype itself is checked later).
fn input_data(input: &InferInputTensor, raw: &mut Vec<bytes::Bytes>) -> Result<Data, RequestError> {
    let name = &input.name;
    if !raw.is_empty() {
        if input.contents.is_some() {
            return Err(RequestError::InvalidTensor(format!(
                "input {name:?} has contents while raw_input_contents is set; send one"
            )));
        }
        if raw.len() != 1 {
            return Err(RequestError::InvalidTensor(format!(
                "raw_input_contents has {} entries for 1 input",
                raw.len()
            )));
        }
        return Ok(Data::Binary(raw.remove(0)));
    }
    let contents = input.contents.clone().ok_or_else(|| {
        RequestError::InvalidTensor(format!(
            "input {name:?} has no contents and there are no raw_input_contents"
        ))
    })?;
    Ok(match input.datatype.as_str() {
        "FP32" => Data::Floats(contents.fp32_contents),
        _ => Data::Elements(contents.bytes_contents),
    })
}

/// The answer with the outputs `outputs` asks for, each in
/// `raw_output_contents`, as Triton answers over gRPC.
pub fn infer_response(
    output: &ClassifyOutput,
    id: Option<String>,
    outputs: &[OutputSpec],
) -> ModelInferResponse {
    let count = output.probabilities.len();
    let mut tensors = Vec::with_capacity(outputs.len());
    let mut raw = Vec::with_capacity(outputs.len());
    for spec in outputs {
        let (rows, width) = match spec.kind {
            OutputKind::Probabilities => (
                output.probabilities.as_slice(),
                output.model.pretrained_cfg().num_classes,
            ),
            // The facade fills `features` whenever the request asked for them.
            OutputKind::Features => (output.features.as_deref().unwrap_or_default(), FEATURE_DIM),
        };
        let (datatype, width, bytes) = match spec.classification {
            None => ("FP32", width, encode_f32s(rows.iter().map(Vec::as_slice))),
            Some(k) => {
                let texts = classification(output, k);
                (
                    "BYTES",
                    k,
                    encode_bytes_elements(texts.iter().map(String::as_bytes)),
                )
            }
        };
        tensors.push(InferOutputTensor {
            name: spec.kind.name().to_owned(),
            datatype: datatype.to_owned(),
            shape: vec![dim(count), dim(width)],
            ..InferOutputTensor::default()
        });
        raw.push(bytes.into());
    }
    ModelInferResponse {
        model_name: output.model.name().to_owned(),
        model_version: MODEL_VERSION.to_owned(),
        id: id.unwrap_or_default(),
        outputs: tensors,
        raw_output_contents: raw,
        ..ModelInferResponse::default()
    }
}

fn dim(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The `grpc-timeout` header (gRPC's deadline): up to 8 digits and a unit,
/// `H`, `M`, `S`, `m` (ms), `u` (µs) or `n` (ns).
pub fn grpc_timeout(value: Option<&str>) -> Result<Option<Duration>, RequestError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || RequestError::InvalidTimeout(format!("grpc-timeout {value:?}"));
    let (digits, unit) = value.split_at(value.len().saturating_sub(1));
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let duration = match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    };
    // A zero deadline has already passed; the facade wants at least 1 µs.
    Ok(Some(duration.max(Duration::from_micros(1))))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
