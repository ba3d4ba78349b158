//! Served models without libtorch or weights, for tests of the facade and the
//! HTTP edge. A [`FakeEngine`] sits behind the real replica loop, queue and
//! facade, so only the network itself is replaced: whatever reaches it came
//! through decode, transform, admission and batching like a real request.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{InferenceService, ModelHandle};
use crate::batching::{BatchQueue, BatcherConfig, NoopObserver};
use crate::config::{ModelConfig, ServerConfig, WeightsSource};
use crate::metrics::Metrics;
use crate::model::{Engine, Forward, ImageInput, ModelError, ModelId, Outputs, FEATURE_DIM};
use crate::pool::{self, ModelState, ReplicaSpec};

/// Gives each image one class, computed from its pixels, probability 0.9;
/// the rest is spread evenly over the other classes.
pub(crate) struct FakeEngine {
    input_len: usize,
    classes: usize,
    /// When set, every forward pass waits until it is open, so a test can
    /// hold the replica while it arranges the model's queue.
    gate: Option<Arc<Gate>>,
}

impl FakeEngine {
    pub(crate) fn for_model(id: ModelId) -> Self {
        let cfg = id.pretrained_cfg();
        let side = cfg.input_size as usize;
        Self {
            input_len: side * side * 3,
            classes: cfg.num_classes,
            gate: None,
        }
    }
}

/// Holds fake forward passes while closed (see [`serve_gated`]).
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Open: the replicas' warm-up passes go through.
    fn new() -> Self {
        Self {
            open: Mutex::new(true),
            opened: Condvar::new(),
        }
    }

    fn close(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }

    /// Lets every forward pass through, now and from now on.
    pub(crate) fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = self
            .opened
            .wait_while(open, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The class the fake engine gives an image: a function of every value in
/// it, so a test can tell which image an answer belongs to.
pub(crate) fn fake_class(image: ImageInput<'_>, classes: usize) -> usize {
    let sum: u64 = match image {
        ImageInput::Crop(bytes) => bytes.iter().map(|&b| u64::from(b)).sum(),
        ImageInput::Normalized(values) => values.iter().map(|v| v.to_bits() as u64 % 7).sum(),
    };
    (sum % classes as u64) as usize
}

impl Engine for FakeEngine {
    fn device_label(&self) -> String {
        "cpu".to_owned()
    }

    fn pads_to_warm_shapes(&self) -> bool {
        false
    }

    fn input_len(&self) -> usize {
        self.input_len
    }

    fn forward(&self, images: &[ImageInput<'_>], outputs: Outputs) -> Result<Forward, ModelError> {
        if let Some(gate) = &self.gate {
            gate.pass();
        }
        let rest = 0.1 / (self.classes - 1) as f32;
        let probabilities = images
            .iter()
            .map(|image| {
                let mut probabilities = vec![rest; self.classes];
                probabilities[fake_class(*image, self.classes)] = 0.9;
                probabilities
            })
            .collect();
        let features = outputs.features.then(|| {
            images
                .iter()
                .map(|image| fake_features(fake_class(*image, self.classes)))
                .collect()
        });
        Ok(Forward {
            probabilities,
            features,
        })
    }
}

/// The features the fake engine gives an image of class `class`: 3 at
/// index `class`, 4 at the next, 0 elsewhere (norm 5), so a test can tell
/// raw from L2-normalized ones and which image they belong to.
pub(crate) fn fake_features(class: usize) -> Vec<f32> {
    let mut features = vec![0.0; FEATURE_DIM];
    features[class % FEATURE_DIM] = 3.0;
    features[(class + 1) % FEATURE_DIM] = 4.0;
    features
}

/// A facade over fake-engine models, each with one replica, ready.
pub(crate) struct Served {
    pub(crate) service: Arc<InferenceService>,
    states: Vec<Arc<ModelState>>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves `models` (catalog ids) on fake engines with the default server
/// limits, and waits until every replica is ready.
pub(crate) fn serve(models: &[&str]) -> Served {
    serve_with(models, &ServerConfig::default())
}

/// [`serve`] with these server limits.
pub(crate) fn serve_with(models: &[&str], server: &ServerConfig) -> Served {
    serve_behind(models, server, None)
}

/// [`serve_with`], every forward pass after warm-up held until the
/// returned gate opens.
pub(crate) fn serve_gated(models: &[&str], server: &ServerConfig) -> (Served, Arc<Gate>) {
    let gate = Arc::new(Gate::new());
    let served = serve_behind(models, server, Some(gate.clone()));
    gate.close();
    (served, gate)
}

fn serve_behind(models: &[&str], server: &ServerConfig, gate: Option<Arc<Gate>>) -> Served {
    let metrics = Arc::new(Metrics::new().expect("metrics registry"));
    let mut handles = Vec::new();
    let mut states = Vec::new();
    let mut threads = Vec::new();
    for name in models {
        let id = ModelId::parse(name).expect("a catalog model id");
        let config = ModelConfig {
            id: id.name().to_owned(),
            weights: WeightsSource::Random,
            max_batch_size: 4,
            max_batch_delay_ms: 1,
            replicas: 1,
            ..ModelConfig::default()
        };
        metrics.register_model(id.name());
        let queue = BatchQueue::new(
            BatcherConfig {
                max_batch_size: config.max_batch_size,
                max_batch_delay: config.max_batch_delay(),
                queue_capacity: config.queue_capacity,
                replicas: 1,
                adaptive_window: false,
                max_pass_time: None,
            },
            Arc::new(NoopObserver),
        )
        .expect("valid batcher config");
        let state = Arc::new(ModelState::new(1));
        let spec = ReplicaSpec {
            model: id,
            device: crate::config::DeviceSpec::Cpu,
            max_batch_size: config.max_batch_size,
            warmup: config.warmup,
            loader: {
                let gate = gate.clone();
                pool::loader_from(move || {
                    Box::new(FakeEngine {
                        gate: gate.clone(),
                        ..FakeEngine::for_model(id)
                    })
                })
            },
        };
        threads.extend(
            pool::spawn_replicas(&spec, 1, &queue, &state, &metrics).expect("spawn a replica"),
        );
        handles.push(ModelHandle::new(id, config, queue, state.clone()));
        states.push(state);
    }
    for state in &states {
        while !state.is_ready() {
            assert!(state.failure().is_none(), "{:?}", state.failure());
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Served {
        service: Arc::new(InferenceService::new(handles, server, metrics)),
        states,
        threads,
    }
}

impl Served {
    /// As if model `index`'s replica thread had died.
    pub(crate) fn lose_replica(&self, index: usize, reason: &str) {
        self.states[index].replica_lost(reason.to_owned());
    }

    /// Drains the queues and joins the replica threads.
    pub(crate) async fn stop(self) {
        self.service.drain(Duration::from_secs(1)).await;
        tokio::task::spawn_blocking(move || {
            for thread in self.threads {
                thread.join().expect("a replica thread panicked");
            }
        })
        .await
        .expect("joining replica threads");
    }
}
