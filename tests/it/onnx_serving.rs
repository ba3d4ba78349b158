//! The server on the ONNX Runtime engine: the same routes answer as under
//! libtorch (V1 and V2, bytes and client-normalized input), the metadata
//! names the engine, and a libonnxruntime that cannot be loaded ends
//! start-up with one clear line and exit code 1.

use reqwest::StatusCode;
use serde_json::{json, Value};

use seresnext_serve::config::EngineKind;
use support::kserve::{assert_close, floats, our_normalized_input, v1_probabilities, V2_INFER};
use support::process::failed_start_error;
use support::server::{photo, start_server, test_config, MODEL, PREDICT};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_under_onnxruntime_as_under_libtorch() {
    let onnx = start_server(|config| config.models[0].engine = EngineKind::Onnxruntime).await;
    let client = &onnx.client;

    let metadata = onnx.get_json(&format!("/v1/models/{MODEL}")).await;
    assert_eq!(metadata["engine"], "onnxruntime", "{metadata}");
    assert_eq!(metadata["device"], "cpu", "{metadata}");
    let v2 = onnx.get_json(&format!("/v2/models/{MODEL}")).await;
    assert_eq!(v2["platform"], "onnxruntime_onnx", "{v2}");

    let answer = client
        .post(onnx.url(PREDICT))
        .header("content-type", "image/jpeg")
        .body(photo("chelsea.jpg"))
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(
        body["predictions"][0]["top_k"][0]["class_id"], 285,
        "{body}"
    );

    // The client-normalized V2 input gets the V1 answer for the same image.
    let bytes = photo("coffee.jpg");
    let v1 = v1_probabilities(client, &onnx.base_url, bytes.clone()).await;
    let request = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                    "data": our_normalized_input(&bytes)}],
    });
    let response = client
        .post(onnx.url(V2_INFER))
        .json(&request)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_close(
        &floats(&body["outputs"][0]["data"]),
        &v1,
        1e-5,
        "FP32 under onnxruntime",
    );
    onnx.stop().await;

    // libtorch, same weights, same image: the same classes, close probabilities.
    let libtorch = start_server(|_| {}).await;
    let torch_v1 = v1_probabilities(&libtorch.client, &libtorch.base_url, bytes).await;
    assert_close(&v1, &torch_v1, 1e-3, "onnxruntime vs libtorch");
    libtorch.stop().await;
}

#[test]
fn a_library_that_cannot_be_loaded_ends_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_library = dir.path().join("libonnxruntime.so");
    std::fs::write(&not_a_library, b"not an ELF file").expect("write");
    for library in [dir.path().join("missing.so"), not_a_library] {
        let mut config = test_config();
        config.models[0].engine = EngineKind::Onnxruntime;
        config.onnxruntime.library = library.clone();
        let error = failed_start_error(&config);
        assert!(error.contains("cannot load ONNX Runtime"), "{error}");
        assert!(error.contains(&library.display().to_string()), "{error}");
    }
}
