//! Unit tests for parsing, defaults, validation and overrides.

use std::{path::PathBuf, time::Duration};

use super::*;

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

pub(super) fn known(id: &str) -> bool {
    matches!(
        id,
        "gluon_seresnext50_32x4d" | "gluon_seresnext101_32x4d" | "seresnext50_32x4d.gluon_in1k"
    )
}

fn parse_error(text: &str) -> String {
    match Config::from_toml_str(text) {
        Err(error @ ConfigError::Parse { .. }) => error.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

pub(super) fn problems(config: &Config) -> Vec<Problem> {
    match config.validate(known) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

pub(super) fn has_problem(problems: &[Problem], key: &str, reason_part: &str) -> bool {
    problems
        .iter()
        .any(|p| p.key == key && p.reason.contains(reason_part))
}

#[test]
fn defaults_are_the_documented_values_and_valid() {
    let config = Config::default();
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.request_timeout(), Duration::from_secs(30));
    assert_eq!(config.server.drain_timeout(), Duration::from_secs(30));
    assert_eq!(config.server.shutdown_grace(), Duration::ZERO);
    assert_eq!(config.server.max_body_bytes, 32 << 20);
    assert!(config.server.preprocess_thread_count() >= 1);
    assert_eq!(config.server.intra_op_thread_count(), None);
    assert!(!config.server.has_separate_metrics_listener());
    assert_eq!(config.models.len(), 1);
    let model = &config.models[0];
    assert_eq!(model.id, "gluon_seresnext50_32x4d");
    assert_eq!(model.max_batch_delay(), Duration::from_millis(5));
    assert_eq!((model.max_batch_size, model.queue_capacity), (32, 256));
    assert!(model.fold_bn);
    config.validate(known).expect("defaults are valid");
}

#[test]
fn default_toml_equals_default_config() {
    let parsed = Config::from_toml_str(DEFAULT_TOML).expect("default.toml parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn default_toml_lists_every_key() {
    // Serialising the defaults yields every key; each must appear in the file.
    let serialised = toml::to_string(&Config::default()).expect("serialises");
    for line in serialised.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            let written = format!("\n{key} = ");
            assert!(DEFAULT_TOML.contains(&written), "default.toml lacks {key}");
        }
    }
}

#[test]
fn serialised_config_round_trips() {
    let mut config = Config::default();
    config.models[0].weights = WeightsSource::Random;
    config.models[0].device = DeviceSpec::Cuda(1);
    let text = toml::to_string(&config).expect("serialises");
    assert_eq!(Config::from_toml_str(&text).expect("parses"), config);
}

#[test]
fn partial_files_take_defaults() {
    let config = Config::from_toml_str("").expect("empty file");
    assert_eq!(config, Config::default());

    let config = Config::from_toml_str("[server]\nport = 9000\n").expect("parses");
    assert_eq!(config.server.port, 9000);
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.models, Config::default().models);

    let text = "[[models]]\nid = \"gluon_seresnext101_32x4d\"\nweights = \"w/101.safetensors\"\n";
    let config = Config::from_toml_str(text).expect("parses");
    assert_eq!(config.models.len(), 1);
    assert_eq!(config.models[0].max_batch_size, 32);
    assert_eq!(config.models[0].queue_capacity, 256);
    assert!(config.models[0].fold_bn);
    config.validate(known).expect("valid");
}

#[test]
fn model_entries_must_name_id_and_may_leave_weights_out() {
    let message = parse_error("[[models]]\nweights = \"random\"\n");
    assert!(message.contains("missing field `id`"), "{message}");

    // No `weights`: the id's published weights, and the key stays out when
    // written back, so the default is never frozen into another model's file.
    let config =
        Config::from_toml_str("[[models]]\nid = \"gluon_seresnext101_32x4d\"\n").expect("parses");
    assert_eq!(config.models[0].weights, WeightsSource::Pretrained);
    config.validate(known).expect("valid");
    let text = toml::to_string(&config).expect("serialises");
    assert!(!text.contains("weights"), "{text}");

    let text = "[[models]]\nid = \"gluon_seresnext50_32x4d\"\n\
                weights = \"hf://timm/seresnext50_32x4d.gluon_in1k@abc/model.safetensors\"\n";
    let config = Config::from_toml_str(text).expect("parses");
    let WeightsSource::Hub(file) = &config.models[0].weights else {
        panic!(
            "expected an hf:// source, got {:?}",
            config.models[0].weights
        );
    };
    assert_eq!(file.repo_id, "timm/seresnext50_32x4d.gluon_in1k");
    assert_eq!(file.revision, "abc");
    config.validate(known).expect("valid");

    let message = parse_error("[[models]]\nid = \"x\"\nweights = \"hf://timm\"\n");
    assert!(message.contains("weights = \"hf://timm\""), "{message}");
    assert!(message.contains("<org>/<repo>"), "{message}");
}

#[test]
fn hub_table_parses_and_defaults_to_the_standard_cache() {
    assert_eq!(Config::default().hub, HubConfig::default());
    assert!(Config::default().hub.cache_dir.as_os_str().is_empty());
    let config = Config::from_toml_str("[hub]\ncache_dir = \"/models/hf\"\noffline = true\n")
        .expect("parses");
    assert_eq!(config.hub.cache_dir, PathBuf::from("/models/hf"));
    assert!(config.hub.offline);
    let message = parse_error("[hub]\nhf_home = \"/x\"\n");
    assert!(message.contains("unknown field `hf_home`"), "{message}");
}

#[test]
fn unknown_keys_are_named() {
    let message = parse_error("[server]\nprot = 8080\n");
    assert!(message.contains("unknown field `prot`"), "{message}");
    assert!(message.contains("line 2"), "{message}");

    let message = parse_error("[[models]]\nid = \"x\"\nweights = \"random\"\nbatch = 4\n");
    assert!(message.contains("unknown field `batch`"), "{message}");

    let message = parse_error("[serve]\nport = 1\n");
    assert!(message.contains("unknown field `serve`"), "{message}");
}

#[test]
fn wrongly_typed_values_quote_their_line() {
    let message = parse_error("[server]\nport = 70000\n");
    assert!(message.contains("port = 70000"), "{message}");
    let message = parse_error("[server]\nlog_format = \"xml\"\n");
    assert!(message.contains("log_format"), "{message}");
    let message = parse_error("[[models]]\nid = \"x\"\nweights = \"random\"\ndevice = \"gpu\"\n");
    assert!(message.contains("device = \"gpu\""), "{message}");
    assert!(message.contains("invalid device"), "{message}");
    let message = parse_error("[[models]]\nid = \"x\"\nweights = \"\"\n");
    assert!(message.contains("weights must not be empty"), "{message}");
}

#[test]
fn bad_values_name_their_key() {
    let mut config = Config::default();
    config.server.request_timeout_ms = 0;
    config.server.metrics_port = config.server.port;
    config.server.grpc_port = config.server.port;
    let model = &mut config.models[0];
    model.max_batch_size = 0;
    model.replicas = 0;
    model.weights = WeightsSource::File(PathBuf::from("weights/model.onnx"));
    let found = problems(&config);
    assert!(has_problem(
        &found,
        "models[0].max_batch_size",
        "at least 1"
    ));
    assert!(has_problem(&found, "models[0].replicas", "at least 1"));
    assert!(has_problem(&found, "models[0].weights", "model.onnx"));
    assert!(has_problem(
        &found,
        "server.request_timeout_ms",
        "at least 1"
    ));
    assert!(has_problem(&found, "server.metrics_port", "differ"));
    assert!(has_problem(&found, "server.grpc_port", "differ"));
    let message = ConfigError::Invalid(found).to_string();
    assert!(
        message.contains("models[0].max_batch_size: must be at least 1"),
        "{message}"
    );
}

#[test]
fn queue_must_hold_a_batch_and_a_request() {
    let mut config = Config::default();
    config.models[0].queue_capacity = 16;
    let found = problems(&config);
    assert!(has_problem(
        &found,
        "models[0].queue_capacity",
        "max_batch_size (32)"
    ));
    assert!(has_problem(
        &found,
        "models[0].queue_capacity",
        "max_images_per_request (64)"
    ));

    let mut config = Config::default();
    config.models[0].max_batch_delay_ms = config.server.request_timeout_ms;
    assert!(has_problem(
        &problems(&config),
        "models[0].max_batch_delay_ms",
        "less than"
    ));
}

#[test]
fn model_ids_must_be_known_unique_and_present() {
    let mut config = Config::default();
    let mut second = config.models[0].clone();
    second.device = DeviceSpec::Cpu;
    config.models.push(second);
    let mut third = config.models[0].clone();
    third.id = "resnet50".into();
    config.models.push(third);
    let found = problems(&config);
    assert!(has_problem(
        &found,
        "models[1].id",
        "duplicate of models[0].id"
    ));
    assert!(has_problem(
        &found,
        "models[2].architecture",
        "unknown model \"resnet50\""
    ));
    assert!(!found.iter().any(|p| p.key == "models[0].id"));

    let config = Config::from_toml_str("models = []\n").expect("parses");
    assert!(has_problem(&problems(&config), "models", "at least one"));
}

#[test]
fn random_weights_parse() {
    let text =
        "[[models]]\nid = \"gluon_seresnext50_32x4d\"\nweights = \"random\"\nrandom_seed = 7\n";
    let config = Config::from_toml_str(text).expect("parses");
    assert_eq!(config.models[0].weights, WeightsSource::Random);
    assert_eq!(config.models[0].random_seed, 7);
    config.validate(known).expect("random weights are valid");
    assert_eq!(
        "w/a.pth".parse::<WeightsSource>(),
        Ok(WeightsSource::File(PathBuf::from("w/a.pth")))
    );
}

#[test]
fn overrides_win_over_the_file() {
    let mut config = Config::from_toml_str(
        "[[models]]\nid = \"gluon_seresnext50_32x4d\"\nweights = \"a.pth\"\n\
         [[models]]\nid = \"gluon_seresnext101_32x4d\"\nweights = \"b.pth\"\ndevice = \"cpu\"\n",
    )
    .expect("parses");
    config.apply(Overrides {
        host: Some("127.0.0.1".into()),
        port: Some(0),
        metrics_port: Some(9100),
        grpc_port: Some(9001),
        log_format: Some(LogFormat::Json),
        device: Some(DeviceSpec::Cuda(1)),
        weights: Some(WeightsSource::File(PathBuf::from("c.safetensors"))),
        api_key: Some(ApiKey::new("from-the-environment")),
    });
    assert_eq!(config.server.host, "127.0.0.1");
    assert!(config.server.api_key.matches("from-the-environment"));
    assert_eq!(config.server.port, 0);
    assert_eq!(config.server.metrics_port, 9100);
    assert_eq!(config.server.grpc_port, 9001);
    assert_eq!(config.server.log_format, LogFormat::Json);
    assert!(config
        .models
        .iter()
        .all(|m| m.device == DeviceSpec::Cuda(1)));
    assert_eq!(
        config.models[0].weights,
        WeightsSource::File(PathBuf::from("c.safetensors"))
    );
    assert_eq!(
        config.models[1].weights,
        WeightsSource::File(PathBuf::from("b.pth"))
    );

    let before = config.clone();
    config.apply(Overrides::default());
    assert_eq!(config, before);

    config.apply(Overrides {
        weights: Some(WeightsSource::Random),
        ..Overrides::default()
    });
    assert_eq!(config.models[0].weights, WeightsSource::Random);
}

#[test]
fn log_format_parses_and_displays() {
    assert_eq!("json".parse(), Ok(LogFormat::Json));
    assert_eq!("text".parse(), Ok(LogFormat::Text));
    assert!("JSON".parse::<LogFormat>().is_err());
    assert_eq!(LogFormat::Json.to_string(), "json");
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let dir = std::env::temp_dir().join(format!("seresnext-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("good.toml");
    std::fs::write(&path, DEFAULT_TOML).expect("write");
    assert_eq!(Config::load(&path).expect("loads"), Config::default());

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[server]\nprot = 1\n").expect("write");
    let message = Config::load(&bad).expect_err("unknown key").to_string();
    assert!(
        message.contains("bad.toml") && message.contains("prot"),
        "{message}"
    );

    let missing = dir.join("missing.toml");
    let message = Config::load(&missing).expect_err("missing").to_string();
    assert!(message.contains("missing.toml"), "{message}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_onnxruntime_engine_refuses_a_gpu_and_reduced_precision() {
    let config = Config::from_toml_str(
        "[[models]]\nid = \"gluon_seresnext50_32x4d\"\nengine = \"onnxruntime\"\ndevice = \"cuda\"\ndtype = \"fp16\"\n",
    )
    .expect("parses");
    let message = config
        .validate(|_| true)
        .expect_err("onnxruntime is CPU fp32")
        .to_string();
    assert!(message.contains("models[0].device"), "{message}");
    assert!(message.contains("CPU only"), "{message}");
    assert!(message.contains("models[0].dtype"), "{message}");
    assert!(message.contains("fp32 only"), "{message}");
    let cpu = Config::from_toml_str(
        "[onnxruntime]\noptimization = \"extended\"\n[[models]]\nid = \"gluon_seresnext50_32x4d\"\nengine = \"onnxruntime\"\n",
    )
    .expect("parses");
    cpu.validate(|_| true)
        .expect("auto means the CPU for onnxruntime");
    assert_eq!(
        cpu.onnxruntime.optimization,
        crate::config::GraphOptimization::Extended
    );
}

#[test]
fn the_client_id_header_must_be_a_header_name() {
    let mut config = Config::default();
    config.server.client_id_header = "x-client-id".to_owned();
    config.validate(|_| true).expect("a header name");
    config.server.client_id_header = "x client".to_owned();
    let message = config.validate(|_| true).expect_err("a space").to_string();
    assert!(message.contains("server.client_id_header"), "{message}");
}
