//! How long a model's start-up steps took on the engine side, so the log and
//! `seresnext_model_load_seconds{phase}` can say where the time to ready goes.

use std::time::Duration;

/// The engine's share of start-up; the pool adds `resolve` and `warm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadPhases {
    /// Reading and parsing the checkpoint file into host tensors.
    pub read: Duration,
    /// Folding BatchNorm into the convolutions (zero with `fold_bn = false`).
    pub fold: Duration,
    /// Building the network from the tensors, less the folding, and moving
    /// it to its device, precision and memory layout.
    pub build: Duration,
}

impl LoadPhases {
    /// Phases of a build that took `total`, `fold` of it folding.
    pub(super) fn built(total: Duration, fold: Duration) -> Self {
        Self {
            read: Duration::ZERO,
            fold,
            build: total.saturating_sub(fold),
        }
    }

    /// `(phase label, duration)` in the order they run.
    pub fn labelled(&self) -> [(&'static str, Duration); 3] {
        [
            ("read", self.read),
            ("fold", self.fold),
            ("build", self.build),
        ]
    }
}
