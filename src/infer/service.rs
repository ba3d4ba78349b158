//! [`InferenceService`]: the one entry point the HTTP layer calls. It admits a
//! request, preprocesses its images on a bounded CPU pool (never on the async
//! reactor), submits them to the model's batch queue and turns the
//! probabilities into labelled top-k with timings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::concurrency::{Concurrency, TIME_CONSTANT as CONCURRENCY_TIME_CONSTANT};
use super::decode_pool::FairPool;
use super::error::InferError;
use super::view::{BatchingInfo, ModelInfo, Readiness};
use crate::config::{ModelConfig, ServerConfig, WeightsSource};
use crate::metrics::Metrics;
use crate::model::ModelId;
use crate::pool::{ImageQueue, ModelState};
use crate::preprocess::{DecodeLimits, PreparedImage, PreprocessError, TransformSpec};

/// The facade's decode scheduler: encoded images in, crops out.
pub(super) type DecodePool = FairPool<PreparedImage, PreprocessError>;

/// One served model, as the root built it: its settings, the queue its
/// replicas serve and their start-up state. Sealed: the facade reads it and
/// hands out [`ModelInfo`] views; nothing outside touches the queue or state.
pub struct ModelHandle {
    pub(super) id: ModelId,
    pub(super) config: ModelConfig,
    pub(super) queue: ImageQueue,
    pub(super) state: Arc<ModelState>,
}

impl ModelHandle {
    /// A model whose replicas (already spawned by the caller) serve `queue`
    /// and report into `state`.
    pub fn new(
        id: ModelId,
        config: ModelConfig,
        queue: ImageQueue,
        state: Arc<ModelState>,
    ) -> Self {
        Self {
            id,
            config,
            queue,
            state,
        }
    }

    /// Served with explicitly requested random weights: predictions mean nothing.
    pub(super) fn random_weights(&self) -> bool {
        self.config.weights == WeightsSource::Random
    }

    pub(super) fn transform_spec(&self) -> TransformSpec {
        self.id.pretrained_cfg().transform_spec()
    }

    /// Closes the model's queue, so its replicas exit once they have loaded
    /// (start-up failed elsewhere and the server will not serve).
    pub fn close_queue(&self) {
        self.queue.close();
    }
}

/// The largest image the decode pool's express slot takes while every
/// worker is busy: 4 Mpixel covers a 2560 x 1600 photo, the size clients
/// that resize before uploading send, and decodes in tens of milliseconds.
const EXPRESS_MAX_PIXELS: u64 = 4_000_000;

/// The engine behind the HTTP API.
pub struct InferenceService {
    pub(super) models: Vec<ModelHandle>,
    pub(super) metrics: Arc<Metrics>,
    /// Decode/resize on `preprocess_threads` workers, round-robin across
    /// requests, within `max_inflight_pixels`.
    pub(super) decode_pool: DecodePool,
    pub(super) decode_limits: DecodeLimits,
    pub(super) max_images_per_request: usize,
    pub(super) request_timeout: Duration,
    /// Set on SIGTERM: readiness fails so the load balancer stops routing here.
    pub(super) draining: AtomicBool,
    /// Held while one request is judged and its work registered
    /// (`admission.rs`), so concurrent arrivals see each other's work.
    pub(super) admission: Mutex<()>,
    /// Admitted requests in flight and their time average: the streams a
    /// heavy newcomer will share the server with (`concurrency.rs`).
    pub(super) concurrency: Concurrency,
    /// Held by the one request admitted past its own estimate
    /// (`admission.rs`, `LongShot`).
    pub(super) long_shot: AtomicBool,
}

impl InferenceService {
    /// The facade over models the root has built (queues made, replicas
    /// spawned and loading in the background), with the server's limits.
    pub fn new(models: Vec<ModelHandle>, server: &ServerConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            models,
            metrics,
            decode_pool: FairPool::with_express(
                server.preprocess_thread_count(),
                server.inflight_pixel_budget(),
                EXPRESS_MAX_PIXELS,
            ),
            decode_limits: DecodeLimits {
                max_width: server.max_image_side,
                max_height: server.max_image_side,
                max_pixels: server.max_image_pixels,
            },
            max_images_per_request: server.max_images_per_request,
            request_timeout: server.request_timeout(),
            draining: AtomicBool::new(false),
            admission: Mutex::new(()),
            concurrency: Concurrency::new(Instant::now(), CONCURRENCY_TIME_CONSTANT),
            long_shot: AtomicBool::new(false),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Every served model, in configuration order.
    pub fn model_infos(&self) -> Vec<ModelInfo> {
        self.models.iter().map(|model| self.info(model)).collect()
    }

    /// The served model with this id or alias.
    pub fn model_info(&self, name: &str) -> Result<ModelInfo, InferError> {
        self.model(name).map(|model| self.info(model))
    }

    fn info(&self, model: &ModelHandle) -> ModelInfo {
        let config = &model.config;
        ModelInfo {
            model: model.id,
            readiness: self.readiness_of(model),
            device: model.state.device(),
            replica_devices: model.state.replica_devices(),
            requested_device: config.device.to_string(),
            engine: config.engine,
            dtype: config.dtype,
            replicas: model.state.replicas(),
            ready_replicas: model.state.ready_replicas(),
            batching: BatchingInfo {
                max_batch_size: config.max_batch_size,
                max_batch_delay_ms: config.max_batch_delay_ms,
                capacity: config.queue_capacity,
            },
            random_weights: model.random_weights(),
            ready_after: model.state.ready_after(),
            warmed_batch_sizes: model.state.warmed_batch_sizes(),
            warmup: config.warmup,
        }
    }

    /// The models still loading or warming up (not failed), in config order:
    /// what `/readyz` is waiting for.
    pub fn loading_models(&self) -> Vec<&'static str> {
        self.models
            .iter()
            .filter(|m| !m.state.is_ready() && m.state.failure().is_none())
            .map(|m| m.id.name())
            .collect()
    }

    pub(super) fn model(&self, name: &str) -> Result<&ModelHandle, InferError> {
        self.models
            .iter()
            .find(|handle| handle.id.answers_to(name))
            .ok_or_else(|| InferError::UnknownModel(name.to_string()))
    }

    fn readiness_of(&self, model: &ModelHandle) -> Readiness {
        Readiness::of(&model.state, self.is_draining())
    }

    /// The server's readiness: that of its least ready model (draining,
    /// then a failure, then loading).
    pub fn readiness(&self) -> Readiness {
        let draining = if self.is_draining() {
            Readiness::Draining
        } else {
            Readiness::Ready
        };
        self.models
            .iter()
            .map(|model| self.readiness_of(model))
            .fold(draining, Readiness::worst)
    }

    /// Every model is loaded and warmed, and the server is not draining.
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ready()
    }

    /// Every model loaded and warm, draining or not: start-up is over.
    pub fn all_models_ready(&self) -> bool {
        self.models.iter().all(|m| m.state.is_ready())
    }

    /// The first model that failed to start, with why.
    pub fn startup_failure(&self) -> Option<String> {
        self.models.iter().find_map(|m| m.state.failure())
    }

    /// Why a replica thread died, if one did. Only a new process brings it
    /// back, so liveness reports it and the orchestrator restarts us.
    pub fn lost_replica(&self) -> Option<String> {
        self.models
            .iter()
            .find(|m| m.state.lost_replicas() > 0)
            .and_then(|m| m.state.failure())
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Readiness fails from now on; requests are still served.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Stops admission and waits (up to `timeout`) until every queued image
    /// is answered; what is left after that is aborted.
    pub async fn drain(&self, timeout: Duration) {
        self.begin_draining();
        for model in &self.models {
            model.queue.close();
        }
        let all_drained = async {
            for model in &self.models {
                model.queue.wait_drained().await;
            }
        };
        if tokio::time::timeout(timeout, all_drained).await.is_err() {
            for model in &self.models {
                let aborted = model.queue.abort_queued();
                tracing::warn!(model = model.id.name(), aborted, "drain timed out");
            }
        }
    }

    /// Brings the queue-depth gauges up to date (called before a scrape).
    pub fn refresh_gauges(&self) {
        for model in &self.models {
            let name = model.id.name();
            self.metrics
                .queue_depth
                .with_label_values(&[name])
                .set(model.queue.depth() as i64);
            self.metrics
                .model_ready
                .with_label_values(&[name])
                .set(i64::from(model.state.is_ready()));
        }
    }
}
