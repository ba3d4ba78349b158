//! The one place that knows every engine: builds the one a model is
//! configured for, so the server, `bench` and `classify` choose alike.

use std::path::Path;

use crate::config::EngineKind;
use crate::model::{Classifier, Engine, LoadOptions, ModelError, ModelId};
use crate::onnx::{OnnxClassifier, SessionSettings};
use crate::weights::{self, ReadCheckpoint};

/// An engine and its settings.
#[derive(Debug, Clone)]
pub struct EngineChoice {
    pub kind: EngineKind,
    /// Device, precision and layout (libtorch; ONNX Runtime is fp32 on the CPU).
    pub libtorch: LoadOptions,
    pub onnxruntime: SessionSettings,
}

/// Weights read and parsed, waiting for [`PendingEngine::build`].
///
/// Reading is plain Rust on the caller's thread, so several models read
/// their files at once; building needs the engine's own thread (the shared
/// CPU engine thread, or the device), where models take turns.
#[derive(Debug)]
pub struct PendingEngine {
    choice: EngineChoice,
    id: ModelId,
    /// `None`: random weights from `seed`.
    checkpoint: Option<ReadCheckpoint>,
    seed: u64,
}

impl EngineChoice {
    /// Loads `id` from `weights` (`None`: random weights from `seed`).
    pub fn load(
        &self,
        id: ModelId,
        weights: Option<&Path>,
        seed: u64,
    ) -> Result<Box<dyn Engine>, ModelError> {
        self.read(id, weights, seed)?.build()
    }

    /// The first half of [`load`](Self::load): reads and parses `weights`.
    pub fn read(
        &self,
        id: ModelId,
        weights: Option<&Path>,
        seed: u64,
    ) -> Result<PendingEngine, ModelError> {
        Ok(PendingEngine {
            choice: self.clone(),
            id,
            checkpoint: weights.map(weights::read).transpose()?,
            seed,
        })
    }
}

impl PendingEngine {
    /// The second half of [`EngineChoice::load`]: builds the engine.
    pub fn build(self) -> Result<Box<dyn Engine>, ModelError> {
        let Self {
            choice,
            id,
            checkpoint,
            seed,
        } = self;
        Ok(match (choice.kind, checkpoint) {
            (EngineKind::Libtorch, Some(read)) => {
                Box::new(Classifier::from_read(id, read, choice.libtorch)?)
            }
            (EngineKind::Libtorch, None) => {
                Box::new(Classifier::random(id, seed, choice.libtorch)?)
            }
            (EngineKind::Onnxruntime, Some(read)) => {
                Box::new(OnnxClassifier::from_read(id, read, &choice.onnxruntime)?)
            }
            (EngineKind::Onnxruntime, None) => {
                Box::new(OnnxClassifier::random(id, seed, &choice.onnxruntime)?)
            }
        })
    }
}
