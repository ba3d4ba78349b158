//! The one place that knows every engine: builds the one a model is
//! configured for, so the server, `bench` and `classify` choose alike.

use std::path::Path;

use crate::config::EngineKind;
use crate::model::{Classifier, Engine, LoadOptions, ModelError, ModelId};
use crate::onnx::{OnnxClassifier, SessionSettings};

/// An engine and its settings.
#[derive(Debug, Clone)]
pub struct EngineChoice {
    pub kind: EngineKind,
    /// Device, precision and layout (libtorch; ONNX Runtime is fp32 on the CPU).
    pub libtorch: LoadOptions,
    pub onnxruntime: SessionSettings,
}

impl EngineChoice {
    /// Loads `id` from `weights` (`None`: random weights from `seed`).
    pub fn load(
        &self,
        id: ModelId,
        weights: Option<&Path>,
        seed: u64,
    ) -> Result<Box<dyn Engine>, ModelError> {
        Ok(match (self.kind, weights) {
            (EngineKind::Libtorch, Some(path)) => {
                Box::new(Classifier::load_file(id, path, self.libtorch)?)
            }
            (EngineKind::Libtorch, None) => Box::new(Classifier::random(id, seed, self.libtorch)?),
            (EngineKind::Onnxruntime, Some(path)) => {
                Box::new(OnnxClassifier::load_file(id, path, &self.onnxruntime)?)
            }
            (EngineKind::Onnxruntime, None) => {
                Box::new(OnnxClassifier::random(id, seed, &self.onnxruntime)?)
            }
        })
    }
}
