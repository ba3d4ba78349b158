//! Requests the API refuses, each with its status and stable `error_type`
//! in the JSON error body: 400, 404, 405, 413, 415 and 422. After each, a
//! good request is still served.

use std::io::Cursor;

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::support::b64;
use crate::support::http::{assert_error, assert_serves, get, metrics_text, post_raw, send};
use crate::support::server::{photo, serve_with, shared_server, PREDICT};

#[tokio::test]
async fn malformed_requests_are_400() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(PREDICT);
    for (body, error_type) in [
        ("{\"instances\": [", "invalid_json"),
        (r#"{"instances": [{"url": "x"}]}"#, "invalid_json"),
        (
            r#"{"instances": [{"b64": "@@not base64@@"}]}"#,
            "invalid_base64",
        ),
        (r#"{"instances": []}"#, "no_images"),
    ] {
        let answer = post_raw(&client, &url, body.into(), Some("application/json")).await;
        assert_error(&answer, 400, error_type);
    }
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
    let both =
        json!({"instances": [{"b64": b64(&photo("chelsea.jpg"))}], "parameters": {"top_k": 3}});
    let conflicting = send(client.post(format!("{url}?top_k=2")).json(&both)).await;
    assert_error(&conflicting, 400, "invalid_parameter");
    let bad_timeout = send(
        client
            .post(&url)
            .header("x-request-timeout-ms", "soon")
            .body(photo("chelsea.jpg")),
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
        "/nope",
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

    let text = metrics_text(&client, &server.base_url).await;
    assert!(
        text.contains(r#"seresnext_requests_total{model="unknown",status="404",task="predict"}"#),
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

    let delete = send(client.delete(server.url("/healthz"))).await;
    assert_error(&delete, 405, "method_not_allowed");
    let allow = delete.headers["allow"].to_str().expect("ascii");
    assert!(allow.contains("GET"), "{allow}");
    let put = send(client.put(server.url(PREDICT)).body("x")).await;
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
    let multipart = send(client.post(&url).multipart(form)).await;
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
    let too_many = send(client.post(&url).multipart(form)).await;
    assert_error(&too_many, 413, "too_many_images");
    let instances = vec![json!({"b64": b64(&small)}); 3];
    let too_many_json = send(client.post(&url).json(&json!({"instances": instances}))).await;
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
