//! `[onnxruntime] cache_dir` through the real binary: the first start saves
//! one optimized graph, the next loads it (its log says so, and the file is
//! left as it was), and both answer as a server without the cache, for
//! predictions and embeddings. A damaged cache file is a warning, never a
//! failed start.

use std::path::{Path, PathBuf};

use reqwest::Client;
use serde_json::Value;

use support::kserve::{assert_close, v1_probabilities};
use support::process::{config_toml, ServerProcess};
use support::server::{photo, MODEL};

use crate::support;

/// The fixture model on ONNX Runtime, with the graph cache in `cache`.
fn onnx_config(cache: Option<&Path>) -> String {
    let mut toml = format!("{}engine = \"onnxruntime\"\n", config_toml(""));
    if let Some(dir) = cache {
        toml.push_str(&format!(
            "\n[onnxruntime]\ncache_dir = \"{}\"\n",
            dir.display()
        ));
    }
    toml
}

/// What a start answered, and how it built its session.
struct Start {
    probabilities: Vec<f64>,
    embedding: Vec<f64>,
    /// The `onnxruntime session built` log line.
    built: String,
    log: String,
}

/// Starts the binary on `toml`, asks for a prediction and an embedding of
/// one photo, and stops it.
async fn start(toml: &str) -> Start {
    let mut server = ServerProcess::spawn(toml);
    server.wait_ready().await;
    let client = Client::new();
    let probabilities = v1_probabilities(&client, &server.base_url(), photo("coffee.jpg")).await;
    let response = client
        .post(server.url(&format!("/v1/models/{MODEL}:embed?normalize=false")))
        .header("content-type", "image/jpeg")
        .body(photo("coffee.jpg"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    let embedding: Vec<f64> = body["embeddings"][0]
        .as_array()
        .expect("an embedding")
        .iter()
        .map(|value| value.as_f64().expect("a number"))
        .collect();
    assert_eq!(embedding.len(), 2048);
    let log = server.log_text();
    let built = log
        .lines()
        .find(|line| line.contains("onnxruntime session built"))
        .unwrap_or_else(|| panic!("no session line in:\n{log}"))
        .to_owned();
    Start {
        probabilities,
        embedding,
        built,
        log,
    }
}

/// The files in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|entry| entry.expect("entry").path()).collect())
        .unwrap_or_default()
}

fn assert_answers_alike(start: &Start, reference: &Start, what: &str) {
    assert_close(&start.probabilities, &reference.probabilities, 1e-5, what);
    assert_close(&start.embedding, &reference.embedding, 1e-5, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_cache_is_written_once_then_loaded_and_answers_as_without_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("graphs");
    let uncached = start(&onnx_config(None)).await;
    assert!(uncached.built.contains("cache=off"), "{}", uncached.built);

    let first = start(&onnx_config(Some(&cache))).await;
    assert!(first.built.contains("cache=written"), "{}", first.built);
    let written = files(&cache);
    assert_eq!(
        written.len(),
        1,
        "one graph, no temporary left: {written:?}"
    );
    let name = written[0].file_name().expect("name").to_string_lossy();
    assert!(
        name.starts_with(&format!("{MODEL}-")) && name.ends_with(".onnx"),
        "{name}"
    );
    let modified = std::fs::metadata(&written[0]).and_then(|m| m.modified());

    let second = start(&onnx_config(Some(&cache))).await;
    assert!(second.built.contains("cache=hit"), "{}", second.built);
    assert_eq!(files(&cache), written);
    assert_eq!(
        std::fs::metadata(&written[0])
            .and_then(|m| m.modified())
            .ok(),
        modified.ok(),
        "a hit does not rewrite the file"
    );
    assert_answers_alike(&first, &uncached, "first start with the cache");
    assert_answers_alike(&second, &uncached, "start from the cached graph");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cache_file_is_replaced_and_the_server_still_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("graphs");
    let first = start(&onnx_config(Some(&cache))).await;
    let written = files(&cache);
    assert_eq!(written.len(), 1, "{}", first.log);
    // Cut short, as a full disk or a crash in a copy would leave it.
    let bytes = std::fs::read(&written[0]).expect("read");
    std::fs::write(&written[0], &bytes[..bytes.len() / 2]).expect("truncate");

    let after = start(&onnx_config(Some(&cache))).await;
    assert!(
        after.log.contains("graph cache unusable"),
        "a warning names the problem:\n{}",
        after.log
    );
    assert!(after.built.contains("cache=written"), "{}", after.built);
    assert_eq!(files(&cache), written, "rebuilt under the same name");
    assert_eq!(std::fs::read(&written[0]).expect("read").len(), bytes.len());
    assert_answers_alike(&after, &first, "after a damaged cache");
}
