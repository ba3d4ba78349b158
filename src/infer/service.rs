//! [`InferenceService`]: the one entry point the HTTP layer calls. It admits a
//! request, preprocesses its images on a bounded CPU pool (never on the async
//! reactor), submits them to the model's batch queue and turns the
//! probabilities into labelled top-k with timings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::error::InferError;
use super::images::{
    check_normalized, preprocess_all, ClassifyOutput, ClassifyRequest, RequestImages,
};
use super::topk::{top_k, ClassScore};
use crate::batching::{BatchError, BatchQueue, BatcherConfig, SubmitError};
use crate::config::{BatchWindow, Config, ModelConfig, WeightsSource};
use crate::hub::HubSettings;
use crate::metrics::Metrics;
use crate::model::ModelId;
use crate::pool::{self, ImageQueue, MetricsObserver, ModelInput, ModelState, ReplicaSpec};
use crate::preprocess::{DecodeLimits, TransformSpec};

/// One served model: its settings, queue and start-up state.
pub struct ModelHandle {
    pub id: ModelId,
    pub config: ModelConfig,
    pub queue: ImageQueue,
    pub state: Arc<ModelState>,
}

impl ModelHandle {
    /// Served with explicitly requested random weights: predictions mean nothing.
    pub fn random_weights(&self) -> bool {
        self.config.weights == WeightsSource::Random
    }

    pub fn transform_spec(&self) -> TransformSpec {
        self.id.pretrained_cfg().transform_spec()
    }
}

/// A request to classify one or more encoded images.
#[derive(Debug)]
pub struct PredictRequest {
    /// Model id or alias, as the client wrote it.
    pub model: String,
    /// Encoded images (JPEG, PNG, …), in the order predictions come back.
    pub images: Vec<Bytes>,
    /// Classes per prediction.
    pub top_k: i64,
    /// The client's own deadline; the server's request timeout applies when absent.
    pub timeout: Option<Duration>,
}

/// Where one request's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// Decode and transform of all images (they run in parallel).
    pub preprocess: Duration,
    /// Longest wait of any of its images in the batch queue.
    pub queue: Duration,
    /// Longest forward pass any of its images was part of.
    pub inference: Duration,
    /// Admission to answer.
    pub total: Duration,
}

/// The answer to a [`PredictRequest`].
#[derive(Debug, Clone)]
pub struct PredictOutput {
    pub model: ModelId,
    /// One top-k list per image, in request order.
    pub predictions: Vec<Vec<ClassScore>>,
    pub timing: Timing,
    /// Sizes of the batches this request's images ran in, in image order.
    pub batch_sizes: Vec<usize>,
    /// True when the model serves explicitly configured random weights.
    pub random_weights: bool,
}

/// The engine behind the HTTP API.
pub struct InferenceService {
    models: Vec<ModelHandle>,
    metrics: Arc<Metrics>,
    /// Bounds concurrent decode/resize jobs to the configured CPU pool size.
    preprocess_permits: Arc<Semaphore>,
    decode_limits: DecodeLimits,
    max_images_per_request: usize,
    request_timeout: Duration,
    /// Set on SIGTERM: readiness fails so the load balancer stops routing here.
    draining: AtomicBool,
}

impl InferenceService {
    /// Creates every model's queue and starts its replica threads; models load
    /// concurrently in the background. Weights are resolved first (Hub files
    /// found in the cache or downloaded, release hashes checked), so a missing
    /// or wrong file fails here, at once.
    pub fn start(
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, Vec<JoinHandle<()>>), String> {
        let hub = HubSettings::from_config(&config.hub);
        let mut models = Vec::new();
        let mut threads = Vec::new();
        for model in &config.models {
            let id = ModelId::parse(&model.id)
                .ok_or_else(|| format!("unknown model id {:?}", model.id))?;
            let weights =
                pool::resolve_weights(id, &model.weights, &hub).map_err(|e| e.to_string())?;
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
                },
                Arc::new(observer),
            )
            .map_err(|e| format!("models[{}]: {e}", model.id))?;
            let state = Arc::new(ModelState::new(model.replicas));
            let spec = ReplicaSpec {
                id,
                weights,
                device: model.device,
                precision: model.dtype,
                fold_bn: model.fold_bn,
                channels_last: model.channels_last,
                random_seed: model.random_seed,
                max_batch_size: model.max_batch_size,
            };
            threads.extend(
                pool::spawn_replicas(&spec, model.replicas, &queue, &state, &metrics)
                    .map_err(|e| format!("cannot start replica threads: {e}"))?,
            );
            models.push(ModelHandle {
                id,
                config: model.clone(),
                queue,
                state,
            });
        }
        let service = Self {
            models,
            metrics,
            preprocess_permits: Arc::new(Semaphore::new(
                config.server.preprocess_thread_count().max(1),
            )),
            decode_limits: DecodeLimits {
                max_width: config.server.max_image_side,
                max_height: config.server.max_image_side,
                max_pixels: config.server.max_image_pixels,
            },
            max_images_per_request: config.server.max_images_per_request,
            request_timeout: config.server.request_timeout(),
            draining: AtomicBool::new(false),
        };
        Ok((service, threads))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn models(&self) -> &[ModelHandle] {
        &self.models
    }

    /// The served model with this id or alias.
    pub fn model(&self, name: &str) -> Result<&ModelHandle, InferError> {
        let id = ModelId::parse(name).ok_or_else(|| InferError::UnknownModel(name.to_string()))?;
        self.models
            .iter()
            .find(|handle| handle.id == id)
            .ok_or_else(|| InferError::UnknownModel(name.to_string()))
    }

    /// Every model is loaded and warmed, and the server is not draining.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.models.iter().all(|m| m.state.is_ready())
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

    /// Classifies the request's images: admission, preprocessing, batching, top-k.
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictOutput, InferError> {
        let started = Instant::now();
        let model = self.model(&request.model)?;
        let result = self.predict_on(model, request, started).await;
        self.count_rejection(model, &result);
        result
    }

    /// The full class probabilities of the request's images (encoded or
    /// client-normalized): admission, preprocessing, batching, as `predict`.
    pub async fn classify(&self, request: ClassifyRequest) -> Result<ClassifyOutput, InferError> {
        let started = Instant::now();
        let model = self.model(&request.model)?;
        let result = self
            .classify_on(model, request.images, request.timeout, started)
            .await;
        self.count_rejection(model, &result);
        result
    }

    fn count_rejection<T>(&self, model: &ModelHandle, result: &Result<T, InferError>) {
        if let Err(error) = result {
            if let Some(reason) = error.rejection_reason() {
                self.metrics.reject(model.id.name(), reason);
            }
        }
    }

    async fn predict_on(
        &self,
        model: &ModelHandle,
        request: PredictRequest,
        started: Instant,
    ) -> Result<PredictOutput, InferError> {
        let num_classes = model.id.pretrained_cfg().num_classes;
        if request.top_k < 1 || request.top_k > num_classes as i64 {
            return Err(InferError::InvalidTopK {
                value: request.top_k,
                max: num_classes,
            });
        }
        let images = RequestImages::Encoded(request.images);
        let output = self
            .classify_on(model, images, request.timeout, started)
            .await?;
        let top = usize::try_from(request.top_k).unwrap_or(1);
        Ok(PredictOutput {
            model: output.model,
            predictions: output
                .probabilities
                .iter()
                .map(|probabilities| top_k(probabilities, top))
                .collect(),
            timing: output.timing,
            batch_sizes: output.batch_sizes,
            random_weights: output.random_weights,
        })
    }

    async fn classify_on(
        &self,
        model: &ModelHandle,
        images: RequestImages,
        timeout: Option<Duration>,
        started: Instant,
    ) -> Result<ClassifyOutput, InferError> {
        let name = model.id.name();
        match images.len() {
            0 => return Err(InferError::NoImages),
            count if count > self.max_images_per_request => {
                return Err(InferError::TooManyImages {
                    count,
                    limit: self.max_images_per_request,
                })
            }
            _ => {}
        }
        if model.queue.is_closed() {
            return Err(InferError::ShuttingDown);
        }
        if !model.state.is_ready() {
            return Err(InferError::NotReady(name));
        }
        // Shed at once when the queue is already full: decoding images that
        // would then be refused is the work an overloaded server cannot spare.
        model.queue.check_room(images.len()).map_err(submit_error)?;
        // From here until they are queued (or the request fails), the
        // replicas know these images are coming and may wait for them.
        let announcement = model.queue.announce(images.len());
        let _in_flight = self.metrics.track_in_flight(name);
        let timeout = timeout.unwrap_or(self.request_timeout);
        let deadline = started + timeout;

        let decoded = matches!(images, RequestImages::Encoded(_));
        let inputs = match images {
            RequestImages::Encoded(encoded) => {
                let crops = tokio::time::timeout_at(
                    deadline.into(),
                    preprocess_all(
                        encoded,
                        model.transform_spec(),
                        &self.preprocess_permits,
                        self.decode_limits,
                    ),
                )
                .await
                .map_err(|_| InferError::DeadlineExceeded)??;
                crops.into_iter().map(ModelInput::Crop).collect()
            }
            RequestImages::Normalized(normalized) => {
                check_normalized(normalized, model.id.pretrained_cfg().input_size)?
            }
        };
        let preprocess = started.elapsed();
        if decoded {
            // Only real decode + resize work goes into this histogram.
            self.metrics
                .preprocess_duration
                .with_label_values(&[name])
                .observe(preprocess.as_secs_f64());
        }

        let pending = model
            .queue
            .try_submit_announced(announcement, inputs, Some(deadline))
            .map_err(submit_error)?;
        // Dropping `pending` on timeout (or when the client goes away and this
        // future is dropped) cancels the queued images before they cost compute.
        let outputs = tokio::time::timeout_at(deadline.into(), pending.wait())
            .await
            .map_err(|_| InferError::DeadlineExceeded)?;

        let mut timing = Timing {
            preprocess,
            ..Timing::default()
        };
        let mut probabilities = Vec::with_capacity(outputs.len());
        let mut batch_sizes = Vec::with_capacity(outputs.len());
        for output in outputs {
            let output = output.map_err(|error| match error {
                BatchError::DeadlineExceeded => InferError::DeadlineExceeded,
                BatchError::Aborted => InferError::ShuttingDown,
                other => InferError::Internal(format!("{name}: {other}")),
            })?;
            timing.queue = timing.queue.max(output.queue_wait);
            timing.inference = timing.inference.max(output.inference_time);
            batch_sizes.push(output.batch_size);
            probabilities.push(output.value);
        }
        timing.total = started.elapsed();
        self.metrics
            .request_duration
            .with_label_values(&[name])
            .observe(timing.total.as_secs_f64());
        Ok(ClassifyOutput {
            model: model.id,
            probabilities,
            timing,
            batch_sizes,
            random_weights: model.random_weights(),
        })
    }
}

/// The facade's error for a queue refusal.
fn submit_error(error: SubmitError) -> InferError {
    match error {
        SubmitError::QueueFull {
            depth,
            capacity,
            retry_after,
        } => InferError::QueueFull {
            depth,
            capacity,
            retry_after,
        },
        SubmitError::Closed => InferError::ShuttingDown,
        SubmitError::TooLarge { items, capacity } => InferError::TooManyImages {
            count: items,
            limit: capacity,
        },
    }
}
