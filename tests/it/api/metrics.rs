//! `/metrics`: valid Prometheus text with every family, on the API port or,
//! with `metrics_port` set, on a listener of its own.

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode};

use crate::support::http::{assert_error, assert_serves, assert_valid_exposition, get};
use crate::support::server::{shared_server, start_server, MODEL};
use seresnext_serve::http::{self, AppState};

/// `GET url`: 200, Prometheus's content type, a valid exposition.
async fn scrape(client: &Client, url: &str) -> String {
    let response = client.get(url).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        seresnext_serve::metrics::CONTENT_TYPE
    );
    let text = response.text().await.expect("text");
    assert_valid_exposition(&text);
    text
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_family() {
    let server = shared_server();
    let client = Client::new();
    assert_serves(&client, &server.base_url).await;
    let text = scrape(&client, &server.url("/metrics")).await;
    for family in [
        "seresnext_requests_total",
        "seresnext_request_duration_seconds",
        "seresnext_preprocess_duration_seconds",
        "seresnext_queue_duration_seconds",
        "seresnext_inference_duration_seconds",
        "seresnext_batch_size",
        "seresnext_queue_depth",
        "seresnext_in_flight_requests",
        "seresnext_images_total",
        "seresnext_rejections_total",
        "seresnext_model_load_seconds",
        "seresnext_model_warmup_seconds",
        "seresnext_model_ready",
        "seresnext_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    assert!(text.contains(&format!(
        r#"seresnext_requests_total{{model="{MODEL}",status="200",task="predict"}}"#
    )));
    assert!(text.contains(&format!(r#"seresnext_model_ready{{model="{MODEL}"}} 1"#)));
}

#[tokio::test]
async fn a_separate_metrics_listener_takes_metrics_off_the_main_port() {
    use tower::ServiceExt;
    let shared = shared_server();
    let mut server = shared.config.server.clone();
    server.metrics_port = 9;
    let state = AppState::new(Arc::clone(&shared.service), server);
    let request = |path: &str| {
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let main = http::router(state.clone());
    let response = main
        .clone()
        .oneshot(request("/metrics"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = main.oneshot(request("/healthz")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);

    let metrics = http::metrics_router(state);
    let response = metrics
        .clone()
        .oneshot(request("/metrics"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(std::str::from_utf8(&body)
        .expect("utf-8")
        .contains("seresnext_build_info"));
    let response = metrics
        .oneshot(request("/healthz"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// The same separation through `Server::start`, as `serve` runs it: the
/// metrics listener is bound, serves `/metrics` (and only that), and the API
/// port answers 404 for `/metrics`.
#[tokio::test]
async fn a_separate_metrics_port_serves_metrics_through_server_start() {
    // The metrics port must differ from the API port and be free: take one
    // from the OS, release it, and let the server bind it.
    let metrics_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let server = start_server(|config| config.server.metrics_port = metrics_port).await;
    let metrics_addr = server
        .server
        .metrics_addr
        .expect("a separate metrics listener is started");
    assert_eq!(metrics_addr.port(), metrics_port);
    assert_ne!(metrics_addr, server.server.addr);
    let metrics_url = format!("http://{metrics_addr}");

    assert_serves(&server.client, &server.base_url).await;
    let text = scrape(&server.client, &format!("{metrics_url}/metrics")).await;
    assert!(
        text.contains(&format!(
            r#"seresnext_requests_total{{model="{MODEL}",status="200",task="predict"}} 1"#
        )),
        "the request served on the API port is counted here:\n{text}"
    );

    let on_api_port = get(&server.client, &server.url("/metrics")).await;
    assert_error(&on_api_port, 404, "not_found");
    let probe_on_metrics_port = get(&server.client, &format!("{metrics_url}/healthz")).await;
    assert_eq!(probe_on_metrics_port.status, StatusCode::NOT_FOUND);
    server.stop().await;
}
