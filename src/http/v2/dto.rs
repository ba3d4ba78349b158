//! The JSON shapes of the KServe V2 answers.

use serde::Serialize;

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
pub(super) struct InferResponse {
    pub(super) model_name: &'static str,
    pub(super) model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<String>,
    pub(super) outputs: Vec<OutputTensor>,
}

#[derive(Debug, Serialize)]
pub(super) struct OutputTensor {
    pub(super) name: &'static str,
    pub(super) datatype: &'static str,
    pub(super) shape: [usize; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parameters: Option<BinaryParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<OutputData>,
}

/// Where a binary output's bytes are: its size, in output order.
#[derive(Debug, Serialize)]
pub(super) struct BinaryParameters {
    pub(super) binary_data_size: usize,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum OutputData {
    Numbers(Vec<f32>),
    Strings(Vec<String>),
}
