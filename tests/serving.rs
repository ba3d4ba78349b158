//! The serving core end to end on a real server: batching equivalence, no
//! cross-talk under concurrency, start-up failures, and SIGTERM under load.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::{photos, start_server, test_config, TestServer, MODEL};
use serde_json::Value;
use seresnext_serve::config::WeightsSource;

/// Full class → probability map of one prediction (top_k = all classes).
fn distribution(prediction: &Value) -> HashMap<u64, f64> {
    prediction["top_k"]
        .as_array()
        .expect("top_k list")
        .iter()
        .map(|c| {
            (
                c["class_id"].as_u64().unwrap(),
                c["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn max_abs_diff(a: &HashMap<u64, f64>, b: &HashMap<u64, f64>) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().map(|(k, v)| (v - b[k]).abs()).fold(0.0, f64::max)
}

async fn predict_raw(server: &TestServer, bytes: Vec<u8>, top_k: usize) -> Value {
    let response = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict?top_k={top_k}")))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

/// `(sum, count)` of the batch-size histogram in a /metrics text.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_n_images_returns_n_predictions_in_order_equal_to_singles() {
    let server = start_server(|_| {}).await;
    let photos = photos();
    let mut singles = Vec::new();
    for (_, bytes, _) in &photos {
        let body = predict_raw(&server, bytes.clone(), 1000).await;
        singles.push(distribution(&body["predictions"][0]));
    }
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes, _) in &photos {
        form = form.part(name.clone(), reqwest::multipart::Part::bytes(bytes.clone()));
    }
    let response = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict?top_k=1000")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), photos.len());
    for ((prediction, single), (name, _, top1)) in predictions.iter().zip(&singles).zip(&photos) {
        let diff = max_abs_diff(&distribution(prediction), single);
        assert!(
            diff <= 1e-4,
            "{name}: batched differs from single by {diff}"
        );
        assert_eq!(prediction["top_k"][0]["class_id"], *top1 as u64, "{name}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_clients_get_batched_without_cross_talk() {
    let server = Arc::new(start_server(|_| {}).await);
    let photos = Arc::new(photos());
    let mut singles = Vec::new();
    for (_, bytes, _) in photos.iter() {
        let body = predict_raw(&server, bytes.clone(), 1000).await;
        singles.push(distribution(&body["predictions"][0]));
    }
    let metrics_before = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sum_before, count_before) = batch_size_sum_count(&metrics_before);

    let singles = Arc::new(singles);
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (server, photos, singles) = (server.clone(), photos.clone(), singles.clone());
            tokio::spawn(async move {
                for round in 0..3 {
                    let index = (client + round) % photos.len();
                    let body = predict_raw(&server, photos[index].1.clone(), 1000).await;
                    let diff =
                        max_abs_diff(&distribution(&body["predictions"][0]), &singles[index]);
                    assert!(diff <= 1e-4, "client {client} photo {index}: off by {diff}");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client task");
    }

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sum, count) = batch_size_sum_count(&metrics);
    let (images, batches) = (sum - sum_before, count - count_before);
    assert_eq!(images, 48.0, "every image ran exactly once");
    let mean_batch = images / batches;
    eprintln!("16 clients: {images} images in {batches} batches, mean batch {mean_batch:.2}");
    assert!(
        mean_batch > 1.0,
        "no batching happened: {batches} batches for {images} images"
    );
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}

#[tokio::test]
async fn a_missing_weight_file_names_the_file_and_where_to_get_it() {
    let mut config = test_config();
    config.models[0].weights = WeightsSource::File("weights/not-here-90cf2d6e.pth".into());
    let error = seresnext_serve::server::Server::start(config)
        .await
        .err()
        .expect("start fails")
        .to_string();
    assert!(error.contains("weights/not-here-90cf2d6e.pth"), "{error}");
    assert!(
        error.contains("huggingface.co/timm/seresnext50_32x4d.gluon_in1k"),
        "{error}"
    );
    assert!(
        error.contains("gluon_seresnext50_32x4d-90cf2d6e.pth"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_weights_are_served_only_when_asked_and_responses_say_so() {
    let server = start_server(|config| {
        config.models[0].weights = WeightsSource::Random;
        config.models[0].max_batch_size = 1;
    })
    .await;
    let (_, bytes, _) = photos().remove(0);
    let response = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict")))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-random-weights"], "true");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["random_weights"], true);
    server.stop().await;

    let normal = start_server(|config| config.models[0].max_batch_size = 1).await;
    let (_, bytes, _) = photos().remove(0);
    let body = predict_raw(&normal, bytes, 5).await;
    assert!(body.get("random_weights").is_none(), "{body}");
    normal.stop().await;
}

/// The real binary, serving a config written for the test.
struct Process {
    child: Child,
    base_url: String,
}

fn spawn_binary(config_toml: &str) -> Result<Process, String> {
    let dir = std::env::temp_dir().join(format!(
        "serving-test-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("config-{}.toml", rand_suffix()));
    std::fs::write(&path, config_toml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn server binary");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        log.push_str(&line);
        log.push('\n');
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("addr="))
        {
            let base_url = format!("http://{addr}");
            // Keep draining stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(Process { child, base_url });
        }
    }
    let status = child.wait().ok();
    Err(format!(
        "server exited ({status:?}) before listening:\n{log}"
    ))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn config_toml(weights: &str, extra_server: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nintra_op_threads = 1\n{extra_server}\n\
         [[models]]\nid = \"{MODEL}\"\nweights = \"{weights}\"\ndevice = \"cpu\"\n\
         max_batch_size = 4\nmax_batch_delay_ms = 5\nqueue_capacity = 64\n"
    )
}

#[test]
fn a_corrupt_weight_file_fails_start_up_with_a_clear_error_and_non_zero_exit() {
    let dir = std::env::temp_dir().join(format!("corrupt-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("broken.pth");
    std::fs::write(&weights, b"PK\x03\x04 this is not really a checkpoint").unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, config_toml(weights.to_str().unwrap(), "")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .expect("run the server binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot load weights") && stderr.contains("at byte 0"),
        "{stderr}"
    );
}

async fn wait_ready(client: &reqwest::Client, base_url: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(response) = client.get(format!("{base_url}/readyz")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base_url} not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_accepted_request_and_exits_zero() {
    let weights = common::fixture_path("models/gluon_seresnext50_32x4d.safetensors");
    let mut process = spawn_binary(&config_toml(
        weights.to_str().unwrap(),
        "shutdown_grace_ms = 2000\ndrain_timeout_ms = 20000",
    ))
    .expect("server starts");
    let client = reqwest::Client::new();
    wait_ready(&client, &process.base_url).await;
    let photo = Arc::new(common::server::photo("chelsea.jpg"));
    let url = format!("{}/v1/models/{MODEL}:predict", process.base_url);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, photo, url, stop) =
                (client.clone(), photo.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut refused, mut failed) = (0, 0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.post(&url).body(photo.to_vec()).send().await {
                        Ok(response) if response.status() == 200 => ok += 1,
                        Ok(response) => failed.push(response.status().as_u16()),
                        // Not accepted: the listener had closed.
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (ok, refused, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Readiness turns 503 as soon as the signal is handled, well within the
    // grace period during which requests are still served.
    let mut readiness = None;
    let signalled = Instant::now();
    while signalled.elapsed() < Duration::from_millis(1000) {
        let status = client
            .get(format!("{}/readyz", process.base_url))
            .send()
            .await
            .map(|r| r.status().as_u16());
        readiness = status.ok();
        if readiness == Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let exit = tokio::task::spawn_blocking(move || process.child.wait().unwrap())
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut refused, mut failed) = (0, 0, Vec::new());
    for client in clients {
        let (o, r, f) = client.await.unwrap();
        ok += o;
        refused += r;
        failed.extend(f);
    }
    eprintln!(
        "SIGTERM under load: {ok} succeeded, {refused} not accepted, {} failed",
        failed.len()
    );
    assert_eq!(readiness, Some(503), "readiness during the grace period");
    assert!(
        failed.is_empty(),
        "accepted requests failed with {failed:?}"
    );
    assert!(ok > 0);
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}");
}
