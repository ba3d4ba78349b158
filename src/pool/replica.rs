//! One replica: an OS thread that owns a model on its device, warms the
//! batch shapes its device needs, then serves batches from its model's queue until it closes.
//!
//! A thread per replica because libtorch tensors are `Send` but not `Sync`
//! and grad mode is per thread: the thread stays under `no_grad` for life.
//! On a CPU with several intra-op threads, the replica's libtorch work itself
//! runs on the one shared CPU thread ([`Runner`]); the replica thread keeps
//! the queue loop.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::buckets::{batch_buckets, plan_chunks};
use super::cpu_thread::Runner;
use super::device_turn::take_turn;
use super::{ImageJob, ImageQueue, ImageResult, ModelState, ReplicaSpec};
use crate::batching::Batch;
use crate::metrics::Metrics;
use crate::model::{engine_thread_guard, Engine, ImageInput, ModelError, Outputs};

/// Runs one replica to completion: load, warm, serve.
pub(super) fn run_replica(
    spec: ReplicaSpec,
    queue: ImageQueue,
    state: Arc<ModelState>,
    metrics: Arc<Metrics>,
) {
    let name = spec.model.name();
    contain_panic(name, &queue, &state, &metrics, || {
        serve(&spec, &queue, &state, &metrics);
    });
}

/// Runs a replica's `body`; if it panics, the replica is [lost](replica_lost).
fn contain_panic(
    name: &str,
    queue: &ImageQueue,
    state: &ModelState,
    metrics: &Metrics,
    body: impl FnOnce(),
) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
        let reason = format!("its thread panicked: {}", panic_message(panic.as_ref()));
        replica_lost(name, &reason, queue, state, metrics);
    }
}

/// Load, warm, then serve batches until the queue closes. Errors while
/// loading or warming fail the model's start-up; a panic in a batch fails
/// that batch; any other panic ends up in [`replica_lost`].
fn serve(spec: &ReplicaSpec, queue: &ImageQueue, state: &ModelState, metrics: &Metrics) {
    let _engine_thread = engine_thread_guard();
    let name = spec.model.name();
    let started = Instant::now();
    let runner = Runner::for_device(spec.device);
    // Reading the weights needs neither the device nor the engine thread, so
    // it runs here, before the turn, at the same time as other models' reads.
    let read = (spec.loader)(spec.device);
    // Held from the build to the end of warm-up (see `device_turn`).
    let device_turn = take_turn(spec.device);
    let loaded = read.and_then(|build| runner.run(build));
    let engine = match loaded {
        Ok(engine) => engine,
        Err(error) => {
            let message = format!("{name}: cannot load weights: {error}");
            tracing::error!(model = name, %error, "model load failed");
            state.fail(message);
            return;
        }
    };
    let load_time = started.elapsed();
    let phases = engine.load_phases();
    for (phase, took) in phases.labelled() {
        metrics
            .model_load_seconds
            .with_label_values(&[name, phase])
            .set(took.as_secs_f64());
    }

    let buckets = batch_buckets(spec.max_batch_size);
    let pad_to_bucket = engine.pads_to_warm_shapes();
    let warm_shapes = spec.warmup.shapes(&buckets, pad_to_bucket);
    let warm_started = Instant::now();
    let (engine, warmed) = {
        let shapes = warm_shapes.clone();
        runner.run(move || {
            let warmed = warm_up(engine.as_ref(), &shapes);
            (engine, warmed)
        })
    };
    if let Err(error) = warmed {
        tracing::error!(model = name, %error, "warmup failed");
        state.fail(format!("{name}: warmup failed: {error}"));
        return;
    }
    let warm_time = warm_started.elapsed();
    drop(device_turn);
    metrics
        .model_warmup_seconds
        .with_label_values(&[name])
        .set(warm_time.as_secs_f64());
    metrics
        .model_load_seconds
        .with_label_values(&[name, "warm"])
        .set(warm_time.as_secs_f64());
    let device = engine.device_label();
    state.warmed(warm_shapes.clone());
    state.replica_ready(device.clone());
    if state.is_ready() {
        metrics.model_ready.with_label_values(&[name]).set(1);
    }
    tracing::info!(
        model = name,
        device,
        warmup = %spec.warmup,
        warmed_batch_sizes = ?warm_shapes,
        load_s = load_time.as_secs_f64(),
        read_s = phases.read.as_secs_f64(),
        fold_s = phases.fold.as_secs_f64(),
        build_s = phases.build.as_secs_f64(),
        warm_s = warm_time.as_secs_f64(),
        "replica ready"
    );

    // Moved into each job and handed back with its result.
    let mut engine = Some(engine);
    while let Some(batch) = queue.next_batch() {
        let span = batch_span(name, &batch);
        let mut broken = None;
        batch.process(|images| {
            let model = engine.take().expect("the engine is back after every batch");
            let buckets = buckets.clone();
            let (model, outputs) = runner.run(move || {
                let _batch = span.enter();
                // A panic inside the engine or our code fails this batch
                // only; the replica keeps serving.
                let outputs = catch_unwind(AssertUnwindSafe(|| {
                    run_batch(model.as_ref(), &images, &buckets, pad_to_bucket)
                }))
                .unwrap_or_else(|_| Err("replica panicked while running the batch".to_string()));
                (model, outputs)
            });
            engine = Some(model);
            if let Err(error) = &outputs {
                if is_sticky_device_error(error) {
                    broken = Some(error.clone());
                }
            }
            outputs
        });
        if let Some(error) = broken {
            // Every later batch on this device would fail the same way.
            replica_lost(name, &error, queue, state, metrics);
            return;
        }
    }
    tracing::debug!(model = name, "replica stopped: queue closed");
}

/// The span a batch runs in. It follows from the span of every request whose
/// images it holds, so what is logged while it runs (an out-of-memory split,
/// a failure) can be traced to those requests' ids.
fn batch_span(model: &'static str, batch: &Batch<ImageJob, ImageResult>) -> tracing::Span {
    let span = tracing::info_span!("batch", model, size = batch.len());
    for request in batch.item_spans() {
        span.follows_from(request);
    }
    span
}

/// A replica thread that panicked outside a batch (the per-batch guard in
/// [`serve`] catches those), or whose device is broken for good (see
/// [`is_sticky_device_error`]), is gone for good. The batch it held, if any, was
/// answered `WorkerLost` when the unwind dropped it. From now on the model
/// reports not-ready: readiness fails so the load balancer routes elsewhere,
/// and new requests get 503 `model_not_ready` instead of queueing for a
/// replica that will not come. When it was the last replica serving, the
/// queue is abandoned: what is still queued is answered at once (`Aborted`)
/// instead of at its deadline, and a request that passed the readiness check
/// just before is refused at submit instead of waiting out its deadline.
/// Before readiness, the failure ends start-up like a load error (exit 1).
fn replica_lost(
    name: &str,
    reason: &str,
    queue: &ImageQueue,
    state: &ModelState,
    metrics: &Metrics,
) {
    tracing::error!(model = name, reason, "replica lost; model not ready");
    let serving = state.replica_lost(format!("{name}: a replica was lost: {reason}"));
    metrics.model_ready.with_label_values(&[name]).set(0);
    if serving == 0 {
        let aborted = queue.abandon();
        tracing::error!(
            model = name,
            aborted,
            "no replica left; queued images aborted"
        );
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Runs each of `shapes` once: on a GPU every bucket, so no request pays
/// for a first-time shape; on a CPU one batch-1 pass that proves the model
/// runs (see [`WarmupMode`](crate::config::WarmupMode)).
fn warm_up(engine: &dyn Engine, shapes: &[usize]) -> Result<(), ModelError> {
    let crop = warm_up_crop(engine.input_len());
    for &shape in shapes {
        let crops = vec![ImageInput::Crop(&crop); shape];
        engine.classify(&crops)?;
    }
    Ok(())
}

/// A crop with varied pixels for warm-up. All-zero input would warm the
/// kernels on the one value that normalizes to a constant per channel, and
/// after the first ReLU to zeros: the algorithms benchmarked and the paths
/// taken should be those of real images.
fn warm_up_crop(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 37 + (i / 672) * 11) % 256) as u8)
        .collect()
}

/// Runs `jobs` (crops and client-normalized images, possibly mixed) in one
/// forward pass per chunk (on a GPU padded with blank crops to a warmed
/// shape; on a CPU as it is). Features are computed for a chunk only when
/// one of its jobs wants them, and handed only to those jobs.
fn run_batch(
    engine: &dyn Engine,
    jobs: &[ImageJob],
    buckets: &[usize],
    pad_to_bucket: bool,
) -> Result<Vec<ImageResult>, String> {
    let blank = vec![0u8; engine.input_len()];
    let mut forward = |range: Range<usize>, shape: usize| {
        let jobs = &jobs[range];
        let mut inputs: Vec<ImageInput<'_>> =
            jobs.iter().map(|job| job.input.as_image_input()).collect();
        inputs.resize(shape, ImageInput::Crop(&blank));
        let outputs = Outputs {
            features: jobs.iter().any(|job| job.features),
        };
        let forward = engine
            .forward(&inputs, outputs)
            .map_err(|e| e.to_string())?;
        let mut features = forward.features.map(Vec::into_iter);
        Ok(jobs
            .iter()
            .zip(forward.probabilities)
            .map(|(job, probabilities)| {
                let own = features.as_mut().and_then(Iterator::next);
                ImageResult {
                    probabilities,
                    features: own.filter(|_| job.features),
                }
            })
            .collect())
    };
    run_in_chunks(0..jobs.len(), buckets, pad_to_bucket, &mut forward)
}

/// Runs the images `range` through `forward(images, shape)` in the chunks
/// [`plan_chunks`] plans, results in image order.
///
/// A chunk that fails for lack of memory is halved, and each half planned
/// and run again (down to single images), before anything fails: a batch
/// that does not fit at its shape usually fits at smaller ones, since what
/// else holds device memory (another model, the allocator's fragments)
/// changes from moment to moment, and failing every request of a batch for
/// one allocation would turn a transient squeeze into errors. Halves use the
/// smaller warmed shapes. Any other error fails the batch at once: retrying
/// a deterministic failure would only multiply its cost.
fn run_in_chunks<R, F>(
    range: Range<usize>,
    buckets: &[usize],
    pad: bool,
    forward: &mut F,
) -> Result<Vec<R>, String>
where
    F: FnMut(Range<usize>, usize) -> Result<Vec<R>, String>,
{
    let mut results = Vec::with_capacity(range.len());
    let mut next = range.start;
    for chunk in plan_chunks(range.len(), buckets, pad) {
        let images = next..next + chunk.images;
        next = images.end;
        match forward(images.clone(), chunk.shape) {
            Ok(outputs) => results.extend(outputs),
            Err(error) if chunk.images > 1 && is_out_of_memory(&error) => {
                tracing::warn!(
                    images = chunk.images,
                    shape = chunk.shape,
                    %error,
                    "out of memory: retrying the chunk in halves"
                );
                let middle = images.start + chunk.images / 2;
                results.extend(run_in_chunks(images.start..middle, buckets, pad, forward)?);
                results.extend(run_in_chunks(middle..images.end, buckets, pad, forward)?);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(results)
}

/// Whether a forward-pass error is an allocation failure, by libtorch's
/// wording: `CUDA out of memory. Tried to allocate …` (`c10::OutOfMemoryError`,
/// torch's `OutOfMemoryError`; HIP and MPS say "out of memory" too) and the
/// CPU allocator's `DefaultCPUAllocator: can't allocate memory`.
fn is_out_of_memory(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    [
        "out of memory",
        "outofmemoryerror",
        "can't allocate memory",
        // cuBLAS and cuDNN workspaces: CUBLAS_STATUS_ALLOC_FAILED,
        // CUDNN_STATUS_ALLOC_FAILED (a smaller batch needs a smaller one).
        "status_alloc_failed",
    ]
    .iter()
    .any(|needle| error.contains(needle))
}

/// Whether a forward-pass error leaves the CUDA context broken: after an
/// illegal address, a device-side assert or a launch failure, every later
/// kernel on that context fails too ("sticky" errors), and only a new
/// process recovers. The replica is then lost, so liveness fails and the
/// orchestrator restarts the pod instead of it swallowing traffic.
fn is_sticky_device_error(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    [
        "illegal memory access",
        "illegal address",
        "device-side assert",
        "unspecified launch failure",
        "illegal instruction",
        "misaligned address",
        "uncorrectable ecc error",
        "hardware stack error",
    ]
    .iter()
    .any(|needle| error.contains(needle))
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
