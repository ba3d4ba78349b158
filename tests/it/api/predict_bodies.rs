//! What a good V1 predict request gets, in every body the API takes: raw
//! bytes of each format, multipart batches, KServe V1 JSON; `top_k`, the
//! timing headers and the request id.

use std::io::Cursor;

use reqwest::{Client, StatusCode};
use serde_json::json;
use seresnext_serve::preprocess::{self, DecodeLimits};

use crate::support::b64;
use crate::support::http::{post_raw, probabilities, send, top1};
use crate::support::server::{photo, photos, shared_server, MODEL, PREDICT};

/// The JPEG as the server decodes it (libjpeg-turbo, as Pillow), written
/// losslessly in another format: the very same pixels.
fn reencode(jpeg: &[u8], format: image::ImageFormat) -> Vec<u8> {
    let decoded = preprocess::decode(jpeg, &DecodeLimits::default()).expect("decode fixture");
    let image = image::DynamicImage::ImageRgb8(decoded);
    let image = match format {
        image::ImageFormat::Gif => image::DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => image::DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

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
    let batch = send(client.post(&url).multipart(form)).await;
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
    let answer = send(client.post(&url).json(&request)).await;
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

    let request = client
        .post(server.url(PREDICT))
        .header("x-request-id", "my-request-42")
        .body(photo("chelsea.jpg"));
    let answer = send(request).await;
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
