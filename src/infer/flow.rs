//! The request flow through the facade: admission → preprocess on the
//! bounded CPU pool → the model's batch queue → labelled top-k (V1) or full
//! probabilities (KServe V2), with where the time went.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::admission::Admitted;
use super::error::InferError;
use super::images::{
    check_normalized, collect_decodes, image_pixels, ClassifyOutput, ClassifyRequest, RequestImages,
};
use super::service::{InferenceService, ModelHandle};
use super::topk::{top_k, ClassScore};
use crate::batching::{BatchError, SubmitError};
use crate::metrics::Task;
use crate::model::ModelId;
use crate::pool::{ImageJob, ModelInput};

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
    /// Who sent it (`[server] client_id_header`), for sharing decode work
    /// between clients; `None` = this request gets a share of its own.
    pub client: Option<String>,
}

/// What every request brings besides its images: its deadline, who sent
/// it, when it arrived, and whether it wants the images' features.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'a> {
    pub(super) timeout: Option<Duration>,
    pub(super) client: Option<&'a str>,
    pub(super) started: Instant,
    /// Ask the replica for the pooled features too (embed, V2 `features`).
    pub(super) features: bool,
}

/// Where one request's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// Decode and transform of all images (they run in parallel).
    pub preprocess: Duration,
    /// Longest wait of any of its images in the batch queue.
    pub batch_wait: Duration,
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

impl InferenceService {
    /// Classifies the request's images: admission, preprocessing, batching, top-k.
    #[tracing::instrument(name = "predict", skip_all, fields(model = %request.model, images = request.images.len()))]
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictOutput, InferError> {
        let started = Instant::now();
        let model = self.model(&request.model)?;
        let result = self.predict_on(model, request, started).await;
        self.count_rejection(model, &result);
        result
    }

    /// The full class probabilities of the request's images (encoded or
    /// client-normalized): admission, preprocessing, batching, as `predict`.
    #[tracing::instrument(name = "classify", skip_all, fields(model = %request.model, images = request.images.len()))]
    pub async fn classify(&self, request: ClassifyRequest) -> Result<ClassifyOutput, InferError> {
        let started = Instant::now();
        let model = self.model(&request.model)?;
        let call = Call {
            timeout: request.timeout,
            client: request.client.as_deref(),
            started,
            features: request.features,
        };
        let result = self.classify_on(model, request.images, call).await;
        self.count_rejection(model, &result);
        result
    }

    pub(super) fn count_rejection<T>(&self, model: &ModelHandle, result: &Result<T, InferError>) {
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
        let call = Call {
            timeout: request.timeout,
            client: request.client.as_deref(),
            started,
            features: false,
        };
        let output = self.classify_on(model, images, call).await?;
        let top = usize::try_from(request.top_k).unwrap_or(1);
        Ok(PredictOutput {
            model: output.model,
            predictions: output
                .probabilities
                .iter()
                .map(|probabilities| top_k(probabilities, top, output.model))
                .collect(),
            timing: output.timing,
            batch_sizes: output.batch_sizes,
            random_weights: output.random_weights,
        })
    }

    pub(super) async fn classify_on(
        &self,
        model: &ModelHandle,
        images: RequestImages,
        call: Call<'_>,
    ) -> Result<ClassifyOutput, InferError> {
        let Call {
            timeout,
            client,
            started,
            features: wants_features,
        } = call;
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
        model
            .queue
            .check_room(images.len())
            .map_err(|error| submit_error(error, name))?;
        let timeout = timeout.unwrap_or(self.request_timeout);
        let deadline = started + timeout;
        let pixels = match &images {
            RequestImages::Encoded(encoded) => image_pixels(encoded, &self.decode_limits),
            RequestImages::Normalized(_) => Vec::new(),
        };
        // Likewise when the work ahead cannot be done in time: a 504 after
        // decoding would cost the same work and tell the client less.
        let (announcement, admitted, _long_shot) =
            self.admit(model, images, &pixels, client, timeout, deadline)?;
        let _in_flight = self.metrics.track_in_flight(name);
        let _counted = self.concurrency.enter(Instant::now());

        let decoded = matches!(admitted, Admitted::Decoding(_));
        let inputs: Vec<ModelInput> = match admitted {
            Admitted::Decoding(mut job) => {
                let crops = tokio::time::timeout_at(deadline.into(), collect_decodes(&mut job))
                    .await
                    .map_err(|_| InferError::DeadlineExceeded)??;
                crops.into_iter().map(ModelInput::Crop).collect()
            }
            Admitted::Normalized(normalized) => {
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
            .try_submit_announced(
                announcement,
                inputs
                    .into_iter()
                    .map(|input| ImageJob::new(input, wants_features))
                    .collect(),
                Some(deadline),
            )
            .map_err(|error| submit_error(error, name))?;
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
        let mut features = Vec::with_capacity(outputs.len());
        let mut batch_sizes = Vec::with_capacity(outputs.len());
        for output in outputs {
            let output = output.map_err(|error| match error {
                BatchError::DeadlineExceeded => InferError::DeadlineExceeded,
                BatchError::Aborted => InferError::ShuttingDown,
                other => InferError::Internal(format!("{name}: {other}")),
            })?;
            timing.batch_wait = timing.batch_wait.max(output.queue_wait);
            timing.inference = timing.inference.max(output.inference_time);
            batch_sizes.push(output.batch_size);
            probabilities.push(output.value.probabilities);
            features.extend(output.value.features);
        }
        timing.total = started.elapsed();
        let task = if wants_features {
            Task::Embed
        } else {
            Task::Predict
        };
        self.metrics
            .request_duration
            .with_label_values(&[name, task.as_label()])
            .observe(timing.total.as_secs_f64());
        if wants_features && features.len() != probabilities.len() {
            return Err(InferError::Internal(format!(
                "{name}: features missing from a replica's answer (this is a bug)"
            )));
        }
        Ok(ClassifyOutput {
            model: model.id,
            probabilities,
            features: wants_features.then_some(features),
            timing,
            batch_sizes,
            random_weights: model.random_weights(),
        })
    }
}

/// The facade's error for a queue refusal by `model`'s queue.
fn submit_error(error: SubmitError, model: &'static str) -> InferError {
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
        // The last replica was lost after the readiness check above.
        SubmitError::Abandoned => InferError::NotReady(model),
        SubmitError::TooLarge { items, capacity } => InferError::TooManyImages {
            count: items,
            limit: capacity,
        },
    }
}
