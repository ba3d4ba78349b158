//! The HTTP contract in seconds: the real router and facade, driven with
//! `oneshot`, over fake-engine models (no libtorch weights, no fixtures).
//! Each answer is checked against what the fake engine computes for the very
//! crop our preprocessing makes of the upload, so a mix-up anywhere between
//! the body and the JSON fails here.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::{router, AppState};
use crate::config::ServerConfig;
use crate::infer::fake::{self, fake_class};
use crate::model::{ImageInput, ModelId};
use crate::preprocess::{prepare, DecodeLimits};

const MODEL: &str = "gluon_seresnext50_32x4d";
const PREDICT: &str = "/v1/models/gluon_seresnext50_32x4d:predict";

/// A small PNG whose pixels depend on `seed`, so two images get different crops.
fn png(seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(3).wrapping_add(seed),
            (y as u8).wrapping_mul(5),
            seed.wrapping_mul(7),
        ])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encode a PNG");
    bytes.into_inner()
}

/// The class the fake engine gives `bytes` after our preprocessing.
fn expected_class(bytes: &[u8]) -> u64 {
    let id = ModelId::parse(MODEL).unwrap();
    let spec = id.pretrained_cfg().transform_spec();
    let crop = prepare(bytes, &spec, &DecodeLimits::default()).expect("preprocess");
    fake_class(ImageInput::Crop(&crop.rgb), id.pretrained_cfg().num_classes) as u64
}

async fn send(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response: Response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
    };
    (status, headers, json)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A POST as a client sends it, with its `Content-Length`.
fn post(path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Request<Body> {
    let body = body.into();
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn a_raw_image_is_answered_with_the_engines_class_and_timings() {
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    let image = png(1);
    let (status, headers, body) = send(&state, post(PREDICT, "image/png", image.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_name"], MODEL);
    let top = &body["predictions"][0]["top_k"];
    assert_eq!(top[0]["class_id"].as_u64(), Some(expected_class(&image)));
    assert!((top[0]["probability"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(top.as_array().unwrap().len(), 5);
    for name in [
        "x-preprocess-time-ms",
        "x-queue-time-ms",
        "x-inference-time-ms",
        "x-total-time-ms",
    ] {
        let value: f64 = headers[name].to_str().unwrap().parse().unwrap();
        assert!(value >= 0.0, "{name}");
    }
    assert_eq!(headers["x-random-weights"], "true");
    served.stop().await;
}

#[tokio::test]
async fn json_images_come_back_in_request_order() {
    use base64::Engine;
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    let images: Vec<Vec<u8>> = (10..14).map(png).collect();
    let instances: Vec<Value> = images
        .iter()
        .map(|image| serde_json::json!({"b64": base64::engine::general_purpose::STANDARD.encode(image)}))
        .collect();
    let body = serde_json::json!({"instances": instances, "parameters": {"top_k": 1}}).to_string();
    let (status, _, answer) = send(&state, post(PREDICT, "application/json", body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let got: Vec<u64> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["top_k"][0]["class_id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = images.iter().map(|image| expected_class(image)).collect();
    assert_eq!(got, want);
    served.stop().await;
}

#[tokio::test]
async fn unknown_models_and_wrong_methods_are_refused_by_the_extractors() {
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    let (status, headers, body) =
        send(&state, post("/v1/models/nope:predict", "image/png", png(2))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_type"], "model_not_found");
    // An unread upload ends its connection.
    assert_eq!(headers[header::CONNECTION], "close");
    let metrics = served.service.metrics().render();
    assert!(
        metrics
            .contains(r#"seresnext_requests_total{model="unknown",status="404",task="predict"} 1"#),
        "{metrics}"
    );
    let (status, _, _) = send(&state, post("/v1/models/nope:embed", "image/png", png(2))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let metrics = served.service.metrics().render();
    assert!(
        metrics
            .contains(r#"seresnext_requests_total{model="unknown",status="404",task="embed"} 1"#),
        "{metrics}"
    );

    let (status, headers, body) = send(&state, get(PREDICT)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "POST");
    assert_eq!(body["error_type"], "method_not_allowed");

    let (status, headers, _) = send(
        &state,
        post(&format!("/v1/models/{MODEL}"), "image/png", png(2)),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, HEAD");

    let (status, _, body) = send(&state, get("/v1/models/m:explain")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_type"], "not_found");
    served.stop().await;
}

#[tokio::test]
async fn readiness_is_one_answer_for_health_v1_metadata_and_v2() {
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    let model_path = format!("/v1/models/{MODEL}");
    let v2_ready = format!("/v2/models/{MODEL}/ready");
    for path in [
        "/readyz",
        "/v2/health/ready",
        model_path.as_str(),
        v2_ready.as_str(),
    ] {
        let (status, _, body) = send(&state, get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, _, list) = send(&state, get("/v1/models")).await;
    assert_eq!(list["models"][0]["ready"], true);
    assert_eq!(list["models"][0]["device"], "cpu");

    served.lose_replica(0, "injected");
    for path in ["/readyz", model_path.as_str(), v2_ready.as_str()] {
        let (status, headers, body) = send(&state, get(path)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        if path == model_path {
            // V1 model readiness: the metadata itself, saying not ready.
            assert_eq!(body["ready"], false, "{body}");
        } else {
            assert_eq!(body["error_type"], "model_load_failed", "{path}: {body}");
            assert_eq!(headers[header::RETRY_AFTER], "1", "{path}");
        }
    }
    let (status, _, body) = send(&state, get("/healthz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error_type"], "replica_lost");

    served.service.begin_draining();
    let (status, _, body) = send(&state, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "draining");
    assert_eq!(body["error_type"], "shutting_down");
    served.stop().await;
}

#[tokio::test]
async fn v2_infer_answers_bytes_images_with_the_engines_probabilities() {
    use base64::Engine;
    let served = fake::serve(&[MODEL]);
    let state = AppState::new(served.service.clone(), ServerConfig::default());
    let image = png(3);
    let body = serde_json::json!({
        "id": "r1",
        "inputs": [{
            "name": "image_bytes", "datatype": "BYTES", "shape": [1],
            "data": [base64::engine::general_purpose::STANDARD.encode(&image)]
        }]
    })
    .to_string();
    let path = format!("/v2/models/{MODEL}/infer");
    let (status, headers, answer) = send(&state, post(&path, "application/json", body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["id"], "r1");
    assert_eq!(answer["outputs"][0]["shape"], serde_json::json!([1, 1000]));
    let probabilities = answer["outputs"][0]["data"].as_array().unwrap();
    let best = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .map(|(index, _)| index as u64);
    assert_eq!(best, Some(expected_class(&image)));
    assert!(headers.contains_key("x-total-time-ms"));

    let (status, _, body) = send(&state, get("/v2/models/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_type"], "model_not_found");
    served.stop().await;
}
