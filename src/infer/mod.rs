//! The facade between the HTTP edge and the engine: admission → preprocess →
//! submit → top-k with labels and timings. It knows nothing of axum; the
//! edge knows nothing of tch.

mod error;
mod service;
mod topk;

pub use error::InferError;
pub use service::{InferenceService, ModelHandle, PredictOutput, PredictRequest, Timing};
pub use topk::{top_k, ClassScore};
