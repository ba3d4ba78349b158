//! The facade between the HTTP edge and the engine: admission → preprocess →
//! submit → top-k with labels and timings (V1), or the full probabilities
//! for encoded or client-normalized images (KServe V2). It knows nothing of
//! axum; the edge knows nothing of tch.

mod error;
mod images;
mod service;
mod topk;

pub use error::InferError;
pub use images::{ClassifyOutput, ClassifyRequest, RequestImages};
pub use service::{InferenceService, ModelHandle, PredictOutput, PredictRequest, Timing};
pub use topk::{top_k, ClassScore};
