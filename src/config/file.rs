//! The TOML configuration file: its types, their defaults and how it is read.
//!
//! Every table rejects unknown keys (a typo must fail loudly rather than
//! silently fall back to a default), and every key has a default so a partial
//! file works. `config/default.toml` spells out exactly [`Config::default`];
//! a unit test keeps the two from drifting.
//!
//! Parsing only checks types; [`Config::validate`](super::Config::validate)
//! checks values and cross-key rules.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::warmup::WarmupMode;
use super::{
    ApiKey, BatchWindow, DeviceSpec, EngineKind, LogFormat, OnnxRuntimeConfig, Precision,
    WeightsSource,
};

/// The whole service configuration: one HTTP server serving one or more models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, limits, thread pools and shutdown behaviour (`[server]`).
    #[serde(default)]
    pub server: ServerConfig,
    /// Where Hugging Face Hub weights are cached and whether the Hub may be
    /// asked at all (`[hub]`).
    #[serde(default)]
    pub hub: HubConfig,
    /// Settings of the ONNX Runtime engine (`[onnxruntime]`), for models
    /// that choose it.
    #[serde(default)]
    pub onnxruntime: OnnxRuntimeConfig,
    /// The models to serve (`[[models]]`); a file without any gets the
    /// default model so `[server]`-only files work.
    #[serde(default = "default_models")]
    pub models: Vec<ModelConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            hub: HubConfig::default(),
            onnxruntime: OnnxRuntimeConfig::default(),
            models: default_models(),
        }
    }
}

fn default_models() -> Vec<ModelConfig> {
    vec![ModelConfig::default()]
}

/// `[server]`: everything that is not specific to one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; `0.0.0.0` so the service is reachable in a container.
    pub host: String,
    /// Main HTTP port; 0 asks the OS for a free one (useful in tests).
    pub port: u16,
    /// 0 serves `/metrics` on the main port; otherwise a separate listener, so
    /// metrics can stay off the public network.
    pub metrics_port: u16,
    /// KServe V2 over gRPC (`inference.GRPCInferenceService`) on its own
    /// listener; 0 = off. gRPC is HTTP/2 with its own framing and status
    /// codes, so it gets a port of its own rather than sharing the API's.
    pub grpc_port: u16,
    /// Per-request deadline when the client sends none; past it the request
    /// is answered 504 and its queued images are skipped.
    pub request_timeout_ms: u64,
    /// Largest accepted request body; larger ones get 413 before decoding.
    pub max_body_bytes: usize,
    /// Most images in one request; more get 413. Bounds the work one client
    /// can enqueue with a single call.
    pub max_images_per_request: usize,
    /// Most pixels (width x height) one image may have, read from its header
    /// before any pixel buffer exists; more get 413. The real memory bound:
    /// a few hundred bytes of PNG can announce 100k x 100k pixels.
    pub max_image_pixels: u64,
    /// Longest side, in pixels, one image may have; longer get 413.
    pub max_image_side: u32,
    /// Time allowed to receive a whole request body, from the moment its
    /// headers arrived; past it the request gets 408 and the connection is
    /// closed, so a client trickling its upload cannot hold one open forever.
    pub body_read_timeout_ms: u64,
    /// Bearer token required on the inference and model routes; empty = no
    /// authentication. `SERESNEXT_API_KEY` overrides it. Never logged.
    pub api_key: ApiKey,
    /// Origins (`https://app.example.com`) allowed to call the API from a
    /// browser; empty = no CORS headers at all, so browsers refuse cross-origin calls.
    pub cors_allow_origins: Vec<String>,
    /// Serve the pages a person opens in a browser: the try-it page (`/`),
    /// the API reference (`/docs`), `/openapi.yaml` and their assets under
    /// `/ui/`. Off, those paths answer 404, for deployments that want no
    /// HTML on the API port.
    pub ui: bool,
    /// Size of the bounded CPU pool for decode/resize; 0 = number of cores.
    /// Kept separate from the async runtime so decoding never stalls I/O.
    pub preprocess_threads: usize,
    /// Most decoded pixels in flight at once across all requests (every
    /// image counted by its header's width x height while it decodes); an
    /// image that does not fit waits its turn. Bounds decode memory (about 3
    /// bytes a pixel, more for 16-bit PNG) whatever the upload sizes. 0 =
    /// `preprocess_threads` x 2 x `max_image_pixels`. One image larger than
    /// the budget (within the per-image limits) still runs, alone.
    pub max_inflight_pixels: u64,
    /// libtorch intra-op threads; 0 leaves libtorch's own choice.
    pub intra_op_threads: usize,
    /// After SIGTERM, readiness fails but requests are still served this long,
    /// so a load balancer stops routing here before the listener closes.
    pub shutdown_grace_ms: u64,
    /// Then accepted requests get at most this long to finish before exit.
    pub drain_timeout_ms: u64,
    /// Log line format: human-readable `text` or one JSON object per line.
    pub log_format: LogFormat,
    /// A connection that has not sent a whole request header this long after
    /// hyper started waiting for one is closed: a slow client cannot hold a
    /// file descriptor by trickling its headers (slowloris).
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed (HTTP/1
    /// keep-alive, HTTP/2, and one that never sends a byte).
    pub idle_timeout_ms: u64,
    /// Most connections open at once per listener; past it a new connection is
    /// accepted and closed at once (and counted), so descriptors never run out.
    pub max_connections: usize,
    /// A request header whose value names the client (e.g. `x-client-id`,
    /// set by the client or the load balancer): image decoding is shared
    /// equally between clients, not between requests. Empty = every request
    /// gets its own share.
    pub client_id_header: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 8080,
            metrics_port: 0,
            grpc_port: 0,
            request_timeout_ms: 30_000,
            max_body_bytes: 32 * 1024 * 1024,
            max_images_per_request: 64,
            max_image_pixels: 50_000_000,
            max_image_side: 16_384,
            body_read_timeout_ms: 30_000,
            api_key: ApiKey::default(),
            cors_allow_origins: Vec::new(),
            ui: true,
            preprocess_threads: 0,
            max_inflight_pixels: 0,
            intra_op_threads: 0,
            shutdown_grace_ms: 0,
            drain_timeout_ms: 30_000,
            log_format: LogFormat::Text,
            header_read_timeout_ms: 30_000,
            idle_timeout_ms: 30_000,
            max_connections: 1024,
            client_id_header: String::new(),
        }
    }
}

impl ServerConfig {
    /// [`Self::request_timeout_ms`] as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`Self::body_read_timeout_ms`] as a `Duration`.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// [`Self::header_read_timeout_ms`] as a `Duration`.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// [`Self::idle_timeout_ms`] as a `Duration`.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// [`Self::shutdown_grace_ms`] as a `Duration`.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// [`Self::drain_timeout_ms`] as a `Duration`.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The preprocessing pool size with 0 resolved to the number of cores
    /// (1 when that cannot be determined), so callers never size a pool at 0.
    pub fn preprocess_thread_count(&self) -> usize {
        match self.preprocess_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            count => count,
        }
    }

    /// [`Self::max_inflight_pixels`] with 0 resolved to its default: two
    /// images of the largest allowed size per decode thread.
    pub fn inflight_pixel_budget(&self) -> u64 {
        match self.max_inflight_pixels {
            0 => (self.preprocess_thread_count() as u64)
                .saturating_mul(2)
                .saturating_mul(self.max_image_pixels),
            pixels => pixels,
        }
    }

    /// The libtorch intra-op thread count to set, or `None` to keep its default.
    pub fn intra_op_thread_count(&self) -> Option<usize> {
        (self.intra_op_threads != 0).then_some(self.intra_op_threads)
    }

    /// Whether KServe V2 over gRPC is served, on [`Self::grpc_port`].
    pub fn has_grpc_listener(&self) -> bool {
        self.grpc_port != 0
    }

    /// Whether `/metrics` gets its own listener on [`Self::metrics_port`].
    pub fn has_separate_metrics_listener(&self) -> bool {
        self.metrics_port != 0
    }
}

/// `[hub]`: the Hugging Face Hub cache that `hf://` weights (and the default,
/// published weights) are read from and downloaded into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// The hub cache directory (what `HF_HUB_CACHE` names); empty means the
    /// standard one, shared with Python's huggingface_hub: `HF_HUB_CACHE`,
    /// else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub cache_dir: PathBuf,
    /// Never ask the Hub: weights must already be cached. `HF_HUB_OFFLINE=1`
    /// turns this on too, as it does for huggingface_hub.
    pub offline: bool,
}

/// `[[models]]`: one served model and how it is batched.
///
/// `id` must be written in every entry. `weights` may be left out: the
/// default is the published weights of *that* id (on the Hugging Face Hub),
/// so changing `id` alone can never pair a model with another's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Catalog name or timm alias (e.g. `seresnext50_32x4d.gluon_in1k`), or
    /// any name (`[A-Za-z0-9._-]{1,64}`) for a checkpoint of one's own; also
    /// the name clients use in URLs and the `model` label in metrics.
    pub id: String,
    /// For a checkpoint of one's own: the network it fills, a catalog id or
    /// timm name of the three (`seresnext50_32x4d`). Left out, the
    /// `architecture` of a `config.json` beside the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// A text file with one class label per line, as many as the
    /// checkpoint's classes. Left out: `config.json`'s `label_names`, else
    /// `class_0`, `class_1`, … (ImageNet's for a catalog model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Classes the checkpoint must have (its `fc.weight` rows decide; this
    /// only checks them). Needed for `weights = "random"` of one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// timm `pretrained_cfg` overrides; each beats `config.json`, which beats
    /// the architecture's Gluon default. Side of the square input, 160–512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<u32>,
    /// Fraction of the resized image the center crop keeps, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_pct: Option<f64>,
    /// `center` (keep the aspect ratio) or `squash` (resize both sides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_mode: Option<String>,
    /// `bicubic` or `bilinear`, antialiased as PIL does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpolation: Option<String>,
    /// Per-channel RGB mean, on pixels scaled to [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<[f32; 3]>,
    /// Per-channel RGB standard deviation, each above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<[f32; 3]>,
    /// Where the parameters come from; left out, the model's published
    /// weights from the Hub (and then not written when serialised).
    #[serde(default, skip_serializing_if = "WeightsSource::is_pretrained")]
    pub weights: WeightsSource,
    /// `libtorch | onnxruntime`: which runtime runs the network.
    #[serde(default)]
    pub engine: EngineKind,
    /// `auto | cpu | cuda | cuda:N`.
    #[serde(default)]
    pub device: DeviceSpec,
    /// `fp32 | fp16 | bf16`; reduced precision only pays off on a GPU.
    #[serde(default)]
    pub dtype: Precision,
    /// Worker threads, each with its own copy of the model, sharing one queue.
    #[serde(default = "defaults::replicas")]
    pub replicas: usize,
    /// Most images one forward pass takes.
    #[serde(default = "defaults::max_batch_size")]
    pub max_batch_size: usize,
    /// Longest wait after the first image of a batch arrives before a partial
    /// batch runs: the latency paid for throughput at low load.
    #[serde(default = "defaults::max_batch_delay_ms")]
    pub max_batch_delay_ms: u64,
    /// When a partial batch waits for more images (within
    /// `max_batch_delay_ms`): `adaptive` only while admitted images are
    /// still being decoded, `fixed` always (Triton's rule).
    #[serde(default)]
    pub batch_window: BatchWindow,
    /// Longest one forward pass should take, in ms: a batch holds at most
    /// as many images as the measured time per image fits (at least one).
    /// A request arriving during a pass waits for it, so this bounds the
    /// wait of a small request behind a big one, at the cost of smaller
    /// batches where passes are slow (a CPU). 0 = off: `max_batch_size`
    /// alone decides.
    #[serde(default)]
    pub max_pass_ms: u64,
    /// Images waiting for this model; beyond it requests get 503 + Retry-After
    /// instead of an unbounded wait.
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: usize,
    /// Fold BatchNorm into the preceding convolutions at load time (faster,
    /// numerically equivalent up to float rounding).
    #[serde(default = "defaults::fold_bn")]
    pub fold_bn: bool,
    /// Run on NHWC-strided (`channels_last`) activations and kernels, the
    /// layout oneDNN and cuDNN convolve fastest. Same values either way.
    #[serde(default = "defaults::channels_last")]
    pub channels_last: bool,
    /// Seed for `weights = "random"`, so random-weight runs are reproducible.
    #[serde(default)]
    pub random_seed: u64,
    /// Which batch shapes run once before the model reports ready.
    #[serde(default)]
    pub warmup: WarmupMode,
}

/// Field defaults, shared by serde and [`ModelConfig::default`] so they agree.
mod defaults {
    pub(super) fn replicas() -> usize {
        1
    }
    pub(super) fn max_batch_size() -> usize {
        32
    }
    /// 5 ms with the adaptive window won the study in BENCHMARKS.md: the
    /// best p99 at 16 clients, and no wait at all for a lone request.
    pub(super) fn max_batch_delay_ms() -> u64 {
        5
    }
    pub(super) fn queue_capacity() -> usize {
        256
    }
    pub(super) fn fold_bn() -> bool {
        true
    }
    pub(super) fn channels_last() -> bool {
        true
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            id: "gluon_seresnext50_32x4d".to_owned(),
            architecture: None,
            labels: None,
            num_classes: None,
            input_size: None,
            crop_pct: None,
            crop_mode: None,
            interpolation: None,
            mean: None,
            std: None,
            weights: WeightsSource::Pretrained,
            engine: EngineKind::default(),
            device: DeviceSpec::default(),
            dtype: Precision::default(),
            replicas: defaults::replicas(),
            max_batch_size: defaults::max_batch_size(),
            max_batch_delay_ms: defaults::max_batch_delay_ms(),
            batch_window: BatchWindow::default(),
            max_pass_ms: 0,
            queue_capacity: defaults::queue_capacity(),
            fold_bn: defaults::fold_bn(),
            channels_last: defaults::channels_last(),
            random_seed: 0,
            warmup: WarmupMode::default(),
        }
    }
}

impl ModelConfig {
    /// [`Self::max_batch_delay_ms`] as a `Duration`.
    pub fn max_batch_delay(&self) -> Duration {
        Duration::from_millis(self.max_batch_delay_ms)
    }

    /// [`Self::max_pass_ms`] as a `Duration`; `None` when off (0).
    pub fn max_pass_time(&self) -> Option<Duration> {
        (self.max_pass_ms > 0).then(|| Duration::from_millis(self.max_pass_ms))
    }
}

impl Config {
    /// Parses a TOML document. Checks types and unknown keys only; call
    /// [`Config::validate`](Self::validate) for values.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: None,
            source,
        })
    }

    /// Reads and parses a TOML file (no validation, as for
    /// [`Config::from_toml_str`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            origin: Some(path.to_owned()),
            source,
        })
    }
}
