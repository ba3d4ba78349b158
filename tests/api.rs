//! The HTTP API against a real server on port 0 with the fixture
//! `gluon_seresnext50_32x4d` on the CPU: every input format, every error
//! status, the headers, metadata, probes, metrics, and `openapi.yaml`
//! against the routes actually served.
//!
//! Most tests share one server ([`shared_server`]); the few that need other
//! limits either put a second listener with another `ServerConfig` in front
//! of the shared engine, or start a server of their own.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use common::server::{photo, photos, serve_with, shared_server, start_server, MODEL};
use seresnext_serve::http::{self, AppState, ROUTES};

const PREDICT: &str = "/v1/models/gluon_seresnext50_32x4d:predict";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

async fn post_raw(
    client: &Client,
    url: &str,
    bytes: Vec<u8>,
    content_type: Option<&str>,
) -> Answer {
    let mut request = client.post(url).body(bytes);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    answer(request.send().await.expect("send")).await
}

async fn get(client: &Client, url: &str) -> Answer {
    answer(client.get(url).send().await.expect("send")).await
}

/// The answer is the JSON error `{"error", "error_type"}` with this status.
#[track_caller]
fn assert_error(answer: &Answer, status: u16, error_type: &str) {
    assert_eq!(answer.status.as_u16(), status, "body: {}", answer.body);
    assert_eq!(
        answer.body["error_type"], error_type,
        "body: {}",
        answer.body
    );
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.headers[CONTENT_TYPE], "application/json",
        "errors are JSON"
    );
    assert!(answer.headers.contains_key("x-request-id"));
}

fn top1(body: &Value, image: usize) -> u64 {
    body["predictions"][image]["top_k"][0]["class_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no prediction {image} in {body}"))
}

fn probabilities(body: &Value) -> Vec<f64> {
    body["predictions"][0]["top_k"]
        .as_array()
        .expect("top_k")
        .iter()
        .map(|c| c["probability"].as_f64().expect("probability"))
        .collect()
}

/// A good request still gets a good answer (after an error test).
async fn assert_serves(client: &Client, base_url: &str) {
    let ok = post_raw(
        client,
        &format!("{base_url}{PREDICT}"),
        photo("chelsea.jpg"),
        Some("image/jpeg"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(top1(&ok.body, 0), 285);
}

fn reencode(jpeg: &[u8], format: image::ImageFormat) -> Vec<u8> {
    let image = image::load_from_memory(jpeg).expect("decode fixture");
    let image = match format {
        image::ImageFormat::Gif => image::DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => image::DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------- formats

#[tokio::test]
async fn every_raw_format_classifies_like_the_jpeg() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    let jpeg = photo("chelsea.jpg");
    let reference = post_raw(&client, &url, jpeg.clone(), Some("image/jpeg")).await;
    assert_eq!(reference.status, StatusCode::OK, "{}", reference.body);
    assert_eq!(reference.body["model_name"], MODEL);
    let best = &reference.body["predictions"][0]["top_k"][0];
    assert_eq!(best["class_id"], 285);
    assert_eq!(best["label"], "Egyptian cat");
    assert!(reference.body.get("random_weights").is_none());
    assert!(!reference.headers.contains_key("x-random-weights"));
    assert_eq!(
        reference.body["predictions"][0]["top_k"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "default top_k is 5"
    );

    // Lossless re-encodings of the decoded JPEG: the very same pixels.
    for (format, content_type) in [
        (image::ImageFormat::Png, Some("image/png")),
        (image::ImageFormat::WebP, Some("image/webp")),
        (image::ImageFormat::Bmp, Some("image/bmp")),
        (image::ImageFormat::Png, Some("application/octet-stream")),
        (image::ImageFormat::Png, None),
        // Mislabelled: the format is sniffed from the bytes.
        (image::ImageFormat::Png, Some("image/jpeg")),
    ] {
        let answer = post_raw(&client, &url, reencode(&jpeg, format), content_type).await;
        assert_eq!(answer.status, StatusCode::OK, "{format:?}: {}", answer.body);
        assert_eq!(top1(&answer.body, 0), 285, "{format:?}");
        for (a, b) in probabilities(&answer.body)
            .iter()
            .zip(probabilities(&reference.body))
        {
            assert!((a - b).abs() < 1e-4, "{format:?}: {a} vs {b}");
        }
    }
    // GIF quantizes to 256 colours, so only the answer's shape is checked.
    let gif = post_raw(
        &client,
        &url,
        reencode(&jpeg, image::ImageFormat::Gif),
        Some("image/gif"),
    )
    .await;
    assert_eq!(gif.status, StatusCode::OK, "{}", gif.body);
    assert_eq!(
        gif.body["predictions"][0]["top_k"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn multipart_batch_answers_in_order_like_single_requests() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    let chosen: Vec<_> = photos().into_iter().take(3).collect();
    let mut form = reqwest::multipart::Form::new();
    for (index, (name, bytes, _)) in chosen.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone());
        form = form.part(format!("image{index}"), part);
    }
    let batch = answer(
        client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    assert_eq!(batch.body["predictions"].as_array().map(Vec::len), Some(3));
    assert_eq!(batch.body["batch_sizes"].as_array().map(Vec::len), Some(3));
    for (index, (name, bytes, aimed)) in chosen.into_iter().enumerate() {
        let single = post_raw(&client, &url, bytes, None).await;
        assert_eq!(single.status, StatusCode::OK, "{name}");
        assert_eq!(top1(&batch.body, index), top1(&single.body, 0), "{name}");
        assert_eq!(top1(&batch.body, index), aimed as u64, "{name}");
    }
}

#[tokio::test]
async fn kserve_json_accepts_every_instance_shape() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    let (chelsea, coffee) = (photo("chelsea.jpg"), photo("coffee.jpg"));
    let request = json!({
        "instances": [
            {"image": {"b64": b64(&chelsea)}},
            {"b64": b64(&coffee)},
            {"image_bytes": {"b64": b64(&chelsea)}},
        ],
        "parameters": {"top_k": 3},
    });
    let answer = answer(client.post(&url).json(&request).send().await.expect("send")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let predictions = answer.body["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 3);
    assert!(predictions
        .iter()
        .all(|p| p["top_k"].as_array().map(Vec::len) == Some(3)));
    let raw_coffee = post_raw(&client, &url, coffee, None).await;
    assert_eq!(top1(&answer.body, 0), 285);
    assert_eq!(top1(&answer.body, 1), top1(&raw_coffee.body, 0));
    assert_eq!(top1(&answer.body, 2), 285);
}

#[tokio::test]
async fn top_k_and_timing_and_request_id_headers() {
    let server = shared_server();
    let client = Client::new();
    for k in [1usize, 10, 1000] {
        let url = format!("{}?top_k={k}", server.url(PREDICT));
        let answer = post_raw(&client, &url, photo("coffee.jpg"), None).await;
        assert_eq!(answer.status, StatusCode::OK);
        let top = answer.body["predictions"][0]["top_k"]
            .as_array()
            .expect("top_k")
            .clone();
        assert_eq!(top.len(), k);
        let probs: Vec<f64> = top
            .iter()
            .map(|c| c["probability"].as_f64().unwrap())
            .collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "sorted descending");
    }

    let response = client
        .post(server.url(PREDICT))
        .header("x-request-id", "my-request-42")
        .body(photo("chelsea.jpg"))
        .send()
        .await
        .expect("send");
    let answer = answer(response).await;
    assert_eq!(answer.headers["x-request-id"], "my-request-42");
    let timing = &answer.body["timing"];
    for (header, field) in [
        ("x-preprocess-time-ms", "preprocess_ms"),
        ("x-queue-time-ms", "queue_ms"),
        ("x-inference-time-ms", "inference_ms"),
        ("x-total-time-ms", "total_ms"),
    ] {
        let text = answer.headers[header].to_str().expect("ascii");
        let (_, decimals) = text.split_once('.').expect("three decimals");
        assert_eq!(decimals.len(), 3, "{header}: {text}");
        let from_header: f64 = text.parse().expect("number");
        assert!(
            (from_header - timing[field].as_f64().unwrap()).abs() < 1e-6,
            "{header}"
        );
    }
    assert!(timing["total_ms"].as_f64().unwrap() >= timing["inference_ms"].as_f64().unwrap());
    assert!(timing["inference_ms"].as_f64().unwrap() > 0.0);

    // Generated on success and on errors alike.
    for url in [server.url("/healthz"), server.url("/nope")] {
        let response = client.get(&url).send().await.expect("send");
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(id.len(), 36, "uuid: {id}");
        assert_eq!(id.as_bytes()[14], b'4', "uuid v4: {id}");
    }
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn malformed_requests_are_400() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    let json_body = |body: &str| {
        client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
    };
    let bad_json = answer(json_body("{\"instances\": [").await.expect("send")).await;
    assert_error(&bad_json, 400, "invalid_json");
    let wrong_shape = answer(
        json_body(r#"{"instances": [{"url": "x"}]}"#)
            .await
            .expect("send"),
    )
    .await;
    assert_error(&wrong_shape, 400, "invalid_json");
    let bad_b64 = answer(
        json_body(r#"{"instances": [{"b64": "@@not base64@@"}]}"#)
            .await
            .expect("send"),
    )
    .await;
    assert_error(&bad_b64, 400, "invalid_base64");
    let no_images = answer(json_body(r#"{"instances": []}"#).await.expect("send")).await;
    assert_error(&no_images, 400, "no_images");
    let empty = post_raw(&client, &url, Vec::new(), Some("image/jpeg")).await;
    assert_error(&empty, 400, "empty_body");

    for top_k in ["abc", "-1", "0", "1001", "1.5", ""] {
        let answer = post_raw(
            &client,
            &format!("{url}?top_k={top_k}"),
            photo("chelsea.jpg"),
            None,
        )
        .await;
        assert_error(&answer, 400, "invalid_top_k");
    }
    let unknown = post_raw(
        &client,
        &format!("{url}?topk=3"),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_error(&unknown, 400, "invalid_parameter");
    let conflicting = answer(
        client
            .post(format!("{url}?top_k=2"))
            .json(&json!({"instances": [{"b64": b64(&photo("chelsea.jpg"))}], "parameters": {"top_k": 3}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&conflicting, 400, "invalid_parameter");
    let bad_timeout = answer(
        client
            .post(&url)
            .header("x-request-timeout-ms", "soon")
            .body(photo("chelsea.jpg"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&bad_timeout, 400, "invalid_timeout");
    assert_serves(&client, &server.base_url).await;
}

#[tokio::test]
async fn unknown_models_and_routes_are_404() {
    let server = shared_server();
    let client = Client::new();
    for model in [
        "resnet50",
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2Fgluon_seresnext50_32x4d",
        "gluon_seresnext50_32x4d%00",
        "%FF%FE",
    ] {
        let predict = post_raw(
            &client,
            &server.url(&format!("/v1/models/{model}:predict")),
            photo("chelsea.jpg"),
            None,
        )
        .await;
        assert_error(&predict, 404, "model_not_found");
        // Refused before the upload was read: the connection is not reused.
        assert_eq!(predict.headers["connection"], "close");
        let metadata = get(&client, &server.url(&format!("/v1/models/{model}"))).await;
        assert_error(&metadata, 404, "model_not_found");
    }
    for path in [
        "/",
        "/v1",
        "/v1/models/a/b",
        "/v1/models/gluon_seresnext50_32x4d/predict",
        "/v2/models",
    ] {
        let answer = get(&client, &server.url(path)).await;
        assert_error(&answer, 404, "not_found");
    }
    let action = post_raw(
        &client,
        &server.url("/v1/models/gluon_seresnext50_32x4d:explain"),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_error(&action, 404, "not_found");

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(r#"seresnext_requests_total{model="unknown",status="404"}"#),
        "unknown models are counted under one label"
    );
    assert!(
        !text.contains("resnet50"),
        "client input never becomes a label"
    );
    assert_serves(&client, &server.base_url).await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let server = shared_server();
    let client = Client::new();
    let get_predict = get(&client, &server.url(PREDICT)).await;
    assert_error(&get_predict, 405, "method_not_allowed");
    assert_eq!(get_predict.headers["allow"], "POST");
    let head_predict = client.head(server.url(PREDICT)).send().await.expect("send");
    assert_eq!(head_predict.status(), StatusCode::METHOD_NOT_ALLOWED);

    let post_metadata = post_raw(
        &client,
        &server.url("/v1/models/gluon_seresnext50_32x4d"),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_error(&post_metadata, 405, "method_not_allowed");
    assert_eq!(post_metadata.headers["allow"], "GET, HEAD");

    let delete = answer(
        client
            .delete(server.url("/healthz"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&delete, 405, "method_not_allowed");
    let allow = delete.headers["allow"].to_str().expect("ascii");
    assert!(allow.contains("GET"), "{allow}");
    let put = answer(
        client
            .put(server.url(PREDICT))
            .body("x")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&put, 405, "method_not_allowed");
    assert!(put.headers["allow"]
        .to_str()
        .expect("ascii")
        .contains("POST"));
    assert_serves(&client, &server.base_url).await;
}

#[tokio::test]
async fn oversized_bodies_and_too_many_images_are_413() {
    let base_url = serve_with(|server| {
        server.max_body_bytes = 16 * 1024;
        server.max_images_per_request = 2;
    })
    .await;
    let client = Client::new();
    let url = format!("{base_url}{PREDICT}");
    let big = photo("chelsea.jpg");
    assert!(big.len() > 16 * 1024);
    let raw = post_raw(&client, &url, big.clone(), Some("image/jpeg")).await;
    assert_error(&raw, 413, "payload_too_large");
    let form = reqwest::multipart::Form::new().part("a", reqwest::multipart::Part::bytes(big));
    let multipart = answer(
        client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&multipart, 413, "payload_too_large");

    let small = {
        let image = image::load_from_memory(&photo("chelsea.jpg")).expect("decode");
        let mut out = Cursor::new(Vec::new());
        image
            .thumbnail(32, 32)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    };
    let mut form = reqwest::multipart::Form::new();
    for name in ["a", "b", "c"] {
        form = form.part(name, reqwest::multipart::Part::bytes(small.clone()));
    }
    let too_many = answer(
        client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&too_many, 413, "too_many_images");
    let instances = vec![json!({"b64": b64(&small)}); 3];
    let too_many_json = answer(
        client
            .post(&url)
            .json(&json!({"instances": instances}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(&too_many_json, 413, "too_many_images");

    let ok = post_raw(&client, &url, small, Some("image/png")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test]
async fn unsupported_media_is_415_and_corrupt_images_422() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    let text = post_raw(&client, &url, b"hello".to_vec(), Some("text/plain")).await;
    assert_error(&text, 415, "unsupported_media_type");
    let svg = post_raw(
        &client,
        &url,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
        Some("image/svg+xml"),
    )
    .await;
    assert_error(&svg, 415, "unsupported_media_type");
    // A little-endian TIFF header: refused by its label and by its bytes.
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&[0; 64]);
    let labelled = post_raw(&client, &url, tiff.clone(), Some("image/tiff")).await;
    assert_error(&labelled, 415, "unsupported_media_type");
    let sniffed = post_raw(&client, &url, tiff, Some("application/octet-stream")).await;
    assert_error(&sniffed, 415, "unsupported_media_type");

    let jpeg = photo("chelsea.jpg");
    let truncated = post_raw(
        &client,
        &url,
        jpeg[..jpeg.len() / 2].to_vec(),
        Some("image/jpeg"),
    )
    .await;
    assert_error(&truncated, 422, "invalid_image");
    assert!(truncated.body["error"]
        .as_str()
        .unwrap()
        .contains("image 0"));
    assert_serves(&client, &server.base_url).await;
}

#[tokio::test]
async fn a_passed_deadline_is_504() {
    let server = shared_server();
    let client = Client::new();
    let response = client
        .post(server.url(PREDICT))
        .header("x-request-timeout-ms", "1")
        .body(photo("astronaut_progressive.jpg"))
        .send()
        .await
        .expect("send");
    let answer = answer(response).await;
    assert_error(&answer, 504, "deadline_exceeded");
    assert_serves(&client, &server.base_url).await;
}

#[tokio::test]
async fn a_full_queue_is_503_with_retry_after() {
    let server = start_server(|config| {
        config.server.max_images_per_request = 1;
        config.models[0].max_batch_size = 1;
        config.models[0].queue_capacity = 1;
        config.models[0].max_batch_delay_ms = 0;
    })
    .await;
    let image = photo("chelsea.jpg");
    let requests = (0..16).map(|_| {
        server
            .client
            .post(server.url(PREDICT))
            .body(image.clone())
            .send()
    });
    let answers = futures_join_all(requests).await;
    let mut statuses = BTreeSet::new();
    for response in answers {
        let answer = answer(response.expect("send")).await;
        statuses.insert(answer.status.as_u16());
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_error(&answer, 503, "queue_full");
            let retry: u64 = answer.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    }
    assert!(
        statuses.contains(&503),
        "the queue never filled: {statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_serves(&server.client, &server.base_url).await;
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!(
        r#"seresnext_requests_total{{model="{MODEL}",status="503"}}"#
    )));
    assert!(metrics.contains(r#"reason="queue_full"} "#));
    server.stop().await;
}

/// Sends every request at once and waits for all answers, in order.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.expect("request task"));
    }
    results
}

#[tokio::test]
async fn draining_turns_readiness_503_while_requests_are_still_served() {
    let server = start_server(|config| config.server.shutdown_grace_ms = 3_000).await;
    let client = server.client.clone();
    server.server.shutdown();
    // Readiness flips at once; liveness and predictions carry on through the grace period.
    let mut ready = get(&client, &server.url("/readyz")).await;
    for _ in 0..50 {
        if ready.status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = get(&client, &server.url("/readyz")).await;
    }
    assert_error(&ready, 503, "shutting_down");
    assert_eq!(ready.body["status"], "draining");
    assert_eq!(ready.body["ready"], false);
    assert_eq!(ready.headers["retry-after"], "1");
    let v2 = get(&client, &server.url("/v2/health/ready")).await;
    assert_eq!(v2.status, StatusCode::SERVICE_UNAVAILABLE);
    let metadata = get(&client, &server.url(&format!("/v1/models/{MODEL}"))).await;
    assert_eq!(metadata.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(metadata.body["ready"], false);
    assert_eq!(
        get(&client, &server.url("/healthz")).await.status,
        StatusCode::OK
    );
    assert_serves(&client, &server.base_url).await;
    server.server.wait().await.expect("clean shutdown");
}

#[tokio::test]
async fn random_weights_are_flagged_in_body_header_and_metadata() {
    let server = start_server(|config| {
        config.models[0].weights = seresnext_serve::config::WeightsSource::Random;
    })
    .await;
    let answer = post_raw(
        &server.client,
        &server.url(PREDICT),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["random_weights"], true);
    assert_eq!(answer.headers["x-random-weights"], "true");
    let metadata = get(&server.client, &server.url(&format!("/v1/models/{MODEL}"))).await;
    assert_eq!(metadata.body["random_weights"], true);
    server.stop().await;
}

// ---------------------------------------------------------------- metadata

#[tokio::test]
async fn models_list_and_metadata() {
    let server = shared_server();
    let client = Client::new();
    let list = get(&client, &server.url("/v1/models")).await;
    assert_eq!(list.status, StatusCode::OK);
    let models = list.body["models"].as_array().expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], MODEL);
    assert_eq!(models[0]["ready"], true);

    for name in [
        MODEL,
        "seresnext50_32x4d.gluon_in1k",
        "timm%2Fseresnext50_32x4d.gluon_in1k",
    ] {
        let answer = get(&client, &server.url(&format!("/v1/models/{name}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        let m = &answer.body;
        assert_eq!(m["name"], MODEL);
        assert_eq!(m["ready"], true);
        assert_eq!(m["aliases"][0], "seresnext50_32x4d.gluon_in1k");
        assert_eq!(m["architecture"]["name"], "seresnext50_32x4d");
        assert_eq!(m["architecture"]["blocks_per_stage"], json!([3, 4, 6, 3]));
        assert_eq!(m["architecture"]["cardinality"], 32);
        assert_eq!(m["input"]["shape"], json!([3, 224, 224]));
        assert_eq!(m["input"]["crop_pct"], 0.875);
        assert_eq!(m["input"]["interpolation"], "bicubic");
        assert_eq!(m["input"]["mean"].as_array().map(Vec::len), Some(3));
        assert_eq!(m["input"]["std"].as_array().map(Vec::len), Some(3));
        assert_eq!(m["num_classes"], 1000);
        assert_eq!(m["device"], "cpu");
        assert_eq!(m["requested_device"], "cpu");
        assert_eq!(m["dtype"], "fp32");
        assert_eq!(m["replicas"], 1);
        assert_eq!(m["ready_replicas"], 1);
        assert_eq!(
            m["batching"],
            json!({"max_batch_size": 4, "max_batch_delay_ms": 5, "queue_capacity": 64})
        );
        assert_eq!(m["random_weights"], false);
    }
    let via_alias = post_raw(
        &client,
        &server.url("/v1/models/seresnext50_32x4d.gluon_in1k:predict"),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_eq!(via_alias.status, StatusCode::OK);
    assert_eq!(via_alias.body["model_name"], MODEL);
}

#[tokio::test]
async fn health_probes_and_their_v2_aliases() {
    let server = shared_server();
    let client = Client::new();
    for path in ["/healthz", "/v2/health/live"] {
        let answer = get(&client, &server.url(path)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.body["status"], "alive");
    }
    for path in ["/readyz", "/v2/health/ready"] {
        let answer = get(&client, &server.url(path)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.body, json!({"status": "ready", "ready": true}));
    }
    let head = client
        .head(server.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(head.status(), StatusCode::OK);
}

/// One exposition sample line: `name{label="value",...} value`.
fn is_valid_sample(line: &str) -> bool {
    let Some((series, value)) = line.rsplit_once(' ') else {
        return false;
    };
    let value_ok = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => match rest.strip_suffix('}') {
            Some(labels) => (name, labels),
            None => return false,
        },
        None => (series, ""),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_empty()
        || labels.split(',').all(|pair| {
            pair.split_once('=').is_some_and(|(key, quoted)| {
                !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && quoted.len() >= 2
                    && quoted.starts_with('"')
                    && quoted.ends_with('"')
            })
        });
    value_ok && name_ok && labels_ok
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_family() {
    let server = shared_server();
    let client = Client::new();
    assert_serves(&client, &server.base_url).await;
    let response = client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        seresnext_serve::metrics::CONTENT_TYPE
    );
    let text = response.text().await.expect("text");
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
        } else {
            assert!(is_valid_sample(line), "invalid sample line: {line}");
        }
    }
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
        r#"seresnext_requests_total{{model="{MODEL}",status="200"}}"#
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

// ---------------------------------------------------------------- openapi

/// `(METHOD, path)` of every operation in openapi.yaml.
fn documented_operations() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("read openapi.yaml");
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML");
    assert!(spec["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let paths = spec["paths"].as_mapping().expect("paths");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path is a string");
        let item = item.as_mapping().expect("path item");
        for (key, _) in item {
            let key = key.as_str().expect("key");
            if methods.contains(&key) {
                operations.insert((key.to_uppercase(), path.to_owned()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let documented = documented_operations();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect();
    assert_eq!(documented, routed, "openapi.yaml and http::ROUTES differ");

    let server = shared_server();
    let client = Client::new();
    for (method, path) in documented {
        let url = server.url(&path.replace("{model}", MODEL));
        let request = match method.as_str() {
            "GET" => client.get(&url),
            // KServe V2 inference takes its JSON, here with a base64 image.
            "POST" if path.ends_with("/infer") => client.post(&url).json(&json!({
                "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                            "data": [base64::engine::general_purpose::STANDARD
                                .encode(photo("chelsea.jpg"))]}],
            })),
            "POST" => client.post(&url).body(photo("chelsea.jpg")),
            other => panic!("no probe for {other}"),
        };
        let status = request.send().await.expect("send").status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but answers {status}"
        );
        assert!(status.is_success(), "{method} {path}: {status}");
    }
}
