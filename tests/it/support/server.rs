//! A real server on 127.0.0.1, port 0, serving the fixture
//! `gluon_seresnext50_32x4d` on the CPU, and the fixture photos to send it.
//!
//! [`start_server`] gives a test its own server (any config); [`shared_server`]
//! is one process-wide server that tests needing only the defaults share, so
//! the model is loaded once per test binary rather than once per test.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use seresnext_serve::config::{Config, DeviceSpec, ModelConfig, ServerConfig, WeightsSource};
use seresnext_serve::http::{self, AppState};
use seresnext_serve::infer::InferenceService;
use seresnext_serve::server::Server;

/// The model every test server serves.
pub const MODEL: &str = "gluon_seresnext50_32x4d";

/// The V1 predict route of [`MODEL`].
pub const PREDICT: &str = "/v1/models/gluon_seresnext50_32x4d:predict";

/// How long a server may take to load and warm its model.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A started server and a client for it.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    pub client: reqwest::Client,
    pub server: Server,
}

impl TestServer {
    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path`, whatever the status, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("a JSON body")
    }

    /// Graceful shutdown, waiting until every thread has exited (so the
    /// model's memory is freed before the next test starts a server).
    pub async fn stop(self) {
        self.server.shutdown();
        self.server.wait().await.expect("server shut down cleanly");
    }
}

/// The configuration test servers start from: one small-batch CPU model with
/// the fixture weights, one libtorch thread (tests run in parallel on few
/// cores; more threads per server would only oversubscribe them) and quick
/// shutdown.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.host = "127.0.0.1".to_owned();
    config.server.port = 0;
    config.server.metrics_port = 0;
    config.server.intra_op_threads = 1;
    config.server.preprocess_threads = 2;
    config.server.shutdown_grace_ms = 0;
    config.server.drain_timeout_ms = 10_000;
    config.models = vec![ModelConfig {
        id: MODEL.to_owned(),
        weights: WeightsSource::File(super::fixture_path(
            "models/gluon_seresnext50_32x4d.safetensors",
        )),
        device: DeviceSpec::Cpu,
        max_batch_size: 4,
        max_batch_delay_ms: 5,
        queue_capacity: 64,
        ..ModelConfig::default()
    }];
    config
}

/// Starts a server from [`test_config`] changed by `customize`, and waits
/// until `/readyz` answers 200.
pub async fn start_server(customize: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = test_config();
    customize(&mut config);
    let server = Server::start(config).await.expect("server starts");
    let base_url = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    wait_ready(&client, &base_url, &server.service).await;
    TestServer {
        base_url,
        client,
        server,
    }
}

async fn wait_ready(client: &reqwest::Client, base_url: &str, service: &InferenceService) {
    let started = Instant::now();
    loop {
        if let Some(failure) = service.startup_failure() {
            panic!("test server failed to start: {failure}");
        }
        let ready = client
            .get(format!("{base_url}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == reqwest::StatusCode::OK);
        if ready {
            return;
        }
        assert!(
            started.elapsed() < READY_TIMEOUT,
            "test server not ready after {READY_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process-wide server's address and engine. Make a new
/// `reqwest::Client` per test: a client's pooled connections belong to the
/// runtime that opened them, and each `#[tokio::test]` has its own.
pub struct SharedServer {
    pub base_url: String,
    pub service: Arc<InferenceService>,
    /// The configuration it was started with.
    pub config: Config,
}

impl SharedServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// One default server for the whole test binary, started on first use. It
/// runs on a runtime of its own thread, which outlives every test's runtime.
pub fn shared_server() -> &'static SharedServer {
    static SHARED: OnceLock<SharedServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("shared-test-server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("shared server runtime");
                runtime.block_on(async move {
                    let config = test_config();
                    let server = start_server(|_| {}).await;
                    let shared = SharedServer {
                        base_url: server.base_url.clone(),
                        service: server.server.service.clone(),
                        config,
                    };
                    if sender.send(shared).is_ok() {
                        // Serve until the test binary exits.
                        std::future::pending::<()>().await;
                    }
                });
            })
            .expect("spawn shared server thread");
        receiver.recv().expect("shared test server failed to start")
    })
}

/// A second listener in front of the shared engine with other edge settings
/// (limits, API key, CORS); returns its `http://127.0.0.1:<port>`.
pub async fn serve_with(customize: impl FnOnce(&mut ServerConfig)) -> String {
    let shared = shared_server();
    let mut server = shared.config.server.clone();
    customize(&mut server);
    let app = http::router(AppState::new(Arc::clone(&shared.service), server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A fixture photo's bytes (`chelsea.jpg`, `camera_gray.png`, ...; see
/// `manifest.json`).
pub fn photo(name: &str) -> Vec<u8> {
    let path = super::fixture_path(&format!("photos/{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every fixture photo in manifest order, with the class the fixture model
/// was aimed to predict for it.
pub fn photos() -> Vec<(String, Vec<u8>, usize)> {
    let manifest = super::manifest();
    let top1 = &manifest.models[MODEL].top1;
    manifest
        .photos
        .iter()
        .zip(top1)
        .map(|(photo, &class)| {
            let name = photo.file.trim_start_matches("photos/").to_owned();
            let bytes = self::photo(&name);
            (name, bytes, class)
        })
        .collect()
}
