//! The warm model pool: for each model, R replica threads that load the
//! weights, warm the batch shapes their device needs and then serve that model's batch queue.
//!
//! Models load concurrently (each replica loads on its own thread), and a
//! model reports ready only when all its replicas are warm. Replicas drive a
//! [`model::Engine`](crate::model::Engine) and hold no tensor themselves.

mod buckets;
mod cpu_thread;
mod device_turn;
mod input;
mod observer;
mod replica;
mod resolve;
mod state;

use std::sync::Arc;
use std::thread::JoinHandle;

pub use buckets::{batch_buckets, plan_chunks, Chunk};
pub use input::{ImageJob, ImageResult, ModelInput};
pub use observer::MetricsObserver;
pub use resolve::{
    published_file, resolve_own_weights, resolve_weights, ResolveError, ResolvedWeights,
};
pub use state::ModelState;

use crate::batching::BatchQueue;
use crate::config::{DeviceSpec, WarmupMode};
use crate::metrics::Metrics;
use crate::model::{place_replicas_here, Engine, ModelError, ModelId};

/// The queue between the request side and a model's replicas: preprocessed
/// crops or client-normalized images in, probability vectors (and features,
/// for the jobs that want them) out.
pub type ImageQueue = BatchQueue<ImageJob, ImageResult>;

/// Prepares a replica's engine for the device it was placed on, in two
/// steps: the loader reads and parses the weights on the replica's own
/// thread, so that models read their files concurrently; the
/// [`EngineBuild`] it returns then runs where the engine will live (the
/// shared CPU engine thread, or the replica's thread), since an engine
/// belongs to one thread.
pub type EngineLoader = Arc<dyn Fn(DeviceSpec) -> Result<EngineBuild, ModelError> + Send + Sync>;

/// The second step of an [`EngineLoader`].
pub type EngineBuild = Box<dyn FnOnce() -> Result<Box<dyn Engine>, ModelError> + Send>;

/// A loader with nothing to read first: each replica's engine comes from `make`.
pub fn loader_from(make: impl Fn() -> Box<dyn Engine> + Send + Sync + 'static) -> EngineLoader {
    let make = Arc::new(make);
    Arc::new(move |_| {
        let make = make.clone();
        Ok(Box::new(move || Ok(make())) as EngineBuild)
    })
}

/// Everything a replica thread needs to build and run its model.
#[derive(Clone)]
pub struct ReplicaSpec {
    pub model: ModelId,
    /// Where the model runs, as configured; [`spawn_replicas`] places each
    /// replica (see [`place_replicas`](crate::model::place_replicas)), which
    /// also decides whether its work goes through the shared CPU engine thread.
    pub device: DeviceSpec,
    /// Largest batch the replica will run; a full warm-up covers every bucket up to it.
    pub max_batch_size: usize,
    /// Which of those buckets run before the replica reports ready.
    pub warmup: WarmupMode,
    /// Builds the engine (the root's `engines::EngineChoice` decides which).
    pub loader: EngineLoader,
}

impl std::fmt::Debug for ReplicaSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReplicaSpec")
            .field("model", &self.model)
            .field("device", &self.device)
            .field("max_batch_size", &self.max_batch_size)
            .field("warmup", &self.warmup)
            .finish_non_exhaustive()
    }
}

/// Starts `replicas` threads serving `queue`, placed over this machine's
/// devices. They stop when the queue is closed and drained.
pub fn spawn_replicas(
    spec: &ReplicaSpec,
    replicas: usize,
    queue: &ImageQueue,
    state: &Arc<ModelState>,
    metrics: &Arc<Metrics>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    place_replicas_here(spec.device, replicas)
        .into_iter()
        .enumerate()
        .map(|(index, device)| {
            let spec = ReplicaSpec {
                device,
                ..spec.clone()
            };
            let (queue, state, metrics) = (queue.clone(), state.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("{}-replica-{index}", spec.model.name()))
                .spawn(move || replica::run_replica(spec, queue, state, metrics))
        })
        .collect()
}
