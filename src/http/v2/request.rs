//! A KServe V2 inference request, from body bytes to an [`InferCall`]: the
//! JSON header, the tensor data (in JSON or in the binary sections after
//! it), and the outputs asked for. Pure functions, unit-tested without a
//! server; what goes wrong is a [`RequestError`].
//!
//! The body may name its model (`model_name`, `model_version`), as KServe's
//! own SDK does; the names must agree with the path's [`Target`].
//!
//! One input per request, either of:
//! - [`IMAGE_BYTES_INPUT`], `BYTES` `[N]` (or `[N, 1]`): N encoded images.
//!   In binary data each element is the raw file; in JSON `data` each is the
//!   file base64-encoded, since JSON strings cannot carry raw image bytes.
//! - [`NORMALIZED_INPUT`], `FP32` `[N, 3, S, S]`: images the client already
//!   resized, cropped and normalized like timm, CHW, row-major.

use std::time::Duration;

use axum::body::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::binary::{decode_bytes_elements, decode_f32s, BinarySections, FramedBody};
use super::data::TensorData;
use crate::http::encoding::decode_base64;
use crate::http::error::RequestError;
use crate::infer::RequestImages;
use crate::model::ModelId;

/// The input carrying encoded images.
pub const IMAGE_BYTES_INPUT: &str = "image_bytes";
/// The input carrying client-normalized images.
pub const NORMALIZED_INPUT: &str = "input";
/// The class probabilities, or top-k strings with `classification`; the
/// output a request gets when it names none.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";
/// The pooled pre-logits features, FP32 `[N, 2048]`, not normalized: what
/// `:embed?normalize=false` answers.
pub const FEATURES_OUTPUT: &str = "features";

/// What the model's shape lets a request send.
#[derive(Debug, Clone, Copy)]
pub struct ModelShape {
    /// Side of the square network input.
    pub input_size: u32,
    pub num_classes: usize,
}

/// The model the path names: what a body's `model_name` and
/// `model_version` must agree with, and the shape its tensors must have.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// A body `model_name` must name this model, by its id or an alias.
    pub model: ModelId,
    /// The one version the model metadata reports; a body `model_version`
    /// must be it.
    pub version: &'static str,
    pub shape: ModelShape,
}

/// The model's outputs, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// [`PROBABILITIES_OUTPUT`].
    Probabilities,
    /// [`FEATURES_OUTPUT`].
    Features,
}

impl OutputKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Probabilities => PROBABILITIES_OUTPUT,
            Self::Features => FEATURES_OUTPUT,
        }
    }
}

/// One output as the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// `Some(k)`: the classification extension's top-k strings instead of
    /// the probabilities (never set for the features).
    pub classification: Option<usize>,
    /// Sent in the binary section rather than as JSON `data`.
    pub binary: bool,
}

/// A parsed inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct InferCall {
    /// Echoed in the response, as the protocol asks.
    pub id: Option<String>,
    pub images: RequestImages,
    /// In the order the response lists them.
    pub outputs: Vec<OutputSpec>,
    /// Triton's `parameters.timeout`, in microseconds on the wire.
    pub timeout: Option<Duration>,
    /// From the client-id header, set by the handler (not in the body).
    pub client: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    #[serde(default)]
    id: Option<String>,
    /// KServe's SDK (`InferRequest.to_rest`) sends the path's model here.
    #[serde(default)]
    model_name: Option<String>,
    /// The field beside `model_name` in KServe's request types (and in the
    /// protocol's gRPC `ModelInferRequest`, where empty means "any").
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<TensorData>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

fn tensor_error(message: impl Into<String>) -> RequestError {
    RequestError::InvalidTensor(message.into())
}

/// Parses a framed body (see [`super::binary::split_body`]) for `target`.
pub fn parse_infer(body: FramedBody, target: Target) -> Result<InferCall, RequestError> {
    let request: RequestJson =
        serde_json::from_slice(&body.json).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    check_model(
        request.model_name.as_deref(),
        request.model_version.as_deref(),
        target,
    )?;
    let (binary_output, timeout) = request_params(request.parameters.unwrap_or_default())?;
    let mut sections = BinarySections::new(body.binary);
    let input = one_input(request.inputs, target.shape)?;
    let data = input_data(
        &input.name,
        input.parameters.unwrap_or_default(),
        input.data,
        &mut sections,
    )?;
    let images = tensor_images(
        TensorInput {
            name: &input.name,
            datatype: &input.datatype,
            shape: &input.shape,
            data,
        },
        target.shape,
    )?;
    sections.finish()?;
    let outputs = request.outputs.map(|outputs| {
        outputs
            .into_iter()
            .map(|output| (output.name, output.parameters.unwrap_or_default()))
            .collect()
    });
    Ok(InferCall {
        id: request.id,
        images,
        outputs: requested_outputs(outputs, binary_output, target.shape)?,
        timeout,
        client: None,
    })
}

/// The one input a request may have, of the many it sent.
pub fn one_input<T>(inputs: Vec<T>, shape: ModelShape) -> Result<T, RequestError> {
    match <[T; 1]>::try_from(inputs) {
        Ok([input]) => Ok(input),
        Err(inputs) => Err(tensor_error(format!(
            "expected exactly one input ({IMAGE_BYTES_INPUT}: BYTES [N], or \
             {NORMALIZED_INPUT}: FP32 [N,3,{0},{0}]), got {1}",
            shape.input_size,
            inputs.len()
        ))),
    }
}

/// The outputs asked for, [`PROBABILITIES_OUTPUT`] alone when none is named.
pub fn requested_outputs(
    outputs: Option<Vec<(String, Map<String, Value>)>>,
    binary_output: bool,
    shape: ModelShape,
) -> Result<Vec<OutputSpec>, RequestError> {
    match outputs {
        None => Ok(vec![OutputSpec {
            kind: OutputKind::Probabilities,
            classification: None,
            binary: binary_output,
        }]),
        Some(outputs) => parse_outputs(outputs, binary_output, shape),
    }
}

/// The body's `model_name` and `model_version`, where given, must agree
/// with the path: a request meant for another model or version must not be
/// answered by this one. An alias of the path's model agrees, and so does
/// an empty version (the protocol's "whichever the server serves").
pub fn check_model(
    name: Option<&str>,
    version: Option<&str>,
    target: Target,
) -> Result<(), RequestError> {
    if let Some(name) = name {
        if !target.model.answers_to(name) {
            return Err(RequestError::InvalidParameter(format!(
                "model_name {name:?} in the body does not match the model in the path, {:?}",
                target.model.name()
            )));
        }
    }
    match version {
        Some(version) if !version.is_empty() && version != target.version => {
            Err(RequestError::InvalidParameter(format!(
                "model_version {version:?} in the body does not match the version served, {:?} \
                 (model {:?})",
                target.version,
                target.model.name()
            )))
        }
        _ => Ok(()),
    }
}

/// `binary_data_output` and `timeout` (µs). Anything else is refused, so a
/// client relying on a feature we lack (sequences, priorities) learns it.
pub fn request_params(
    params: Map<String, Value>,
) -> Result<(bool, Option<Duration>), RequestError> {
    let mut binary_output = false;
    let mut timeout = None;
    for (key, value) in params {
        match key.as_str() {
            "binary_data_output" => binary_output = bool_param(&key, &value)?,
            "timeout" => {
                let micros = value.as_u64().filter(|&us| us >= 1).ok_or_else(|| {
                    RequestError::InvalidTimeout(format!("{value} (microseconds)"))
                })?;
                timeout = Some(Duration::from_micros(micros));
            }
            other => {
                return Err(RequestError::InvalidParameter(format!(
                    "unknown request parameter {other:?}; known: binary_data_output, timeout"
                )))
            }
        }
    }
    Ok((binary_output, timeout))
}

pub fn bool_param(key: &str, value: &Value) -> Result<bool, RequestError> {
    value.as_bool().ok_or_else(|| {
        RequestError::InvalidParameter(format!("{key} must be true or false, got {value}"))
    })
}

/// An input tensor as any transport carries it, its data already found.
#[derive(Debug)]
pub struct TensorInput<'a> {
    pub name: &'a str,
    pub datatype: &'a str,
    pub shape: &'a [i64],
    pub data: Data,
}

/// Where an input's elements are: the transports differ only here.
#[derive(Debug)]
pub enum Data {
    /// Raw little-endian elements (a `BYTES` element is a 4-byte length,
    /// then its bytes): HTTP binary data, gRPC `raw_input_contents`.
    Binary(Bytes),
    /// HTTP JSON `data` (a `BYTES` element is base64 there).
    Json(TensorData),
    /// gRPC typed `contents.bytes_contents`: each element raw.
    Elements(Vec<Bytes>),
    /// gRPC typed `contents.fp32_contents`.
    Floats(Vec<f32>),
}

/// An HTTP input's data: JSON `data`, or the next binary section when
/// `parameters.binary_data_size` claims one.
fn input_data(
    name: &str,
    parameters: Map<String, Value>,
    data: Option<TensorData>,
    sections: &mut BinarySections,
) -> Result<Data, RequestError> {
    match (binary_data_size(name, parameters)?, data) {
        (Some(size), None) => Ok(Data::Binary(sections.take(size, name)?)),
        (None, Some(data)) => Ok(Data::Json(data)),
        (Some(_), Some(_)) => Err(tensor_error(format!(
            "input {name:?} has both data and parameters.binary_data_size; send one"
        ))),
        (None, None) => Err(tensor_error(format!(
            "input {name:?} has no data and no parameters.binary_data_size"
        ))),
    }
}

/// The request's one input as images, with its shape, datatype and data
/// checked: the same checks whatever the transport.
pub fn tensor_images(input: TensorInput, shape: ModelShape) -> Result<RequestImages, RequestError> {
    let name = input.name;
    let (expected_type, per_image) = match name {
        IMAGE_BYTES_INPUT => ("BYTES", 1),
        NORMALIZED_INPUT => {
            let side = shape.input_size as usize;
            ("FP32", 3 * side * side)
        }
        other => {
            return Err(tensor_error(format!(
                "unknown input {other:?}; the inputs are {IMAGE_BYTES_INPUT} and {NORMALIZED_INPUT}"
            )))
        }
    };
    if input.datatype != expected_type {
        return Err(tensor_error(format!(
            "input {name:?} must be {expected_type}, got {}",
            input.datatype
        )));
    }
    let count = batch_size(name, input.shape, shape.input_size)?;
    // Checked: the shape is the client's; only the data's length is real.
    let expected_elements = count.checked_mul(per_image).ok_or_else(|| {
        tensor_error(format!(
            "input {name:?}: shape {:?} is too large",
            input.shape
        ))
    })?;
    let data = input.data;
    if name == IMAGE_BYTES_INPUT {
        let images = match data {
            Data::Binary(bytes) => decode_bytes_elements(&bytes)?,
            Data::Elements(elements) => elements,
            Data::Json(TensorData::Strings(texts)) => texts
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    decode_base64(text).map_err(|reason| {
                        tensor_error(format!(
                            "{name}[{index}]: invalid base64 ({reason}); in JSON each element is \
                             a base64 image, raw bytes go in binary data"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Data::Json(TensorData::Empty) => Vec::new(),
            Data::Json(TensorData::Numbers(_)) | Data::Floats(_) => {
                return Err(tensor_error(format!(
                    "input {name:?}: BYTES data must be strings"
                )))
            }
        };
        check_elements(name, images.len(), expected_elements)?;
        return Ok(RequestImages::Encoded(images));
    }
    let values = match data {
        Data::Binary(bytes) => decode_f32s(&bytes)?,
        Data::Json(TensorData::Numbers(values)) | Data::Floats(values) => values,
        Data::Json(TensorData::Empty) => Vec::new(),
        Data::Json(TensorData::Strings(_)) | Data::Elements(_) => {
            return Err(tensor_error(format!(
                "input {name:?}: FP32 data must be numbers"
            )))
        }
    };
    check_elements(name, values.len(), expected_elements)?;
    Ok(RequestImages::Normalized(
        values
            .chunks_exact(per_image)
            .map(<[f32]>::to_vec)
            .collect(),
    ))
}

/// N from `[N]`/`[N, 1]` (`BYTES`) or `[N, 3, S, S]` (`FP32`).
fn batch_size(name: &str, dims: &[i64], input_size: u32) -> Result<usize, RequestError> {
    let side = i64::from(input_size);
    let (expected, shape_ok) = if name == IMAGE_BYTES_INPUT {
        ("[N] or [N,1]".to_owned(), matches!(dims, [_] | [_, 1]))
    } else {
        (
            format!("[N,3,{side},{side}]"),
            matches!(dims, [_, 3, h, w] if *h == side && *w == side),
        )
    };
    let count = dims.first().and_then(|&n| usize::try_from(n).ok());
    match count {
        Some(count) if shape_ok => Ok(count),
        _ => Err(tensor_error(format!(
            "input {name:?} must have shape {expected}, got {dims:?}"
        ))),
    }
}

fn check_elements(name: &str, actual: usize, expected: usize) -> Result<(), RequestError> {
    if actual == expected {
        Ok(())
    } else {
        Err(tensor_error(format!(
            "input {name:?}: its shape calls for {expected} elements but its data has {actual}"
        )))
    }
}

/// `parameters.binary_data_size`, the only input parameter we know.
fn binary_data_size(name: &str, params: Map<String, Value>) -> Result<Option<usize>, RequestError> {
    let mut size = None;
    for (key, value) in params {
        if key != "binary_data_size" {
            return Err(RequestError::InvalidParameter(format!(
                "input {name:?}: unknown parameter {key:?} (shared memory is not supported); \
                 known: binary_data_size"
            )));
        }
        let bytes = value
            .as_u64()
            .and_then(|bytes| usize::try_from(bytes).ok())
            .ok_or_else(|| {
                RequestError::InvalidBinaryData(format!(
                    "input {name:?}: binary_data_size must be a byte count, got {value}"
                ))
            })?;
        size = Some(bytes);
    }
    Ok(size)
}

impl InferCall {
    /// Whether an output needs the images' features.
    pub fn wants_features(&self) -> bool {
        self.outputs
            .iter()
            .any(|spec| spec.kind == OutputKind::Features)
    }
}

/// Requested outputs: [`PROBABILITIES_OUTPUT`] and [`FEATURES_OUTPUT`],
/// each at most once, in any order.
fn parse_outputs(
    outputs: Vec<(String, Map<String, Value>)>,
    binary_default: bool,
    shape: ModelShape,
) -> Result<Vec<OutputSpec>, RequestError> {
    let mut specs: Vec<OutputSpec> = Vec::with_capacity(outputs.len());
    for (name, parameters) in outputs {
        let kind = match name.as_str() {
            PROBABILITIES_OUTPUT => OutputKind::Probabilities,
            FEATURES_OUTPUT => OutputKind::Features,
            other => {
                return Err(tensor_error(format!(
                    "unknown output {other:?}; the outputs are {PROBABILITIES_OUTPUT} \
                     and {FEATURES_OUTPUT}"
                )))
            }
        };
        if specs.iter().any(|spec| spec.kind == kind) {
            return Err(tensor_error(format!(
                "output {} requested twice",
                kind.name()
            )));
        }
        let mut spec = OutputSpec {
            kind,
            classification: None,
            binary: binary_default,
        };
        for (key, value) in parameters {
            match key.as_str() {
                "binary_data" => spec.binary = bool_param(&key, &value)?,
                // tritonclient sends no key for "no classification"; 0 means the same.
                "classification" if kind == OutputKind::Probabilities => {
                    spec.classification = match value.as_u64() {
                        Some(0) => None,
                        Some(k) if k as usize <= shape.num_classes => Some(k as usize),
                        _ => {
                            return Err(RequestError::InvalidParameter(format!(
                                "classification must be between 1 and {}, got {value}",
                                shape.num_classes
                            )))
                        }
                    }
                }
                other => {
                    let known = match kind {
                        OutputKind::Probabilities => "binary_data, classification",
                        OutputKind::Features => "binary_data",
                    };
                    return Err(RequestError::InvalidParameter(format!(
                        "output {}: unknown parameter {other:?}; known: {known}",
                        kind.name()
                    )));
                }
            }
        }
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
