//! The V1 API (KServe V1 / TF Serving style): `GET /v1/models`,
//! `GET /v1/models/{model}`, `POST /v1/models/{model}:predict` and
//! `POST /v1/models/{model}:embed`, with
//! their body parsing (raw image, multipart, JSON with base64) and DTOs.

pub(super) mod body;
mod dto;
mod models;
pub(super) mod params;
mod predict;

pub use models::{get as model_metadata, list as list_models};
pub use params::DEFAULT_TOP_K;
pub use predict::post_action;
