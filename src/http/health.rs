//! Operational endpoints: liveness, readiness and the Prometheus scrape.
//!
//! Liveness and readiness are deliberately different questions. Liveness
//! ("is the process able to serve at all?") stays 200 while models load and
//! while draining, so an orchestrator never restarts a server that is merely
//! busy starting or stopping; it fails only when a replica thread has died,
//! which nothing but a restart repairs. Readiness ("send me traffic?") is 200 only once every
//! model is warm, and turns 503 the moment draining starts so the load
//! balancer stops routing here before the listener closes.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::dto::Health;
use super::AppState;

/// `GET /healthz`, `GET /v2/health/live`.
pub async fn live(State(state): State<AppState>) -> Response {
    if state.service.lost_replica().is_some() {
        // The panic message is in the log, not on the wire.
        let body = Health {
            status: "broken",
            ready: None,
            error: Some("a model replica thread died; the process needs a restart"),
            error_type: Some("replica_lost"),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(Health {
        status: "alive",
        ready: None,
        error: None,
        error_type: None,
    })
    .into_response()
}

/// `GET /readyz`, `GET /v2/health/ready`.
pub async fn ready(State(state): State<AppState>) -> Response {
    let service = &state.service;
    let (status, error, error_type) = if service.is_draining() {
        ("draining", "server is shutting down", "shutting_down")
    } else if service.startup_failure().is_some() {
        // The cause (a path, a loader message) is in the log, not on the wire.
        (
            "failed",
            "a model failed to start; see the server log",
            "model_load_failed",
        )
    } else if !service.is_ready() {
        ("loading", "models are still loading", "model_not_ready")
    } else {
        let body = Health {
            status: "ready",
            ready: Some(true),
            error: None,
            error_type: None,
        };
        return Json(body).into_response();
    };
    let body = Health {
        status,
        ready: Some(false),
        error: Some(error),
        error_type: Some(error_type),
    };
    retry_soon(body)
}

/// A 503 with `Retry-After: 1` and `body`: the answer of every readiness
/// check (V1 and V2) while a model loads, failed or the server drains.
pub(super) fn retry_soon(body: impl serde::Serialize) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `GET /metrics`: the Prometheus text exposition, gauges brought up to date
/// first so a scrape sees the queue as it is now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.service.refresh_gauges();
    let body = state.service.metrics().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, ModelConfig, WeightsSource};
    use crate::infer::InferenceService;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn liveness_fails_once_a_replica_thread_has_died() {
        let config = Config {
            models: vec![ModelConfig {
                weights: WeightsSource::Random,
                device: crate::config::DeviceSpec::Cpu,
                max_batch_size: 1,
                ..ModelConfig::default()
            }],
            ..Config::default()
        };
        let metrics = Arc::new(Metrics::new().unwrap());
        let (service, _threads) = InferenceService::start(&config, metrics).unwrap();
        let state = AppState::new(Arc::new(service), config.server.clone());

        let alive = live(State(state.clone())).await;
        assert_eq!(alive.status(), StatusCode::OK);

        state.service.models()[0]
            .state
            .replica_lost("gluon_seresnext50_32x4d: injected".into());
        let broken = live(State(state.clone())).await;
        assert_eq!(broken.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(broken.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "broken");
        assert_eq!(body["error_type"], "replica_lost");

        state.service.drain(std::time::Duration::from_secs(1)).await;
    }
}
