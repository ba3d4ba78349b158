//! The Open Inference Protocol (KServe V2) with the real `tritonclient[http]`:
//! tests/it/kserve_v2_client.py, run with the project venv's Python against a
//! server on port 0 serving the fixture `gluon_seresnext50_32x4d` on the
//! CPU, must get the V1 API's answers for the same images through `BYTES`
//! and `FP32` inputs, JSON and binary, and the classification extension.
//! And the engine under it: a batch mixing crops and client-normalized
//! images answers each exactly as a batch of crops does.
//!
//! JSON and binary requests by hand, and malformed ones: kserve_v2_http.rs.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{json, Value};

use seresnext_serve::model::{Classifier, ImageInput, LoadOptions, ModelId};
use seresnext_serve::preprocess::{self, DecodeLimits};
use support::kserve::{
    assert_close, floats, listed_classes, our_normalized_input, top_classes, v1_probabilities,
    CLIENT_TOLERANCE, SAME_INPUT_TOLERANCE,
};
use support::server::{photo, photos, start_server, MODEL};

// ------------------------------------------------------------- tritonclient

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_gets_the_v1_answers_through_every_v2_path() {
    let server = start_server(|_| {}).await;
    let photos = photos();
    let paths: Vec<PathBuf> = photos
        .iter()
        .map(|(name, _, _)| support::fixture_path(&format!("photos/{name}")))
        .collect();
    // The FP32 path gets our own preprocessing, so it must match V1 closely.
    let normalized_dir = std::env::temp_dir().join(format!("kserve-v2-{}", std::process::id()));
    std::fs::create_dir_all(&normalized_dir).expect("temp dir");
    for (name, bytes, _) in &photos {
        let values: Vec<u8> = our_normalized_input(bytes)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(normalized_dir.join(format!("{name}.f32")), values).expect("write input");
    }

    let report = run_client(&server.base_url, &paths, &normalized_dir).await;
    let _ = std::fs::remove_dir_all(&normalized_dir);

    assert_eq!(report["server_live"], true);
    assert_eq!(report["server_ready"], true);
    assert_eq!(report["model_ready"], true);
    assert_eq!(report["unknown_model_ready"], false);
    let extensions = &report["server_metadata"]["extensions"];
    for extension in ["classification", "binary_tensor_data"] {
        assert!(
            extensions.as_array().unwrap().contains(&json!(extension)),
            "{extensions}"
        );
    }
    let metadata = &report["model_metadata"];
    assert_eq!(metadata["name"], MODEL);
    assert_eq!(
        metadata["inputs"],
        json!([
            {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
            {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]},
        ])
    );
    assert_eq!(
        metadata["outputs"],
        json!([
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]},
            {"name": "features", "datatype": "FP32", "shape": [-1, 2048]},
        ])
    );
    assert_eq!(report["unknown_model_error"]["status"], "404");

    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), photos.len());
    for ((name, bytes, _), image) in photos.iter().zip(images) {
        let v1 = v1_probabilities(&server.client, &server.base_url, bytes.clone()).await;
        assert_eq!(image["fp32_source"], "given", "{name}");
        for path in ["bytes_binary", "bytes_json", "fp32_binary", "fp32_json"] {
            let ours = floats(&image[path]["probabilities"]);
            assert_close(&ours, &v1, CLIENT_TOLERANCE, &format!("{name} {path}"));
        }
        for path in ["classification_binary", "classification_json"] {
            let classes = image[path].as_array().expect("classes");
            let ids: Vec<usize> = classes
                .iter()
                .map(|c| c[1].as_u64().unwrap() as usize)
                .collect();
            assert_eq!(ids, top_classes(&v1, 5), "{name} {path}");
            for class in classes {
                let id = class[1].as_u64().unwrap() as usize;
                let probability = class[0].as_f64().unwrap();
                assert!(
                    (probability - v1[id]).abs() <= CLIENT_TOLERANCE,
                    "{name} {path}"
                );
                let label = seresnext_serve::labels::label(id).unwrap();
                assert_eq!(class[2], label, "{name} {path}");
            }
        }
        let batch_index = images
            .iter()
            .position(|i| i["image"] == name.as_str())
            .unwrap();
        let batched = listed_classes(&report["batch_top5"][batch_index]);
        let ids: Vec<usize> = batched.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, top_classes(&v1, 5), "{name} in a batch");
        for (probability, id) in batched {
            assert!(
                (probability - v1[id]).abs() <= CLIENT_TOLERANCE,
                "{name} batch"
            );
        }
    }

    // Readiness per model follows draining, as the probes do.
    server.server.service.begin_draining();
    let url = server.url(&format!("/v2/models/{MODEL}/ready"));
    let response = server.client.get(url).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["error_type"], "shutting_down");
    server.stop().await;
}

/// Runs tests/it/kserve_v2_client.py with the project venv and parses its report.
async fn run_client(base_url: &str, images: &[PathBuf], normalized_dir: &Path) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let output = tokio::process::Command::new(&python)
        .arg(root.join("tests/it/kserve_v2_client.py"))
        .arg(base_url)
        .args(images)
        .arg("--normalized-dir")
        .arg(normalized_dir)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e} (make venv creates it)", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kserve_v2_client.py failed ({}); tritonclient[http] comes with \
         scripts/requirements.txt (make venv):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("the client prints one JSON document")
}

// ------------------------------------------------------------------- engine

#[test]
fn mixed_batches_of_crops_and_normalized_images_match_crops_alone() {
    let id = ModelId::parse(MODEL).unwrap();
    let weights = support::fixture_path("models/gluon_seresnext50_32x4d.safetensors");
    let classifier = Classifier::load_file(id, &weights, LoadOptions::default()).expect("load");
    let spec = classifier.transform_spec();
    let crops: Vec<Vec<u8>> = ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
        .iter()
        .map(|name| {
            preprocess::prepare(&photo(name), &spec, &DecodeLimits::default())
                .unwrap()
                .rgb
        })
        .collect();
    let crop_refs: Vec<&[u8]> = crops.iter().map(Vec::as_slice).collect();
    let reference = classifier.classify(&crop_refs).unwrap();
    // The middle image as the exact normalized tensor our engine builds.
    let normalized = classifier.normalized_input(&crop_refs[1..2]).unwrap();

    let mixed = classifier
        .classify_inputs(&[
            ImageInput::Crop(crop_refs[0]),
            ImageInput::Normalized(&normalized),
            ImageInput::Crop(crop_refs[2]),
        ])
        .unwrap();
    let only_normalized = classifier
        .classify_inputs(&[ImageInput::Normalized(&normalized)])
        .unwrap();
    let by_image: BTreeMap<&str, (&[f32], &[f32])> = BTreeMap::from([
        ("crop 0", (mixed[0].as_slice(), reference[0].as_slice())),
        (
            "normalized 1",
            (mixed[1].as_slice(), reference[1].as_slice()),
        ),
        ("crop 2", (mixed[2].as_slice(), reference[2].as_slice())),
        (
            "normalized alone",
            (only_normalized[0].as_slice(), reference[1].as_slice()),
        ),
    ]);
    for (what, (ours, expected)) in by_image {
        let (worst, _) = support::abs_diff_stats(ours, expected);
        assert!(f64::from(worst) <= SAME_INPUT_TOLERANCE, "{what}: {worst}");
    }

    let error = classifier
        .classify_inputs(&[ImageInput::Normalized(&normalized[1..])])
        .unwrap_err();
    assert!(error.to_string().contains("150528 floats"), "{error}");
}
