//! One replica: an OS thread that owns a model on its device, warms every
//! batch shape, then serves batches from its model's queue until it closes.
//!
//! A thread per replica because libtorch tensors are `Send` but not `Sync`
//! and grad mode is per thread: the thread stays under `no_grad` for life.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::buckets::{batch_buckets, plan_chunks};
use super::{ImageQueue, ModelState, ReplicaSpec};
use crate::config::WeightsSource;
use crate::metrics::Metrics;
use crate::model::{resolve_device, Classifier, LoadOptions, ModelError};
use crate::preprocess::PreparedImage;

/// Runs one replica to completion: load, warm, serve.
pub(super) fn run_replica(
    spec: ReplicaSpec,
    queue: ImageQueue,
    state: Arc<ModelState>,
    metrics: Arc<Metrics>,
) {
    let _no_grad = tch::no_grad_guard();
    let name = spec.id.name();
    let started = Instant::now();
    let classifier = match load(&spec) {
        Ok(classifier) => classifier,
        Err(error) => {
            let message = format!("{name}: cannot load weights: {error}");
            tracing::error!(model = name, %error, "model load failed");
            state.fail(message);
            return;
        }
    };
    metrics
        .model_load_seconds
        .with_label_values(&[name])
        .set(started.elapsed().as_secs_f64());

    let buckets = batch_buckets(spec.max_batch_size);
    let pad_to_bucket = classifier.device().is_cuda();
    let warm_started = Instant::now();
    if let Err(error) = warm_up(&classifier, &buckets) {
        tracing::error!(model = name, %error, "warmup failed");
        state.fail(format!("{name}: warmup failed: {error}"));
        return;
    }
    metrics
        .model_warmup_seconds
        .with_label_values(&[name])
        .set(warm_started.elapsed().as_secs_f64());
    state.replica_ready(format!("{:?}", classifier.device()).to_lowercase());
    if state.is_ready() {
        metrics.model_ready.with_label_values(&[name]).set(1);
    }
    tracing::info!(model = name, device = ?classifier.device(), ?buckets, "replica ready");

    while let Some(batch) = queue.next_batch() {
        batch.process(|images| {
            // A panic inside libtorch or our code fails this batch only; the
            // replica keeps serving.
            catch_unwind(AssertUnwindSafe(|| {
                run_batch(&classifier, &images, &buckets, pad_to_bucket)
            }))
            .unwrap_or_else(|_| Err("replica panicked while running the batch".to_string()))
        });
    }
    tracing::debug!(model = name, "replica stopped: queue closed");
}

fn load(spec: &ReplicaSpec) -> Result<Classifier, ModelError> {
    let options = LoadOptions {
        device: resolve_device(spec.device),
        precision: spec.precision,
        fold_bn: spec.fold_bn,
    };
    match &spec.weights {
        WeightsSource::File(path) => Classifier::load_file(spec.id, path, options),
        WeightsSource::Random => Classifier::random(spec.id, spec.random_seed, options),
    }
}

/// Runs every bucket shape once, so no request pays for a first-time shape.
fn warm_up(classifier: &Classifier, buckets: &[usize]) -> Result<(), ModelError> {
    let blank = vec![0u8; classifier.input_len()];
    for &shape in buckets {
        let crops = vec![blank.as_slice(); shape];
        classifier.classify(&crops)?;
    }
    Ok(())
}

/// Classifies `images` using only warmed shapes (split on CPU, padded on GPU).
fn run_batch(
    classifier: &Classifier,
    images: &[PreparedImage],
    buckets: &[usize],
    pad_to_bucket: bool,
) -> Result<Vec<Vec<f32>>, String> {
    let blank = vec![0u8; classifier.input_len()];
    let mut results = Vec::with_capacity(images.len());
    let mut next = 0;
    for chunk in plan_chunks(images.len(), buckets, pad_to_bucket) {
        let mut crops: Vec<&[u8]> = images[next..next + chunk.images]
            .iter()
            .map(|image| image.rgb.as_slice())
            .collect();
        crops.resize(chunk.shape, blank.as_slice());
        let mut probabilities = classifier.classify(&crops).map_err(|e| e.to_string())?;
        probabilities.truncate(chunk.images);
        results.extend(probabilities);
        next += chunk.images;
    }
    Ok(results)
}
