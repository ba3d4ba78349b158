//! Hub weights end to end on a real server, offline: `hf://` and the default
//! (no `weights` key) are resolved from a temp Hugging Face cache laid out as
//! Python's huggingface_hub lays it out, holding the fixture weights. The cache
//! and offline mode are set through `[hub]`, never the process environment,
//! so nothing here races with other tests or touches the network.

use crate::support;

use std::path::Path;

use seresnext_serve::config::{Config, WeightsSource};
use support::server::{photos, start_server, test_config, MODEL};

const COMMIT: &str = "5c2b1f1e0d9c8b7a69584736251403f2e1d0c9b8";

/// A cache holding the fixture as `timm/seresnext50_32x4d.gluon_in1k`'s
/// `model.safetensors` at `main`: refs/main → snapshot symlink → blob (itself
/// a symlink to the fixture, so nothing is copied).
fn cache_with_fixture(cache_dir: &Path) {
    let repo = cache_dir.join("models--timm--seresnext50_32x4d.gluon_in1k");
    let etag = "3f5a0c1e9b7d4a2c8e6f1b3d5a7c9e0f2b4d6a8c1e3f5a7b9c0d2e4f6a8b0c1d";
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    let fixture = support::fixture_path("models/gluon_seresnext50_32x4d.safetensors");
    std::os::unix::fs::symlink(&fixture, repo.join("blobs").join(etag)).unwrap();
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{etag}"),
        snapshot.join("model.safetensors"),
    )
    .unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
}

fn offline_hub(config: &mut Config, cache_dir: &Path) {
    config.hub.cache_dir = cache_dir.to_owned();
    config.hub.offline = true;
    config.models[0].max_batch_size = 1;
}

/// The photo the fixture model was aimed at, and the class it must get.
async fn assert_serves_the_fixture(server: &support::server::TestServer) {
    let (_, bytes, class) = photos().remove(0);
    let response = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict?top_k=1")))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-random-weights").is_none());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["predictions"][0]["top_k"][0]["class_id"], class);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_weights_and_the_default_are_served_from_a_python_layout_cache() {
    let cache = tempfile::tempdir().unwrap();
    cache_with_fixture(cache.path());
    for weights in [
        "hf://timm/seresnext50_32x4d.gluon_in1k".parse().unwrap(),
        WeightsSource::Pretrained,
    ] {
        let server = start_server(|config| {
            offline_hub(config, cache.path());
            config.models[0].weights = weights.clone();
        })
        .await;
        assert_serves_the_fixture(&server).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn offline_without_a_cached_file_fails_start_up_saying_where_to_put_it() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = test_config();
    offline_hub(&mut config, cache.path());
    config.models[0].weights = WeightsSource::Pretrained;
    let error = seresnext_serve::server::Server::start(config)
        .await
        .err()
        .expect("start fails")
        .to_string();
    let repo = cache
        .path()
        .join("models--timm--seresnext50_32x4d.gluon_in1k");
    for part in [
        "weights for model gluon_seresnext50_32x4d",
        "hf://timm/seresnext50_32x4d.gluon_in1k is not in the Hugging Face cache",
        &repo
            .join("snapshots/<commit>/model.safetensors")
            .display()
            .to_string(),
        "weights = \"/path/to/model.safetensors\"",
        "releases/download/v0.1-pretrained/gluon_seresnext50_32x4d-90cf2d6e.pth",
    ] {
        assert!(error.contains(part), "lacks {part:?}: {error}");
    }
}
