//! `POST /v1/models/{model}:embed` end to end: the fixture photos' embeddings
//! against timm's pre-logits features, raw and L2-normalized, in every body
//! the API takes; its parameters; and predict and embed requests sharing one
//! batch.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use seresnext_serve::config::BatchWindow;

use crate::support::embeddings::{cosine, min_cosine, norm, timm_features, DIM};
use crate::support::http::{assert_error, metrics_text, post_raw, send, top1};
use crate::support::kserve::{floats, V2_INFER};
use crate::support::server::{photo, photos, shared_server, start_server, MODEL, PREDICT};
use crate::support::{b64, manifest};

/// The `:embed` route of the fixture model.
pub const EMBED: &str = "/v1/models/gluon_seresnext50_32x4d:embed";

/// The `embeddings` of a response, as f32 rows.
fn embeddings(body: &Value) -> Vec<Vec<f32>> {
    body["embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("an embedding")
                .iter()
                .map(|v| v.as_f64().expect("a number") as f32)
                .collect()
        })
        .collect()
}

fn multipart(images: &[(String, Vec<u8>, usize)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (index, (name, bytes, _)) in images.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone());
        form = form.part(format!("image{index}"), part);
    }
    form
}

#[tokio::test]
async fn photo_embeddings_match_timm_raw_and_normalized() {
    let server = shared_server();
    let client = Client::new();
    let photos = photos();
    let expected = timm_features(MODEL);
    let files: Vec<String> = manifest().photos.into_iter().map(|p| p.file).collect();

    let raw = send(
        client
            .post(server.url(&format!("{EMBED}?normalize=false")))
            .header("x-request-id", "embed-7")
            .multipart(multipart(&photos)),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.body);
    assert_eq!(raw.body["model_name"], MODEL);
    assert_eq!(raw.body["dim"], DIM);
    assert_eq!(raw.body["normalized"], false);
    assert_eq!(raw.headers["x-request-id"], "embed-7");
    for header in [
        "x-preprocess-time-ms",
        "x-queue-time-ms",
        "x-inference-time-ms",
        "x-total-time-ms",
    ] {
        assert!(raw.headers.contains_key(header), "{header}");
    }
    assert!(raw.body["timing"]["total_ms"].is_number());
    assert_eq!(
        raw.body["batch_sizes"].as_array().map(Vec::len),
        Some(photos.len())
    );
    let raw_rows = embeddings(&raw.body);
    assert_eq!(raw_rows.len(), photos.len());
    for ((row, timm), file) in raw_rows.iter().zip(&expected).zip(&files) {
        assert_eq!(row.len(), DIM);
        let similarity = cosine(row, timm);
        let norms = (norm(row), norm(timm));
        eprintln!(
            "{file}: 1 - cosine {:.1e}, norm {:.4} (timm {:.4})",
            1.0 - similarity,
            norms.0,
            norms.1
        );
        assert!(
            similarity >= min_cosine(file),
            "{file}: cosine {similarity}"
        );
        assert!(
            (norms.0 / norms.1 - 1.0).abs() < 1e-3,
            "{file}: raw norms {norms:?}"
        );
        assert!(
            (norms.0 - 1.0).abs() > 0.1,
            "{file}: raw features are not unit vectors"
        );
    }

    // The default, through a KServe V1 JSON body: unit vectors, the raw
    // ones scaled.
    let instances: Vec<Value> = photos
        .iter()
        .map(|(_, bytes, _)| json!({"b64": b64(bytes)}))
        .collect();
    let unit = send(
        client
            .post(server.url(EMBED))
            .json(&json!({"instances": instances, "parameters": {"timeout_ms": 60000}})),
    )
    .await;
    assert_eq!(unit.status, StatusCode::OK, "{}", unit.body);
    assert_eq!(unit.body["normalized"], true);
    for ((unit, raw), file) in embeddings(&unit.body).iter().zip(&raw_rows).zip(&files) {
        assert!(
            (norm(unit) - 1.0).abs() < 1e-5,
            "{file}: norm {}",
            norm(unit)
        );
        assert!(cosine(unit, raw) > 0.999_999, "{file}");
    }

    // A raw body, and `normalize` in the JSON parameters.
    let single = post_raw(
        &client,
        &server.url(EMBED),
        photo("camera_gray.png"),
        Some("image/png"),
    )
    .await;
    assert_eq!(single.status, StatusCode::OK, "{}", single.body);
    assert!((norm(&embeddings(&single.body)[0]) - 1.0).abs() < 1e-5);
    let index = files
        .iter()
        .position(|f| f.ends_with("camera_gray.png"))
        .unwrap();
    let raw_json = send(client.post(server.url(EMBED)).json(&json!({
        "instances": [{"b64": b64(&photos[index].1)}],
        "parameters": {"normalize": false},
    })))
    .await;
    assert_eq!(raw_json.status, StatusCode::OK, "{}", raw_json.body);
    assert_eq!(raw_json.body["normalized"], false);
    assert!(cosine(&embeddings(&raw_json.body)[0], &raw_rows[index]) > 0.999_999);
}

#[tokio::test]
async fn embed_parameters_are_checked() {
    let server = shared_server();
    let client = Client::new();
    let jpeg = photo("chelsea.jpg");
    for query in [
        "?normalize=maybe",
        "?normalize=",
        "?normalize=1",
        "?top_k=3",
        "?normalise=false",
    ] {
        let url = server.url(&format!("{EMBED}{query}"));
        let answer = post_raw(&client, &url, jpeg.clone(), Some("image/jpeg")).await;
        assert_error(&answer, 400, "invalid_parameter");
    }
    for parameters in [
        json!({"normalize": "yes"}),
        json!({"normalize": 1}),
        json!({"top_k": 2}),
    ] {
        let body = json!({"instances": [{"b64": b64(&jpeg)}], "parameters": parameters});
        let answer = send(client.post(server.url(EMBED)).json(&body)).await;
        assert_error(&answer, 400, "invalid_parameter");
    }
    let conflicting =
        json!({"instances": [{"b64": b64(&jpeg)}], "parameters": {"normalize": true}});
    let answer = send(
        client
            .post(server.url(&format!("{EMBED}?normalize=false")))
            .json(&conflicting),
    )
    .await;
    assert_error(&answer, 400, "invalid_parameter");
    let url = server.url(&format!("{PREDICT}?normalize=false"));
    let answer = post_raw(&client, &url, jpeg.clone(), Some("image/jpeg")).await;
    assert_error(&answer, 400, "invalid_parameter");
    let unknown = server.url("/v1/models/gluon_seresnext50_32x4d:embedding");
    let answer = post_raw(&client, &unknown, jpeg, Some("image/jpeg")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let get = send(client.get(server.url(EMBED))).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers["allow"], "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_and_embed_sent_together_share_one_batch() {
    // A batch of two runs as soon as both images are queued; the long
    // fixed window only keeps the first from running alone.
    let server = start_server(|config| {
        let model = &mut config.models[0];
        model.max_batch_size = 2;
        model.max_batch_delay_ms = 10_000;
        model.batch_window = BatchWindow::Fixed;
    })
    .await;
    let (chelsea, coffee) = (photo("chelsea.jpg"), photo("coffee.jpg"));
    let (predict_url, embed_url) = (server.url(PREDICT), server.url(EMBED));
    let predict = post_raw(&server.client, &predict_url, chelsea, Some("image/jpeg"));
    let embed = post_raw(&server.client, &embed_url, coffee, Some("image/jpeg"));
    let (predict, embed) = tokio::join!(predict, embed);
    assert_eq!(predict.status, StatusCode::OK, "{}", predict.body);
    assert_eq!(embed.status, StatusCode::OK, "{}", embed.body);
    assert_eq!(predict.body["batch_sizes"], json!([2]));
    assert_eq!(embed.body["batch_sizes"], json!([2]));
    assert_eq!(
        top1(&predict.body, 0),
        285,
        "the predict image kept its answer"
    );
    let coffee_index = 1;
    let similarity = cosine(
        &embeddings(&embed.body)[0],
        &timm_features(MODEL)[coffee_index],
    );
    assert!(
        similarity >= 0.999,
        "the embed image kept its features: {similarity}"
    );
    assert!(predict.body.get("embeddings").is_none());

    // One request of each, told apart by the `task` label.
    let text = metrics_text(&server.client, &server.base_url).await;
    for task in ["predict", "embed"] {
        let line =
            format!(r#"seresnext_requests_total{{model="{MODEL}",status="200",task="{task}"}} 1"#);
        assert!(text.contains(&line), "{line} in\n{text}");
        let count = format!(
            r#"seresnext_request_duration_seconds_count{{model="{MODEL}",task="{task}"}} 1"#
        );
        assert!(text.contains(&count), "{count}");
    }
    server.stop().await;
}

/// KServe V2's `features` output is `:embed?normalize=false`, beside or
/// instead of the probabilities, in JSON or binary; the metadata lists it.
#[tokio::test]
async fn v2_features_output_matches_raw_embeddings() {
    let server = shared_server();
    let client = Client::new();
    let (chelsea, png) = (photo("chelsea.jpg"), photo("logo_rgba.png"));
    let images = vec![
        ("chelsea.jpg".to_owned(), chelsea.clone(), 0),
        ("logo_rgba.png".to_owned(), png.clone(), 0),
    ];
    let raw = send(
        client
            .post(server.url(&format!("{EMBED}?normalize=false")))
            .multipart(multipart(&images)),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.body);
    let expected: Vec<f32> = embeddings(&raw.body).concat();

    let input = json!({"name": "image_bytes", "datatype": "BYTES", "shape": [2],
                       "data": [b64(&chelsea), b64(&png)]});
    let both = send(client.post(server.url(V2_INFER)).json(&json!({
        "inputs": [input],
        "outputs": [{"name": "features"}, {"name": "probabilities"}],
    })))
    .await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.body);
    let features = &both.body["outputs"][0];
    assert_eq!(features["name"], "features");
    assert_eq!(features["datatype"], "FP32");
    assert_eq!(features["shape"], json!([2, DIM]));
    let values: Vec<f32> = floats(&features["data"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    for (ours, reference) in values.chunks(DIM).zip(expected.chunks(DIM)) {
        assert!(cosine(ours, reference) > 0.999_999);
        assert!((norm(ours) / norm(reference) - 1.0).abs() < 1e-5);
    }
    assert_eq!(both.body["outputs"][1]["name"], "probabilities");
    assert_eq!(both.body["outputs"][1]["shape"], json!([2, 1000]));

    // Only the features, binary.
    let only = client
        .post(server.url(V2_INFER))
        .json(&json!({
            "inputs": [input],
            "outputs": [{"name": "features", "parameters": {"binary_data": true}}],
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(only.status(), StatusCode::OK);
    let json_length: usize = only.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = only.bytes().await.expect("body");
    let header: Value = serde_json::from_slice(&bytes[..json_length]).expect("JSON header");
    assert_eq!(header["outputs"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        header["outputs"][0]["parameters"]["binary_data_size"],
        2 * DIM * 4
    );
    let binary: Vec<f32> = bytes[json_length..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(binary.len(), 2 * DIM);
    assert!(cosine(&binary, &expected) > 0.999_999);

    for outputs in [
        json!([{"name": "embeddings"}]),
        json!([{"name": "features"}, {"name": "features"}]),
    ] {
        let answer = send(
            client
                .post(server.url(V2_INFER))
                .json(&json!({"inputs": [input], "outputs": outputs})),
        )
        .await;
        assert_error(&answer, 400, "invalid_tensor");
    }
    let metadata = send(client.get(server.url("/v2/models/gluon_seresnext50_32x4d"))).await;
    assert_eq!(
        metadata.body["outputs"][1],
        json!({"name": "features", "datatype": "FP32", "shape": [-1, 2048]})
    );
}
