//! Reliability and security at the edge, against a real server on port 0:
//! a client trickling its body gets 408 while others are served; the
//! optional API key guards exactly the model and inference routes; CORS
//! headers appear only for configured origins. (Overload shed with 503 +
//! `Retry-After`: `api::server_states`.)
//!
//! Each edge setting (key, CORS, body deadline) is tested with a second
//! listener in front of the shared engine, so no test loads a model of its
//! own.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::http::{metrics_text, send};
use crate::support::server::{photo, serve_with, MODEL, PREDICT};
use seresnext_serve::config::ApiKey;

const KEY: &str = "test-key-0123456789abcdef";
const ORIGIN: &str = "https://app.example.com";

fn predict_chelsea(client: &Client, base_url: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base_url}{PREDICT}"))
        .header(CONTENT_TYPE, "image/jpeg")
        .body(photo("chelsea.jpg"))
}

// ------------------------------------------------------------ slow clients

/// Sends headers announcing 100 000 bytes, then one byte every 200 ms, and
/// returns what the server wrote back before closing (or the test's bound).
async fn trickle(addr: &str) -> String {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {PREDICT} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/jpeg\r\n\
         Content-Length: 100000\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.expect("headers");
    let trickler = tokio::spawn(async move {
        for _ in 0..100_000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    }
    trickler.abort();
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_trickled_body_gets_408_while_good_requests_are_served() {
    let base_url = serve_with(|server| server.body_read_timeout_ms = 1_000).await;
    let addr = base_url.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let slow = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(60), trickle(&addr))
            .await
            .expect("the server never ended the trickled request")
    });
    let client = Client::new();
    for _ in 0..3 {
        let good = send(predict_chelsea(&client, &base_url)).await;
        assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    }
    let reply = slow.await.expect("slow client task");
    let waited = started.elapsed();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"error_type\":\"body_timeout\""), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    // Only a lower bound: the deadline counts from the headers.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    let metrics = metrics_text(&client, &base_url).await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("seresnext_rejections_total")
                && line.contains(r#"reason="body_timeout""#)
                && !line.ends_with(" 0")),
        "408s are counted"
    );
}

// --------------------------------------------------------------- security

#[tokio::test]
async fn the_api_key_guards_model_and_inference_routes_only() {
    let base_url = serve_with(|server| server.api_key = ApiKey::new(KEY)).await;
    let client = Client::new();
    let url = |path: &str| format!("{base_url}{path}");
    let model = format!("/v1/models/{MODEL}");
    let v2_model = format!("/v2/models/{MODEL}");

    for (name, request) in [
        ("predict, no header", predict_chelsea(&client, &base_url)),
        (
            "predict, wrong key",
            predict_chelsea(&client, &base_url).header(AUTHORIZATION, "Bearer not-the-key-at-all"),
        ),
        (
            "predict, key as Basic",
            predict_chelsea(&client, &base_url).header(AUTHORIZATION, format!("Basic {KEY}")),
        ),
        (
            "predict, key without scheme",
            predict_chelsea(&client, &base_url).header(AUTHORIZATION, KEY),
        ),
        ("model list", client.get(url("/v1/models"))),
        ("model metadata", client.get(url(&model))),
        ("V2 server metadata", client.get(url("/v2"))),
        ("V2 model metadata", client.get(url(&v2_model))),
        (
            "V2 model ready",
            client.get(url(&format!("{v2_model}/ready"))),
        ),
        (
            "V2 infer",
            client
                .post(url(&format!("{v2_model}/infer")))
                .header(CONTENT_TYPE, "application/json")
                .body("{}"),
        ),
    ] {
        let refused = send(request).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            refused.body
        );
        assert_eq!(refused.body["error_type"], "unauthorized", "{name}");
        assert_eq!(refused.headers["www-authenticate"], "Bearer", "{name}");
        assert!(!refused.body.to_string().contains(KEY), "{name}");
    }

    let bearer = format!("Bearer {KEY}");
    let served = send(predict_chelsea(&client, &base_url).header(AUTHORIZATION, &bearer)).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    let lowercase = format!("bearer {KEY}");
    for path in ["/v1/models", model.as_str(), "/v2", v2_model.as_str()] {
        let allowed = send(client.get(url(path)).header(AUTHORIZATION, &lowercase)).await;
        assert_eq!(allowed.status, StatusCode::OK, "{path}: {}", allowed.body);
    }
    // Probes and metrics stay open: orchestrators and Prometheus hold no key.
    for path in [
        "/healthz",
        "/readyz",
        "/v2/health/live",
        "/v2/health/ready",
        "/metrics",
    ] {
        let open = client.get(url(path)).send().await.expect("send");
        assert_eq!(open.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn cors_headers_appear_only_for_configured_origins() {
    let without = serve_with(|_| {}).await;
    let with = serve_with(|server| server.cors_allow_origins = vec![ORIGIN.to_owned()]).await;
    let client = Client::new();
    let allow_origin = |headers: &HeaderMap| {
        headers
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap_or("?").to_owned())
    };

    let get = |base: &str, origin: &str| {
        client
            .get(format!("{base}/v1/models"))
            .header("origin", origin)
            .send()
    };
    let default = get(&without, ORIGIN).await.expect("send");
    assert_eq!(
        allow_origin(default.headers()),
        None,
        "CORS is off by default"
    );
    let allowed = get(&with, ORIGIN).await.expect("send");
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allow_origin(allowed.headers()).as_deref(), Some(ORIGIN));
    let other = get(&with, "https://evil.example.com").await.expect("send");
    assert_eq!(
        allow_origin(other.headers()),
        None,
        "only the listed origin"
    );

    let preflight = |base: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}{PREDICT}"))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let answered = preflight(&with).await.expect("send");
    assert!(answered.status().is_success(), "{}", answered.status());
    assert_eq!(allow_origin(answered.headers()).as_deref(), Some(ORIGIN));
    let methods = answered.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");
    let headers = answered.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    let refused = preflight(&without).await.expect("send");
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(allow_origin(refused.headers()), None);
}
