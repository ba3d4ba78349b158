//! Shared by the KServe V2 tests: our own preprocessing as a client would
//! replicate it, the V1 API's full answer for an image, and comparisons.

use reqwest::{Client, StatusCode};
use serde_json::Value;
use seresnext_serve::model::ModelId;
use seresnext_serve::preprocess::{self, DecodeLimits};

use super::server::MODEL;

pub const V2_INFER: &str = "/v2/models/gluon_seresnext50_32x4d/infer";
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Same image, same preprocessing, possibly another batch: only float
/// rounding of different batch shapes may differ.
pub const SAME_INPUT_TOLERANCE: f64 = 1e-5;
/// The bound for what `tritonclient` gets back (top-5 must be equal too).
pub const CLIENT_TOLERANCE: f64 = 1e-4;

/// The model's normalized input for `bytes`, prepared exactly as the server
/// prepares an upload (our decoder and resize, then timm's normalization).
pub fn our_normalized_input(bytes: &[u8]) -> Vec<f32> {
    let cfg = ModelId::parse(MODEL).expect("model id").pretrained_cfg();
    let crop = preprocess::prepare(bytes, &cfg.transform_spec(), &DecodeLimits::default())
        .expect("fixture photo preprocesses");
    let plane = (crop.width * crop.height) as usize;
    let mut chw = vec![0f32; 3 * plane];
    for (pixel, rgb) in crop.rgb.chunks_exact(3).enumerate() {
        for channel in 0..3 {
            chw[channel * plane + pixel] =
                (f32::from(rgb[channel]) / 255.0 - cfg.mean[channel]) / cfg.std[channel];
        }
    }
    chw
}

/// Every class probability of `bytes` from the V1 API (top_k = all).
pub async fn v1_probabilities(client: &Client, base_url: &str, bytes: Vec<u8>) -> Vec<f64> {
    let url = format!("{base_url}/v1/models/{MODEL}:predict?top_k=1000");
    let response = client.post(url).body(bytes).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("V1 JSON");
    let mut probabilities = vec![f64::NAN; 1000];
    for class in body["predictions"][0]["top_k"].as_array().expect("top_k") {
        let id = class["class_id"].as_u64().expect("class_id") as usize;
        probabilities[id] = class["probability"].as_f64().expect("probability");
    }
    probabilities
}

pub fn top_classes(probabilities: &[f64], k: usize) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..probabilities.len()).collect();
    ids.sort_by(|a, b| {
        probabilities[*b]
            .total_cmp(&probabilities[*a])
            .then(a.cmp(b))
    });
    ids.truncate(k);
    ids
}

pub fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[track_caller]
pub fn assert_close(ours: &[f64], v1: &[f64], tolerance: f64, what: &str) {
    assert_eq!(ours.len(), v1.len(), "{what}: lengths");
    let worst = super::max_abs_diff(ours.iter().copied().zip(v1.iter().copied()));
    assert!(
        worst <= tolerance,
        "{what}: max |diff| {worst} > {tolerance}"
    );
    assert_eq!(top_classes(ours, 5), top_classes(v1, 5), "{what}: top-5");
}

/// `[[probability, index, label?], ...]` as the script prints top lists.
pub fn listed_classes(value: &Value) -> Vec<(f64, usize)> {
    value
        .as_array()
        .expect("class list")
        .iter()
        .map(|entry| {
            (
                entry[0].as_f64().unwrap(),
                entry[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}
