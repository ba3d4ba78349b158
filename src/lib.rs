//! # seresnext-serve
//!
//! An HTTP inference service for the Gluon SE-ResNeXt ImageNet classifiers
//! (timm's `seresnext{50_32x4d,101_32x4d,101_64x4d}.gluon_in1k`) on libtorch.
//!
//! Data flows one way: **HTTP → decode/preprocess → batch queue → model
//! worker → response**. A module only imports from its own layer or a lower one.
//!
//! Leaves (import nothing of the project but `config`):
//! - [`config`]: settings as plain data (devices, precisions), validated early.
//! - [`labels`]: the ImageNet-1k class names, shipped in the binary.
//! - [`metrics`]: the Prometheus registry and every metric family.
//! - [`telemetry`]: text or JSON logs.
//!
//! Engine (no HTTP):
//! - [`preprocess`]: bytes → decoded, EXIF-oriented RGB → timm's eval
//!   resize and center crop, as an 8-bit crop (no tch).
//! - [`weights`]: reads safetensors, zip and legacy PyTorch checkpoints into
//!   plain tensors without Python (no tch), and checks the SHA-256 prefix of
//!   release file names (`…-90cf2d6e.pth`).
//! - [`hub`]: `hf://` weights and the default published ones, found in the
//!   standard Hugging Face cache or downloaded into it (hf-hub) at start-up.
//! - [`batching`]: the generic bounded queue and dynamic batching policy
//!   (no tch, testable on its own); each item carries its request's span.
//! - [`model`]: the catalog, SE-ResNeXt built from a checkpoint by timm's key
//!   names, and [`model::Engine`], the one seam a replica drives
//!   ([`model::Classifier`] on libtorch). The only module that uses tch.
//! - [`pool`]: resolves a model's weights to a local file (Hub, existence,
//!   release hash) and runs replica threads that load an engine each, warm
//!   the batch shapes their device needs (every bucket on a GPU, one pass on
//!   a CPU) and serve their model's queue (no tch: it drives
//!   [`model::Engine`]).
//!
//! Facade (no axum):
//! - [`infer`]: admission → preprocess on a bounded CPU pool → batch queue →
//!   labelled top-k with timings (V1), or full probabilities for encoded or
//!   client-normalized images (KServe V2). It receives built model handles
//!   and hands out views ([`infer::ModelInfo`], [`infer::Readiness`]), never
//!   engine state.
//!
//! Edge (imports only `infer`, `config` and `metrics`):
//! - [`http`]: the V1 and KServe V2 rooms (handlers, parsing, DTOs), the
//!   shared extractors and error → status mapping, health and metrics; the
//!   optional API key, CORS and the body-read deadline; the pages for people
//!   (the try-it page at `/`, Swagger UI at `/docs`), embedded in the binary.
//!
//! - [`grpc`]: KServe V2 over gRPC (tonic), the HTTP V2 room's checks and
//!   metadata behind `inference.GRPCInferenceService`, errors as gRPC codes.
//!
//! Root:
//! - [`server`]: wiring (listeners bound first, then weights, queues,
//!   replicas → the facade), connections served with bounds (header and
//!   idle timeouts, a connection cap) and the graceful shutdown sequence.
//! - [`cli`]: the command line, one flags struct per subcommand (defaults,
//!   environment variables) and the exit codes; `main` parses and dispatches.
//! - [`classify`]: the `classify` command, local files in, JSON lines out.
//! - [`bench`]: the `bench` command, in-process forward throughput.
//! - `fuzzing` (feature `fuzzing`): one entry point per parser of untrusted
//!   bytes, for the fuzz targets in `fuzz/` and the replay of their saved
//!   inputs in `make test`.

pub mod batching;
pub mod bench;
pub mod classify;
pub mod cli;
pub mod config;
pub mod engines;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod http;
pub mod hub;
pub mod infer;
pub mod labels;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod pool;
pub mod preprocess;
pub mod server;
pub mod telemetry;
pub mod weights;
