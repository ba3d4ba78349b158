//! KServe's own Python SDK (`kserve` 0.21, `InferenceRESTClient`) against
//! both APIs: tests/it/kserve_sdk_client.py, run with `.venv-kserve`'s
//! Python against a server on port 0 serving the fixture
//! `gluon_seresnext50_32x4d` on the CPU. Readiness, metadata (parsed by the
//! SDK's own response models), V2 inference with `BYTES` images and an
//! `FP32` tensor, binary and JSON, the classification extension, and V1
//! `:predict` must all give the V1 API's answers; a body naming another
//! model or version must be refused with both names.
//!
//! The SDK lives in `.venv-kserve` (`make kserve-tools`, which `make test`
//! runs). Without it this test fails: a check that was not run has not
//! passed.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

use support::kserve::{
    assert_close, floats, our_normalized_input, top_classes, v1_probabilities, SAME_INPUT_TOLERANCE,
};
use support::server::{photo, start_server, MODEL};

/// The fixture JPEGs, sent together as one batch.
const IMAGES: [&str; 3] = ["chelsea.jpg", "coffee.jpg", "rocket.jpg"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_sdk_gets_the_v1_answers_through_v1_and_v2() {
    let python = sdk_python();
    let server = start_server(|_| {}).await;
    let images: Vec<Vec<u8>> = IMAGES.iter().map(|name| photo(name)).collect();
    // The FP32 input is our own preprocessing, so it must match V1 closely.
    let normalized = std::env::temp_dir().join(format!("kserve-sdk-{}.f32", std::process::id()));
    let values: Vec<u8> = images
        .iter()
        .flat_map(|bytes| our_normalized_input(bytes))
        .flat_map(f32::to_le_bytes)
        .collect();
    std::fs::write(&normalized, values).expect("write the FP32 input");
    let paths: Vec<PathBuf> = IMAGES
        .iter()
        .map(|name| support::fixture_path(&format!("photos/{name}")))
        .collect();

    let report = run_client(&python, &server.base_url, &normalized, &paths).await;
    let _ = std::fs::remove_file(&normalized);

    let version = report["sdk_version"].as_str().expect("sdk_version");
    assert!(version.starts_with("0.21."), "kserve {version}");
    let v2 = &report["v2"];
    assert_eq!(v2["server_live"], true);
    assert_eq!(v2["server_ready"], true);
    assert_eq!(v2["model_ready"], true);
    assert_eq!(v2["unknown_model_ready"], false);
    let extensions = v2["server_metadata"]["extensions"].as_array().unwrap();
    for extension in ["classification", "binary_tensor_data"] {
        assert!(extensions.contains(&json!(extension)), "{extensions:?}");
    }
    let metadata = &v2["model_metadata"];
    assert_eq!(metadata["name"], MODEL);
    assert_eq!(metadata["versions"], json!(["1"]));
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

    let v1_sdk = &report["v1"];
    assert_eq!(v1_sdk["model_ready"], true);
    assert_eq!(v1_sdk["model_name"], MODEL);
    for (index, (name, bytes)) in IMAGES.iter().zip(&images).enumerate() {
        let v1 = v1_probabilities(&server.client, &server.base_url, bytes.clone()).await;
        let row = |value: &Value| floats(&value[index]);
        let what = |path: &str| format!("{name}: {path}");
        assert_close(
            &row(&v1_sdk["probabilities"]),
            &v1,
            SAME_INPUT_TOLERANCE,
            &what("V1 through the SDK"),
        );
        for path in ["bytes_binary", "bytes_json", "fp32_binary", "fp32_json"] {
            assert_close(&row(&v2[path]), &v1, SAME_INPUT_TOLERANCE, &what(path));
        }
        let classes = v2["classification"][index].as_array().expect("classes");
        let ids: Vec<usize> = classes
            .iter()
            .map(|c| c[1].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(ids, top_classes(&v1, 5), "{}", what("classification"));
        for class in classes {
            let id = class[1].as_u64().unwrap() as usize;
            let probability = class[0].as_f64().unwrap();
            let close = (probability - v1[id]).abs() <= SAME_INPUT_TOLERANCE;
            assert!(close, "{}: {class}", what("classification"));
            assert_eq!(class[2], seresnext_serve::labels::label(id).unwrap());
        }
        if index == 0 {
            let with_version = row(&v2["with_model_version"]);
            assert_close(
                &with_version,
                &v1,
                SAME_INPUT_TOLERANCE,
                &what("model_version"),
            );
        }
    }

    // Bodies naming another model or version: 400, naming both values.
    let errors = &v2["errors"];
    for (case, names) in [
        (
            "other_model",
            [
                "\"gluon_seresnext101_32x4d\"",
                "\"gluon_seresnext50_32x4d\"",
            ],
        ),
        ("other_version", ["\"7\"", "\"1\""]),
    ] {
        let error = &errors[case];
        assert_eq!(error["status"], 400, "{case}: {error}");
        assert_eq!(error["error_type"], "invalid_parameter", "{case}: {error}");
        let message = error["error"].as_str().unwrap();
        for name in names {
            assert!(message.contains(name), "{case}: {message}");
        }
    }
    assert_eq!(errors["unknown_model"]["status"], 404, "{errors}");
    server.stop().await;
}

/// `.venv-kserve`'s Python; fails the test, saying how to install it, when
/// the venv is not there.
fn sdk_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-kserve/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make kserve-tools` (make test does) to install KServe's \
         SDK; this check was not run, so it has not passed",
        python.display()
    );
    python
}

/// Runs tests/it/kserve_sdk_client.py and parses its report.
async fn run_client(python: &Path, base_url: &str, normalized: &Path, images: &[PathBuf]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/kserve_sdk_client.py");
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .arg(base_url)
        .arg(normalized)
        .args(images)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kserve_sdk_client.py failed ({}); KServe's SDK comes with \
         scripts/kserve/requirements.txt (make kserve-tools):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("the client prints one JSON document")
}
