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
use serde::Serialize;

use super::respond::retry_soon;
use super::AppState;
use crate::infer::Readiness;

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `alive`, `broken`, `ready`, `loading`, `draining` or `failed`.
    pub status: &'static str,
    /// Only on liveness answers: the Open Inference Protocol's field, which
    /// KServe's SDK reads (`is_server_live`) instead of `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    /// Only on readiness answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// On a 503, the usual error fields, so the body has the shape of every
    /// other error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
    /// While loading: the models still loading or warming up, so an operator
    /// (or a start-up script) sees what is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loading: Option<Vec<&'static str>>,
}

/// `GET /healthz`, `GET /v2/health/live`.
pub async fn live(State(state): State<AppState>) -> Response {
    if state.service.lost_replica().is_some() {
        // The panic message is in the log, not on the wire.
        let body = Health {
            status: "broken",
            live: Some(false),
            ready: None,
            error: Some("a model replica thread died; the process needs a restart"),
            error_type: Some("replica_lost"),
            loading: None,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(Health {
        status: "alive",
        live: Some(true),
        ready: None,
        error: None,
        error_type: None,
        loading: None,
    })
    .into_response()
}

/// `GET /readyz`, `GET /v2/health/ready`.
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = state.service.readiness();
    let error = match readiness {
        Readiness::Ready => {
            let body = Health {
                status: readiness.status(),
                live: None,
                ready: Some(true),
                error: None,
                error_type: None,
                loading: None,
            };
            return Json(body).into_response();
        }
        Readiness::Draining => "server is shutting down",
        // The cause (a path, a loader message) is in the log, not on the wire.
        Readiness::Failed => "a model failed to start; see the server log",
        Readiness::Loading => "models are still loading",
    };
    let loading = (readiness == Readiness::Loading).then(|| state.service.loading_models());
    retry_soon(Health {
        status: readiness.status(),
        live: None,
        ready: Some(false),
        error: Some(error),
        error_type: readiness.error_type(),
        loading,
    })
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
    use super::*;
    use crate::infer::fake;

    #[tokio::test]
    async fn liveness_fails_once_a_replica_thread_has_died() {
        let served = fake::serve(&["gluon_seresnext50_32x4d"]);
        let state = AppState::new(served.service.clone(), Default::default());

        let alive = live(State(state.clone())).await;
        assert_eq!(alive.status(), StatusCode::OK);

        served.lose_replica(0, "gluon_seresnext50_32x4d: injected");
        let broken = live(State(state.clone())).await;
        assert_eq!(broken.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(broken.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "broken");
        assert_eq!(body["error_type"], "replica_lost");
        served.stop().await;
    }
}
