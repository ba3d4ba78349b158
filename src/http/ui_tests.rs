//! The pages through the real router (fake-engine models, `oneshot`): their
//! types and security headers, the switch that turns them off, and that the
//! key guarding the API never guards them.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{router, AppState};
use crate::config::{ApiKey, ServerConfig};
use crate::infer::fake;

const MODEL: &str = "gluon_seresnext50_32x4d";

/// Every page path with the type it must be served with.
const PAGES: &[(&str, &str)] = &[
    ("/", "text/html; charset=utf-8"),
    ("/docs", "text/html; charset=utf-8"),
    ("/openapi.yaml", "application/yaml"),
    ("/ui/app.js", "text/javascript; charset=utf-8"),
    ("/ui/app.css", "text/css; charset=utf-8"),
    ("/ui/docs.js", "text/javascript; charset=utf-8"),
    ("/ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("/ui/swagger-ui.css", "text/css; charset=utf-8"),
];

async fn get(state: &AppState, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn pages_and_assets_are_served_with_their_types_and_a_csp() {
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    for &(path, content_type) in PAGES {
        let (status, headers, body) = get(&state, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self';",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} not in {csp}");
        }
        // Swagger UI included: no inline script or style, no eval.
        assert!(!csp.contains("unsafe-"), "{path}: {csp}");
        assert!(!body.is_empty(), "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
    let (_, _, page) = get(&state, "/").await;
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<script src=\"ui/app.js\""), "{page}");
    let (_, _, spec) = get(&state, "/openapi.yaml").await;
    assert_eq!(
        spec,
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
    );
    served.stop().await;
}

#[tokio::test]
async fn ui_off_answers_404_for_every_page_and_serves_the_api() {
    let served = fake::serve(&[MODEL]);
    let server = ServerConfig {
        ui: false,
        ..ServerConfig::default()
    };
    let state = AppState::new(served.service.clone(), server);
    for &(path, _) in PAGES {
        let (status, headers, body) = get(&state, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("not_found"),
            "{path}"
        );
    }
    let (status, _, _) = get(&state, "/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    served.stop().await;
}

#[tokio::test]
async fn pages_stay_public_with_an_api_key_and_refuse_other_methods() {
    let served = fake::serve(&[MODEL]);
    let server = ServerConfig {
        api_key: ApiKey::new("ui-test-key-0123456789"),
        ..ServerConfig::default()
    };
    let state = AppState::new(served.service.clone(), server);
    for &(path, _) in PAGES {
        let (status, _, _) = get(&state, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, _) = get(&state, "/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the API stays guarded");

    let request = Request::post("/").body(Body::empty()).unwrap();
    let response = router(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    served.stop().await;
}
