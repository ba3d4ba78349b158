//! What the edge may know about a served model: read-only views computed
//! here, once, from the engine's state. The edge never touches a queue or a
//! replica's state; it asks the facade and gets plain values.

use crate::config::Precision;
use crate::model::{ArchSpec, ModelId, PretrainedCfg};
use crate::pool::ModelState;

/// Whether a model (or the whole server) takes traffic, and if not, why.
/// Health, model metadata and KServe V2 readiness all read this one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Loaded, warm, and the server is not draining.
    Ready,
    /// Still loading or warming up.
    Loading,
    /// Failed to start, or a replica thread died since.
    Failed,
    /// The server is shutting down: it finishes what it has, takes nothing new.
    Draining,
}

impl Readiness {
    /// Draining wins over everything (the load balancer must stop routing
    /// here first), then a failure, then loading.
    pub(super) fn of(state: &ModelState, draining: bool) -> Self {
        if draining {
            Self::Draining
        } else if state.failure().is_some() {
            Self::Failed
        } else if !state.is_ready() {
            Self::Loading
        } else {
            Self::Ready
        }
    }

    /// The worst of several: the server is as ready as its least ready model.
    pub(super) fn worst(self, other: Self) -> Self {
        self.max(other)
    }

    fn rank(self) -> u8 {
        match self {
            Self::Ready => 0,
            Self::Loading => 1,
            Self::Failed => 2,
            Self::Draining => 3,
        }
    }

    pub fn is_ready(self) -> bool {
        self == Self::Ready
    }

    /// The word health bodies carry in `status`.
    pub fn status(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Loading => "loading",
            Self::Failed => "failed",
            Self::Draining => "draining",
        }
    }

    /// The stable `error_type` of a request or probe refused because of it.
    pub fn error_type(self) -> Option<&'static str> {
        match self {
            Self::Ready => None,
            Self::Loading => Some("model_not_ready"),
            Self::Failed => Some("model_load_failed"),
            Self::Draining => Some("shutting_down"),
        }
    }
}

impl PartialOrd for Readiness {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Readiness {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// One served model as clients see it: identity, input, placement, batching.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The catalog entry: names, architecture and pretrained config.
    pub model: ModelId,
    pub readiness: Readiness,
    /// Where the replicas run (`cpu`, `cuda:0`), once the first is ready.
    pub device: Option<String>,
    /// Where each ready replica runs: replicas of `cuda` spread over the GPUs.
    pub replica_devices: Vec<String>,
    /// The configured device, as written (`auto`, `cuda:1`).
    pub requested_device: String,
    /// The runtime that runs the network.
    pub engine: crate::config::EngineKind,
    pub dtype: Precision,
    pub replicas: usize,
    pub ready_replicas: usize,
    pub batching: BatchingInfo,
    /// Served with explicitly requested random weights: predictions mean nothing.
    pub random_weights: bool,
    /// How long after the server started every replica was ready (`None`
    /// while loading): what a cold start cost this model.
    pub ready_after: Option<std::time::Duration>,
    /// The batch sizes run before readiness (`warmup` and the device decide).
    pub warmed_batch_sizes: Vec<usize>,
    /// The configured warm-up setting.
    pub warmup: crate::config::WarmupMode,
}

/// How a model batches, as configured.
#[derive(Debug, Clone, Copy)]
pub struct BatchingInfo {
    pub max_batch_size: usize,
    pub max_batch_delay_ms: u64,
    /// Images its queue holds before it sheds load.
    pub capacity: usize,
}

impl ModelInfo {
    pub fn name(&self) -> &'static str {
        self.model.name()
    }

    pub fn arch(&self) -> ArchSpec {
        self.model.arch()
    }

    pub fn pretrained_cfg(&self) -> PretrainedCfg {
        self.model.pretrained_cfg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_draining_then_failure_then_loading() {
        let state = ModelState::new(1);
        assert_eq!(Readiness::of(&state, false), Readiness::Loading);
        assert_eq!(Readiness::of(&state, true), Readiness::Draining);
        state.replica_ready("cpu".into());
        assert_eq!(Readiness::of(&state, false), Readiness::Ready);
        state.fail("boom".into());
        assert_eq!(Readiness::of(&state, false), Readiness::Failed);
        assert_eq!(Readiness::of(&state, true), Readiness::Draining);
    }

    #[test]
    fn the_server_is_as_ready_as_its_least_ready_model() {
        use Readiness::*;
        assert_eq!(Ready.worst(Loading), Loading);
        assert_eq!(Failed.worst(Loading), Failed);
        assert_eq!(Ready.worst(Ready), Ready);
        assert_eq!(Draining.worst(Failed), Draining);
        assert_eq!(Loading.error_type(), Some("model_not_ready"));
        assert_eq!(Ready.error_type(), None);
    }
}
