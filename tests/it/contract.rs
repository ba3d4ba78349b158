//! The HTTP contract, checked by a tool nobody here wrote: Schemathesis
//! (scripts/contract/run.sh) generates requests from `openapi.yaml` and
//! checks the answers of a real server on port 0 against it: status codes,
//! bodies and headers, refusal of invalid input, `Allow` on 405s, and, with
//! an API key, that the guarded routes refuse requests without it.
//!
//! Schemathesis lives in `.venv-contract` (`make contract-tools`, which
//! `make test` runs; run.sh installs it too). If it cannot be installed,
//! these tests fail: a contract that was not checked has not passed.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::server::start_server;
use seresnext_serve::config::ApiKey;

/// A test key (`server.api_key` needs at least 16 characters).
const KEY: &str = "contract-test-key-0123456789";

/// Room for a first install of Schemathesis and a full run on a busy CI
/// machine; a run takes well under a minute.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// One server at a time: each loads a model and then takes the load
/// Schemathesis makes, so two at once would only slow both down.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_holds_without_an_api_key() {
    let _serial = SERIAL.lock().await;
    let server = start_server(|_| {}).await;
    run_schemathesis(&server.base_url, None).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_holds_with_an_api_key() {
    let _serial = SERIAL.lock().await;
    let server = start_server(|config| config.server.api_key = ApiKey::new(KEY)).await;
    run_schemathesis(&server.base_url, Some(KEY)).await;
    server.stop().await;
}

/// Runs scripts/contract/run.sh against `base_url` and fails the test with
/// its output unless it exits 0.
async fn run_schemathesis(base_url: &str, api_key: Option<&str>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/contract/run.sh");
    let mut command = tokio::process::Command::new(&script);
    command
        .arg(base_url)
        .args(api_key)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in {RUN_TIMEOUT:?}", script.display()))
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Schemathesis found the server and openapi.yaml disagreeing ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = stdout
        .lines()
        .rfind(|line| line.starts_with("contract: PASS"))
        .expect("run.sh prints its summary");
    println!("{summary} (test: {:.0?})", started.elapsed());
}
