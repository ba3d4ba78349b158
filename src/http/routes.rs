//! Every documented operation, in one list: the router is built from it and
//! `openapi.yaml` is tested against it, so neither can drift from the other.

use axum::routing::{get, post, MethodRouter};

use super::ui::{self, Asset};
use super::{health, v1, v2, AppState};

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
    Embed,
    ServerMetadataV2,
    ModelMetadataV2,
    ModelReadyV2,
    InferV2,
    /// A page, the spec or a page's asset, embedded in the binary; only
    /// routed with `server.ui` on.
    Ui(&'static Asset),
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
/// (`tests/it/api/spec.rs` checks both directions). GET routes also answer HEAD.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Endpoint::Live),
    route("GET", "/readyz", Endpoint::Ready),
    route("GET", "/v2/health/live", Endpoint::Live),
    route("GET", "/v2/health/ready", Endpoint::Ready),
    route("GET", METRICS_PATH, Endpoint::Metrics),
    route("GET", "/v1/models", Endpoint::ListModels),
    route("GET", "/v1/models/{model}", Endpoint::ModelMetadata),
    route("POST", "/v1/models/{model}:predict", Endpoint::Predict),
    route("POST", "/v1/models/{model}:embed", Endpoint::Embed),
    route("GET", "/v2", Endpoint::ServerMetadataV2),
    route("GET", "/v2/models/{model}", Endpoint::ModelMetadataV2),
    route("GET", "/v2/models/{model}/ready", Endpoint::ModelReadyV2),
    route("POST", "/v2/models/{model}/infer", Endpoint::InferV2),
    route("GET", "/", Endpoint::Ui(&ui::PAGE)),
    route("GET", "/docs", Endpoint::Ui(&ui::DOCS)),
    route("GET", "/openapi.yaml", Endpoint::Ui(&ui::OPENAPI)),
    route("GET", "/ui/app.js", Endpoint::Ui(&ui::APP_JS)),
    route("GET", "/ui/app.css", Endpoint::Ui(&ui::APP_CSS)),
    route("GET", "/ui/docs.js", Endpoint::Ui(&ui::DOCS_JS)),
    route(
        "GET",
        "/ui/swagger-ui-bundle.js",
        Endpoint::Ui(&ui::SWAGGER_JS),
    ),
    route("GET", "/ui/swagger-ui.css", Endpoint::Ui(&ui::SWAGGER_CSS)),
];

impl Route {
    /// The axum path: axum captures whole segments, so `{model}`,
    /// `{model}:predict` and `{model}:embed` share one capture that the
    /// handlers split.
    pub(super) fn axum_path(&self) -> String {
        self.path
            .replace("{model}:predict", "{model_action}")
            .replace("{model}:embed", "{model_action}")
            .replace("{model}", "{model_action}")
    }

    /// Whether the route answers without the API key. Probes and metrics do:
    /// orchestrators and Prometheus carry no token, and those routes reveal
    /// nothing about inputs. So do the pages: they are the same for everyone
    /// (the try-it page asks for the key itself and sends it on its calls).
    /// Matched exhaustively, so a new endpoint needs a decision here.
    pub(super) fn is_public(&self) -> bool {
        match self.endpoint {
            Endpoint::Live | Endpoint::Ready | Endpoint::Metrics | Endpoint::Ui(_) => true,
            Endpoint::ListModels
            | Endpoint::ModelMetadata
            | Endpoint::Predict
            | Endpoint::Embed
            | Endpoint::ServerMetadataV2
            | Endpoint::ModelMetadataV2
            | Endpoint::ModelReadyV2
            | Endpoint::InferV2 => false,
        }
    }

    /// Whether `server.ui = false` leaves the route out (the pages, the
    /// spec and their assets).
    pub(super) fn is_ui(&self) -> bool {
        matches!(self.endpoint, Endpoint::Ui(_))
    }

    pub(super) fn handler(&self) -> MethodRouter<AppState> {
        match self.endpoint {
            Endpoint::Live => get(health::live),
            Endpoint::Ready => get(health::ready),
            Endpoint::Metrics => get(health::metrics),
            Endpoint::ListModels => get(v1::list_models),
            Endpoint::ModelMetadata => get(v1::model_metadata),
            // One handler for both POST actions: they share an axum path
            // (see `axum_path`), so the router keeps one of the two.
            Endpoint::Predict | Endpoint::Embed => post(v1::post_action),
            Endpoint::ServerMetadataV2 => get(v2::server_metadata),
            Endpoint::ModelMetadataV2 => get(v2::model_metadata),
            Endpoint::ModelReadyV2 => get(v2::model_ready),
            Endpoint::InferV2 => post(v2::infer),
            Endpoint::Ui(asset) => get(move || async move { ui::serve(asset) }),
        }
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
