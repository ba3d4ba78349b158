//! `GET /v1/models` and `GET /v1/models/{model}`: which models are served,
//! whether each is ready, and the metadata a client needs to use it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::dto::{Architecture, Batching, InputSpec, ModelList, ModelMetadata};
use crate::http::error::ApiError;
use crate::http::extract::V1Model;
use crate::http::AppState;
use crate::infer::ModelInfo;

/// Every served model with its readiness; always 200 (readiness per model is
/// in the body, overall readiness is `/readyz`).
pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        models: state.service.model_infos().iter().map(metadata).collect(),
    })
}

/// One model's metadata: 200 when ready, 503 with the same body while it
/// loads or the server drains (KServe V1 model readiness), 404 if unknown.
/// `GET .../{model}:predict` is answered 405 by the extractor.
pub async fn get(model: Result<V1Model, ApiError>) -> Result<Response, ApiError> {
    let V1Model(model) = model?;
    let body = metadata(&model);
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}

fn metadata(model: &ModelInfo) -> ModelMetadata {
    let id = model.model;
    let cfg = model.pretrained_cfg();
    let arch = model.arch();
    let timm_name = id.timm_name();
    // A checkpoint of one's own answers to its id only.
    let aliases = if id.is_catalog() {
        vec![timm_name.to_owned(), format!("timm/{timm_name}")]
    } else {
        Vec::new()
    };
    ModelMetadata {
        name: id.name(),
        ready: model.readiness.is_ready(),
        aliases,
        architecture: Architecture {
            name: id.architecture().timm_architecture(),
            blocks_per_stage: arch.blocks_per_stage,
            cardinality: arch.cardinality,
            base_width: arch.base_width,
        },
        input: InputSpec {
            shape: [3, cfg.input_size, cfg.input_size],
            crop_pct: cfg.crop_pct,
            crop_mode: cfg.crop_mode.timm_name(),
            interpolation: cfg.interpolation.timm_name(),
            mean: cfg.mean,
            std: cfg.std,
        },
        num_classes: cfg.num_classes,
        device: model.device.clone(),
        replica_devices: model.replica_devices.clone(),
        requested_device: model.requested_device.clone(),
        engine: model.engine,
        dtype: model.dtype,
        replicas: model.replicas,
        ready_replicas: model.ready_replicas,
        batching: Batching {
            max_batch_size: model.batching.max_batch_size,
            max_batch_delay_ms: model.batching.max_batch_delay_ms,
            queue_capacity: model.batching.capacity,
        },
        random_weights: model.random_weights,
        ready_after_seconds: model.ready_after.map(|after| after.as_secs_f64()),
        warmup: model.warmup,
        warmed_batch_sizes: model.warmed_batch_sizes.clone(),
    }
}
