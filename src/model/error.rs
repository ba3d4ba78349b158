//! Why a model could not be loaded or run.

use tch::TchError;

use crate::config::Precision;
use crate::weights::{KeyMismatch, WeightsError};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "checkpoint does not match the architecture: missing {missing:?}; unexpected {unexpected:?}; mismatched {mismatched:?}"
    )]
    CheckpointMismatch {
        missing: Vec<String>,
        unexpected: Vec<String>,
        mismatched: Vec<String>,
    },
    #[error("input must be {expected} bytes (a {side}x{side} RGB crop), got {actual}")]
    BadInput {
        expected: usize,
        actual: usize,
        side: u32,
    },
    #[error("a normalized input must be {expected} floats (3x{side}x{side}), got {actual}")]
    BadNormalizedInput {
        expected: usize,
        actual: usize,
        side: u32,
    },
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),
    #[error(
        "{precision} needs BatchNorm folded (fold_bn = true): unfolded, its running statistics \
         would be cast to half precision with the weights"
    )]
    HalfPrecisionWithoutFolding { precision: Precision },
    /// A failure of an engine other than libtorch, in its own words.
    #[error("{0}")]
    Engine(String),
}

impl From<KeyMismatch> for ModelError {
    fn from(mismatch: KeyMismatch) -> Self {
        ModelError::CheckpointMismatch {
            missing: mismatch.missing,
            unexpected: mismatch.unexpected,
            mismatched: mismatch.mismatched,
        }
    }
}
