//! The HTTP edge (placeholder until the API lands).
use std::sync::Arc;

use axum::Router;

use crate::config::ServerConfig;
use crate::infer::InferenceService;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<InferenceService>,
    pub server: Arc<ServerConfig>,
}

impl AppState {
    pub fn new(service: Arc<InferenceService>, server: ServerConfig) -> Self {
        Self {
            service,
            server: Arc::new(server),
        }
    }
}

/// The public API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(state)
}

/// `/metrics` alone, for a separate listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().with_state(state)
}
