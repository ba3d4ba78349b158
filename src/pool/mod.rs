//! The warm model pool: for each model, R replica threads that load the
//! weights, warm every batch shape and then serve that model's batch queue.
//!
//! Models load concurrently (each replica loads on its own thread), and a
//! model reports ready only when all its replicas are warm.

mod buckets;
mod cpu_thread;
mod input;
mod observer;
mod replica;
mod resolve;
mod state;

use std::sync::Arc;
use std::thread::JoinHandle;

pub use buckets::{batch_buckets, plan_chunks, Chunk};
pub use input::ModelInput;
pub use observer::MetricsObserver;
pub use resolve::{published_file, resolve_weights, ResolveError, ResolvedWeights};
pub use state::ModelState;

use crate::batching::BatchQueue;
use crate::config::{DeviceSpec, Precision};
use crate::metrics::Metrics;
use crate::model::ModelId;

/// The queue between the request side and a model's replicas: preprocessed
/// crops or client-normalized images in, probability vectors out.
pub type ImageQueue = BatchQueue<ModelInput, Vec<f32>>;

/// Everything a replica thread needs to build and run its model.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub id: ModelId,
    /// Already resolved ([`resolve_weights`]): replicas never search or download.
    pub weights: ResolvedWeights,
    pub device: DeviceSpec,
    pub precision: Precision,
    pub fold_bn: bool,
    pub channels_last: bool,
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
