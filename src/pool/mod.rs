//! The warm model pool: for each model, R replica threads that load the
//! weights, warm every batch shape and then serve that model's batch queue.
//!
//! Models load concurrently (each replica loads on its own thread), and a
//! model reports ready only when all its replicas are warm.

mod buckets;
mod observer;
mod replica;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use buckets::{batch_buckets, plan_chunks, Chunk};
pub use observer::MetricsObserver;
pub use state::ModelState;

use crate::batching::BatchQueue;
use crate::config::{DeviceSpec, Precision, WeightsSource};
use crate::metrics::Metrics;
use crate::model::ModelId;
use crate::preprocess::PreparedImage;

/// The queue between the request side and a model's replicas: preprocessed
/// crops in, probability vectors out.
pub type ImageQueue = BatchQueue<PreparedImage, Vec<f32>>;

/// Everything a replica thread needs to build and run its model.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub id: ModelId,
    pub weights: WeightsSource,
    pub device: DeviceSpec,
    pub precision: Precision,
    pub fold_bn: bool,
    pub random_seed: u64,
    /// Largest batch the replica will run; its warmup covers every bucket up to it.
    pub max_batch_size: usize,
}

/// Starts `replicas` threads serving `queue`. They stop when the queue is
/// closed and drained.
pub fn spawn_replicas(
    spec: &ReplicaSpec,
    replicas: usize,
    queue: &ImageQueue,
    state: &Arc<ModelState>,
    metrics: &Arc<Metrics>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..replicas)
        .map(|index| {
            let (spec, queue, state, metrics) =
                (spec.clone(), queue.clone(), state.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("{}-replica-{index}", spec.id.name()))
                .spawn(move || replica::run_replica(spec, queue, state, metrics))
        })
        .collect()
}

/// A clear startup error for a weight file that is not there, naming the
/// file and where the published weights come from.
pub fn check_weights_exist(id: ModelId, weights: &WeightsSource) -> Result<(), String> {
    let WeightsSource::File(path) = weights else {
        return Ok(());
    };
    if path.is_file() {
        return Ok(());
    }
    Err(missing_weights_message(id, path))
}

fn missing_weights_message(id: ModelId, path: &Path) -> String {
    format!(
        "weight file {} for model {} not found. Download the published weights from {} \
         and place the file at that path (or set `weights` in the config).",
        path.display(),
        id.name(),
        id.weights_sources()
    )
}
