//! `GET /v1/models` and `GET /v1/models/{model}`: which models are served,
//! whether each is ready, and the metadata a client needs to use it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::dto::{Architecture, Batching, InputSpec, ModelList, ModelMetadata};
use super::error::ApiError;
use super::parse::{split_model_action, ModelPath, RequestError};
use super::AppState;
use crate::infer::{InferError, InferenceService, ModelHandle};
use crate::preprocess::Interpolation;

/// Every served model with its readiness; always 200 (readiness per model is
/// in the body, overall readiness is `/readyz`).
pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let service = &state.service;
    Json(ModelList {
        models: service
            .models()
            .iter()
            .map(|model| metadata(service, model))
            .collect(),
    })
}

/// One model's metadata: 200 when ready, 503 with the same body while it
/// loads or the server drains (KServe V1 model readiness), 404 if unknown.
/// `GET .../{model}:predict` lands here too and is answered 405.
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = model_segment(path).and_then(|segment| match split_model_action(&segment)? {
        ModelPath::Metadata(name) => Ok(state.service.model(name).map_err(ApiError::from)?),
        ModelPath::Predict(_) => Err(RequestError::WrongMethod {
            method: "GET".to_owned(),
            allow: "POST",
        }
        .into()),
    });
    match result {
        Ok(model) => {
            let body = metadata(&state.service, model);
            let status = if body.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Json(body)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// The `{model}` path segment, decoded. A segment that does not decode to
/// UTF-8 cannot name a model, so it is a 404 like any other unknown name.
pub fn model_segment(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(segment)| segment)
        .map_err(|_| InferError::UnknownModel("<undecodable>".to_owned()).into())
}

fn metadata(service: &InferenceService, model: &ModelHandle) -> ModelMetadata {
    let id = model.id;
    let cfg = id.pretrained_cfg();
    let arch = id.arch();
    let timm_name = id.timm_name();
    let config = &model.config;
    ModelMetadata {
        name: id.name(),
        ready: model.state.is_ready() && !service.is_draining(),
        aliases: vec![timm_name.to_owned(), format!("timm/{timm_name}")],
        architecture: Architecture {
            name: timm_name.split('.').next().unwrap_or(timm_name),
            blocks_per_stage: arch.blocks_per_stage,
            cardinality: arch.cardinality,
            base_width: arch.base_width,
        },
        input: InputSpec {
            shape: [3, cfg.input_size, cfg.input_size],
            crop_pct: cfg.crop_pct,
            interpolation: match cfg.interpolation {
                Interpolation::Bicubic => "bicubic",
                Interpolation::Bilinear => "bilinear",
            },
            mean: cfg.mean,
            std: cfg.std,
        },
        num_classes: cfg.num_classes,
        device: model.state.device(),
        requested_device: config.device.to_string(),
        dtype: config.dtype,
        replicas: model.state.replicas(),
        ready_replicas: model.state.ready_replicas(),
        batching: Batching {
            max_batch_size: config.max_batch_size,
            max_batch_delay_ms: config.max_batch_delay_ms,
            queue_capacity: config.queue_capacity,
        },
        random_weights: model.random_weights(),
    }
}
