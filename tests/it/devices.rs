//! Devices the machine does not have fail at once, before any weights are
//! read, with a sentence instead of a C++ backtrace; the device chosen is
//! reported in its documented form. Runs the real binary (`classify`,
//! `bench`, `serve`) as a user would.

use std::process::{Command, Output};

use seresnext_serve::config::DeviceSpec;
use seresnext_serve::model::check_device;

use crate::support::server::start_server;

/// A device this machine does not have, and the words its refusal must carry:
/// any GPU on a machine without one, else one past the last GPU.
fn missing_device() -> (&'static str, &'static str) {
    if check_device(DeviceSpec::AnyCuda).is_err() {
        ("cuda", "CUDA is not available")
    } else {
        ("cuda:99", "cuda:99")
    }
}

/// A weights path that does not exist: if the device were checked after the
/// weights, the error would be about this file instead.
const NO_SUCH_WEIGHTS: &str = "/nonexistent/weights.safetensors";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
        .args(args)
        .output()
        .expect("run seresnext-serve")
}

fn assert_refused_with_a_sentence(output: &Output, words: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(words), "{stderr}");
    assert!(
        !stderr.contains("nonexistent"),
        "weights were read first: {stderr}"
    );
    for noise in ["backtrace", "Exception raised from", "panicked"] {
        assert!(!stderr.contains(noise), "{noise}: {stderr}");
    }
}

#[test]
fn classify_and_bench_refuse_a_missing_gpu_before_reading_weights() {
    let (device, words) = missing_device();
    let model = ["--model", "gluon_seresnext50_32x4d", "--device", device];
    let classify = run(&[
        &["classify"][..],
        &model,
        &["--weights", NO_SUCH_WEIGHTS, "x.jpg"],
    ]
    .concat());
    assert_refused_with_a_sentence(&classify, words);
    assert_eq!(classify.status.code(), Some(2));
    let bench = run(&[&["bench"][..], &model, &["--weights", NO_SUCH_WEIGHTS]].concat());
    assert_refused_with_a_sentence(&bench, words);
    assert_eq!(bench.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_missing_gpu_before_reading_weights() {
    let (device, words) = missing_device();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\n\n[[models]]\nid = \"gluon_seresnext50_32x4d\"\n\
             weights = \"{NO_SUCH_WEIGHTS}\"\ndevice = \"{device}\"\n"
        ),
    )
    .unwrap();
    let serve = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_refused_with_a_sentence(&serve, words);
    assert_eq!(serve.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("models[gluon_seresnext50_32x4d]"),
        "the error names the model"
    );
}

#[tokio::test]
async fn the_chosen_device_is_shown_as_documented() {
    let server = start_server(|config| config.models[0].device = DeviceSpec::Auto).await;
    let models = server.get_json("/v1/models").await;
    let model = &models["models"][0];
    let expected = if check_device(DeviceSpec::AnyCuda).is_ok() {
        "cuda:0"
    } else {
        "cpu"
    };
    assert_eq!(model["requested_device"], "auto");
    assert_eq!(model["device"], expected);
    assert_eq!(model["replica_devices"], serde_json::json!([expected]));
    server.stop().await;
}
