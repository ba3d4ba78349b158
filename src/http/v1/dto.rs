//! The JSON shapes of successful responses. These are API: fields are only
//! ever added, never renamed; `openapi.yaml` documents each of them.

use serde::Serialize;

use crate::config::{EngineKind, Precision, WarmupMode};
use crate::http::respond::TimingMs;
use crate::infer::{ClassScore, EmbedOutput, PredictOutput};
use crate::model::FEATURE_DIM;

/// `POST /v1/models/{model}:predict` → 200.
#[derive(Debug, Serialize)]
pub struct PredictResponse {
    /// The canonical model id, whichever alias the client used.
    pub model_name: &'static str,
    /// One entry per image, in request order.
    pub predictions: Vec<Prediction>,
    pub timing: TimingMs,
    /// Size of the batch each image ran in, in image order: shows whether
    /// dynamic batching actually batched this request.
    pub batch_sizes: Vec<usize>,
    /// Present (and true) only when the model serves explicitly configured
    /// random weights, so nobody mistakes its answers for real ones.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub random_weights: bool,
}

/// One image's answer.
#[derive(Debug, Serialize)]
pub struct Prediction {
    /// Most probable first.
    pub top_k: Vec<ClassScore>,
}

impl From<PredictOutput> for PredictResponse {
    fn from(output: PredictOutput) -> Self {
        Self {
            model_name: output.model.name(),
            predictions: output
                .predictions
                .into_iter()
                .map(|top_k| Prediction { top_k })
                .collect(),
            timing: output.timing.into(),
            batch_sizes: output.batch_sizes,
            random_weights: output.random_weights,
        }
    }
}

/// `POST /v1/models/{model}:embed` → 200.
#[derive(Debug, Serialize)]
pub struct EmbedResponse {
    /// The canonical model id, whichever alias the client used.
    pub model_name: &'static str,
    /// Values in each embedding (2048 for every served architecture).
    pub dim: usize,
    /// Whether each embedding was scaled to unit L2 norm.
    pub normalized: bool,
    /// One embedding per image, in request order.
    pub embeddings: Vec<Vec<f32>>,
    pub timing: TimingMs,
    /// Size of the batch each image ran in, in image order (predict and
    /// embed requests share batches).
    pub batch_sizes: Vec<usize>,
    /// As in [`PredictResponse`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub random_weights: bool,
}

impl From<EmbedOutput> for EmbedResponse {
    fn from(output: EmbedOutput) -> Self {
        Self {
            model_name: output.model.name(),
            dim: FEATURE_DIM,
            normalized: output.normalized,
            embeddings: output.embeddings,
            timing: output.timing.into(),
            batch_sizes: output.batch_sizes,
            random_weights: output.random_weights,
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub models: Vec<ModelMetadata>,
}

/// `GET /v1/models/{model}`: KServe V1's `{"name", "ready"}` plus what a
/// client needs to know about the model and how it is served.
#[derive(Debug, Serialize)]
pub struct ModelMetadata {
    /// Canonical id, as used in URLs and responses.
    pub name: &'static str,
    /// Loaded, warmed and accepting work (false while draining).
    pub ready: bool,
    /// Other names this model answers to in URLs.
    pub aliases: Vec<String>,
    pub architecture: Architecture,
    pub input: InputSpec,
    pub num_classes: usize,
    /// Where the replicas run (`cpu`, `cuda:0`); null until the first is ready.
    pub device: Option<String>,
    /// Where each ready replica runs, in the order they became ready.
    pub replica_devices: Vec<String>,
    /// The device as configured (`auto`, `cpu`, `cuda:N`).
    pub requested_device: String,
    /// The runtime that runs the network: `libtorch` or `onnxruntime`.
    pub engine: EngineKind,
    pub dtype: Precision,
    pub replicas: usize,
    pub ready_replicas: usize,
    pub batching: Batching,
    /// True when the model serves explicitly configured random weights.
    pub random_weights: bool,
    /// Seconds from the server's start until every replica was ready; null
    /// while it loads. What a cold start cost, for autoscaling decisions.
    pub ready_after_seconds: Option<f64>,
    /// The `warmup` setting: `auto`, `all` or `minimal`.
    pub warmup: WarmupMode,
    /// The batch sizes run before readiness (`[1]` on a CPU under `auto`).
    pub warmed_batch_sizes: Vec<usize>,
}

/// The network's shape.
#[derive(Debug, Serialize)]
pub struct Architecture {
    /// timm's architecture name (`seresnext50_32x4d`).
    pub name: &'static str,
    pub blocks_per_stage: [usize; 4],
    pub cardinality: usize,
    pub base_width: usize,
}

/// The eval transform the server applies to every upload.
#[derive(Debug, Serialize)]
pub struct InputSpec {
    /// `[channels, height, width]` of the network input.
    pub shape: [u32; 3],
    pub crop_pct: f64,
    /// `center` or `squash`: whether the resize kept the aspect ratio.
    pub crop_mode: &'static str,
    pub interpolation: &'static str,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The model's dynamic batching settings.
#[derive(Debug, Serialize)]
pub struct Batching {
    pub max_batch_size: usize,
    pub max_batch_delay_ms: u64,
    pub queue_capacity: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::Timing;

    #[test]
    fn random_weights_is_omitted_unless_true() {
        let response = |random_weights| PredictResponse {
            model_name: "m",
            predictions: vec![],
            timing: Timing::default().into(),
            batch_sizes: vec![],
            random_weights,
        };
        let json = serde_json::to_value(response(false)).unwrap();
        assert!(json.get("random_weights").is_none());
        let json = serde_json::to_value(response(true)).unwrap();
        assert_eq!(json["random_weights"], true);
    }
}
