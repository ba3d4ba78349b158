//! The facade between the HTTP edge and the engine: admission → preprocess →
//! submit → top-k with labels and timings (V1), or the full probabilities
//! for encoded or client-normalized images (KServe V2). It knows nothing of
//! axum; the edge knows nothing of tch.

mod admission;
mod calibrate;
mod concurrency;
mod decode_pool;
mod decode_ring;
mod embed;
mod error;
mod estimate;
#[cfg(test)]
mod fair_tests;
#[cfg(test)]
pub(crate) mod fake;
mod flow;
mod images;
mod low_priority;
mod service;
mod topk;
mod view;

pub use embed::{l2_normalize, EmbedOutput, EmbedRequest};
pub use error::{ImageProblem, InferError};
pub use flow::{PredictOutput, PredictRequest, Timing};
pub use images::{ClassifyOutput, ClassifyRequest, RequestImages};
pub use service::{InferenceService, ModelHandle};
pub use topk::{top_k, ClassScore};
pub use view::{BatchingInfo, ModelInfo, Readiness};
