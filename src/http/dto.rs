//! The JSON shapes of successful responses. These are API: fields are only
//! ever added, never renamed; `openapi.yaml` documents each of them.

use std::time::Duration;

use serde::Serialize;

use crate::config::Precision;
use crate::infer::{ClassScore, PredictOutput, Timing};

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

/// Where the request's time went, in milliseconds with microsecond precision
/// (the same figures as the `x-*-time-ms` headers).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TimingMs {
    pub preprocess_ms: f64,
    pub queue_ms: f64,
    pub inference_ms: f64,
    pub total_ms: f64,
}

/// Milliseconds rounded to three decimals.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl From<Timing> for TimingMs {
    fn from(timing: Timing) -> Self {
        Self {
            preprocess_ms: millis(timing.preprocess),
            queue_ms: millis(timing.queue),
            inference_ms: millis(timing.inference),
            total_ms: millis(timing.total),
        }
    }
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
    /// The device as configured (`auto`, `cpu`, `cuda:N`).
    pub requested_device: String,
    pub dtype: Precision,
    pub replicas: usize,
    pub ready_replicas: usize,
    pub batching: Batching,
    /// True when the model serves explicitly configured random weights.
    pub random_weights: bool,
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

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `alive`, `broken`, `ready`, `loading`, `draining` or `failed`.
    pub status: &'static str,
    /// Only on readiness answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// On a 503, the usual error fields, so the body has the shape of every
    /// other error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_keep_three_decimals() {
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.567);
        assert_eq!(millis(Duration::from_nanos(1_600)), 0.002);
        assert_eq!(millis(Duration::ZERO), 0.0);
    }

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
