//! The HTTP edge: routes, request parsing, DTOs and the error → status
//! mapping. It talks to the engine only through the [`crate::infer`] facade
//! and knows nothing of tch.
//!
//! Two rooms, one per protocol, each with its handlers, parsing and DTOs:
//! - `v1`: `GET /v1/models[/{model}]` and `POST /v1/models/{model}:predict`
//!   (raw, multipart or JSON bodies);
//! - `v2`: the Open Inference Protocol (KServe V2): server and model
//!   metadata, model readiness and inference, with the binary tensor data
//!   and classification extensions.
//!
//! And what both share:
//! - [`ROUTES`] (`routes`): every documented operation, the single list the
//!   router is built from and `openapi.yaml` is tested against;
//! - `extract`: the served-model extractors (the facade resolves the name
//!   before any body is read), the timeout header, the buffered body;
//! - `respond`: the request counter, timing headers, `Retry-After`, and
//!   closing a connection whose body was left unread;
//! - `error`: [`RequestError`], the one JSON error shape and the one status
//!   mapping; handlers return `Result<_, ApiError>`;
//! - `health`: liveness, readiness and `/metrics`; `encoding`: base64 images;
//! - `allow`: the `Allow` header of a 405, from the documented routes;
//! - `security`: the optional API key on the guarded routes and CORS;
//!   `body_deadline`: the whole-body read deadline against slow uploads;
//! - `ui`: the try-it page (`/`), the API reference (`/docs`, Swagger UI)
//!   and `/openapi.yaml`, embedded in the binary, with their CSP.
//!
//! Every response carries `x-request-id` (the client's, or a fresh UUID v4),
//! and every request runs in a tracing span that records it.

mod allow;
mod body_deadline;
mod encoding;
pub(crate) mod error;
pub(crate) mod extract;
// The parsers as functions of one byte string, for `crate::fuzzing`.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod health;
pub(crate) mod respond;
mod routes;
pub(crate) mod security;
#[cfg(test)]
mod tests;
mod ui;
#[cfg(test)]
mod ui_tests;
mod v1;
pub(crate) mod v2;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::{Level, Span};

use crate::config::ServerConfig;
use crate::infer::InferenceService;

pub use error::{infer_status, ApiError, RequestError};
pub use extract::TIMEOUT_HEADER;
pub use routes::{Route, METRICS_PATH, ROUTES};
pub use v1::DEFAULT_TOP_K;

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

/// The public API. `/metrics` is on it unless `server.metrics_port` gives
/// metrics their own listener: that setting exists to keep metrics off the
/// public network, so the main port then answers 404 for it. The pages
/// (`/`, `/docs`, `/openapi.yaml`, `/ui/...`) are on it unless `server.ui`
/// is off, for deployments that want no HTML; then they answer 404 too.
pub fn router(state: AppState) -> Router {
    let separate_metrics = state.server.has_separate_metrics_listener();
    let ui = state.server.ui;
    let routes = ROUTES.iter().filter(|route| {
        !(separate_metrics && route.path == METRICS_PATH) && (ui || !route.is_ui())
    });
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
    let mut registered = std::collections::HashSet::new();
    for route in routes {
        // `:predict` and `:embed` are one axum route (same path, same
        // method, one handler that reads the action); register it once.
        if !registered.insert((route.axum_path(), route.method)) {
            continue;
        }
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
    if respond::has_body(headers) {
        respond::close_connection(response)
    } else {
        response
    }
}
