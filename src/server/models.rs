//! The root's part of start-up: turn each `[[models]]` entry into a served
//! model. Weights are resolved first (Hub files found in the cache or
//! downloaded, release hashes checked), so a missing or wrong file fails
//! here, at once; then the model's queue is built and its replica threads
//! are spawned, which load and warm in the background.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::own_model::{identify, OwnModelError};
use crate::batching::{BatchQueue, BatcherConfig};
use crate::config::{BatchWindow, Config, DeviceSpec, EngineKind, ModelConfig};
use crate::engines::EngineChoice;
use crate::hub::HubSettings;
use crate::infer::ModelHandle;
use crate::metrics::Metrics;
use crate::model::{check_device, device_label, resolve_device, DeviceError, LoadOptions, ModelId};
use crate::onnx::{self, RuntimeError, SessionSettings};
use crate::pool::{
    self, EngineBuild, EngineLoader, MetricsObserver, ModelState, ReplicaSpec, ResolveError,
    ResolvedWeights,
};

/// Why the models could not be started. Each names the model it is about.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("models[{model}]: {source}")]
    Device {
        model: String,
        #[source]
        source: DeviceError,
    },
    #[error(transparent)]
    Weights(#[from] ResolveError),
    #[error(transparent)]
    OwnModel(#[from] OwnModelError),
    #[error("models[{model}]: {source}")]
    OnnxRuntime {
        model: String,
        #[source]
        source: RuntimeError,
    },
    #[error("models[{model}]: {source}")]
    Queue {
        model: String,
        #[source]
        source: crate::batching::ConfigError,
    },
    #[error("cannot start replica threads: {0}")]
    Spawn(#[from] std::io::Error),
}

/// The served models, and the replica threads to join at shutdown.
pub struct StartedModels {
    pub handles: Vec<ModelHandle>,
    pub replica_threads: Vec<JoinHandle<()>>,
}

/// Builds every configured model: resolves its weights, makes its queue and
/// spawns its replicas (which load concurrently, in the background).
///
/// `started` is when the server began starting, from which each model's
/// `ready_after` is counted. On an error, the models started before it are
/// stopped and their threads joined before this returns: a replica left
/// loading with libtorch while the process exits crashes it.
pub fn start_models(
    config: &Config,
    metrics: &Arc<Metrics>,
    started: Instant,
) -> Result<StartedModels, StartError> {
    let mut started_models = StartedModels {
        handles: Vec::new(),
        replica_threads: Vec::new(),
    };
    for model in &config.models {
        if let Err(error) = start_one(config, model, metrics, started, &mut started_models) {
            started_models.stop_and_join();
            return Err(error);
        }
    }
    Ok(started_models)
}

impl StartedModels {
    /// Closes every queue and waits for every replica thread to exit (each
    /// finishes its load or warm-up first: libtorch work is not cancellable).
    pub fn stop_and_join(&mut self) {
        for handle in &self.handles {
            handle.close_queue();
        }
        for thread in self.replica_threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Resolves one `[[models]]` entry's weights and starts it into `started_models`.
fn start_one(
    config: &Config,
    model: &ModelConfig,
    metrics: &Arc<Metrics>,
    started: Instant,
    started_models: &mut StartedModels,
) -> Result<(), StartError> {
    let hub = HubSettings::from_config(&config.hub);
    let catalog = ModelId::parse(&model.id);
    // ONNX Runtime runs on the CPU whatever `auto` would pick for libtorch.
    let requested = match model.engine {
        EngineKind::Libtorch => model.device,
        EngineKind::Onnxruntime => DeviceSpec::Cpu,
    };
    // Before the weights are read (or downloaded): a GPU that is not there
    // (or an engine library that is not) fails at once, with a sentence.
    let device = check_device(requested).map_err(|source| StartError::Device {
        model: model.id.clone(),
        source,
    })?;
    let onnx_settings =
        SessionSettings::from_config(&config.onnxruntime, config.server.intra_op_threads);
    if model.engine == EngineKind::Onnxruntime {
        onnx::runtime::environment(onnx_settings.library.as_deref()).map_err(|source| {
            StartError::OnnxRuntime {
                model: model.id.clone(),
                source,
            }
        })?;
    }
    tracing::info!(
        model = %model.id,
        engine = %model.engine,
        requested = %model.device,
        device = device_label(device),
        "device chosen"
    );
    let resolving = Instant::now();
    let weights = match catalog {
        Some(id) => pool::resolve_weights(id, &model.weights, &hub)?,
        None => pool::resolve_own_weights(&model.id, &model.weights, &hub)?,
    };
    let id = identify(model, &weights, &hub)?;
    let resolve_time = resolving.elapsed();
    tracing::info!(
        model = id.name(),
        resolve_s = resolve_time.as_secs_f64(),
        "weights resolved"
    );
    let choice = EngineChoice {
        kind: model.engine,
        libtorch: LoadOptions {
            // Each replica's own device is filled in where it is placed.
            precision: model.dtype,
            fold_bn: model.fold_bn,
            channels_last: model.channels_last,
            ..LoadOptions::default()
        },
        onnxruntime: onnx_settings,
    };
    let seed = model.random_seed;
    let loader: EngineLoader = Arc::new(move |device| {
        let path = match &weights {
            ResolvedWeights::File(path) => Some(path.as_path()),
            ResolvedWeights::Random => None,
        };
        let mut choice = choice.clone();
        choice.libtorch.device = resolve_device(device);
        let pending = choice.read(id, path, seed)?;
        Ok(Box::new(move || pending.build()) as EngineBuild)
    });
    let spec = ReplicaSpec {
        model: id,
        device: requested,
        max_batch_size: model.max_batch_size,
        warmup: model.warmup,
        loader,
    };
    let (handle, threads) = start_model(id, model, &spec, metrics, started)?;
    metrics
        .model_load_seconds
        .with_label_values(&[id.name(), "resolve"])
        .set(resolve_time.as_secs_f64());
    started_models.handles.push(handle);
    started_models.replica_threads.extend(threads);
    Ok(())
}

/// One model's queue and replicas, whatever engine `spec` loads.
fn start_model(
    id: ModelId,
    model: &ModelConfig,
    spec: &ReplicaSpec,
    metrics: &Arc<Metrics>,
    started: Instant,
) -> Result<(ModelHandle, Vec<JoinHandle<()>>), StartError> {
    metrics.register_model(id.name());
    let observer = MetricsObserver {
        metrics: metrics.clone(),
        model: id.name(),
    };
    let queue = BatchQueue::new(
        BatcherConfig {
            max_batch_size: model.max_batch_size,
            max_batch_delay: model.max_batch_delay(),
            queue_capacity: model.queue_capacity,
            replicas: model.replicas,
            adaptive_window: model.batch_window == BatchWindow::Adaptive,
            max_pass_time: model.max_pass_time(),
        },
        Arc::new(observer),
    )
    .map_err(|source| StartError::Queue {
        model: model.id.clone(),
        source,
    })?;
    let state = Arc::new(ModelState::started_at(model.replicas, started));
    let threads = pool::spawn_replicas(spec, model.replicas, &queue, &state, metrics)?;
    Ok((ModelHandle::new(id, model.clone(), queue, state), threads))
}
