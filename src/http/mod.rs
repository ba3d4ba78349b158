//! The HTTP edge: routes, request parsing, DTOs and the error → status
//! mapping. It talks to the engine only through the [`crate::infer`] facade
//! and knows nothing of tch.
//!
//! - [`ROUTES`]: every documented operation, the single list from which the
//!   router is built and against which `openapi.yaml` is tested.
//! - `predict`: `POST /v1/models/{model}:predict`; `parse` and `body` turn
//!   the request into images and parameters.
//! - `models`: listing and per-model metadata; `health`: probes and `/metrics`.
//! - `v2`: the Open Inference Protocol (KServe V2): metadata, readiness and
//!   inference; `v2_request` parses its requests (`v2_data` their JSON
//!   tensor data), `v2_binary` the binary tensor data framing.
//! - `error`: the one JSON error shape and the one status mapping; `dto`:
//!   success bodies.
//! - `security`: the optional API key on the guarded routes and CORS;
//!   `body_deadline`: the whole-body read deadline against slow uploads.
//!
//! Every response carries `x-request-id` (the client's, or a fresh UUID v4),
//! and every request runs in a tracing span that records it.

mod allow;
mod body;
mod body_deadline;
mod dto;
mod error;
// The parsers as functions of one byte string, for `crate::fuzzing`.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod health;
mod models;
mod parse;
mod predict;
mod security;
mod v2;
mod v2_binary;
mod v2_data;
mod v2_request;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::{Level, Span};

use crate::config::ServerConfig;
use crate::infer::InferenceService;

pub use error::{infer_status, ApiError};
pub use parse::{RequestError, DEFAULT_TOP_K, TIMEOUT_HEADER};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The facade: models, readiness, predictions, metrics.
    pub service: Arc<InferenceService>,
    /// Limits the edge enforces itself (body size, images per request,
    /// deadline cap) and whether `/metrics` lives on its own listener.
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

/// One documented operation: its method and OpenAPI path.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    endpoint: Endpoint,
}

/// Which handler serves a [`Route`]; matched exhaustively, so a route can
/// never be listed without a handler or served without being listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Live,
    Ready,
    Metrics,
    ListModels,
    ModelMetadata,
    Predict,
    ServerMetadataV2,
    ModelMetadataV2,
    ModelReadyV2,
    InferV2,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// The path `/metrics` is served at.
pub const METRICS_PATH: &str = "/metrics";

/// Every operation of the API, exactly as `openapi.yaml` documents it
/// (`tests/api.rs` checks both directions). GET routes also answer HEAD.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Endpoint::Live),
    route("GET", "/readyz", Endpoint::Ready),
    route("GET", "/v2/health/live", Endpoint::Live),
    route("GET", "/v2/health/ready", Endpoint::Ready),
    route("GET", METRICS_PATH, Endpoint::Metrics),
    route("GET", "/v1/models", Endpoint::ListModels),
    route("GET", "/v1/models/{model}", Endpoint::ModelMetadata),
    route("POST", "/v1/models/{model}:predict", Endpoint::Predict),
    route("GET", "/v2", Endpoint::ServerMetadataV2),
    route("GET", "/v2/models/{model}", Endpoint::ModelMetadataV2),
    route("GET", "/v2/models/{model}/ready", Endpoint::ModelReadyV2),
    route("POST", "/v2/models/{model}/infer", Endpoint::InferV2),
];

impl Route {
    /// The axum path: axum captures whole segments, so `{model}` and
    /// `{model}:predict` share one capture that the handlers split.
    fn axum_path(&self) -> String {
        self.path
            .replace("{model}:predict", "{model_action}")
            .replace("{model}", "{model_action}")
    }

    /// Whether the route answers without the API key. Probes and metrics do:
    /// orchestrators and Prometheus carry no token, and those routes reveal
    /// nothing about inputs. Matched exhaustively, so a new endpoint needs a
    /// decision here.
    fn is_public(&self) -> bool {
        match self.endpoint {
            Endpoint::Live | Endpoint::Ready | Endpoint::Metrics => true,
            Endpoint::ListModels
            | Endpoint::ModelMetadata
            | Endpoint::Predict
            | Endpoint::ServerMetadataV2
            | Endpoint::ModelMetadataV2
            | Endpoint::ModelReadyV2
            | Endpoint::InferV2 => false,
        }
    }

    fn handler(&self) -> MethodRouter<AppState> {
        match self.endpoint {
            Endpoint::Live => get(health::live),
            Endpoint::Ready => get(health::ready),
            Endpoint::Metrics => get(health::metrics),
            Endpoint::ListModels => get(models::list),
            Endpoint::ModelMetadata => get(models::get),
            Endpoint::Predict => post(predict::predict),
            Endpoint::ServerMetadataV2 => get(v2::server_metadata),
            Endpoint::ModelMetadataV2 => get(v2::model_metadata),
            Endpoint::ModelReadyV2 => get(v2::model_ready),
            Endpoint::InferV2 => post(v2::infer),
        }
    }
}

/// The public API. `/metrics` is on it unless `server.metrics_port` gives
/// metrics their own listener: that setting exists to keep metrics off the
/// public network, so the main port then answers 404 for it.
pub fn router(state: AppState) -> Router {
    let separate_metrics = state.server.has_separate_metrics_listener();
    let routes = ROUTES
        .iter()
        .filter(|route| !(separate_metrics && route.path == METRICS_PATH));
    build(routes, state)
}

/// `/metrics` alone, for the separate metrics listener.
pub fn metrics_router(state: AppState) -> Router {
    build(ROUTES.iter().filter(|r| r.path == METRICS_PATH), state)
}

fn build<'a>(routes: impl Iterator<Item = &'a Route>, state: AppState) -> Router {
    let body_limit = state.server.max_body_bytes;
    let api_key = state.server.api_key.clone();
    let mut router = Router::new();
    for route in routes {
        let mut handler = route.handler();
        if api_key.is_set() && !route.is_public() {
            // A route layer: unknown paths and wrong methods keep their
            // 404/405, which reveal nothing a client could not guess.
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                api_key.clone(),
                security::require_api_key,
            ));
        }
        // Routes sharing an axum path merge into one method router.
        router = router.route(&route.axum_path(), handler);
    }
    let router = router
        // Must follow the routes: it is applied to those already added.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.server.body_read_timeout(),
            body_deadline::stamp,
        ))
        // Outermost first: set the id, trace with it, copy it to the response.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        // A 500 is logged with its cause where it is mapped;
                        // at the default ERROR level every shed 503 would
                        // add a line exactly when the server is overloaded.
                        .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        );
    // Outermost: preflights are answered before the key is checked, and
    // every answer (401s and 404s included) carries the CORS headers a
    // browser needs to read it.
    let router = match security::cors_layer(&state.server.cors_allow_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// One span per request, carrying its id so every log line of the request
/// (the facade's included) can be found from the id a client reports.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// JSON 404 for paths no route serves.
async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let response = ApiError::route_not_found(method.as_str(), uri.path()).into_response();
    close_if_unread(&headers, response)
}

/// JSON 405 with `Allow` listing the requested path's methods (axum's
/// would list those of its merged `{model_action}` path; it keeps ours).
async fn method_not_allowed(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mut response = ApiError::method_not_allowed_by_router(method.as_str()).into_response();
    let allow = allow::allow_header(uri.path());
    response.headers_mut().insert(header::ALLOW, allow);
    close_if_unread(&headers, response)
}

/// The fallbacks never read a body; if one was sent, the connection ends.
fn close_if_unread(headers: &HeaderMap, response: Response) -> Response {
    if error::has_body(headers) {
        error::close_connection(response)
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_model_routes_share_one_axum_path() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{route:?}");
            assert!(route.path.starts_with('/'));
        }
        let model_paths: std::collections::HashSet<String> = ROUTES
            .iter()
            .filter(|r| r.path.starts_with("/v1/models/"))
            .map(Route::axum_path)
            .collect();
        assert_eq!(
            model_paths.into_iter().collect::<Vec<_>>(),
            ["/v1/models/{model_action}"]
        );
    }
}
