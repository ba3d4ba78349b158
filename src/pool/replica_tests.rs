//! The replica's batch splitting, span links and lost-thread handling.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::batching::{BatchError, BatcherConfig, NoopObserver, SubmitError};
use crate::model::{Forward, Outputs};
use crate::pool::{batch_buckets, ModelInput};

const OOM: &str = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total)";

/// Every `(images, shape)` a fake forward pass was called with.
type Calls = Vec<(Range<usize>, usize)>;

/// Runs `count` images through [`run_in_chunks`] with a fake forward pass
/// that runs out of memory for shapes above `fits` and otherwise returns
/// each image's index; gives the results and every call made.
fn run_fake(
    count: usize,
    max_batch: usize,
    pad: bool,
    fits: usize,
) -> (Result<Vec<usize>, String>, Calls) {
    let mut calls = Vec::new();
    let mut forward = |images: Range<usize>, shape: usize| {
        calls.push((images.clone(), shape));
        if shape > fits {
            Err(OOM.to_owned())
        } else {
            Ok(images.collect())
        }
    };
    let result = run_in_chunks(0..count, &batch_buckets(max_batch), pad, &mut forward);
    (result, calls)
}

#[test]
fn an_oom_batch_is_halved_until_it_fits_and_answers_in_order() {
    let buckets = batch_buckets(8);
    for pad in [false, true] {
        for count in 1..=8 {
            let (result, calls) = run_fake(count, 8, pad, 2);
            assert_eq!(
                result,
                Ok((0..count).collect()),
                "{count} images, pad {pad}"
            );
            for (images, shape) in &calls {
                if pad {
                    assert!(buckets.contains(shape), "unwarmed shape {shape}");
                    assert!(images.len() <= *shape);
                } else {
                    assert_eq!(images.len(), *shape, "a CPU chunk is never padded");
                }
            }
        }
    }
    let (_, calls) = run_fake(8, 8, false, 2);
    let shapes: Vec<usize> = calls.iter().map(|(_, shape)| *shape).collect();
    assert_eq!(shapes, [8, 4, 2, 2, 4, 2, 2]);
    let (_, calls) = run_fake(7, 8, false, 2);
    let shapes: Vec<usize> = calls.iter().map(|(_, shape)| *shape).collect();
    assert_eq!(shapes, [7, 3, 1, 2, 4, 2, 2]);
}

#[test]
fn a_batch_that_fits_runs_once() {
    let (result, calls) = run_fake(8, 8, true, 8);
    assert_eq!(result, Ok((0..8).collect()));
    assert_eq!(calls, [(0..8, 8)]);
}

#[test]
fn oom_on_a_single_image_fails_the_batch_after_the_splits() {
    let (result, calls) = run_fake(4, 4, false, 0);
    assert_eq!(result, Err(OOM.to_owned()));
    assert_eq!(calls, [(0..4, 4), (0..2, 2), (0..1, 1)]);
}

#[test]
fn any_other_error_fails_the_batch_without_a_retry() {
    let mut calls = 0;
    let mut forward = |_: Range<usize>, _: usize| -> Result<Vec<usize>, String> {
        calls += 1;
        Err("shape mismatch in conv2d".to_owned())
    };
    let result = run_in_chunks(0..8, &batch_buckets(8), true, &mut forward);
    assert_eq!(result, Err("shape mismatch in conv2d".to_owned()));
    assert_eq!(calls, 1);
}

#[test]
fn warm_up_crops_vary_like_an_image() {
    let crop = warm_up_crop(224 * 224 * 3);
    assert_eq!(crop.len(), 224 * 224 * 3);
    let distinct: std::collections::HashSet<u8> = crop.iter().copied().collect();
    assert!(distinct.len() > 200, "{} values", distinct.len());
}

#[test]
fn sticky_cuda_errors_are_told_from_ordinary_failures() {
    for sticky in [
        "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously reported",
        "CUDA error: device-side assert triggered",
        "CUDA error: unspecified launch failure",
        "CUDA error: misaligned address",
        "CUDA error: an illegal instruction was encountered",
    ] {
        assert!(is_sticky_device_error(sticky), "{sticky}");
        assert!(!is_out_of_memory(sticky), "{sticky}");
    }
    for ordinary in [
        OOM,
        "Expected 4-dimensional input for conv2d",
        "shape mismatch",
    ] {
        assert!(!is_sticky_device_error(ordinary), "{ordinary}");
    }
}

/// Warms up fine, then fails every batch as a broken CUDA context does.
struct BrokenDevice;

impl Engine for BrokenDevice {
    fn device_label(&self) -> String {
        "cuda:0".to_owned()
    }
    fn pads_to_warm_shapes(&self) -> bool {
        false
    }
    fn input_len(&self) -> usize {
        1
    }
    fn forward(&self, images: &[ImageInput<'_>], _outputs: Outputs) -> Result<Forward, ModelError> {
        match images[0] {
            ImageInput::Crop(_) => Ok(Forward {
                probabilities: vec![vec![1.0]; images.len()],
                features: None,
            }),
            ImageInput::Normalized(_) => Err(ModelError::Engine(
                "CUDA error: an illegal memory access was encountered".to_owned(),
            )),
        }
    }
}

#[tokio::test]
async fn a_sticky_device_error_loses_the_replica_so_liveness_can_fail() {
    let config = BatcherConfig {
        max_batch_size: 1,
        max_batch_delay: Duration::ZERO,
        queue_capacity: 8,
        replicas: 1,
        adaptive_window: false,
        max_pass_time: None,
    };
    let queue = ImageQueue::new(config, Arc::new(NoopObserver)).unwrap();
    let state = Arc::new(ModelState::new(1));
    let metrics = Arc::new(Metrics::new().unwrap());
    let spec = ReplicaSpec {
        model: crate::model::ModelId::SeResNeXt50_32x4d,
        device: crate::config::DeviceSpec::Cpu,
        max_batch_size: 1,
        warmup: crate::config::WarmupMode::Auto,
        loader: crate::pool::loader_from(|| Box::new(BrokenDevice)),
    };
    let threads = crate::pool::spawn_replicas(&spec, 1, &queue, &state, &metrics).unwrap();
    let one_image = || vec![ImageJob::new(ModelInput::Normalized(vec![0.0]), false)];
    let first = queue.try_submit(one_image(), None).unwrap();
    // Races the replica's failure: queued before it, it is aborted; after
    // it, it is refused. Either way it is answered, not left to time out.
    let second = queue.try_submit(one_image(), None);
    let first = first.wait().await;
    assert!(
        matches!(&first[0], Err(BatchError::InferenceFailed(e)) if e.contains("illegal memory access")),
        "{first:?}"
    );
    match second {
        Ok(pending) => assert_eq!(pending.wait().await, vec![Err(BatchError::Aborted)]),
        Err(error) => assert_eq!(error, SubmitError::Abandoned),
    }
    for thread in threads {
        thread.join().unwrap();
    }
    // The replica is gone: later requests are refused at once.
    let third = queue.try_submit(one_image(), None);
    assert_eq!(third.err(), Some(SubmitError::Abandoned));
    assert_eq!(state.lost_replicas(), 1);
    assert!(state.failure().unwrap().contains("illegal memory access"));
}

#[test]
fn out_of_memory_is_told_by_libtorch_wording() {
    assert!(is_out_of_memory(OOM));
    assert!(is_out_of_memory("torch.OutOfMemoryError: ..."));
    assert!(is_out_of_memory(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory"
    ));
    assert!(!is_out_of_memory("Expected 4-dimensional input for conv2d"));
    assert!(is_out_of_memory("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"));
    assert!(is_out_of_memory(
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"
    ));
}

/// Records `(span, span it follows from)` by name.
#[derive(Default, Clone)]
struct FollowsFrom(Arc<Mutex<Vec<(String, String)>>>);

impl<S> tracing_subscriber::Layer<S> for FollowsFrom
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = |id| {
            ctx.span(id)
                .map(|s| s.name().to_owned())
                .unwrap_or_default()
        };
        self.0.lock().unwrap().push((name(span), name(follows)));
    }
}

#[test]
fn a_batch_span_follows_from_the_span_of_every_request_it_serves() {
    use tracing_subscriber::layer::SubscriberExt;
    let links = FollowsFrom::default();
    let subscriber = tracing_subscriber::registry().with(links.clone());
    tracing::subscriber::with_default(subscriber, || {
        let config = BatcherConfig {
            max_batch_size: 4,
            max_batch_delay: Duration::ZERO,
            queue_capacity: 8,
            replicas: 1,
            adaptive_window: false,
            max_pass_time: None,
        };
        let queue = ImageQueue::new(config, Arc::new(NoopObserver)).unwrap();
        // Held, so the items stay wanted (a dropped handle cancels them).
        let mut pending = Vec::new();
        for request in ["first", "second"] {
            let span = tracing::info_span!("request", id = request);
            let _entered = span.enter();
            pending.push(
                queue
                    .try_submit(
                        vec![ImageJob::new(ModelInput::Normalized(vec![0.0]), false)],
                        None,
                    )
                    .unwrap(),
            );
        }
        let batch = queue.next_batch().expect("a batch of both items");
        assert_eq!(batch.len(), 2);
        let _span = batch_span("m", &batch);
    });
    let links = links.0.lock().unwrap().clone();
    assert_eq!(
        links,
        [
            ("batch".to_owned(), "request".to_owned()),
            ("batch".to_owned(), "request".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_panicking_replica_thread_leaves_its_model_not_ready_and_answers_the_queue() {
    let config = BatcherConfig {
        max_batch_size: 4,
        max_batch_delay: Duration::from_millis(1),
        queue_capacity: 8,
        replicas: 1,
        adaptive_window: false,
        max_pass_time: None,
    };
    let queue = ImageQueue::new(config, Arc::new(NoopObserver)).unwrap();
    let state = ModelState::new(1);
    state.replica_ready("cpu".into());
    let metrics = Metrics::new().unwrap();
    let queued = queue
        .try_submit(
            vec![ImageJob::new(ModelInput::Normalized(vec![0.0]), false)],
            None,
        )
        .unwrap();
    let ran = Mutex::new(false);
    contain_panic("m", &queue, &state, &metrics, || {
        *ran.lock().unwrap() = true;
        panic!("injected");
    });
    assert!(*ran.lock().unwrap());
    assert!(!state.is_ready());
    let failure = state.failure().unwrap();
    assert!(failure.contains("panicked: injected"), "{failure}");
    // No replica is left to serve it: answered now, not at its deadline.
    assert_eq!(queued.wait().await, vec![Err(BatchError::Aborted)]);
}

/// Records what each forward pass was asked for; every image's features
/// are its pass's index, so a test can see which pass served which job.
#[derive(Default)]
struct Recording {
    asked: Mutex<Vec<Outputs>>,
}

impl Engine for Recording {
    fn device_label(&self) -> String {
        "cpu".to_owned()
    }
    fn pads_to_warm_shapes(&self) -> bool {
        false
    }
    fn input_len(&self) -> usize {
        1
    }
    fn forward(&self, images: &[ImageInput<'_>], outputs: Outputs) -> Result<Forward, ModelError> {
        self.asked.lock().unwrap().push(outputs);
        let rows = |value: f32| vec![vec![value]; images.len()];
        Ok(Forward {
            probabilities: rows(1.0),
            features: outputs.features.then(|| rows(2.0)),
        })
    }
}

#[test]
fn features_are_computed_only_for_batches_that_want_them_and_go_only_to_those_jobs() {
    let engine = Recording::default();
    let job = |features| ImageJob::new(ModelInput::Normalized(vec![0.0]), features);
    let buckets = batch_buckets(4);

    let predict_only = run_batch(&engine, &[job(false), job(false)], &buckets, false).unwrap();
    assert!(predict_only.iter().all(|result| result.features.is_none()));
    assert_eq!(
        engine.asked.lock().unwrap().pop(),
        Some(Outputs::PROBABILITIES)
    );

    let mixed = run_batch(
        &engine,
        &[job(false), job(true), job(false)],
        &buckets,
        false,
    )
    .unwrap();
    assert_eq!(
        engine.asked.lock().unwrap().as_slice(),
        [Outputs::WITH_FEATURES]
    );
    let features: Vec<_> = mixed.iter().map(|result| result.features.clone()).collect();
    assert_eq!(features, [None, Some(vec![2.0]), None]);
    assert!(mixed.iter().all(|result| result.probabilities == [1.0]));
}
