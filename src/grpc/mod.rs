//! KServe V2 (the Open Inference Protocol) over gRPC:
//! `inference.GRPCInferenceService` from `proto/grpc_predict_v2.proto`,
//! served by tonic on `[server] grpc_port`, as Triton serves it, so
//! `tritonclient.grpc` and KServe's gRPC clients work unchanged.
//!
//! It is the HTTP V2 API on another transport: the same models, queue,
//! limits and API key (`authorization` metadata), the request checks of
//! [`crate::http::v2::request`] and its metadata; only the envelope differs:
//! - [`convert`]: `ModelInferRequest` → the V2 call, the answer →
//!   `ModelInferResponse` (always `raw_output_contents`, as Triton answers);
//! - [`status`]: errors → gRPC status codes, the way Triton maps them;
//! - [`service`]: the six methods, the API key and the `grpc-timeout` deadline.
//!
//! Once the server drains (SIGTERM), new `ModelInfer` calls are refused
//! `UNAVAILABLE` (retryable) while the calls in flight finish.
//!
//! The service is an axum `Router`, so [`crate::server`] serves it through the
//! same bounded connection loop and graceful drain as the HTTP listener.

mod convert;
mod service;
mod status;

/// The generated messages and server of the `inference` package.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("inference");
}

pub use service::router;
