//! The serving core end to end on a real server: batching equivalence, no
//! cross-talk under concurrency, start-up failures, and SIGTERM under load.

use crate::support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use seresnext_serve::config::WeightsSource;
use support::http::metrics_text;
use support::process::{config_toml, config_toml_with_weights, ServerProcess};
use support::server::{photo, photos, shared_server, start_server, test_config, TestServer, MODEL};

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

/// The largest probability difference over every class; NaN if either
/// side has a NaN, so no bound passes.
fn distribution_diff(a: &HashMap<u64, f64>, b: &HashMap<u64, f64>) -> f64 {
    assert_eq!(a.len(), b.len());
    support::max_abs_diff(a.iter().map(|(class, p)| (*p, b[class])))
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
        let diff = distribution_diff(&distribution(prediction), single);
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
    let metrics_before = metrics_text(&server.client, &server.base_url).await;
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
                        distribution_diff(&distribution(&body["predictions"][0]), &singles[index]);
                    assert!(diff <= 1e-4, "client {client} photo {index}: off by {diff}");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client task");
    }

    let metrics = metrics_text(&server.client, &server.base_url).await;
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

#[test]
fn a_corrupt_weight_file_fails_start_up_with_a_clear_error_and_non_zero_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = dir.path().join("broken.pth");
    std::fs::write(&weights, b"PK\x03\x04 this is not really a checkpoint").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_toml_with_weights(weights.to_str().unwrap(), "intra_op_threads = 1"),
    )
    .unwrap();
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

/// What the load clients saw while the server shut down.
#[derive(Default)]
struct Outcomes {
    ok: usize,
    /// Never accepted: the connection was refused (the listener had closed)
    /// before any byte of the request was sent.
    refused: usize,
    /// Accepted and then not answered 200: a status, a reset after the
    /// request was sent, a cut-off response.
    failed: Vec<String>,
}

impl Outcomes {
    async fn record(&mut self, result: reqwest::Result<reqwest::Response>) {
        let failure = match result {
            Ok(response) if response.status() == 200 => match response.bytes().await {
                Ok(_) => {
                    self.ok += 1;
                    return;
                }
                Err(error) => format!("200 with a cut-off body: {error}"),
            },
            Ok(response) => format!("status {}", response.status()),
            // reqwest reports a failed TCP connect as a connect error; a
            // request on a pooled connection the server had closed is
            // retried on a new one by hyper only if nothing was written yet.
            Err(error) if error.is_connect() => {
                self.refused += 1;
                return;
            }
            Err(error) => format!("{error:?}"),
        };
        self.failed.push(failure);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_accepted_request_and_exits_zero() {
    let mut process = ServerProcess::spawn(&config_toml(
        "intra_op_threads = 1\nshutdown_grace_ms = 2000\ndrain_timeout_ms = 20000",
    ));
    process.wait_ready().await;
    let client = reqwest::Client::new();
    let photo = Arc::new(photo("chelsea.jpg"));
    let url = process.url(&format!("/v1/models/{MODEL}:predict"));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, photo, url, stop) =
                (client.clone(), photo.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Outcomes::default();
                while !stop.load(Ordering::Relaxed) {
                    let refused_before = outcomes.refused;
                    outcomes
                        .record(client.post(&url).body(photo.to_vec()).send().await)
                        .await;
                    if outcomes.refused > refused_before {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                outcomes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.signal("TERM");
    // Readiness turns 503 as soon as the signal is handled, well within the
    // grace period during which requests are still served.
    let mut readiness = None;
    let signalled = Instant::now();
    while signalled.elapsed() < Duration::from_millis(1000) {
        let status = client
            .get(process.url("/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        readiness = status.ok();
        if readiness == Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let exit = process.exit_status().await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Outcomes::default();
    for client in clients {
        let outcomes = client.await.unwrap();
        all.ok += outcomes.ok;
        all.refused += outcomes.refused;
        all.failed.extend(outcomes.failed);
    }
    eprintln!(
        "SIGTERM under load: {} succeeded, {} refused, {} accepted and failed",
        all.ok,
        all.refused,
        all.failed.len()
    );
    assert_eq!(readiness, Some(503), "readiness during the grace period");
    assert!(
        all.failed.is_empty(),
        "accepted requests failed: {:#?}\n{}",
        all.failed,
        process.log_text()
    );
    assert!(all.ok > 0);
    assert!(all.refused > 0, "the clients never saw the listener close");
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}");
}

/// With more than one libtorch intra-op thread, CPU models run on the
/// process's shared CPU engine thread (`pool::cpu_thread`), not on their
/// replica threads. Every other test server uses one thread, and the count
/// is process-wide in libtorch, so this one runs the binary in a process of
/// its own: its answers equal those of the one-thread shared test server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_intra_op_threads_serve_through_the_shared_cpu_engine_thread() {
    let mut process = ServerProcess::spawn(&config_toml("intra_op_threads = 2"));
    process.wait_ready().await;
    let client = reqwest::Client::new();
    let one_thread = shared_server();
    for (name, bytes, aimed) in photos() {
        let mut distributions = Vec::new();
        for base_url in [process.base_url(), one_thread.base_url.clone()] {
            let response = client
                .post(format!("{base_url}/v1/models/{MODEL}:predict?top_k=1000"))
                .body(bytes.clone())
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200, "{name} at {base_url}");
            let body: Value = response.json().await.expect("JSON body");
            assert_eq!(
                body["predictions"][0]["top_k"][0]["class_id"], aimed as u64,
                "{name} at {base_url}"
            );
            distributions.push(distribution(&body["predictions"][0]));
        }
        let diff = distribution_diff(&distributions[0], &distributions[1]);
        assert!(diff <= 1e-4, "{name}: 2 threads vs 1 differ by {diff}");
    }
    let threads = process.thread_names();
    assert!(
        threads.iter().any(|name| name == "cpu-engine"),
        "no cpu-engine thread in the 2-thread server: {threads:?}"
    );
}
