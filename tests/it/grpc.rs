//! KServe V2 over gRPC with the real `tritonclient[grpc]`
//! (tests/it/grpc_client.py, run with .venv-grpc's Python, `make
//! grpc-tools`) against a server serving the fixture model on the CPU with
//! `grpc_port` set: the V1 answers through BYTES and FP32 inputs, raw and
//! typed, and the classification extension; the errors as Triton's status
//! codes; the API key; a full queue; batching under 16 streams; draining.

use crate::support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use support::http::metrics_text;
use support::kserve::{
    assert_close, our_normalized_input, top_classes, v1_probabilities, SAME_INPUT_TOLERANCE,
};
use support::server::{photos, start_server, TestServer, MODEL};

/// A free port for `grpc_port`, where 0 means "off" rather than "any".
/// The OS hands it out and it is released at once; the server binds it
/// right after.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn start_grpc(customize: impl FnOnce(&mut seresnext_serve::config::Config)) -> TestServer {
    start_server(|config| {
        config.server.grpc_port = free_port();
        customize(config);
    })
    .await
}

fn grpc_url(server: &TestServer) -> String {
    let addr = server.server.grpc_addr.expect("gRPC is on");
    format!("127.0.0.1:{}", addr.port())
}

/// Runs tests/it/grpc_client.py in `mode` with .venv-grpc and parses its report.
async fn run_client(mode: &str, url: &str, args: &[String]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-grpc/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make grpc-tools` (scripts/grpc/install.sh) first",
        python.display()
    );
    let output = tokio::process::Command::new(&python)
        .arg(root.join("tests/it/grpc_client.py"))
        .arg(mode)
        .arg(url)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "grpc_client.py {mode} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("the client prints one JSON document")
}

fn photo_path(name: &str) -> String {
    support::fixture_path(&format!("photos/{name}"))
        .display()
        .to_string()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_grpc_gets_the_v1_answers_and_triton_status_codes() {
    let server = start_grpc(|_| {}).await;
    let photos = photos();
    let normalized_dir: PathBuf =
        std::env::temp_dir().join(format!("grpc-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&normalized_dir).expect("temp dir");
    for (name, bytes, _) in &photos {
        let values: Vec<u8> = our_normalized_input(bytes)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(normalized_dir.join(format!("{name}.f32")), values).expect("write input");
    }
    let mut args = vec![normalized_dir.display().to_string()];
    args.extend(photos.iter().map(|(name, _, _)| photo_path(name)));
    let report = run_client("answers", &grpc_url(&server), &args).await;
    let _ = std::fs::remove_dir_all(&normalized_dir);

    assert_eq!(report["server_live"], true);
    assert_eq!(report["server_ready"], true);
    assert_eq!(report["model_ready"], true);
    let extensions = report["server_metadata"]["extensions"].as_array().unwrap();
    assert!(
        extensions.contains(&json!("classification")),
        "{extensions:?}"
    );
    let metadata = &report["model_metadata"];
    assert_eq!(metadata["name"], MODEL);
    assert_eq!(metadata["platform"], "pytorch_libtorch");
    assert_eq!(metadata["inputs"][0]["name"], "image_bytes");
    assert_eq!(
        metadata["inputs"][1]["shape"],
        json!(["-1", "3", "224", "224"])
    );
    assert_eq!(report["unknown_model_metadata"], "NOT_FOUND");

    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), photos.len());
    for ((name, bytes, _), image) in photos.iter().zip(images) {
        let v1 = v1_probabilities(&server.client, &server.base_url, bytes.clone()).await;
        for path in ["bytes_raw", "bytes_typed", "fp32_raw", "fp32_typed"] {
            let ours = floats(&image[path]);
            assert_close(&ours, &v1, SAME_INPUT_TOLERANCE, &format!("{name} {path}"));
        }
        let classes = image["classification"].as_array().expect("classes");
        let ids: Vec<usize> = classes
            .iter()
            .map(|c| c[1].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(ids, top_classes(&v1, 5), "{name} classification");
        for class in classes {
            let id = class[1].as_u64().unwrap() as usize;
            let probability = class[0].as_f64().unwrap();
            assert!(
                (probability - v1[id]).abs() <= SAME_INPUT_TOLERANCE,
                "{name}"
            );
            assert_eq!(class[2], seresnext_serve::labels::label(id).unwrap());
        }
        assert_eq!(
            image["classification_id"], "top5",
            "{name}: the id is echoed"
        );
    }
    let errors = &report["errors"];
    assert_eq!(errors["unknown_model"], "NOT_FOUND");
    assert_eq!(errors["bad_datatype"], "INVALID_ARGUMENT");
    assert_eq!(errors["tiny_timeout_parameter"], "DEADLINE_EXCEEDED");
    assert_eq!(errors["tiny_grpc_deadline"], "DEADLINE_EXCEEDED");

    // Draining: new calls are UNAVAILABLE, as HTTP answers 503.
    server.server.service.begin_draining();
    let report = run_client("draining", &grpc_url(&server), &[photo_path("chelsea.jpg")]).await;
    assert_eq!(report["infer"], "UNAVAILABLE");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_guards_grpc_as_it_guards_http() {
    let server = start_grpc(|config| {
        config.server.api_key = seresnext_serve::config::ApiKey::new("grpc-secret-0123456789");
    })
    .await;
    let args = [
        "grpc-secret-0123456789".to_owned(),
        photo_path("chelsea.jpg"),
    ];
    let report = run_client("auth", &grpc_url(&server), &args).await;
    assert_eq!(report["live_without_key"], true);
    assert_eq!(report["metadata_without_key"], "UNAUTHENTICATED");
    assert_eq!(report["infer_without_key"], "UNAUTHENTICATED");
    assert_eq!(report["infer_wrong_key"], "UNAUTHENTICATED");
    assert_eq!(report["infer_right_key"], "OK");
    server.stop().await;
}

/// `(sum, count)` of the model's batch-size histogram.
fn batch_size_sum_count(metrics: &str) -> (f64, f64) {
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(MODEL))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("seresnext_batch_size_sum"),
        value("seresnext_batch_size_count"),
    )
}

fn codes(report: &Value) -> Vec<&str> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_streams_form_batches() {
    let server = start_grpc(|config| {
        config.models[0].max_batch_size = 8;
        config.models[0].max_batch_delay_ms = 20;
    })
    .await;
    let before = batch_size_sum_count(&metrics_text(&server.client, &server.base_url).await);
    let args = ["16".to_owned(), "2".to_owned(), photo_path("chelsea.jpg")];
    let report = run_client("load", &grpc_url(&server), &args).await;
    assert!(codes(&report).iter().all(|&code| code == "OK"), "{report}");
    assert_eq!(codes(&report).len(), 32);
    let metrics = metrics_text(&server.client, &server.base_url).await;
    let (sum, count) = batch_size_sum_count(&metrics);
    let (images, batches) = (sum - before.0, count - before.1);
    assert_eq!(images, 32.0, "every image ran once");
    assert!(
        batches < images,
        "{images} images in {batches} batches: none > 1"
    );
    assert!(
        metrics.contains(&format!(
            r#"seresnext_requests_total{{model="{MODEL}",status="200",task="predict"}} 32"#
        )),
        "gRPC calls are counted as requests"
    );
    assert!(metrics.contains(r#"seresnext_connections_open{listener="grpc"}"#));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_resource_exhausted_with_retry_after() {
    let server = start_grpc(|config| {
        config.server.max_images_per_request = 4;
        config.models[0].max_batch_size = 4;
        config.models[0].queue_capacity = 4;
        config.models[0].max_batch_delay_ms = 2;
    })
    .await;
    let args = ["48".to_owned(), "1".to_owned(), photo_path("chelsea.jpg")];
    let report = run_client("load", &grpc_url(&server), &args).await;
    let results = report["results"].as_array().unwrap();
    let mut shed = 0;
    for result in results {
        match result["code"].as_str().unwrap() {
            "OK" => {}
            "RESOURCE_EXHAUSTED" => {
                shed += 1;
                let retry: u64 = result["retry_after"].as_str().unwrap().parse().unwrap();
                assert!(retry >= 1, "{result}");
                assert!(
                    ["queue_full", "deadline_unreachable"]
                        .contains(&result["error_type"].as_str().unwrap()),
                    "{result}"
                );
            }
            other => panic!("only OK and RESOURCE_EXHAUSTED are acceptable, got {other}"),
        }
    }
    assert!(shed > 0, "the queue never filled: {report}");
    assert!(shed < results.len(), "nothing was served");
    server.stop().await;
}
